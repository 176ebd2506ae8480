"""The evaluate pipeline's wiring: inputs from upstream artifacts, outputs in the catalog."""

from __future__ import annotations

from pathlib import Path

import yaml

from crossrec.evaluation.config import EvaluateConfig
from crossrec.pipelines.evaluate import create_pipeline

ROOT = Path(__file__).resolve().parents[3]


def test_outputs_are_catalogued_and_inputs_come_from_upstream() -> None:
    pipeline = create_pipeline()
    catalog = yaml.safe_load((ROOT / "conf/base/catalog_evaluate.yml").read_text())
    for output in pipeline.all_outputs():
        pattern_hit = any(
            "{" in key and output.startswith(key.split("{")[0].strip('"')) for key in catalog
        )
        assert output in catalog or pattern_hit, output
    assert "metrics" in catalog and catalog["metrics"]["filepath"].endswith("metrics.json")
    assert catalog["plot_{name}"]["type"] == "matplotlib.MatplotlibDataset"
    external = pipeline.inputs() - {i for i in pipeline.inputs() if i.startswith("params:")}
    assert external == {
        "interactions",
        "items",
        "dataset_info",
        "fused_item_features",
        "modality_graphs",
        "user_item_graph",
        "item_texts",
        "trained_model",
        "training_history",
        "llm_before_after",  # optional: benchmarks/llm_before_after.py writes it (None if absent)
        "modality_graph_report",  # optional: fuse's modality lift (None from an older fuse)
        "word_requests",  # ingest's requests in words (the words protocol)
        "users",  # ingest's users, with their attributes (users without history)
    }


def test_default_parameters_validate() -> None:
    params = yaml.safe_load((ROOT / "conf/base/parameters_evaluate.yml").read_text())
    config = EvaluateConfig.model_validate(params["evaluate"])
    assert config.ks == [10, 20, 50] and config.k == 20
    assert len(config.seeds) >= 3
    assert {"MostPop", "ItemKNN", "MF-BPR", "LightGCN", "ContentOnly", "VBPR"} <= set(
        config.baselines
    )


def test_default_baseline_overrides_are_valid_finetune_configs() -> None:
    """A misspelt override key would otherwise only fail after minutes of evaluation."""
    from crossrec.config import deep_merge
    from crossrec.models.config import FinetuneConfig

    finetune = yaml.safe_load((ROOT / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    evaluate = EvaluateConfig.model_validate(
        yaml.safe_load((ROOT / "conf/base/parameters_evaluate.yml").read_text())["evaluate"]
    )
    for name, spec in evaluate.baselines.items():
        if spec.kind != "finetune":
            continue
        merged = deep_merge(deep_merge(finetune, evaluate.baseline_defaults), spec.overrides)
        config = FinetuneConfig.model_validate(merged)
        assert config.model.use_content == (name in {"ContentOnly", "VBPR"}), name
