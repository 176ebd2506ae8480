"""A dataset of interactions only (no text, images, audio or vectors) runs the whole chain as
an ID-only recommender with its baselines, and says once what content would add."""

from __future__ import annotations

import json

import yaml

from tests.scratch import ids_only_project, kedro_run

TINY = {
    "ingest": {
        "datasets": {"ids": {"adapter": "generic", "options": {"items_file": None}}},
        "split": {"strategy": "random", "cold_items": {"share": 0.0}},
    },
    "finetune": {
        "model": {"embedding_dim": 16},
        "trainer": {"max_epochs": 2, "patience": 2, "accelerator": "cpu", "cpu_threads": 1},
    },
    "evaluate": {
        "seeds": [2026],
        "baseline_defaults": {"trainer": {"max_epochs": 2, "patience": 2}},
    },
}


def test_interactions_only_dataset_runs_as_an_id_model(tmp_path):
    project = ids_only_project(tmp_path, users=60)
    (project / "conf" / "tiny").mkdir()
    (project / "conf" / "tiny" / "parameters_tiny.yml").write_text(yaml.safe_dump(TINY))
    result = kedro_run(project, "--env", "tiny", "--params", "dataset=ids")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert output.count("crossrec runs it as an ID-only recommender") == 1
    reporting = tmp_path / "data" / "08_reporting" / "ids"
    metrics = json.loads((reporting / "metrics.json").read_text())
    assert {"crossrec", "MostPop", "MF-BPR", "LightGCN"} <= set(metrics)
    assert "ContentOnly" not in metrics and "VBPR" not in metrics
    summary = json.loads((reporting / "data_summary.json").read_text())
    assert summary["modality_coverage"] == {}
