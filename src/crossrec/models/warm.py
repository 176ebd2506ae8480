"""Warm start: a trained model carried over to data that grew by appended users and items.

Indices are stable across increments (:mod:`crossrec.data.increments` only appends), so row
``i < n_old`` of an ID table is the same user / item as before. Known users and items keep
their learnt vectors and every shared weight (fusion projections, user tower) is copied. A new
item's ID vector starts at zero, so its ego embedding is its fused content alone (the content
path the model learnt); a new user's ID vector starts from their history: the mean ego
embedding of their train items (``new_users: history``, a fold-in), or the random init of a
fresh model (``random``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from crossrec.models.bundle import BUNDLE_KEYS, build_recommender
from crossrec.models.config import FinetuneConfig
from crossrec.models.inputs import TrainingData
from crossrec.models.recommender import Recommender

#: State entries with one row per user / item: extended, the rest must match exactly.
ROW_TABLES = {
    "user_id.weight": "n_users",
    "item_id.weight": "n_items",
    "id_bias.weight": "n_items",  # model.id_bias: a new item has none yet, as for its ID vector
}

NewUsers = Literal["history", "random"]


def _check_growth(bundle: dict, data: TrainingData) -> None:
    missing = [k for k in BUNDLE_KEYS if k not in bundle]
    if missing:
        raise ValueError(f"trained_model bundle lacks keys {missing}; expected {list(BUNDLE_KEYS)}")
    for key in ("n_users", "n_items"):
        if getattr(data, key) < bundle[key]:
            raise ValueError(
                f"warm start: the data has {getattr(data, key)} {key[2:]}, fewer than the "
                f"{bundle[key]} the model was trained on; increments only append, so this data "
                "is not a continuation of the model's"
            )


def history_mean(
    item_vectors: torch.Tensor, train: sp.csr_matrix, users: np.ndarray
) -> torch.Tensor:
    """(len(users), d) mean of each user's train item vectors (zeros without any)."""
    rows = sp.csr_matrix(train)[users]
    counts = np.asarray(rows.sum(axis=1)).ravel().clip(min=1.0)
    weights = sp.diags(1.0 / counts) @ rows
    return torch.as_tensor((weights @ item_vectors.detach().cpu().numpy()).astype(np.float32))


def warm_state(
    bundle: dict, data: TrainingData, new_users: NewUsers = "history"
) -> dict[str, torch.Tensor]:
    """The learnt state of ``bundle`` extended to ``data`` (see the module doc); of a mix
    (``model.content_mix``), ``{"twin": state, "content": state}``."""
    from crossrec.models.mixed import MIX_KEY, part_bundles

    if MIX_KEY in bundle:
        return {
            part: warm_state(part_bundle, data, new_users)
            for part, part_bundle in part_bundles(bundle).items()
        }
    model = warm_start(bundle, data, new_users)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in frozen}


def warm_start(bundle: dict, data: TrainingData, new_users: NewUsers = "history") -> Recommender:
    """A model for ``data`` initialised from ``bundle`` (eval mode; train it to fine-tune); a
    mix (``model.content_mix``) as the chosen mix of its two warm-started models."""
    from crossrec.models.mixed import MIX_KEY, mixed_of, part_bundles

    if MIX_KEY in bundle:
        parts = {
            part: warm_start(part_bundle, data, new_users)
            for part, part_bundle in part_bundles(bundle).items()
        }
        return mixed_of(bundle, parts["content"], parts["twin"], data)
    _check_growth(bundle, data)
    config = FinetuneConfig.model_validate(bundle["config"])
    torch.manual_seed(int(config.trainer.seed or 0))
    model = build_recommender(data, config)
    if list(model.modalities) != list(bundle["modalities"]):
        raise ValueError(
            f"trained_model used modalities {bundle['modalities']}, the item features have "
            f"{model.modalities}"
        )
    target = model.state_dict()
    state = {}
    for key, value in bundle["state_dict"].items():
        if key not in target:
            raise ValueError(f"warm start: state entry {key!r} does not exist in the new model")
        if key in ROW_TABLES:
            table = target[key].clone()
            n_old = int(bundle[ROW_TABLES[key]])
            table[:n_old] = value
            if ROW_TABLES[key] == "n_items":
                table[n_old:] = 0.0  # new items: content only
            state[key] = table
        elif tuple(value.shape) != tuple(target[key].shape):
            raise ValueError(
                f"warm start: {key!r} has shape {tuple(value.shape)} in the bundle and "
                f"{tuple(target[key].shape)} in the new model"
            )
        else:
            state[key] = value
    model.load_state_dict(state, strict=False)
    n_old_users = int(bundle["n_users"])
    if new_users == "history" and model.user_id is not None and data.n_users > n_old_users:
        model.eval()
        with torch.no_grad():
            items = model.item_ego()
            fresh = np.arange(n_old_users, data.n_users)
            model.user_id.weight[n_old_users:] = history_mean(items, data.train, fresh)
    model.clear_cache()
    return model.eval()
