"""Losses: known values, masking of invalid negatives, and gradient direction."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from crossrec.models.losses import bce_loss, bpr_loss, ranking_loss, softmax_loss


def test_bpr_equal_scores_is_log2():
    pos = torch.zeros(3)
    neg = torch.zeros(3, 4)
    assert bpr_loss(pos, neg, torch.ones(3, 4, dtype=torch.bool)).item() == pytest.approx(
        math.log(2)
    )


def test_bce_matches_manual_formula():
    pos = torch.tensor([2.0, -1.0])
    neg = torch.tensor([[0.5, -0.5], [1.0, 3.0]])
    valid = torch.ones_like(neg, dtype=torch.bool)
    expected = (-F.logsigmoid(pos) + (-F.logsigmoid(-neg)).mean(1)).mean()
    assert bce_loss(pos, neg, valid).item() == pytest.approx(expected.item())


def test_softmax_matches_cross_entropy_and_temperature():
    torch.manual_seed(0)
    pos, neg = torch.randn(5), torch.randn(5, 7)
    valid = torch.ones_like(neg, dtype=torch.bool)
    logits = torch.cat([pos[:, None], neg], 1) / 0.5
    expected = F.cross_entropy(logits, torch.zeros(5, dtype=torch.long))
    assert softmax_loss(pos, neg, valid, 0.5).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("kind", ["bpr", "bce", "softmax"])
def test_invalid_negatives_are_ignored(kind):
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([[0.0, 100.0], [0.5, -100.0]])
    valid = torch.tensor([[True, False], [True, False]])
    masked = ranking_loss(kind, pos, neg, valid, temperature=0.3)
    dropped = ranking_loss(kind, pos, neg[:, :1], valid[:, :1], temperature=0.3)
    assert masked.item() == pytest.approx(dropped.item(), rel=1e-5)


@pytest.mark.parametrize("kind", ["bpr", "bce", "softmax"])
def test_gradient_raises_positive_and_lowers_negatives(kind):
    pos = torch.zeros(4, requires_grad=True)
    neg = torch.zeros(4, 3, requires_grad=True)
    loss = ranking_loss(kind, pos, neg, torch.ones(4, 3, dtype=torch.bool), temperature=0.2)
    loss.backward()
    assert (pos.grad < 0).all()  # gradient descent increases positive scores
    assert (neg.grad > 0).all()  # and decreases negative ones


def test_unknown_loss_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown loss"):
        ranking_loss(
            "no_such_loss", torch.zeros(1), torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool)
        )
