"""Lists as run parameters: Kedro splits `--params` on every comma, so a list goes through a
`--config` file (`run: {params: {...}}`), which `kedro run` reads as YAML."""

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

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_a_list_parameter_through_a_config_file(tmp_path):
    folder = tmp_path / "raw" / "ids"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pairs = [(u, i) for u in range(30) for i in rng.choice(40, 10, replace=False)]
    pd.DataFrame(pairs, columns=["user", "item"]).to_csv(folder / "interactions.csv", index=False)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "src").mkdir()
    shutil.copytree(
        PROJECT_ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local")
    )
    (tmp_path / "conf" / "local").mkdir()
    ingest = {"datasets": {"ids": {"adapter": "generic", "options": {"items_file": None}}},
              "split": {"strategy": "random", "cold_items": {"share": 0.0}}}
    (tmp_path / "conf" / "local" / "parameters_ids.yml").write_text(
        yaml.safe_dump({"ingest": ingest})
    )
    run = {"run": {"pipeline": "ingest",
                   "params": {"dataset": "ids", "ingest": {"split": {"ratios": [0.6, 0.2, 0.2]}}}}}
    (tmp_path / "run.yml").write_text(yaml.safe_dump(run))
    env = {**os.environ, "CROSSREC_DATA_DIR": str(tmp_path / "raw"),
           "KEDRO_DISABLE_TELEMETRY": "1"}
    cmd = [sys.executable, "-m", "kedro", "run", "--config", "run.yml"]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    summary = json.loads((tmp_path / "data/08_reporting/ids/data_summary.json").read_text())
    counts = {name: entry["interactions"] for name, entry in summary["splits"].items()}
    assert counts == {"train": 180, "valid": 60, "test": 60}
