"""The ID-only twin's and the content model's scores mixed by item popularity
(``model.content_mix``).

Two models are trained on the same data: the model with content and its twin without content
(no fusion, no modality item graph: what evaluate's trained ablation trains). A well-known item
is ranked by the twin's collaborative score, an item without train interactions by the content
model's alone, and the items in between by a mix that follows their train degree ``deg``:

    s(u, i) = a * g(deg_i) * z_twin(u, i) + b * (1 - g(deg_i)) * z_content(u, i)
    g(deg) = deg ** slope / (deg ** slope + tau ** slope),   g(0) = 0

``z`` is each model's score standardised per user (``standardise: user``: minus the user's mean
score over the catalogue, over the user's standard deviation of it), so the two models speak on
one scale; ``a / b`` is ``scale``. Centring is a shift of every item vector by the catalogue's
mean vector and the per-user standard deviation a scale of the user vector, so the mixed score
stays ONE dot product of concatenated vectors::

    user_u = [a * u_twin / sd_twin(u), b * u_content / sd_content(u)]
    item_i = [g_i * (v_twin_i - mean v_twin), (1 - g_i) * (v_content_i - mean v_content)]

and serving, faiss indexes and explanations work on the concatenation unchanged.
``tau``, ``slope`` and ``scale`` are chosen on the validation split from a small grid
(:func:`choose_mix`); ``tau = 0`` ranks every warm item by the twin, and the content model alone
(``tau = inf``) is always a candidate, so the choice can fall back on either model.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

from crossrec.models.config import ContentMixConfig

Vectors = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class MixChoice:
    """One point of the grid: the twin's weight curve and the scale ratio ``a / b``."""

    tau: float
    slope: float
    scale: float

    def as_dict(self) -> dict:
        return asdict(self)


def twin_weights(degree: np.ndarray, tau: float, slope: float) -> np.ndarray:
    """(n_items,) the twin's weight ``g``: ``deg ** s / (deg ** s + tau ** s)``, rising with the
    item's train degree; 0 for items without train interactions (cold: content only), 1 for
    every warm item at ``tau = 0``, 0 for every item at ``tau = inf``."""
    deg = np.asarray(degree, dtype=np.float64)
    weights = np.zeros_like(deg)
    warm = deg > 0
    if tau == 0:
        weights[warm] = 1.0
    elif math.isfinite(tau):
        weights[warm] = 1.0 / (1.0 + (tau / deg[warm]) ** slope)
    return weights.astype(np.float32)


def standardised(users: torch.Tensor, items: torch.Tensor, how: str) -> Vectors:
    """(users, items) whose dot products are the model's scores standardised: ``user``: per
    user (centred over the catalogue, unit standard deviation), ``global``: one shift and scale
    for the model, ``none``: the raw scores."""
    users, items = users.double(), items.double()
    if how == "none":
        return users.float(), items.float()
    centred = items - items.mean(dim=0, keepdim=True)
    covariance = centred.T @ centred / max(items.shape[0], 1)
    variance = torch.einsum("ud,de,ue->u", users, covariance, users).clamp(min=1e-24)
    if how == "user":
        users = users / variance.sqrt().unsqueeze(1)
    else:
        users = users / variance.mean().sqrt()
    return users.float(), centred.float()


def mixed_vectors(
    twin: Vectors, content: Vectors, degree: np.ndarray, choice: MixChoice, standardise: str
) -> Vectors:
    """(users, items) concatenated so that ``users @ items.T`` is the mixed score."""
    twin_users, twin_items = standardised(*twin, standardise)
    content_users, content_items = standardised(*content, standardise)
    g = torch.as_tensor(twin_weights(degree, choice.tau, choice.slope)).unsqueeze(1)
    users = torch.cat([choice.scale * twin_users, content_users], dim=1)
    items = torch.cat([g * twin_items, (1.0 - g) * content_items], dim=1)
    return users, items


