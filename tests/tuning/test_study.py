"""Study runner: trial budget, resume, failures, seeded sampling, pruner and sampler factories."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from crossrec.tuning.config import PrunerConfig, SamplerConfig, TuneConfig
from crossrec.tuning.space import suggest
from crossrec.tuning.storage import make_storage, redact, sqlite_path
from crossrec.tuning.study import make_pruner, make_sampler, open_study, run_study


def config(url: str, n_trials: int, **extra) -> TuneConfig:
    return TuneConfig.model_validate(
        {
            "study_name": "unit",
            "storage": {"url": url, "heartbeat_interval_s": None},
            "n_trials": n_trials,
            "sampler": {"n_startup_trials": 3},
            "pruner": {"type": "none"},
            "search_space": {
                "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                "model.fusion.strategy": {"type": "categorical", "choices": ["concat", "gated"]},
            },
            **extra,
        }
    )


def bowl(cfg: TuneConfig):
    def objective(trial):
        values = suggest(trial, cfg.search_space)
        return -abs(values["optim.lr"] - 0.01) + (values["model.fusion.strategy"] == "gated")

    return objective


def test_budget_counts_the_study_and_a_rerun_resumes(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/db/optuna.db"
    cfg = config(url, 4)
    first = run_study(bowl(cfg), cfg, seed=1)
    assert first.trials_run == [0, 1, 2, 3]
    assert run_study(bowl(cfg), cfg, seed=1).trials_run == []  # target already reached
    bigger = config(url, 6)
    assert run_study(bowl(bigger), bigger, seed=1).trials_run == [4, 5]  # resumes to the target
    assert len(optuna.load_study(study_name="unit", storage=url).trials) == 6


def test_interrupted_study_resumes_with_only_the_missing_trials(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    cfg = config(url, 5)
    calls = []

    def interrupted(trial):
        calls.append(trial.number)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the third trial
        return bowl(cfg)(trial)

    with pytest.raises(KeyboardInterrupt):
        run_study(interrupted, cfg, seed=0)
    states = [t.state for t in optuna.load_study(study_name="unit", storage=url).trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]
    resumed = run_study(bowl(cfg), cfg, seed=0)
    assert resumed.trials_run == [3, 4, 5]  # the failed trial does not count against the target
    study = optuna.load_study(study_name="unit", storage=url)
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 5


def test_a_crashing_objective_stops_the_worker_with_its_error(tmp_path: Path):
    cfg = config(f"sqlite:///{tmp_path}/optuna.db", 5)

    def broken(trial):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        run_study(broken, cfg, seed=0)
    trials = optuna.load_study(study_name="unit", storage=cfg.storage.url).trials
    assert [t.state for t in trials] == [TrialState.FAIL]


def test_seeded_sampling_is_reproducible_and_differs_per_trial(tmp_path: Path):
    def params(name: str, seed: int) -> list[dict]:
        cfg = config(f"sqlite:///{tmp_path}/{name}.db", 4)
        run_study(bowl(cfg), cfg, seed=seed)
        study = optuna.load_study(study_name="unit", storage=cfg.storage.url)
        return [t.params for t in study.trials]

    a, b, c = params("a", 7), params("b", 7), params("c", 8)
    assert a == b
    assert a != c
    assert len({p["optim.lr"] for p in a}) == 4


def test_sampler_seed_from_yaml_overrides_the_project_seed():
    sampler = make_sampler(SamplerConfig(seed=3), default_seed=99)
    study = optuna.create_study(sampler=sampler)
    first = study.ask().suggest_float("x", 0, 1)
    again = optuna.create_study(sampler=make_sampler(SamplerConfig(seed=3), default_seed=1))
    assert again.ask().suggest_float("x", 0, 1) == first
    random = make_sampler(SamplerConfig(type="random"), default_seed=0)
    assert isinstance(random._inner, optuna.samplers.RandomSampler)


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("median", optuna.pruners.MedianPruner),
        ("percentile", optuna.pruners.PercentilePruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
        ("none", optuna.pruners.NopPruner),
    ],
)
def test_pruner_factory(kind, cls):
    assert isinstance(make_pruner(PrunerConfig(type=kind)), cls)


def test_median_pruner_prunes_a_trial_worse_than_the_median():
    study = optuna.create_study(
        direction="maximize",
        pruner=make_pruner(PrunerConfig(type="median", n_startup_trials=1, n_warmup_steps=0)),
    )
    good = study.ask()
    good.report(0.9, 0)
    study.tell(good, 0.9)
    bad = study.ask()
    bad.report(0.1, 0)
    assert bad.should_prune()


def test_storage_helpers(tmp_path: Path):
    assert sqlite_path("sqlite:///data/x/optuna.db") == Path("data/x/optuna.db")
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("postgresql+psycopg2://u:p@localhost/db") is None
    assert "secret" not in redact("postgresql+psycopg2://user:secret@localhost:5432/optuna")
    storage = make_storage(f"sqlite:///{tmp_path}/new/dir/optuna.db", timeout_s=5)
    assert (tmp_path / "new" / "dir" / "optuna.db").exists()
    assert storage.engine.url.get_backend_name() == "sqlite"


def test_open_study_joins_an_existing_study(tmp_path: Path):
    cfg = config(f"sqlite:///{tmp_path}/optuna.db", 2)
    first = open_study(cfg, seed=0)
    second = open_study(cfg, seed=0)
    assert first._study_id == second._study_id


def test_joining_a_study_with_the_other_direction_fails(tmp_path: Path):
    from crossrec.config import ConfigError

    url = f"sqlite:///{tmp_path}/optuna.db"
    open_study(config(url, 2), seed=0)
    with pytest.raises(ConfigError, match="created to maximize, but tune.direction is minimize"):
        open_study(config(url, 2, direction="minimize"), seed=0)


def test_a_new_trial_has_a_heartbeat_from_birth(tmp_path: Path):
    """Without it, a worker killed before Optuna's heartbeat thread runs leaves a RUNNING trial
    that is never detected as stale."""
    import time

    storage = make_storage(
        f"sqlite:///{tmp_path}/optuna.db", heartbeat_interval_s=1, grace_period_s=1
    )
    study = optuna.create_study(storage=storage)
    trial = study.ask()  # ask/tell: no heartbeat thread at all
    time.sleep(2.2)
    assert storage._get_stale_trial_ids(study._study_id) == [trial._trial_id]


def test_lightning_ctrl_c_exit_marks_the_trial_failed(tmp_path: Path, monkeypatch):
    """Lightning turns Ctrl-C into sys.exit(1); the trial must be FAIL, not left RUNNING."""
    import crossrec.models.training as training
    from crossrec.tuning.objective import make_finetune_objective

    def interrupted(*args, **kwargs):
        raise SystemExit(1)

    monkeypatch.setattr(training, "train_recommender", interrupted)
    cfg = config(f"sqlite:///{tmp_path}/optuna.db", 3)
    objective = make_finetune_objective(None, {}, cfg, run_root=tmp_path / "runs", seed=0)
    with pytest.raises(KeyboardInterrupt):
        run_study(objective, cfg, seed=0)
    trials = optuna.load_study(study_name="unit", storage=cfg.storage.url).trials
    assert [t.state for t in trials] == [TrialState.FAIL]


def test_enqueued_trials_are_trained_to_the_end_and_sampled_ones_can_be_pruned(
    tmp_path: Path, monkeypatch
):
    """The defaults and their neighbours get no pruning callback; sampled trials do."""
    from types import SimpleNamespace

    import pandas as pd

    import crossrec.models.training as training
    from crossrec.tuning.defaults import neighbour_trials, trial_zero
    from crossrec.tuning.objective import make_finetune_objective

    callbacks: list[list] = []

    def fake_training(data, finetune, run_dir, extra_callbacks, **kwargs):
        callbacks.append(list(extra_callbacks))
        return SimpleNamespace(best_score=0.5, history=pd.DataFrame({"epoch": [0]}), bundle={})

    monkeypatch.setattr(training, "train_recommender", fake_training)
    finetune = {"model": {"fusion": {"strategy": "concat"}}}
    cfg = config(
        f"sqlite:///{tmp_path}/optuna.db",
        4,
        search_space={
            "optim.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
            "model.fusion.strategy": {"type": "categorical", "choices": ["concat", "gated"]},
        },
    )
    first = trial_zero(cfg, finetune)
    objective = make_finetune_objective(None, finetune, cfg, run_root=tmp_path / "r", seed=0)
    run_study(objective, cfg, seed=0, first_trial=first, neighbours=neighbour_trials(cfg, first))
    trials = optuna.load_study(study_name="unit", storage=cfg.storage.url).trials
    assert [t.user_attrs.get("enqueued") for t in trials] == ["defaults", "neighbour", None, None]
    from crossrec.tuning.objective import ReportsOnly

    enqueued = [isinstance(c[0]._trial, ReportsOnly) for c in callbacks]
    assert enqueued == [True, True, False, False]
    proxy = callbacks[0][0]._trial
    assert proxy.should_prune() is False and proxy.number == 0  # reports, never stops
