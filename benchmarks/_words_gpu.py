"""The words section of ``benchmarks/llm_gpu.py``: the words encoder fine-tuned on every train
pair (``evaluate.words.finetune``, symmetric in-batch InfoNCE on (words, item text) pairs), then
the words protocol's frozen vs fine-tuned comparison (``crossrec.evaluation.words``).

Inputs travel as one folder (``prepare``): ``inputs.pkl``, a dataset's word requests,
evaluation split, item texts and the trained model's user / item vectors (4.7 MB for Last.fm),
and ``encoder/``, the words encoder in float16 (45 MB for MiniLM, whose packaged float32 copy
exceeds what travels); the GPU machine needs neither the pipeline's artifacts nor a trained
model. ``--tiny`` uses the synthetic dataset
(its tags name each item's class) with stand-in model vectors instead: the CPU smoke run.
"""

from __future__ import annotations

import json
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COMPARISON = "words_history_finetuned vs words_history_frozen"


def _yaml_block(name: str, *keys: str) -> dict:
    import yaml

    block = yaml.safe_load((ROOT / "conf" / "base" / name).read_text())
    for key in keys:
        block = block[key]
    return block


def _latest(path: Path) -> Path:
    """A versioned Kedro dataset's newest version file (``<path>/<version>/<name>``)."""
    if path.is_file():
        return path
    versions = (
        sorted(p for p in path.iterdir() if (p / path.name).is_file()) if path.is_dir() else []
    )
    if not versions:
        sys.exit(f"{path} is missing: run `kedro run --params dataset=<dataset>` first")
    return versions[-1] / path.name


