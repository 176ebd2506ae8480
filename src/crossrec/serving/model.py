"""A trained model ready to serve: rebuilt from its artifacts (``crossrec.models.bundle``) on
what the model reads and no more (``crossrec.models.inputs.build_model_data``: no validation or
test split), its user and item vectors computed once, and the catalogue built on them.

``score = user_vectors[u] . item_vectors[i]`` reproduces ``Recommender.score_users`` exactly
(for a cosine-trained model both sides are normalised here once).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.models.fingerprint import model_fingerprint
from crossrec.models.inputs import TrainingArtifacts
from crossrec.serving.catalogue import Catalogue
from crossrec.serving.config import RecommendConfig, parse_recommend_config
from crossrec.serving.slots import TailSlots


@dataclass(kw_only=True)
class Artifacts(TrainingArtifacts):
    """What serving needs, keyed like the catalog entries (docs/architecture.md): the training
    artifacts the model is rebuilt from, plus the model and what the API shows besides."""

    trained_model: dict
    users: pd.DataFrame
    word_requests: pd.DataFrame | None = None  # requests in words (crossrec.data.words)
    metrics: dict | None = None
    featurize: dict | None = None  # the featurize_modalities parameters (new items)
    version: str | None = None  # the trained_model version (Kedro's timestamp folder)


def seen_matrix(interactions: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    """Every known (user, item) interaction, whatever its split: never recommended again."""
    rows = interactions["user_idx"].to_numpy()
    cols = interactions["item_idx"].to_numpy()
    seen = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    seen.sum_duplicates()
    seen.sort_indices()
    return seen


def modality_vectors(fused: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    names = [k for k in fused if not k.startswith("__")]
    return {
        n: (np.asarray(fused[n]["vectors"], np.float32), np.asarray(fused[n]["mask"], bool))
        for n in names
    }


@dataclass
class ServingModel:
    """The recommender, its training data and the catalogue over its vectors."""

    catalogue: Catalogue
    model: Any  # crossrec.models.recommender.Recommender (eval mode)
    data: Any  # crossrec.models.inputs.TrainingData of build_model_data: train matrix, no splits
    artifacts: Artifacts
    fingerprint: str
    config: RecommendConfig
    cache: dict = field(default_factory=dict)  # lazily built explanation parts, encoders
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: the words / attribute models' own lock: fitting them never blocks an explanation
    words_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def version(self) -> str:
        return self.artifacts.version or self.fingerprint

    @property
    def cosine(self) -> bool:
        return bool(self.model.cosine)

    @property
    def part_user_vectors(self) -> np.ndarray:
        """The user vectors an explanation's parts are taken against: the served ones, or for
        a mix (``model.content_mix``) the content model's own, whose item vectors the parts
        split (``MixedRecommender.explanation_terms`` puts them back in the mix)."""
        if getattr(self.model, "mixed", False):
            return self.model.content_users
        return self.catalogue.user_vectors

    @classmethod
    def from_artifacts(
        cls, artifacts: Artifacts, config: dict | RecommendConfig | None = None, index_kind=None
    ) -> ServingModel:

        from crossrec.models.bundle import load_recommender

        config = parse_recommend_config(config)
        a = artifacts
        data = a.model_data(a.trained_model["config"])
        model = load_recommender(a.trained_model, data)
        users, items = model.scoring_vectors()
        items_table = a.items.sort_values("item_idx").reset_index(drop=True)
        users_table = a.users.sort_values("user_idx").reset_index(drop=True)
        catalogue = Catalogue(
            user_vectors=users.numpy(),
            item_vectors=items.numpy(),
            user_ids=users_table["user_id"].astype(str).to_numpy(),
            item_ids=items_table["item_id"].astype(str).to_numpy(),
            seen=seen_matrix(a.interactions, data.n_users, data.n_items),
            items=items_table,
            config=config,
            modality_vectors=modality_vectors(a.fused_item_features),
            index_kind=index_kind,
            text_columns=list(a.dataset_info.get("text_columns") or []),
            # a mix's vectors are centred and scaled per user: no bias column among them
            bias_column=model.has_bias_column and not getattr(model, "mixed", False),
            tail_slots=TailSlots.of(model, config.ann, users.numpy()),
        )
        return cls(catalogue, model, data, a, model_fingerprint(a.trained_model), config)

    def test_metrics(self) -> dict:
        """Headline test metrics of the evaluated model (empty when evaluate has not run)."""
        metrics = self.artifacts.metrics or {}
        for name in ("model", *metrics):
            block = metrics.get(name, {})
            if isinstance(block, dict) and "test" in block:
                return {"model": name, "test": block["test"]}
        return {}
