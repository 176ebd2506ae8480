"""Before vs after fine-tuning the LLM, on the demo's split and evaluation protocol.

Trains each variant with ``train_recommender`` (early stopping on validation Recall@20, capped
at ``--max-epochs``), evaluates it with the evaluation runner (full ranking, the demo's tie
order, slices test / test_warm / test_cold), and writes
``data/08_reporting/<dataset>/llm_before_after.json`` after every variant (a crash keeps the
finished ones; ``--resume`` skips them). Prints the markdown table of
:func:`crossrec.evaluation.before_after.before_after_table`.

Variants: ``lightgcn`` (IDs only, the evaluate baseline's config), ``default`` (the finetune
defaults: frozen SmolLM2 text + poster features, LightGCN + modality kNN graphs), and the
``llm`` strategy — LightGCN's model plus late LLM content (text + poster soft token), started
from the LightGCN run's ID embeddings so the short LLM budget goes to the content part:
``llm_frozen`` (no LLM weight trains: the "before"), ``llm_lora`` and ``llm_partial`` (the
"after"). Run ``lightgcn`` first in the same invocation (the warm start). Needs the
pipeline's artifacts up to ``fuse`` in ``data/`` (``make demo``, or the pipelines up to fuse).

Usage::

    .venv/bin/python benchmarks/llm_before_after.py [--variants lightgcn,default,llm_frozen,...]
        [--max-epochs 150] [--llm-max-epochs 4] [--patience 8] [--llm-patience 3]
        [--lr 0.005] [--llm-lr 5e-4] [--seeds 2026] [--threads 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

ID_ONLY = {
    "model": {
        "use_id_embedding": True,
        "use_content": False,
        "user_tower": {"kind": "none"},
        "propagation": {"kind": "lightgcn", "layers": 3, "item_graph_layers": 0},
    },
    "data": {"in_batch_negatives": False, "sampler": "uniform", "num_negatives": 1},
    "loss": {"kind": "bpr"},
    "optim": {"lr": 0.01},  # evaluate's baseline_defaults
}


def llm(mode: str) -> dict:
    """LightGCN's model plus late LLM content; warm-started from the LightGCN run's IDs."""
    return {
        **ID_ONLY,
        "model": {
            **ID_ONLY["model"],
            "use_content": True,
            "fusion": {"strategy": "llm", "llm": {"mode": mode}},
        },
        "optim": {"lr": 0.005, "llm_lr": 5.0e-4},  # --lr / --llm-lr
    }


VARIANTS = {
    "lightgcn": ("LightGCN (IDs only)", "baseline", ID_ONLY),
    "default": ("crossrec default (frozen SmolLM2 features + poster)", "frozen", {}),
    "llm_frozen": ("llm strategy, frozen LLM (before)", "frozen", llm("frozen")),
    "llm_lora": ("llm strategy, LoRA top 2 layers (after)", "finetuned", llm("lora")),
    "llm_partial": ("llm strategy, partial top 2 layers (after)", "finetuned", llm("partial")),
}


def load_yaml_block(name: str, block: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "conf" / "base" / name).read_text())[block]


def load_upstream(dataset: str):
    import pandas as pd

    from crossrec.models.inputs import TrainingArtifacts

    data = ROOT / "data"
    with open(data / "05_model_input" / dataset / "fused_item_features.pkl", "rb") as f:
        fused = pickle.load(f)
    with open(data / "05_model_input" / dataset / "modality_graphs.pkl", "rb") as f:
        graphs = pickle.load(f)
    with open(data / "05_model_input" / dataset / "user_item_graph.pkl", "rb") as f:
        ui_graph = pickle.load(f)
    return TrainingArtifacts(
        interactions=pd.read_parquet(data / "02_intermediate" / dataset / "interactions.parquet"),
        items=pd.read_parquet(data / "02_intermediate" / dataset / "items.parquet"),
        dataset_info=json.loads(
            (data / "02_intermediate" / dataset / "dataset_info.json").read_text()
        ),
        fused_item_features=fused,
        modality_graphs=graphs,
        user_item_graph=ui_graph,
        item_texts=json.loads((data / "04_feature" / dataset / "item_texts.json").read_text()),
    )


@contextmanager
def warm_start(bundle: dict | None):
    """Models built inside start from ``bundle``'s user / item ID embeddings (same shapes)."""
    import crossrec.models.bundle as bundles

    original = bundles.build_recommender

    def build(data, config):
        model = original(data, config)
        if bundle is not None:
            own = model.state_dict()
            state = {
                k: v
                for k, v in bundle["state_dict"].items()
                if k in ("user_id.weight", "item_id.weight") and own[k].shape == v.shape
            }
            model.load_state_dict(state, strict=False)
        return model

    bundles.build_recommender = build
    try:
        yield
    finally:
        bundles.build_recommender = original


