"""benchmarks/warm_ablation.py's NAME@parameters.yml variants: a tune study's exported block is
trained as overrides of the defaults, without the provenance record (not a setting)."""

from __future__ import annotations

import pytest
import yaml

from tests.benchmarks.conftest import load_benchmark


@pytest.fixture(scope="module")
def warm_ablation():
    return load_benchmark("warm_ablation")


def test_file_variant_is_the_finetune_block_without_tuned_for(warm_ablation, tmp_path):
    tuned = tmp_path / "parameters_finetune.yml"
    record = {"dataset": "d", "study": "s", "trial": 3, "metric": "val/recall@20", "value": 0.3}
    block = {"optim": {"lr": 0.002}, "loss": {"kind": "softmax"}, "tuned_for": record}
    tuned.write_text(yaml.safe_dump({"finetune": block}))
    assert warm_ablation.file_overrides(tuned) == {
        "optim": {"lr": 0.002},
        "loss": {"kind": "softmax"},
    }


def test_file_variant_errors_name_the_file(warm_ablation, tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        warm_ablation.file_overrides(tmp_path / "missing.yml")
    other = tmp_path / "parameters_tune.yml"
    other.write_text(yaml.safe_dump({"tune": {"n_trials": 3}}))
    with pytest.raises(SystemExit, match=r"parameters_tune\.yml: expected a finetune: block"):
        warm_ablation.file_overrides(other)
