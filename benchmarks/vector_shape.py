"""How hard a set of item vectors is for nearest-neighbour search: local intrinsic dimension
and relative contrast, for the shared datasets' modality vectors and the scale benchmark's
synthetic ones.

A kNN graph at a fixed recall costs what the vectors allow. On vectors of low local intrinsic
dimension (LID) an HNSW or IVF search visits few items per query, and its cost grows about as
n log n; on vectors of high LID the nearest neighbour is barely nearer than the typical one
(relative contrast near 1) and any index at a fixed recall approaches a scan. This script
measures both on samples, so a scale figure can be read against the data it was measured on:

* LID: the maximum-likelihood estimate of Levina and Bickel from each sampled item's k nearest
  distances, ``-1 / mean(log(r_i / r_k))``, median over the sample;
* relative contrast: the root mean squared distance to all items over the distance to the
  nearest one, median over the sample.

Vectors are unit-normalised (the graphs use cosine) and repeated vectors counted once.

    python benchmarks/vector_shape.py --datasets movielens100k_multimodal,lastfm2k_multimodal \\
        --npy /work/scale-data/datasets/scale_1e7/text.npy --subsample 1500
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def distinct_unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit rows of the non-zero vectors, each distinct vector once."""
    x = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1)
    x = x[norms > 0] / norms[norms > 0, None]
    return np.unique(x, axis=0)


def local_shape(x: np.ndarray, k: int = 20, queries: int = 1000, seed: int = 0) -> dict:
    """Median LID and relative contrast of ``queries`` sampled rows of unit vectors ``x``
    against all of ``x`` (exact distances, in blocks of about 128 Mi scores)."""
    if len(x) <= k + 1:
        raise ValueError(f"need more than {k + 1} distinct vectors, got {len(x)}")
    rng = np.random.default_rng(seed)
    block = max(1, min(250, 2**27 // len(x)))
    picked = rng.choice(len(x), min(queries, len(x)), replace=False)
    lid, contrast = [], []
    for start in range(0, len(picked), block):
        rows = picked[start : start + block]
        squared = np.maximum(2.0 - 2.0 * (x[rows] @ x.T), 0.0)
        squared[np.arange(len(rows)), rows] = np.nan  # not its own neighbour
        nearest = np.sqrt(np.sort(np.partition(np.nan_to_num(squared, nan=np.inf), k)[:, :k]))
        nearest = np.maximum(nearest, 1e-12)
        lid.append(-1.0 / np.mean(np.log(nearest / nearest[:, -1:]), axis=1))
        contrast.append(np.sqrt(np.nanmean(squared, axis=1)) / nearest[:, 0])
    lid, contrast = np.concatenate(lid), np.concatenate(contrast)
    return {
        "items": int(len(x)),
        "dims": int(x.shape[1]),
        "lid": float(np.median(lid)),
        "contrast": float(np.median(contrast)),
    }


def dataset_vectors(data_dir: Path, dataset: str) -> dict[str, np.ndarray]:
    """The featurized modality vectors of a dataset in a crossrec project's data folder."""
    import pandas as pd

    path = data_dir / "04_feature" / dataset / "item_features.pkl"
    if not path.is_file():
        raise SystemExit(
            f"{path} not found: run `kedro run --pipelines ingest,featurize_modalities "
            f"--params dataset={dataset}` first"
        )
    out = {}
    for name, feature in pd.read_pickle(path).items():  # {vectors, mask, ...}: the items it has
        vectors = np.asarray(feature["vectors"])
        out[name] = vectors[np.asarray(feature["mask"], dtype=bool)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="", help="comma-separated, from --data-dir")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--npy", nargs="*", default=[], help=".npy files of item vectors")
    parser.add_argument(
        "--subsample",
        type=int,
        default=0,
        help="also each .npy on a seeded sample of this many rows (the shared datasets' size)",
    )
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args(argv)
    sets: list[tuple[str, np.ndarray]] = []
    for dataset in filter(None, args.datasets.split(",")):
        for name, vectors in dataset_vectors(args.data_dir, dataset).items():
            sets.append((f"{dataset}: {name}", vectors))
    rng = np.random.default_rng(0)
    for path in args.npy:
        vectors = np.load(path, mmap_mode="r")
        label = f"{Path(path).parent.name}/{Path(path).name}"
        sets.append((label, vectors))
        if 0 < args.subsample < len(vectors):
            rows = np.sort(rng.choice(len(vectors), args.subsample, replace=False))
            sets.append((f"{label}, {args.subsample:,} sampled", vectors[rows]))
    print(f"| vectors | distinct items | dims | LID (median, k={args.k}) | relative contrast |")
    print("|---|---|---|---|---|")
    for label, vectors in sets:
        shape = local_shape(distinct_unit_rows(vectors), k=args.k, queries=args.queries)
        print(
            f"| {label} | {shape['items']:,} | {shape['dims']} | {shape['lid']:.1f} | "
            f"{shape['contrast']:.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
