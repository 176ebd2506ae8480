"""One end-to-end `kedro run` of the default chain on the tiny synthetic multimodal dataset.

The run happens in a scratch copy of the project configuration (so nothing lands in the repo's
data/), with a `conf/e2e` environment that only shrinks the defaults: MiniLM instead of SmolLM2,
a few epochs, one seed. Everything else is the shipped configuration.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crossrec.data.synthetic import make_synthetic_dataset, synthetic_ingest_params
from crossrec.evaluation import results_doc

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATASET = "synthetic_multimodal"

E2E_OVERRIDES = {
    "featurize_modalities": {
        "text": {"model": "minilm-l6", "batch_size": 16},
        "image": {"num_workers": 0},
        "audio": {"num_workers": 0},
    },
    "finetune": {"trainer": {"max_epochs": 4, "patience": 4}},
    "evaluate": {
        "seeds": [2026],
        "baseline_defaults": {"trainer": {"max_epochs": 4, "patience": 4}},
    },
}


@pytest.fixture(scope="module")
def e2e_project(tmp_path_factory) -> Path:
    """A scratch Kedro project: the repo's conf/ + pyproject, an e2e env, synthetic raw data."""
    root = tmp_path_factory.mktemp("e2e_project")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()  # Kedro checks it exists; crossrec itself is the installed package
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    raw_root = root / "raw"
    make_synthetic_dataset(raw_root / DATASET, seed=0)
    ingest = synthetic_ingest_params(raw_root / DATASET)
    ingest.pop("raw_root")  # keep the shipped ${globals:raw_data_dir} -> CROSSREC_DATA_DIR
    env = root / "conf" / "e2e"
    env.mkdir()
    (env / "parameters_e2e.yml").write_text(yaml.safe_dump({"ingest": ingest, **E2E_OVERRIDES}))
    return root


def _kedro_run(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CROSSREC_DATA_DIR": str(project / "raw"),
        "CROSSREC_MODEL_CACHE": str(PROJECT_ROOT / "data" / "06_models" / "zoo"),
        "KEDRO_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [sys.executable, "-m", "kedro", "run", "--env", "e2e", "--params", f"dataset={DATASET}"]
    return subprocess.run(
        [*cmd, *args], cwd=project, env=env, capture_output=True, text=True, timeout=900
    )


def test_default_chain_runs_end_to_end(e2e_project: Path):
    result = _kedro_run(e2e_project)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    reporting = e2e_project / "data" / "08_reporting" / DATASET
    summary = json.loads((reporting / "data_summary.json").read_text())
    assert summary["users"] > 0 and summary["items"] > 0

    metrics = json.loads((reporting / "metrics.json").read_text())
    assert {"crossrec", "MostPop", "MF-BPR", "LightGCN"} <= set(metrics)
    # the synthetic data's tags are requests in words: the words block and report table
    words = metrics.pop("words")
    assert words["words_history_frozen"]["recall@20"] >= words["history_only"]["recall@20"]
    assert "## Words" in (reporting / "report.md").read_text()
    for model, slices in metrics.items():
        value = slices["test"]["recall@20"]["mean"]
        assert 0.0 <= value <= 1.0, (model, value)
    # Preferences in the synthetic data follow item content: the multimodal model must use it.
    assert metrics["crossrec"]["test"]["recall@20"]["mean"] > metrics["MostPop"]["test"][
        "recall@20"
    ]["mean"]
    report = (reporting / "report.md").read_text()
    lift = json.loads((reporting / "modality_graphs.json").read_text())
    assert lift and all(entry["edges"] > 0 for entry in lift.values())
    assert "## How collaborative is each modality" in report  # fuse's lift reaches the report

    models = e2e_project / "data" / "06_models" / DATASET
    assert any(models.rglob("trained_model.pkl")), "the trained model was not saved"

    # the run left a record, and docs/results.md names it next to the run's own figures
    record = results_doc.latest_run(reporting / "runs")
    assert record is not None and record["pipelines"] == ["__default__"]
    assert record["command"] == f"kedro run --env e2e --params dataset={DATASET}"
    assert record["wall_s"] > 0 and record["machine"]["cores"] >= 1
    text = results_doc.render(reporting.parent, [DATASET])
    assert f"Run: `{record['command']}`" in text
    crossrec_recall = metrics["crossrec"]["test"]["recall@20"]["mean"]
    assert f"| **crossrec** | {crossrec_recall:.4f}" in text
