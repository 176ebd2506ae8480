"""Two tune processes started at once on one SQLite study share its trial budget exactly."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest


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



def test_trial_of_a_killed_worker_is_replaced_after_its_heartbeat_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import os
    import signal
    import subprocess
    import sys

    import optuna
    from optuna.trial import TrialState

    worker = load_worker()
    url = f"sqlite:///{tmp_path}/optuna.db"
    env = {**os.environ, "TUNE_WORKER_HEARTBEAT": "1", "TUNE_WORKER_STEP_SLEEP": "30",
           "PYTHONWARNINGS": "ignore"}
    slow = subprocess.Popen([sys.executable, worker.__file__, url, "killed", "3", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:   # kill it as soon as its first trial exists
            try:
                study = optuna.load_study(study_name="killed", storage=url)
                if study.trials and study.trials[0].state == TrialState.RUNNING:
                    break
            except KeyError:
                pass
            time.sleep(0.3)
        else:
            raise AssertionError("the slow worker never started a trial")
    finally:
        slow.send_signal(signal.SIGKILL)
        slow.wait()
    time.sleep(3)   # heartbeat 1 s -> grace period 2 s
    monkeypatch.setenv("TUNE_WORKER_HEARTBEAT", "1")   # the new worker: grace period 2 s
    reports = worker.launch(url, "killed", 3, seeds=[0])
    trials = optuna.load_study(study_name="killed", storage=url).trials
    assert trials[0].state == TrialState.FAIL
    assert reports[0]["trials"] == [1, 2, 3]
    assert sum(t.state != TrialState.FAIL for t in trials) == 3
