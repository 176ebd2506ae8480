"""Training cost of the default model at 10^6 and 10^7 interactions: one epoch's time and
peak RSS, on synthetic data, with 1 CPU thread.

    .venv/bin/python benchmarks/train_scale.py                         # 10^6 and 10^7
    .venv/bin/python benchmarks/train_scale.py --sizes 1e6:1e5 --steps 5
    # the same against another checkout's code (e.g. `git archive <commit> src | tar -x -C DIR`):
    .venv/bin/python benchmarks/train_scale.py --before-src DIR/src

Data (built once per size, cached under ``--cache``): Zipf item popularity (exponent 0.9),
user activity Zipf (0.5), ``interactions / --pairs-per-user`` users, 10% of the pairs held out
as validation; two modalities of 64-d unit vectors with random symmetric 10-NN item graphs
(their cost, not their content, is what is measured); the symmetric-normalised user-item graph.
The config is conf/base/parameters_finetune.yml's ``finetune`` (the default model: 128-d IDs +
content, 3 LightGCN layers over the user-item graph, 2 over the item graphs, BPR with 16
uniform negatives) with ``trainer.cpu_threads: 1``.

Each case runs in its own process (peak RSS is its own): the training data, the model, the
optimiser (``configure_optimizers``) and the data module as finetune builds them, then

- loader: one full pass over an epoch's batches (index batches, negatives, tensors), no model;
- step: ``--steps`` training steps (batch, forward, backward, optimiser step) after ``--warmup``
  unmeasured ones, the mean wall time of one;
- epoch = steps per epoch x step (projected from the measured steps: a full epoch at 10^7 takes
  hours on one thread before the change);
- validation: the full-ranking validation of ``--val-users`` validation users, per 1000 users.

Wall times depend on what else runs on the machine (the load average is printed with the
table); the CPU seconds of the process (in brackets) much less, so they are what to compare.
``--variants``: ``before`` (the code at ``--before-src``), ``null`` (data.max_steps_per_epoch
null), ``default``, ``steps=N`` (data.max_steps_per_epoch N).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthetic(n_pairs: int, n_items: int, n_users: int, seed: int = 0):
    """(train, valid, item features, item graphs, user-item graph) as described above."""
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    activity = 1.0 / np.arange(1, n_users + 1) ** 0.5
    draws = int(n_pairs * 1.15)
    users = rng.choice(n_users, size=draws, p=activity / activity.sum())
    items = rng.choice(n_items, size=draws, p=popularity / popularity.sum())
    keys = np.unique(users.astype(np.int64) * n_items + items)
    rng.shuffle(keys)
    keys = keys[:n_pairs]
    users, items = keys // n_items, keys % n_items
    held = n_pairs // 10
    ones = np.ones(n_pairs, np.float32)
    shape = (n_users, n_items)
    train = sp.csr_matrix((ones[held:], (users[held:], items[held:])), shape=shape)
    valid = sp.csr_matrix((ones[:held], (users[:held], items[:held])), shape=shape)

    def normalised(adj):
        adj = sp.csr_matrix(adj, dtype=np.float32)
        degree = np.asarray(adj.sum(axis=1)).ravel()
        inv = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
        scale = sp.diags(inv.astype(np.float32))
        return sp.csr_matrix(scale @ adj @ scale, dtype=np.float32)

    features, graphs = {}, {}
    for name in ("text", "image"):
        vectors = rng.standard_normal((n_items, 64), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        features[name] = {"vectors": vectors, "mask": np.ones(n_items, bool), "source": "synth"}
        rows = np.repeat(np.arange(n_items), 10)
        cols = rng.integers(0, n_items, size=n_items * 10)
        adj = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), (n_items, n_items))
        graphs[name] = normalised(((adj + adj.T) > 0).astype(np.float32))
    features["__order__"] = ["text", "image"]
    user_item = normalised(sp.bmat([[None, train], [train.T, None]], format="csr"))
    return train, valid, features, graphs, user_item


def run_case(case: dict) -> dict:
    """One measurement, in this process (the child)."""
    import numpy as np
    import torch
    import yaml

    torch.set_num_threads(1)
    from crossrec.config import parse_params
    from crossrec.models.bundle import build_recommender
    from crossrec.models.config import DataConfig, FinetuneConfig, TrainerConfig
    from crossrec.models.data import InteractionDataModule
    from crossrec.models.inputs import TrainingData
    from crossrec.models.module import RecommenderModule

    with open(case["data"], "rb") as handle:
        train, valid, features, graphs, user_item = pickle.load(handle)
    data = TrainingData(train.shape[0], train.shape[1], train, valid, features, graphs, user_item)
    params = yaml.safe_load((ROOT / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    params["trainer"]["cpu_threads"] = 1
    for section, schema in (("data", DataConfig), ("trainer", TrainerConfig)):
        for key in set(params[section]) - set(schema.model_fields):  # keys older code lacks
            del params[section][key]
    for key, value in case["data_overrides"].items():
        params["data"][key] = value
    config = parse_params(FinetuneConfig, params, where="finetune")
    torch.manual_seed(0)
    model = build_recommender(data, config)
    module = RecommenderModule(model, config, data.train, data.valid)
    optimiser = module.configure_optimizers()
    optimiser = optimiser["optimizer"] if isinstance(optimiser, dict) else optimiser
    datamodule = InteractionDataModule(data.train, config.data, 0)
    loader = datamodule.train_dataloader()

    start, cpu = time.perf_counter(), time.process_time()
    n_batches = sum(1 for _ in loader)
    loader_s, loader_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    batches = iter(loader)
    model.train()

    def step() -> None:
        loss = module.batch_loss(next(batches))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for _ in range(case["warmup"]):
        step()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(case["steps"]):
        step()
    step_s = (time.perf_counter() - start) / case["steps"]
    step_cpu_s = (time.process_time() - cpu) / case["steps"]
    model.eval()
    rows = np.flatnonzero(np.diff(data.valid.indptr))[: case["val_users"]]
    keep = np.zeros(data.n_users, np.float32)
    keep[rows] = 1.0
    import scipy.sparse as sp

    module.valid_csr = (sp.diags(keep) @ data.valid).tocsr()
    start = time.perf_counter()
    with torch.no_grad():
        module.validation_metrics()
    val_s = time.perf_counter() - start
    return {
        "batch": len(next(iter(loader))["users"]),
        "steps": n_batches,
        "loader_s": loader_s,
        "loader_cpu_s": loader_cpu_s,
        "step_s": step_s,
        "step_cpu_s": step_cpu_s,
        "epoch_s": step_s * n_batches,
        "epoch_cpu_s": step_cpu_s * n_batches,
        "val_per_1000_s": 1000 * val_s / max(len(rows), 1),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1e6:1e5,1e7:1e6", help="interactions:items, ...")
    parser.add_argument("--pairs-per-user", type=int, default=50)
    parser.add_argument("--steps", type=int, default=3, help="measured steps per case")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps first")
    parser.add_argument("--variants", default="before,null,default", help="which of these run")
    parser.add_argument("--val-users", type=int, default=1000)
    parser.add_argument("--cache", default="/tmp/crossrec-train-scale")
    parser.add_argument(
        "--before-src", default=None, help="a src/ folder of other code, run as 'before'"
    )
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child
        print(json.dumps(run_case(json.loads(args.case))))
        return
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes.split(","):
        n_pairs, n_items = (int(float(x)) for x in size.split(":"))
        n_users = n_pairs // args.pairs_per_user
        path = cache / f"synthetic-{n_pairs}-{n_items}-{n_users}.pkl"
        if not path.exists():
            start = time.perf_counter()
            partial = path.with_suffix(".partial")
            with open(partial, "wb") as handle:
                pickle.dump(synthetic(n_pairs, n_items, n_users), handle, protocol=5)
            partial.rename(path)
            print(f"built {path.name} in {time.perf_counter() - start:.0f}s", flush=True)
        variants = {
            "before": ("before (batch 4096)", {}, args.before_src),
            "null": ("max_steps_per_epoch: null", {"max_steps_per_epoch": None}, ROOT / "src"),
            "default": ("default", {}, ROOT / "src"),
        }
        for name in args.variants.split(","):  # steps=N: max_steps_per_epoch N
            if name.startswith("steps="):
                steps = int(name.partition("=")[2])
                variants[name] = (f"max_steps_per_epoch: {steps}", {"max_steps_per_epoch": steps},
                                  ROOT / "src")  # fmt: skip
        chosen = [variants[name] for name in args.variants.split(",")]
        for label, overrides, src in [v for v in chosen if v[2] is not None]:
            case = {"data": str(path), "steps": args.steps, "warmup": args.warmup,
                    "val_users": args.val_users, "data_overrides": overrides}  # fmt: skip
            env = os.environ | {
                "PYTHONPATH": str(src),
                "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
            }
            done = subprocess.run(
                [sys.executable, __file__, "--case", json.dumps(case)],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode:
                print(done.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"case {label} at {size} failed")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            results.append({"interactions": n_pairs, "items": n_items, "users": n_users,
                            "code": label} | row)  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
    header = [
        "interactions",
        "items",
        "users",
        "code",
        "batch",
        "steps/epoch",
        "s/step (CPU)",
        "epoch s (CPU)",
        "loader pass s (CPU)",
        "validation s/1000 users",
        "peak RSS (GB)",
    ]
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; 1 torch thread")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in results:
        cells = [
            f"{r['interactions']:.0e}",
            f"{r['items']:.0e}",
            f"{r['users']:.0e}",
            r["code"],
            r["batch"],
            r["steps"],
            f"{r['step_s']:.1f} ({r['step_cpu_s']:.1f})",
            f"{r['epoch_s']:.0f} ({r['epoch_cpu_s']:.0f})",
            f"{r['loader_s']:.1f} ({r['loader_cpu_s']:.1f})",
            f"{r['val_per_1000_s']:.1f}",
            f"{r['peak_rss_gb']:.2f}",
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
