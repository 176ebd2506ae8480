"""Search groups (keys that only work together), the neighbours' share of the budget, skipped
no-op neighbours, the budget log line and the trials table's ``enqueued`` column."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from crossrec.config import ConfigError
from crossrec.models.config import FinetuneConfig
from crossrec.tuning.config import TuneConfig, parse_tune_config
from crossrec.tuning.defaults import neighbour_cap, neighbour_trials, trial_zero
from crossrec.tuning.groups import expand_choice
from crossrec.tuning.objective import suggest_trial
from crossrec.tuning.results import OVERRIDES_ATTR, trials_table, tuned_finetune_block
from crossrec.tuning.study import run_study

FINETUNE: dict[str, Any] = {
    "model": {"embedding_dim": 64, "fusion": {"strategy": "concat"}},
    "optim": {"lr": 5e-3},
    "loss": {"kind": "bpr", "temperature": 0.2},
}

#: the shipped loss family: bpr, and softmax with cosine and a temperature of 0.1 / 0.2 / 0.5
LOSS_FAMILY: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "conf/base/parameters_tune.yml").read_text()
)["tune"]["search_groups"]["loss_family"]


def tune(url: str, n_trials: int, **extra: Any) -> dict[str, Any]:
    return {
        "study_name": "groups",
        "storage": {"url": url, "heartbeat_interval_s": None},
        "n_trials": n_trials,
        "sampler": {"n_startup_trials": 2},
        "pruner": {"type": "none"},
        "search_space": {
            "optim.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
            "model.content_space": {"type": "categorical", "choices": ["shared", "separate"]},
            "model.propagation.item_graph_k": {"type": "categorical", "choices": [None, 5, 20]},
        },
        "search_groups": {"loss_family": LOSS_FAMILY},
        **extra,
    }


def config(tmp_path: Path, n_trials: int, **extra: Any) -> TuneConfig:
    return parse_tune_config(tune(f"sqlite:///{tmp_path}/o.db", n_trials, **extra), FINETUNE)


def recording_objective(cfg: TuneConfig):
    """Records the finetune overrides like the real objective; softmax scores highest."""

    def objective(trial: optuna.Trial) -> float:
        overrides = suggest_trial(trial, cfg, FINETUNE)
        trial.set_user_attr(OVERRIDES_ATTR, overrides)
        FinetuneConfig.model_validate(_apply(FINETUNE, overrides))  # a valid finetune block
        return 1.0 if overrides["loss.kind"] == "softmax" else 0.5

    return objective


def _apply(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    from crossrec.tuning.space import apply_overrides

    return apply_overrides(params, overrides)


def test_a_wrong_key_in_a_group_fails_with_its_name(tmp_path: Path):
    bad = {
        "bpr": {"loss.kind": "bpr"},
        "softmax": {"loss.kind": "softmax", "loss.temprature": 0.2, "loss.cosine": "maybe"},
    }
    with pytest.raises(ConfigError) as err:
        parse_tune_config(
            tune(f"sqlite:///{tmp_path}/o.db", 3, search_groups={"loss_family": bad}), FINETUNE
        )
    text = str(err.value)
    assert "search_groups.loss_family.softmax" in text
    assert "loss.temprature: unknown key" in text
    assert "loss.cosine: value 'maybe' rejected" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"fixed": {"loss.cosine": True}},
            "loss.cosine is also in search_space / fixed / llm_search_space",
        ),
        ({"search_groups": {"one": {"only": {"loss.kind": "bpr"}}}}, "at least two options"),
        (
            {
                "search_groups": {
                    "t": {
                        "a": {"loss.temperature": {"type": "float", "low": 0.1, "high": 0.2}},
                        "b": {"loss.temperature": {"type": "float", "low": 0.1, "high": 0.5}},
                    }
                }
            },
            "loss.temperature is sampled with different distributions",
        ),
    ],
)
def test_group_structure_is_checked(tmp_path: Path, extra: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        parse_tune_config(tune(f"sqlite:///{tmp_path}/o.db", 3, **extra), FINETUNE)


def test_defaults_pick_their_option_and_neighbours_move_the_whole_group(tmp_path: Path):
    cfg = config(tmp_path, 12)
    first = trial_zero(cfg, FINETUNE)
    assert first["loss_family"] == "bpr" and "loss.temperature" not in first
    neighbours = neighbour_trials(cfg, first, FINETUNE)
    moved = [{k: v for k, v in n.items() if first.get(k) != v} for n in neighbours]
    # groups first, one move per key before any second one; the softmax neighbour starts at
    # the finetune block's temperature (0.2, one of the choices) and brings its cosine along
    assert moved == [
        {"loss_family": "softmax", "loss.temperature": 0.2},
        {"model.content_space": "separate"},
        {"model.propagation.item_graph_k": 5},
        {"model.propagation.item_graph_k": 20},
    ]
    assert expand_choice(cfg.search_groups, neighbours[0]) == {
        **{k: v for k, v in first.items() if k != "loss_family"},
        "loss.kind": "softmax",
        "loss.cosine": True,
        "loss.temperature": 0.2,
    }


def test_a_study_runs_the_group_and_exports_its_keys(tmp_path: Path):
    cfg = config(tmp_path, 6)
    first = trial_zero(cfg, FINETUNE)
    run_study(
        recording_objective(cfg),
        cfg,
        seed=0,
        first_trial=first,
        neighbours=neighbour_trials(cfg, first, FINETUNE),
    )
    study = optuna.load_study(study_name="groups", storage=cfg.storage.url)
    assert study.best_trial.params["loss_family"] == "softmax"
    block = tuned_finetune_block(study, FINETUNE, schema=FinetuneConfig)["finetune"]
    assert block["loss"]["kind"] == "softmax" and block["loss"]["cosine"] is True
    assert block["loss"]["temperature"] in (0.1, 0.2, 0.5)
    assert "loss_family" not in block


@pytest.mark.parametrize(("n_trials", "share", "cap"), [(10, 0.5, 5), (3, 1.0, 1), (2, 0.5, 0)])
def test_neighbour_cap(tmp_path: Path, n_trials: int, share: float, cap: int):
    assert neighbour_cap(config(tmp_path, n_trials, neighbours_max_share=share)) == cap


def test_capped_neighbours_leave_trials_to_the_sampler(tmp_path: Path, caplog):
    cfg = config(tmp_path, 4)  # the defaults, 2 neighbours (half of 4), 1 sampled
    first = trial_zero(cfg, FINETUNE)
    with caplog.at_level(logging.INFO, logger="crossrec.tuning"):
        neighbours = neighbour_trials(cfg, first, FINETUNE)
        run_study(recording_objective(cfg), cfg, seed=0, first_trial=first, neighbours=neighbours)
    assert len(neighbours) == 2
    assert "Enqueuing 2 of 4 neighbours" in caplog.text
    # the budget line counts what ran, not what was enqueued
    assert "0 of 4 trials run or running, 3 enqueued to run next, 1 left to the sampler" in (
        caplog.text
    )
    study = optuna.load_study(study_name="groups", storage=cfg.storage.url)
    table = trials_table(study)
    assert list(table["enqueued"]) == ["defaults", "neighbour", "neighbour", ""]
    assert list(table.columns[:2]) == ["number", "enqueued"]


def test_a_neighbour_that_changes_nothing_is_skipped(tmp_path: Path, caplog):
    """loss.cosine and the temperature act only under softmax: under BPR a neighbour that
    changes them trains the defaults' model again."""
    space = {
        "loss.cosine": {"type": "categorical", "choices": [False, True]},
        "loss.temperature": {"type": "categorical", "choices": [0.1, 0.2]},
        "model.content_space": {"type": "categorical", "choices": ["shared", "separate"]},
    }
    cfg = config(tmp_path, 10, search_space=space, search_groups={})
    first = trial_zero(cfg, FINETUNE)
    with caplog.at_level(logging.INFO, logger="crossrec.tuning.defaults"):
        neighbours = neighbour_trials(cfg, first, FINETUNE)
    assert neighbours == [{**first, "model.content_space": "separate"}]
    assert "{'loss.cosine': True} skipped: it trains the same model as the defaults" in caplog.text
    # under softmax both act
    softmax = {**FINETUNE, "loss": {"kind": "softmax", "temperature": 0.2}}
    cfg = parse_tune_config(
        tune(f"sqlite:///{tmp_path}/s.db", 10, search_space=space, search_groups={}), softmax
    )
    assert len(neighbour_trials(cfg, trial_zero(cfg, softmax), softmax)) == 3
