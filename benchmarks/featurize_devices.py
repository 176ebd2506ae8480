"""Featurizing across processes: is a multi-device text encoding path worth having?

Encodes the same ``--n`` item texts with the packaged MiniLM (``minilm-l6``, the text encoder
of featurize_modalities) four ways and prints one table: wall time from nothing loaded to
every vector in the parent process, items/s, the CPU seconds the work took (on a machine shared
with other jobs wall time follows the share of the cores a path gets, CPU time what it costs),
and the largest difference from the single-process vectors:

* ``single, 1 thread`` / ``single, N threads``: the current path (``TextEncoder.encode``, the
  loop ``encode_modality`` runs, length-grouped batches) in this process;
* ``lightning predict, ddp x N``: ``Trainer(accelerator="cpu", devices=N,
  strategy="ddp_spawn").predict`` over the texts (Lightning's DistributedSampler splits them),
  one thread per process, each rank writing its vectors for the parent to gather;
* ``ray data, N actors``: ``ray.data.from_items(...).map_batches(<encoder actor>,
  compute=ActorPoolStrategy(size=N))``, one CPU per actor, when ``ray`` can be imported
  (``--ray-path`` adds a folder to ``sys.path``, e.g. one that ``pip install --target`` filled).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/featurize_devices.py [--n 2000]
        [--processes 2] [--dataset lastfm2k_multimodal] [--batch-size 64] [--ray-path DIR]

Texts come from the ingested ``items`` of ``--dataset`` (run ingest first); when it has fewer
than ``--n`` items its texts repeat with the item's position appended.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MODEL = "minilm-l6"
MAX_TOKENS = 128


def load_texts(dataset: str, n: int) -> list[str]:
    import pandas as pd
    import yaml

    from crossrec.encoders.config import parse_featurize_params
    from crossrec.encoders.modalities import item_texts

    folder = ROOT / "data/02_intermediate" / dataset
    if not (folder / "items.parquet").exists():
        raise SystemExit(f"{folder}/items.parquet is missing: run `kedro run --pipelines ingest`")
    items = pd.read_parquet(folder / "items.parquet")
    info = json.loads((folder / "dataset_info.json").read_text())
    params = yaml.safe_load((ROOT / "conf/base/parameters_featurize_modalities.yml").read_text())
    texts = item_texts(items, info, parse_featurize_params(params["featurize_modalities"]))
    return [texts[i % len(texts)] + ("" if i < len(texts) else f" {i}") for i in range(n)]


def make_encoder(batch_size: int):
    from crossrec.encoders.text import TextEncoder

    return TextEncoder(MODEL, max_tokens=MAX_TOKENS, batch_size=batch_size, device="cpu")


# ---------------------------------------------------------------------------- single process
LOAD_S: dict[str, float] = {}
#: CPU seconds of the work: this process (single), the spawned ranks (lightning), the actors'
#: own processes (ray: its raylet / GCS / driver-side work not counted)
CPU_S: dict[str, float] = {}


def cpu_now() -> float:
    """CPU seconds of this process plus its waited-for children."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def single(texts: list[str], threads: int, batch_size: int) -> np.ndarray:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    encoder = make_encoder(batch_size)
    encoder.encode(texts[:1])  # loads tokenizer + weights
    LOAD_S["single"] = time.perf_counter() - start
    return encoder.encode(texts)


