"""Top-K lists and similar items for the whole catalogue (the recommend pipeline), chunked over
users with the evaluation code's memory bound (``crossrec.metrics.ranking.rank_all_items``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from crossrec.metrics.ranking import rank_all_items
from crossrec.serving.index import top_k, unit_rows


def top_k_all_users(catalogue, k: int, chunk_users: int | None = None):
    """(scores, items) of shape (n_users, k): every user's best unseen items, exact."""
    users_vec, items_vec = catalogue.user_vectors, catalogue.item_vectors

    def score(users: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(users_vec[users.numpy()] @ items_vec.T)

    users = np.arange(catalogue.n_users)
    ranked = rank_all_items(score, users, catalogue.seen, k, chunk_users)
    scores = np.full(ranked.shape, -np.inf, dtype=np.float32)
    for start in range(0, len(users), 4096):
        block = ranked[start : start + 4096]
        rows = users_vec[start : start + 4096]
        gathered = np.einsum("ud,ukd->uk", rows, items_vec[np.maximum(block, 0)])
        scores[start : start + 4096] = np.where(block >= 0, gathered, -np.inf)
    return scores, ranked


def recommendations_table(catalogue, k: int, version: str, chunk_users: int | None = None):
    """One row per (user, rank): user_idx, user_id, rank (1-based), item_idx, item_id, score,
    model_version. Users with fewer than k unseen items get fewer rows."""
    scores, ranked = top_k_all_users(catalogue, k, chunk_users)
    users, ranks = np.nonzero(ranked >= 0)
    items = ranked[users, ranks]
    return pd.DataFrame(
        {
            "user_idx": users.astype(np.int64),
            "user_id": catalogue.user_ids[users].astype(str),
            "rank": (ranks + 1).astype(np.int64),
            "item_idx": items.astype(np.int64),
            "item_id": catalogue.item_ids[items].astype(str),
            "score": scores[users, ranks].astype(np.float32),
            "model_version": version,
        }
    )


def similar_items_table(catalogue, k: int, version: str) -> pd.DataFrame:
    """One row per (item, space, rank): space = "model" (cosine of the model's item vectors) or
    a modality name (cosine of its fused vectors)."""
    frames = []
    for space in [None, *sorted(catalogue.modality_vectors)]:
        if space is None:
            vectors = unit_rows(catalogue.similarity_vectors)
            mask = np.ones(catalogue.n_items, bool)
        else:
            vectors, mask = catalogue.modality_vectors[space]
        for start in range(0, catalogue.n_items, 2048):
            rows = np.arange(start, min(start + 2048, catalogue.n_items))
            rows = rows[mask[rows]]
            if not len(rows):
                continue
            scores = vectors[rows] @ vectors.T
            scores[np.arange(len(rows)), rows] = -np.inf
            scores[:, ~mask] = -np.inf

            values, items = top_k(scores, k)
            r, c = np.nonzero(items >= 0)
            frames.append(
                pd.DataFrame(
                    {
                        "item_idx": rows[r].astype(np.int64),
                        "space": space or "model",
                        "rank": (c + 1).astype(np.int64),
                        "similar_idx": items[r, c].astype(np.int64),
                        "score": values[r, c].astype(np.float32),
                    }
                )
            )
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(out):
        out.insert(1, "item_id", catalogue.item_ids[out["item_idx"]].astype(str))
        out["similar_id"] = catalogue.item_ids[out["similar_idx"]].astype(str)
    out["model_version"] = version
    return out
