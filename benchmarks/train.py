"""Training throughput and peak memory: the cached-feature path vs the LLM item encoder
(frozen / LoRA), measured side by side in one run on this machine.

    .venv/bin/python benchmarks/train.py                       # movielens, small subset, CPU
    .venv/bin/python benchmarks/train.py --users 200 --items 400 --epochs 2 --max-text-tokens 48
    .venv/bin/python benchmarks/train.py --variants cached,lora,lora_ckpt

Inputs are the ingest + featurize_modalities artifacts of ``--dataset`` read through the Kedro
catalog (run ``kedro run --pipelines ingest,featurize_modalities --params dataset=<name>``
first). The script keeps the ``--items`` most popular items and the ``--users`` most active
users among them (an LLM epoch over the whole catalogue takes hours on 2 CPU cores), fuses
that subset with ``crossrec.graphs.fuse`` and builds its ``TrainingData`` with
``crossrec.models.inputs.build_training_data``, then trains every variant with
``crossrec.models.training.train_recommender`` — each in its own process, so peak RSS is that
variant's alone. Per variant: train samples (positive pairs) per second over the training
epochs (validation excluded), the epoch and validation wall times, peak RSS and, on CUDA,
``torch.cuda.max_memory_allocated``. Settings come from conf/base/parameters_finetune.yml with
the overrides printed in the table header.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: variant name -> (label, overrides of finetune.model.fusion)
VARIANTS: dict[str, tuple[str, dict]] = {
    "cached": ("cached features (concat, no LLM)", {"strategy": "concat"}),
    "frozen": (
        "LLM frozen (soft-token projectors)",
        {"strategy": "llm", "llm": {"mode": "frozen"}},
    ),
    "lora": ("LLM LoRA (q,k,v,o)", {"strategy": "llm", "llm": {"mode": "lora"}}),
    "lora_ckpt": (
        "LLM LoRA + grad checkpointing",
        {"strategy": "llm", "llm": {"mode": "lora", "gradient_checkpointing": True}},
    ),
    "partial": (
        "LLM top-2 layers",
        {"strategy": "llm", "llm": {"mode": "partial", "top_n_layers": 2}},
    ),
}


def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = (
            deep_merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


# --------------------------------------------------------------------------- parent: data
def load_inputs(dataset: str) -> tuple[dict, dict]:
    """Catalog artifacts (ingest + featurize) and the project parameters of ``dataset``."""
    import numpy as np
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT, runtime_params={"dataset": dataset}) as session:
        context = session.load_context()
        catalog = context.catalog
        names = ("interactions", "items", "dataset_info")
        hint = f"`kedro run --pipelines ingest,featurize_modalities --params dataset={dataset}`"
        missing = [n for n in names if not catalog.exists(n)]
        if missing:
            sys.exit(f"missing artifacts {missing} for {dataset}: run {hint} first")
        inputs = {n: catalog.load(n) for n in names}
        if catalog.exists("item_texts"):  # featurize's texts, the llm strategy's input
            inputs["item_texts"] = catalog.load("item_texts")
        if catalog.exists("item_features"):
            inputs["item_features"] = catalog.load("item_features")
        else:  # the dataset's own matrices, exactly what featurize passes through
            shipped = (
                catalog.load("precomputed_features")
                if catalog.exists("precomputed_features")
                else {}
            )
            if not shipped:
                sys.exit(f"no item_features for {dataset}: run {hint} first")
            print(f"note: item_features missing, using the precomputed matrices {sorted(shipped)}")
            inputs["item_features"] = {
                name: {"vectors": m, "mask": np.ones(len(m), dtype=bool), "source": "precomputed"}
                for name, m in shipped.items()
            }
        return inputs, context.params


def subset(inputs: dict, n_users: int, n_items: int) -> dict:
    """Most popular items, then the most active users among them; indices made contiguous."""
    import numpy as np

    inter = inputs["interactions"]
    train = inter[inter["split"] == "train"]
    items = train["item_idx"].value_counts().index[:n_items].sort_values().to_numpy()
    kept = inter[inter["item_idx"].isin(items)]
    counts = kept[kept["split"] == "train"].groupby("user_idx").size()
    has_valid = set(kept.loc[kept["split"] == "valid", "user_idx"])
    eligible = counts[(counts >= 3) & counts.index.isin(has_valid)].sort_values(ascending=False)
    users = np.sort(eligible.index[:n_users].to_numpy())
    kept = kept[kept["user_idx"].isin(users)].copy()
    item_map = {old: new for new, old in enumerate(items)}
    user_map = {old: new for new, old in enumerate(users)}
    kept["item_idx"] = kept["item_idx"].map(item_map).astype("int64")
    kept["user_idx"] = kept["user_idx"].map(user_map).astype("int64")
    item_rows = inputs["items"].set_index("item_idx").loc[items].reset_index(drop=True)
    item_rows.insert(0, "item_idx", np.arange(len(items), dtype=np.int64))
    features = {}
    for name, entry in inputs["item_features"].items():
        if name.startswith("__"):
            continue
        features[name] = {**entry, "vectors": entry["vectors"][items], "mask": entry["mask"][items]}
    info = {
        **inputs["dataset_info"],
        "n_users": len(users),
        "n_items": len(items),
        "n_interactions": len(kept),
    }
    texts = inputs.get("item_texts")
    return {
        "interactions": kept,
        "items": item_rows,
        "dataset_info": info,
        "item_features": features,
        "item_texts": None if texts is None else [texts[i] for i in items],
    }


def training_data(sub: dict, params: dict):
    """Fuse on the subset (:mod:`crossrec.graphs.fuse`), then the finetune ``TrainingData``
    (:func:`crossrec.models.inputs.build_training_data`, as finetune builds it)."""
    from crossrec.graphs import fuse
    from crossrec.models.inputs import build_training_data

    info, inter = sub["dataset_info"], sub["interactions"]
    config = fuse.parse_fuse_params(params["fuse"])
    fused = fuse.fuse_item_features(sub["item_features"], info, config)
    start = time.perf_counter()
    degrees = fuse.train_item_degrees(inter, int(info["n_items"]))
    graphs = fuse.build_modality_graphs(fused, config, degrees)
    graph_s = time.perf_counter() - start
    ui_graph = fuse.build_user_item_graph(inter, info)
    texts = sub["item_texts"]
    # one TrainingData for every variant: built as for the llm strategy when texts exist, so
    # the llm variants get them (the cached variant ignores them)
    strategy = "llm" if texts is not None else "concat"
    finetune = deep_merge(params["finetune"], {"model": {"fusion": {"strategy": strategy}}})
    data = build_training_data(
        inter, sub["items"], info, fused, graphs, ui_graph, finetune, item_texts=texts
    )
    return data, graph_s


# --------------------------------------------------------------------------- worker
def worker(data_path: Path, config_path: Path) -> None:
    """One variant: train, time the epochs, report peak memory as a RESULT json line."""
    import lightning.pytorch as pl
    import torch

    from crossrec.config import parse_params
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.training import train_recommender

    started = time.perf_counter()
    data = pickle.loads(data_path.read_bytes())
    config = parse_params(
        FinetuneConfig, json.loads(config_path.read_text()), where="benchmarks/train.py"
    )

    class Timer(pl.Callback):
        """Train time: epoch start to its last batch end (no validation, no checkpoints)."""

        def __init__(self) -> None:
            self.train_s, self.val_s, self.samples, self.epochs = 0.0, 0.0, 0, 0
            self.setup_s = None

        def on_train_start(self, trainer, module) -> None:
            self.setup_s = time.perf_counter() - started

        def on_train_epoch_start(self, trainer, module) -> None:
            self._epoch_start = self._last_batch = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self.samples += int(batch["pos"].numel())
            self._last_batch = time.perf_counter()

        def on_train_epoch_end(self, trainer, module) -> None:
            self.train_s += self._last_batch - self._epoch_start
            self.epochs += 1

        def on_validation_epoch_start(self, trainer, module) -> None:
            self._v = time.perf_counter()

        def on_validation_epoch_end(self, trainer, module) -> None:
            self.val_s += time.perf_counter() - self._v

    timer = Timer()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as run_dir:
        result = train_recommender(
            data, config, run_dir=Path(run_dir), extra_callbacks=[timer], enable_progress_bar=False
        )
    history = result.history
    column = "val_recall@20"
    recall = float(history[column].dropna().iloc[-1]) if column in history else float("nan")
    report = {
        "epochs": timer.epochs,
        "samples": timer.samples,
        "train_s": timer.train_s,
        "val_s": timer.val_s,
        "setup_s": timer.setup_s,
        "samples_per_s": timer.samples / max(timer.train_s, 1e-9),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "device": torch.cuda.get_device_name()
        if cuda
        else f"cpu ({torch.get_num_threads()} threads)",
        "recall@20": recall,
        "bundle_params": int(sum(v.numel() for v in result.bundle["state_dict"].values())),
    }
    print("RESULT " + json.dumps(report), flush=True)


# --------------------------------------------------------------------------- parent: run + table
def run_variant(
    name: str, data_path: Path, base: dict, overrides: dict, folder: Path, timeout: int
) -> dict:
    config = deep_merge(base, overrides)
    config = deep_merge(config, {"model": {"fusion": VARIANTS[name][1]}})
    config_path = folder / f"{name}.json"
    config_path.write_text(json.dumps(config))
    cmd = [sys.executable, __file__, "--worker", str(data_path), str(config_path)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    out = json.loads(lines[-1][len("RESULT ") :])
    out["wall_s"] = time.perf_counter() - start
    return out


def fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-text-tokens", type=int, default=32)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--llm", default="smollm2-135m-instruct", help="zoo name or model folder")
    parser.add_argument(
        "--variants", default="cached,frozen,lora", help=f"comma list of {list(VARIANTS)}"
    )
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per variant")
    parser.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")

    inputs, params = load_inputs(args.dataset)
    llm = [v for v in names if VARIANTS[v][1]["strategy"] == "llm"]
    if llm and "item_texts" not in inputs:
        sys.exit(
            f"variants {llm} need the item_texts artifact of {args.dataset}: run "
            f"`kedro run --pipelines featurize_modalities --params dataset={args.dataset}` first"
        )
    sub = subset(inputs, args.users, args.items)
    data, graph_s = training_data(sub, params)
    overrides = {
        "trainer": {
            "max_epochs": args.epochs,
            "min_epochs": args.epochs,
            "patience": 1000,
            "val_ks": [20],
        },
        "data": {"batch_size": args.batch_size, "num_workers": 0},
        "model": {
            "fusion": {
                "llm": {
                    "model": args.llm,
                    "max_text_tokens": args.max_text_tokens,
                    "lora_r": args.lora_r,
                    "lora_alpha": 2 * args.lora_r,
                }
            }
        },
    }
    print(
        f"dataset {args.dataset}: subset {data.n_users} users x {data.n_items} items, "
        f"{data.train.nnz} train / {data.valid.nnz} valid interactions; modalities "
        f"{data.item_features['__order__']}; kNN graphs built in {graph_s:.2f} s"
    )
    print(
        f"finetune params + overrides: epochs={args.epochs}, batch_size={args.batch_size}, "
        f"llm={args.llm}, max_text_tokens={args.max_text_tokens}, lora_r={args.lora_r}; "
        f"each variant in a fresh process\n",
        flush=True,
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data_path = folder / "data.pkl"
        data_path.write_bytes(pickle.dumps(data))
        for name in names:
            print(f"running {name} ...", flush=True)
            results[name] = run_variant(
                name, data_path, params["finetune"], overrides, folder, args.timeout
            )
            print(f"  {json.dumps(results[name])}", flush=True)

    header = (
        "variant",
        "device",
        "samples/s",
        "train s/epoch",
        "val s",
        "setup s",
        "peak RSS MB",
        "CUDA peak MB",
        "val R@20",
    )
    rows = []
    for name in names:
        r = results[name]
        if "error" in r:
            rows.append((VARIANTS[name][0], "error: " + r["error"][:200], *[""] * 7))
            continue
        rows.append(
            (
                VARIANTS[name][0],
                r["device"],
                fmt(r["samples_per_s"], ".1f"),
                fmt(r["train_s"] / max(r["epochs"], 1), ".1f"),
                fmt(r["val_s"], ".1f"),
                fmt(r["setup_s"], ".1f"),
                fmt(r["peak_rss_mb"], ".0f"),
                fmt(r["cuda_peak_mb"], ".0f"),
                fmt(r["recall@20"], ".4f"),
            )
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(
        f"\nsamples = train (user, positive) pairs; val R@20 ranks only the subset's "
        f"{data.n_items} items after {args.epochs} epoch(s): a sanity check, not a quality figure. "
        f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs."
    )


if __name__ == "__main__":
    main()
