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

A score mix weighs tail against head item by item, and a tail item the content model ranks
first still loses to the head items a user's history makes likely. ``slots`` hands a fixed
number of each list's first ``k`` places to the content model's best tail items instead
(:class:`SlottedScorer`, a re-rank of the list: no longer one dot product), and ``choose:
targets`` picks the point that keeps the most of the tail while losing at most ``margin``
overall and ``head_loss`` on the head against the twin (docs/content-gate.md).
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
    """One point of the grid: the twin's weight curve, the scale ratio ``a / b`` and how many
    of the first ``k`` places go to the content model's best tail items (:class:`SlottedScorer`)."""

    tau: float
    slope: float
    scale: float
    slots: int = 0

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
    """Every (tau, slope, scale, slots) of the config's grid, then the content model alone
    (``tau = inf``), without the points that give the same scores (at ``tau = 0`` the slope
    does not matter)."""
    seen, out = set(), []
    for slots in config.slots:
        for tau, slope, scale in itertools.product(config.taus, config.slopes, config.scales):
            point = (float(tau), 1.0 if tau == 0 else float(slope), float(scale), int(slots))
            if point not in seen:
                seen.add(point)
                out.append(MixChoice(*point))
    return [*out, MixChoice(math.inf, 1.0, 1.0)]


def popular_items(degree: np.ndarray, share: float, most: bool) -> np.ndarray:
    """(n_items,) bool: the warm items holding the least (``most``: the most) popular
    ``share`` of the train interactions, every item tied with the last one included."""
    deg = np.asarray(degree, dtype=np.float64)
    warm = np.flatnonzero(deg > 0)
    out = np.zeros(len(deg), dtype=bool)
    if len(warm) == 0:
        return out
    ordered = np.sort(deg[warm])[::-1] if most else np.sort(deg[warm])
    cut = ordered[min(np.searchsorted(np.cumsum(ordered) / ordered.sum(), share), len(ordered) - 1)]
    out[warm] = deg[warm] >= cut if most else deg[warm] <= cut
    return out


def slotted_scores(
    base: torch.Tensor,
    content: torch.Tensor,
    tail: torch.Tensor,
    head: torch.Tensor,
    slots: int,
    k: int,
) -> torch.Tensor:
    """``base``'s scores reordered so that each row's first ``k`` are its own top ``k`` with its
    last ``slots`` places not holding a ``head`` item (the last places, when there are too few
    such) handed to the ``tail`` items ``content`` scores best that the list does not hold,
    in that order. Below the first ``k`` the base order continues (the displaced items first).
    ``-inf`` (excluded) stays ``-inf`` in both."""
    from crossrec.metrics.ranking import topk_deterministic

    k = min(k, base.shape[1])
    listed = topk_deterministic(base, k)
    held = torch.zeros_like(base, dtype=torch.bool)
    rows, places = (listed >= 0).nonzero(as_tuple=True)
    held[rows, listed[rows, places]] = True
    open_tail = tail.unsqueeze(0) & ~held & ~torch.isneginf(base)
    picks = topk_deterministic(content.masked_fill(~open_tail, -torch.inf), slots)
    out, is_head = base.clone(), head.cpu().numpy()
    for row in range(base.shape[0]):
        items = [int(i) for i in listed[row] if i >= 0]
        new = [int(i) for i in picks[row] if i >= 0]
        if not new:
            continue
        final = slotted_list(items, new, is_head)
        top = out[row, items[0]].item()
        out[row, final] = top + torch.arange(len(final), 0, -1, dtype=out.dtype)
    return out


def slotted_list(items: list[int], new: list[int], is_head: np.ndarray) -> list[int]:
    """``items`` (a list's first k) with its last ``len(new)`` places not holding a head item
    (head items' places only when no other is left) given to ``new``, appended in order."""
    places = sorted(range(len(items)), key=lambda p: (bool(is_head[items[p]]), -p))
    dropped = set(places[: len(new)])
    return [item for p, item in enumerate(items) if p not in dropped] + list(new)


