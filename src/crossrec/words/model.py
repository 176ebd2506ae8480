"""A fitted words model for one trained recommender: what serving asks when a request comes
with words. Fitted from the ``word_requests`` the data holds (tower on train pairs, blend
weights on valid requests); with no requests, words are matched by the encoder alone and mixed
with the history at fixed weights (said in every answer's ``weights_from``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crossrec.words.blend import choose_weights, mix, standardize
from crossrec.words.config import TowerConfig
from crossrec.words.requests import encode_each_once, grouped_requests, training_pairs

logger = logging.getLogger(__name__)

#: weights when no valid request can choose them: (history, tower, dense) and (tower, dense)
DEFAULT_WEIGHTS = (0.5, 0.0, 0.5)
DEFAULT_NO_HISTORY = (0.0, 1.0)


@dataclass
class WordScores:
    """One request's blended scores and their parts (already weighted: they sum to total)."""

    total: np.ndarray  # (n_items,) -inf where excluded
    history: np.ndarray  # weighted history part (zeros without history)
    words: np.ndarray  # weighted words part
    attributes: np.ndarray | None = None  # weighted part from who the user is (serving)


@dataclass
class WordsModel:
    encoder: Any  # crossrec.encoders.text.TextEncoder (unit-normalised)
    tower: Any | None  # crossrec.words.tower QueryTower, None without training pairs
    item_vectors: np.ndarray  # the recommender's item vectors (the tower's target space)
    item_dense: np.ndarray  # encoder(item text), unit rows
    weights: tuple[float, float, float]  # history, tower, dense
    weights_no_history: tuple[float, float]  # tower, dense
    weights_from: str  # "validation" | "default"

    def signals(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(tower scores, dense scores) of each text against every item."""
        from crossrec.words.tower import tower_scores

        encoded = self.encoder.encode(texts)
        dense = encoded @ self.item_dense.T
        if self.tower is None:
            return np.zeros_like(dense), dense
        return tower_scores(self.tower, encoded, self.item_vectors), dense

    def score(
        self, text: str, history: np.ndarray | None, exclude: np.ndarray | None
    ) -> WordScores:
        """Words (+ history scores of the user, when given) over items not ``exclude``d."""
        tower, dense = (s[0] for s in self.signals([text]))
        mask = None if exclude is None else exclude[None]
        words_z = [standardize(tower[None], mask)[0], standardize(dense[None], mask)[0]]
        if history is None:
            w_tower, w_dense = self.weights_no_history
            h_part = np.zeros_like(dense)
        else:
            w_history, w_tower, w_dense = self.weights
            z = standardize(history[None], mask)[0]
            finite = np.isfinite(z)
            h_part = np.zeros_like(z)
            h_part[finite] = w_history * z[finite]  # excluded: 0 here, -inf in the words part
        w_part = _weighted([words_z[0], words_z[1]], (w_tower, w_dense))
        if exclude is not None:
            w_part = np.where(exclude, -np.inf, w_part)
        return WordScores(h_part + w_part, h_part, w_part)


def _weighted(signals: list[np.ndarray], weights: tuple[float, float]) -> np.ndarray:
    """The weighted words part; excluded items (-inf in every signal) stay -inf."""
    if not any(weights):
        return np.where(np.isfinite(signals[0]), 0.0, -np.inf)
    return mix(signals, weights)


def fit_words_model(
    encoder,
    requests: pd.DataFrame | None,
    item_texts: list[str],
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    known: Any,
    tower_config: TowerConfig,
    blend_step: float = 0.1,
    k: int = 20,
    seed: int = 0,
) -> WordsModel:
    """Tower on the train / unlabelled pairs; weights chosen on valid requests (the user's
    ``known`` items masked, a CSR of train interactions); defaults when there are none."""
    from crossrec.words.tower import tower_scores, train_query_tower

    start = time.perf_counter()
    item_dense = encoder.encode([t or "" for t in item_texts])
    if requests is None:
        requests = pd.DataFrame({"user_idx": [], "item_idx": [], "text": [], "split": []})
    train_words, train_items = training_pairs(requests)
    tower = None
    if len(train_words):
        words = encode_each_once(encoder, train_words)
        tower = train_query_tower(words, train_items, item_vectors, tower_config, seed)
    weights, no_history, source = DEFAULT_WEIGHTS, DEFAULT_NO_HISTORY, "default"
    users, texts, targets = grouped_requests(requests, "valid")
    if tower is not None and len(users):
        exclude = known[users].toarray().astype(bool)
        encoded = encoder.encode(texts)
        signals_raw = [
            user_vectors[users] @ item_vectors.T,
            tower_scores(tower, encoded, item_vectors),
            encoded @ item_dense.T,
        ]
        z = [standardize(s, exclude) for s in signals_raw]
        weights, _ = choose_weights(z, targets, k, blend_step)
        open_z = [standardize(s) for s in signals_raw[1:]]
        no_history, _ = choose_weights(open_z, targets, k, blend_step)
        source = "validation"
    logger.info(
        "words model fitted in %.1fs: weights (history, tower, dense) %s, without history "
        "(tower, dense) %s, from %s",
        time.perf_counter() - start,
        weights,
        no_history,
        source,
    )
    return WordsModel(
        encoder, tower, item_vectors, item_dense, tuple(weights), tuple(no_history), source
    )
