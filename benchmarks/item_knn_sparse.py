"""ItemKNN on a sparse, popularity-heavy catalogue: the old evaluate grid against the shipped one.

A micro-video-like split: a power-law popularity, 4-15 clicks per user mixing popular items and
one taste cluster, the last click held out for test and the one before for validation. Each
grid's point is chosen on validation, as evaluate does, and scored on test with the mean
relative popularity of what it recommends (1 = the most popular item)::

    PYTHONPATH=src .venv/bin/python benchmarks/item_knn_sparse.py --seeds 0,1
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

OLD_GRID = list(itertools.product([50, 100, 200], [0.0, 10.0]))
NEW_GRID = list(itertools.product([50, 100, 200, 1000], [0.0, 10.0, 100.0, 1000.0]))


def sparse_split(
    n_users: int = 6000, n_items: int = 4000, n_clusters: int = 40, seed: int = 0
) -> dict[str, sp.csr_matrix]:
    """train / valid / test matrices: half the clicks by popularity, half in the user's cluster
    (weighted by the square root of popularity)."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / (1 + rng.permutation(n_items)) ** 1.0
    popularity /= popularity.sum()
    cluster = rng.integers(n_clusters, size=n_items)
    rows = []
    for user in range(n_users):
        pool = np.flatnonzero(cluster == rng.integers(n_clusters))
        weights = popularity[pool] ** 0.5 / (popularity[pool] ** 0.5).sum()
        items: list[int] = []
        wanted = int(rng.integers(4, 15))
        while len(items) < wanted:
            by_popularity = rng.random() < 0.5
            item = int(
                rng.choice(n_items, p=popularity) if by_popularity else rng.choice(pool, p=weights)
            )
            if item not in items:
                items.append(item)
        rows += [(user, item, order) for order, item in enumerate(items)]
    frame = pd.DataFrame(rows, columns=["user", "item", "order"])
    last = frame.groupby("user")["order"].transform("max")
    split = np.where(
        frame.order == last, "test", np.where(frame.order == last - 1, "valid", "train")
    )
    return {
        name: sp.csr_matrix(
            (
                np.ones((split == name).sum(), np.float32),
                (frame.user[split == name], frame.item[split == name]),
            ),
            shape=(n_users, n_items),
        )
        for name in ("train", "valid", "test")
    }


def recall_and_popularity(
    scorer, matrices: dict[str, sp.csr_matrix], split: str
) -> tuple[float, float]:
    """Mean Recall@20 on ``split`` (train excluded) and the mean relative popularity of the
    top 20 of the first 500 evaluated users."""
    from crossrec.evaluation.baselines import item_popularity
    from crossrec.metrics.ranking import evaluate_ranking, rank_all_items

    exclude = matrices["train"] + (matrices["valid"] if split == "test" else 0)
    users, metrics = evaluate_ranking(scorer, matrices[split], exclude, ks=(20,))
    popularity = item_popularity(matrices["train"])
    top = rank_all_items(scorer, users[:500], exclude, k=20)
    return float(metrics["recall@20"].mean()), float((popularity / popularity.max())[top].mean())


def main() -> None:
    from crossrec.evaluation.baselines import ItemKNN, MostPopular

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| seed | model | chosen on valid | valid R@20 | test R@20 | mean relative popularity |")
    print("|---|---|---|---|---|---|")
    for seed in [int(s) for s in args.seeds.split(",")]:
        matrices = sparse_split(seed=seed)
        test, pop = recall_and_popularity(MostPopular(matrices["train"]), matrices, "test")
        print(f"| {seed} | MostPop | - | - | {test:.4f} | {pop:.3f} |", flush=True)
        valid = {
            point: recall_and_popularity(ItemKNN(matrices["train"], *point), matrices, "valid")[0]
            for point in NEW_GRID
        }
        for name, grid in (("old grid", OLD_GRID), ("shipped grid", NEW_GRID)):
            best = max(grid, key=lambda point: valid[point])
            test, pop = recall_and_popularity(ItemKNN(matrices["train"], *best), matrices, "test")
            print(
                f"| {seed} | ItemKNN, {name} | neighbours {best[0]}, shrink {best[1]} | "
                f"{valid[best]:.4f} | {test:.4f} | {pop:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