class SlottedScorer:
    """A mix whose lists give ``slots`` of their first ``k`` places to the content model's best
    tail items (:func:`slotted_scores`): rarely seen items the content model ranks well get a
    fixed share of every list, and the most popular items keep their places.

    The places depend on what is excluded, so the scorer is bound to a slice's exclusions and
    candidates (:meth:`for_slice`) before it scores."""

    def __init__(self, mixed: MixedScorer, content: MixedScorer, tail, head, slots, k):
        self.mixed, self.content, self.slots, self.k = mixed, content, slots, k
        self.tail, self.head = torch.as_tensor(tail), torch.as_tensor(head)
        self.exclude: sp.csr_matrix | None = None
        self.candidates: np.ndarray | None = None

    def for_slice(
        self, exclude: sp.csr_matrix, candidates: np.ndarray | None = None
    ) -> SlottedScorer:
        bound = SlottedScorer(self.mixed, self.content, self.tail, self.head, self.slots, self.k)
        bound.exclude, bound.candidates = sp.csr_matrix(exclude), candidates
        return bound

    def score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        from crossrec.metrics.ranking import csr_rows_to_mask

        if self.exclude is None:
            raise RuntimeError("SlottedScorer.for_slice(exclude, candidates) first")
        base = self.mixed.score_users(user_idx)
        content = self.content.score_users(user_idx)
        blocked = csr_rows_to_mask(self.exclude[np.asarray(user_idx)])
        if self.candidates is not None:
            blocked |= ~torch.as_tensor(self.candidates, dtype=torch.bool).unsqueeze(0)
        base = base.masked_fill(blocked, -torch.inf)
        content = content.masked_fill(blocked, -torch.inf)
        return slotted_scores(base, content, self.tail, self.head, self.slots, self.k)

    def __call__(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.score_users(user_idx)


def mix_scorer(
    twin: Vectors, content: Vectors, degree: np.ndarray, choice: MixChoice, config: ContentMixConfig
):
    """The scorer of one grid point: the mix (:class:`MixedScorer`), with tail slots when the
    point has any (:class:`SlottedScorer`, to be bound to a slice)."""
    mixed = MixedScorer(*mixed_vectors(twin, content, degree, choice, config.standardise))
    if choice.slots == 0:
        return mixed
    content_scorer = MixedScorer(*standardised(*content, config.standardise))
    tail = popular_items(degree, config.tail_share, most=False)
    head = popular_items(degree, config.head_share, most=True)
    return SlottedScorer(mixed, content_scorer, tail, head, choice.slots, config.k)


def bound(scorer, exclude: sp.csr_matrix, candidates: np.ndarray | None = None):
    """``scorer`` ready for a slice: slotted scorers bound to its exclusions and candidates."""
    return scorer.for_slice(exclude, candidates) if hasattr(scorer, "for_slice") else scorer


def split_validation_users(
    valid: sp.csr_matrix, share: float, seed: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(stopping rows, choice rows) of the validation pairs: a seeded ``share`` of the users
    with validation pairs for the mix's choice, the others for the models' early stopping. A
    choice made on the pairs the models stopped on favours whichever model those pairs flatter."""
    valid = sp.csr_matrix(valid)
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    rng = np.random.default_rng([seed, 29])
    chosen = rng.choice(users, size=int(round(share * len(users))), replace=False)
    mask = np.zeros(valid.shape[0], dtype=np.float32)
    mask[chosen] = 1.0
    choice = sp.csr_matrix(sp.diags(mask) @ valid)
    stop = sp.csr_matrix(sp.diags(1.0 - mask) @ valid)
    choice.eliminate_zeros()
    stop.eliminate_zeros()
    return stop, choice


class MixPoint(NamedTuple):
    """One grid point's validation values: overall, on the tail pairs and on the head pairs
    (None when the choice does not need them)."""

    choice: MixChoice
    value: float
    tail: float | None = None
    head: float | None = None


def tail_pairs(truth: sp.csr_matrix, degree: np.ndarray, share: float) -> sp.csr_matrix:
    """The held-out pairs of the least popular items: the ``share`` of ``truth``'s pairs whose
    items have the fewest train interactions (every pair tied with the last one kept)."""
    return _pairs_by_degree(truth, np.asarray(degree, dtype=np.float64), share)


def head_pairs(truth: sp.csr_matrix, degree: np.ndarray, share: float) -> sp.csr_matrix:
    """The held-out pairs of the most popular items (``share`` of them, ties kept)."""
    return _pairs_by_degree(truth, -np.asarray(degree, dtype=np.float64), share)


def _pairs_by_degree(truth: sp.csr_matrix, degree: np.ndarray, share: float) -> sp.csr_matrix:
    truth = sp.csr_matrix(truth)
    pair_degree = degree[truth.indices]
    if pair_degree.size == 0:
        return truth
    cut = np.sort(pair_degree)[max(math.ceil(share * pair_degree.size) - 1, 0)]
    kept = truth.copy()
    kept.data = np.where(pair_degree <= cut, kept.data, 0)
    kept.eliminate_zeros()
    return kept


def validation_values(
    scorer,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    metric: str,
    k: int,
    subsets: list[sp.csr_matrix] = (),
    tie_order: np.ndarray | None = None,
) -> list[float]:
    """Mean ``metric@k`` over the users with held-out items in ``truth`` (full ranking), then
    over the users with pairs in each of ``subsets`` (parts of ``truth``), from one ranking."""
    from crossrec.metrics.ranking import rank_and_evaluate

    scorer = bound(scorer, exclude)
    users, per_user, ranked = rank_and_evaluate(scorer, truth, exclude, [k], tie_order=tie_order)
    values = [float(np.mean(per_user[f"{metric}@{k}"]))]
    for subset in subsets:
        total, counted = metric_sum(ranked, users, sp.csr_matrix(subset), metric, k)
        values.append(total / counted if counted else 0.0)
    return values


def metric_sum(
    ranked: np.ndarray, users: np.ndarray, part: sp.csr_matrix, metric: str, k: int
) -> tuple[float, int]:
    """The sum of ``metric@k`` of the lists ``ranked`` (row i: user ``users[i]``) against the
    pairs of ``part``, over the users with pairs in it, and how many users that is."""
    from crossrec.metrics.ranking import hit_matrix, metrics_from_hits

    counts = np.diff(part.indptr)[users]
    rows = np.flatnonzero(counts > 0)
    if not len(rows):
        return 0.0, 0
    hits = hit_matrix(ranked[rows, :k].astype(np.int64), users[rows], part, k)
    return float(metrics_from_hits(hits, counts[rows], [k])[f"{metric}@{k}"].sum()), len(rows)


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

    ``choose: overall``: the best validation ``metric@k`` (the first of equals); with a
    ``tolerance`` above 0, every point within it (relative) of the best is as good, and among
    those the best on the least popular ``tail_share`` of the validation pairs wins.
    ``choose: targets``: the points that lose at most ``margin`` (relative) overall and
    ``head_loss`` on the most popular ``head_share`` of the pairs against the twin (``tau 0``,
    no slots) are allowed, and the best of them on the tail wins: the head-heavy overall metric
    alone sends the mix to the twin and gives the tail's content gain away.

    Every point is ranked in one pass over the users
    (:func:`~crossrec.models.mix_grid.grid_values`).
    """
    from crossrec.models.mix_grid import grid_values

    points_grid = grid(config)
    tail = tail_pairs(valid_truth, degree, config.tail_share)
    head = head_pairs(valid_truth, degree, config.head_share)
    subsets = [tail, head] if config.choose == "targets" else [tail] if config.tolerance else []
    values = grid_values(
        twin, content, degree, points_grid, config, valid_truth, valid_exclude, subsets, tie_order
    )
    points = [MixPoint(choice, v[0], *v[1:]) for choice, v in zip(points_grid, values, strict=True)]
    if config.choose == "targets":
        twin_point = next(p for p in points if p.choice.tau == 0 and p.choice.slots == 0)
        allowed = [
            i
            for i, p in enumerate(points)
            if p.value >= twin_point.value * (1 - config.margin)
            and p.head >= twin_point.head * (1 - config.head_loss)
        ]
        chosen = max(allowed, key=lambda i: (points[i].tail, points[i].value, -i))
        return points[chosen].choice, points
    best = max(range(len(points)), key=lambda i: (points[i].value, -i))
    if config.tolerance == 0:
        return points[best].choice, [MixPoint(p.choice, p.value, None) for p in points]
    floor = points[best].value * (1.0 - config.tolerance)
    points = [MixPoint(p.choice, p.value, p.tail if p.value >= floor else None) for p in points]
    chosen = max(
        (i for i, p in enumerate(points) if p.tail is not None),
        key=lambda i: (points[i].tail, points[i].value, -i),
    )
    return points[chosen].choice, points