def save_encoder(name: str, folder: Path, dtype: str) -> None:
    """The words encoder's weights (``dtype``: float16 halves MiniLM's 91 MB to 45 MB, under
    the 64 MiB that travels to a lent GPU machine) and tokenizer, loaded back in float32."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from crossrec.encoders.zoo import resolve_model

    path = resolve_model(name)
    model = AutoModel.from_pretrained(path, dtype=getattr(torch, dtype))
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(path).save_pretrained(folder)


def prepare(data_dir: Path, dataset: str, out: Path, encoder_dtype: str = "float16") -> dict:
    """Everything the comparison needs, from the pipeline's artifacts of ``dataset``: the
    folder ``out`` holds ``inputs.pkl`` and ``encoder/`` (the words encoder in
    ``encoder_dtype``)."""
    import pandas as pd

    from crossrec.evaluation.config import EvaluateConfig
    from crossrec.evaluation.runner import prepare_split
    from crossrec.evaluation.words import model_vectors
    from crossrec.models.config import complete_stored_config
    from crossrec.models.inputs import TrainingArtifacts

    def unpickle(path: Path):
        with path.open("rb") as handle:
            return pickle.load(handle)

    inter, model_input = (
        data_dir / "02_intermediate" / dataset,
        data_dir / "05_model_input" / dataset,
    )
    info = json.loads((inter / "dataset_info.json").read_text())
    artifacts = TrainingArtifacts(
        interactions=pd.read_parquet(inter / "interactions.parquet"),
        items=pd.read_parquet(inter / "items.parquet"),
        dataset_info=info,
        fused_item_features=unpickle(model_input / "fused_item_features.pkl"),
        modality_graphs=unpickle(model_input / "modality_graphs.pkl"),
        user_item_graph=unpickle(model_input / "user_item_graph.pkl"),
        item_texts=json.loads((data_dir / "04_feature" / dataset / "item_texts.json").read_text()),
    )
    cfg = EvaluateConfig.model_validate(_yaml_block("parameters_evaluate.yml", "evaluate"))
    split = prepare_split(artifacts.interactions, artifacts.items, info, cfg)
    bundle = unpickle(_latest(data_dir / "06_models" / dataset / "trained_model.pkl"))
    config = complete_stored_config(bundle["config"])
    users, items = model_vectors(bundle, artifacts.training_data(config))
    inputs = {
        "dataset": dataset,
        "requests": pd.read_parquet(data_dir / "03_primary" / dataset / "word_requests.parquet"),
        "split": split,
        "item_texts": artifacts.item_texts,
        "vectors": [(users, items)],
        "seeds": [int((config.get("trainer") or {}).get("seed") or 0)],
    }
    out.mkdir(parents=True, exist_ok=True)
    with (out / "inputs.pkl").open("wb") as handle:
        pickle.dump(inputs, handle)
    save_encoder(cfg.words.encoder, out / "encoder", encoder_dtype)
    return inputs


def tiny_inputs(folder: Path) -> dict:
    """The synthetic dataset (tags name each item's class) and a stand-in model whose users
    point at the classes they consumed in train and items at their class, plus noise."""
    import pandas as pd

    from crossrec.data.ingest import ingest_in_memory
    from crossrec.data.synthetic import CLASSES, make_synthetic_dataset, synthetic_ingest_params
    from crossrec.encoders.config import parse_featurize_params
    from crossrec.encoders.modalities import item_texts
    from crossrec.evaluation.protocol import build_split

    raw = make_synthetic_dataset(
        folder / "syn", n_users=80, n_items=48, seed=3, with_images=False, with_audio=False
    )
    out = ingest_in_memory(synthetic_ingest_params(raw), "syn", seed=0)
    info = out["dataset_info"]
    split = build_split(out["interactions"], out["items"], info["n_users"], info["n_items"], 0)
    texts = item_texts(out["items"], info, parse_featurize_params({}))
    rng = np.random.default_rng(0)
    classes = pd.read_csv(raw / "items.csv").set_index("item")["content_class"]
    klass = out["items"]["item_id"].map(classes).to_numpy()
    items = np.eye(len(CLASSES))[klass] + 0.05 * rng.normal(size=(len(klass), len(CLASSES)))
    train = out["interactions"].query("split == 'train'")
    users = np.zeros((info["n_users"], len(CLASSES)))
    np.add.at(users, (train["user_idx"].to_numpy(), klass[train["item_idx"].to_numpy()]), 1.0)
    return {
        "dataset": "synthetic (tiny)",
        "requests": out["word_requests"],
        "split": split,
        "item_texts": texts,
        "vectors": [(users.astype(np.float32), items.astype(np.float32))],
        "seeds": [0],
    }


def words_config(args, tiny: bool):
    from crossrec.words.config import WordsConfig

    block = _yaml_block("parameters_evaluate.yml", "evaluate", "words")
    block["device"] = args.device
    block["finetune"].update(max_pairs=args.max_pairs, epochs=args.epochs, save_to=None)
    if tiny:  # a tower that learns something from the synthetic dataset's few pairs
        block["tower"].update(hidden=32, epochs=30, batch_size=64, lr=0.01)
        block["finetune"]["batch_size"] = 16
        block["blend_step"] = 0.25
    return WordsConfig.model_validate(block)


def ratio_line(block: dict) -> str:
    k = block["k"]
    parts = []
    for metric in (f"recall@{k}", f"ndcg@{k}"):
        tuned = block["words_history_finetuned"][metric]
        frozen = block["words_history_frozen"][metric]
        p = block["significance"][COMPARISON][metric]["wilcoxon_p"]
        ratio = tuned / frozen if frozen else float("nan")
        parts.append(f"{metric} {tuned:.4f} / {frozen:.4f} = {ratio:.3f}x (Wilcoxon p = {p:.2g})")
    return "words + history, fine-tuned / frozen encoder: " + "; ".join(parts)


def run(args, device, json_path: Path) -> dict[str, Any]:
    """The comparison; writes ``<json_path stem>_words.json`` and returns its content."""
    from crossrec.evaluation.words import evaluate_words

    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        if args.tiny:
            inputs = tiny_inputs(Path(folder))
        else:
            path = Path(args.words_inputs)
            if not (path / "inputs.pkl").is_file():
                sys.exit(
                    f"{path}/inputs.pkl is missing: write it with `python benchmarks/llm_gpu.py "
                    f"--words-prepare {path}` where the pipeline's artifacts are"
                )
            with (path / "inputs.pkl").open("rb") as handle:
                inputs = pickle.load(handle)
        config = words_config(args, args.tiny)
        if not args.tiny and (Path(args.words_inputs) / "encoder" / "config.json").is_file():
            config = config.model_copy(update={"encoder": str(Path(args.words_inputs) / "encoder")})
        block = evaluate_words(
            inputs["requests"],
            inputs["split"],
            inputs["item_texts"],
            inputs["vectors"],
            inputs["seeds"],
            config,
            Path(folder) / "encoder",
        )
    if not block:
        sys.exit("the words protocol had nothing to rank (no valid / test requests or no text)")
    k = block["k"]
    result = {
        "command": " ".join(["python", *sys.argv]),
        "dataset": inputs["dataset"],
        "device": str(device),
        "encoder": block["encoder"],
        "finetune": config.finetune.model_dump(mode="json"),
        "training_pairs": block["training_pairs"],
        "requests": block["requests"],
        "seeds": block["seeds"],
        "timings": block["timings"],
        "variants": {
            name: {m: block[name][m] for m in (f"recall@{k}", f"ndcg@{k}")}
            for name in ("history_only", "dense_frozen", "dense_finetuned")
            + ("words_history_frozen", "words_history_finetuned")
        },
        "significance": block["significance"][COMPARISON],
        "ratio": ratio_line(block),
        "wall_s": time.perf_counter() - began,
    }
    out = json_path.with_name(json_path.stem + "_words.json")
    out.write_text(json.dumps(result, indent=2, default=float))
    pairs = config.finetune.max_pairs or "all"
    print(
        f"words encoder {block['encoder']} fine-tuned on {device}: {pairs} of "
        f"{block['training_pairs']} train pairs, {config.finetune.epochs} epoch(s), "
        f"{block['timings'].get('finetune_encoder_s', float('nan')):.0f} s; "
        f"{block['requests']['test']} test requests of {inputs['dataset']}, "
        f"seeds {block['seeds']}"
    )
    for name, values in result["variants"].items():
        print(f"  {name:<26} " + "  ".join(f"{m} {v:.4f}" for m, v in values.items()))
    print(result["ratio"])
    print(f"written: {out}")
    return result
