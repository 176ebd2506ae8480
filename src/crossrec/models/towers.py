"""User tower pieces: the history matrix and the history encoders (mean, attention, transformer)."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


def history_matrix(
    train: sp.csr_matrix, length: int, recency: sp.csr_matrix | None = None
) -> np.ndarray:
    """(n_users, length) most recent train items per user, most recent first; pad = n_items.

    ``recency`` has the same pattern as ``train`` with larger values for later interactions;
    without it the order is the item index order (datasets without timestamps).
    """
    train = sp.csr_matrix(train)
    n_users, n_items = train.shape
    out = np.full((n_users, length), n_items, dtype=np.int64)
    order_source = sp.csr_matrix(recency) if recency is not None else None
    if order_source is not None:
        order_source.sort_indices()
        train = train.copy()
        train.sort_indices()
        if order_source.shape != train.shape or not np.array_equal(
            order_source.indices, train.indices
        ):
            raise ValueError("train_recency must have exactly the sparsity pattern of train")
    for user in range(n_users):
        start, end = train.indptr[user], train.indptr[user + 1]
        items = train.indices[start:end]
        if order_source is not None:
            keys = order_source.data[start:end]
            items = items[np.lexsort((items, keys))]
        recent = items[::-1][:length]
        out[user, : len(recent)] = recent
    return out


class HistoryEncoder(nn.Module):
    """Encodes a user from the embeddings of their recent items.

    ``forward(item_table, history)`` takes the (n_items + 1, d) item table whose last row is the
    padding (zeros) and the (b, L) history indices; returns (b, d).
    """

    def __init__(
        self,
        kind: str,
        dim: int,
        length: int,
        heads: int = 2,
        layers: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.kind = kind
        if kind in ("attention", "transformer"):
            self.position = nn.Parameter(torch.randn(length, dim) * 0.02)
        if kind == "attention":
            self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1))
        elif kind == "transformer":
            heads = math.gcd(dim, heads) or 1
            layer = nn.TransformerEncoderLayer(
                dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        elif kind != "mean":
            raise ValueError(f"unknown user tower kind {kind!r}")

    def forward(self, item_table: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        pad = item_table.shape[0] - 1
        valid = history != pad
        tokens = item_table[history]
        weights = valid.to(tokens.dtype)
        if self.kind == "mean":
            return (tokens * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True).clamp_min(
                1
            )
        tokens = tokens + self.position[: history.shape[1]]
        if self.kind == "attention":
            logits = self.score(tokens).squeeze(-1).masked_fill(~valid, -1e9)
            attn = torch.softmax(logits, dim=1) * weights
            return (attn.unsqueeze(-1) * tokens).sum(1)
        # transformer: empty histories get one unmasked (zero-weighted) slot to avoid NaN
        key_padding = ~valid
        key_padding[:, 0] = key_padding[:, 0] & valid.any(dim=1)
        encoded = self.encoder(tokens, src_key_padding_mask=key_padding)
        return (encoded * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True).clamp_min(1)
