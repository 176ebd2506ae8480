"""optuna-dashboard serves a tune study from its SQLite file (started and stopped here)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from crossrec.tuning.config import TuneConfig
from crossrec.tuning.space import suggest
from crossrec.tuning.study import run_study


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dashboard_command() -> str:
    found = Path(sys.executable).with_name("optuna-dashboard")
    if found.exists():
        return str(found)
    which = shutil.which("optuna-dashboard")
    if which is None:
        pytest.skip("optuna-dashboard is not installed")
    return which


def get_json(url: str, deadline: float) -> dict:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_dashboard_lists_the_study(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    cfg = TuneConfig.model_validate({
        "study_name": "crossrec-dashboard",
        "storage": {"url": url, "heartbeat_interval_s": None},
        "n_trials": 3,
        "search_space": {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
    })
    run_study(lambda trial: suggest(trial, cfg.search_space)["optim.lr"], cfg, seed=0)

    port = free_port()
    server = subprocess.Popen(
        [dashboard_command(), url, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        payload = get_json(f"http://127.0.0.1:{port}/api/studies", time.monotonic() + 60)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    studies = payload["study_summaries"]
    assert [s["study_name"] for s in studies] == ["crossrec-dashboard"]
    assert studies[0]["directions"] == ["maximize"]
    assert server.returncode is not None
