"""`kedro run --env tuned` layers the tuned values on conf/base AND conf/local: the user's own
settings stay; any other --env keeps Kedro's meaning (it replaces conf/local)."""

from __future__ import annotations

from pathlib import Path

import yaml

from crossrec.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


def _params(conf: Path, env: str | None) -> dict:
    loader = CONFIG_LOADER_CLASS(conf_source=str(conf), env=env, **CONFIG_LOADER_ARGS)
    return loader["parameters"]


def test_tuned_env_layers_on_local(tmp_path):
    conf = tmp_path / "conf"
    _write(conf / "base" / "parameters_finetune.yml",
           {"finetune": {"optim": {"lr": 0.001, "weight_decay": 0.0}, "trainer": {"seed": 1}}})
    _write(conf / "local" / "parameters.yml",
           {"finetune": {"trainer": {"seed": 7}}, "evaluate": {"seeds": [1, 2]}})
    _write(conf / "tuned" / "parameters_finetune.yml", {"finetune": {"optim": {"lr": 0.02}}})
    _write(conf / "other" / "parameters.yml", {"finetune": {"optim": {"lr": 0.5}}})

    tuned = _params(conf, "tuned")
    assert tuned["finetune"]["optim"] == {"lr": 0.02, "weight_decay": 0.0}  # tuned on top
    assert tuned["finetune"]["trainer"]["seed"] == 7  # conf/local kept
    assert tuned["evaluate"]["seeds"] == [1, 2]

    assert _params(conf, None)["finetune"]["trainer"]["seed"] == 7
    other = _params(conf, "other")  # a plain env: base, then that env (Kedro's meaning)
    assert other["finetune"]["optim"]["lr"] == 0.5 and "evaluate" not in other


def test_layers():
    loader = CONFIG_LOADER_CLASS(conf_source="conf", env="tuned", **CONFIG_LOADER_ARGS)
    assert loader.layers() == ["base", "local", "tuned"]
    loader = CONFIG_LOADER_CLASS(conf_source="conf", env="e2e", **CONFIG_LOADER_ARGS)
    assert loader.layers() == ["base", "e2e"]
