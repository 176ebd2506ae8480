"""featurize_modalities speed, measured side by side in one run.

Prints one table:

* items/s per modality, batched encoder path (``inference_mode``, length-grouped batches,
  DataLoader decoding) vs a naive per-item loop (batch size 1, autograd on, decode inline);
* achieved GFLOP/s of the text and image encoders (FLOPs counted by
  ``torch.utils.flop_counter``) vs a plain float32 square matmul with the same FLOP count;
* cold run (empty embedding cache, encoder built from scratch) vs warm re-run (same inputs,
  the node-level path: cache lookups, no model load) for each modality.

Targets: batched >= 5x naive for text and image; warm >= 20x faster than cold.

Usage::

    .venv/bin/python benchmarks/featurize.py [--dataset movielens100k_multimodal]
        [--text-model smollm2-135m-instruct] [--n-text 64] [--n-image 128] [--n-audio 48]

Text and images come from the ingested ``items`` of ``--dataset`` (run ingest first) or, when
absent, from the synthetic dataset; audio always from the synthetic dataset's WAV files.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def load_items(dataset: str):
    """(texts, image paths) from ingested items, or from a synthetic dataset."""
    import pandas as pd

    from crossrec.encoders.config import parse_featurize_params
    from crossrec.encoders.modalities import item_texts

    folder = ROOT / "data/02_intermediate" / dataset
    if (folder / "items.parquet").exists():
        import json

        items = pd.read_parquet(folder / "items.parquet")
        info = json.loads((folder / "dataset_info.json").read_text())
        source = f"ingested {dataset}"
    else:
        items, info = synthetic()["items"], synthetic()["dataset_info"]
        source = "synthetic dataset"
    texts = item_texts(items, info, parse_featurize_params(_yaml_params()))
    images = [p for p in items["image_path"].tolist() if isinstance(p, str)]
    return texts, images, source


_SYNTH: dict = {}


def synthetic():
    if not _SYNTH:
        # the one pipeline import left in benchmarks/: ingest has no library entry point yet
        from crossrec.data.ingest import ingest_in_memory
        from crossrec.data.synthetic import make_synthetic_dataset, synthetic_ingest_params

        folder = make_synthetic_dataset(Path(tempfile.mkdtemp()) / "synthetic", n_items=96, seed=0)
        _SYNTH.update(ingest_in_memory(synthetic_ingest_params(folder), folder.name, seed=0))
    return _SYNTH


def _yaml_params() -> dict:
    import yaml

    text = (ROOT / "conf/base/parameters_featurize_modalities.yml").read_text()
    return yaml.safe_load(text)["featurize_modalities"]


# --------------------------------------------------------------------------- naive loops
def naive_text(encoder, texts):
    """One text at a time, autograd on, no length grouping."""
    from crossrec.encoders.text import pool

    out = []
    for text in texts:
        ids = encoder.tokenizer(
            [text], return_tensors="pt", truncation=True, max_length=encoder.max_tokens
        )
        hidden = encoder.model(**ids).last_hidden_state
        out.append(pool(hidden, ids["attention_mask"], "mean").detach().numpy())
    return np.concatenate(out)


def naive_image(encoder, paths):
    from PIL import Image

    out = []
    for path in paths:
        with Image.open(path) as image:
            x = encoder.transform(image.convert("RGB"))[None]
        out.append(
            encoder.model.forward_head(encoder.model.forward_features(x), pre_logits=True)
            .detach()
            .numpy()
        )
    return np.concatenate(out)


def naive_audio(encoder, paths):
    from crossrec.encoders.audio import decode_audio

    return np.stack(
        [
            encoder.featurize(decode_audio(p, encoder.sample_rate, encoder.max_seconds))
            for p in paths
        ]
    )


# --------------------------------------------------------------------------- FLOP rates
def gflops(model_call, repeats: int = 2) -> tuple[float, float]:
    """(GFLOP per call, achieved GFLOP/s) of ``model_call`` under inference_mode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            model_call()
        flops = counter.get_total_flops()
        model_call()
        start = time.perf_counter()
        for _ in range(repeats):
            model_call()
        seconds = (time.perf_counter() - start) / repeats
    return flops / 1e9, flops / seconds / 1e9


def matmul_rate(flops_g: float, repeats: int = 3) -> tuple[int, float]:
    import torch

    n = max(64, int(round((flops_g * 1e9 / 2) ** (1 / 3))))
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    seconds = (time.perf_counter() - start) / repeats
    return n, 2 * n**3 / seconds / 1e9


