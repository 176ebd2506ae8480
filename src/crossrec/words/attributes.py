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


# ---------------------------------------------------------------- attribute x item regressions
#: weight of the per-item bias's L2 (keeps never-seen items' bias finite)
BIAS_L2 = 1e-6


def expand_tokens(tokens: list[str], crosses: bool) -> list[str]:
    """A user's attribute tokens, plus every pair of them (``"age=20s&sex=f"``) with
    ``crosses``: a pair lets the model learn what one combination prefers beyond its parts."""
    tokens = sorted(tokens)
    if not crosses:
        return tokens
    pairs = [f"{a}&{b}" for n, a in enumerate(tokens) for b in tokens[n + 1 :]]
    return tokens + pairs


def token_matrix(
    tokens: list[list[str]], vocabulary: dict[str, int], crosses: bool
) -> sp.csr_matrix:
    """(rows, features) 0/1 matrix of the tokens in ``vocabulary`` (others are left out)."""
    rows, cols = [], []
    for n, row in enumerate(tokens):
        for token in expand_tokens(row, crosses):
            if token in vocabulary:
                rows.append(n)
                cols.append(vocabulary[token])
    return sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(tokens), len(vocabulary))
    )


@dataclass
class AttributeRegression:
    """score(user, item) = bias[item] + sum over the user's attribute tokens of
    weights[token, item]: a linear model of who a user is over the whole catalogue."""

    kind: str  # softmax | ridge | popularity
    vocabulary: dict[str, int]
    weights: np.ndarray  # (features, items)
    bias: np.ndarray  # (items,)
    crosses: bool
    l2: float
    weighting: str = "interaction"

    def scores(self, tokens: list[list[str]]) -> np.ndarray:
        """(len(tokens), items) scores; tokens the training users never had add nothing."""
        features = token_matrix(tokens, self.vocabulary, self.crosses)
        return np.asarray(features @ self.weights + self.bias[None], dtype=np.float32)


def _targets(train: sp.csr_matrix, weighting: str) -> tuple[np.ndarray, sp.csr_matrix]:
    """Warm users and their train rows as targets: each interaction weighs 1
    (``interaction``) or each user's row sums to 1 (``user``)."""
    train = sp.csr_matrix(train, dtype=np.float64)
    counts = np.diff(train.indptr)
    warm = np.flatnonzero(counts > 0)
    targets = train[warm].copy()
    targets.data[:] = 1.0
    if weighting == "user":
        targets = sp.diags(1.0 / counts[warm]) @ targets
    elif weighting != "interaction":
        raise ValueError(f"weighting must be interaction or user, got {weighting!r}")
    return warm, sp.csr_matrix(targets)


def fit_attribute_regression(
    tokens: list[list[str]],
    train: sp.csr_matrix,
    *,
    kind: str = "softmax",
    l2: float = 1e-3,
    crosses: bool = False,
    weighting: str = "interaction",
    max_iter: int = 500,
    start: AttributeRegression | None = None,
) -> AttributeRegression:
    """Fit on the warm users' (those with train rows) attribute tokens and train items.

    ``softmax``: multinomial logistic regression over every item (full softmax), the loss a
    mean over the target weight, L2 ``l2`` on the attribute weights only; the bias is then
    the log popularity the attributes do not explain, so ``l2 = inf`` (weights 0) ranks as
    MostPop. ``ridge``: least squares of the (weighted) train row on the tokens, closed
    form, L2 ``l2`` times the number of warm users; ``l2 = inf`` ranks as (user-weighted)
    popularity. Cold users' rows never enter: they have no train rows. ``start``: a fit of the
    same features to start from (a path over decreasing L2)."""
    from scipy.optimize import minimize

    warm, targets = _targets(train, weighting)
    expanded = [expand_tokens(tokens[u], crosses) for u in warm]
    vocabulary = {t: n for n, t in enumerate(sorted({t for row in expanded for t in row}))}
    x = token_matrix([tokens[u] for u in warm], vocabulary, crosses)
    n_features, n_items = x.shape[1], targets.shape[1]
    column = np.asarray(targets.sum(axis=0)).ravel()
    if kind == "ridge":
        mean = column / len(warm)
        weights = np.zeros((n_features, n_items))
        if np.isfinite(l2):
            centred = x.toarray() - x.toarray().mean(axis=0)
            gram = centred.T @ centred + l2 * len(warm) * np.eye(n_features)
            weights = np.linalg.solve(gram, centred.T @ (targets.toarray() - mean))
            mean = mean - np.asarray(x.mean(axis=0)).ravel() @ weights
        return AttributeRegression(kind, vocabulary, weights, mean, crosses, l2, weighting)
    if kind != "softmax":
        raise ValueError(f"kind must be softmax or ridge, got {kind!r}")
    total = float(column.sum())
    bias0 = np.log((column + 1e-3) / (total + 1e-3 * n_items))
    if not np.isfinite(l2):
        return AttributeRegression(
            kind, vocabulary, np.zeros((n_features, n_items)), bias0, crosses, l2, weighting
        )
    per_user = np.asarray(targets.sum(axis=1)).ravel()
    dense = targets.toarray()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weights, bias = theta[: n_features * n_items].reshape(n_features, n_items), theta[
            n_features * n_items :
        ]
        logits = np.asarray(x @ weights) + bias
        top = logits.max(axis=1, keepdims=True)
        probs = np.exp(logits - top)
        norm = probs.sum(axis=1, keepdims=True)
        lse = np.log(norm).ravel() + top.ravel()
        value = (per_user @ lse - (dense * logits).sum()) / total
        grad = (probs / norm) * per_user[:, None] - dense
        grad /= total
        value += 0.5 * (l2 * np.square(weights).sum() + BIAS_L2 * np.square(bias).sum())
        d_weights = np.asarray(x.T @ grad) + l2 * weights
        d_bias = np.asarray(grad.sum(axis=0)).ravel() + BIAS_L2 * bias
        return float(value), np.concatenate([d_weights.ravel(), d_bias])

    theta0 = np.concatenate([np.zeros(n_features * n_items), bias0])
    if start is not None and start.vocabulary == vocabulary and np.isfinite(start.l2):
        theta0 = np.concatenate([start.weights.ravel(), start.bias])
    result = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    theta = result.x
    logger.info(
        "attribute softmax (l2 %g, crosses %s, %s): loss %.4f after %d iterations",
        l2, crosses, weighting, result.fun, result.nit,
    )
    return AttributeRegression(
        kind,
        vocabulary,
        theta[: n_features * n_items].reshape(n_features, n_items),
        theta[n_features * n_items :],
        crosses,
        l2,
        weighting,
    )
