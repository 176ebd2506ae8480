"""User tower: history order (most recent first) and every encoder kind."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from crossrec.models.towers import build_user_tower, history_matrix


def test_history_most_recent_first_and_padded():
    train = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 0, 0, 0], [0, 1, 0, 1]], np.float32))
    recency = train.copy()
    recency.data = np.array([3, 1, 2, 5, 4], np.float32)  # user 0: item1 oldest, item0 newest
    hist = history_matrix(train, 2, recency)
    assert hist.tolist() == [[0, 2], [4, 4], [1, 3]]
    hist_no_time = history_matrix(train, 4)
    assert hist_no_time[0].tolist() == [2, 1, 0, 4]


def test_history_pattern_mismatch_is_an_error():
    train = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="sparsity pattern"):
        history_matrix(train, 2, sp.csr_matrix(np.ones((3, 3), np.float32)))


@pytest.mark.parametrize("kind", ["mean", "attention", "transformer"])
def test_encoders_shapes_empty_history_and_gradients(kind):
    torch.manual_seed(0)
    items = torch.randn(6, 8, requires_grad=True)
    table = torch.cat([items, torch.zeros(1, 8)])
    history = torch.tensor([[0, 1, 2], [3, 6, 6], [6, 6, 6]])  # 6 = padding
    encoder = build_user_tower(kind, 8, length=3, heads=2)
    out = encoder(table, history)
    assert out.shape == (3, 8)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[2], torch.zeros(8))  # no history -> nothing
    (out[:2] * torch.randn(2, 8)).sum().backward()  # (a plain sum is flat after LayerNorm)
    assert items.grad[:4].abs().sum() > 0 and items.grad[4:].abs().sum() == 0
    if kind == "mean":
        assert torch.allclose(out[1], items[3], atol=1e-6)
