"""LLM fine-tuning throughput on a GPU: bf16 autocast x gradient checkpointing x lora/partial/full.

One prepared run for a lent GPU (README, "On a GPU"): the throughput section times training
steps of the LLM item encoder for each mode, gradient checkpointing off and on, under
``torch.autocast(bfloat16)`` with float32 master weights:

* ``lora``: LoRA adapters on the top ``--top-n`` layers, the trunk below them cached;
* ``partial``: the top ``--top-n`` layers train, the trunk below them cached;
* ``full``: the whole LLM trains and runs every step (no cache).

A step is ``--batch`` examples x ``--negatives`` shared negatives, each distinct item encoded
once (one call, as in training), ``--tokens``-token texts plus one poster soft token. Per row:
samples/s, tokens/s through the layers that run, estimated TFLOP/s (6 x N_run x tokens/s) and
its share of ``--peak-tflops``, peak GPU memory, the first step's loss and gradient norm (the
same with checkpointing on and off: it must not change the math). A last section trains the
``llm`` strategy with Lightning (``train_recommender``, bf16-mixed) on a synthetic dataset of
movielens' size and reports s/epoch.

The LLM is SmolLM2-135M's architecture with RANDOM weights (``crossrec.models.item_towers.
random_llm``): speed does not depend on the weight values, and the real weights (a pip package
converted on first use) cannot travel to a lent GPU machine. The trunk cache is filled on the
device first (``precompute_trunk``). Everything is written to ``--out`` after each row.

Usage::

    python benchmarks/llm_gpu.py                         # H200 defaults, < 6 min
    python benchmarks/llm_gpu.py --quick                 # about a minute
    python benchmarks/llm_gpu.py --device cpu --quick --tiny   # CPU smoke run (the test)

``--words``: instead, the words encoder fine-tuned on a dataset's train (words, item text)
pairs (all of them, 3 epochs by default) and the words protocol's frozen vs fine-tuned
comparison (``benchmarks/_words_gpu.py``; docs/gpu-run.md)::

    python benchmarks/llm_gpu.py --words-prepare words_inputs   # here, from data/
    python benchmarks/llm_gpu.py --words --words-inputs words_inputs   # on the GPU
    python benchmarks/llm_gpu.py --device cpu --tiny --words --max-pairs 64 --epochs 1
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
from llm_bench import draw_batch, sub_catalogue, train_step

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no load report per row
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: the tiny CPU stand-in: 3 layers, so the cached modes still cache one (top 2 run)
TINY_SHAPE = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}
MODES = ("lora", "partial", "full")
FLOP_FORMULA = (
    "TFLOP/s = 6 x N_run x tokens/s / 1e12, N_run = parameters of the decoder layers that run "
    "each step (top layers in lora/partial, all in full; LoRA adapters included). Not counted: "
    "attention scores, embeddings, the forward that checkpointing recomputes. LoRA's frozen "
    "weights get no weight gradient (~4 x N_run really), so its figure is ~1.5x too high."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cuda | cpu")
    parser.add_argument("--quick", action="store_true", help="fewer steps, 1 epoch (~1 min)")
    parser.add_argument("--tiny", action="store_true", help="tiny LLaMA and sizes (CPU test)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--batch", type=int, help="examples per step (default 256; tiny 16)")
    parser.add_argument("--negatives", type=int, help="shared negatives (default 512; tiny 32)")
    parser.add_argument("--tokens", type=int, help="text tokens per item (default 128; tiny 16)")
    parser.add_argument("--items", type=int, help="catalogue drawn from (default 1663; tiny 200)")
    parser.add_argument("--top-n", type=int, default=2, help="layers that run in lora/partial")
    parser.add_argument("--steps", type=int, help="timed steps per row (default 20; quick 3)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 2; quick 1)")
    parser.add_argument("--row-seconds", type=float, help="stop a row's timing after this")
    parser.add_argument("--time-limit", type=float, help="whole run (default 330 s; quick 100)")
    parser.add_argument("--peak-tflops", type=float, default=790.0, help="bf16 matmul peak")
    parser.add_argument("--no-autocast", action="store_true", help="float32 throughout")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (CPU only)")
    parser.add_argument("--lightning-epochs", type=int, help="0 = no Lightning section")
    parser.add_argument("--lightning-mode", default="partial", choices=MODES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="JSON file or folder (default $OUT, else data/08_reporting)")
    words = parser.add_argument_group("words encoder (--words: only this section)")
    words.add_argument("--words", action="store_true", help="fine-tune it, frozen vs fine-tuned")
    words.add_argument("--words-inputs", default="words_inputs", help="from --words-prepare")
    words.add_argument("--words-prepare", metavar="DIR", help="write the inputs folder, exit")
    words.add_argument("--words-encoder-dtype", default="float16", choices=("float16", "float32"))
    words.add_argument("--words-dataset", default="lastfm2k_multimodal")
    words.add_argument("--data-dir", default=str(ROOT / "data"), help="the pipeline's data/")
    words.add_argument("--max-pairs", type=_pairs, default=None, help="train pairs (null = all)")
    words.add_argument("--epochs", type=int, default=3, help="words encoder epochs")
    args = parser.parse_args(argv)
    tiny, quick = args.tiny, args.quick
    defaults = {
        "batch": 16 if tiny else 256,
        "negatives": 32 if tiny else 512,
        "tokens": 16 if tiny else 128,
        "items": 200 if tiny else 1663,
        "steps": 3 if quick else 20,
        "warmup": 1 if quick else 2,
        "row_seconds": 5.0 if quick else 25.0,
        "time_limit": 100.0 if quick else 330.0,
        "lightning_epochs": 1 if quick else 2,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(args.modes) - set(MODES))
    if unknown:
        parser.error(f"--modes: unknown {unknown}; choose from {list(MODES)}")
    if max(args.batch, args.negatives) > args.items:
        parser.error(f"--batch and --negatives must be <= --items ({args.items})")
    return args


def _pairs(value: str) -> int | None:
    return None if value.lower() in ("null", "none", "all") else int(value)


def out_paths(out: str | None) -> tuple[Path, Path]:
    """``(json, table)`` files: ``--out``, else ``$OUT`` (a folder), else data/08_reporting."""
    target = Path(out or os.environ.get("OUT") or ROOT / "data" / "08_reporting" / "llm_gpu.json")
    if target.suffix != ".json":
        target = target / "llm_gpu.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    return target, target.with_suffix(".txt")


def write_json(path: Path, result: dict) -> None:
    """Atomic write: a crash mid-run keeps the last complete file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=float))
    tmp.replace(path)


