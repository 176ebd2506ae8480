"""Search space: parsing, validation against FinetuneConfig, suggestion and overrides."""

from __future__ import annotations

import optuna
import pytest

from crossrec.config import ConfigError, parse_params
from crossrec.models.config import FinetuneConfig
from crossrec.tuning.config import TuneConfig
from crossrec.tuning.space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    apply_overrides,
    check_search_space,
    resolve_path,
    suggest,
)

WHERE = "parameters_tune.yml: tune.search_space"


def _tune(search_space: dict, llm_space: dict, fixed: dict | None = None) -> TuneConfig:
    return parse_params(
        TuneConfig,
        {
            "study_name": "s",
            "storage": {"url": "sqlite://"},
            "n_trials": 1,
            "search_space": search_space,
            "llm_search_space": llm_space,
            "fixed": fixed or {},
        },
        where="test",
    )


def space(entries: dict) -> dict:
    return _tune(entries, {}).search_space


def check(entries: dict, base: dict | None = None) -> None:
    check_search_space(space(entries), FinetuneConfig, base or {}, where=WHERE)


def test_valid_space_passes_and_suggests_typed_values():
    entries = {
        "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1},
        "model.embedding_dim": {"type": "int", "low": 16, "high": 64, "step": 16},
        "model.fusion.strategy": {"type": "categorical", "choices": ["concat", "gated"]},
        "model.fusion.llm.lora_r": {"type": "categorical", "choices": [4, 8]},
    }
    check(entries)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        values = suggest(study.ask(), space(entries))
        assert 1e-4 <= values["optim.lr"] <= 1e-2
        assert round(values["model.dropout"] * 10) == pytest.approx(values["model.dropout"] * 10)
        assert values["model.embedding_dim"] in (16, 32, 48, 64)
        assert values["model.fusion.strategy"] in ("concat", "gated")
        assert values["model.fusion.llm.lora_r"] in (4, 8)
        FinetuneConfig.model_validate(apply_overrides({}, values))


def test_specs_parse_into_their_classes():
    parsed = space(
        {
            "a.b": {"type": "float", "low": 0.1, "high": 1.0},
            "c": {"type": "int", "low": 1, "high": 3},
            "d": {"type": "categorical", "choices": ["x"]},
        }
    )
    assert isinstance(parsed["a.b"], FloatParam)
    assert isinstance(parsed["c"], IntParam) and parsed["c"].step == 1
    assert isinstance(parsed["d"], CategoricalParam)


@pytest.mark.parametrize(
    ("entries", "needle"),
    [
        (
            {"optim.learning_rate": {"type": "float", "low": 0.1, "high": 1.0}},
            "optim.learning_rate: unknown key: 'learning_rate' is not a field of optim",
        ),
        (
            {"modle.embedding_dim": {"type": "int", "low": 8, "high": 16}},
            "modle.embedding_dim: unknown key",
        ),
        (
            {"optim.lr.value": {"type": "float", "low": 0.1, "high": 1.0}},
            "optim.lr.value: unknown key: 'optim.lr' is a value, not a section",
        ),
        (
            {"model.fusion.strategy": {"type": "float", "low": 0.1, "high": 1.0}},
            "model.fusion.strategy: type float does not fit",
        ),
        (
            {"model.embedding_dim": {"type": "float", "low": 8.0, "high": 16.5}},
            "model.embedding_dim: type float does not fit",
        ),
        (
            {"model.use_content": {"type": "int", "low": 0, "high": 1}},
            "model.use_content: type int does not fit",
        ),
        (
            {"model.fusion.strategy": {"type": "categorical", "choices": ["concat", "mlp"]}},
            "model.fusion.strategy: value 'mlp' rejected by the schema",
        ),
        (
            {"model.dropout": {"type": "float", "low": 0.0, "high": 1.5}},
            "model.dropout: value 1.5 rejected by the schema",
        ),
    ],
)
def test_bad_entry_fails_naming_its_key(entries, needle):
    with pytest.raises(ConfigError) as err:
        check(entries)
    assert WHERE in str(err.value)
    assert needle in str(err.value)


def test_every_bad_entry_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        check(
            {
                "optim.lrr": {"type": "float", "low": 0.1, "high": 1.0},
                "loss.kind": {"type": "categorical", "choices": ["bpr", "no_such_loss"]},
                "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            }
        )
    message = str(err.value)
    assert "optim.lrr" in message and "loss.kind" in message
    assert "- optim.lr:" not in message


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"type": "float", "low": 1.0, "high": 0.1}, "low (1.0) must be <= high (0.1)"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log scale needs low > 0"),
        ({"type": "int", "low": 1, "high": 8, "step": 2, "log": True}, "log and step"),
        ({"type": "categorical", "choices": []}, "choices"),
        ({"type": "uniform", "low": 0.0, "high": 1.0}, "search_space.optim.lr"),
        ({"type": "float", "low": 0.1, "high": 1.0, "lg": True}, "lg"),
    ],
)
def test_malformed_spec_fails_naming_the_key(spec, needle):
    with pytest.raises(ConfigError) as err:
        space({"optim.lr": spec})
    assert "search_space.optim.lr" in str(err.value)
    assert needle in str(err.value)


