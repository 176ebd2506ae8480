"""Trained models as score functions: retrain a config with another seed, baselines as
``FinetuneConfig`` overrides, and inference-time modality ablation.

Everything goes through ``crossrec.models`` (``train_recommender`` / ``load_recommender``): the
baselines are configurations of the same machinery, not a separate codebase.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from crossrec.models.mixed import WITHOUT_CONTENT

logger = logging.getLogger(__name__)


def bundle_seed(bundle: dict, default: int) -> int:
    """The seed a ``trained_model`` bundle was trained with (its trainer.seed, else ``default``)."""
    seed = (bundle.get("config") or {}).get("trainer", {}).get("seed")
    return int(default if seed is None else seed)


def select_modalities(item_features: dict, wanted: list[str] | None) -> dict:
    """``fused_item_features`` restricted to ``wanted`` modalities (None = all)."""
    if wanted is None:
        return item_features
    keep = [m for m in item_features.get("__order__", []) or sorted(item_features) if m in wanted]
    keep = [m for m in keep if not m.startswith("__")]
    out = {m: item_features[m] for m in keep}
    out["__order__"] = keep
    return out


#: blocks of the trained model's config a baseline inherits: how to run, not what to learn
INHERITED_BLOCKS = ("trainer",)


def baseline_config(trained_config: dict, baseline_defaults: dict, overrides: dict) -> dict:
    """The finetune config of a ``finetune``-kind baseline, configured on its own.

    It starts from the finetune schema defaults (= conf/base/parameters_finetune.yml), takes
    only the ``trainer`` block (devices, threads, precision, monitor) from the trained model,
    then ``baseline_defaults`` and the baseline's ``overrides``. A knob tuned or set on the
    model (``id_dropout``, ``edge_dropout``, the loss, an ``--env tuned`` study's choices)
    therefore never silently changes VBPR, ContentOnly or LightGCN.
    """
    from crossrec.config import deep_merge
    from crossrec.models.config import FinetuneConfig

    base = FinetuneConfig().model_dump(mode="json")
    base["model"]["content_mix"]["kind"] = "none"  # a baseline is one model, not crossrec's mix
    for block in INHERITED_BLOCKS:
        if block in trained_config:
            base[block] = trained_config[block]
    return deep_merge(deep_merge(base, baseline_defaults), overrides)


def uses_content(baseline_defaults: dict, overrides: dict) -> bool:
    """Whether a ``finetune``-kind baseline trains with content (``model.use_content``), which
    a dataset of interactions only cannot give it."""
    config = baseline_config({}, baseline_defaults, overrides)
    return bool(config.get("model", {}).get("use_content", True))


def ablate_modality(
    item_features: dict, graphs: dict, modality: str, config: dict
) -> tuple[dict, dict]:
    """Features and graphs with ``modality`` removed at inference time.

    The modality's mask is set all False (and its vectors zeroed), so the trained model uses its
    learned "missing" vector for every item, exactly as for an item without that medium. Its kNN
    item graph is dropped from the averaged item graph (replaced by an empty graph when the
    config names it explicitly).
    """
    if modality not in item_features:
        raise ValueError(
            f"cannot ablate {modality!r}: fused_item_features has {sorted(item_features)}"
        )
    features = dict(item_features)
    entry = dict(item_features[modality])
    entry["vectors"] = np.zeros_like(np.asarray(entry["vectors"]))
    entry["mask"] = np.zeros(len(entry["mask"]), dtype=bool)
    features[modality] = entry
    graphs = dict(graphs)
    if modality in graphs:
        named = (config.get("model", {}).get("propagation", {}) or {}).get("item_graph_modalities")
        if named and modality in named:
            graphs[modality] = sp.csr_matrix(graphs[modality].shape, dtype=np.float32)
        else:
            del graphs[modality]
    return features, graphs


def trained_ablation_variants(config: dict, modalities: list[str], scope: str) -> list:
    """``(label, modality or None)`` of each variant to retrain: None = without any content.

    A modality is only dropped on its own when at least two are left to drop (with one, it is
    the no-content variant). A model without ID embeddings cannot be trained without content:
    there is nothing left to score with, so it gets no variant (logged).
    """
    model = config.get("model", {})
    if scope == "none" or not model.get("use_content", True) or not modalities:
        return []
    if not model.get("use_id_embedding", True):
        logger.warning(
            "trained ablation skipped: the model has no ID embeddings, so without content it "
            "would score nothing"
        )
        return []
    variants: list[tuple[str, str | None]] = [("trained w/o content", None)]
    if scope == "modalities" and len(modalities) > 1:
        variants += [(f"trained w/o {m}", m) for m in modalities]
    return variants


def without_modality(
    item_features: dict, graphs: dict, config: dict, modality: str | None
) -> tuple[dict, dict, dict]:
    """(features, graphs, config) to train the model's configuration without ``modality``
    (None: without any content). Unlike :func:`ablate_modality` the modality is gone at
    training time too: no input, no kNN graph, no missing-vector token."""
    from crossrec.config import deep_merge

    if modality is None:
        return item_features, graphs, deep_merge(config, WITHOUT_CONTENT)
    order = item_features.get("__order__") or sorted(item_features)
    others = [m for m in order if not m.startswith("__") and m != modality]
    features = select_modalities(item_features, others)
    graphs = {name: graph for name, graph in graphs.items() if name != modality}
    named = (config.get("model", {}).get("propagation", {}) or {}).get("item_graph_modalities")
    if named and modality in named:
        kept = [m for m in named if m != modality]
        propagation = {"item_graph_modalities": kept or None}
        if not kept:
            propagation["item_graph_layers"] = 0
        config = deep_merge(config, {"model": {"propagation": propagation}})
    return features, graphs, config


def train_variant(data: Any, config_dict: dict, seed: int, where: str) -> dict:
    """Train ``config_dict`` (a full finetune block) with ``seed``; returns the bundle.

    Checkpoints and logs go to a temporary folder that is removed afterwards: the evaluation
    keeps only the in-memory bundle.
    """
    from crossrec.config import deep_merge, parse_params
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.training import train_recommender

    config_dict = deep_merge(config_dict, {"trainer": {"seed": int(seed), "resume": False}})
    config = parse_params(FinetuneConfig, config_dict, where=where)
    with tempfile.TemporaryDirectory(prefix="crossrec-eval-") as run_dir:
        result = train_recommender(data, config, run_dir=Path(run_dir), enable_progress_bar=False)
    logger.info(
        "%s seed %d: best %s = %.4f", where, seed, config.trainer.monitor, result.best_score
    )
    return result.bundle


def model_score_fn(bundle: dict, data: Any, device: str):
    """``load_recommender`` on ``device`` wrapped as a ScoreFn."""
    import torch

    from crossrec.models.bundle import load_recommender

    model = load_recommender(bundle, data).to(device)
    model.eval()
    if getattr(model, "mixed", False):
        return model  # scores without gradients, and binds to each slice (tail slots)

    def score(users: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.score_users(users.to(device))

    return score
