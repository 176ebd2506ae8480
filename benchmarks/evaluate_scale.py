"""evaluate's ranking at a large catalogue: a seeded user sample per slice, scored in chunks
sized by ``evaluate.score_batch_bytes``; time, CPU time, peak RSS and the 95% interval.

    .venv/bin/python benchmarks/evaluate_scale.py                       # 10^6 items, 10^7 pairs
    .venv/bin/python benchmarks/evaluate_scale.py --sizes 1000,10000 --budgets 64,256
    .venv/bin/python benchmarks/evaluate_scale.py --sizes 1000 --topk partition,threshold

Data: the synthetic split of benchmarks/train_scale.py (built there and cached under
``--cache``: Zipf popularity, 10^7 interactions, 10^6 items, 2 * 10^5 users); its held-out
pairs are cut in two by pair order into valid and test. The scorer is a fixed model of the
field's form: 64-d user and item vectors (seeded) plus the item's log train popularity, so
metrics are not zero. Each (sample size, budget) runs in its own process, through
``crossrec.evaluation.runner.Evaluation`` on the ``valid`` and ``test`` slices (train masked;
train + valid masked for test), one seed. ``--topk`` compares the two ways the ranking selects
each row's top k on a wide catalogue (``crossrec.metrics.ranking._largest``): ``threshold``
(the default path from ``THRESHOLD_MIN_ITEMS`` items on) and ``partition`` (numpy's
introselect over every entry, the path below it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_case(case: dict) -> dict:
    from types import SimpleNamespace

    import numpy as np
    import scipy.sparse as sp
    import torch

    torch.set_num_threads(1)
    from crossrec.config import parse_params
    from crossrec.metrics import ranking

    if case.get("topk") == "partition":
        ranking.THRESHOLD_MIN_ITEMS = sys.maxsize
    from crossrec.evaluation.config import EvaluateConfig
    from crossrec.evaluation.protocol import EvalSplit, aggregate_seeds
    from crossrec.evaluation.runner import Evaluation

    with open(case["data"], "rb") as handle:
        train, held, *_ = pickle.load(handle)
    held = held.tocoo()
    half = np.arange(held.nnz) % 2 == 0
    n_users, n_items = train.shape

    def part(keep):
        return sp.csr_matrix((held.data[keep], (held.row[keep], held.col[keep])), train.shape)

    split = EvalSplit(
        n_users, n_items, train, part(half), part(~half), np.zeros(n_items, dtype=bool)
    )
    gen = torch.Generator().manual_seed(0)
    users = torch.randn(n_users, 64, generator=gen) / 8
    items = torch.randn(n_items, 64, generator=gen) / 8
    bias = torch.log(torch.as_tensor(split.popularity, dtype=torch.float32) + 1.0)
    params = {
        "slices": ["valid", "test"],
        "history_quantiles": [],
        "popularity_buckets": 0,
        "score_batch_bytes": case["budget"],
        "sample_users": {"size": case["size"], "seed": 0},
    }
    cfg = parse_params(EvaluateConfig, params, where="evaluate")
    evaluation = Evaluation(cfg, split, SimpleNamespace(fused_item_features={}))
    start, cpu = time.perf_counter(), time.process_time()
    run = evaluation.run(lambda u: users[u] @ items.T + bias)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    stat = aggregate_seeds([run])
    return {
        "chunk_users": evaluation.chunk_users(),
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "slices": {
            name: {
                "users": stat[name]["recall@20"]["users"],
                "population": stat[name]["recall@20"]["population"],
                "recall@20": stat[name]["recall@20"]["mean"],
                "ci95": stat[name]["recall@20"]["ci95"],
            }
            for name in ("valid", "test")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="users sampled per slice")
    parser.add_argument("--budgets", default="256", help="score_batch_bytes in MiB")
    parser.add_argument("--topk", default="threshold", help="threshold, partition or both")
    parser.add_argument("--cache", default="/tmp/crossrec-train-scale")
    parser.add_argument("--data", default="synthetic-10000000-1000000-200000.pkl")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    path = Path(args.cache) / args.data
    if not path.exists():
        raise SystemExit(f"{path} missing: run benchmarks/train_scale.py --sizes 1e7:1e6 first")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for budget, topk in itertools.product(
            (int(b) for b in args.budgets.split(",")), args.topk.split(",")
        ):
            case = {"data": str(path), "size": size, "budget": budget * 2**20, "topk": topk}
            env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
            done = subprocess.run(
                [sys.executable, __file__, "--case", json.dumps(case)],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode:
                raise SystemExit(done.stderr[-3000:])
            rows.append(
                {"size": size, "budget_mib": budget, "topk": topk}
                | json.loads(done.stdout.split("\n")[-2])
            )
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; 1 torch thread")
    header = ["sample", "budget (MiB)", "top-k", "users/chunk", "wall s (CPU)", "peak RSS (GB)"]
    header += ["valid users", "valid recall@20 [95% CI]", "test users", "test recall@20 [95% CI]"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        cells = [r["size"], r["budget_mib"], r["topk"], r["chunk_users"]]
        cells += [f"{r['wall_s']:.0f} ({r['cpu_s']:.0f})", f"{r['peak_rss_gb']:.2f}"]
        for name in ("valid", "test"):
            s = r["slices"][name]
            cells += [f"{s['users']} of {s['population']}"]
            cells += [f"{s['recall@20']:.4f} [{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}]"]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
