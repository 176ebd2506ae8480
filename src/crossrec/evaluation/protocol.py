"""The evaluation protocol: split matrices, slices, one scorer over every slice, seed aggregation.

Slices (each a full ranking with the user's train items — and valid items for test — masked):

- ``valid``: validation items, train masked.
- ``test``: test items, train + valid masked.
- ``test_warm`` / ``test_cold``: only warm (resp. cold-start, ``items.is_cold``) items compete
  and count as relevant — the item cold-start protocol, so content models are judged on ranking
  new items, not on how an ID model buries them.
- ``users_<bucket>``: the ``test`` slice restricted to users bucketed by training-history length
  (quantiles from YAML), no re-ranking needed.

At large sizes (:func:`sample_slices`) each slice can evaluate a seeded sample of its users, the
same users for every model; :func:`aggregate_seeds` then adds a 95% confidence interval per metric.

Beyond-accuracy (``coverage@K``, ``novelty@K``, ``arp@K`` average recommendation popularity,
``ild@K`` intra-list diversity from content vectors) is computed on the same top-K lists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.data.matrices import split_matrices
from crossrec.metrics.beyond import (
    average_popularity,
    catalogue_coverage,
    intra_list_diversity,
    novelty,
)

if TYPE_CHECKING:  # ranking imports torch; the evaluate pipeline registry must not
    from crossrec.metrics.ranking import ScoreFn

logger = logging.getLogger(__name__)

#: a slice whose ranking takes longer is logged at INFO (the others at DEBUG)
SLOW_SLICE_S = 10.0


@dataclass
class EvalSplit:
    """Everything the protocol needs, built once from the ingest artifacts."""

    n_users: int
    n_items: int
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    is_cold: np.ndarray  # bool (n_items,)
    #: order of tied scores shared by every scorer (None = item index); see tie_break_order
    tie_order: np.ndarray | None = None
    #: users without train rows and their held-out rows (``SplitMatrices.cold_users``): left
    #: out of every slice above, evaluated apart (``crossrec.evaluation.cold_users``)
    cold_users: np.ndarray | None = None
    cold_valid: sp.csr_matrix | None = None
    cold_test: sp.csr_matrix | None = None
    popularity: np.ndarray = field(init=False)
    history_length: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.popularity = np.asarray(self.train.sum(axis=0)).ravel().astype(np.float64)
        self.history_length = np.diff(self.train.indptr)


def build_split(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    n_users: int,
    n_items: int,
    tie_break_seed: int | None = None,
) -> EvalSplit:
    """The split matrices (:func:`crossrec.data.matrices.split_matrices`) plus the tie order.

    ``tie_break_seed`` draws the random order in which every scorer's tied scores are ranked
    (None: by item index, which can leak whatever the ids encode).
    """
    from crossrec.metrics.ranking import tie_break_order

    matrices = split_matrices(interactions, items, n_users, n_items)
    tie_order = None if tie_break_seed is None else tie_break_order(n_items, tie_break_seed)
    return EvalSplit(
        n_users,
        n_items,
        matrices.train,
        matrices.valid,
        matrices.test,
        is_cold=matrices.is_cold,
        tie_order=tie_order,
        cold_users=matrices.cold_users,
        cold_valid=matrices.cold_valid,
        cold_test=matrices.cold_test,
    )


def require_held_out_rows(split: EvalSplit) -> None:
    """Refuse to evaluate on nothing: with no test rows every metric is a mean over zero users
    and the report would be a table of zeros that reads like a result."""
    cold = split.cold_test.nnz if split.cold_test is not None else 0
    if split.test.nnz + cold == 0:
        raise ValueError(
            f"nothing to evaluate: the split has {split.valid.nnz} valid and 0 test "
            f"interactions for {split.n_users} users (train {split.train.nnz}); expected test "
            "rows from ingest's split (check ingest.split and that users have at least "
            "split.min_user_interactions interactions), then rerun ingest"
        )


@dataclass
class Slice:
    name: str
    truth: sp.csr_matrix
    exclude: sp.csr_matrix
    candidates: np.ndarray | None = None
    #: every user the slice could evaluate, when ``truth`` holds a sample of them (None = not
    #: sampled: ``truth`` has every user's held-out items)
    eligible: np.ndarray | None = None


def eligible_users(piece: Slice) -> np.ndarray:
    """The users a slice evaluates: a held-out item among its candidates that is not excluded
    (what :func:`crossrec.metrics.ranking.rank_and_evaluate` keeps)."""
    truth = sp.csr_matrix(piece.truth, dtype=np.float32)
    truth.sum_duplicates()
    truth.eliminate_zeros()
    if piece.candidates is not None:
        truth = (truth @ sp.diags(np.asarray(piece.candidates, dtype=np.float32))).tocsr()
        truth.eliminate_zeros()
    excluded = truth.multiply(sp.csr_matrix(piece.exclude, dtype=np.float32) != 0).tocsr()
    excluded.eliminate_zeros()
    left = np.diff(truth.indptr) - np.diff(excluded.indptr)
    return np.flatnonzero(left > 0)


def sample_slices(
    slices: Sequence[Slice], n_users: int, size: int | None, seed: int
) -> list[Slice]:
    """Each slice restricted to a seeded sample of at most ``size`` of its users.

    One random order of all users is drawn from ``seed``; a slice keeps the first ``size`` of
    its eligible users in that order, so the sample depends on the split and the seed only
    (every model is scored on the same users) and the slices' samples overlap as much as their
    users do. ``size`` None returns the slices unchanged.
    """
    if size is None:
        return list(slices)
    priority = np.random.default_rng([seed, 11]).permutation(n_users)
    out = []
    for piece in slices:
        eligible = eligible_users(piece)
        chosen = eligible[np.argsort(priority[eligible], kind="stable")[:size]]
        keep = np.zeros(n_users, dtype=np.float32)
        keep[chosen] = 1.0
        truth = (sp.diags(keep) @ sp.csr_matrix(piece.truth)).tocsr()
        truth.eliminate_zeros()
        out.append(Slice(piece.name, truth, piece.exclude, piece.candidates, eligible))
    return out


def ranking_slices(split: EvalSplit, names: Sequence[str]) -> list[Slice]:
    """The slices that need their own ranking pass, in the order asked for."""
    seen = (split.train + split.valid).tocsr()
    available = {
        "valid": lambda: Slice("valid", split.valid, split.train),
        "test": lambda: Slice("test", split.test, seen),
        "test_warm": lambda: Slice("test_warm", split.test, seen, ~split.is_cold),
        "test_cold": lambda: Slice("test_cold", split.test, seen, split.is_cold.copy()),
    }
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown slices {unknown}; expected some of {sorted(available)}")
    slices = []
    for name in names:
        if name in ("test_cold", "test_warm") and not split.is_cold.any():
            continue  # no cold-start holdout: said once by the runner's prepare_split
        slices.append(available[name]())
    return slices


def history_buckets(
    history_length: np.ndarray, quantiles: Sequence[float]
) -> dict[str, np.ndarray]:
    """Users bucketed by training-history length at the given quantiles (of users with history).

    Two quantiles give ``users_short`` / ``users_medium`` / ``users_long``; one gives
    ``users_short`` / ``users_long``; more give ``users_q0`` ... Returns bucket -> bool mask.
    """
    active = history_length[history_length > 0]
    cuts = np.quantile(active, sorted(quantiles)) if len(active) else np.zeros(len(quantiles))
    n = len(cuts) + 1
    names = {2: ["short", "long"], 3: ["short", "medium", "long"]}.get(n) or [
        f"q{i}" for i in range(n)
    ]
    bucket = np.searchsorted(cuts, history_length, side="left")  # length <= cut -> lower bucket
    return {f"users_{name}": bucket == i for i, name in enumerate(names)}


def evaluate_scorer(
    score_fn: ScoreFn,
    split: EvalSplit,
    slices: Sequence[Slice],
    ks: Sequence[int],
    beyond_k: int,
    content: np.ndarray | None,
    user_buckets: dict[str, np.ndarray] | None = None,
    device: str = "cpu",
    chunk_users: int | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
    popularity_buckets: int = 0,
) -> dict[str, dict]:
    """Per-user metrics of one scorer on every slice: ``slice -> {"users", "metrics", "scalars"}``.

    ``metrics`` maps metric name -> per-user array aligned with ``users``; ``scalars`` holds the
    slice-level numbers (``coverage@K``). With ``popularity_buckets`` > 1 each slice also has
    ``popularity``: held-out pairs and hits at ``beyond_k`` per item-popularity bucket
    (:mod:`crossrec.evaluation.popularity`).
    """
    from crossrec.metrics.ranking import rank_and_evaluate
    from crossrec.models.content_mix import bound

    out: dict[str, dict] = {}
    for piece in slices:
        start = time.perf_counter()
        users, per_user, ranked = rank_and_evaluate(
            bound(score_fn, piece.exclude, piece.candidates),
            piece.truth,
            piece.exclude,
            ks,
            chunk_users,
            device,
            progress,
            candidates=piece.candidates,
            tie_order=split.tie_order,
        )
        seconds = time.perf_counter() - start
        logger.log(  # a large catalogue's slice takes minutes: say so, stay quiet otherwise
            logging.INFO if seconds >= SLOW_SLICE_S else logging.DEBUG,
            "%s: %s users ranked over %s items in %.1f s",
            piece.name,
            f"{len(users):,}",
            f"{split.n_items if piece.candidates is None else int(piece.candidates.sum()):,}",
            seconds,
        )
        per_user = dict(per_user)
        per_user[f"novelty@{beyond_k}"] = novelty(ranked, split.popularity, split.n_users, beyond_k)
        per_user[f"arp@{beyond_k}"] = average_popularity(ranked, split.popularity, beyond_k)
        if content is not None:
            per_user[f"ild@{beyond_k}"] = intra_list_diversity(ranked, content, beyond_k)
        scalars = {f"coverage@{beyond_k}": catalogue_coverage(ranked, split.n_items, beyond_k)}
        out[piece.name] = {"users": users, "metrics": per_user, "scalars": scalars}
        if piece.eligible is not None:
            out[piece.name]["population"] = len(piece.eligible)
        if popularity_buckets > 1:
            from crossrec.evaluation.popularity import popularity_hits

            out[piece.name]["popularity"] = popularity_hits(
                ranked,
                users,
                piece.truth,
                piece.candidates,
                split.popularity,
                beyond_k,
                popularity_buckets,
            )
    if user_buckets and "test" in out:
        test = out["test"]
        eligible = next((s.eligible for s in slices if s.name == "test"), None)
        for name, mask in user_buckets.items():
            keep = mask[test["users"]]
            out[name] = {
                "users": test["users"][keep],
                "metrics": {m: v[keep] for m, v in test["metrics"].items()},
                "scalars": {},
            }
            if eligible is not None:
                out[name]["population"] = int(mask[eligible].sum())
    return out


#: two-sided 95% quantile of the standard normal
Z95 = 1.959963984540054


def sample_interval(values: np.ndarray, population: int) -> dict:
    """95% confidence interval of the mean over all ``population`` users from the per-user
    ``values`` of a simple random sample of them: normal approximation with the
    finite-population correction (a sample of every user gives the exact mean)."""
    n = len(values)
    mean = float(values.mean()) if n else 0.0
    half = 0.0
    if 1 < n < population:
        correction = np.sqrt((population - n) / (population - 1))
        half = Z95 * float(values.std(ddof=1)) / np.sqrt(n) * float(correction)
    return {"ci95": [mean - half, mean + half], "users": n, "population": int(population)}


def aggregate_seeds(runs: Sequence[dict[str, dict]]) -> dict[str, dict[str, dict[str, float]]]:
    """``slice -> metric -> {mean, std}`` over seeds (std = sample std of per-seed means, 0 for
    one seed). Per-seed value = mean over the slice's users. A sampled slice (its results carry
    ``population``) adds ``ci95``, ``users`` and ``population`` to each per-user metric
    (:func:`sample_interval` over the per-user values averaged over seeds)."""
    if not runs:
        return {}
    table: dict[str, dict[str, dict[str, float]]] = {}
    for slice_name in runs[0]:
        per_metric: dict[str, list[float]] = {}
        for run in runs:
            entry = run[slice_name]
            for metric, values in entry["metrics"].items():
                per_metric.setdefault(metric, []).append(
                    float(values.mean()) if len(values) else 0.0
                )
            for metric, value in entry["scalars"].items():
                per_metric.setdefault(metric, []).append(float(value))
        table[slice_name] = {
            metric: {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            }
            for metric, values in per_metric.items()
        }
        population = runs[0][slice_name].get("population")
        if population is not None:
            for metric in runs[0][slice_name]["metrics"]:
                _, values = per_user_seed_mean(runs, slice_name, metric)
                table[slice_name][metric].update(sample_interval(values, population))
    return table


def per_user_seed_mean(
    runs: Sequence[dict[str, dict]], slice_name: str, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """(users, per-user value averaged over seeds) — the input of paired tests."""
    users = runs[0][slice_name]["users"]
    for run in runs[1:]:
        if not np.array_equal(run[slice_name]["users"], users):
            raise ValueError(f"slice {slice_name!r}: evaluated users differ between seeds")
    values = np.mean([run[slice_name]["metrics"][metric] for run in runs], axis=0)
    return users, values
