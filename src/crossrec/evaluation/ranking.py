"""Full-ranking top-K retrieval and the field's ranking metrics, chunked over users.

Protocol (MMRec / RecBole "full" mode): every user is scored against ALL items; items the user
interacted with in training (and in validation, when scoring test) are masked so they can never
be recommended; Recall@K = hits / |user's held-out items|. Users without held-out items are left
out of the averages.

Memory bound: scoring works on ``chunk_users`` users at a time and allocates about
``24 * chunk_users * n_items`` bytes (scores, masks and tie bookkeeping). ``auto_chunk_size``
picks the chunk from a byte budget (default 256 MiB), so a 1M-item catalogue is scored ~10 users
at a time and a 2k-item catalogue ~5k users at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

METRIC_NAMES = ("recall", "ndcg", "precision", "mrr", "hit", "map")

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
"""Maps a 1-D tensor of user indices to a (len(users), n_items) score tensor."""


def auto_chunk_size(n_items: int, budget_bytes: int = 256 * 2**20) -> int:
    """Users per chunk so that one chunk's working memory stays under ``budget_bytes``."""
    return max(1, int(budget_bytes // (24 * max(n_items, 1))))


def topk_deterministic(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k item indices per row, ties broken by the lower item index.

    ``torch.topk`` leaves the order of tied scores unspecified; recommendation lists and metrics
    must not depend on it, so the k-th score's ties are filled in index order and the chosen
    items are then ordered by (score desc, index asc). Rows whose scores are ``-inf`` past some
    position (masked items) get ``-1`` there: a masked item is never returned.
    """
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    if k == 0 or n_rows == 0:
        return torch.empty((n_rows, 0), dtype=torch.long, device=scores.device)
    kth = torch.topk(scores, k, dim=1).values[:, -1:]
    above = scores > kth
    ties = scores == kth
    slots_left = k - above.sum(dim=1, keepdim=True)
    chosen = above | (ties & (torch.cumsum(ties, dim=1) <= slots_left))
    items = chosen.nonzero(as_tuple=False)[:, 1].view(n_rows, k)  # ascending index per row
    order = torch.sort(torch.gather(scores, 1, items), dim=1, descending=True, stable=True).indices
    ranked = torch.gather(items, 1, order)
    ranked_scores = torch.gather(scores, 1, ranked)
    return torch.where(torch.isneginf(ranked_scores), torch.full_like(ranked, -1), ranked)


def csr_rows_to_mask(rows: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """Dense boolean mask of a block of CSR rows (one chunk of users)."""
    coo = rows.tocoo()
    mask = torch.zeros(rows.shape, dtype=torch.bool, device=device)
    if coo.nnz:
        mask[torch.as_tensor(coo.row, device=device), torch.as_tensor(coo.col, device=device)] = True
    return mask


def metrics_from_hits(
    hits: np.ndarray, n_relevant: np.ndarray, ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per-user metrics from a (n_users, K_max) 0/1 hit matrix in rank order.

    ``n_relevant`` is each user's number of held-out items (all > 0).
    """
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


def rank_all_items(
    score_fn: ScoreFn,
    users: np.ndarray,
    exclude: sp.csr_matrix,
    k: int,
    chunk_users: int | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[[Iterable], Iterable] | None = None,
) -> np.ndarray:
    """Top-``k`` items for each user in ``users`` with ``exclude`` rows masked (-1 = no item)."""
    n_items = exclude.shape[1]
    chunk = chunk_users or auto_chunk_size(n_items)
    starts = range(0, len(users), chunk)
    out = np.full((len(users), min(k, n_items)), -1, dtype=np.int64)
    for start in progress(starts) if progress else starts:
        block = users[start : start + chunk]
        with torch.inference_mode():
            scores = score_fn(torch.as_tensor(block, device=device)).float()
            scores = scores.masked_fill(csr_rows_to_mask(exclude[block], scores.device), -torch.inf)
            out[start : start + len(block)] = topk_deterministic(scores, k).cpu().numpy()
    return out


def evaluate_ranking(
    score_fn: ScoreFn,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    ks: Sequence[int] = (10, 20, 50),
    chunk_users: int | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[[Iterable], Iterable] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Full-ranking metrics for every user with at least one held-out item.

    Args:
        score_fn: user indices -> (batch, n_items) scores.
        truth: (n_users, n_items) held-out interactions (validation or test).
        exclude: (n_users, n_items) items never to rank (train, plus validation for test).
        ks: cut-offs; K larger than the catalogue is allowed (ranks stop at n_items).

    Returns:
        (evaluated user indices, {"recall@20": per-user values, ...}) aligned with each other,
        so callers can average, take std over seeds, or run paired tests over users.
    """
    truth = sp.csr_matrix(truth)
    exclude = sp.csr_matrix(exclude)
    n_relevant = np.diff(truth.indptr)
    users = np.flatnonzero(n_relevant > 0)
    k_max = max(ks)
    ranked = rank_all_items(score_fn, users, exclude, k_max, chunk_users, device, progress)
    hits = np.zeros((len(users), k_max), dtype=bool)
    if ranked.size:
        rows = np.repeat(users, ranked.shape[1])
        looked_up = np.asarray(truth[rows, np.maximum(ranked.ravel(), 0)]).reshape(ranked.shape)
        hits[:, : ranked.shape[1]] = (looked_up > 0) & (ranked >= 0)
    return users, metrics_from_hits(hits, n_relevant[users], ks)


def interactions_to_csr(
    user_idx: np.ndarray, item_idx: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """Binary (n_users, n_items) matrix of interactions (duplicates collapse to 1)."""
    data = np.ones(len(user_idx), dtype=np.float32)
    matrix = sp.csr_matrix((data, (user_idx, item_idx)), shape=(n_users, n_items))
    matrix.data[:] = 1.0
    return matrix


def mean_metrics(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    """Average per-user metrics (0.0 when no user was evaluated)."""
    return {name: float(values.mean()) if len(values) else 0.0 for name, values in per_user.items()}