def random_texts(words: list[str], n: int, length: int, seed: int) -> list[str]:
    """``n`` texts of exactly ``length`` known words (= tokens for the word-level tokenizer)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=length)) for _ in range(n)]


def versions() -> dict:
    import lightning
    import peft
    import torch
    import transformers

    info = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "lightning": lightning.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


# ------------------------------------------------------------------------------ throughput


def layers_that_run(encoder) -> list:
    from crossrec.models.item_towers.llm_encoder import decoder_layers

    return list(decoder_layers(encoder.backbone)[encoder.n_trunk or 0 :])


def count_mlp_calls(layers) -> tuple[list[int], list]:
    """A counter of the layers' MLP calls: 1 per layer and step, 2 when checkpointing recomputes
    the forward in the backward (transformers checkpoints a layer's ``forward``, so hooks on
    the layer itself fire once either way; its submodules' fire again)."""
    calls = [0]

    def hook(module, args) -> None:
        calls[0] += 1

    return calls, [getattr(layer, "mlp", layer).register_forward_pre_hook(hook) for layer in layers]


def step_tokens(encoder, items) -> int:
    """Tokens that go through the layers that run: each distinct item's soft + text tokens."""
    n_soft = sum(p.n_tokens for p in encoder.projectors.values())
    text = encoder.item_data()["text_mask"][items.to(encoder.item_data()["text_mask"].device)]
    return int(len(items) * n_soft + text.sum())


def grad_norm(params) -> float:
    import torch

    grads = [p.grad.float().norm() for p in params if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def free_memory(device) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def measure_row(mode: str, checkpointing: bool, bench: dict, args, device) -> dict:
    """Build the encoder for ``mode``, run warm-up then timed steps, return the row."""
    import torch

    from crossrec.models.item_towers.llm_encoder import build_llm_item_encoder, precompute_trunk

    config = {
        "model": str(bench["model_dir"]),
        "mode": mode,
        "top_n_layers": args.top_n,
        "trunk_cache": mode != "full",
        "trunk_cache_dir": str(bench["cache_dir"]),
        "max_text_tokens": args.tokens,
        "gradient_checkpointing": checkpointing,
    }
    start = time.perf_counter()
    if mode != "full":
        precompute_trunk(bench["texts"], config, device)
        free_memory(device)  # the peak below is the training's own
    torch.manual_seed(args.seed)
    encoder = build_llm_item_encoder(bench["texts"], bench["features"], config).to(device)
    build_s = time.perf_counter() - start
    pos, neg = bench["pos"].to(device), bench["neg"].to(device)
    users = bench["users"][:, : encoder.out_dim].to(device)
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    run = layers_that_run(encoder)
    amp = None if args.no_autocast else torch.bfloat16

    def step():
        return train_step(encoder, optimizer, users, pos, neg, amp=amp)

    calls, hooks = count_mlp_calls(run)
    first_loss = float(step())
    first_grad = grad_norm(params)
    for hook in hooks:
        hook.remove()
    for _ in range(args.warmup - 1):
        step()
    synchronize(device)
    steps, began = 0, time.perf_counter()
    while steps < args.steps and (steps == 0 or time.perf_counter() - began < args.row_seconds):
        step()
        steps += 1
    synchronize(device)
    elapsed = time.perf_counter() - began
    tokens = step_tokens(encoder, torch.unique(torch.cat([pos, neg[0]])))
    n_run = sum(p.numel() for layer in run for p in layer.parameters())
    tflops = 6 * n_run * tokens * steps / elapsed / 1e12
    row = {
        "mode": mode,
        "checkpointing": checkpointing,
        "layers_run": len(run),
        "params_run": n_run,
        "trainable": sum(p.numel() for p in params),
        "steps": steps,
        "step_s": elapsed / steps,
        "samples_per_s": len(pos) * steps / elapsed,
        "tokens_per_step": tokens,
        "tokens_per_s": tokens * steps / elapsed,
        "tflops": tflops,
        "peak_share": tflops / args.peak_tflops,
        "peak_gb": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
        "first_loss": first_loss,
        "first_grad_norm": first_grad,
        "mlp_calls_per_step": calls[0],
        "build_s": build_s,
    }
    return row


def run_row(mode: str, checkpointing: bool, bench: dict, args, device) -> dict:
    """:func:`measure_row`, or its error (out of memory, ...) without stopping the run: one
    device call must bring back every row it can."""
    free_memory(device)
    try:
        return measure_row(mode, checkpointing, bench, args, device)
    except Exception as err:  # recorded in the row, traceback printed
        traceback.print_exc()
        return {"mode": mode, "checkpointing": checkpointing, "error": describe(err)}
    finally:
        free_memory(device)


def describe(err: Exception) -> str:
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:300]}"


