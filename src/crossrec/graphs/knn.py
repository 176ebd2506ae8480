"""Sparse graphs built once from features and interactions (LATTICE / FREEDOM style).

* :func:`knn_graph` — item–item top-k cosine graph of one modality, symmetrised and
  symmetric-normalised (``D^-1/2 A D^-1/2``). Rows are scored ``chunk_rows`` at a time with
  torch, so memory is ``O(chunk_rows * n_items + n_items * k)`` instead of ``O(n_items^2)``.
* :func:`normalized_user_item_graph` — the LightGCN bipartite adjacency of the TRAIN
  interactions, ``D^-1/2 [[0, R], [R^T, 0]] D^-1/2`` over ``n_users + n_items`` nodes.

Both return ``scipy.sparse.csr_matrix`` (float32), which pickles compactly and converts to a
torch sparse tensor in the model code.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

Weighting = Literal["binary", "cosine"]

#: Byte budget of one chunk's dense similarity block (float32 scores).
DEFAULT_CHUNK_BYTES = 128 * 2**20


def symmetric_normalize(adj: sp.spmatrix) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` with D the row sums; isolated nodes keep all-zero rows."""
    adj = sp.csr_matrix(adj, dtype=np.float64)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    positive = degree > 0
    inv_sqrt[positive] = degree[positive] ** -0.5
    scale = sp.diags(inv_sqrt)
    out = (scale @ adj @ scale).tocsr()
    out.sort_indices()
    return out.astype(np.float32)


def _check_vectors(
    vectors: np.ndarray, mask: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(
            f"knn_graph: vectors must be a 2-D (n_items, d) array, got shape {vectors.shape}"
        )
    n_items = vectors.shape[0]
    if mask is None:
        mask = np.ones(n_items, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != (n_items,):
        raise ValueError(
            f"knn_graph: mask must have shape ({n_items},) to match the vectors, got {mask.shape}"
        )
    if mask.dtype != bool:
        raise ValueError(f"knn_graph: mask must be boolean, got dtype {mask.dtype}")
    if k < 1:
        raise ValueError(f"knn_graph: k must be >= 1, got {k}")
    bad = ~np.isfinite(vectors[mask]).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(mask)[bad][:5].tolist()
        raise ValueError(f"knn_graph: non-finite values in the vectors of items {rows} (first 5)")
    return vectors, mask


def knn_graph(
    vectors: np.ndarray,
    mask: np.ndarray | None,
    k: int,
    *,
    weighting: Weighting = "binary",
    chunk_rows: int | None = None,
    device: str = "cpu",
) -> sp.csr_matrix:
    """Symmetric-normalised top-``k`` cosine item–item graph of one modality.

    Each usable item (``mask`` True and a non-zero vector) links to its ``k`` most similar
    other usable items (no self loops); the graph is symmetrised (an edge exists when either end
    picked the other) and normalised with ``D^-1/2 A D^-1/2``. ``weighting="binary"`` uses 1 per
    edge (FREEDOM); ``"cosine"`` keeps the similarity clipped at 0 (LATTICE). Items without a
    usable vector get no edges, so graph propagation leaves them to their own features.
    """
    import torch

    vectors, mask = _check_vectors(vectors, mask, k)
    n_items = vectors.shape[0]
    norms = np.linalg.norm(vectors, axis=1)
    usable = mask & (norms > 0)
    if (mask & ~usable).any():
        logger.warning(
            "knn_graph: %d items have mask True but an all-zero vector; they get no edges",
            int((mask & ~usable).sum()),
        )
    valid_idx = np.flatnonzero(usable)
    n_valid = len(valid_idx)
    k_eff = min(k, n_valid - 1)
    if k_eff < k:
        logger.warning(
            "knn_graph: only %d usable items, k lowered from %d to %d", n_valid, k, max(k_eff, 0)
        )
    if k_eff < 1:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)

    feats = torch.from_numpy(np.ascontiguousarray(vectors[valid_idx], dtype=np.float32)).to(device)
    feats = feats / feats.norm(dim=1, keepdim=True)
    if chunk_rows is None:
        chunk_rows = max(1, DEFAULT_CHUNK_BYTES // (4 * n_valid))
    rows_out, cols_out, vals_out = [], [], []
    with torch.inference_mode():
        for start in range(0, n_valid, chunk_rows):
            block = feats[start : start + chunk_rows] @ feats.T
            local = torch.arange(block.shape[0], device=device)
            block[local, local + start] = -float("inf")  # no self loops
            values, cols = torch.topk(block, k_eff, dim=1)
            rows_out.append(np.repeat(np.arange(start, start + block.shape[0]), k_eff))
            cols_out.append(cols.reshape(-1).cpu().numpy())
            vals_out.append(values.reshape(-1).cpu().numpy())
    rows = valid_idx[np.concatenate(rows_out)]
    cols = valid_idx[np.concatenate(cols_out)]
    if weighting == "binary":
        vals = np.ones(len(rows), dtype=np.float64)
    elif weighting == "cosine":
        vals = np.clip(np.concatenate(vals_out).astype(np.float64), 0.0, None)
    else:
        raise ValueError(f"knn_graph: weighting must be 'binary' or 'cosine', got {weighting!r}")
    directed = sp.csr_matrix((vals, (rows, cols)), shape=(n_items, n_items))
    directed.sum_duplicates()
    symmetric = directed.maximum(directed.T)
    symmetric.eliminate_zeros()
    return symmetric_normalize(symmetric)


def normalized_user_item_graph(
    train_users: np.ndarray, train_items: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` of the bipartite graph; users are nodes ``0..n_users-1``, items follow.

    Pass only TRAIN interactions: validation/test edges here would leak the answers into graph
    propagation. Repeated (user, item) pairs count once.
    """
    users = np.asarray(train_users, dtype=np.int64)
    items = np.asarray(train_items, dtype=np.int64)
    if users.shape != items.shape or users.ndim != 1:
        raise ValueError(
            f"normalized_user_item_graph: train_users and train_items must be 1-D of equal length, "
            f"got {users.shape} and {items.shape}"
        )
    for name, idx, bound in (("user", users, n_users), ("item", items, n_items)):
        out = (idx < 0) | (idx >= bound)
        if out.any():
            raise ValueError(
                f"normalized_user_item_graph: {int(out.sum())} {name} indices outside [0, {bound}) "
                f"(first: {idx[out][:5].tolist()})"
            )
    ones = np.ones(len(users), dtype=np.float64)
    r = sp.csr_matrix((ones, (users, items)), shape=(n_users, n_items))
    r.sum_duplicates()
    r.data[:] = 1.0  # a repeated pair is one edge
    adj = sp.bmat([[None, r], [r.T, None]], format="csr")
    return symmetric_normalize(adj)
