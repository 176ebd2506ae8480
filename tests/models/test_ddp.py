"""The default model under DDP: two CPU processes (gloo) train it, and the validation metric
they log (each rank ranks half the users, sums all-reduced) equals a single-process
evaluation of the same weights. 41 users: the ranks' shares differ in size, so a mean of the
per-rank means would not match."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from crossrec.metrics.ranking import evaluate_ranking, mean_metrics
from crossrec.models.bundle import load_recommender
from crossrec.models.config import FinetuneConfig
from crossrec.models.module import rank_share
from crossrec.models.training import train_recommender

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def data41():
    sys.path.insert(0, str(HERE))
    from conftest import make_tiny_data

    return make_tiny_data(n_users=41)


def test_rank_shares_hold_every_validation_user_once(data41):
    shares = [rank_share(data41.valid, rank, 3) for rank in range(3)]
    users = [set(np.flatnonzero(np.diff(s.indptr) > 0)) for s in shares]
    assert sorted(len(u) for u in users) == [13, 14, 14]
    assert set.union(*users) == set(range(41)) and sum(map(len, users)) == 41
    assert (sum(shares) != data41.valid).nnz == 0  # each user's held-out items, unchanged


SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {here!r})
    import torch
    from conftest import make_tiny_data
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.training import train_recommender

    if __name__ == "__main__":
        config = FinetuneConfig.model_validate({config!r})
        result = train_recommender(make_tiny_data(n_users=41), config, run_dir={run_dir!r},
                                   enable_progress_bar=False)
        if os.environ.get("LOCAL_RANK", "0") == "0":
            torch.save(result.bundle, {out!r} + "/bundle.pt")
            with open({out!r} + "/result.json", "w") as f:
                json.dump({{"best_score": result.best_score}}, f)
    """
)


def _config(strategy: str) -> FinetuneConfig:
    """The default model (concat fusion, LightGCN + item-graph propagation); a low lr so the
    metrics are not all 1.0 on the tiny data."""
    return FinetuneConfig.model_validate(
        {
            "model": {"content_mix": {"kind": "none"}},  # one model: its logged metrics
            "data": {"batch_size": 64},
            "optim": {"lr": 0.001},
            "trainer": {
                "max_epochs": 2,
                "seed": 0,
                "cpu_threads": 1,
                "accelerator": "cpu",
                "devices": 2,
                "strategy": strategy,
                "val_ks": [5, 10, 20],
            },
        }
    )


def _check_logged_equals_single_process(bundle: dict, best_score: float, data) -> None:
    """The best epoch's logged metrics == evaluating the bundle's (best) weights in-process."""
    assert bundle["history"], "no validation epochs recorded"
    model = load_recommender(bundle, data)
    _, per_user = evaluate_ranking(model.score_users, data.valid, data.train, ks=[5, 10, 20])
    single = mean_metrics(per_user)
    history = {row["epoch"]: row for row in bundle["history"]}
    best_epoch = max(history, key=lambda e: (history[e]["val/recall@20"], -e))
    logged = history[best_epoch]
    assert 0.0 < single["recall@5"] < 1.0  # a metric that can tell models apart
    for name, value in single.items():
        assert logged[f"val/{name}"] == pytest.approx(value, abs=1e-6), name
    assert best_score == pytest.approx(single["recall@20"], abs=1e-6)


@pytest.mark.slow
def test_ddp_two_cpu_processes(data41, tmp_path):
    """strategy: ddp re-launches the script per rank (how `kedro run` runs under DDP)."""
    script = tmp_path / "train_ddp.py"
    script.write_text(
        SCRIPT.format(
            here=str(HERE),
            config=_config("ddp").model_dump(mode="json"),
            run_dir=str(tmp_path / "run"),
            out=str(tmp_path),
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    stderr = proc.stderr.decode()
    assert "Starting with 2 processes" in stderr
    assert "is_contiguous" not in stderr
    bundle = torch.load(tmp_path / "bundle.pt", weights_only=False)
    best = json.loads((tmp_path / "result.json").read_text())["best_score"]
    assert [row["epoch"] for row in bundle["history"]] == [0, 1]
    _check_logged_equals_single_process(bundle, best, data41)


@pytest.mark.slow
def test_ddp_spawn_two_cpu_processes(data41, tmp_path):
    """ddp_spawn trains in child processes; history and best weights come back through the
    checkpoints."""
    result = train_recommender(
        data41, _config("ddp_spawn"), run_dir=tmp_path, enable_progress_bar=False
    )
    assert [row["epoch"] for row in result.bundle["history"]] == [0, 1]
    assert np.isfinite(result.best_score)
    _check_logged_equals_single_process(result.bundle, result.best_score, data41)
