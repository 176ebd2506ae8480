"""A dataset of interactions only (no text, images, audio or vectors) runs the whole chain as
an ID-only recommender with its baselines, and says once what content would add."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
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
    folder = tmp_path / "raw" / "ids"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pairs = [(u, i) for u in range(60) for i in rng.choice(40, 10, replace=False)]
    pd.DataFrame(pairs, columns=["user", "item"]).to_csv(folder / "interactions.csv", index=False)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "src").mkdir()
    shutil.copytree(
        PROJECT_ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local")
    )
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "conf" / "tiny").mkdir()
    (tmp_path / "conf" / "tiny" / "parameters_tiny.yml").write_text(yaml.safe_dump(TINY))
    env = {**os.environ, "CROSSREC_DATA_DIR": str(tmp_path / "raw"), "HF_HUB_OFFLINE": "1",
           "KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "kedro", "run", "--env", "tiny", "--params", "dataset=ids"]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert output.count("crossrec runs it as an ID-only recommender") == 1
    reporting = tmp_path / "data" / "08_reporting" / "ids"
    metrics = json.loads((reporting / "metrics.json").read_text())
    assert {"crossrec", "MostPop", "MF-BPR", "LightGCN"} <= set(metrics)
    assert "ContentOnly" not in metrics and "VBPR" not in metrics
    summary = json.loads((reporting / "data_summary.json").read_text())
    assert summary["modality_coverage"] == {}
