"""Sparse graphs built once from features and interactions (LATTICE / FREEDOM style).

* :func:`knn_graph` — item–item top-k cosine graph of one modality, symmetrised and
  symmetric-normalised (``D^-1/2 A D^-1/2``). Exact search scores rows ``chunk_rows`` at a time
  with torch, so memory is ``O(chunk_rows * n_items + n_items * k)`` instead of
  ``O(n_items^2)``; above ``approximate_above`` usable items (``search="auto"``) the neighbours
  come from a faiss index instead (:mod:`crossrec.graphs.ann`), with their recall measured on a
  sample of items. How the neighbours were found is attached to the graph
  (:func:`knn_search_info`).
* :func:`normalized_user_item_graph` — the LightGCN bipartite adjacency of the TRAIN
  interactions, ``D^-1/2 [[0, R], [R^T, 0]] D^-1/2`` over ``n_users + n_items`` nodes.

Both return ``scipy.sparse.csr_matrix`` (float32), which pickles compactly and converts to a
torch sparse tensor in the model code.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from crossrec.graphs.ann import AnnSettings, approximate_topk, sampled_recall
from crossrec.graphs.ties import (
    SIMILARITY_QUANTUM,
    distinct_rows,
    expand_groups,
    priority_rank,
    tie_bonus,
)

logger = logging.getLogger(__name__)

Weighting = Literal["binary", "cosine"]
Search = Literal["auto", "exact", "approximate"]

#: Usable items above which ``search="auto"`` uses the approximate index.
DEFAULT_APPROXIMATE_ABOVE = 50_000
#: Sampled recall@k below which the approximate graph is logged as a warning.
LOW_RECALL = 0.9
#: Attribute of the returned graph holding how its neighbours were found.
INFO_ATTR = "knn_search"

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


def knn_search_info(graph: sp.spmatrix) -> dict[str, Any] | None:
    """How :func:`knn_graph` found the graph's neighbours (``search``, ``items``, ``k``,
    ``seconds``; for the approximate path also ``index``, ``recall_at_k`` and
    ``recall_sampled_items``), or None for a graph built elsewhere."""
    return getattr(graph, INFO_ATTR, None)


def _exact_topk(
    unit: np.ndarray, k_eff: int, chunk_rows: int | None, device: str, bonus: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every row's ``k_eff`` most similar other rows of ``unit`` (L2-normalised), equal
    similarities (in :data:`~crossrec.graphs.ties.SIMILARITY_QUANTUM` steps) ordered by
    ``bonus`` (:func:`~crossrec.graphs.ties.tie_bonus`)."""
    import torch

    n_valid = len(unit)
    feats = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32)).to(device)
    extra = torch.from_numpy(np.asarray(bonus, dtype=np.float64)).to(device)
    if chunk_rows is None:  # float32 scores and float64 keys
        chunk_rows = max(1, DEFAULT_CHUNK_BYTES // (12 * n_valid))
    rows_out, cols_out, vals_out = [], [], []
    with torch.inference_mode():
        for start in range(0, n_valid, chunk_rows):
            block = feats[start : start + chunk_rows] @ feats.T
            keys = torch.floor(block.double() / SIMILARITY_QUANTUM) + extra
            local = torch.arange(block.shape[0], device=device)
            keys[local, local + start] = -float("inf")  # no self loops
            cols = torch.topk(keys, k_eff, dim=1).indices
            values = torch.gather(block, 1, cols)
            rows_out.append(np.repeat(np.arange(start, start + block.shape[0]), k_eff))
            cols_out.append(cols.reshape(-1).cpu().numpy())
            vals_out.append(values.reshape(-1).cpu().numpy())
    return np.concatenate(rows_out), np.concatenate(cols_out), np.concatenate(vals_out)


def _approximate(
    name: str,
    vectors: np.ndarray,
    valid_idx: np.ndarray,
    k_eff: int,
    settings: AnnSettings,
    extra: int = 0,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], dict[str, Any]]:
    start = time.perf_counter()
    used: dict[str, AnnSettings] = {}
    found = approximate_topk(vectors, valid_idx, k_eff, settings, used, extra=extra)
    settings = used["settings"]  # widened to the recall target when the sample fell short
    seconds = time.perf_counter() - start
    info: dict[str, Any] = {"search": "approximate", "index": settings.index}
    info.update(index_settings=settings.describe(), items=len(valid_idx), k=k_eff)
    info.update(seconds=round(seconds, 3), recall_at_k=None, recall_sampled_items=0)
    if settings.recall_sample > 0:  # measured by the widening when it ran, else here
        src, dst = found[0], found[1]
        slot = np.arange(len(src)) - np.searchsorted(src, src)  # rows come in order of score
        recall, sampled = used.get("recall") or sampled_recall(
            vectors,
            valid_idx,
            src[slot < k_eff],
            dst[slot < k_eff],
            k_eff,
            settings.recall_sample,
            settings.seed,
        )
        info.update(recall_at_k=recall, recall_sampled_items=sampled)
        info["recall_seconds"] = round(time.perf_counter() - start - seconds, 3)
        level = logging.WARNING if recall < LOW_RECALL else logging.INFO
        logger.log(
            level,
            "knn_graph(%s): approximate %s, %s items, recall@%d %.3f on %s sampled items, %.1f s%s",
            name,
            settings.describe(),
            f"{len(valid_idx):,}",
            k_eff,
            recall,
            f"{sampled:,}",
            seconds,
            f" (below {LOW_RECALL}: raise hnsw_ef_search / ivf_nprobe)"
            if recall < LOW_RECALL
            else "",
        )
    else:
        logger.info(
            "knn_graph(%s): approximate %s, %s items, recall not measured, %.1f s",
            name,
            settings.describe(),
            f"{len(valid_idx):,}",
            seconds,
        )
    return found, info


