"""Two tune processes started at once on one SQLite study share its trial budget exactly."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path


def load_worker():
    path = Path(__file__).with_name("tune_worker.py")
    spec = importlib.util.spec_from_file_location("tune_worker", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_processes_share_one_sqlite_study(tmp_path: Path):
    worker = load_worker()
    url = f"sqlite:///{tmp_path}/nested/optuna.db"
    start = time.perf_counter()
    reports = worker.launch(url, "shared", 16, seeds=[0, 0])
    stats = worker.check_shared_study(url, "shared", 16, reports)
    print(f"2 SQLite workers: {stats} in {time.perf_counter() - start:.1f} s")
    assert stats["pruned"] >= 1

