"""Parameter errors: dotted key, "did you mean", and where the value came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from crossrec.config import (
    RUNTIME_SOURCE,
    ConfigError,
    StrictConfig,
    did_you_mean,
    lookup_source,
    model_at,
    parse_params,
    set_param_sources,
)
from crossrec.hooks import check_top_level, declared_blocks, parameter_files, source_map


class _Split(StrictConfig):
    strategy: str = "auto"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)


class _Dataset(StrictConfig):
    adapter: str
    options: dict = Field(default_factory=dict)


class _Ingest(StrictConfig):
    datasets: dict[str, _Dataset] = Field(default_factory=dict)
    split: _Split = _Split()
    extra: _Split | None = None
    layers: list[_Split] = Field(default_factory=list)


WHERE = "conf/base/parameters_ingest.yml: ingest"


def _error(params: dict, **kwargs) -> str:
    with pytest.raises(ConfigError) as err:
        parse_params(_Ingest, params, WHERE, **kwargs)
    return str(err.value)


def test_did_you_mean_picks_the_closest_valid_key():
    assert did_you_mean("ingst", ["ingest", "evaluate", "fuse"]) == " did you mean 'ingest'?"
    assert did_you_mean("zzz", ["ingest", "evaluate"]) == ""


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("split",), _Split),
        (("datasets", "ml"), _Dataset),  # dict value
        (("extra",), _Split),  # Optional[model]
        (("layers", 0), _Split),  # list item
        (("datasets", "ml", "options"), None),  # free-form dict: no model
    ],
)
def test_model_at_follows_fields_dicts_optionals_and_lists(loc, expected):
    assert model_at(_Ingest, loc) is expected


def test_nested_unknown_key_suggests_a_field_of_its_own_level():
    message = _error({"split": {"strategi": "temporal"}})
    assert "ingest.split.strategi: unknown key; did you mean 'strategy'?" in message
    assert "valid keys here: ratios, strategy" in message


def test_unknown_key_below_a_dict_of_models_and_a_list():
    message = _error(
        {"datasets": {"ml": {"adapter": "generic", "optionz": {}}}, "layers": [{"ratio": [1]}]}
    )
    assert "ingest.datasets.ml.optionz: unknown key; did you mean 'options'?" in message
    assert "ingest.layers.0.ratio: unknown key; did you mean 'ratios'?" in message


def test_without_sources_the_error_names_the_where_file():
    set_param_sources(None)
    message = _error({"split": {"strategi": "temporal"}})
    assert message.startswith(f"Invalid parameters in {WHERE}:")


def test_each_problem_names_the_file_or_params_that_set_it():
    sources = {
        "ingest": "conf/base/parameters_ingest.yml",
        "ingest.split": "conf/base/parameters_ingest.yml",
        "ingest.split.strategi": RUNTIME_SOURCE,
        "ingest.datasets.ml": "conf/local/parameters.yml",
    }
    message = _error(
        {"split": {"strategi": "temporal"}, "datasets": {"ml": {"adapter": 3}}}, sources=sources
    )
    assert message.startswith("Invalid parameters in ingest:")  # not the misleading conf/base
    assert "ingest.split.strategi: unknown key; did you mean 'strategy'?" in message
    assert message.split("ingest.split.strategi")[1].splitlines()[0].endswith("set with --params")
    # a key inside a block set as a whole takes the block's file
    assert "ingest.datasets.ml.adapter: Input should be a valid string" in message
    assert "set in conf/local/parameters.yml" in message


def test_registered_sources_are_used_by_default_and_forgotten():
    set_param_sources({"ingest.split.strategi": "conf/prod/parameters.yml"})
    try:
        assert "set in conf/prod/parameters.yml" in _error({"split": {"strategi": "x"}})
    finally:
        set_param_sources(None)
    assert "set in" not in _error({"split": {"strategi": "x"}})


def test_lookup_source_falls_back_to_the_closest_parent():
    sources = {"a": "f.yml", "a.b.c": RUNTIME_SOURCE}
    assert lookup_source(sources, "a.b.c") == RUNTIME_SOURCE
    assert lookup_source(sources, "a.b.d") == "f.yml"
    assert lookup_source(sources, "z") is None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_source_map_env_overrides_base_and_params_override_both(tmp_path: Path):
    conf = tmp_path / "conf"
    _write(conf / "base" / "parameters_ingest.yml", "ingest:\n  split:\n    strategy: auto\n")
    _write(conf / "base" / "catalog.yml", "ingest:\n  type: x\n")  # not a parameters file
    _write(conf / "local" / "parameters.yml", "ingest:\n  split:\n    strategy: random\n")
    _write(conf / "local" / ".hidden" / "parameters.yml", "seed: 1\n")
    patterns = ["parameters*", "parameters*/**", "**/parameters*"]
    assert [p.name for p in parameter_files(conf / "base", patterns)] == ["parameters_ingest.yml"]

    sources = source_map(
        [conf / "base", conf / "local"], patterns, {"ingest": {"kcore": {"user_min": 2}}}, tmp_path
    )
    assert sources["ingest.split.strategy"] == "conf/local/parameters.yml"
    assert sources["ingest.kcore.user_min"] == RUNTIME_SOURCE
    assert "seed" not in sources


def test_unknown_top_level_key_suggests_the_block_and_names_its_source():
    with pytest.raises(ConfigError) as err:
        check_top_level(
            {"ingst": {"split": {}}, "ingest": {}, "_anchor": 1},
            known=["ingest", "evaluate", "seed"],
            sources={"ingst": RUNTIME_SOURCE, "ingst.split": RUNTIME_SOURCE},
        )
    message = str(err.value)
    assert "ingst: unknown key; did you mean 'ingest'?" in message
    assert "set with --params" in message
    assert "_anchor" not in message  # underscore keys are YAML helpers, not parameters
    check_top_level({"ingest": {}}, known=["ingest"], sources={})  # no error


def test_declared_blocks_are_the_params_inputs_of_every_pipeline():
    from crossrec.hooks import all_pipelines

    blocks = declared_blocks(all_pipelines("crossrec"))
    expected = {"dataset", "seed", "ingest", "featurize_modalities", "fuse", "finetune"}
    assert expected | {"evaluate", "tune"} <= blocks


@pytest.mark.parametrize(
    ("where", "dotted"),
    [
        ("conf/base/parameters_ingest.yml: ingest.datasets.x.split", "ingest.datasets.x.split.k"),
        ("finetune model config: llm", "k"),  # not a file: no block prefix invented
        ("tune trial 3", "k"),
    ],
)
def test_block_key_comes_from_a_file_where_only(where: str, dotted: str):
    with pytest.raises(ConfigError, match=rf"  - {dotted}: unknown key"):
        parse_params(_Split, {"k": 1}, where)
