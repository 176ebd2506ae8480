"""The content trade of warm_ablation variants, read from its ``--out`` JSON (no training).

    .venv/bin/python benchmarks/content_trade.py --dataset movielens100k_multimodal \
        --results ml.json --twin no_content --today content --variants default,gate

For every variant against the no-content twin (the same model trained without content):
Recall / NDCG@20 on test, test_warm and test_cold (seed means; change and paired Wilcoxon p
over users, per-user values averaged over seeds), and Recall@20 of the main slice by the held-out
item's train popularity (fifths of the held-out pairs), with the share of today's tail gain
each variant keeps: ``(variant - twin) / (today - twin)`` on the two least popular fifths.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SLICES = ("test", "test_warm", "test_cold")


def seed_mean(runs: list[dict], slice_name: str, metric: str) -> np.ndarray:
    """Per-user values of a slice averaged over seeds (users aligned across seeds)."""
    return np.mean([np.asarray(r["slices"][slice_name][metric]) for r in runs], axis=0)


def paired_cell(runs: list[dict], twin: list[dict], slice_name: str, metric: str) -> str:
    """``mean (change vs twin, p)``."""
    from crossrec.evaluation.significance import paired_test

    a, b = seed_mean(runs, slice_name, metric), seed_mean(twin, slice_name, metric)
    if runs is twin:
        return f"{a.mean():.4f}"
    test = paired_test(a, b, metric)
    return (
        f"{a.mean():.4f} ({test.mean_diff / max(test.mean_b, 1e-12):+.1%}, p {test.wilcoxon_p:.2g})"
    )


def slice_table(results: dict, names: list[str], twin: str) -> list[str]:
    slices = [s for s in SLICES if s in results[twin][0]["slices"]]
    head = ["variant"] + [f"{s} {m}" for s in slices for m in ("R@20", "N@20")]
    head += ["best:epochs", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        runs = results[name]
        cells = [
            paired_cell(runs, results[twin], s, m) for s in slices for m in ("recall@20", "ndcg@20")
        ]
        epochs = "/".join(f"{r.get('best_epoch', '?')}:{r['epochs']}" for r in runs)
        lines.append("| " + " | ".join([name, *cells, epochs, train_seconds(results, name)]) + " |")
    return lines


def train_seconds(results: dict, name: str, twin: str = "no_content", today: str = "content"):
    """Mean training seconds over the seeds; a mix (two models) whose bundles did not record
    their time is the twin's plus the content model's of the same seed."""
    seconds = []
    for run in results[name]:
        value = float(run.get("train_s", float("nan")))
        if np.isnan(value) and "mix" in run:
            same = [
                r["train_s"]
                for part in (twin, today)
                for r in results.get(part, [])
                if r["seed"] == run["seed"]
            ]
            value = float(sum(same)) if len(same) == 2 else value
        seconds.append(value)
    return f"{np.mean(seconds):.0f}"


def mix_choices(results: dict, names: list[str]) -> list[str]:
    """The (tau, slope, scale, tail slots) each seed's validation chose, for the mix variants."""
    lines = []
    for name in names:
        runs = [r for r in results[name] if "mix" in r]
        if runs:
            chosen = ", ".join(
                f"{r['seed']}: tau {r['mix']['tau']:g}, slope {r['mix']['slope']:g}, "
                f"scale {r['mix']['scale']:g}, slots {r['mix'].get('slots', 0)} "
                f"(twin trained {r.get('twin_epochs', '?')} epochs)"
                for r in runs
            )
            lines.append(f"- {name}, chosen on validation: {chosen}")
    return lines


def popularity_table(
    results: dict, names: list[str], twin: str, today: str, split, n_buckets: int
) -> list[str]:
    from crossrec.evaluation.popularity import bucket_edges, bucket_labels, held_out_pairs

    main = "test_warm" if split.is_cold.any() else "test"
    candidates = ~split.is_cold if main == "test_warm" else None
    pairs = held_out_pairs(split.test, candidates)
    per_item = np.asarray(pairs.sum(axis=0)).ravel()
    edges = bucket_edges(split.popularity, pairs, n_buckets)
    bucket = np.searchsorted(edges, split.popularity, side="right")
    held = np.array([per_item[bucket == b].sum() for b in range(len(edges) + 1)])

    def recall(name: str) -> np.ndarray:
        hits = np.mean([np.asarray(r["item_hits@20"]) for r in results[name]], axis=0)
        return np.array([hits[bucket == b].sum() for b in range(len(held))]) / np.maximum(held, 1)

    base, now = recall(twin), recall(today) if today in results else None
    labels = bucket_labels(edges)
    head = ["variant"] + [
        f"{lab} ({h / held.sum():.0%})" for lab, h in zip(labels, held, strict=True)
    ]
    head += ["tail gain kept"]
    lines = [
        f"{main}: Recall@20 by the held-out item's train interactions (share of held-out pairs)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name in names:
        values = recall(name)
        cells = [
            f"{v:.4f}" if name == twin else f"{v:.4f} ({v / b - 1:+.1%})"
            for v, b in zip(values, base, strict=True)
        ]
        kept = "-"
        if now is not None and name != twin and len(held) >= 2:
            gain = (now[:2] - base[:2]) @ held[:2]
            kept = f"{((values[:2] - base[:2]) @ held[:2]) / gain:.0%}" if gain > 0 else "-"
        lines.append("| " + " | ".join([name, *cells, kept]) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--results", type=Path, required=True, help="warm_ablation --out JSON")
    parser.add_argument("--variants", default=None, help="comma list (default: all in the file)")
    parser.add_argument("--twin", default="no_content")
    parser.add_argument("--today", default="content")
    parser.add_argument("--buckets", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from warm_ablation import load_artifacts

    from crossrec.evaluation.protocol import build_split

    results = json.loads(args.results.read_text())
    names = args.variants.split(",") if args.variants else list(results)
    missing = [n for n in [args.twin, *names] if n not in results]
    if missing:
        sys.exit(f"{args.results} has no runs of {missing}; it has {sorted(results)}")
    seeds = {n: sorted(r["seed"] for r in results[n]) for n in names}
    common = sorted(set.intersection(*(set(s) for s in seeds.values()), set(seeds[args.twin])))
    results = {n: [r for r in runs if r["seed"] in common] for n, runs in results.items()}
    arts = load_artifacts(args.data_dir, args.dataset)
    info = arts["dataset_info"]
    split = build_split(
        arts["interactions"], arts["items"], int(info["n_users"]), int(info["n_items"]), 0
    )
    print(f"{args.dataset}, seeds {common}, against {args.twin}\n")
    print("\n".join(slice_table(results, names, args.twin)))
    print()
    print("\n".join(popularity_table(results, names, args.twin, args.today, split, args.buckets)))
    choices = mix_choices(results, names)
    if choices:
        print("\n" + "\n".join(choices))


if __name__ == "__main__":
    main()
