"""Every grid point of the content mix ranked in one pass over the validation users.

A point's score is ``scale * g * z_twin + (1 - g) * z_content``
(:mod:`crossrec.models.content_mix`), so a chunk of users needs each model's score matrix
once; a point is then element-wise work and one top-k, and the points that differ only in
their tail slots share that top-k. Ranking each point as its own scorer (a matrix product over
the concatenated vectors and a ranking per point,
:func:`~crossrec.models.content_mix.validation_values`) gives the same lists up to float
rounding of near-equal scores, at about the grid's size times the cost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

log = logging.getLogger(__name__)


def grid_values(
    twin,
    content,
    degree: np.ndarray,
    points: Sequence,
    config,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    subsets: Sequence[sp.csr_matrix] = (),
    tie_order: np.ndarray | None = None,
) -> list[list[float]]:
    """For each of ``points`` (:class:`~crossrec.models.content_mix.MixChoice`), the mean
    ``config.metric@config.k`` over the users with pairs in ``truth``, then over the users with
    pairs in each of ``subsets``: what ``validation_values`` returns for that point's scorer."""
    from crossrec.metrics.ranking import auto_chunk_size, held_out_truth
    from crossrec.models.content_mix import metric_sum

    k = config.k
    truth, exclude = held_out_truth(truth, exclude, [k])
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    parts = [truth, *(sp.csr_matrix(subset) for subset in subsets)]
    sums = np.zeros((len(points), len(parts)))
    counts = np.zeros(len(parts))
    scores = _ScoreParts(twin, content, degree, config)
    chunk = max(1, auto_chunk_size(scores.n_items) // 2)  # two models' scores and the mix
    started = logged = time.perf_counter()
    for start in range(0, len(users), chunk):
        block = users[start : start + chunk]
        with torch.inference_mode():
            ranked = scores.ranked_block(block, exclude, points, k, tie_order)
        for j, part in enumerate(parts):
            for i, lists in enumerate(ranked):
                total, counted = metric_sum(lists, block, part, config.metric, k)
                sums[i, j] += total
            counts[j] += counted  # the same users for every point
        now = time.perf_counter()
        if now - logged > 30 or start + len(block) == len(users):  # a line at most every 30 s
            logged = now
            log.info(
                "content_mix: %d grid points ranked for %s of %s validation users (%.0f s)",
                len(points), f"{start + len(block):,}", f"{len(users):,}", now - started,
            )  # fmt: skip
    return [[float(v) for v in row] for row in sums / np.maximum(counts, 1)]


class _ScoreParts:
    """Both models' standardised vectors, the twin weights of each (tau, slope) and the items'
    popularity classes: what every chunk of users reuses."""

    def __init__(self, twin, content, degree: np.ndarray, config):
        from crossrec.models.content_mix import popular_items, standardised

        self.twin = standardised(*twin, config.standardise)
        self.content = standardised(*content, config.standardise)
        self.n_items = self.twin[1].shape[0]
        self.degree = np.asarray(degree)
        self.tail = torch.as_tensor(popular_items(degree, config.tail_share, most=False))
        self.is_head = popular_items(degree, config.head_share, most=True)
        self._weights: dict[tuple[float, float], torch.Tensor] = {}

    def weights(self, tau: float, slope: float) -> torch.Tensor:
        from crossrec.models.content_mix import twin_weights

        if (tau, slope) not in self._weights:
            self._weights[tau, slope] = torch.as_tensor(twin_weights(self.degree, tau, slope))
        return self._weights[tau, slope]

    def ranked_block(self, block, exclude, points, k: int, tie_order) -> np.ndarray:
        """(len(points), len(block), k) lists of one chunk of users."""
        from crossrec.metrics.ranking import csr_rows_to_mask, topk_deterministic

        twin = self.twin[0][block] @ self.twin[1].T
        content = self.content[0][block] @ self.content[1].T
        blocked = csr_rows_to_mask(exclude[block])
        # -inf where excluded, 0 elsewhere: each mix is then two fused multiply-adds onto it
        excluded = torch.zeros(blocked.shape).masked_fill_(blocked, -torch.inf)
        most_slots = max(p.slots for p in points)
        picks = None
        if most_slots:  # the content model's best open tail items; at most k of them are listed
            open_tail = self.tail.unsqueeze(0) & ~blocked
            picks = topk_deterministic(content.masked_fill(~open_tail, -torch.inf), k + most_slots)
            picks = picks.numpy()
        out = np.full((len(points), len(block), k), -1, dtype=np.int32)
        for (tau, slope, scale), members in _by_mix(points).items():
            g = self.weights(tau, slope)
            mixed = torch.addcmul(excluded, twin, scale * g).addcmul_(content, 1.0 - g)
            top = _ranked(mixed, k, tie_order)
            listed = top
            if tie_order is not None and any(slots for _, slots in members):
                listed = topk_deterministic(mixed, k).numpy()  # slotted lists: ties by index
            for i, slots in members:
                out[i, :, : top.shape[1]] = (
                    top if slots == 0 else _slotted(top, listed, picks, slots, self.is_head, k)
                )
        return out


def _by_mix(points) -> dict[tuple[float, float, float], list[tuple[int, int]]]:
    """Grid point indices and slots grouped by the mix they re-rank."""
    groups: dict[tuple[float, float, float], list[tuple[int, int]]] = {}
    for i, p in enumerate(points):
        groups.setdefault((p.tau, p.slope, p.scale), []).append((i, p.slots))
    return groups


def _ranked(scores: torch.Tensor, k: int, tie_order) -> np.ndarray:
    """Top ``k`` per row with ties in ``tie_order``, as ``rank_all_items`` ranks."""
    from crossrec.metrics.ranking import topk_deterministic

    if tie_order is None:
        return topk_deterministic(scores, k).numpy()
    order = torch.as_tensor(np.asarray(tie_order, dtype=np.int64))
    top = topk_deterministic(scores[:, order], k)
    return torch.where(top >= 0, order[top.clamp(min=0)], top).numpy()


def _slotted(top, listed, picks, slots: int, is_head: np.ndarray, k: int) -> np.ndarray:
    """Each row's list with ``slots`` of its places handed to its best open tail items, as
    :class:`~crossrec.models.content_mix.SlottedScorer` reorders the scores: the new list
    first, then the mix's order for what follows."""
    from crossrec.models.content_mix import slotted_list

    out = top.copy()
    for row in range(len(top)):
        items = [int(i) for i in listed[row] if i >= 0]
        held = set(items)
        new = [int(i) for i in picks[row] if i >= 0 and int(i) not in held][:slots]
        if not new:
            continue
        final = slotted_list(items, new, is_head)
        placed = set(final)
        rest = [int(i) for i in top[row] if i >= 0 and int(i) not in placed]
        row_items = (final + rest)[:k]
        out[row] = -1
        out[row, : len(row_items)] = row_items
    return out
