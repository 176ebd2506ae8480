"""An Optuna RDB storage that several processes can share with an exact trial budget.

``study.optimize(n_trials=N)`` counts trials per process: two workers with ``N=10`` run 20, and
a rerun of an interrupted study runs ``N`` more. Here the budget belongs to the *study*: trial
creation checks how many non-failed trials exist and refuses once the target is reached. The
check and the insert are one critical section:

- PostgreSQL / MySQL: Optuna already locks the study row (``SELECT ... FOR UPDATE``) while it
  numbers a new trial; the count runs inside that transaction.
- SQLite has no row locks, so creation is serialised with an ``fcntl`` lock file next to the
  database (SQLite is single-machine anyway). ``connect_args.timeout`` lets the other writes wait
  on SQLite's own lock instead of failing with "database is locked".
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optuna.exceptions import ExperimentalWarning, StorageInternalError
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial, TrialState, create_trial
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

try:  # POSIX only; on other systems SQLite trial creation is not serialised across processes.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

_INIT_ATTEMPTS = 5


@contextlib.contextmanager
def file_lock(path: Path | None) -> Iterator[None]:
    """Exclusive inter-process lock on ``path`` (no-op when None or without fcntl)."""
    if path is None or fcntl is None:
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class TrialBudgetReached(Exception):
    """The study already holds its target number of trials; the worker should stop."""


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other backends or in-memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class StudyNotEmpty(Exception):
    """An enqueue meant for a fresh study found trials already there (rolled back)."""


class BudgetedRDBStorage(RDBStorage):
    """``RDBStorage`` whose trial creation respects a per-study budget (see module docstring)."""

    def __init__(self, url: str, *, lock_path: Path | None = None, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._budgets: dict[int, int] = {}
        self._lock_path = lock_path
        self._only_if_empty = False

    def enqueue_if_empty(
        self, study_id: int, params: dict[str, Any], user_attrs: dict[str, Any]
    ) -> FrozenTrial | None:
        """Enqueue a WAITING trial with fixed ``params`` only when the study holds no trial yet.

        The emptiness check runs in the same critical section as the budget check (file lock on
        SQLite, study row lock elsewhere), so of two workers opening a fresh study exactly one
        enqueues. ``study.enqueue_trial(skip_if_exists=True)`` is not used: its check reads the
        trials outside any lock (two workers could both enqueue) and it would re-enqueue into a
        resumed study whose first trial FAILed. The WAITING trial counts against the budget and
        is turned RUNNING (not created again) when a worker pops it, so it counts once.
        Returns the enqueued trial, or None when the study already had trials.
        """
        template = create_trial(
            state=TrialState.WAITING,
            system_attrs={"fixed_params": params},
            user_attrs=user_attrs,
        )
        self._only_if_empty = True
        try:
            return self._create_new_trial(study_id, template_trial=template)
        except StudyNotEmpty:
            return None
        finally:
            self._only_if_empty = False

    def set_trial_budget(self, study_id: int, n_trials: int | None) -> None:
        """Allow at most ``n_trials`` non-failed trials in the study (None: no limit)."""
        if n_trials is None:
            self._budgets.pop(study_id, None)
        else:
            self._budgets[study_id] = n_trials

    def count_active_trials(self, study_id: int) -> int:
        """Trials that count against the budget: every state but FAIL."""
        states = tuple(s for s in TrialState if s != TrialState.FAIL)
        return self.get_n_trials(study_id, state=states)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Any = None) -> bool:
        changed = super().set_trial_state_values(trial_id, state, values)
        if changed and state == TrialState.RUNNING and self.heartbeat_interval is not None:
            # A popped WAITING (enqueued) trial gets its first heartbeat at once, as a created
            # one does (below): a worker killed before Optuna's heartbeat thread starts would
            # otherwise leave it RUNNING forever, holding a slot of the budget.
            self.record_heartbeat(trial_id)
        return changed

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        with file_lock(self._lock_path):
            return super()._create_new_trial(study_id, template_trial)

    def _get_prepared_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None, session: Any
    ) -> Any:
        # Runs inside Optuna's transaction, after it locked the study row (FOR UPDATE).
        budget = self._budgets.get(study_id)
        if budget is not None and template_trial is None:
            active = (
                session.query(models.TrialModel)
                .filter(models.TrialModel.study_id == study_id)
                .filter(models.TrialModel.state != TrialState.FAIL)
                .count()
            )
            if active >= budget:
                raise TrialBudgetReached(f"study already holds {active}/{budget} trials")
        if self._only_if_empty and template_trial is not None:
            held = (
                session.query(models.TrialModel)
                .filter(models.TrialModel.study_id == study_id)
                .count()
            )
            if held:
                raise StudyNotEmpty(f"study already holds {held} trials")
        trial = super()._get_prepared_new_trial(study_id, template_trial, session)
        if self.heartbeat_interval is not None and template_trial is None:
            # First heartbeat in the same transaction as the trial: Optuna's heartbeat thread
            # starts a moment later, and a worker killed in between would leave a RUNNING trial
            # without heartbeat, which is never detected as stale.
            session.add(models.TrialHeartbeatModel(trial_id=trial.trial_id))
        return trial


def make_storage(
    url: str,
    *,
    timeout_s: float = 60.0,
    heartbeat_interval_s: int | None = 30,
    grace_period_s: int | None = None,
) -> BudgetedRDBStorage:
    """Open (and create) the study database; SQLite gets a busy timeout and a creation lock."""
    db_file = sqlite_path(url)
    engine_kwargs: dict[str, Any] = {}
    lock_path = None
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs["connect_args"] = {"timeout": timeout_s}
        lock_path = db_file.with_name(db_file.name + ".lock")
    else:
        engine_kwargs["pool_pre_ping"] = True
    # Two workers opening a fresh database race to create its tables; SQLite waits on the lock
    # file, other backends retry (the second attempt finds the tables in place).
    for attempt in range(1, _INIT_ATTEMPTS + 1):
        try:
            with file_lock(lock_path), warnings.catch_warnings():
                # heartbeats are "experimental" in Optuna 5 but the documented way to recover
                # trials of killed workers
                warnings.simplefilter("ignore", ExperimentalWarning)
                return BudgetedRDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval_s,
                    grace_period=grace_period_s,
                    lock_path=lock_path,
                )
        except (SQLAlchemyError, StorageInternalError) as err:
            if attempt == _INIT_ATTEMPTS:
                raise
            logger.warning("Opening %s failed (%s); retrying", redact(url), type(err).__name__)
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


def redact(url: str) -> str:
    """The URL with its password hidden, for logs and reports."""
    return make_url(url).render_as_string(hide_password=True)
