"""What each part of the model adds on warm (and cold) items: a bounded ablation loop.

    .venv/bin/python benchmarks/warm_ablation.py --dataset movielens100k_multimodal \
        --variants lightgcn,default --seeds 2026 --max-epochs 60
    .venv/bin/python benchmarks/warm_ablation.py --list        # the variants and their overrides
    # a part removed from a variant: name+dotted.key=value;dotted.key=value; a modality
    # removed at training time (features and kNN graph): name-image, name-text-image
    .venv/bin/python benchmarks/warm_ablation.py --variants \
        "freedom,freedom+model.propagation.edge_dropout=0,freedom+loss.content_weight=0"
    # a tune study's best values (kedro run --pipelines tune) against the defaults, same budget
    .venv/bin/python benchmarks/warm_ablation.py --variants \
        default,tuned@conf/tuned/parameters_finetune.yml --paired default

Reads the fuse artifacts of ``--dataset`` straight from ``data/`` (run
``kedro run --pipelines ingest,featurize_modalities,fuse --params dataset=<name>`` once; no
Kedro here), builds the training data once with ``crossrec.models.inputs.build_training_data``
and trains every variant — conf/base/parameters_finetune.yml with the variant's overrides —
for every seed, one CPU thread, early stopping on validation Recall@20. Each variant is scored
with evaluate's protocol (``crossrec.evaluation.protocol``: full ranking, seeded tie order) on
valid / test / test_warm / test_cold; the table shows the seed means, coverage@20 and training
time, and, with ``--paired A``, the Wilcoxon p-value of every variant against variant ``A``
on the per-user Recall@20 of the main slice (per-user values averaged over seeds). Per-user
values are written to ``--out`` (JSON) so later runs can be compared without retraining.

"Without content" means trained without it: ``use_content: false`` and no modality item
graph, not the trained model with its content masked at inference.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

NO_CONTENT = {"model": {"use_content": False, "propagation": {"item_graph_layers": 0}}}
ID_ONLY_BPR1 = {
    "model": {
        "use_content": False,
        "propagation": {"kind": "lightgcn", "item_graph_layers": 0, "edge_dropout": 0.0},
    },
    "data": {"num_negatives": 1},
    "loss": {"kind": "bpr"},
    "optim": {"lr": 0.01},
}
SOFTMAX = {"loss": {"kind": "softmax", "cosine": True, "temperature": 0.2}}
#: one model: the content model alone, which every variant but the mixes varies
CONTENT_MODEL = {"model": {"content_mix": {"kind": "none"}}}
#: the score mix alone, chosen on overall validation Recall@20 (no tail slots)
MIX_SCORES = {
    "kind": "popularity",
    "taus": [0.0, 10.0, 25.0, 50.0, 100.0, 200.0],
    "slopes": [1.0, 2.0],
    "slots": [0],
    "choose": "overall",
}
#: the mix with tail slots, chosen for the content targets (docs/content-gate.md; the
#: finetune default)
MIX_SLOTS = {
    "kind": "popularity",
    "taus": [0.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 1000.0],
    "slopes": [0.5, 1.0, 2.0],
    "slots": [0, 1, 2],
    "choose": "targets",
}

#: name -> (what it is, overrides of the finetune block). "default" = the YAML as it stands.
VARIANTS: dict[str, tuple[str, dict]] = {
    "default": ("finetune defaults (YAML): the twin / content model mix with tail slots", {}),
    "content": ("the content model alone (content_mix none)", {}),
    "no_content": ("defaults trained without content (no fusion, no item graph)", NO_CONTENT),
    "lightgcn": ("evaluate's LightGCN baseline (IDs, BPR, 1 negative, lr 0.01)", ID_ONLY_BPR1),
    "old_default": (
        "item graph over ego vectors, no content loss (an earlier default)",
        {"model": {"propagation": {"item_graph_input": "ego"}}, "loss": {"content_weight": 0.0}},
    ),
    "freedom_np": (
        "FREEDOM without edge pruning: item graph over IDs, content loss 0.1",
        {"model": {"propagation": {"item_graph_input": "id"}}, "loss": {"content_weight": 0.1}},
    ),
    "channel": (
        "LGMRec's local modality graph: content kept out of the ego, propagated as its own "
        "normalised channel",
        {"model": {"propagation": {"content_path": "channel"}}, "loss": {"content_weight": 0.0}},
    ),
    "freedom": (
        "FREEDOM parts on: edge pruning 0.8, item graph over IDs, content loss 0.1",
        {
            "model": {"propagation": {"edge_dropout": 0.8, "item_graph_input": "id"}},
            "loss": {"content_weight": 0.1},
        },
    ),
    "freedom_no_content": (
        "FREEDOM trained without content: edge pruning 0.8 only",
        {
            "model": {
                "use_content": False,
                "propagation": {"edge_dropout": 0.8, "item_graph_layers": 0},
            }
        },
    ),
    "freedom_softmax": (
        "FREEDOM parts + sampled softmax (cosine, T=0.2)",
        {
            "model": {"propagation": {"edge_dropout": 0.8, "item_graph_input": "id"}},
            "loss": {"content_weight": 0.1, **SOFTMAX["loss"]},
        },
    ),
    "bpr": ("defaults with BPR (16 negatives)", {"loss": {"kind": "bpr"}}),
    "softmax": ("defaults with sampled softmax (cosine, T=0.2)", SOFTMAX),
    "no_content_softmax": (
        "softmax, trained without content",
        {**NO_CONTENT, **SOFTMAX},
    ),
    "biases": (
        "defaults + VBPR's item ID bias and content bias",
        {"model": {"id_bias": True, "content_bias": True}},
    ),
    "content_bias": (
        "defaults + VBPR's content bias only",
        {"model": {"content_bias": True}},
    ),
    "gate": (
        "content and item graph weighed per item by 1 / (1 + deg / 50), deg = train count",
        {"model": {"content_gate": {"kind": "degree", "tau": 50.0}}},
    ),
    "gate_learned": (
        "the same gate as a trained sigmoid in log degree (starts at the fixed schedule)",
        {"model": {"content_gate": {"kind": "learned", "tau": 50.0}}},
    ),
    "gate_output": (
        "the fixed gate after propagation: users keep all content, items' final vectors gated",
        {"model": {"content_gate": {"kind": "degree", "tau": 50.0, "stage": "output"}}},
    ),
    "gate_output_steep": (
        "gate_output with the steeper schedule 1 / (1 + (deg / 50) ** 2)",
        {
            "model": {
                "content_gate": {"kind": "degree", "tau": 50.0, "slope": 2.0, "stage": "output"}
            }
        },
    ),
    "mix": (
        "the no-content twin's and this model's scores (z-scored per user) mixed by item "
        "popularity, tau / slope / scale chosen on validation (two models trained)",
        {"model": {"content_mix": MIX_SCORES}},
    ),
    "mix_tail": (
        "mix whose validation choice keeps the tail: among the points within 0.5% of the best "
        "validation Recall@20, the best on the least popular 40% of validation pairs",
        {"model": {"content_mix": {**MIX_SCORES, "tolerance": 0.005, "tail_share": 0.4}}},
    ),
    "mix_slots": (
        "mix with tail slots, chosen for the targets: among the points (mix x 0-2 of the first "
        "20 places given to the content model's best tail items) that lose at most 0.5% overall "
        "and 1% on the most popular fifth against the twin on validation, the best on the tail",
        {"model": {"content_mix": MIX_SLOTS}},
    ),
    "mix_slots_split": (
        "mix_slots with half the validation users kept out of both models' early stopping and "
        "the choice made on them alone",
        {"model": {"content_mix": {**MIX_SLOTS, "choice_share": 0.5}}},
    ),
    "mix_global": (
        "mix with one score scale per model instead of a z-score per user",
        {"model": {"content_mix": {**MIX_SCORES, "standardise": "global"}}},
    ),
    "mix_raw": (
        "mix of the raw scores (no standardisation)",
        {"model": {"content_mix": {**MIX_SCORES, "standardise": "none"}}},
    ),
    "gate_graph": (
        "the fixed gate on the modality item graph only (ego content ungated)",
        {"model": {"content_gate": {"kind": "degree", "tau": 50.0, "targets": ["item_graph"]}}},
    ),
}


def split_variants(specs: str) -> list[str]:
    """``--variants`` split on the commas outside brackets, so a YAML list value such as
    ``item_graph_modalities=[text,image]`` stays in its variant."""
    out, depth, start = [], 0, 0
    for pos, char in enumerate(specs):
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            out.append(specs[start:pos])
            start = pos + 1
    out.append(specs[start:])
    return [spec for spec in out if spec]


def parse_overrides(pairs: list[str]) -> dict:
    """``a.b.c=value`` pairs (value parsed as YAML) -> nested dict."""
    import yaml

    out: dict = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        if not _:
            sys.exit(f"--set {pair!r}: expected dotted.key=value")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return out


def file_overrides(path: Path) -> dict:
    """The ``finetune:`` block of a parameters file as overrides (its ``tuned_for`` record,
    which says where the values came from, is not a setting)."""
    import yaml

    if not path.is_file():
        sys.exit(f"variant file {path} does not exist")
    block = (yaml.safe_load(path.read_text()) or {}).get("finetune")
    if not isinstance(block, dict):
        sys.exit(f"{path}: expected a finetune: block")
    block.pop("tuned_for", None)
    return block


def load_artifacts(data_dir: Path, dataset: str) -> dict:
    """The ingest and fuse outputs of ``dataset`` (pickles / parquet as the catalog writes them)."""
    import pandas as pd

    inter = data_dir / "02_intermediate" / dataset
    model_input = data_dir / "05_model_input" / dataset
    needed = [
        inter / "interactions.parquet",
        inter / "items.parquet",
        inter / "dataset_info.json",
        model_input / "fused_item_features.pkl",
        model_input / "modality_graphs.pkl",
        model_input / "user_item_graph.pkl",
    ]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        sys.exit(
            f"missing {missing}: run `kedro run --pipelines ingest,featurize_modalities,fuse "
            f"--params dataset={dataset}` first"
        )

    def unpickle(path: Path):
        with path.open("rb") as handle:
            return pickle.load(handle)

    return {
        "interactions": pd.read_parquet(needed[0]),
        "items": pd.read_parquet(needed[1]),
        "dataset_info": json.loads(needed[2].read_text()),
        "fused_item_features": unpickle(needed[3]),
        "modality_graphs": unpickle(needed[4]),
        "user_item_graph": unpickle(needed[5]),
    }


def without_modalities(arts: dict, dropped: list[str]) -> tuple[dict, dict]:
    """Fused features and modality graphs with ``dropped`` removed (trained without them)."""
    from crossrec.evaluation.experiments import select_modalities

    features = arts["fused_item_features"]
    unknown = [m for m in dropped if m not in features]
    if unknown:
        available = [m for m in features if not m.startswith("__")]
        sys.exit(f"cannot drop {unknown}: the dataset's modalities are {available}")
    keep = [m for m in features.get("__order__", []) if m not in dropped]
    graphs = {m: g for m, g in arts["modality_graphs"].items() if m not in dropped}
    return select_modalities(features, keep), graphs


def training_identity(config: dict, modalities: list[str]) -> str:
    """What identifies a trained model: its validated config (schema defaults filled in, the
    seed in ``trainer.seed``; without the settings that change nothing in training: the mix,
    which is applied over trained models, and the content loss of a model without content) and
    the modalities it read."""
    from crossrec.config import deep_merge
    from crossrec.models.config import FinetuneConfig, complete_stored_config

    full = FinetuneConfig.model_validate(complete_stored_config(config)).model_dump(mode="json")
    full["model"].pop("content_mix", None)
    full["trainer"]["resume"] = False
    if not full["model"]["use_content"]:
        full = deep_merge(full, {"loss": {"content_weight": 0.0}})
    return json.dumps([full, list(modalities)], sort_keys=True)


class Trained:
    """Trained bundles, kept in memory and, with a folder, on disk: variants that share a model
    (``no_content`` and ``mix``'s twin, ``default`` and ``mix``'s content model) train it once,
    and a later run finds it by its config (:func:`training_identity`)."""

    def __init__(self, folder: Path | None):
        import torch

        self.folder, self.memory = folder, {}
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.glob("*.pt")):
            stored = torch.load(path, weights_only=False)
            if "state_dict" in stored:  # a bundle saved without its training time
                stored = {"bundle": stored, "train_s": float("nan")}
            bundle = stored["bundle"]
            key = training_identity(bundle["config"], bundle["modalities"])
            self.memory[key + stored.get("key_suffix", "")] = (bundle, stored["train_s"])

    def get(
        self, arts: dict, config: dict, seed: int, dropped=(), stop_rows=None
    ) -> tuple[dict, object, float]:
        """(bundle, training data, seconds its training took, also when reused; nan when a
        stored bundle did not record it). ``stop_rows``: the validation pairs early stopping
        reads, when not all of them (a model trained so is another model)."""
        import hashlib

        import torch

        from crossrec.config import deep_merge
        from crossrec.evaluation.experiments import train_variant
        from crossrec.models.inputs import build_training_data

        features, graphs = without_modalities(arts, list(dropped))
        data = build_training_data(
            arts["interactions"],
            arts["items"],
            arts["dataset_info"],
            features,
            graphs,
            arts["user_item_graph"],
            config,
        )
        modalities = [m for m in features.get("__order__", []) if not m.startswith("__")]
        key = training_identity(deep_merge(config, {"trainer": {"seed": int(seed)}}), modalities)
        suffix = ""
        if stop_rows is not None:
            data = type(data)(**{**data.__dict__, "valid": stop_rows})
            suffix = f"|stops on {stop_rows.nnz} of the validation pairs"
        key += suffix
        if key not in self.memory:
            start = time.perf_counter()
            # one model, as its identity says (the mix is applied over trained models)
            config = deep_merge(config, CONTENT_MODEL)
            bundle = train_variant(data, config, seed, where="warm_ablation")
            self.memory[key] = (bundle, time.perf_counter() - start)
            if self.folder is not None:
                name = hashlib.sha1(key.encode()).hexdigest()[:16]
                torch.save(
                    {"bundle": bundle, "train_s": self.memory[key][1], "key_suffix": suffix},
                    self.folder / f"{name}.pt",
                )
        bundle, seconds = self.memory[key]
        return bundle, data, seconds


def train_and_score(
    arts: dict,
    config: dict,
    seed: int,
    slices,
    split,
    dropped: list[str] = (),
    trained: Trained | None = None,
) -> dict:
    """Train one config with one seed (without the ``dropped`` modalities); per-user metrics
    of every slice plus timings."""
    from crossrec.evaluation.experiments import model_score_fn

    trained = trained or Trained(None)
    if config.get("model", {}).get("content_mix", {}).get("kind", "none") != "none":
        from _warm_mix import mixed_score_fn

        score_fn, bundle, train_s, record = mixed_score_fn(
            trained, arts, config, seed, slices, split, dropped
        )
        return {**score_run(score_fn, bundle, train_s, slices, split), **record}
    bundle, data, train_s = trained.get(arts, config, seed, dropped)
    score_fn = model_score_fn(bundle, data, "cpu")
    return score_run(score_fn, bundle, train_s, slices, split)


def score_run(score_fn, bundle: dict, train_s: float, slices, split) -> dict:
    """Per-user metrics of every slice of one scorer, with the run's epochs and timing."""
    import numpy as np

    from crossrec.evaluation.protocol import evaluate_scorer

    history = bundle.get("history")
    epochs = int(len(history)) if history is not None else -1
    best_epoch = best_validation_epoch(history)
    from crossrec.models.content_mix import bound

    runs = {}
    for piece in slices:  # a slotted mix places its slots among each slice's own candidates
        scorer = bound(score_fn, piece.exclude, piece.candidates)
        runs |= evaluate_scorer(scorer, split, [piece], [20], 20, None)
    out = {"train_s": train_s, "epochs": epochs, "best_epoch": best_epoch, "slices": {}}
    main = main_slice_name(split)
    for piece in slices:
        if piece.name == main:
            out["item_hits@20"] = item_hits(score_fn, piece, split, 20).tolist()
    for name, run in runs.items():
        out["slices"][name] = {
            "users": np.asarray(run["users"]).tolist(),
            "recall@20": np.asarray(run["metrics"]["recall@20"]).tolist(),
            "ndcg@20": np.asarray(run["metrics"]["ndcg@20"]).tolist(),
            "coverage@20": float(run["scalars"]["coverage@20"]),
            "arp@20": float(np.mean(run["metrics"]["arp@20"])),
        }
    return out


