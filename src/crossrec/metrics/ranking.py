"""Full-ranking top-K retrieval and the field's ranking metrics, chunked over users.

Protocol (MMRec / RecBole "full" mode): every user is scored against ALL items; items the user
interacted with in training (and in validation, when scoring test) are masked so they can never
be recommended; Recall@K = hits / |user's held-out items|. Users without held-out items are left
out of the averages.

Memory bound: scoring works on ``chunk_users`` users at a time. Per (user, item) cell of a chunk
it holds the score_fn output (4 bytes as float32), this module's float32 copy that gets masked
(4), its copy in tie-break order (4, when a ``tie_order`` is given), two boolean temporaries of
the tie check (2) and, only for rows whose top-K cut falls inside a run of tied scores, the exact
tie path (3 booleans + an int64 cumsum = 11): at most ~28 bytes, so about
``28 * chunk_users * n_items`` bytes, plus O(n_users * K_max) for the ranked lists.
``auto_chunk_size`` picks the chunk from a byte budget (default 256 MiB), so a 1M-item catalogue
is scored ~9 users at a time and a 2k-item catalogue ~4.8k users at a time. On a GPU the same
bound applies to device memory (pass ``device="cuda"``; score_fn must return on that device).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

logger = logging.getLogger(__name__)

METRIC_NAMES = ("recall", "ndcg", "precision", "mrr", "hit", "map")

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
"""Maps a 1-D tensor of user indices to a (len(users), n_items) score tensor."""


def auto_chunk_size(n_items: int, budget_bytes: int = 256 * 2**20) -> int:
    """Users per chunk so that one chunk's working memory stays under ``budget_bytes``."""
    return max(1, int(budget_bytes // (28 * max(n_items, 1))))


def topk_deterministic(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k item indices per row, ordered by (score desc, item index asc).

    ``torch.topk`` leaves the order of tied scores unspecified; recommendation lists and metrics
    must not depend on it. Fast path: one ``torch.topk`` of k + 1 (the extra value tells whether
    the k-th score is tied with an item left out). Rows whose cut falls inside a run of ties take
    the exact path (:func:`_keyed_topk`); rows with ties inside their top k are re-sorted by
    (score, index). Rows without ties (the usual case for learnt scores) cost one topk only.
    ``-inf`` marks masked items: positions that would hold one get ``-1`` (a masked item is never
    returned). NaN scores are treated as ``-inf`` (a diverged model recommends nothing rather
    than its NaN items first, which is what ``torch.topk`` would do).
    """
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    if k == 0 or n_rows == 0:
        return torch.empty((n_rows, k), dtype=torch.long, device=scores.device)
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()  # exact (widening), and numpy has no bfloat16
    values, items = _largest(scores, min(k + 1, n_items))
    if bool(torch.isnan(values).any()):  # both paths rank NaN highest: only then a full pass
        scores = scores.masked_fill(torch.isnan(scores), -torch.inf)
        values, items = _largest(scores, min(k + 1, n_items))
    crosses_cut = torch.zeros(n_rows, dtype=torch.bool, device=scores.device)
    if values.shape[1] > k:
        crosses_cut = (values[:, k] == values[:, k - 1]) & ~torch.isneginf(values[:, k - 1])
        values, items = values[:, :k], items[:, :k]
        if bool(crosses_cut.any()):
            rows = crosses_cut.nonzero(as_tuple=True)[0]
            items[rows] = _keyed_topk(scores[rows], k)
            values[rows] = torch.gather(scores[rows], 1, items[rows])
    # ties inside the top k (not -inf slots): order them by index; sorts only those rows
    inner = (values[:, 1:] == values[:, :-1]) & ~torch.isneginf(values[:, 1:])
    tied = inner.any(dim=1) & ~crosses_cut
    if bool(tied.any()):
        rows = tied.nonzero(as_tuple=True)[0]
        by_index = torch.sort(items[rows], dim=1).values
        by_score = torch.sort(
            torch.gather(scores[rows], 1, by_index), dim=1, descending=True, stable=True
        )
        items[rows] = torch.gather(by_index, 1, by_score.indices)
        values[rows] = by_score.values
    return items.masked_fill(torch.isneginf(values), -1)


#: rows at least this wide (and four blocks' worth) take the threshold path of :func:`_largest`
THRESHOLD_MIN_ITEMS = 4096


def _threshold_blocks(m: int) -> int:
    """Blocks per row of the threshold path: many more than m, so few top entries share one."""
    return max(256, 8 * m)


def _largest(scores: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The m largest entries per row (floats without NaN, or int64 keys), in descending order
    (order of equal values arbitrary).

    On CPU, wide rows take :func:`_largest_above_threshold` (7-8x faster than numpy's
    introselect on 10^5-10^6 items), the others and rows with many ties at the cut
    :func:`_largest_by_partition`; elsewhere ``torch.topk``.
    """
    if scores.device.type != "cpu":
        return torch.topk(scores, m, dim=1)
    n = scores.shape[1]
    if m < n and n >= max(THRESHOLD_MIN_ITEMS, 4 * _threshold_blocks(m)):
        return _largest_above_threshold(scores, m)
    return _largest_by_partition(scores, m)


def _largest_by_partition(scores: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """numpy's introselect (argpartition) plus a sort of the m winners (~3x faster than
    ``torch.topk`` on CPU)."""
    array = scores.detach().numpy()
    n = array.shape[1]
    cand = np.argpartition(array, n - m, axis=1)[:, n - m :] if m < n else np.argsort(array, 1)
    vals = np.take_along_axis(array, cand, axis=1)
    order = np.flip(np.argsort(vals, axis=1), axis=1)
    return (
        torch.from_numpy(np.ascontiguousarray(np.take_along_axis(vals, order, axis=1))),
        torch.from_numpy(np.take_along_axis(cand, order, axis=1).astype(np.int64)),
    )


def _largest_above_threshold(scores: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The m largest per row from the few entries at or above a threshold that cannot exclude
    one of them: the m-th largest of the row's block maxima (m blocks hold at least that much,
    so at least m entries do). One pass for the maxima; then only the blocks whose maximum
    reaches the threshold are searched, and only their candidates sorted.

    A block is every ``n_blocks``-th column (not a run of neighbours): item ids often follow
    popularity, and contiguous blocks would put a row's best items in a few blocks and the
    threshold far below them. Rows with more than ``64 m`` candidates (long runs of ties at the
    cut) and rows holding NaN are selected by partition instead."""
    n_rows, n = scores.shape
    scores = scores.detach()
    n_blocks = _threshold_blocks(m)
    whole = n // n_blocks * n_blocks
    blocks = scores[:, :whole].reshape(n_rows, whole // n_blocks, n_blocks)  # column j*B + b
    maxima = blocks.amax(dim=1)
    if whole < n:
        maxima = torch.cat([maxima, scores[:, whole:].amax(dim=1, keepdim=True)], dim=1)
    threshold = torch.topk(maxima, m, dim=1).values[:, -1:]
    rows, cols = _entries_at_least(scores, blocks, maxima, threshold)
    counts = np.bincount(rows, minlength=n_rows)
    crowded = (counts > 64 * m) | (counts < m)
    if maxima.is_floating_point():  # NaN rows too: the caller masks NaN when it sees one
        crowded |= torch.isnan(maxima).any(dim=1).numpy()
    keep = ~crowded[rows]
    rows, cols = rows[keep], cols[keep]
    values = scores[torch.from_numpy(rows), torch.from_numpy(cols)].numpy()
    descending = ~values if values.dtype.kind == "i" else -values  # ~: no int64 overflow
    order = np.lexsort((descending, rows))  # by row, then value descending
    starts = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_rows))[:-1]]
    easy = np.flatnonzero(~crowded)
    picked = order[(starts[easy, None] + np.arange(m)[None]).ravel()]
    out_values = np.empty((n_rows, m), dtype=values.dtype)
    out_items = np.empty((n_rows, m), dtype=np.int64)
    out_values[easy], out_items[easy] = values[picked].reshape(-1, m), cols[picked].reshape(-1, m)
    if crowded.any():
        hard = np.flatnonzero(crowded)
        hard_values, hard_items = _largest_by_partition(scores[torch.from_numpy(hard)], m)
        out_values[hard], out_items[hard] = hard_values.numpy(), hard_items.numpy()
    return torch.from_numpy(out_values), torch.from_numpy(out_items)


def _entries_at_least(scores, blocks, maxima, threshold):
    """(rows, columns) of the entries at or above each row's ``threshold``, searched in the
    blocks whose maximum reaches it (and the columns past the last whole block)."""
    n_blocks = blocks.shape[2]
    block_rows, block_ids = (maxima[:, :n_blocks] >= threshold).nonzero(as_tuple=True)
    inside = blocks[block_rows, :, block_ids] >= threshold[block_rows]
    pair, step = inside.nonzero(as_tuple=True)
    rows = block_rows[pair]
    cols = step * n_blocks + block_ids[pair]
    whole = blocks.shape[1] * n_blocks
    if whole < scores.shape[1]:
        tail_rows, tail_cols = (scores[:, whole:] >= threshold).nonzero(as_tuple=True)
        rows, cols = torch.cat([rows, tail_rows]), torch.cat([cols, tail_cols + whole])
    return rows.numpy(), cols.numpy()


def _keyed_topk(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Exact top-k by (score desc, index asc) via unique int64 keys: score bits, then index.

    A float32's bits, with the non-sign bits flipped for negatives, order like the float; shifted
    left by 32 and combined with ``2**32 - 1 - index`` every key is unique, so one topk is exact.
    """
    n_items = scores.shape[1]
    bits = (scores.float() + 0.0).view(torch.int32)  # + 0.0 turns -0.0 into +0.0
    key = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits).to(torch.int64)
    index = torch.arange(n_items, dtype=torch.int64, device=scores.device)
    key = (key << 32) | (0xFFFFFFFF - index)
    return _largest(key, k)[1]


def csr_rows_to_mask(rows: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """Dense boolean mask of a block of CSR rows (one chunk of users)."""
    coo = rows.tocoo()
    mask = torch.zeros(rows.shape, dtype=torch.bool, device=device)
    if coo.nnz:
        mask[torch.as_tensor(coo.row, device=device), torch.as_tensor(coo.col, device=device)] = (
            True
        )
    return mask


def metrics_from_hits(
    hits: np.ndarray, n_relevant: np.ndarray, ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per-user metrics from a (n_users, K_max) 0/1 hit matrix in rank order.

    ``n_relevant`` is each user's number of held-out items (all > 0). Conventions (RecBole's):
    precision@K divides by K even when fewer than K items could be ranked; MAP@K divides by
    min(|relevant|, K); NDCG@K uses the ideal DCG of min(|relevant|, K) hits; MRR@K is 0 when
    no hit is in the top K.
    """
    if np.any(np.asarray(n_relevant) <= 0):
        raise ValueError(
            "metrics_from_hits needs n_relevant > 0 for every user (drop users "
            "without held-out items first, as evaluate_ranking does)"
        )
    hits = hits.astype(np.float64)
    n_relevant = n_relevant.astype(np.float64)
    positions = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(positions + 1.0)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        h = hits[:, :k]
        n_hits = h.sum(axis=1)
        ideal_len = np.minimum(n_relevant, k).astype(int)
        idcg = np.cumsum(discounts[:k])[np.maximum(ideal_len, 1) - 1]
        dcg = (h * discounts[: h.shape[1]]).sum(axis=1)
        first_hit = np.where(n_hits > 0, h.argmax(axis=1) + 1, 0)
        precision_at_i = np.cumsum(h, axis=1) / positions[: h.shape[1]]
        out[f"recall@{k}"] = n_hits / n_relevant
        out[f"ndcg@{k}"] = dcg / idcg
        out[f"precision@{k}"] = n_hits / k
        out[f"mrr@{k}"] = np.where(first_hit > 0, 1.0 / np.maximum(first_hit, 1), 0.0)
        out[f"hit@{k}"] = (n_hits > 0).astype(np.float64)
        out[f"map@{k}"] = (precision_at_i * h).sum(axis=1) / np.minimum(n_relevant, k)
    return out


def mask_rows_(scores: torch.Tensor, rows: sp.csr_matrix) -> torch.Tensor:
    """Set ``scores[i, j] = -inf`` in place for every stored entry (i, j) of ``rows``.

    Writes only the nnz masked cells instead of building a dense (users, items) mask.
    """
    if rows.nnz:
        row_ids = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        scores.index_put_(
            (
                torch.as_tensor(row_ids, device=scores.device),
                torch.as_tensor(rows.indices.astype(np.int64), device=scores.device),
            ),
            torch.tensor(-torch.inf, device=scores.device),
        )
    return scores


def _score_block(score_fn: ScoreFn, block: np.ndarray, n_items: int, device) -> torch.Tensor:
    """Scores of one user chunk as a float32 tensor this module owns (safe to mask in place)."""
    raw = score_fn(torch.as_tensor(block, dtype=torch.long, device=device))
    raw = torch.as_tensor(raw)
    if raw.shape != (len(block), n_items):
        raise ValueError(
            f"score_fn returned shape {tuple(raw.shape)} for {len(block)} users; expected "
            f"({len(block)}, {n_items}) = (users in the chunk, items in the catalogue)"
        )
    # A copy even when already float32: score_fn may return a view of its own cached matrix.
    return raw.detach().to(dtype=torch.float32, copy=True)


def tie_break_order(n_items: int, seed: int) -> np.ndarray:
    """A seeded permutation of the items: the order in which tied scores are ranked.

    Item indices often carry information (MovieLens ids follow release order, which correlates
    with popularity), so breaking ties by index would hand an unearned edge to scorers that tie a
    lot — MostPop and ItemKNN on items without training data. A random order shared by every
    model keeps ties uninformative and results reproducible.
    """
    return np.random.default_rng([seed, 7]).permutation(n_items).astype(np.int64)


def _check_tie_order(tie_order: np.ndarray | None, n_items: int) -> None:
    if tie_order is None:
        return
    order = np.asarray(tie_order)
    if order.shape != (n_items,) or not np.array_equal(np.sort(order), np.arange(n_items)):
        raise ValueError(f"tie_order must be a permutation of the {n_items} item indices")


def rank_all_items(
    score_fn: ScoreFn,
    users: np.ndarray,
    exclude: sp.csr_matrix,
    k: int,
    chunk_users: int | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[[Iterable], Iterable] | None = None,
    candidates: np.ndarray | None = None,
    tie_order: np.ndarray | None = None,
) -> np.ndarray:
    """Top-``k`` items for each user in ``users`` with ``exclude`` rows masked (-1 = no item).

    ``candidates`` (bool, n_items) restricts ranking to a subset of the catalogue for everyone
    (e.g. only cold-start items); None ranks all items. ``tie_order`` (a permutation of the
    items, see :func:`tie_break_order`) decides the order of tied scores; None = item index.
    """
    exclude = sp.csr_matrix(exclude)
    users = np.asarray(users, dtype=np.int64)
    n_items = exclude.shape[1]
    _check_tie_order(tie_order, n_items)
    chunk = chunk_users or auto_chunk_size(n_items)
    starts = range(0, len(users), chunk)
    out = np.full((len(users), min(k, n_items)), -1, dtype=np.int64)
    columns = _ranked_columns(candidates, tie_order, n_items)
    order = None if columns is None else torch.as_tensor(columns, device=device)
    for start in progress(starts) if progress else starts:
        block = users[start : start + chunk]
        with torch.inference_mode():
            scores = _score_block(score_fn, block, n_items, device)
            mask_rows_(scores, exclude[block])
            if order is None:
                top = topk_deterministic(scores, k)
            else:  # rank the candidates in tie order: position j holds item order[j]
                top = topk_deterministic(scores[:, order], k)
                top = torch.where(top >= 0, order[top.clamp(min=0)], top)
            out[start : start + len(block), : top.shape[1]] = top.cpu().numpy()
    return out


def _ranked_columns(
    candidates: np.ndarray | None, tie_order: np.ndarray | None, n_items: int
) -> np.ndarray | None:
    """The items to rank, in the order that breaks their ties (None: every item, by index).

    Only the candidates are ranked (cold items are ~5% of a catalogue: the top-k selection,
    which dominates ranking a large catalogue, runs on those columns alone).
    """
    if candidates is None:
        return None if tie_order is None else np.asarray(tie_order, dtype=np.int64)
    inside = np.asarray(candidates, dtype=bool)
    if inside.shape != (n_items,):
        raise ValueError(
            f"candidates must be a boolean mask of shape ({n_items},), got {inside.shape}"
        )
    if tie_order is None:
        return np.flatnonzero(inside)
    order = np.asarray(tie_order, dtype=np.int64)
    return order[inside[order]]


def _check_inputs(truth: sp.csr_matrix, exclude: sp.csr_matrix, ks: Sequence[int]) -> None:
    """Clear errors for mismatched matrices or bad cut-offs, before any scoring."""
    if truth.shape != exclude.shape:
        raise ValueError(
            f"truth has shape {truth.shape} but exclude has shape {exclude.shape}; both must be "
            "(n_users, n_items) over the same index space"
        )
    if not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be a non-empty list of positive cut-offs, got {list(ks)}")


def evaluate_ranking(
    score_fn: ScoreFn,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    ks: Sequence[int] = (10, 20, 50),
    chunk_users: int | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[[Iterable], Iterable] | None = None,
    tie_order: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Full-ranking metrics for every user with at least one held-out item.

    Args:
        score_fn: user indices -> (batch, n_items) scores.
        truth: (n_users, n_items) held-out interactions (validation or test).
        exclude: (n_users, n_items) items never to rank (train, plus validation for test).
        ks: cut-offs; K larger than the catalogue is allowed (ranks stop at n_items).
        tie_order: order of tied scores (a permutation of the items); None = item index.

    Returns:
        (evaluated user indices, {"recall@20": per-user values, ...}) aligned with each other,
        so callers can average, take std over seeds, or run paired tests over users.
        See :func:`rank_and_evaluate` for the conventions.
    """
    users, per_user, _ = rank_and_evaluate(
        score_fn, truth, exclude, ks, chunk_users, device, progress, tie_order=tie_order
    )
    return users, per_user


def held_out_truth(
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    ks: Sequence[int],
    candidates: np.ndarray | None = None,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(truth, exclude) as a ranking counts them: checked, duplicates summed, the held-out pairs
    that are also excluded dropped with a warning, and the truth restricted to ``candidates``."""
    truth = sp.csr_matrix(truth, dtype=np.float32)
    exclude = sp.csr_matrix(exclude, dtype=np.float32)
    _check_inputs(truth, exclude, ks)
    for matrix in (truth, exclude):
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
    overlap = truth.multiply(exclude).tocsr()
    overlap.eliminate_zeros()
    if overlap.nnz:
        logger.warning(
            "%d held-out (user, item) pairs are also in the excluded set; dropping them from the "
            "ground truth (they could never be recommended)",
            overlap.nnz,
        )
        truth = (truth - truth.multiply(overlap > 0)).tocsr()
        truth.eliminate_zeros()
    if candidates is not None:
        truth = (truth @ sp.diags(np.asarray(candidates, dtype=np.float32))).tocsr()
        truth.eliminate_zeros()
    return truth, exclude


def rank_and_evaluate(
    score_fn: ScoreFn,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    ks: Sequence[int] = (10, 20, 50),
    chunk_users: int | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[[Iterable], Iterable] | None = None,
    candidates: np.ndarray | None = None,
    tie_order: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Full-ranking metrics for every user with at least one held-out item, and the lists.

    Args:
        score_fn: user indices -> (batch, n_items) scores.
        truth: (n_users, n_items) held-out interactions (validation or test).
        exclude: (n_users, n_items) items never to rank (train, plus validation for test).
        ks: cut-offs; K larger than the catalogue is allowed (ranks stop at n_items).
        candidates: optional bool (n_items,) mask restricting the ranked items for everyone
            (cold-start slice: only cold items compete). Held-out items outside it are not
            counted as relevant.
        tie_order: order of tied scores (a permutation of the items, see
            :func:`tie_break_order`); None = item index.

    A held-out item that is also excluded could never be recommended; such pairs (duplicates
    across splits, which ingest should not produce) are dropped from ``truth`` with a warning
    so they do not silently cap recall.

    Returns:
        (evaluated user indices, {"recall@20": per-user values, ...}, ranked item lists of shape
        (n_evaluated, min(K_max, n_items)) with -1 where no item was left), aligned row by row,
        so callers can average, take std over seeds, run paired tests over users, or compute
        beyond-accuracy measures from the same single ranking pass.
    """
    truth, exclude = held_out_truth(truth, exclude, ks, candidates)
    ks = sorted({int(k) for k in ks})
    n_relevant = np.diff(truth.indptr)
    users = np.flatnonzero(n_relevant > 0)
    k_max = max(ks)
    ranked = rank_all_items(
        score_fn, users, exclude, k_max, chunk_users, device, progress, candidates, tie_order
    )
    hits = hit_matrix(ranked, users, truth, k_max)
    return users, metrics_from_hits(hits, n_relevant[users], ks), ranked


def hit_matrix(
    ranked: np.ndarray, users: np.ndarray, truth: sp.csr_matrix, k_max: int
) -> np.ndarray:
    """(len(users), k_max) bool: is the item at each rank one of the user's held-out items.

    Ranks past the catalogue (K > n_items) or holding ``-1`` (no item left) are misses.
    """
    hits = np.zeros((len(users), k_max), dtype=bool)
    if ranked.size:
        rows = np.repeat(users, ranked.shape[1])
        looked_up = np.asarray(truth[rows, np.maximum(ranked.ravel(), 0)]).reshape(ranked.shape)
        hits[:, : ranked.shape[1]] = (looked_up > 0) & (ranked >= 0)
    return hits


def mean_metrics(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    """Average per-user metrics (0.0 when no user was evaluated)."""
    return {name: float(values.mean()) if len(values) else 0.0 for name, values in per_user.items()}