def throughput_bench(model_dir: Path, words: list[str], args, tmp: Path) -> dict:
    """The catalogue the rows share: the items one batch touches, their texts and posters."""
    import torch

    texts = random_texts(words, args.items, args.tokens, args.seed)
    rng = np.random.default_rng(args.seed)
    posters = rng.normal(size=(args.items, 1280)).astype(np.float32)
    features = {"image": {"vectors": posters, "mask": np.ones(args.items, bool)}}
    batch = draw_batch(args.items, args.batch, args.negatives, args.seed)
    items = np.unique(np.concatenate([batch["pos"], batch["shared"]]))
    remap, sub_texts, sub_features = sub_catalogue(texts, features, items)
    pos = torch.as_tensor([remap[int(i)] for i in batch["pos"]])
    shared = torch.as_tensor([remap[int(i)] for i in batch["shared"]])
    users = torch.randn(args.batch, 4096, generator=torch.Generator().manual_seed(args.seed))
    return {
        "model_dir": model_dir,
        "cache_dir": tmp / "trunk_cache",
        "texts": sub_texts,
        "features": sub_features,
        "pos": pos,
        "neg": shared.expand(len(pos), -1),
        "users": users,
        "distinct_items": len(items),
    }


def checkpointing_check(rows: list[dict]) -> list[dict]:
    """Per mode: the first step's loss and gradient norm, checkpointing off vs on."""
    out = []
    for mode in dict.fromkeys(r["mode"] for r in rows):
        pair = {r["checkpointing"]: r for r in rows if r["mode"] == mode and "error" not in r}
        if len(pair) == 2:
            off, on = pair[False], pair[True]
            out.append(
                {
                    "mode": mode,
                    "loss_off": off["first_loss"],
                    "loss_on": on["first_loss"],
                    "grad_norm_off": off["first_grad_norm"],
                    "grad_norm_on": on["first_grad_norm"],
                    "grad_norm_rel_diff": abs(on["first_grad_norm"] - off["first_grad_norm"])
                    / max(abs(off["first_grad_norm"]), 1e-12),
                }
            )
    return out