class MixedScorer:
    """The mix as a scorer: ``score_users`` and ``scoring_vectors`` like a trained
    :class:`~crossrec.models.recommender.Recommender` (what serving and evaluation call)."""

    def __init__(self, users: torch.Tensor, items: torch.Tensor):
        self.users, self.items = users, items

    def score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.users[user_idx.to(self.users.device)] @ self.items.T

    def scoring_vectors(self) -> Vectors:
        return self.users, self.items

    def __call__(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.score_users(user_idx)


def grid(config: ContentMixConfig) -> list[MixChoice]:
    """Every (tau, slope, scale) of the config's grid, then the content model alone
    (``tau = inf``), without the points that give the same scores (at ``tau = 0`` the slope
    does not matter)."""
    seen, out = set(), []
    for tau, slope, scale in itertools.product(config.taus, config.slopes, config.scales):
        point = (float(tau), 1.0 if tau == 0 else float(slope), float(scale))
        if point not in seen:
            seen.add(point)
            out.append(MixChoice(*point))
    return [*out, MixChoice(math.inf, 1.0, 1.0)]


def validation_score(
    scorer: MixedScorer,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    metric: str,
    k: int,
    tie_order: np.ndarray | None = None,
) -> float:
    """Mean ``metric@k`` over the users with held-out items in ``truth`` (full ranking)."""
    from crossrec.metrics.ranking import rank_and_evaluate

    _, per_user, _ = rank_and_evaluate(scorer, truth, exclude, [k], tie_order=tie_order)
    return float(np.mean(per_user[f"{metric}@{k}"]))


class MixPoint(NamedTuple):
    """One grid point's validation values: overall, and on the tail pairs (None when the
    choice does not need them: ``tolerance`` 0)."""

    choice: MixChoice
    value: float
    tail: float | None


def tail_pairs(truth: sp.csr_matrix, degree: np.ndarray, share: float) -> sp.csr_matrix:
    """The held-out pairs of the least popular items: the ``share`` of ``truth``'s pairs whose
    items have the fewest train interactions (every pair tied with the last one kept)."""
    truth = sp.csr_matrix(truth)
    pair_degree = np.asarray(degree)[truth.indices]
    if pair_degree.size == 0:
        return truth
    cut = np.sort(pair_degree)[max(math.ceil(share * pair_degree.size) - 1, 0)]
    tail = truth.copy()
    tail.data = np.where(pair_degree <= cut, tail.data, 0)
    tail.eliminate_zeros()
    return tail


def choose_mix(
    twin: Vectors,
    content: Vectors,
    degree: np.ndarray,
    config: ContentMixConfig,
    valid_truth: sp.csr_matrix,
    valid_exclude: sp.csr_matrix,
    tie_order: np.ndarray | None = None,
) -> tuple[MixChoice, list[MixPoint]]:
    """The grid point to use, and every point's validation values. Reads only the validation
    pairs it is given (and the train degrees).

    ``tolerance`` 0: the best validation ``metric@k`` (the first of equals). Above 0, every
    point within ``tolerance`` (relative) of the best is as good overall, and among those the
    one best on the least popular ``tail_share`` of the validation pairs wins: the head-heavy
    overall metric alone sends the mix to the twin and gives the tail's content gain away.
    """

    def score(choice: MixChoice, truth: sp.csr_matrix) -> float:
        scorer = MixedScorer(*mixed_vectors(twin, content, degree, choice, config.standardise))
        return validation_score(scorer, truth, valid_exclude, config.metric, config.k, tie_order)

    values = [(choice, score(choice, valid_truth)) for choice in grid(config)]
    best = max(range(len(values)), key=lambda i: (values[i][1], -i))
    if config.tolerance == 0:
        return values[best][0], [MixPoint(c, v, None) for c, v in values]
    tail = tail_pairs(valid_truth, degree, config.tail_share)
    floor = values[best][1] * (1.0 - config.tolerance)
    points = [MixPoint(c, v, score(c, tail) if v >= floor else None) for c, v in values]
    chosen = max(
        (i for i, p in enumerate(points) if p.tail is not None),
        key=lambda i: (points[i].tail, points[i].value, -i),
    )
    return points[chosen].choice, points
