"""The ``trained_model`` artifact: everything needed to rebuild the model without training state.

``{"config": dict, "state_dict": {name: Tensor}, "n_users", "n_items", "modalities",
"history", "resumed_from"}``: ``config`` is the effective config of the run (for a resumed run,
what really ran: see ``crossrec.models.resume``) and ``resumed_from`` is None or the checkpoint
it continued (``{"checkpoint", "epoch", "global_step"}``; older bundles lack the key).
Frozen inputs (feature vectors, graphs, user histories, frozen LLM weights) are not stored:
:func:`load_recommender` rebuilds them from the same data the model was trained on.
"""

from __future__ import annotations

import logging

import torch

from crossrec.models.config import FinetuneConfig
from crossrec.models.inputs import TrainingData
from crossrec.models.recommender import Recommender

log = logging.getLogger(__name__)

BUNDLE_KEYS = ("config", "state_dict", "n_users", "n_items", "modalities", "history")


def learnt_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State entries worth saving: trainable parameters and persistent buffers (on CPU)."""
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k not in frozen}


def state_megabytes(state: dict[str, torch.Tensor]) -> float:
    return sum(t.numel() * t.element_size() for t in state.values()) / 2**20


def warn_about_size(config: FinetuneConfig, state: dict[str, torch.Tensor]) -> None:
    """LLM models: log what the bundle holds; full mode (every LLM weight) warns."""
    if config.model.fusion.strategy != "llm":
        return
    mode, size = config.model.fusion.llm.mode, state_megabytes(state)
    if mode == "full":
        log.warning(
            "LLM full mode: the bundle holds every LLM weight (%.0f MB per model version); "
            "lora or partial store only what trained (adapters / top layers + projectors)",
            size,
        )
    else:
        log.info("LLM %s mode: the bundle holds %.1f MB (what trained only)", mode, size)


def make_bundle(
    model: Recommender,
    config: FinetuneConfig,
    history: list[dict],
    resumed_from: dict | None = None,
) -> dict:
    state = learnt_state_dict(model)
    warn_about_size(config, state)
    return {
        "config": config.model_dump(mode="json"),
        "state_dict": state,
        "n_users": int(model.n_users),
        "n_items": int(model.n_items),
        "modalities": list(model.modalities),
        "history": [dict(row) for row in history],
        "resumed_from": dict(resumed_from) if resumed_from else None,
    }


def build_recommender(data: TrainingData, config: FinetuneConfig) -> Recommender:
    """A fresh (untrained) model for ``data`` as ``config`` describes it; under
    ``model.content_mix`` the content model (``train_recommender`` trains its twin too)."""
    from crossrec.models.user_attributes import attach_user_attributes

    model = Recommender(
        config.model,
        n_users=data.n_users,
        n_items=data.n_items,
        train=data.train,
        item_features=data.item_features,
        modality_graphs=data.modality_graphs,
        user_item_graph=data.user_item_graph,
        train_recency=data.train_recency,
        item_texts=data.item_texts,
        cosine=config.loss.kind == "softmax" and config.loss.cosine,
    )
    return attach_user_attributes(model, data.user_attributes)


def load_recommender(bundle: dict, data: TrainingData) -> Recommender:
    """Rebuild the trained model (eval mode) from a bundle and the data it was trained on; a
    mix of the content model and its twin (``model.content_mix``) as a
    :class:`~crossrec.models.mixed.MixedRecommender`."""
    from crossrec.models.mixed import MIX_KEY, load_mixed

    if MIX_KEY in bundle:
        return load_mixed(bundle, data)
    missing = [k for k in BUNDLE_KEYS if k not in bundle]
    if missing:
        raise ValueError(f"trained_model bundle lacks keys {missing}; expected {list(BUNDLE_KEYS)}")
    if (bundle["n_users"], bundle["n_items"]) != (data.n_users, data.n_items):
        raise ValueError(
            f"trained_model was trained on {bundle['n_users']} users x {bundle['n_items']} items, "
            f"but the data has {data.n_users} x {data.n_items}"
        )
    config = FinetuneConfig.model_validate(bundle["config"])
    model = build_recommender(data, config)
    if list(model.modalities) != list(bundle["modalities"]):
        raise ValueError(
            f"trained_model used modalities {bundle['modalities']}, the item features have "
            f"{model.modalities}"
        )
    result = model.load_state_dict(bundle["state_dict"], strict=False)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    really_missing = [k for k in result.missing_keys if k not in frozen]
    if really_missing or result.unexpected_keys:
        raise ValueError(
            f"trained_model state does not fit the rebuilt model: missing {really_missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    return model.eval()