def main_slice_name(split) -> str:
    """The slice the tables lead with: warm items when the split holds cold ones out."""
    return "test_warm" if split.is_cold.any() else "test"


def item_hits(score_fn, piece, split, k: int):
    """(n_items,) how many of each item's held-out pairs of the slice made their user's top k:
    with the slice's held-out counts per item, recall by item popularity (``--by-popularity``)."""
    import numpy as np

    from crossrec.metrics.ranking import hit_matrix, rank_and_evaluate
    from crossrec.models.content_mix import bound

    users, _, ranked = rank_and_evaluate(
        bound(score_fn, piece.exclude, piece.candidates),
        piece.truth,
        piece.exclude,
        [k],
        candidates=piece.candidates,
        tie_order=split.tie_order,
    )
    truth = held_out(piece)
    top = ranked[:, :k]
    found = hit_matrix(top, users, truth, k)[:, : top.shape[1]]
    return np.bincount(top[found], minlength=truth.shape[1])


def held_out(piece):
    """The slice's held-out (user, item) pairs as a 0/1 csr matrix, candidates only."""
    import numpy as np
    import scipy.sparse as sp

    truth = sp.csr_matrix(piece.truth, dtype=np.float32)
    truth.sum_duplicates()
    truth.eliminate_zeros()
    if piece.candidates is not None:
        truth = truth.multiply(piece.candidates[None, :].astype(np.float32)).tocsr()
        truth.eliminate_zeros()
    truth.data[:] = 1.0
    return truth