# --------------------------------------------------------------------------- cold / warm
def cold_warm(name, build, inputs, kind, workdir: Path) -> tuple[float, float]:
    """Node-level path twice: fresh cache + fresh encoder, then the same again (warm)."""
    from crossrec.encoders.cache import EmbeddingStore
    from crossrec.encoders.featurize import encode_modality

    ids = [str(i) for i in range(len(inputs))]
    store = EmbeddingStore(workdir / name)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        encoder = build()
        encode_modality(
            name, ids, inputs, kind, encoder, store.modality(name, encoder.settings()), source=name
        )
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument("--text-model", default=None, help="default: parameters YAML")
    parser.add_argument("--n-text", type=int, default=64)
    parser.add_argument("--n-image", type=int, default=128)
    parser.add_argument("--n-audio", type=int, default=48)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from crossrec.encoders.audio import AudioEncoder
    from crossrec.encoders.image import ImageEncoder
    from crossrec.encoders.text import TextEncoder

    params = _yaml_params()
    t_cfg, i_cfg, a_cfg = params["text"], params["image"], params["audio"]
    text_model = args.text_model or t_cfg["model"]
    texts, images, source = load_items(args.dataset)
    texts, images = texts[: args.n_text], images[: args.n_image]
    items = synthetic()["items"]
    audio = [p for p in items["audio_path"].tolist() if isinstance(p, str)][: args.n_audio]
    print(
        f"inputs: {len(texts)} texts and {len(images)} images from {source}, "
        f"{len(audio)} WAV clips from the synthetic dataset; torch threads "
        f"{torch.get_num_threads()}, device cpu\n",
        flush=True,
    )

    def text_encoder():
        return TextEncoder(
            text_model,
            pooling=t_cfg["pooling"],
            max_tokens=t_cfg["max_tokens"],
            batch_size=t_cfg["batch_size"],
            device="cpu",
        )

    def image_encoder():
        return ImageEncoder(
            i_cfg["model"],
            batch_size=i_cfg["batch_size"],
            num_workers=i_cfg["num_workers"],
            device="cpu",
        )

    def audio_encoder():
        return AudioEncoder(
            kind="mel",
            batch_size=a_cfg["batch_size"],
            num_workers=a_cfg["num_workers"],
            device="cpu",
        )

    rows = []
    text_enc, img_enc, aud_enc = text_encoder(), image_encoder(), audio_encoder()
    _ = text_enc.model  # load weights before timing
    for name, enc, inputs, naive in (
        (f"text ({text_model})", text_enc, texts, naive_text),
        (f"image ({i_cfg['model']})", img_enc, images, naive_image),
        ("audio (log-mel stats)", aud_enc, audio, naive_audio),
    ):
        # naive first: tensors cached by a model under inference_mode (e.g. rotary tables)
        # cannot be reused by a later autograd pass
        _, t_naive = timed(naive, enc, inputs)
        _, t_batched = timed(enc.encode, inputs)
        rows.append((name, len(inputs) / t_batched, len(inputs) / t_naive))

    print("| modality | items | batched items/s | naive items/s (bs 1, autograd) | speed-up |")
    print("|---|---|---|---|---|")
    counts = [len(texts), len(images), len(audio)]
    for (name, fast, slow), n in zip(rows, counts, strict=True):
        print(f"| {name} | {n} | {fast:.1f} | {slow:.1f} | {fast / slow:.1f}x |")

    # FLOP rates on one batch of each encoder
    ids = text_enc._token_ids(texts[: text_enc.batch_size])
    batch = text_enc.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
    t_g, t_rate = gflops(lambda: text_enc.model(**batch))
    pixels = torch.randn(img_enc.batch_size, *img_enc.data_config["input_size"]).to(
        memory_format=torch.channels_last
    )
    i_g, i_rate = gflops(lambda: img_enc.model.forward_features(pixels))
    print(
        "\n| encoder (one batch) | GFLOP per batch | achieved GFLOP/s | matmul same FLOPs (n) "
        "| matmul GFLOP/s | share of matmul |"
    )
    print("|---|---|---|---|---|---|")
    for name, g, rate in (
        (f"text {text_model} bs {len(ids)}", t_g, t_rate),
        (f"image {i_cfg['model']} bs {img_enc.batch_size}", i_g, i_rate),
    ):
        n, mm = matmul_rate(g)
        print(f"| {name} | {g:.1f} | {rate:.1f} | {n} | {mm:.1f} | {rate / mm:.0%} |")

    work = Path(tempfile.mkdtemp(prefix="crossrec-bench-"))
    try:
        print("\n| modality | cold run s (empty cache) | warm re-run s | warm speed-up |")
        print("|---|---|---|---|")
        for name, build, inputs, kind in (
            ("text", text_encoder, texts, "text"),
            ("image", image_encoder, images, "file"),
            ("audio", audio_encoder, audio, "file"),
        ):
            cold, warm = cold_warm(name, build, inputs, kind, work)
            print(f"| {name} | {cold:.2f} | {warm:.3f} | {cold / warm:.0f}x |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
