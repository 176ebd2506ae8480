"""Ranking losses over one positive and a set of negatives per example.

All losses take scores, not embeddings: ``pos`` (b,) and ``neg`` (b, m) with a boolean ``valid``
(b, m) telling which negatives count (in-batch negatives that are the example's own positive
are masked out). Every loss is registered by name in ``LOSSES`` with the signature
``(pos, neg, valid, temperature=...)`` (losses that ignore the temperature accept it). Every
example must keep at least one valid negative for BPR/BCE to be defined; rows without one
contribute only their positive term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from crossrec.models.registries import LOSSES


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over the valid negatives of each row (0 where a row has none)."""
    weights = valid.to(values.dtype)
    return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


@LOSSES.register("bpr")
def bpr_loss(
    pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Bayesian personalised ranking: -log sigmoid(pos - neg), averaged over negatives."""
    pairwise = -F.logsigmoid(pos.unsqueeze(1) - neg)
    return _masked_mean(pairwise, valid).mean()


@LOSSES.register("bce")
def bce_loss(
    pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Binary cross-entropy: positives towards 1, negatives (averaged) towards 0."""
    pos_term = -F.logsigmoid(pos)
    neg_term = _masked_mean(-F.logsigmoid(-neg), valid)
    return (pos_term + neg_term).mean()


@LOSSES.register("softmax")
def softmax_loss(
    pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Sampled softmax / InfoNCE: cross-entropy of the positive among its negatives."""
    logits = torch.cat([pos.unsqueeze(1), neg], dim=1) / temperature
    keep = torch.cat([torch.ones_like(valid[:, :1]), valid], dim=1)
    logits = logits.masked_fill(~keep, torch.finfo(logits.dtype).min)
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def ranking_loss(
    kind: str, pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """The loss registered as ``kind`` (:data:`crossrec.models.registries.LOSSES`)."""
    return LOSSES.get(kind)(pos, neg, valid, temperature=temperature)
