"""Baselines are configured on their own: knobs of the trained model do not leak into them."""

from __future__ import annotations

from pathlib import Path

import yaml

from crossrec.config import deep_merge
from crossrec.evaluation.config import EvaluateConfig
from crossrec.evaluation.experiments import baseline_config
from crossrec.models.config import FinetuneConfig

ROOT = Path(__file__).resolve().parents[2]


def _evaluate_config() -> EvaluateConfig:
    params = yaml.safe_load((ROOT / "conf/base/parameters_evaluate.yml").read_text())
    return EvaluateConfig.model_validate(params["evaluate"])


def test_model_knobs_do_not_reach_the_baselines() -> None:
    trained = deep_merge(
        FinetuneConfig().model_dump(mode="json"),
        {
            "model": {
                "id_dropout": 0.5,
                "embedding_dim": 16,
                "propagation": {"edge_dropout": 0.7, "item_graph_layers": 4},
            },
            "loss": {"kind": "bce", "content_weight": 2.0},
            "optim": {"content_lr_scale": 0.3},
            "trainer": {"cpu_threads": 3, "accelerator": "cpu"},
        },
    )
    evaluate = _evaluate_config()
    for name, spec in evaluate.baselines.items():
        if spec.kind != "finetune":
            continue
        config = FinetuneConfig.model_validate(
            baseline_config(trained, evaluate.baseline_defaults, spec.overrides)
        )
        assert config.model.id_dropout == 0.0, name
        assert config.model.embedding_dim == 64, name  # baseline_defaults, not the model's
        assert config.model.propagation.edge_dropout == 0.0, name
        assert config.loss.content_weight == 0.0, name
        assert config.optim.content_lr_scale == 1.0, name
        assert config.loss.kind != "bce", name
        # how to run is inherited: the same devices and threads as the model
        assert config.trainer.cpu_threads == 3 and config.trainer.accelerator == "cpu", name


def test_baseline_defaults_then_overrides_apply() -> None:
    trained = FinetuneConfig().model_dump(mode="json")
    config = baseline_config(
        trained, {"optim": {"lr": 0.02}, "trainer": {"patience": 3}}, {"optim": {"lr": 0.03}}
    )
    assert config["optim"]["lr"] == 0.03
    assert config["trainer"]["patience"] == 3
