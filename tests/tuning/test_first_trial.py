"""tune.enqueue_defaults: a fresh study's trial 0 is the finetune block's current values."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from crossrec.config import ConfigError
from crossrec.tuning.config import TuneConfig, parse_tune_config
from crossrec.tuning.defaults import (
    default_trial_params,
    fit_to_spec,
    neighbour_trials,
    trial_zero,
)
from crossrec.tuning.objective import suggest_trial
from crossrec.tuning.space import CategoricalParam, FloatParam, IntParam
from crossrec.tuning.study import enqueue_first_trial, open_study, run_study

#: A finetune block as in parameters_finetune.yml; data.num_negatives is absent (schema default).
FINETUNE: dict[str, Any] = {
    "model": {"embedding_dim": 64, "fusion": {"strategy": "concat"}},
    "optim": {"lr": 5e-3},
    "loss": {"kind": "bpr"},
    "trainer": {"max_epochs": 3},
}

LLM_SPACE = {
    "model.fusion.llm.mode": {"type": "categorical", "choices": ["frozen", "lora"]},
    "optim.llm_lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
}


def tune(url: str, n_trials: int, **extra: Any) -> dict[str, Any]:
    return {
        "study_name": "unit",
        "storage": {"url": url, "heartbeat_interval_s": None},
        "n_trials": n_trials,
        "sampler": {"n_startup_trials": 3},
        "pruner": {"type": "none"},
        "fixed": {"trainer.max_epochs": 2},
        "search_space": {
            "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
            "model.embedding_dim": {"type": "int", "low": 32, "high": 128, "step": 32},
            "model.fusion.strategy": {"type": "categorical", "choices": ["concat", "gated"]},
            "data.num_negatives": {"type": "int", "low": 1, "high": 32, "log": True},
        },
        **extra,
    }


def config(url: str, n_trials: int, finetune: dict = FINETUNE, **extra: Any) -> TuneConfig:
    return parse_tune_config(tune(url, n_trials, **extra), finetune)


def fake_objective(cfg: TuneConfig, finetune: dict = FINETUNE):
    """Scores a function of the params; no training."""

    def objective(trial: optuna.Trial) -> float:
        values = suggest_trial(trial, cfg, finetune)
        return -abs(values["optim.lr"] - 0.01) + values["model.embedding_dim"] / 1000

    return objective


def load(cfg: TuneConfig) -> optuna.Study:
    return optuna.load_study(study_name=cfg.study_name, storage=cfg.storage.url)


def test_fresh_study_runs_the_defaults_first_and_counts_them_once(tmp_path: Path):
    cfg = config(f"sqlite:///{tmp_path}/optuna.db", 3)
    assert cfg.enqueue_defaults
    run = run_study(fake_objective(cfg), cfg, seed=0, first_trial=trial_zero(cfg, FINETUNE))
    trials = load(cfg).trials
    assert run.trials_run == [0, 1, 2] and len(trials) == 3
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # data.num_negatives is not in the YAML: its FinetuneConfig default (16) is enqueued
    defaults = {
        "optim.lr": 5e-3,
        "model.embedding_dim": 64,
        "model.fusion.strategy": "concat",
        "data.num_negatives": 16,
    }
    assert trials[0].params == defaults and trials[0].user_attrs["enqueued"] == "defaults"
    assert all("enqueued" not in t.user_attrs for t in trials[1:])
    assert all(t.params != defaults for t in trials[1:])
    assert load(cfg).best_value >= trials[0].value


def test_fixed_values_are_what_the_defaults_trial_sees(tmp_path: Path):
    cfg = config(
        f"sqlite:///{tmp_path}/o.db",
        2,
        fixed={"optim.weight_decay": 1e-5},
        search_space={
            "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1},
            "model.embedding_dim": {"type": "int", "low": 8, "high": 64},
        },
    )
    finetune = {**FINETUNE, "model": {"embedding_dim": 48}}
    assert default_trial_params(cfg, finetune) == (
        {"optim.lr": 5e-3, "model.embedding_dim": 48},
        {},
    )


def test_out_of_range_default_is_sampled_and_logged(tmp_path: Path, caplog):
    finetune = {**FINETUNE, "optim": {"lr": 0.5}}
    cfg = config(f"sqlite:///{tmp_path}/optuna.db", 2, finetune=finetune)
    with caplog.at_level(logging.WARNING, logger="crossrec.tuning.defaults"):
        first = trial_zero(cfg, finetune)
    assert "optim.lr" not in first and first["model.embedding_dim"] == 64
    assert "optim.lr is sampled instead of enqueued: 0.5 is outside [0.0001, 0.1]" in caplog.text
    run_study(fake_objective(cfg, finetune), cfg, seed=0, first_trial=first)
    trial0 = load(cfg).trials[0]
    assert trial0.user_attrs["enqueued"] == "defaults"
    assert 1e-4 <= trial0.params["optim.lr"] <= 1e-1  # sampled within the space
    assert trial0.params["model.embedding_dim"] == 64


def test_resumed_study_does_not_enqueue_again(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    cfg = config(url, 2)
    run_study(fake_objective(cfg), cfg, seed=0, first_trial=trial_zero(cfg, FINETUNE))
    bigger = config(url, 4)
    run = run_study(
        fake_objective(bigger), bigger, seed=0, first_trial=trial_zero(bigger, FINETUNE)
    )
    trials = load(bigger).trials
    assert run.trials_run == [2, 3] and len(trials) == 4
    assert [t.number for t in trials if "enqueued" in t.user_attrs] == [0]


def test_failed_defaults_trial_is_not_enqueued_again(tmp_path: Path):
    cfg = config(f"sqlite:///{tmp_path}/optuna.db", 2)

    def broken(trial):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_study(broken, cfg, seed=0, first_trial=trial_zero(cfg, FINETUNE))
    run_study(fake_objective(cfg), cfg, seed=0, first_trial=trial_zero(cfg, FINETUNE))
    states = [t.state for t in load(cfg).trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert [t.number for t in load(cfg).trials if "enqueued" in t.user_attrs] == [0]


def test_concurrent_workers_on_a_fresh_study_enqueue_once(tmp_path: Path):
    cfg = config(f"sqlite:///{tmp_path}/optuna.db", 3)
    studies = [open_study(cfg, seed=0) for _ in range(4)]  # one storage (engine) per worker
    barrier = threading.Barrier(len(studies))
    enqueued: list[bool] = []

    def worker(study: optuna.Study) -> None:
        barrier.wait()
        enqueued.append(enqueue_first_trial(study, {"optim.lr": 5e-3}))

    threads = [threading.Thread(target=worker, args=(s,)) for s in studies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(enqueued) == [False, False, False, True]
    assert [t.state for t in load(cfg).trials] == [TrialState.WAITING]


def test_other_trials_keep_their_per_trial_seeds(tmp_path: Path):
    def params(name: str, seed: int) -> list[dict]:
        cfg = config(f"sqlite:///{tmp_path}/{name}.db", 4)
        run_study(fake_objective(cfg), cfg, seed=seed, first_trial=trial_zero(cfg, FINETUNE))
        return [t.params for t in load(cfg).trials]

    a, b, c = params("a", 7), params("b", 7), params("c", 8)
    assert a == b and a[0] == c[0]  # the defaults do not depend on the seed
    assert a[1:] != c[1:]
    assert len({p["optim.lr"] for p in a}) == 4


def test_enqueue_defaults_false_samples_every_trial(tmp_path: Path):
    cfg = config(f"sqlite:///{tmp_path}/optuna.db", 2, enqueue_defaults=False)
    assert trial_zero(cfg, FINETUNE) is None
    run_study(fake_objective(cfg), cfg, seed=0, first_trial=trial_zero(cfg, FINETUNE))
    trials = load(cfg).trials
    assert len(trials) == 2 and all("enqueued" not in t.user_attrs for t in trials)
    assert trials[0].params["optim.lr"] != 5e-3


def test_bad_enqueue_defaults_type_fails_naming_it(tmp_path: Path):
    with pytest.raises(ConfigError, match="enqueue_defaults"):
        config(f"sqlite:///{tmp_path}/optuna.db", 2, enqueue_defaults="sometimes")


def test_llm_space_is_enqueued_only_when_the_default_strategy_is_llm(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    llm_finetune = {
        **FINETUNE,
        "model": {"fusion": {"strategy": "llm", "llm": {"mode": "lora"}}},
        "optim": {"lr": 5e-3, "llm_lr": 1e-4},
    }
    space = {
        "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "model.fusion.strategy": {"type": "categorical", "choices": ["concat", "llm"]},
    }
    cfg = config(url, 2, finetune=llm_finetune, search_space=space, llm_search_space=LLM_SPACE)
    assert default_trial_params(cfg, llm_finetune) == (
        {
            "optim.lr": 5e-3,
            "model.fusion.strategy": "llm",
            "model.fusion.llm.mode": "lora",
            "optim.llm_lr": 1e-4,
        },
        {},
    )
    cfg = config(url, 2, search_space=space, llm_search_space=LLM_SPACE)
    assert default_trial_params(cfg, FINETUNE) == (
        {"optim.lr": 5e-3, "model.fusion.strategy": "concat"},
        {},
    )


def test_llm_keys_absent_from_the_yaml_take_the_schema_defaults(tmp_path: Path):
    llm_finetune = {**FINETUNE, "model": {"fusion": {"strategy": "llm"}}}
    cfg = config(
        f"sqlite:///{tmp_path}/o.db",
        2,
        finetune=llm_finetune,
        fixed={"model.fusion.strategy": "llm"},
        search_space={"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1}},
        llm_search_space={
            **LLM_SPACE,
            "model.fusion.llm.top_n_layers": {"type": "int", "low": 3, "high": 4},
        },
    )
    params, left_out = default_trial_params(cfg, llm_finetune)
    assert params["model.fusion.llm.mode"] == "frozen"  # LLMConfig default
    assert left_out == {"model.fusion.llm.top_n_layers": "2 is outside [3, 4]"}


@pytest.mark.parametrize(
    ("spec", "value", "expected", "why"),
    [
        (FloatParam(type="float", low=0.0, high=0.3, step=0.05), 0.1, 0.1, ""),
        (FloatParam(type="float", low=0.0, high=0.3, step=0.05), 0.12, None, "off the step"),
        (FloatParam(type="float", low=1e-8, high=1e-3, log=True), 0.0, None, "outside"),
        (FloatParam(type="float", low=0.0, high=1.0), "0.5", None, "not a number"),
        (IntParam(type="int", low=32, high=128, step=32), 64, 64, ""),
        (IntParam(type="int", low=32, high=128, step=32), 48, None, "off the step"),
        (IntParam(type="int", low=1, high=32, log=True), 5, 5, ""),
        (IntParam(type="int", low=1, high=4), 2.5, None, "not an integer"),
        (IntParam(type="int", low=0, high=4), True, None, "not a number"),
        (CategoricalParam(type="categorical", choices=[0.0, 0.1, 1.0]), 1, 1.0, ""),
        (CategoricalParam(type="categorical", choices=[0, 1]), True, None, "not one of"),
        (CategoricalParam(type="categorical", choices=["bpr"]), "softmax", None, "not one of"),
    ],
)
def test_fit_to_spec(spec, value, expected, why):
    fitted, reason = fit_to_spec(spec, value)
    assert fitted == expected and type(fitted) is type(expected)
    assert why in reason and bool(reason) == bool(why)


def test_a_popped_defaults_trial_has_a_heartbeat_at_once(tmp_path: Path):
    """As a created trial: a worker killed right after popping it must not leave it RUNNING."""
    import time

    from crossrec.tuning.storage import make_storage

    storage = make_storage(
        f"sqlite:///{tmp_path}/optuna.db", heartbeat_interval_s=1, grace_period_s=1
    )
    study = optuna.create_study(storage=storage)
    assert storage.enqueue_if_empty(study._study_id, {"x": 1.0}, {}) is not None
    time.sleep(2.2)  # a WAITING trial is never stale, however long it waits
    assert storage._get_stale_trial_ids(study._study_id) == []
    trial = study.ask()  # pops it; ask/tell: no heartbeat thread at all
    assert trial.number == 0 and storage._get_stale_trial_ids(study._study_id) == []
    time.sleep(2.2)
    assert storage._get_stale_trial_ids(study._study_id) == [trial._trial_id]


def test_neighbours_follow_the_defaults_with_one_categorical_key_changed(tmp_path: Path):
    """enqueue_neighbours: trial 0 = defaults, then one trial per other choice of each
    categorical key (the rest at the defaults), then sampling; each enqueued once."""
    cfg = config(f"sqlite:///{tmp_path}/optuna.db", 4, enqueue_neighbours=True)
    first = trial_zero(cfg, FINETUNE)
    neighbours = neighbour_trials(cfg, first, FINETUNE)
    assert neighbours == [{**first, "model.fusion.strategy": "gated"}]
    run_study(fake_objective(cfg), cfg, seed=0, first_trial=first, neighbours=neighbours)
    trials = load(cfg).trials
    assert [t.user_attrs.get("enqueued") for t in trials] == ["defaults", "neighbour", None, None]
    assert trials[1].params == neighbours[0]
    # a resumed study (another worker, a rerun) enqueues neither again
    bigger = config(f"sqlite:///{tmp_path}/optuna.db", 5, enqueue_neighbours=True)
    run_study(fake_objective(bigger), bigger, seed=0, first_trial=first, neighbours=neighbours)
    assert [t.user_attrs.get("enqueued") for t in load(bigger).trials].count("neighbour") == 1


def test_neighbours_stay_within_the_trial_budget(tmp_path: Path):
    space = {
        "loss.kind": {"type": "categorical", "choices": ["bpr", "bce"]},
        "model.propagation.item_graph_k": {"type": "categorical", "choices": [None, 5, 20]},
    }
    cfg = config(f"sqlite:///{tmp_path}/optuna.db", 3, enqueue_neighbours=True, search_space=space)
    first = trial_zero(cfg, FINETUNE)
    assert first == {"loss.kind": "bpr", "model.propagation.item_graph_k": None}
    cfg_all = config(
        f"sqlite:///{tmp_path}/all.db", 9, search_space=space, neighbours_max_share=1.0
    )
    assert neighbour_trials(cfg_all, first, FINETUNE) == [  # None is a choice; nearest first
        {"loss.kind": "bce", "model.propagation.item_graph_k": None},
        {"loss.kind": "bpr", "model.propagation.item_graph_k": 5},
        {"loss.kind": "bpr", "model.propagation.item_graph_k": 20},
    ]
    # 3 trials: the defaults, one neighbour (half the budget, rounded down), one sampled
    neighbours = neighbour_trials(cfg, first, FINETUNE)
    assert neighbours == [{"loss.kind": "bce", "model.propagation.item_graph_k": None}]

    def objective(trial: optuna.Trial) -> float:
        suggest_trial(trial, cfg, FINETUNE)
        return 0.0

    run_study(objective, cfg, seed=0, first_trial=first, neighbours=neighbours)
    trials = load(cfg).trials
    assert len(trials) == 3 and trials[1].params == neighbours[0]
    assert [t.user_attrs.get("enqueued") for t in trials] == ["defaults", "neighbour", None]


def test_neighbours_need_the_defaults_trial(tmp_path: Path):
    cfg = config(
        f"sqlite:///{tmp_path}/optuna.db", 3, enqueue_neighbours=True, enqueue_defaults=False
    )
    assert neighbour_trials(cfg, trial_zero(cfg, FINETUNE)) == []
    assert config(f"sqlite:///{tmp_path}/optuna.db", 3).enqueue_neighbours  # the default
    off = config(f"sqlite:///{tmp_path}/optuna.db", 3, enqueue_neighbours=False)
    assert neighbour_trials(off, trial_zero(off, FINETUNE)) == []