# ------------------------------------------------------------------------------ Lightning


def synthetic_training_data(n_users: int, n_items: int, texts: list[str], tmp: Path, config):
    """A synthetic dataset (crossrec.data.synthetic) through ingest and fuse, as TrainingData;
    ``texts`` replace its short item texts (the LLM reads them)."""
    from crossrec.data.ingest import ingest_in_memory
    from crossrec.data.synthetic import (
        bag_of_words,
        make_synthetic_dataset,
        mean_colour,
        synthetic_ingest_params,
    )
    from crossrec.graphs.config import FuseConfig
    from crossrec.graphs.fuse import (
        build_modality_graphs,
        build_user_item_graph,
        fuse_item_features,
        train_item_degrees,
    )
    from crossrec.models.inputs import build_training_data

    folder = make_synthetic_dataset(tmp / "synthetic", n_users, n_items, with_audio=False)
    ingested = ingest_in_memory(synthetic_ingest_params(folder), folder.name, seed=0)
    items = ingested["items"].sort_values("item_idx")
    info = ingested["dataset_info"]
    image, image_mask = mean_colour(items["image_path"].tolist())
    raw = {
        "text": {"vectors": bag_of_words(texts), "mask": np.ones(len(items), bool)},
        "image": {"vectors": image, "mask": image_mask},
    }
    fuse = FuseConfig(knn={"device": "cpu"})  # 1,663 items: the kNN graphs take a second
    fused = fuse_item_features(raw, info, fuse)
    degrees = train_item_degrees(ingested["interactions"], int(info["n_items"]))
    graphs = build_modality_graphs(fused, fuse, degrees)
    user_item = build_user_item_graph(ingested["interactions"], info)
    return build_training_data(
        ingested["interactions"], items, info, fused, graphs, user_item, config, texts
    )


def epoch_timer(device, stop_at: float):
    """A Lightning callback timing each epoch (training, then validation) on synced clocks, and
    stopping the run once ``stop_at`` (perf_counter) has passed."""
    import lightning.pytorch as pl

    class EpochTimer(pl.Callback):
        def __init__(self) -> None:
            self.epochs: list[dict] = []

        def _now(self) -> float:
            synchronize(device)
            return time.perf_counter()

        def on_train_epoch_start(self, trainer, module) -> None:
            self.epochs.append({"start": self._now()})

        def on_validation_start(self, trainer, module) -> None:
            if self.epochs:
                self.epochs[-1]["validation"] = self._now()

        def on_train_epoch_end(self, trainer, module) -> None:
            epoch = self.epochs[-1]
            end = self._now()
            epoch["s"] = end - epoch.pop("start")
            epoch["validation_s"] = end - epoch.pop("validation", end)

        def on_train_batch_end(self, trainer, *args) -> None:
            if time.perf_counter() > stop_at:
                trainer.should_stop = True

    return EpochTimer()


