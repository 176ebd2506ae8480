"""benchmarks/llm_gpu.py, the prepared GPU run, as its CPU smoke run (--device cpu --quick --tiny):
every mode x checkpointing row is measured, checkpointing really recomputes and does not change
the math, the Lightning section trains, and the JSON + table are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("llm_gpu") / "llm_gpu.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)
    command = [sys.executable, str(ROOT / "benchmarks" / "llm_gpu.py")]
    command += ["--device", "cpu", "--quick", "--tiny", "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TFLOP/s = 6 x N_run" in out.with_suffix(".txt").read_text()
    return json.loads(out.read_text())


@pytest.mark.slow
def test_a_row_per_mode_and_checkpointing_with_positive_throughput(result):
    rows = {(r["mode"], r["checkpointing"]): r for r in result["rows"]}
    assert set(rows) == {(m, c) for m in ("lora", "partial", "full") for c in (False, True)}
    for row in rows.values():
        assert "error" not in row, row
        assert row["samples_per_s"] > 0 and row["tokens_per_s"] > 0 and row["tflops"] > 0
        assert row["tokens_per_step"] == result["distinct_items"] * (result["tokens"] + 1)
    # the tiny LLaMA has 3 layers: lora / partial run the top 2 over the cached trunk
    assert [rows[m, False]["layers_run"] for m in ("lora", "partial", "full")] == [2, 2, 3]
    trainable = [rows[m, False]["trainable"] for m in ("lora", "partial", "full")]
    assert trainable == sorted(trainable) and len(set(trainable)) == 3


@pytest.mark.slow
def test_checkpointing_recomputes_without_changing_the_math(result):
    rows = {(r["mode"], r["checkpointing"]): r for r in result["rows"]}
    for mode in ("lora", "partial", "full"):
        off, on = rows[mode, False], rows[mode, True]
        # the backward runs each layer's forward again (its MLP is called twice per step)
        assert on["mlp_calls_per_step"] == 2 * off["mlp_calls_per_step"] == 2 * off["layers_run"]
        assert on["first_loss"] == pytest.approx(off["first_loss"], rel=1e-5)
        assert on["first_grad_norm"] == pytest.approx(off["first_grad_norm"], rel=1e-4)
        assert off["first_grad_norm"] > 0
    assert {c["mode"] for c in result["checkpointing_check"]} == {"lora", "partial", "full"}


@pytest.mark.slow
def test_lightning_section_trains_the_llm_strategy(result):
    light = result["lightning"]
    assert "skipped" not in light, light
    assert light["mode"] == "partial" and light["precision"] == "32-true"  # CPU
    assert len(light["epochs"]) == 1 and light["s_per_epoch"] > 0
    assert 0 < light["epochs"][0]["validation_s"] < light["epochs"][0]["s"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--modes", "lora,qlora"], "--modes: unknown ['qlora']; choose from"),
        (["--tiny", "--batch", "300"], "--batch and --negatives must be <= --items (200)"),
    ],
)
def test_bad_arguments_are_named_before_anything_runs(args, message):
    command = [sys.executable, str(ROOT / "benchmarks" / "llm_gpu.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr, done.stderr
