"""A copy of a dataset's fuse outputs whose content is pure noise: does the model ignore it?

    .venv/bin/python benchmarks/noise_content.py --data-dir data --dataset lastfm2k_multimodal \
        --out-dir /tmp/noise      # writes /tmp/noise/{02_intermediate,05_model_input}/<name>_noise
    .venv/bin/python benchmarks/warm_ablation.py --data-dir /tmp/noise \
        --dataset lastfm2k_multimodal_noise --variants no_content,default --paired no_content

The interactions, split and user-item graph are the dataset's own; every modality's vectors are
replaced by Gaussian noise of the same shape (unit norm, same missing-value masks) and the
modality kNN graphs are rebuilt from the noise by fuse's own builder. Content then carries no
information about who likes what, so a model that reads it can at best match the same model
trained without it (``no_content``): a gap measures what the noise costs.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")


def noise_features(features: dict, seed: int) -> dict:
    """The fused features with every modality's vectors replaced by unit-norm Gaussian noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, entry in features.items():
        if name.startswith("__"):
            out[name] = entry
            continue
        vectors = rng.normal(size=entry["vectors"].shape).astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        vectors[~np.asarray(entry["mask"], bool)] = 0.0
        out[name] = {"vectors": vectors, "mask": entry["mask"], "source": "noise"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--dataset", default="lastfm2k_multimodal")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=10, help="neighbours of the noise kNN graphs")
    args = parser.parse_args()

    import pandas as pd

    from crossrec.graphs.config import FuseConfig, KnnConfig
    from crossrec.graphs.fuse import build_modality_graphs, train_item_degrees

    name = f"{args.dataset}_noise"
    source_inter = args.data_dir / "02_intermediate" / args.dataset
    source_input = args.data_dir / "05_model_input" / args.dataset
    inter = args.out_dir / "02_intermediate" / name
    model_input = args.out_dir / "05_model_input" / name
    inter.mkdir(parents=True, exist_ok=True)
    model_input.mkdir(parents=True, exist_ok=True)
    for path in source_inter.iterdir():
        shutil.copy2(path, inter / path.name)
    shutil.copy2(source_input / "user_item_graph.pkl", model_input / "user_item_graph.pkl")
    with (source_input / "fused_item_features.pkl").open("rb") as handle:
        features = noise_features(pickle.load(handle), args.seed)
    interactions = pd.read_parquet(source_inter / "interactions.parquet")
    degrees = train_item_degrees(interactions, len(features[features["__order__"][0]]["mask"]))
    graphs = build_modality_graphs(features, FuseConfig(knn=KnnConfig(k=args.k)), degrees)
    for file, value in (("fused_item_features.pkl", features), ("modality_graphs.pkl", graphs)):
        with (model_input / file).open("wb") as handle:
            pickle.dump(value, handle)
    print(f"wrote {inter} and {model_input}: {features['__order__']} replaced by noise")


if __name__ == "__main__":
    main()
