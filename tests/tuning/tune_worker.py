"""One tune worker process for the concurrency tests (SQLite here, PostgreSQL in integration).

Runs ``crossrec.tuning.study.run_study`` -- the same runner the tune node uses -- with a cheap
objective (a noisy bowl over the search space, reported for 3 "epochs" so the pruner acts),
and prints a JSON line with the trial numbers this process ran.

    python tests/tuning/tune_worker.py <storage-url> <study-name> <n-trials> <seed>

Environment: TUNE_WORKER_HEARTBEAT (seconds, default 5), TUNE_WORKER_STEP_SLEEP (seconds per
reported epoch, default 0.05).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna

from crossrec.tuning.config import TuneConfig
from crossrec.tuning.space import suggest
from crossrec.tuning.study import run_study


def config(url: str, study: str, n_trials: int) -> TuneConfig:
    return TuneConfig.model_validate(
        {
            "study_name": study,
            "storage": {
                "url": url,
                "timeout_s": 60,
                "heartbeat_interval_s": int(os.environ.get("TUNE_WORKER_HEARTBEAT", "5")),
            },
            "n_trials": n_trials,
            "pruner": {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
            "sampler": {"n_startup_trials": 4},
            "search_space": {
                "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                "model.embedding_dim": {"type": "int", "low": 16, "high": 128, "step": 16},
                "model.fusion.strategy": {
                    "type": "categorical",
                    "choices": ["concat", "gated", "attention"],
                },
            },
        }
    )


#: Enqueued as trial 0 of a fresh study, as the tune node does with the finetune defaults.
DEFAULTS = {"optim.lr": 1e-3, "model.embedding_dim": 32, "model.fusion.strategy": "concat"}


def objective(cfg: TuneConfig):
    def run(trial: optuna.Trial) -> float:
        values = suggest(trial, cfg.search_space)
        score = -abs(math.log10(values["optim.lr"]) + 2.0)
        score -= abs(values["model.embedding_dim"] - 64) / 64
        score += {"concat": 0.0, "gated": 0.1, "attention": 0.05}[values["model.fusion.strategy"]]
        for epoch in range(3):
            trial.report(score - 0.1 * (2 - epoch), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
            time.sleep(float(os.environ.get("TUNE_WORKER_STEP_SLEEP", "0.05")))
        return score

    return run


def launch(
    url: str, study: str, n_trials: int, seeds: list[int], timeout: float = 240
) -> list[dict]:
    """Start one worker per seed at the same time; wait for all; return their JSON reports."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, url, study, str(n_trials), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        for seed in seeds
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{err[-3000:]}"
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def check_shared_study(url: str, study: str, n_trials: int, reports: list[dict]) -> dict:
    """The study holds exactly ``n_trials`` distinct trials, each run by exactly one worker."""
    trials = optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(n_trials)), numbers
    ran = sorted(n for report in reports for n in report["trials"])
    assert ran == numbers, (ran, numbers)
    assert all(report["trials"] for report in reports), "a worker ran no trial"
    states = [t.state for t in trials]
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert all(state in finished for state in states), states
    enqueued = [t for t in trials if t.user_attrs.get("enqueued") == "defaults"]
    assert [t.number for t in enqueued] == [0], "the defaults were not enqueued exactly once"
    assert enqueued[0].params == DEFAULTS
    params = {tuple(sorted(t.params.items())) for t in trials}
    assert len(params) == n_trials, "two trials sampled the same configuration"
    return {
        "per_worker": [len(r["trials"]) for r in reports],
        "pruned": sum(s == optuna.trial.TrialState.PRUNED for s in states),
        "complete": sum(s == optuna.trial.TrialState.COMPLETE for s in states),
    }


def main(argv: list[str]) -> None:
    url, study, n_trials, seed = argv[1], argv[2], int(argv[3]), int(argv[4])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = config(url, study, n_trials)
    run = run_study(objective(cfg), cfg, seed=seed, first_trial=DEFAULTS)
    print(json.dumps({"trials": run.trials_run, "seconds": run.seconds}))


if __name__ == "__main__":
    main(sys.argv)