def lightning_section(model_dir: Path, words: list[str], args, device, tmp: Path, left: float):
    """s/epoch of a short ``llm``-strategy Lightning run (bf16-mixed on CUDA)."""
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.item_towers.llm_encoder import precompute_trunk
    from crossrec.models.training import train_recommender

    needed = 25.0 if args.quick else 60.0
    if args.lightning_epochs < 1:
        return {"skipped": "not run: --lightning-epochs 0"}
    if left < needed:
        return {"skipped": f"not run: {left:.0f} s left of --time-limit, needs ~{needed:.0f} s"}
    cuda = device.type == "cuda"
    n_users, n_items = (300, 400) if args.tiny else (943, 1663)
    llm = {
        "model": str(model_dir),
        "mode": args.lightning_mode,
        "top_n_layers": args.top_n,
        "trunk_cache_dir": str(tmp / "trunk_cache"),
    }
    trainer = {
        "max_epochs": args.lightning_epochs,
        "accelerator": "gpu" if cuda else "cpu",
        "devices": 1,
        "precision": "bf16-mixed" if cuda else "32-true",
        "cpu_threads": "auto" if cuda else args.threads,
        "patience": 100,
        "seed": args.seed,
        "log_every_n_steps": 1,
    }
    llm_training = {"limit_train_batches": 2} if args.quick else {}
    config = FinetuneConfig.model_validate(
        {
            # the LLM model alone: its training speed, not its ID-only twin's
            "model": {"fusion": {"strategy": "llm", "llm": llm}, "content_mix": {"kind": "none"}},
            "trainer": trainer,
            "llm_training": llm_training,
        }
    )
    began = time.perf_counter()
    # movielens texts average 86 tokens; max_text_tokens (32) cuts them as in training
    texts = random_texts(words, n_items, 86, args.seed + 1)
    data = synthetic_training_data(n_users, n_items, texts, tmp, config)
    trunk_began = time.perf_counter()
    precompute_trunk(texts, config.model.fusion.llm, device)
    trunk_s = time.perf_counter() - trunk_began
    timer = epoch_timer(device, stop_at=began + left - 10)
    fit_began = time.perf_counter()
    result = train_recommender(
        data, config, run_dir=tmp / "lightning", extra_callbacks=[timer], enable_progress_bar=False
    )
    epochs = [e for e in timer.epochs if "s" in e]
    later = epochs[1:] or epochs
    return {
        "users": data.n_users,
        "items": data.n_items,
        "train_interactions": int(data.train.nnz),
        "mode": args.lightning_mode,
        "precision": trainer["precision"],
        "epochs": epochs,
        "s_per_epoch": float(np.mean([e["s"] for e in later])) if later else None,
        "s_per_epoch_note": "mean over epochs after the first (warm-up) when there are several",
        "trunk_s": trunk_s,
        "fit_s": time.perf_counter() - fit_began,
        "best_score": result.best_score,
        "setup_s": trunk_began - began,
    }


# ------------------------------------------------------------------------------ report


