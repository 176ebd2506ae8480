"""A data error crossrec raises on purpose ends `kedro run` with its message, not a long
traceback; the traceback stays in the log file and under CROSSREC_TRACEBACK=1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crossrec.hooks import is_user_error, short_error_text

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def scratch_project(root: Path, ingest: dict) -> Path:
    """The repo's conf/ (without local) + pyproject, and a `conf/tiny` env with ``ingest``."""
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "conf" / "tiny").mkdir()
    (root / "conf" / "tiny" / "parameters_tiny.yml").write_text(yaml.safe_dump({"ingest": ingest}))
    return root


def kedro_run(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "CROSSREC_DATA_DIR": str(project / "raw"),
        "KEDRO_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "120",
        **env,
    }
    environ.pop("CROSSREC_TRACEBACK", None) if "CROSSREC_TRACEBACK" not in env else None
    cmd = [sys.executable, "-m", "kedro", "run", "--env", "tiny", *args]
    return subprocess.run(cmd, cwd=project, env=environ, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def bad_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad_project")
    folder = root / "raw" / "bad"
    folder.mkdir(parents=True)
    (folder / "interactions.csv").write_text("user,item,item\n1,1,2\n1,2,3\n")
    ingest = {"datasets": {"bad": {"adapter": "generic", "options": {"items_file": None}}}}
    return scratch_project(root, ingest)


def test_data_error_ends_the_run_with_its_message(bad_project):
    result = kedro_run(bad_project, "--pipeline", "ingest", "--params", "dataset=bad")
    assert result.returncode != 0
    err = result.stderr
    assert "interactions.csv" in err and "column 'item'" in err and "twice" in err
    assert "Traceback" not in err and "─" not in err
    assert len(err.splitlines()) < 15, err
    log = (bad_project / "info.log").read_text()
    assert "Traceback" in log and "require_unique_header" in log


def test_traceback_on_request(bad_project):
    result = kedro_run(bad_project, "--pipeline", "ingest", "--params", "dataset=bad",
                       CROSSREC_TRACEBACK="1")
    assert result.returncode != 0
    assert "require_unique_header" in result.stderr


def test_only_crossrec_errors_are_shortened():
    from crossrec.config import ConfigError
    from crossrec.data.errors import DataValidationError, UnknownDatasetError

    assert is_user_error(DataValidationError("f.csv", "bad"))
    assert is_user_error(ConfigError("x"))
    assert not is_user_error(ValueError("a bug"))
    assert "Unknown dataset 'x'" in short_error_text(UnknownDatasetError("Unknown dataset 'x'"))
