"""Users without history, with the power to tell the attribute models from popularity.

    .venv/bin/python benchmarks/cold_users.py                      # 3 holdout draws, share 0.2
    .venv/bin/python benchmarks/cold_users.py --seeds 2026 --share 0.05
    .venv/bin/python benchmarks/cold_users.py --recommender        # + crossrec with / without
        # the user-attributes modality (warm users paired, cold users from the attribute part)
        # and the attributes-as-words query tower on the model without it

Reads ingest's tables of ``--dataset`` from ``data/02_intermediate`` (no Kedro) and, for each
holdout seed, re-splits the interactions as ingest does with ``seed = <holdout seed>`` and
``split.cold_users.share = --share`` (the dataset's other split settings from
conf/base/parameters_ingest.yml), so each draw holds out other users. Every attribute model is
chosen on that draw's VALID cold users only and scored once on its test cold users (every item
ranked, evaluate's ranking code and tie order). The per-user values of all draws are pooled
(a user drawn twice counts twice) and each row is tested against MostPop and group popularity
with a two-sided paired Wilcoxon test.

With ``--recommender`` every draw also trains the finetune defaults (1 CPU thread, the fuse
artifacts of ``data/05_model_input``, the user-item graph rebuilt from the draw's train split)
with and without ``crossrec.models.user_attributes``: its test users (warm) are paired between
the two, and its cold users are scored from the attribute part alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def load_tables(data_dir: Path, dataset: str) -> dict:
    import pandas as pd

    folder = data_dir / "02_intermediate" / dataset
    missing = [
        name
        for name in ("interactions.parquet", "items.parquet", "users.parquet", "dataset_info.json")
        if not (folder / name).exists()
    ]
    if missing:
        sys.exit(f"missing {missing} in {folder}: run `kedro run --pipelines ingest` first")
    return {
        "interactions": pd.read_parquet(folder / "interactions.parquet"),
        "items": pd.read_parquet(folder / "items.parquet"),
        "users": pd.read_parquet(folder / "users.parquet"),
        "info": json.loads((folder / "dataset_info.json").read_text()),
    }


def resplit(tables: dict, dataset: str, seed: int, share: float):
    """Interactions and items as ingest would split them with this seed and cold-user share."""
    import numpy as np
    import yaml

    from crossrec.data.ingest import parse_ingest_params
    from crossrec.data.splits import assign_splits

    params = yaml.safe_load((ROOT / "conf/base/parameters_ingest.yml").read_text())["ingest"]
    spec = parse_ingest_params(params).resolve(dataset).split
    strategy = "random" if spec.strategy == "auto" else spec.strategy
    frame = tables["interactions"]
    labels, cold = assign_splits(
        frame,
        strategy,
        ratios=spec.ratios,
        min_user_interactions=spec.min_user_interactions,
        cold_share=spec.cold_items.share,
        cold_valid_fraction=spec.cold_items.valid_fraction,
        seed=seed,
        cold_user_share=share,
        cold_user_valid_fraction=spec.cold_users.valid_fraction,
    )
    interactions = frame.assign(split=labels.astype(str))
    items = tables["items"].copy()
    items["is_cold"] = np.isin(items["item_idx"].to_numpy(), cold)
    return interactions, items


def pooled_table(runs: list[dict], rows: list[str], k: int) -> list[str]:
    """Markdown rows: mean Recall / NDCG@k over every pooled cold user, p against MostPop and
    against group popularity."""
    import numpy as np

    from crossrec.evaluation.significance import paired_test

    pooled = {
        row: {m: np.concatenate([r[row][m] for r in runs]) for m in (f"recall@{k}", f"ndcg@{k}")}
        for row in rows
        if all(row in r for r in runs)
    }
    out = [
        f"| lists from | Recall@{k} | NDCG@{k} | R vs MostPop | p | N p | R vs group pop. | p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    recall, ndcg = f"recall@{k}", f"ndcg@{k}"
    for row, values in pooled.items():
        cells = [row, f"{values[recall].mean():.4f}", f"{values[ndcg].mean():.4f}"]
        for base in ("mostpop", "group_popularity"):
            if row == base or base not in pooled:
                cells += ["", ""] if base == "group_popularity" else ["", "", ""]
                continue
            test = paired_test(values[recall], pooled[base][recall], recall)
            cells += [f"{test.mean_diff:+.4f}", f"{test.wilcoxon_p:.2g}"]
            if base == "mostpop":
                cells.append(f"{paired_test(values[ndcg], pooled[base][ndcg]).wilcoxon_p:.2g}")
        out.append("| " + " | ".join(cells) + " |")
    return out


def print_tables(results: list[dict], label: str) -> None:
    """The pooled cold-user table (and the warm one when the draws trained the model)."""
    import numpy as np

    runs = [
        {row: {m: np.asarray(v) for m, v in values.items()} for row, values in r["cold"].items()}
        for r in results
    ]
    rows = [row for row in runs[0] if all(row in r for r in runs)]
    n = sum(len(r["mostpop"]["recall@20"]) for r in runs)
    print(f"\n{label}, {n} test cold users pooled over {len(runs)} draws")
    print("\n".join(pooled_table(runs, rows, 20)))
    warm = [
        {name: {m: np.asarray(v) for m, v in values.items()} for name, values in r["warm"].items()}
        for r in results
        if r.get("warm")
    ]
    if warm and len(warm) == len(results):
        from _cold_users_model import warm_table

        print("\n".join(warm_table(warm)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--seeds", default="2026,2027,2028", help="holdout (ingest split) seeds")
    parser.add_argument("--share", type=float, default=0.2, help="share of users held out whole")
    parser.add_argument("--recommender", action="store_true")
    parser.add_argument("--tower", action="store_true", help="with --recommender: the query tower")
    parser.add_argument("--id-dropout", type=float, default=0.5)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None, help="per-user values (JSON)")
    parser.add_argument(
        "--pool",
        nargs="*",
        type=Path,
        default=None,
        help="print the tables of earlier --out files pooled (no runs): draws run in parallel",
    )
    args = parser.parse_args()
    if args.pool:
        results = [r for path in args.pool for r in json.loads(path.read_text())]
        print_tables(results, f"{args.dataset}: draws {[r['seed'] for r in results]}")
        return

    import logging

    import numpy as np

    from crossrec.data.users import user_tokens, user_words
    from crossrec.evaluation.cold_users import attribute_runs
    from crossrec.evaluation.protocol import build_split

    logging.basicConfig(level=logging.WARNING)
    tables = load_tables(args.data_dir, args.dataset)
    n_users, n_items = int(tables["info"]["n_users"]), int(tables["info"]["n_items"])
    tokens = user_tokens(tables["users"], n_users)
    words = user_words(tables["users"], n_users)
    results = []
    start_all = time.perf_counter()
    for seed in [int(s) for s in args.seeds.split(",")]:
        start = time.perf_counter()
        interactions, items = resplit(tables, args.dataset, seed, args.share)
        split = build_split(interactions, items, n_users, n_items, 0)
        run, chosen = attribute_runs(split, tokens, words, k=20)
        warm = {}
        if args.recommender:
            from _cold_users_model import recommender_runs

            extra, warm, note = recommender_runs(
                interactions,
                items,
                tables,
                split,
                words,
                seed,
                args.max_epochs,
                args.tower,
                args.id_dropout,
                args.data_dir,
            )
            run.update(extra)
            chosen.update(note)
        results.append(
            {
                "seed": seed,
                "share": args.share,
                "chosen": chosen,
                "cold": {
                    r: {m: np.asarray(v).tolist() for m, v in x.items()} for r, x in run.items()
                },
                "warm": {
                    r: {m: np.asarray(v).tolist() for m, v in x.items()} for r, x in warm.items()
                },
            }
        )
        print(
            f"seed {seed}: {int(split.cold_valid.getnnz(axis=1).astype(bool).sum())} valid / "
            f"{len(run['mostpop']['recall@20'])} test cold users, chosen on valid: "
            f"{json.dumps(chosen)} ({time.perf_counter() - start:.0f}s)",
            flush=True,
        )
        if args.out:
            args.out.write_text(json.dumps(results))
    print(f"({time.perf_counter() - start_all:.0f}s)")
    print_tables(
        results, f"{args.dataset}: share {args.share} of users held out whole, seeds {args.seeds}"
    )


if __name__ == "__main__":
    main()
