"""LLM fine-tuning step speed: naive path (whole LLM every step) vs cached trunk, one run.

Prints one table, each path measured in its own child process (so the peak memory is its own):

* ``naive``: what ``main`` did before the trunk cache — soft tokens at the input, the whole
  LLM forward and backward every step, positives and per-example negatives encoded in two
  calls (``batch x num_negatives`` negative items);
* ``naive, same items``: the whole LLM over exactly the items the cached step encodes (isolates
  the trunk cache from the step economy);
* ``cached``: the trunk (bottom layers) from the cache, only the top ``--top-n`` layers run;
  positives + ``num_negatives`` shared negatives, each distinct item encoded once.

samples/s = training examples (user, positive, negatives) per second of forward + backward +
Adam step. Peak memory: the child's peak RSS (CPU; includes the model weights) or
``torch.cuda.max_memory_allocated`` (GPU). The trunk's one-off cost per item is printed too
(it is paid once per item text, then read from the disk cache). The last line is
``speedup: <N>x`` (cached vs naive samples/s).

Usage::

    .venv/bin/python benchmarks/llm_finetune.py [--dataset movielens100k_multimodal]
        [--mode partial] [--top-n 2] [--batch 8] [--negatives 4] [--steps 5] [--threads 1]

Texts and poster vectors come from ``data/04_feature/<dataset>/item_texts.json`` and
``data/05_model_input/<dataset>/fused_item_features.pkl`` when present (run the pipeline up to
fuse), else from synthetic sentences and random vectors.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from llm_bench import draw_batch, sub_catalogue, train_step

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def load_items(dataset: str, n_fallback: int = 400) -> tuple[list[str], dict]:
    """Item texts and soft-token features (posters) of ``dataset``, or synthetic ones."""
    texts_file = ROOT / "data" / "04_feature" / dataset / "item_texts.json"
    fused_file = ROOT / "data" / "05_model_input" / dataset / "fused_item_features.pkl"
    if texts_file.exists() and fused_file.exists():
        texts = json.loads(texts_file.read_text())
        with open(fused_file, "rb") as handle:
            fused = pickle.load(handle)
        image = fused["image"]
        features = {"image": image, "__order__": ["image"]}
        return texts, features
    rng = np.random.default_rng(0)
    words = "the a movie about love war space robot city night hero story dark light".split()
    texts = [" ".join(rng.choice(words, size=40)) for _ in range(n_fallback)]
    image = rng.normal(size=(n_fallback, 1280)).astype(np.float32)
    return texts, {"image": {"vectors": image, "mask": np.ones(n_fallback, bool)}}


def run_path(path: str, args: argparse.Namespace, queue) -> None:
    """Build the encoder for ``path``, time ``args.steps`` training steps, report to ``queue``."""
    import torch

    from crossrec.models.item_towers.llm_encoder import LLMFusionConfig, build_llm_item_encoder

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    texts, features = load_items(args.dataset)
    batch = draw_batch(len(texts), args.batch, args.negatives)
    cached = path == "cached"
    # only the items this benchmark touches: the trunk build is then about their texts alone
    if path == "naive":
        items = np.unique(np.concatenate([batch["pos"], batch["neg"].ravel()]))
    else:
        items = np.unique(np.concatenate([batch["pos"], batch["shared"]]))
    remap, sub_texts, sub_features = sub_catalogue(texts, features, items)
    config = LLMFusionConfig(
        mode=args.mode,
        top_n_layers=args.top_n,
        trunk_cache=cached,
        trunk_cache_dir=None,
        max_text_tokens=args.max_tokens,
        dtype="bfloat16" if device.type == "cuda" and args.bf16 else "float32",
    )
    torch.manual_seed(0)
    start = time.perf_counter()
    encoder = build_llm_item_encoder(sub_texts, sub_features, config).to(device)
    build_s = time.perf_counter() - start
    pos = torch.as_tensor([remap[int(i)] for i in batch["pos"]], device=device)
    if path == "naive":
        neg = torch.as_tensor([[remap[int(i)] for i in row] for row in batch["neg"]], device=device)
    else:
        shared = torch.as_tensor([remap[int(i)] for i in batch["shared"]], device=device)
        neg = shared.expand(len(pos), -1)
    users = torch.randn(len(pos), encoder.out_dim, device=device)
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)

    def step() -> None:
        # naive = main before the cache: two calls, per-example negatives; else one call
        train_step(encoder, optimizer, users, pos, neg, one_call=path != "naive")

    if path == "cached":  # warm-up (allocations, first-call overheads); naive steps are long
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    steps = args.naive_steps if path.startswith("naive") else args.steps
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    distinct = int(torch.unique(torch.cat([pos, neg.reshape(-1)])).numel())
    encoded = len(pos) + neg.numel() if path == "naive" else distinct
    queue.put(
        {
            "path": path,
            "samples_per_s": len(pos) * steps / elapsed,
            "step_s": elapsed / steps,
            "items_encoded": encoded,
            "items_per_s": encoded * steps / elapsed,
            "peak_mb": peak_mb,
            "build_s": build_s,
            "trunk_items": len(items) if cached else 0,
            "trainable": sum(p.numel() for p in params),
        }
    )


def measure(path: str, args: argparse.Namespace) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=run_path, args=(path, args, queue))
    child.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except Exception:  # queue.Empty: still running, unless the child died (e.g. OOM-killed)
            if not child.is_alive():
                raise SystemExit(
                    f"{path}: the child process died (exit code {child.exitcode}; -9 = killed, "
                    f"often out of memory: lower --batch / --negatives)"
                ) from None
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument("--mode", default="partial", choices=["frozen", "lora", "partial"])
    parser.add_argument("--top-n", type=int, default=2)
    # small by default: the naive path keeps 30 layers of activations for its backward
    # (16 x 16 with 64-token texts needed > 18 GB and was OOM-killed on a 23 GB machine)
    parser.add_argument("--batch", type=int, default=8, help="training examples per step")
    parser.add_argument("--negatives", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="timed steps of the cached path")
    parser.add_argument("--naive-steps", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 weights on CUDA")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory():
        results = [measure(path, args) for path in ("naive", "naive-same-items", "cached")]
    print(
        f"\nSmolLM2 {args.mode}, top {args.top_n} layers, batch {args.batch} examples x "
        f"{args.negatives} negatives, {args.threads} thread(s), {args.device}\n"
    )
    header = (
        f"{'path':<18} {'samples/s':>10} {'step s':>8} {'items/step':>10} {'items/s':>8} "
        f"{'peak MB':>8} {'trainable':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['path']:<18} {r['samples_per_s']:>10.2f} {r['step_s']:>8.2f} "
            f"{r['items_encoded']:>10d} {r['items_per_s']:>8.2f} {r['peak_mb']:>8.0f} "
            f"{r['trainable']:>10,d}"
        )
    naive, same, cached = results
    trunk_per_item = cached["build_s"] / max(cached["trunk_items"], 1)
    print(
        f"\ntrunk cache, once per item text: {cached['trunk_items']} items in "
        f"{cached['build_s']:.1f}s incl. model load ({trunk_per_item:.2f} s/item)"
    )
    print(
        f"trunk cache alone (same items): {cached['samples_per_s'] / same['samples_per_s']:.1f}x;"
        f" with the step economy: see below"
    )
    print(f"speedup: {cached['samples_per_s'] / naive['samples_per_s']:.1f}x")


if __name__ == "__main__":
    main()
