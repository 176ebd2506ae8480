"""The content model and its ID-only twin mixed by item popularity (``model.content_mix.kind:
popularity``), trained, saved, loaded and scored as one model.

:func:`train_mixed` trains the twin (the same configuration without content, what evaluate's
trained ablation trains) and the content model on the same data, then chooses the mix's point
on the validation split (:func:`crossrec.models.content_mix.choose_mix`). The bundle is the
content model's, with the mix's configuration as its ``config`` and the twin's bundle, the
chosen point and every point's validation values under ``content_mix``.
:func:`load_mixed` rebuilds it as a :class:`MixedRecommender`: it scores like the mix and
answers every other question (fusion, item graph, explanations, new items) with the content
model, the one that knows every item's content.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from crossrec.config import deep_merge
from crossrec.models.config import FinetuneConfig
from crossrec.models.inputs import TrainingData

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: the bundle key holding the twin's bundle and the chosen point
MIX_KEY = "content_mix"

#: what "trained without content" turns off in the model's own configuration: the fusion,
#: the modality item graph, the content loss and the content bias (IDs and graph stay)
WITHOUT_CONTENT = {
    "model": {
        "use_content": False,
        "content_bias": False,
        "propagation": {"item_graph_layers": 0},
        "content_mix": {"kind": "none"},
    },
    "loss": {"content_weight": 0.0},
}


def is_mixed(config: FinetuneConfig) -> bool:
    """Whether a finetune configuration asks for the mix."""
    return config.model.content_mix.kind != "none"


def json_point(point: dict) -> dict:
    """A mix point as JSON holds it: the content model alone (``tau`` inf) as ``"inf"``."""
    return {**point, "tau": "inf" if math.isinf(point["tau"]) else point["tau"]}


def without_mix_when_no_content(config: FinetuneConfig, data: TrainingData) -> FinetuneConfig:
    """``config`` with the mix off when there is nothing to mix: a model without content
    (``use_content: false``, or no modality in the data) is its own twin, and a model without
    ID embeddings has no ID-only twin. Trained once."""
    modalities = [name for name in data.item_features if not name.startswith("__")]
    has_both = config.model.use_content and bool(modalities) and config.model.use_id_embedding
    if not is_mixed(config) or has_both:
        return config
    config = config.model_copy(deep=True)
    config.model.content_mix.kind = "none"
    return config


def part_configs(config: FinetuneConfig) -> tuple[FinetuneConfig, FinetuneConfig]:
    """(twin's, content model's) configurations: the mix's with the mix off, and the same
    without content."""
    one_model = {"model": {"content_mix": {"kind": "none"}}}
    content = deep_merge(config.model_dump(mode="json"), one_model)
    twin = deep_merge(content, WITHOUT_CONTENT)
    return FinetuneConfig.model_validate(twin), FinetuneConfig.model_validate(content)


def stopping_data(data: TrainingData, config: FinetuneConfig) -> tuple[TrainingData, sp.csr_matrix]:
    """(the data both models early-stop on, the validation pairs the choice reads): all of
    them for both unless ``content_mix.choice_share`` keeps a seeded share of the validation
    users for the choice alone; the choice reads at most ``max_choice_users`` users."""
    from crossrec.models.content_mix import split_validation_users
    from crossrec.models.module import sample_rows

    mix = config.model.content_mix
    seed = config.trainer.seed if config.trainer.seed is not None else 0
    if mix.choice_share <= 0:
        return data, sample_rows(data.valid, mix.max_choice_users, seed)
    stop, choice = split_validation_users(data.valid, mix.choice_share, seed)
    return replace(data, valid=stop), sample_rows(choice, mix.max_choice_users, seed)


def train_mixed(data: TrainingData, config: FinetuneConfig, run_dir: Path, train_one, **kwargs):
    """Train the twin (``run_dir/twin``) and the content model (``run_dir/content``) with
    ``train_one(data, config, run_dir, **kwargs)``, choose the mix on validation, return a
    :class:`~crossrec.models.training.TrainingResult` whose bundle holds both.

    ``initial_state`` (a refresh) is a ``{"twin": state, "content": state}`` pair;
    ``extra_callbacks`` (tune's pruning) watch the content model. The mix's best score is its
    validation value at the chosen point (what ``tune`` compares)."""
    import pandas as pd

    from crossrec.models.content_mix import choose_mix
    from crossrec.models.gate import item_degrees
    from crossrec.models.training import TrainingResult

    twin_config, content_config = part_configs(config)
    stop_data, choice_truth = stopping_data(data, config)
    initial = kwargs.pop("initial_state", None) or {}
    callbacks = kwargs.pop("extra_callbacks", ())
    results = {}
    for part, part_config in (("twin", twin_config), ("content", content_config)):
        what = "ID-only twin" if part == "twin" else "content model"
        log.info("content_mix: training the %s", what)
        results[part] = train_one(
            stop_data,
            part_config,
            run_dir=Path(run_dir) / part,
            initial_state=initial.get(part),
            # the caller's callbacks (tune's pruning) follow the model being configured
            extra_callbacks=callbacks if part == "content" else (),
            **kwargs,
        )
    twin = load_part(results["twin"].bundle, data)
    content = load_part(results["content"].bundle, data)
    mix = config.model.content_mix
    degree = item_degrees(data.train)
    choice, points = choose_mix(
        twin.scoring_vectors(), content.scoring_vectors(), degree, mix, choice_truth, data.train
    )
    chosen = next(p for p in points if p.choice == choice)
    log.info(
        "content_mix: chose tau %s, slope %s, scale %s, %d tail slot(s): validation %s@%d %.4f",
        choice.tau, choice.slope, choice.scale, choice.slots, mix.metric, mix.k, chosen.value,
    )
    # the content model's effective configuration (what really ran), with the mix back on
    content_bundle = results["content"].bundle
    mixed_config = {"model": {"content_mix": mix.model_dump(mode="json")}}
    bundle = {
        **content_bundle,
        "config": deep_merge(content_bundle["config"], mixed_config),
        MIX_KEY: {
            "choice": choice.as_dict(),
            "twin": results["twin"].bundle,
            "points": [
                {**p.choice.as_dict(), "value": p.value, "tail": p.tail, "head": p.head}
                for p in points
            ],
        },
    }
    history = pd.concat(
        [results[part].history.assign(part=part) for part in ("twin", "content")],
        ignore_index=True,
    )
    return TrainingResult(bundle=bundle, history=history, best_score=float(chosen.value))


def epochs_trained(history) -> dict[str, int]:
    """``{"epochs": n}`` of a training history (one row per epoch); a mix's holds both of its
    models (column ``part``): the content model's epochs, and ``twin_epochs``."""
    if "part" not in history:
        return {"epochs": int(len(history))}
    parts = history["part"].value_counts()
    return {"epochs": int(parts.get("content", 0)), "twin_epochs": int(parts.get("twin", 0))}


def load_part(bundle: dict, data: TrainingData):
    from crossrec.models.bundle import load_recommender

    return load_recommender(bundle, data)


def content_part(bundle: dict) -> dict:
    """The content model's own bundle inside a mixed one (its config without the mix)."""
    config = deep_merge(bundle["config"], {"model": {"content_mix": {"kind": "none"}}})
    return {k: v for k, v in bundle.items() if k != MIX_KEY} | {"config": config}


def part_bundles(bundle: dict) -> dict[str, dict]:
    """``{"twin": bundle, "content": bundle}`` of a mixed bundle."""
    return {"twin": bundle[MIX_KEY]["twin"], "content": content_part(bundle)}


def load_mixed(bundle: dict, data: TrainingData) -> MixedRecommender:
    """A mixed bundle rebuilt on ``data`` (the data it was trained on)."""
    twin = load_part(bundle[MIX_KEY]["twin"], data)
    content = load_part(content_part(bundle), data)
    return mixed_of(bundle, content, twin, data)


def mixed_of(bundle: dict, content, twin, data: TrainingData) -> MixedRecommender:
    """The bundle's chosen mix over these two models (loaded, or warm-started on grown data),
    with the items' train degrees and seen items of ``data``."""
    from crossrec.models.config import ContentMixConfig
    from crossrec.models.content_mix import MixChoice
    from crossrec.models.gate import item_degrees

    config = ContentMixConfig.model_validate(bundle["config"]["model"]["content_mix"])
    choice = MixChoice(**bundle[MIX_KEY]["choice"])
    return MixedRecommender(content, twin, choice, config, item_degrees(data.train), data.train)


class MixedRecommender:
    """The mix as a model: ``score_users`` / ``scoring_vectors`` give the mixed scores
    (:func:`crossrec.models.content_mix.mix_scorer`), every other attribute is the content
    model's.

    With tail slots a list depends on what is excluded: unbound, the users' train items are
    (what serving and a refresh exclude); :meth:`for_slice` binds another slice's exclusions."""

    def __init__(self, content, twin, choice, config, degree: np.ndarray, seen: sp.csr_matrix):
        import torch

        from crossrec.models.content_mix import bound, mix_scorer

        self.content, self.twin, self.choice, self.mix = content, twin, choice, config
        self.degree = np.asarray(degree)
        with torch.no_grad():  # each model's propagation runs once
            content_users, content_items = content.scoring_vectors()
            self.scorer = mix_scorer(
                twin.scoring_vectors(), (content_users, content_items), degree, choice, config
            )
            self.content_mean = content_items.double().mean(dim=0).float()
        #: where the content model's columns start in the mixed vectors
        self.twin_dims = int(self.scoring_vectors()[1].shape[1] - content_items.shape[1])
        #: the content model's own user vectors (an explanation splits its score)
        self.content_users = content_users.detach().numpy().astype(np.float32)
        self.bound = bound(self.scorer, seen)

    def __getattr__(self, name: str) -> Any:  # only reached for what the mix does not define
        if name in {"content", "twin"}:
            raise AttributeError(name)
        return getattr(self.content, name)

    #: serving reads it: the mixed vectors' columns are all free (no bias column, no cosine),
    #: while ``has_bias_column`` / ``cosine`` stay the content model's (new items, explanations)
    mixed = True

    def to(self, device) -> MixedRecommender:
        return self  # the mixed vectors are precomputed on the CPU

    def eval(self) -> MixedRecommender:
        return self

    def scoring_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items) whose dot products are the mix's scores (before any tail slots)."""
        mixed = self.scorer.mixed if self.choice.slots else self.scorer
        return mixed.scoring_vectors()

    def score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.no_grad():
            return self.bound.score_users(torch.as_tensor(user_idx).cpu())

    def __call__(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.score_users(user_idx)

    def for_slice(self, exclude: sp.csr_matrix, candidates: np.ndarray | None = None):
        """A scorer bound to a slice's exclusions and candidates (tail slots need them)."""
        from crossrec.models.content_mix import bound

        return bound(self.scorer, exclude, candidates)

    def mixed_item_vector(self, content_vector: np.ndarray) -> np.ndarray:
        """A new item's vector in the mixed space from its content model vector: an item
        without train interactions is ranked by the content model alone (``g = 0``)."""
        centred = np.asarray(content_vector, np.float32)
        if self.mix.standardise != "none":  # the catalogue's item vectors were centred
            centred = centred - self.content_mean.numpy()
        return np.concatenate([np.zeros(self.twin_dims, np.float32), centred]).astype(np.float32)

    def tail_slot_parts(self) -> dict | None:
        """What serving needs to give tail items their places (``crossrec.serving.slots``), or
        None when the chosen point has no slots: the tail and head items, the tail items'
        standardised content vectors and where the content model's columns start in a mixed
        user vector (its user part against them is the content model's standardised score)."""
        from crossrec.models.content_mix import popular_items

        if not self.choice.slots:
            return None
        tail = np.flatnonzero(popular_items(self.degree, self.mix.tail_share, most=False))
        return {
            "slots": int(self.choice.slots),
            "k": int(self.mix.k),
            "tail": tail,
            "tail_vectors": self.scorer.content.items[tail].numpy(),
            "head": popular_items(self.degree, self.mix.head_share, most=True),
            "offset": self.twin_dims,
        }

    def explanation_terms(self, user: int, item: int) -> tuple[float, float, float]:
        """(w, twin, centring) with ``mixed score = w * content score + twin + centring``: the
        content model's score (which an explanation splits into parts) enters the mix scaled
        by the item's content weight ``1 - g`` and the user's standardisation, less the
        user's mean content score, beside the twin's standardised part."""
        from crossrec.models.content_mix import twin_weights

        users, items = self.scoring_vectors()
        user_vector, item_vector = users[user].double(), items[item].double()
        offset = self.twin_dims
        twin = float(user_vector[:offset] @ item_vector[:offset])
        raw = self.content_users[user].astype(np.float64)
        scale = float(user_vector[offset:].numpy() @ raw / max(raw @ raw, 1e-24))
        g = float(twin_weights(self.degree[item : item + 1], self.choice.tau, self.choice.slope)[0])
        weight = (1.0 - g) * scale
        centring = 0.0
        if self.mix.standardise != "none":  # the item's content was centred on the catalogue
            centring = -weight * float(raw @ self.content_mean.double().numpy())
        return weight, twin, centring

    def describe(self) -> dict:
        """The chosen point (for the model card)."""
        point = json_point(self.choice.as_dict())
        return {"kind": self.mix.kind, **point, "standardise": self.mix.standardise}