# ---------------------------------------------------------------------------- lightning
class EncodeModule(pl.LightningModule):
    """The text encoder as a predict step: (positions, vectors) per batch of (position, text)."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.encoder = None

    def setup(self, stage: str) -> None:
        torch.set_num_threads(1)
        self.encoder = make_encoder(self.batch_size)

    def predict_step(self, batch, batch_idx):
        positions = np.asarray([p for p, _ in batch])
        return positions, self.encoder.encode([t for _, t in batch])


class RankWriter(BasePredictionWriter):
    """Each rank saves its (positions, vectors); the parent process gathers them."""

    def __init__(self, folder: str):
        super().__init__(write_interval="epoch")
        self.folder = folder

    def write_on_epoch_end(self, trainer, module, predictions, batch_indices):
        positions = np.concatenate([p for p, _ in predictions])
        vectors = np.concatenate([v for _, v in predictions])
        np.save(f"{self.folder}/pos-{trainer.global_rank}.npy", positions)
        np.save(f"{self.folder}/vec-{trainer.global_rank}.npy", vectors)


def as_rows(rows):
    return rows


def lightning_predict(texts: list[str], processes: int, batch_size: int) -> np.ndarray:
    from torch.utils.data import DataLoader

    with tempfile.TemporaryDirectory() as folder:
        loader = DataLoader(list(enumerate(texts)), batch_size=batch_size * 4, collate_fn=as_rows)
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=processes,
            strategy="ddp_spawn",
            callbacks=[RankWriter(folder)],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.predict(EncodeModule(batch_size), loader, return_predictions=False)
        out = None
        for rank in range(processes):
            positions = np.load(f"{folder}/pos-{rank}.npy")
            vectors = np.load(f"{folder}/vec-{rank}.npy")
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), np.float32)
            out[positions] = vectors  # the sampler pads with repeats: same rows, same vectors
        return out


# ---------------------------------------------------------------------------- ray
def ray_data(texts: list[str], processes: int, batch_size: int) -> tuple[np.ndarray, float]:
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=processes, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - started

    class Encode:
        def __init__(self):
            import torch

            sys.path.insert(0, str(ROOT / "src"))
            torch.set_num_threads(1)
            self.encoder = make_encoder(batch_size)

        def __call__(self, batch):
            vectors = self.encoder.encode(list(batch["text"]))
            n = len(vectors)
            return {
                "pos": batch["pos"],
                "vector": vectors,
                "pid": np.full(n, os.getpid()),
                "cpu": np.full(n, time.process_time()),  # this actor's CPU seconds so far
            }

    try:
        rows = ray.data.from_items([{"pos": i, "text": t} for i, t in enumerate(texts)])
        pool = ray.data.ActorPoolStrategy(size=processes)
        encoded = rows.map_batches(Encode, batch_size=batch_size * 4, compute=pool, num_cpus=1)
        out = np.zeros((len(texts), 0), np.float32)
        cpu: dict[int, float] = {}
        for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
            if out.shape[1] == 0:
                out = np.zeros((len(texts), batch["vector"].shape[1]), np.float32)
            out[batch["pos"]] = batch["vector"]
            for pid, seconds in zip(batch["pid"], batch["cpu"], strict=True):
                cpu[int(pid)] = max(cpu.get(int(pid), 0.0), float(seconds))
        CPU_S["ray"] = sum(cpu.values())
        return out, init_s
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--dataset", default="lastfm2k_multimodal")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ray-path", default=None)
    parser.add_argument("--skip", nargs="*", default=[], help="rows to leave out: single1 ...")
    args = parser.parse_args()
    if args.ray_path:
        sys.path.insert(0, args.ray_path)

    texts = load_texts(args.dataset, args.n)
    import transformers  # noqa: F401 - imported before any row is timed

    n, p = len(texts), args.processes
    print(f"{n} texts of {args.dataset}, {MODEL}, max {MAX_TOKENS} tokens, {os.cpu_count()} CPUs")
    rows: list[tuple[str, float, float, str, str]] = []
    reference = None

    def record(name: str, seconds: float, cpu: float, vectors: np.ndarray, note: str) -> None:
        nonlocal reference
        if reference is None:
            reference = vectors
        diff = f"{np.abs(vectors - reference).max():.1e}"
        rows.append((name, seconds, cpu, diff, note))
        print(f"  {name}: {seconds:.1f} s, {cpu:.1f} CPU s {note}", flush=True)

    runs = [
        ("single1", "single, 1 thread", lambda: single(texts, 1, args.batch_size)),
        ("singlep", f"single, {p} threads", lambda: single(texts, p, args.batch_size)),
        (
            "lightning",
            f"lightning predict, ddp x {p}",
            lambda: lightning_predict(texts, p, args.batch_size),
        ),
    ]
    for key, name, run in runs:
        if key in args.skip:
            continue
        start, cpu = time.perf_counter(), cpu_now()
        vectors = run()
        seconds, cpu = time.perf_counter() - start, cpu_now() - cpu
        load = LOAD_S.pop("single", None)
        record(name, seconds, cpu, vectors, "" if load is None else f"(model load {load:.1f} s)")
    if "ray" not in args.skip:
        try:
            import ray  # noqa: F401
        except ImportError:
            rows.append(
                (f"ray data, {p} actors", float("nan"), float("nan"), "", "ray is not installed")
            )
        else:
            start = time.perf_counter()
            vectors, init_s = ray_data(texts, p, args.batch_size)
            seconds = time.perf_counter() - start
            note = f"(ray.init {init_s:.1f} s; CPU of the actors only)"
            record(f"ray data, {p} actors", seconds, CPU_S.pop("ray"), vectors, note)

    print()
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| path | wall s | items/s | CPU s | CPU ms/item | max abs diff | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, seconds, cpu, diff, note in rows:
        if not np.isfinite(seconds):
            print(f"| {name} | - | - | - | - | | {note} |")
            continue
        print(
            f"| {name} | {seconds:.1f} | {n / seconds:.0f} | {cpu:.1f} | {1000 * cpu / n:.1f} "
            f"| {diff} | {note} |"
        )


if __name__ == "__main__":
    main()
