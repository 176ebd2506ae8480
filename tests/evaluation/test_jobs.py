"""evaluate.workers: how many worker processes, its validation, and the job pool's errors."""

from __future__ import annotations

import pytest

from crossrec.config import ConfigError, parse_params
from crossrec.evaluation.config import EvaluateConfig
from crossrec.evaluation.jobs import Job, JobError, JobPool, resolve_workers
from crossrec.evaluation.runner import job_threads

WHERE = "conf/base/parameters_evaluate.yml: evaluate"


@pytest.mark.parametrize(
    "value, n_jobs, threads, on_gpu, cores, expected",
    [
        ("auto", 14, 1, False, 2, 2),  # 2 cores, 1 thread per run
        ("auto", 14, 4, False, 16, 4),
        ("auto", 14, 4, False, 2, 1),  # more threads per run than cores: in process
        ("auto", 1, 1, False, 8, 1),  # never more workers than runs
        ("auto", 14, 1, True, 8, 1),  # CUDA: one GPU, not shared between processes
        (3, 14, 1, True, 8, 1),
        (3, 14, 1, False, 2, 3),  # an explicit count is taken as is (up to the runs)
        (3, 2, 1, False, 2, 2),
        (1, 14, 1, False, 16, 1),
        ("auto", 0, 1, False, 8, 1),
    ],
)
def test_resolve_workers(value, n_jobs, threads, on_gpu, cores, expected) -> None:
    assert resolve_workers(value, n_jobs, threads, on_gpu, cores=cores) == expected


def test_auto_uses_the_usable_cores_and_the_runs_threads(monkeypatch) -> None:
    """auto on the machine: usable cores (affinity) // the trained model's cpu_threads."""
    from crossrec.models import training

    monkeypatch.setattr(training.os, "sched_getaffinity", lambda pid: set(range(8)))
    default = {"config": {}}  # finetune's default cpu_threads auto = min(4, cores // 2) = 4
    assert job_threads(default) == 4
    assert resolve_workers("auto", 10, job_threads(default), False) == 2
    one = {"config": {"trainer": {"cpu_threads": 1}}}
    assert resolve_workers("auto", 10, job_threads(one), False) == 8
    every_core = {"config": {"trainer": {"cpu_threads": None}}}  # torch's default
    assert resolve_workers("auto", 10, job_threads(every_core), False) == 1


@pytest.mark.parametrize("bad", [0, -2, "many", 1.5])
def test_bad_workers_value_names_the_field(bad) -> None:
    with pytest.raises(ConfigError, match=r"workers"):
        parse_params(EvaluateConfig, {"workers": bad}, where=WHERE)


def _fail(message: str) -> None:
    raise ValueError(message)


def test_in_process_failure_names_the_job() -> None:
    jobs = [Job("ok", int, ("3",)), Job("MF-BPR grid {'lr': 0.05} seed 2026", _fail, ("nan",))]
    with JobPool(1, 1, "test") as pool, pytest.raises(JobError) as error:
        pool.run(jobs)
    assert str(error.value) == "MF-BPR grid {'lr': 0.05} seed 2026 failed: ValueError: nan"
    assert isinstance(error.value.__cause__, ValueError)
    assert pool.done == 1


def test_worker_that_cannot_import_the_run_says_how_to_fix_it(monkeypatch) -> None:
    """A function the parent has but a spawned worker cannot import (a module that exists only
    in this process, like a class in a test module or a notebook) fails naming the run and the
    remedy, instead of a bare ModuleNotFoundError."""
    import sys
    import types

    module = types.ModuleType("crossrec_only_in_this_process")

    def train() -> int:
        return 1

    train.__module__ = module.__name__
    train.__qualname__ = "train"
    module.train = train
    monkeypatch.setitem(sys.modules, module.__name__, module)
    jobs = [Job("Custom seed 0", train), Job("Custom seed 1", train)]
    with pytest.raises(JobError) as err, JobPool(workers=2, threads=1, desc="test") as pool:
        pool.run(jobs)
    message = str(err.value)
    assert "seed" in message and "Custom" in message, message
    assert "ModuleNotFoundError" in message and "evaluate.workers: 1" in message, message
