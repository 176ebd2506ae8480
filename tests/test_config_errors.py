"""Real `kedro run`s with misspelt parameters fail before any node runs, saying where and why.

Each run works in a scratch copy of the project configuration whose conf/local points ingest at
the synthetic dataset (tests/conftest.py), so no run touches the repo's data/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crossrec.data.synthetic import make_synthetic_dataset, synthetic_ingest_params

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATASET = "synthetic_multimodal"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The repo's conf/ and pyproject, conf/local = the synthetic dataset; nothing else."""
    root = tmp_path_factory.mktemp("cfgerr_project")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()  # Kedro checks it exists; crossrec itself is the installed package
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    ingest = synthetic_ingest_params(make_synthetic_dataset(root / "raw" / DATASET, seed=0))
    ingest.pop("raw_root")  # keep ${globals:raw_data_dir} -> CROSSREC_DATA_DIR
    (root / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump({"ingest": ingest}))
    return root


def kedro_run(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CROSSREC_DATA_DIR": str(project / "raw"),
        "KEDRO_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "400",  # rich wraps the message at the terminal width otherwise
    }
    cmd = [sys.executable, "-m", "kedro", "run", "--params", f"dataset={DATASET}", *args]
    return subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=300)


def _assert_failed_before_any_node(result: subprocess.CompletedProcess, project: Path) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Running node" not in output, output[-3000:]
    assert not (project / "data").exists() or not any((project / "data").rglob("*.*"))
    return output


def test_misspelt_top_level_key_fails_with_did_you_mean(project: Path):
    result = kedro_run(project, "--params", "ingst.split.strategy=temporal")
    output = _assert_failed_before_any_node(result, project)
    assert "ingst: unknown key; did you mean 'ingest'?" in result.stderr, output[-3000:]
    assert "set with --params" in result.stderr


def test_misspelt_nested_key_from_params_names_params(project: Path):
    result = kedro_run(project, "--params", "ingest.split.strategi=temporal")
    output = _assert_failed_before_any_node(result, project)
    assert "ingest.split.strategi: unknown key; did you mean 'strategy'?" in result.stderr, output
    line = next(x for x in result.stderr.splitlines() if "ingest.split.strategi" in x)
    assert line.rstrip().endswith("set with --params"), line
    assert "conf/base" not in line


def test_misspelt_key_in_conf_local_names_that_file(project: Path):
    typo = project / "conf" / "local" / "parameters_typo.yml"
    typo.write_text("evaluate:\n  baselines:\n    MostPop: {kindd: most_popular}\n")
    try:
        result = kedro_run(project, "--pipelines", "ingest")  # evaluate is checked all the same
    finally:
        typo.unlink()
    output = _assert_failed_before_any_node(result, project)
    line = next(x for x in result.stderr.splitlines() if "MostPop.kindd" in x)
    assert "evaluate.baselines.MostPop.kindd: unknown key; did you mean 'kind'?" in line, output
    assert line.rstrip().endswith("set in conf/local/parameters_typo.yml"), line


def test_values_tuned_on_another_dataset_fail_before_any_node(project: Path):
    env = project / "conf" / "tuned_elsewhere"
    env.mkdir()
    # --env replaces conf/local: the synthetic dataset's ingest settings come along
    shutil.copy(project / "conf" / "local" / "parameters.yml", env / "parameters.yml")
    record = {
        "dataset": "lastfm2k_multimodal",
        "study": "crossrec-lastfm2k_multimodal",
        "trial": 7,
        "metric": "val/recall@20",
        "value": 0.43,
    }
    (env / "parameters_finetune.yml").write_text(
        yaml.safe_dump({"finetune": {"optim": {"lr": 0.002}, "tuned_for": record}})
    )
    try:
        result = kedro_run(project, "--env", "tuned_elsewhere", "--pipelines", "ingest")
        output = _assert_failed_before_any_node(result, project)
        assert "finetune.tuned_for.dataset is 'lastfm2k_multimodal'" in result.stderr, output
        assert "set in conf/tuned_elsewhere/parameters_finetune.yml" in result.stderr, output
        assert f"this run's dataset is '{DATASET}'" in result.stderr, output
        # the escape hatch the message names: the same run goes through
        accepted = kedro_run(  # one --params: a second one replaces the first
            project,
            "--env",
            "tuned_elsewhere",
            "--pipelines",
            "ingest",
            "--params",
            f"dataset={DATASET},finetune.tuned_for=null",
        )
        assert accepted.returncode == 0, (accepted.stdout + accepted.stderr)[-3000:]
    finally:
        shutil.rmtree(env)
        shutil.rmtree(project / "data", ignore_errors=True)
