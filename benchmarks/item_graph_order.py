"""Training step cost with the item graph in item order against the locality order the model
uses on large graphs (``crossrec.models.graph_ops.locality_order``, reverse Cuthill-McKee).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/item_graph_order.py \\
        --data-dir /work/scale-data/project/data --dataset scale_1e6 [--steps 4]

Reads a dataset's ingest and fuse outputs from a Kedro ``data/`` folder (the scale benchmark's
scratch project, or this project's ``data``), builds the finetune defaults' training data
(one CPU thread) and times ``--steps`` training steps after one warm-up, both ways, in one
process: the same data, seed and batches, so the CPU seconds compare side by side.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(data_dir: Path, dataset: str) -> tuple:
    import pandas as pd

    def read(layer: str, name: str):
        return pickle.loads((data_dir / layer / dataset / name).read_bytes())

    inter = pd.read_parquet(data_dir / "02_intermediate" / dataset / "interactions.parquet")
    items = pd.read_parquet(data_dir / "02_intermediate" / dataset / "items.parquet")
    info = json.loads((data_dir / "02_intermediate" / dataset / "dataset_info.json").read_text())
    return (
        inter,
        items,
        info,
        read("05_model_input", "fused_item_features.pkl"),
        read("05_model_input", "modality_graphs.pkl"),
        read("05_model_input", "user_item_graph.pkl"),
    )


def seconds_per_step(module, optimiser, batches, steps: int) -> float:
    """CPU seconds of one training step (batch, forward, backward, optimiser), the mean of
    ``steps`` after one warm-up step."""

    def step() -> None:
        loss = module.batch_loss(next(batches))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    step()
    start = time.process_time()
    for _ in range(steps):
        step()
    return (time.process_time() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import torch
    import yaml

    from crossrec.config import parse_params
    from crossrec.models import graph_ops
    from crossrec.models.bundle import build_recommender
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.data import InteractionDataModule
    from crossrec.models.inputs import build_training_data
    from crossrec.models.module import RecommenderModule

    torch.set_num_threads(1)
    params = yaml.safe_load((ROOT / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    params["trainer"]["cpu_threads"] = 1
    config = parse_params(FinetuneConfig, params, where="finetune")
    data = build_training_data(*load(args.data_dir, args.dataset), params)
    default = graph_ops.LOCALITY_MIN_NODES
    print(f"{args.dataset}: {data.n_items:,} items, {data.train.nnz:,} train pairs, one thread")
    print("| item graph order | CPU s per step | ratio |\n|---|---|---|")
    first = None
    for label, minimum in (("item order", float("inf")), ("locality order", default)):
        graph_ops.LOCALITY_MIN_NODES = minimum
        torch.manual_seed(0)
        model = build_recommender(data, config)
        module = RecommenderModule(model, config, data.train, data.valid)
        optimiser = module.configure_optimizers()
        optimiser = optimiser["optimizer"] if isinstance(optimiser, dict) else optimiser
        batches = iter(InteractionDataModule(data.train, config.data, 0).train_dataloader())
        model.train()
        seconds = seconds_per_step(module, optimiser, batches, args.steps)
        first = first or seconds
        print(f"| {label} | {seconds:.2f} | {first / seconds:.2f}x |", flush=True)
    graph_ops.LOCALITY_MIN_NODES = default


if __name__ == "__main__":
    main()
