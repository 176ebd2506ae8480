"""Test-wide settings: offline, no telemetry, real data from ../shared/data (or the env var)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


def real_data_dir() -> Path | None:
    """Folder holding the real datasets, or None when this machine has none."""
    candidates = [os.environ.get("CROSSREC_DATA_DIR"), PROJECT_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "movielens100k_multimodal").is_dir():
            return Path(candidate).resolve()
    return None


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real datasets; tests that need them are skipped where they are absent."""
    path = real_data_dir()
    if path is None:
        pytest.skip("real datasets not found (set CROSSREC_DATA_DIR)")
    return path


# --- ingest owner: synthetic multimodal dataset and its ingested tables -----------------------


@pytest.fixture(scope="session")
def synthetic_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generic-adapter dataset folder with real PNG/WAV media (crossrec.data.synthetic)."""
    from crossrec.data.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("raw") / "synthetic", seed=0)


@pytest.fixture(scope="session")
def synthetic_ingested(synthetic_dataset_dir: Path) -> dict:
    """Ingest outputs of the synthetic dataset, keyed like the catalog artifacts.

    Keys: interactions, items, users, dataset_info, precomputed_features, media_report (and
    data_summary). Built by the ingest node functions with the generic adapter and the random
    8:1:1 per-user split (seed 0). Treat as read-only: it is shared by the whole session.
    """
    from crossrec.data.synthetic import synthetic_ingest_params
    from crossrec.pipelines.ingest.nodes import ingest_in_memory

    params = synthetic_ingest_params(synthetic_dataset_dir)
    return ingest_in_memory(params, synthetic_dataset_dir.name, seed=0)


@pytest.fixture(scope="session")
def tiny_finetune_params() -> dict:
    """A finetune block that trains the tiny test datasets in seconds on one CPU thread."""
    return {
        "model": {"embedding_dim": 16},
        "data": {"batch_size": 128, "num_negatives": 4},
        "trainer": {
            "max_epochs": 3,
            "accelerator": "cpu",
            "cpu_threads": 1,
            "val_ks": [5, 10],
            "monitor": "val/recall@10",
            "seed": 0,
        },
    }
