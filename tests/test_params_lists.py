"""Lists as run parameters: Kedro splits `--params` on every comma, so a list goes through a
`--config` file (`run: {params: {...}}`), which `kedro run` reads as YAML."""

from __future__ import annotations

import json

import yaml

from tests.scratch import ids_only_project, kedro_run


def test_a_list_parameter_through_a_config_file(tmp_path):
    ids_only_project(tmp_path, users=30)
    ingest = {"datasets": {"ids": {"adapter": "generic", "options": {"items_file": None}}},
              "split": {"strategy": "random", "cold_items": {"share": 0.0}}}
    (tmp_path / "conf" / "local" / "parameters_ids.yml").write_text(
        yaml.safe_dump({"ingest": ingest})
    )
    run = {"run": {"pipeline": "ingest",
                   "params": {"dataset": "ids", "ingest": {"split": {"ratios": [0.6, 0.2, 0.2]}}}}}
    (tmp_path / "run.yml").write_text(yaml.safe_dump(run))
    result = kedro_run(tmp_path, "--config", "run.yml", timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    summary = json.loads((tmp_path / "data/08_reporting/ids/data_summary.json").read_text())
    counts = {name: entry["interactions"] for name, entry in summary["splits"].items()}
    assert counts == {"train": 180, "valid": 60, "test": 60}
