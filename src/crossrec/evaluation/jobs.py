"""Independent training runs of an evaluation, in a pool of worker processes.

Why: every training run uses a fixed number of torch threads (``trainer.cpu_threads``: one on
a 2-core machine), so extra seeds, baseline seeds and grid points trained one after the other
leave the other cores idle. A :class:`Job` is picklable (a module-level function and its
arguments); workers are ``spawn``-ed (torch + fork is unsafe), train, and send the artefact
back pickled to bytes (plain pickle copies tensors instead of passing shared-memory handles).
The parent scores: that needs the split and is cheap. One worker runs the same jobs in order
in this process, so results do not depend on the number of workers.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One training run: ``fn(*args)`` returns its artefact (a bundle, a scorer)."""

    #: names the run in progress lines and errors, e.g. "LightGCN seed 2027"
    label: str
    #: a module-level function (pickled by reference)
    fn: Callable[..., Any]
    args: tuple = ()


class JobError(RuntimeError):
    """A job failed; the message names it, ``__cause__`` is the error (with the worker's
    traceback when it ran in a worker)."""


def resolve_workers(
    value: int | str, n_jobs: int, threads_per_job: int, on_gpu: bool, cores: int | None = None
) -> int:
    """Worker processes for ``n_jobs`` runs: ``auto`` = usable cores // threads per run, never
    more than the runs, and 1 on a GPU (one device, not shared between processes)."""
    if on_gpu:
        if value != "auto" and int(value) > 1:
            logger.info("evaluate.workers %s ignored on CUDA: training runs share one GPU", value)
        return 1
    if value == "auto":
        from crossrec.models.training import usable_cpu_cores

        value = (cores or usable_cpu_cores()) // max(1, threads_per_job)
    return max(1, min(int(value), n_jobs))


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` torch intra-op threads (restored after): scorers trained outside
    Lightning (MF-BPR) then see the same thread count in process and in a worker."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _execute(job: Job, threads: int) -> tuple[Any, float]:
    start = time.perf_counter()
    with torch_threads(threads):
        value = job.fn(*job.args)
    return value, time.perf_counter() - start


def _worker_init() -> None:
    """Worker processes log warnings only: the parent reports progress."""
    logging.basicConfig(level=logging.WARNING)


def _run_in_worker(payload: bytes, threads: int) -> bytes:
    job = pickle.loads(payload)
    return pickle.dumps(_execute(job, threads), protocol=pickle.HIGHEST_PROTOCOL)


class JobPool:
    """Runs lists of jobs on ``workers`` processes (1 = in this process), reusing the same
    processes across :meth:`run` calls (a spawned worker spends seconds importing torch).

    ``total``: jobs expected over every call, for the "k/n" of the progress lines.
    """

    def __init__(self, workers: int, threads: int, desc: str, total: int | None = None):
        self.workers = workers
        self.threads = threads
        self.desc = desc
        self.total = total
        self.done = 0
        self._executor = None

    def __enter__(self) -> JobPool:
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
            )
            logger.info(
                "%s: %s training runs on %d worker processes, %d torch thread(s) each",
                self.desc,
                self.total if self.total is not None else "the",
                self.workers,
                self.threads,
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _finished(self, job: Job, seconds: float) -> None:
        self.done += 1
        total = self.total if self.total is not None else "?"
        logger.info("%s done in %.0f s, %d/%s", job.label, seconds, self.done, total)

    def run(self, jobs: list[Job]) -> list[tuple[Any, float]]:
        """(artefact, training seconds) of every job, in the order of ``jobs``."""
        if self._executor is None:
            out = []
            for job in jobs:
                try:
                    result = _execute(job, self.threads)
                except Exception as error:
                    raise JobError(
                        f"{job.label} failed: {type(error).__name__}: {error}"
                    ) from error
                self._finished(job, result[1])
                out.append(result)
            return out
        return self._run_parallel(jobs)

    def _run_parallel(self, jobs: list[Job]) -> list[tuple[Any, float]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        futures = {}
        for index, job in enumerate(jobs):
            payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
            futures[self._executor.submit(_run_in_worker, payload, self.threads)] = index
        out: list[tuple[Any, float] | None] = [None] * len(jobs)
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = jobs[futures[future]]
                try:
                    result = pickle.loads(future.result())
                except Exception as error:
                    for other in pending:
                        other.cancel()
                    hint = (
                        " (a worker imports the run's functions and classes by module name: "
                        "define them in an importable module, or set evaluate.workers: 1)"
                        if isinstance(error, ModuleNotFoundError)
                        else ""
                    )
                    raise JobError(
                        f"{job.label} failed in a worker process: {type(error).__name__}: "
                        f"{error}{hint}"
                    ) from error
                out[futures[future]] = result
                self._finished(job, result[1])
        return out  # type: ignore[return-value]