def trainable_params(bundle: dict, data) -> int:
    from crossrec.models.bundle import load_recommender

    model = load_recommender(bundle, data)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def run_variant(key: str, args, upstream, evaluation, start_from: dict) -> dict:
    from crossrec.config import deep_merge, parse_params
    from crossrec.evaluation.experiments import model_score_fn
    from crossrec.evaluation.protocol import aggregate_seeds
    from crossrec.models.bundle import state_megabytes
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.training import train_recommender

    label, kind, overrides = VARIANTS[key]
    is_llm = key.startswith("llm_")
    base = deep_merge(load_yaml_block("parameters_finetune.yml", "finetune"), overrides)
    if is_llm:
        base = deep_merge(base, {"optim": {"lr": args.lr, "llm_lr": args.llm_lr}})
    runs, epoch_times, epochs, train_s = [], [], [], 0.0
    trainable, bundle_mb = 0, 0.0
    for seed in args.seeds:
        trainer = {
            "max_epochs": args.llm_max_epochs if is_llm else args.max_epochs,
            "patience": args.llm_patience if is_llm else args.patience,
            "seed": seed,
            "cpu_threads": args.threads,
        }
        config = parse_params(
            FinetuneConfig, deep_merge(base, {"trainer": trainer}), where=f"variant {key}"
        )
        data = upstream.training_data(config.model_dump(mode="json"))
        start = time.perf_counter()
        with (
            tempfile.TemporaryDirectory(prefix="crossrec-ba-") as run_dir,
            warm_start(start_from.get(seed) if is_llm else None),
        ):
            result = train_recommender(
                data, config, run_dir=Path(run_dir), enable_progress_bar=False
            )
        if key == "lightgcn":
            start_from[seed] = result.bundle
        train_s += time.perf_counter() - start
        history = result.history
        epoch_times += list(history["epoch_time_s"])
        epochs.append(len(history))
        runs.append(evaluation.run(model_score_fn(result.bundle, data, "cpu")))
        trainable = trainable_params(result.bundle, data)
        bundle_mb = state_megabytes(result.bundle["state_dict"])
    metrics = aggregate_seeds(runs)
    flat = {
        f"{s}/{m}": metrics[s][m]
        for s in ("valid", "test", "test_warm", "test_cold")
        if s in metrics
        for m in ("recall@20", "ndcg@20")
    }
    return {
        "key": key,
        "model": label,
        "kind": kind,
        "metrics": flat,
        "epoch_s": float(sum(epoch_times) / max(len(epoch_times), 1)),
        "epochs": max(epochs),
        "train_s": round(train_s, 1),
        "trainable_params": int(trainable),
        "bundle_mb": round(bundle_mb, 2),
        "seeds": len(args.seeds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--llm-max-epochs", type=int, default=4)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument(
        "--llm-patience", type=int, default=None, help="the llm variants' (default: --patience)"
    )
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[2026])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.005, help="the llm variants' lr")
    parser.add_argument("--llm-lr", type=float, default=5.0e-4, help="their LLM weights' lr")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default: reporting)")
    parser.add_argument("--resume", action="store_true", help="keep variants already saved")
    args = parser.parse_args()
    args.llm_patience = args.patience if args.llm_patience is None else args.llm_patience
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from crossrec.config import parse_params
    from crossrec.evaluation.before_after import before_after_table, verdict
    from crossrec.evaluation.config import EvaluateConfig
    from crossrec.evaluation.runner import Evaluation, prepare_split

    os.chdir(ROOT)  # the trunk cache path (data/04_feature/llm_trunk_cache) is project-relative
    upstream = load_upstream(args.dataset)
    cfg = parse_params(
        EvaluateConfig,
        {**load_yaml_block("parameters_evaluate.yml", "evaluate"), "ablation": False},
        where="evaluate",
    )
    split = prepare_split(upstream.interactions, upstream.items, upstream.dataset_info, cfg)
    evaluation = Evaluation(cfg, split, upstream)
    out = args.out or ROOT / "data" / "08_reporting" / args.dataset / "llm_before_after.json"
    results = json.loads(out.read_text()) if args.resume and out.exists() else {"rows": []}
    done = {row["key"] for row in results["rows"]}
    results.update(
        {
            "dataset": args.dataset,
            "protocol": (
                f"{args.dataset}, the demo's split and protocol (full ranking, seeded random tie "
                f"order); seeds {args.seeds}; early stopping on validation Recall@20 (patience "
                f"{args.patience}, {args.llm_patience} for the llm strategy), at most "
                f"{args.max_epochs} epochs ({args.llm_max_epochs} for "
                f"the llm strategy, whose epoch is finetune.llm_training's limit_train_batches "
                f"steps); {args.threads} CPU thread(s). The llm variants are LightGCN's model "
                f"plus late LLM content (soft token: poster), warm-started from the LightGCN "
                f"run's ID embeddings, lr {args.lr:g}, llm_lr {args.llm_lr:g}. s / epoch: mean "
                f"over the epochs run (training + validation)."
            ),
            "command": "python " + " ".join(["benchmarks/llm_before_after.py", *sys.argv[1:]]),
        }
    )
    start_from: dict = {}  # seed -> LightGCN bundle (the llm variants' warm start)
    for key in args.variants.split(","):
        if key in done:
            continue
        logging.info("variant %s", key)
        results["rows"].append(run_variant(key, args, upstream, evaluation, start_from))
        results["verdict"] = verdict(results)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(out)
    print(before_after_table(results))
    print(results.get("verdict", ""))


if __name__ == "__main__":
    main()