def knn_graph(
    vectors: np.ndarray,
    mask: np.ndarray | None,
    k: int,
    *,
    weighting: Weighting = "binary",
    chunk_rows: int | None = None,
    device: str = "cpu",
    search: Search = "auto",
    approximate_above: int = DEFAULT_APPROXIMATE_ABOVE,
    approximate: AnnSettings | None = None,
    name: str = "items",
    priority: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Symmetric-normalised top-``k`` cosine item–item graph of one modality.

    Each usable item (``mask`` True and a non-zero vector) links to its ``k`` most similar
    other usable items (no self loops); the graph is symmetrised (an edge exists when either end
    picked the other) and normalised with ``D^-1/2 A D^-1/2``. ``weighting="binary"`` uses 1 per
    edge (FREEDOM); ``"cosine"`` keeps the similarity clipped at 0 (LATTICE). Items without a
    usable vector get no edges, so graph propagation leaves them to their own features.

    ``search="exact"`` scores every pair; ``"approximate"`` takes the neighbours from a faiss
    index (``approximate``: its settings, CPU whatever ``device``); ``"auto"`` is approximate
    when there are more than ``approximate_above`` distinct usable vectors. Both search among
    the distinct vectors and share one rule for equally similar neighbours
    (:mod:`crossrec.graphs.ties`): higher ``priority`` first (fuse: train interactions), then the
    lower item index. :func:`knn_search_info` of the result says which path ran and, for the
    approximate one, its sampled recall@k among the distinct vectors.
    """
    if search not in ("auto", "exact", "approximate"):
        raise ValueError(f"knn_graph: search must be auto, exact or approximate, got {search!r}")
    if weighting not in ("binary", "cosine"):
        raise ValueError(f"knn_graph: weighting must be 'binary' or 'cosine', got {weighting!r}")
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
        empty = sp.csr_matrix((n_items, n_items), dtype=np.float32)
        setattr(empty, INFO_ATTR, {"search": "exact", "items": n_valid, "k": 0, "seconds": 0.0})
        return empty

    start = time.perf_counter()
    unit = vectors[valid_idx].astype(np.float32, copy=False)  # indexing copied them
    unit /= norms[valid_idx, None]
    groups = distinct_rows(unit)
    n_distinct = len(groups.first)
    rank = priority_rank(None if priority is None else np.asarray(priority)[valid_idx], n_valid)
    group_rank = np.full(n_distinct, n_valid, dtype=np.int64)
    np.minimum.at(group_rank, groups.group, rank)  # a group ranks as its best row
    k_groups = min(k_eff, n_distinct - 1)
    use_ann = search == "approximate" or (search == "auto" and n_distinct > approximate_above)
    # the approximate search returns as many candidates again, for the tie rule to re-rank
    extra = min(k_groups, n_distinct - 1 - k_groups) if use_ann else 0
    neighbours = np.full((n_distinct, k_groups + extra), -1, dtype=np.int64)
    similarities = np.zeros((n_distinct, k_groups + extra), dtype=np.float32)
    info: dict[str, Any] = {"search": "exact"}
    if k_groups >= 1:
        reps = unit if n_distinct == n_valid else unit[groups.first]
        if use_ann:
            settings = approximate or AnnSettings()
            found, info = _approximate(name, reps, np.arange(n_distinct), k_groups, settings, extra)
        else:
            bonus = tie_bonus(np.argsort(np.argsort(group_rank, kind="stable"), kind="stable"))
            found = _exact_topk(reps, k_groups, chunk_rows, device, bonus)
        src, dst, values = found
        order = np.argsort(src, kind="stable")
        first = np.searchsorted(src[order], np.arange(n_distinct))
        slot = np.arange(len(order)) - first[src[order]]
        neighbours[src[order], slot] = dst[order]
        similarities[src[order], slot] = values[order]
    rows, cols, values = expand_groups(groups, neighbours, similarities, rank, k_eff)
    info.update(items=n_valid, distinct=n_distinct, k=k_eff)
    info.setdefault("seconds", round(time.perf_counter() - start, 3))  # approximate: its own
    rows, cols = valid_idx[rows], valid_idx[cols]
    if weighting == "binary":
        vals = np.ones(len(rows), dtype=np.float64)
    else:
        vals = np.clip(values.astype(np.float64), 0.0, None)
    directed = sp.csr_matrix((vals, (rows, cols)), shape=(n_items, n_items))
    directed.sum_duplicates()
    symmetric = directed.maximum(directed.T)
    symmetric.eliminate_zeros()
    graph = symmetric_normalize(symmetric)
    setattr(graph, INFO_ATTR, info)
    return graph


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
