"""Build the sampler / pruner from the YAML and run a study until its trial budget is reached."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from crossrec.config import ConfigError
from crossrec.tuning.config import PrunerConfig, SamplerConfig, StorageConfig, TuneConfig
from crossrec.tuning.storage import TrialBudgetReached, make_storage, redact

logger = logging.getLogger(__name__)


class TrialSeededSampler(BaseSampler):
    """Reseeds a fresh inner sampler with ``seed + trial.number`` before every trial.

    One seeded ``TPESampler`` per process would make concurrent workers draw the *same* random
    start-up configurations (duplicate trials), and a resumed study would repeat its first
    draws. Seeding by trial number keeps a single-process study reproducible while every trial
    of a shared study samples differently. The inner sampler reads the history from the study,
    so nothing is lost by rebuilding it.
    """

    def __init__(self, factory: Callable[[int], BaseSampler], seed: int) -> None:
        self._factory = factory
        self._seed = seed
        self._inner = factory(seed)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._inner = self._factory(self._seed + trial.number)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict) -> dict:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: Any
    ) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


def make_sampler(config: SamplerConfig, default_seed: int) -> BaseSampler:
    """A seeded TPE (or random) sampler, reseeded per trial (see :class:`TrialSeededSampler`)."""
    seed = default_seed if config.seed is None else config.seed
    if config.type == "random":
        return TrialSeededSampler(lambda s: optuna.samplers.RandomSampler(seed=s), seed)

    def tpe(s: int) -> BaseSampler:
        return optuna.samplers.TPESampler(
            seed=s,
            n_startup_trials=config.n_startup_trials,
            multivariate=config.multivariate,
            constant_liar=config.constant_liar,
        )

    return TrialSeededSampler(tpe, seed)


def make_pruner(config: PrunerConfig) -> optuna.pruners.BasePruner:
    """Median / percentile / Hyperband pruner fed each epoch by the Lightning callback."""
    if config.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=config.n_startup_trials,
            n_warmup_steps=config.n_warmup_steps,
            interval_steps=config.interval_steps,
        )
    if config.type == "percentile":
        return optuna.pruners.PercentilePruner(
            config.percentile,
            n_startup_trials=config.n_startup_trials,
            n_warmup_steps=config.n_warmup_steps,
            interval_steps=config.interval_steps,
        )
    if config.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=config.min_resource,
            max_resource=config.max_resource,
            reduction_factor=config.reduction_factor,
        )
    return optuna.pruners.NopPruner()


def open_study(config: TuneConfig, seed: int) -> Study:
    """Create the study or join the existing one (``load_if_exists``), with its trial budget."""
    storage = open_storage(config.storage)
    study = optuna.create_study(
        study_name=config.study_name,
        storage=storage,
        sampler=make_sampler(config.sampler, seed),
        pruner=make_pruner(config.pruner),
        direction=config.direction,
        load_if_exists=True,
    )
    wanted = optuna.study.StudyDirection[config.direction.upper()]
    if study.direction != wanted:
        raise ConfigError(
            f"study {config.study_name!r} in {redact(config.storage.url)} was created to "
            f"{study.direction.name.lower()}, but tune.direction is {config.direction}: "
            "use another study_name or the same direction"
        )
    storage.set_trial_budget(study._study_id, config.n_trials)
    return study


def open_storage(config: StorageConfig):
    return make_storage(
        config.url,
        timeout_s=config.timeout_s,
        heartbeat_interval_s=config.heartbeat_interval_s,
        grace_period_s=config.grace_period_s,
    )


@dataclass
class StudyRun:
    """What one worker did; the study itself (all workers) is in the storage."""

    study_name: str
    storage: str
    trials_run: list[int] = field(default_factory=list)
    seconds: float = 0.0


def enqueue_first_trial(study: Study, params: Mapping[str, Any]) -> bool:
    """Make ``params`` the first trial of a fresh study; a study with trials is left alone.

    See ``BudgetedRDBStorage.enqueue_if_empty`` for why this is exact with concurrent workers.
    Keys missing from ``params`` are sampled as usual (trial 0 sampling with ``seed + 0``).
    """
    storage = study._storage._backend
    trial = storage.enqueue_if_empty(study._study_id, dict(params), {"enqueued": "defaults"})
    if trial is None:
        return False
    logger.info("Trial %d is the defaults: %s", trial.number, dict(params))
    return True


def enqueue_neighbours(study: Study, trials: Sequence[Mapping[str, Any]], budget: int) -> int:
    """Enqueue up to ``budget`` neighbour trials (``tune.enqueue_neighbours``); only the worker
    that enqueued the defaults calls this, so they are enqueued once."""
    chosen = trials[: max(budget, 0)]
    for params in chosen:
        study.enqueue_trial(dict(params), user_attrs={"enqueued": "neighbour"})
    if chosen:
        logger.info(
            "Enqueued %d neighbour trials of the defaults (one key or group each)", len(chosen)
        )
    return len(chosen)


def budget_line(study: Study, config: TuneConfig) -> str:
    """Where the budget stands, in words: trials run (finished or running) and trials enqueued
    but not started are not the same thing (a fresh study with its neighbours enqueued has run
    none)."""
    storage = study._storage._backend
    waiting = storage.get_n_trials(study._study_id, state=(TrialState.WAITING,))
    started = storage.count_active_trials(study._study_id) - waiting
    left = max(config.n_trials - started - waiting, 0)
    return (
        f"{started} of {config.n_trials} trials run or running, {waiting} enqueued to run "
        f"next, {left} left to the sampler"
    )


def run_study(
    objective: Callable[[optuna.Trial], float],
    config: TuneConfig,
    seed: int,
    callbacks: Sequence[Callable[[Study, FrozenTrial], None]] = (),
    first_trial: Mapping[str, Any] | None = None,
    neighbours: Sequence[Mapping[str, Any]] = (),
) -> StudyRun:
    """Run trials until the study holds ``config.n_trials`` non-failed trials (or the timeout).

    Trials are written to the storage as they finish (``optuna-dashboard`` shows them live);
    rerunning after an interruption runs only the missing ones. An objective that raises stops
    this worker with the error; its trial is marked FAIL and does not count against the budget.
    ``first_trial`` (``crossrec.tuning.defaults.trial_zero``) is enqueued into a fresh study,
    followed by ``neighbours`` (``crossrec.tuning.defaults.neighbour_trials``).
    """
    study = open_study(config, seed)
    run = StudyRun(study_name=config.study_name, storage=redact(config.storage.url))
    if first_trial is not None and enqueue_first_trial(study, first_trial):
        # what the budget leaves once the defaults (and any trial another worker has started
        # since) are in; a worker starting in between may still add one sampled trial
        left = config.n_trials - study._storage._backend.count_active_trials(study._study_id)
        enqueue_neighbours(study, neighbours, left)
    logger.info("Study %r on %s: %s", config.study_name, run.storage, budget_line(study, config))

    def record(study: Study, trial: FrozenTrial) -> None:
        run.trials_run.append(trial.number)

    start = time.perf_counter()
    try:
        study.optimize(
            objective,
            n_trials=None,
            timeout=config.timeout_s,
            callbacks=[record, *callbacks],
            gc_after_trial=True,
        )
    except TrialBudgetReached as reached:
        logger.info("Study %r complete: %s", config.study_name, reached)
    run.seconds = time.perf_counter() - start
    return run
