"""Project-level promises: config validation, pipeline discovery, a light-weight registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field

from crossrec.config import ConfigError, StrictConfig, parse_params

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class _Inner(StrictConfig):
    lr: float = Field(gt=0)


class _Outer(StrictConfig):
    name: str
    inner: _Inner


def test_parse_params_accepts_valid_block():
    parsed = parse_params(_Outer, {"name": "x", "inner": {"lr": 0.1}}, where="parameters_x.yml")
    assert parsed.inner.lr == 0.1


def test_unknown_key_fails_with_its_dotted_name_and_file():
    with pytest.raises(ConfigError) as err:
        parse_params(
            _Outer, {"name": "x", "inner": {"lr": 0.1, "lrr": 2}}, where="parameters_x.yml"
        )
    assert "inner.lrr" in str(err.value)
    assert "parameters_x.yml" in str(err.value)


def test_wrong_type_fails_with_its_name():
    with pytest.raises(ConfigError, match="inner.lr"):
        parse_params(_Outer, {"name": "x", "inner": {"lr": "fast"}}, where="parameters_x.yml")


def test_registry_imports_no_heavy_library():
    """`kedro registry list` must stay fast: pipeline modules may not import torch & co."""
    code = (
        "import sys; from kedro.framework.startup import bootstrap_project; "
        f"bootstrap_project({str(PROJECT_ROOT)!r}); "
        "from crossrec.pipeline_registry import register_pipelines; p = register_pipelines(); "
        "heavy = sorted(m for m in ('torch', 'transformers', 'lightning', 'timm', 'optuna') "
        "if m in sys.modules); print(','.join(sorted(p))); print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout
    names, heavy = out.strip().splitlines()[-2:]
    assert "__default__" in names.split(",")
    assert heavy == "HEAVY=", f"pipeline registry imported {heavy}"
