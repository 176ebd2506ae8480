"""User tower pieces: the history matrix and the history encoders (mean, attention, transformer)."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from crossrec.models.registries import USER_TOWERS


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
    """Base of the user towers: encodes a user from the embeddings of their recent items.

    ``forward(item_table, history)`` takes the (n_items + 1, d) item table whose last row is the
    padding (zeros) and the (b, L) history indices; returns (b, d). Subclasses are registered in
    :data:`crossrec.models.registries.USER_TOWERS` and built as ``cls(dim, length, heads, layers,
    dropout)``.
    """

    def __init__(
        self, dim: int, length: int, heads: int = 2, layers: int = 1, dropout: float = 0.0
    ):
        super().__init__()

    @staticmethod
    def _weights(item_table: torch.Tensor, history: torch.Tensor):
        pad = item_table.shape[0] - 1
        valid = history != pad
        return valid, item_table[history], valid.to(item_table.dtype)

    @staticmethod
    def _masked_mean(tokens: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return (tokens * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True).clamp_min(1)


@USER_TOWERS.register("mean")
class MeanHistory(HistoryEncoder):
    """Mean of the recent items' embeddings."""

    def forward(self, item_table: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        _, tokens, weights = self._weights(item_table, history)
        return self._masked_mean(tokens, weights)


@USER_TOWERS.register("attention")
class AttentionHistory(HistoryEncoder):
    """Additive attention over position-aware item embeddings."""

    def __init__(
        self, dim: int, length: int, heads: int = 2, layers: int = 1, dropout: float = 0.0
    ):
        super().__init__(dim, length)
        self.position = nn.Parameter(torch.randn(length, dim) * 0.02)
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1))

    def forward(self, item_table: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        valid, tokens, weights = self._weights(item_table, history)
        tokens = tokens + self.position[: history.shape[1]]
        logits = self.score(tokens).squeeze(-1).masked_fill(~valid, -1e9)
        attn = torch.softmax(logits, dim=1) * weights
        return (attn.unsqueeze(-1) * tokens).sum(1)


@USER_TOWERS.register("transformer")
class TransformerHistory(HistoryEncoder):
    """A small transformer encoder over the history, mean-pooled over real items."""

    def __init__(
        self, dim: int, length: int, heads: int = 2, layers: int = 1, dropout: float = 0.0
    ):
        super().__init__(dim, length)
        self.position = nn.Parameter(torch.randn(length, dim) * 0.02)
        heads = math.gcd(dim, heads) or 1
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, item_table: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        valid, tokens, weights = self._weights(item_table, history)
        tokens = tokens + self.position[: history.shape[1]]
        # empty histories get one unmasked (zero-weighted) slot to avoid NaN
        key_padding = ~valid
        key_padding[:, 0] = key_padding[:, 0] & valid.any(dim=1)
        encoded = self.encoder(tokens, src_key_padding_mask=key_padding)
        return self._masked_mean(encoded, weights)


def build_user_tower(
    kind: str, dim: int, length: int, heads: int = 2, layers: int = 1, dropout: float = 0.0
) -> HistoryEncoder:
    """The user tower registered as ``kind``."""
    return USER_TOWERS.get(kind)(dim, length, heads, layers, dropout)