def format_table(result: dict) -> str:
    lines = [
        f"LLM fine-tuning throughput, {result['llm']} (random weights), {result['device']}, "
        f"{'bf16 autocast' if result['autocast'] else 'float32'}, batch {result['batch']} x "
        f"{result['negatives']} shared negatives, {result['tokens']} text tokens + 1 soft token, "
        f"{result['distinct_items']} distinct items/step",
        "",
    ]
    header = (
        f"{'mode':<8} {'ckpt':<4} {'layers':>6} {'trainable':>11} {'samples/s':>10} "
        f"{'tokens/s':>11} {'TFLOP/s':>8} {'% peak':>7} {'peak GB':>8} {'loss@1':>9} "
        f"{'|grad|@1':>9}"
    )
    lines += [header, "-" * len(header)]
    for r in result["rows"]:
        ckpt = "on" if r["checkpointing"] else "off"
        if "error" in r:
            lines.append(f"{r['mode']:<8} {ckpt:<4} {r['error']}")
            continue
        peak = f"{r['peak_gb']:.1f}" if r["peak_gb"] is not None else "-"
        lines.append(
            f"{r['mode']:<8} {ckpt:<4} {r['layers_run']:>6} {r['trainable']:>11,} "
            f"{r['samples_per_s']:>10.1f} {r['tokens_per_s']:>11,.0f} {r['tflops']:>8.3g} "
            f"{100 * r['peak_share']:>6.1f}% {peak:>8} {r['first_loss']:>9.5f} "
            f"{r['first_grad_norm']:>9.4f}"
        )
    lines += ["", result["flop_formula"], f"% peak: of {result['peak_tflops']} TFLOP/s."]
    light = result.get("lightning")
    if light and ("skipped" in light or "error" in light):
        lines.append(f"Lightning: {light.get('skipped') or light['error']}")
    elif light:
        lines.append(
            f"Lightning ({light['mode']}, {light['precision']}, {light['users']} users x "
            f"{light['items']} items): {light['s_per_epoch']:.2f} s/epoch over "
            f"{len(light['epochs'])} epoch(s); trunk precomputed in {light['trunk_s']:.1f} s"
        )
    lines.append(f"wall: {result['wall_s']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    began = time.perf_counter()
    import torch

    from crossrec.device import resolve_device
    from crossrec.models.item_towers.random_llm import SMOLLM2_135M, filler_words, save_random_llama

    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.set_float32_matmul_precision("high")  # the float32 trunk precompute
    json_path, table_path = out_paths(args.out)
    if args.words_prepare or args.words:
        import _words_gpu

        if args.words_prepare:
            _words_gpu.prepare(
                Path(args.data_dir),
                args.words_dataset,
                Path(args.words_prepare),
                args.words_encoder_dtype,
            )
            print(f"written: {args.words_prepare}")
        else:
            _words_gpu.run(args, device, json_path)
        return
    shape = TINY_SHAPE if args.tiny else SMOLLM2_135M
    words = filler_words(shape["vocab_size"] - 4)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "device": str(device),
        "versions": versions(),
        "llm": "tiny LLaMA" if args.tiny else "SmolLM2-135M architecture",
        "shape": shape,
        "autocast": not args.no_autocast,
        "batch": args.batch,
        "negatives": args.negatives,
        "tokens": args.tokens,
        "flop_formula": FLOP_FORMULA,
        "peak_tflops": args.peak_tflops,
        "rows": [],
    }
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        model_dir = save_random_llama(tmp / "llm", words, seed=args.seed, **shape)
        bench = throughput_bench(model_dir, words, args, tmp)
        result["distinct_items"] = bench["distinct_items"]
        for mode in args.modes:
            for checkpointing in (False, True):
                left = args.time_limit - (time.perf_counter() - began)
                if left < args.row_seconds + 10:
                    row = {"mode": mode, "checkpointing": checkpointing, "error": "time limit"}
                else:
                    row = run_row(mode, checkpointing, bench, args, device)
                print(json.dumps(row, default=float), flush=True)
                result["rows"].append(row)
                write_json(json_path, result)
        result["checkpointing_check"] = checkpointing_check(result["rows"])
        left = args.time_limit - (time.perf_counter() - began)
        try:
            result["lightning"] = lightning_section(model_dir, words, args, device, tmp, left)
        except Exception as err:  # the rows above still get their table
            traceback.print_exc()
            result["lightning"] = {"error": describe(err)}
    result["wall_s"] = time.perf_counter() - began
    write_json(json_path, result)
    table = format_table(result)
    table_path.write_text(table + "\n")
    print("\n" + table)
    print(f"\nwritten: {json_path} and {table_path}")


if __name__ == "__main__":
    main()
