"""Equally similar neighbours: one rule for exact and approximate kNN search.

Item vectors repeat (items with the same attributes, the same placeholder image, one text
shared by a series) and many distinct vectors are equally similar to a query (multi-hot
attributes give a handful of cosine values). Which of the tied items become neighbours then
decides the graph, and left to the search it is an accident: exact search (``torch.topk``) takes
the lowest item indices, an approximate index whichever it reached first. Trained on the same
data, the two graphs gave models that differed by more than seed noise.

So the choice among ties is a rule, the same for both searches: the kNN search runs over the
**distinct** vectors (:func:`distinct_rows`: less work too when vectors repeat), and each
item's neighbours are taken from its own group of identical vectors and its neighbour groups
in order of similarity, equal similarities (to :data:`SIMILARITY_QUANTUM`) ordered by the items'
``priority`` (:func:`expand_groups`). fuse's priority is the item's train interactions
(``fuse.knn.ties: popular``): a tied neighbour with more interactions carries more collaborative
signal into the item's representation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Cosine similarities closer than this count as equal (rounding of the same cosine computed
#: by different kernels stays well below it).
SIMILARITY_QUANTUM = 2.0**-20
#: Candidate entries scored at once when expanding groups (memory: 16 bytes each).
EXPAND_BLOCK_ENTRIES = 2**24


class DistinctRows(NamedTuple):
    """Rows grouped by identical vectors: ``first[g]`` is group g's representative row,
    ``group[r]`` the group of row r."""

    first: np.ndarray
    group: np.ndarray


def distinct_rows(unit: np.ndarray, block_rows: int = 65536) -> DistinctRows:
    """Groups of identical rows of ``unit`` (L2-normalised), numbered by first appearance.

    Rows are compared through three fixed random projections (memory ``3 n`` floats instead
    of a sorted copy of the vectors). Rows that differ get different projections but for a
    vanishing chance; rows that differ by float rounding only may share them, and their cosine
    is 1 to far less than one similarity quantum anyway.
    """
    n, d = unit.shape
    directions = np.random.default_rng(0).standard_normal((d, 3)).astype(np.float32)
    projected = np.empty((n, 3), dtype=np.float32)
    for start in range(0, n, block_rows):
        projected[start : start + block_rows] = unit[start : start + block_rows] @ directions
    keys = np.ascontiguousarray(projected).view(np.dtype((np.void, 12))).ravel()
    _, first, group = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    return DistinctRows(first[order], renumber[group.ravel()])


def priority_rank(priority: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) 0 for the most preferred row, then 1, ...: higher ``priority`` first, equal
    priorities (or no priority) by lower row."""
    if priority is None:
        return np.arange(n)
    order = np.lexsort((np.arange(n), -np.asarray(priority, dtype=np.float64)))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def tie_bonus(rank: np.ndarray) -> np.ndarray:
    """(n,) in [0, 1): added to a similarity counted in quanta, it orders equal similarities
    by ``rank`` without passing a higher one."""
    return 1.0 - (np.asarray(rank, dtype=np.float64) + 1.0) / (len(rank) + 1.0)


def quantised(similarity: np.ndarray) -> np.ndarray:
    """Similarities counted in :data:`SIMILARITY_QUANTUM` steps (float64)."""
    return np.floor(np.asarray(similarity, dtype=np.float64) / SIMILARITY_QUANTUM)


def group_members(groups: DistinctRows, rank: np.ndarray, keep: int) -> np.ndarray:
    """(n_groups, m) each group's rows by rank, at most ``keep`` of them (-1 pads): no item
    ever needs more than ``k + 1`` rows of one group."""
    n_groups = len(groups.first)
    order = np.lexsort((rank, groups.group))
    sorted_groups = groups.group[order]
    starts = np.searchsorted(sorted_groups, np.arange(n_groups))
    position = np.arange(len(order)) - starts[sorted_groups]
    width = int(min(keep, position.max() + 1)) if len(order) else 1
    members = np.full((n_groups, width), -1, dtype=np.int64)
    kept = position < width
    members[sorted_groups[kept], position[kept]] = order[kept]
    return members


def expand_groups(
    groups: DistinctRows,
    neighbours: np.ndarray,
    similarities: np.ndarray,
    rank: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``k`` neighbours from its group's neighbour groups: ``(src, dst, score)``.

    ``neighbours`` / ``similarities`` are ``(n_groups, k_groups)`` (-1 pads) from a search
    over the groups' representatives. A row's candidates are the other rows of its own group
    (similarity 1) and the rows of its neighbour groups, ordered by quantised similarity, then
    by ``rank``; it keeps the first ``k``.
    """
    n_groups = len(groups.first)
    members = group_members(groups, rank, k + 1)
    bonus = np.append(tie_bonus(rank), 0.0)  # index -1 (padding) reads the last entry
    own = np.arange(n_groups)[:, None]
    candidate_groups = np.concatenate([own, neighbours], axis=1)
    candidate_sims = np.concatenate(
        [np.ones((n_groups, 1), dtype=np.float64), similarities.astype(np.float64)], axis=1
    )
    width = candidate_groups.shape[1] * members.shape[1]
    block = max(1, EXPAND_BLOCK_ENTRIES // max(width, 1))
    best = np.full((n_groups, k + 1), -1, dtype=np.int64)
    best_sims = np.zeros((n_groups, k + 1), dtype=np.float64)
    for start in range(0, n_groups, block):
        stop = min(start + block, n_groups)
        cg = candidate_groups[start:stop]
        items = np.where(cg[:, :, None] >= 0, members[np.maximum(cg, 0)], -1).reshape(
            stop - start, -1
        )
        sims = np.repeat(candidate_sims[start:stop], members.shape[1], axis=1)
        keys = np.where(items >= 0, quantised(sims) + bonus[items], -np.inf)
        take = min(k + 1, keys.shape[1])
        top = np.argpartition(-keys, take - 1, axis=1)[:, :take]
        top = np.take_along_axis(
            top, np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable"), axis=1
        )
        chosen = np.take_along_axis(items, top, axis=1)
        best[start:stop, :take] = chosen
        best_sims[start:stop, :take] = np.take_along_axis(sims, top, axis=1)
    rows = np.arange(len(groups.group))
    lists, list_sims = best[groups.group], best_sims[groups.group]
    keep = (lists >= 0) & (lists != rows[:, None])
    keep &= np.cumsum(keep, axis=1) <= k
    counts = keep.sum(axis=1)
    return np.repeat(rows, counts), lists[keep], list_sims[keep].astype(np.float32)
