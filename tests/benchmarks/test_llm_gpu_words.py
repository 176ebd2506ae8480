"""benchmarks/llm_gpu.py --words, the words encoder's GPU run, as its CPU smoke run on the
synthetic dataset (--tiny): the encoder is fine-tuned on the sampled pairs, the frozen and
fine-tuned blends are both ranked, and the ratio line reports them with the paired test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_words_section_tiny_on_cpu(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)
    command = [sys.executable, str(ROOT / "benchmarks" / "llm_gpu.py"), "--device", "cpu"]
    command += ["--tiny", "--words", "--max-pairs", "64", "--epochs", "1"]
    command += ["--out", str(tmp_path / "llm_gpu.json")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "llm_gpu_words.json").read_text())
    assert not (tmp_path / "llm_gpu.json").exists()  # --words runs that section only

    assert result["finetune"]["max_pairs"] == 64 and result["finetune"]["epochs"] == 1
    assert result["training_pairs"] > 64  # a sample of them was trained on
    assert result["timings"]["finetune_encoder_s"] > 0
    tuned = result["variants"]["words_history_finetuned"]["recall@20"]
    frozen = result["variants"]["words_history_frozen"]["recall@20"]
    test = result["significance"]["recall@20"]
    assert test["n_users"] == result["requests"]["test"]
    assert test["mean_a"] == pytest.approx(tuned) and test["mean_b"] == pytest.approx(frozen)
    assert 0.0 <= test["wilcoxon_p"] <= 1.0

    line = next(row for row in done.stdout.splitlines() if row.startswith("words + history"))
    assert line == result["ratio"]
    found = re.search(r"recall@20 ([\d.]+) / ([\d.]+) = ([\d.]+)x \(Wilcoxon p = ([^)]+)\)", line)
    assert found, line
    assert float(found[1]) == pytest.approx(tuned, abs=1e-4)
    assert float(found[2]) == pytest.approx(frozen, abs=1e-4)
    assert float(found[3]) == pytest.approx(tuned / frozen, abs=1e-3)


def test_max_pairs_takes_null_for_every_pair():
    module = load_benchmark("llm_gpu")
    assert module.parse_args(["--words"]).max_pairs is None
    assert module.parse_args(["--words", "--max-pairs", "null"]).max_pairs is None
    args = module.parse_args(["--words", "--max-pairs", "64", "--epochs", "1"])
    assert (args.max_pairs, args.epochs) == (64, 1)
