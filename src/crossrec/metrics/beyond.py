"""Beyond-accuracy measures of top-K lists: coverage, popularity bias, novelty, diversity.

All take the ranked lists produced by :func:`crossrec.metrics.ranking.rank_and_evaluate`
(``-1`` = empty slot) so they describe exactly the lists the accuracy metrics scored.
"""

from __future__ import annotations

import numpy as np


def _valid(lists: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    top = lists[:, :k]
    return top, top >= 0


def catalogue_coverage(lists: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one user's top-K."""
    top, valid = _valid(lists, k)
    return float(len(np.unique(top[valid])) / max(n_items, 1))


def average_popularity(lists: np.ndarray, popularity: np.ndarray, k: int) -> np.ndarray:
    """Per user: mean training popularity (share of users) of the recommended items (ARP)."""
    top, valid = _valid(lists, k)
    share = popularity / max(popularity.max(), 1.0)
    values = np.where(valid, share[np.maximum(top, 0)], 0.0).sum(axis=1)
    return values / np.maximum(valid.sum(axis=1), 1)


def novelty(lists: np.ndarray, popularity: np.ndarray, n_users: int, k: int) -> np.ndarray:
    """Per user: mean self-information -log2 p(i) of the recommended items.

    ``p(i) = (pop(i) + 1) / (n_users + 1)``: add-one smoothing so cold items (never seen in
    training) get a finite, maximal novelty.
    """
    top, valid = _valid(lists, k)
    info = -np.log2((popularity + 1.0) / (n_users + 1.0))
    values = np.where(valid, info[np.maximum(top, 0)], 0.0).sum(axis=1)
    return values / np.maximum(valid.sum(axis=1), 1)


def content_vectors(item_features: dict) -> np.ndarray | None:
    """One L2-normalised content vector per item: the concatenated, per-modality normalised
    vectors of ``fused_item_features`` (missing modalities contribute zeros)."""
    names = [n for n in item_features if not n.startswith("__")]
    if not names:
        return None
    parts = []
    for name in item_features.get("__order__", sorted(names)):
        vectors = np.asarray(item_features[name]["vectors"], dtype=np.float32)
        mask = np.asarray(item_features[name]["mask"], dtype=bool)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        parts.append(np.where(mask[:, None], vectors / np.maximum(norms, 1e-12), 0.0))
    joined = np.concatenate(parts, axis=1)
    return joined / np.maximum(np.linalg.norm(joined, axis=1, keepdims=True), 1e-12)


def intra_list_diversity(lists: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    """Per user: mean pairwise cosine distance (1 - cos) between the top-K items' content.

    Lists with fewer than two items score 0. Items without any content have a zero vector, so
    they count as maximally distant (cos 0) from everything. With unit vectors the sum over
    ordered pairs i != j of cos(i, j) is ``|sum v|^2 - sum |v|^2``: O(K d) per user, no K x K.
    """
    top, valid = _valid(lists, k)
    out = np.zeros(len(top))
    step = 512  # bounds memory at 512 * K * d floats
    for start in range(0, len(top), step):
        t, v = top[start : start + step], valid[start : start + step]
        emb = vectors[np.maximum(t, 0)] * v[..., None]
        total = emb.sum(axis=1)
        cross = (total * total).sum(axis=1) - (emb * emb).sum(axis=(1, 2))
        n = v.sum(axis=1).astype(np.float64)
        pairs = n * (n - 1)
        out[start : start + step] = np.where(pairs > 0, 1.0 - cross / np.maximum(pairs, 1), 0.0)
    return out
