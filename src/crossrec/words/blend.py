"""Scores from different signals (history, query tower, dense text, BM25) live on different
scales: each is standardised per request over the items that can be recommended, then mixed
with weights on a simplex grid chosen on validation requests — never on test."""

from __future__ import annotations

import itertools

import numpy as np


def standardize(scores: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """Per-row z-scores over the entries not excluded; excluded entries become -inf."""
    scores = np.asarray(scores, dtype=np.float32)
    keep = np.ones_like(scores, dtype=bool) if exclude is None else ~exclude
    count = np.maximum(keep.sum(axis=1, keepdims=True), 1)
    mean = np.where(keep, scores, 0.0).sum(axis=1, keepdims=True) / count
    centred = np.where(keep, scores - mean, 0.0)
    std = np.sqrt((centred**2).sum(axis=1, keepdims=True) / count)
    z = (scores - mean) / np.maximum(std, 1e-9)
    return np.where(keep, z, -np.inf).astype(np.float32)


def simplex_grid(n: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of ``n`` non-negative multiples of ``step`` that sum to 1."""
    units = int(round(1.0 / step))
    points = []
    for combo in itertools.product(range(units + 1), repeat=n):
        if sum(combo) == units:
            points.append(tuple(c / units for c in combo))
    return points


def mix(signals: list[np.ndarray], weights: tuple[float, ...]) -> np.ndarray:
    """Weighted sum of standardised signals (weight 0 skips a signal, -inf stays -inf)."""
    out = None
    for signal, weight in zip(signals, weights, strict=True):
        if weight == 0:
            continue
        part = weight * signal
        out = part if out is None else out + part
    if out is None:
        raise ValueError("all blend weights are zero")
    return out


def hit_rate(scores: np.ndarray, targets: list[np.ndarray], k: int) -> float:
    """Mean Recall@k over requests (targets: relevant item indices per row)."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    recalls = [
        len(np.intersect1d(top[row], t)) / len(t) for row, t in enumerate(targets) if len(t)
    ]
    return float(np.mean(recalls)) if recalls else 0.0


def choose_weights(
    signals: list[np.ndarray], targets: list[np.ndarray], k: int, step: float
) -> tuple[tuple[float, ...], float]:
    """The grid point with the best validation Recall@k (first in grid order on ties)."""
    best, best_value = None, -1.0
    for weights in simplex_grid(len(signals), step):
        value = hit_rate(mix(signals, weights), targets, k)
        if value > best_value + 1e-12:
            best, best_value = weights, value
    return best, best_value