def popularity_buckets(popularity, truth, n_buckets: int):
    """Bucket of every item by train popularity, edges at quantiles of the slice's held-out
    pairs (each bucket holds about 1/n of them): (bucket per item, edges)."""
    import numpy as np

    per_item = np.asarray(truth.sum(axis=0)).ravel()
    pair_pop = np.repeat(popularity, per_item.astype(np.int64))
    edges = np.unique(np.quantile(pair_pop, np.linspace(0, 1, n_buckets + 1)[1:-1]))
    return np.searchsorted(edges, popularity, side="right"), edges


def print_popularity_table(
    all_results: dict, split, slices, main: str, paired: str | None, n_buckets: int
) -> None:
    """Recall@20 of the main slice's held-out pairs, by the train popularity of their item:
    where a variant's gain comes from (content should matter most for rarely seen items)."""
    import numpy as np

    piece = next(p for p in slices if p.name == main)
    truth = held_out(piece)
    per_item = np.asarray(truth.sum(axis=0)).ravel()
    bucket, edges = popularity_buckets(split.popularity, truth, n_buckets)
    # counts are integers and an item equal to an edge is in the upper bucket
    bounds = [0, *np.ceil(edges).astype(int), None]
    labels = [
        f"{lo}-{'max' if hi is None else hi - 1}"
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    n_total = per_item.sum()
    shares = [per_item[bucket == b].sum() / n_total for b in range(len(labels))]
    print(f"\n{main}: Recall@20 of the held-out pairs by their item's train interactions")
    print(
        "| variant | "
        + " | ".join(f"{lab} ({sh:.0%})" for lab, sh in zip(labels, shares, strict=True))
        + " |"
    )
    print("|" + "---|" * (len(labels) + 1))
    recall = {}
    for name, res in all_results.items():
        runs = [np.asarray(r["item_hits@20"]) for r in res if "item_hits@20" in r]
        if len(runs) != len(res):
            print(f"| {name} | " + " | ".join("-" for _ in labels) + " |  (rerun: no item hits)")
            continue
        hits = np.mean(runs, axis=0)
        recall[name] = [
            hits[bucket == b].sum() / max(per_item[bucket == b].sum(), 1)
            for b in range(len(labels))
        ]
        cells = [f"{v:.4f}" for v in recall[name]]
        if paired in recall and name != paired:
            cells = [
                f"{v:.4f} ({v / base - 1:+.1%})" if base > 0 else f"{v:.4f}"
                for v, base in zip(recall[name], recall[paired], strict=True)
            ]
        print(f"| {name} | " + " | ".join(cells) + " |")


def best_validation_epoch(history) -> int:
    """1-based epoch of the best validation Recall@20 (-1 without it): equal to ``epochs``
    means the run stopped at the cap while validation still rose."""
    rows = [r for r in (history or []) if r.get("val/recall@20") is not None]
    if not rows:
        return -1
    best = max(range(len(rows)), key=lambda i: rows[i]["val/recall@20"])
    return best + 1


def seed_mean(results: list[dict], slice_name: str, metric: str):
    import numpy as np

    values = [np.asarray(r["slices"][slice_name][metric]) for r in results]
    return np.mean(values, axis=0)


def print_table(all_results: dict, main: str, paired: str | None) -> None:
    import numpy as np

    from crossrec.evaluation.significance import paired_test

    names = list(all_results)
    slices = [
        s
        for s in ("valid", "test", "test_warm", "test_cold")
        if s in all_results[names[0]][0]["slices"]
    ]
    head = ["variant"] + [f"{s} R@20" for s in slices] + [f"{main} N@20", "cold N@20"]
    head += [f"cov@20 ({main})", "arp@20", "best:epochs", "train s"]
    if paired:
        head += [f"R@20 vs {paired}", "p", "N@20 vs", "p"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in names:
        res = all_results[name]
        row = [name]
        for s in slices:
            row.append(f"{np.mean([np.mean(r['slices'][s]['recall@20']) for r in res]):.4f}")
        row.append(f"{np.mean(seed_mean(res, main, 'ndcg@20')):.4f}")
        row.append(
            f"{np.mean(seed_mean(res, 'test_cold', 'ndcg@20')):.4f}"
            if "test_cold" in slices
            else "-"
        )
        row.append(f"{np.mean([r['slices'][main]['coverage@20'] for r in res]):.3f}")
        row.append(f"{np.mean([r['slices'][main]['arp@20'] for r in res]):.3f}")
        row.append("/".join(f"{r.get('best_epoch', '?')}:{r['epochs']}" for r in res))
        row.append(f"{np.mean([r['train_s'] for r in res]):.0f}")
        if paired and paired in all_results and name != paired:
            for metric in ("recall@20", "ndcg@20"):
                a = seed_mean(res, main, metric)
                b = seed_mean(all_results[paired], main, metric)
                if len(a) == len(b):
                    test = paired_test(a, b, metric)
                    row += [
                        f"{test.mean_diff / max(test.mean_b, 1e-12):+.1%}",
                        f"{test.wilcoxon_p:.3g}",
                    ]
                else:
                    row += ["seeds differ", "-"]
        elif paired:
            row += ["", "", "", ""]
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument(
        "--variants",
        default="lightgcn,no_content,default",
        help="comma list of NAME[-modality...][+key=value;...] or NAME@parameters.yml",
    )
    parser.add_argument("--seeds", default="2026")
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--set", nargs="*", default=[], help="dotted.key=value for every variant")
    parser.add_argument("--paired", default=None, help="variant every other is tested against")
    parser.add_argument("--out", type=Path, default=None, help="per-user results (JSON)")
    parser.add_argument(
        "--by-popularity",
        type=int,
        default=5,
        metavar="N",
        help="also a table of the main slice's Recall@20 in N item-popularity buckets (0: off)",
    )
    parser.add_argument(
        "--bundles",
        type=Path,
        default=None,
        help="folder of trained bundles: reused when a variant and seed were trained before",
    )
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        for name, (label, overrides) in VARIANTS.items():
            print(f"{name:22s} {label}\n{'':22s} {json.dumps(overrides)}")
        return

    import logging

    import yaml

    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from crossrec.config import deep_merge
    from crossrec.evaluation.protocol import build_split, ranking_slices

    base = yaml.safe_load((ROOT / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    base = deep_merge(
        base,
        {
            "trainer": {
                "cpu_threads": 1,
                "max_epochs": args.max_epochs,
                "patience": args.patience,
                "accelerator": "cpu",
            }
        },
    )
    common = parse_overrides(args.set)
    arts = load_artifacts(args.data_dir, args.dataset)
    info = arts["dataset_info"]
    split = build_split(
        arts["interactions"], arts["items"], int(info["n_users"]), int(info["n_items"]), 0
    )
    slices = ranking_slices(split, ["valid", "test", "test_warm", "test_cold"])
    main_slice = main_slice_name(split)
    seeds = [int(s) for s in args.seeds.split(",")]
    previous = json.loads(args.out.read_text()) if args.out and args.out.exists() else {}
    results: dict[str, list[dict]] = {}
    trained = Trained(args.bundles)
    for spec in split_variants(args.variants):
        # name-modality-modality+key=value;key=value: trained without those modalities, with
        # those overrides
        # name@file.yml: the finetune block of a parameters file (e.g. conf/tuned's, written by
        # the tune pipeline) over the defaults
        head, _, extra = spec.partition("+")
        head, _, from_file = head.partition("@")
        name, *dropped = head.split("-")
        if from_file:
            variant = file_overrides(Path(from_file))
        elif name in VARIANTS:
            variant = VARIANTS[name][1]
        else:
            sys.exit(f"unknown variant {name!r}; --list shows them, or use NAME@parameters.yml")
        if name != "default" and "content_mix" not in variant.get("model", {}):
            variant = deep_merge(CONTENT_MODEL, variant)  # a variant of the content model
        overrides = deep_merge(variant, parse_overrides(extra.split(";") if extra else []))
        config = deep_merge(deep_merge(base, common), overrides)
        key = spec + (f" [{' '.join(args.set)}]" if args.set else "")
        results[key] = []
        for seed in seeds:
            cached = [r for r in previous.get(key, []) if r.get("seed") == seed]
            if cached:
                results[key].append(cached[0])
                continue
            res = train_and_score(arts, config, seed, slices, split, dropped, trained)
            res["seed"] = seed
            results[key].append(res)
            recalls = res["slices"][main_slice]["recall@20"]
            print(
                f"{key} seed {seed}: {main_slice} R@20 {sum(recalls) / len(recalls):.4f} "
                f"(best epoch {res['best_epoch']} of {res['epochs']}, {res['train_s']:.0f}s)",
                flush=True,
            )
            if args.out:
                previous.setdefault(key, [])
                previous[key] = [r for r in previous[key] if r.get("seed") != seed] + [res]
                args.out.write_text(json.dumps(previous))
    print(f"\n{args.dataset}, seeds {seeds}, main slice {main_slice}")
    print_table(results, main_slice, args.paired)
    if args.by_popularity:
        print_popularity_table(results, split, slices, main_slice, args.paired, args.by_popularity)


if __name__ == "__main__":
    main()
