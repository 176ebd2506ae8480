"""Who a user is, as a ranking of the catalogue: popularity within their attribute group and a
query tower over their attributes written as words (``crossrec.data.users.attribute_words``).
Used by evaluate (``cold_users``) and by serving (a new user's ``attributes``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from crossrec.words.blend import standardize
from crossrec.words.config import TowerConfig

logger = logging.getLogger(__name__)


def group_popularity(train: sp.csr_matrix, words: list[str], shrinkage: float) -> dict:
    """Per attribute group (users with the same attribute words): item counts over its train
    users / their number, shrunk towards overall popularity by ``shrinkage`` users (a group of
    one or two users stays sensible). Key None: overall popularity (unknown groups)."""
    train = train.tocsr()
    has_train = np.diff(train.indptr) > 0
    overall = np.asarray(train.sum(axis=0)).ravel() / max(int(has_train.sum()), 1)
    groups: dict[str, list[int]] = {}
    for u in np.flatnonzero(has_train):
        groups.setdefault(words[u], []).append(int(u))
    scores: dict[Any, np.ndarray] = {}
    for key, members in groups.items():
        counts = np.asarray(train[members].sum(axis=0)).ravel()
        scores[key] = (counts + shrinkage * overall) / (len(members) + shrinkage)
    scores[None] = overall
    return scores


def group_scores(table: dict, texts: list[str]) -> np.ndarray:
    """Rows of group popularity for each text (overall popularity for an unknown group)."""
    return np.stack([table.get(t, table[None]) for t in texts]).astype(np.float32)


def encode_distinct(encoder, words: list[str]) -> dict[str, np.ndarray]:
    """Each distinct attribute text encoded once (users share a few hundred of them)."""
    unique = sorted(set(words))
    return dict(zip(unique, encoder.encode(unique), strict=True))


def attribute_tower(
    encoded: dict[str, np.ndarray],
    words: list[str],
    train: sp.csr_matrix,
    item_vectors,
    config: TowerConfig,
    seed: int,
):
    """Query tower on (attribute words of each train user, each of their train items);
    ``encoded``: :func:`encode_distinct` of ``words``."""
    from crossrec.words.tower import train_query_tower

    pairs = train.tocoo()
    inputs = np.stack([encoded[words[u]] for u in pairs.row])
    return train_query_tower(inputs, pairs.col, item_vectors, config, seed)


@dataclass
class AttributeModel:
    """Serving's ranking for a new user described by attributes."""

    encoder: Any
    tower: Any
    groups: dict
    item_vectors: np.ndarray
    weights: tuple[float, float] = (0.5, 0.5)  # tower, group popularity

    def score(self, words: str, exclude: np.ndarray | None) -> np.ndarray:
        from crossrec.words.tower import tower_scores

        mask = None if exclude is None else exclude[None]
        tower = tower_scores(self.tower, self.encoder.encode([words]), self.item_vectors)
        group = group_scores(self.groups, [words])
        return (self.weights[0] * standardize(tower, mask)
                + self.weights[1] * standardize(group, mask))[0]


def fit_attribute_model(encoder, words: list[str], train: sp.csr_matrix, item_vectors,
                        config: TowerConfig, shrinkage: float = 1.0, seed: int = 0):
    start = time.perf_counter()
    tower = attribute_tower(encode_distinct(encoder, words), words, train, item_vectors, config,
                            seed)
    model = AttributeModel(encoder, tower, group_popularity(train, words, shrinkage),
                           item_vectors)
    logger.info("attribute model fitted in %.1fs", time.perf_counter() - start)
    return model
