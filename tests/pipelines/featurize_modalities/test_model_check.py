"""Encoder model names are resolved before any encoding: a typo fails in seconds, naming the
key, the value and the known models, before image or audio encoding spends minutes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crossrec.config import RUNTIME_SOURCE, ConfigError, set_param_sources
from crossrec.data.synthetic import make_synthetic_dataset, synthetic_ingest_params
from crossrec.pipelines.featurize_modalities.checks import models_in_use, resolve_encoders

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DATASET = "synthetic_multimodal"
INFO = {"text_columns": ["title"], "has_images": True, "has_audio": True}


def test_only_models_of_enabled_modalities_are_checked():
    params = {"image": {"enabled": False}, "audio": {"kind": "mel", "model": "whatever"}}
    assert models_in_use(params, INFO) == {
        "featurize_modalities.text.model": "smollm2-135m-instruct"
    }
    whisper = models_in_use({"audio": {"kind": "whisper"}}, {"has_audio": True})
    assert whisper == {"featurize_modalities.audio.model": "whisper-tiny"}


def test_unknown_model_names_key_value_source_and_known_models():
    set_param_sources({"featurize_modalities.text.model": RUNTIME_SOURCE})
    try:
        with pytest.raises(ConfigError) as err:
            resolve_encoders({"text": {"model": "no-such-model"}}, INFO)
    finally:
        set_param_sources(None)
    message = str(err.value)
    assert "featurize_modalities.text.model = 'no-such-model' (set with --params)" in message
    assert "minilm-l6" in message and "efficientnet-lite0" in message
    assert "image.model" not in message  # the shipped image model resolves


def test_uncached_hugging_face_id_fails_offline(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
        resolve_encoders({"text": {"model": "some-org/not-cached"}}, INFO)


def test_known_models_resolve_without_converting_weights(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CROSSREC_MODEL_CACHE", str(tmp_path / "zoo"))
    resolved = resolve_encoders({"text": {"model": "minilm-l6"}}, INFO)
    assert Path(resolved["featurize_modalities.text.model"]).is_dir()
    assert "converted once" in resolved["featurize_modalities.image.model"]
    assert not (tmp_path / "zoo").exists()  # efficientnet-lite0 was not converted


def test_kedro_run_with_unknown_text_model_fails_before_any_encoding(tmp_path: Path):
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "src").mkdir()
    shutil.copytree(
        PROJECT_ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local")
    )
    ingest = synthetic_ingest_params(make_synthetic_dataset(tmp_path / "raw" / DATASET, seed=0))
    ingest.pop("raw_root")
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump({"ingest": ingest}))
    env = {
        **os.environ,
        "CROSSREC_DATA_DIR": str(tmp_path / "raw"),
        "KEDRO_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [
            *(sys.executable, "-m", "kedro", "run", "--pipelines", "ingest,featurize_modalities"),
            *("--params", f"dataset={DATASET},featurize_modalities.text.model=no-such-model"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Completed node: split_dataset" in output  # ingest ran: the check is featurize's
    assert "Unknown encoder model(s); nothing was encoded" in result.stderr, output[-3000:]
    assert "featurize_modalities.text.model = 'no-such-model' (set with --params)" in output
    for node in ("encode_text", "encode_images", "encode_audio"):
        assert f"Running node: {node}" not in output
    caches = tmp_path / "data" / "04_feature" / DATASET / "embedding_cache"
    assert not caches.exists() or not any(p.is_file() for p in caches.rglob("*"))
