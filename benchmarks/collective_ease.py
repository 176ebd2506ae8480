"""Does item content help a linear item-item model on warm items? EASE vs collective EASE.

    .venv/bin/python benchmarks/collective_ease.py --dataset movielens100k_multimodal \
        --l2 250,500 --alpha 0,5,20 --k 10,50

EASE (Steck 2019; crossrec's ``ease`` baseline) fits ``B`` from the train Gram matrix
``XᵀX``. Collective EASE (Jeunen et al., RecSys 2020) adds side information as extra rows of
``X``, i.e. ``alpha * C`` to the Gram matrix; here ``C`` is the mean over the dataset's
modalities of a top-``k`` cosine kNN graph of the fused item vectors (symmetrised, weights
clipped at 0), the same kind of graph FREEDOM's item graph uses. An item without train users
gets a column from ``C`` alone, so cold items are scored from content.

Reads ingest's split and fuse's ``fused_item_features.pkl`` from ``data/`` (run
``kedro run --pipelines ingest,featurize_modalities,fuse --params dataset=<name>`` first) and
scores every point with evaluate's protocol (full ranking, seeded tie order): one table row per
(k, alpha, l2), validation first, so a point can be chosen on validation and read on test.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def content_graph(features: dict, names: list[str], k: int) -> np.ndarray:
    """Mean over modalities of a symmetrised top-k cosine graph (dense, n_items²)."""
    graph = None
    for name in names:
        vectors = np.asarray(features[name]["vectors"], dtype=np.float64)
        sims = np.clip(vectors @ vectors.T, 0.0, None)
        np.fill_diagonal(sims, 0.0)
        if k < len(sims):
            kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1 : k]
            sims = np.where(sims >= kth, sims, 0.0)
            sims = np.maximum(sims, sims.T)
        graph = sims / len(names) if graph is None else graph + sims / len(names)
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--l2", default="250,500")
    parser.add_argument("--alpha", default="0,5,20", help="content weight (0 = plain EASE)")
    parser.add_argument("--k", default="10,50", help="neighbours per item in the content graph")
    args = parser.parse_args()

    import pandas as pd
    import scipy.sparse as sp
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from crossrec.evaluation.baselines import ease_from_gram
    from crossrec.evaluation.protocol import build_split, evaluate_scorer, ranking_slices

    inter = args.data_dir / "02_intermediate" / args.dataset
    fused = args.data_dir / "05_model_input" / args.dataset / "fused_item_features.pkl"
    for path in (inter / "interactions.parquet", fused):
        if not path.exists():
            sys.exit(f"missing {path}: run the ingest, featurize_modalities and fuse pipelines")
    info = json.loads((inter / "dataset_info.json").read_text())
    split = build_split(
        pd.read_parquet(inter / "interactions.parquet"),
        pd.read_parquet(inter / "items.parquet"),
        int(info["n_users"]),
        int(info["n_items"]),
        0,
    )
    slices = ranking_slices(split, ["valid", "test", "test_warm", "test_cold"])
    features = pickle.loads(fused.read_bytes())
    names = list(features["__order__"])
    train = sp.csr_matrix(split.train, dtype=np.float32)
    train.data[:] = 1.0
    gram = (train.T @ train).toarray().astype(np.float64)

    columns = None
    print(f"{args.dataset}: modalities {names}; R@20 / N@20 per slice")
    for k in [int(v) for v in args.k.split(",")]:
        content = content_graph(features, names, k)
        for alpha in [float(v) for v in args.alpha.split(",")]:
            for l2 in [float(v) for v in args.l2.split(",")]:
                start = time.perf_counter()
                weights = torch.as_tensor(ease_from_gram(gram + alpha * content, l2))

                def score(users: torch.Tensor, weights=weights) -> torch.Tensor:
                    return torch.as_tensor(train[users.numpy()].toarray()) @ weights

                runs = evaluate_scorer(score, split, slices, [20], 20, None)
                if columns is None:
                    columns = list(runs)
                    print("| k | alpha | l2 | " + " | ".join(columns) + " | coverage@20 | s |")
                    print("|---" * (len(columns) + 5) + "|")
                cells = [
                    f"{np.mean(runs[c]['metrics']['recall@20']):.4f} / "
                    f"{np.mean(runs[c]['metrics']['ndcg@20']):.4f}"
                    for c in columns
                ]
                coverage = runs.get("test_warm", runs["test"])
                print(
                    f"| {k} | {alpha:g} | {l2:g} | " + " | ".join(cells) + " | "
                    f"{coverage['scalars']['coverage@20']:.3f} | "
                    f"{time.perf_counter() - start:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