def test_resolve_path_walks_nested_models_and_dicts():
    assert resolve_path(FinetuneConfig, "optim.lr") is float
    assert resolve_path(FinetuneConfig, "model.fusion.llm.lora_r") is int
    # the LLM block is typed: a misspelt LLM key fails the search-space check
    with pytest.raises(KeyError, match="'lora_rank' is not a field of model.fusion.llm"):
        resolve_path(FinetuneConfig, "model.fusion.llm.lora_rank")
    with pytest.raises(KeyError, match="'fusionn' is not a field of model"):
        resolve_path(FinetuneConfig, "model.fusionn.strategy")


def test_apply_overrides_deep_copies_and_creates_sections():
    base = {"optim": {"lr": 0.1}, "model": {"fusion": {"strategy": "concat"}}}
    out = apply_overrides(
        base, {"optim.lr": 0.5, "model.fusion.strategy": "gated", "trainer.max_epochs": 3}
    )
    assert out == {
        "optim": {"lr": 0.5},
        "model": {"fusion": {"strategy": "gated"}},
        "trainer": {"max_epochs": 3},
    }
    assert base["optim"]["lr"] == 0.1 and base["model"]["fusion"]["strategy"] == "concat"
    with pytest.raises(ConfigError, match="'lr' is a value"):
        apply_overrides(base, {"optim.lr.x": 1})


def test_search_space_and_fixed_must_not_overlap():
    with pytest.raises(ConfigError, match=r"both searched and fixed: \['optim.lr'\]"):
        parse_params(
            TuneConfig,
            {
                "study_name": "s",
                "storage": {"url": "sqlite://"},
                "n_trials": 1,
                "search_space": {"optim.lr": {"type": "float", "low": 0.1, "high": 1.0}},
                "fixed": {"optim.lr": 0.2},
            },
            where="test",
        )


def test_project_llm_space_is_valid_and_sampled_only_for_llm_trials():
    from pathlib import Path

    import yaml

    from crossrec.tuning.config import parse_tune_config
    from crossrec.tuning.objective import suggest_trial

    conf = Path(__file__).resolve().parents[2] / "conf" / "base"
    tune = yaml.safe_load((conf / "parameters_tune.yml").read_text())["tune"]
    finetune = yaml.safe_load((conf / "parameters_finetune.yml").read_text())["finetune"]
    tune = {**tune, "study_name": "s", "storage": {"url": "sqlite://"}, "run_root": "x"}
    config = parse_tune_config(tune, finetune)
    assert {"model.fusion.llm.mode", "model.fusion.llm.top_n_layers", "optim.llm_lr"} <= set(
        config.llm_search_space
    )
    config.search_space["model.fusion.strategy"] = CategoricalParam(
        type="categorical", choices=["concat", "llm"]
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    strategies = set()
    for _ in range(12):
        values = suggest_trial(study.ask(), config, finetune)
        strategy = values["model.fusion.strategy"]
        strategies.add(strategy)
        has_llm = "model.fusion.llm.lora_r" in values and "optim.llm_lr" in values
        assert has_llm == (strategy == "llm")
        FinetuneConfig.model_validate(apply_overrides(finetune, values))
    assert strategies == {"concat", "llm"}


def test_llm_space_is_checked_against_the_schema_and_not_repeated():
    lr = {"optim.lr": {"type": "float", "low": 0.1, "high": 1.0}}
    with pytest.raises(ConfigError, match=r"also in search_space or fixed: \['optim.lr'\]"):
        _tune(lr, lr)
    from crossrec.tuning.config import parse_tune_config

    bad = {
        "study_name": "s",
        "storage": {"url": "sqlite://"},
        "n_trials": 1,
        "search_space": lr,
        "llm_search_space": {
            "model.fusion.llm.lora_rank": {"type": "categorical", "choices": [4]},
            "model.fusion.llm.mode": {"type": "categorical", "choices": ["lora", "qlora"]},
        },
    }
    with pytest.raises(ConfigError, match="llm_search_space") as err:
        parse_tune_config(bad, {})
    assert "lora_rank: unknown key" in str(err.value) and "'qlora'" in str(err.value)
