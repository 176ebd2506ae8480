"""Temp files left by killed saves are removed by the next save of the same artifact; a temp
file still being written (recent) is left alone."""

from __future__ import annotations

import os
import time

import pandas as pd
from kedro.io import Version

from crossrec.datasets.atomic import STALE_AFTER_S, AtomicParquetDataset, AtomicPickleDataset


def _age(path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_next_save_removes_stale_temp_files(tmp_path):
    target = tmp_path / "similar_items.parquet"
    stale = tmp_path / ".similar_items.parquet.0123456789ab.tmp"
    live = tmp_path / ".similar_items.parquet.ba9876543210.tmp"
    other = tmp_path / ".other.parquet.0123456789ab.tmp"
    for path in (stale, live, other):
        path.write_bytes(b"PAR1 half")
    _age(stale, STALE_AFTER_S + 60)
    _age(other, STALE_AFTER_S + 60)
    AtomicParquetDataset(filepath=str(target)).save(pd.DataFrame({"a": [1]}))
    assert not stale.exists()
    assert live.exists() and other.exists()  # a save in progress; another artifact's temp
    assert pd.read_parquet(target)["a"].tolist() == [1]


def test_versioned_save_removes_killed_version_folders(tmp_path):
    path = tmp_path / "trained_model.pkl"
    AtomicPickleDataset(filepath=str(path), version=Version(None, None)).save({"v": 1})
    killed = path / "2026-01-01T00.00.00.000Z"
    killed.mkdir()
    temp = killed / ".trained_model.pkl.0123456789ab.tmp"
    temp.write_bytes(b"half")
    _age(temp, STALE_AFTER_S + 60)
    AtomicPickleDataset(filepath=str(path), version=Version(None, None)).save({"v": 2})
    assert not killed.exists()
    assert AtomicPickleDataset(filepath=str(path), version=Version(None, None)).load() == {"v": 2}
