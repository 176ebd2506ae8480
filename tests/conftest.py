"""Test-wide settings: offline, no telemetry, real data from ../shared/data (or CROSSREC_DATA_DIR)."""

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
