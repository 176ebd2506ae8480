"""Train / valid / test splits of indexed interactions; all seeded and deterministic.

Input frames carry ``user_idx, item_idx, timestamp`` (and ``published_split`` for the published
strategy). Each function returns an object array of 'train' / 'valid' / 'test' aligned to rows.
Row order of the input does not change the result: rows are first put in a canonical order.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from crossrec.data.errors import DataValidationError

logger = logging.getLogger(__name__)

TRAIN, VALID, TEST = "train", "valid", "test"
STRATEGIES = ("random", "leave_last_out", "temporal", "published")


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5).astype(np.int64)


def _labels_by_rank(
    user_sorted: np.ndarray,
    ratios: tuple[float, float, float],
    min_user: int,
    counts_fn=None,
) -> np.ndarray:
    """Given rows sorted by user then by position, label each row by its rank in its user."""
    n = len(user_sorted)
    labels = np.full(n, TRAIN, dtype=object)
    if n == 0:
        return labels
    starts = np.r_[0, np.flatnonzero(np.diff(user_sorted)) + 1]
    sizes = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, sizes)
    size = np.repeat(sizes, sizes)
    if counts_fn is None:
        n_valid = np.where(ratios[1] > 0, np.maximum(1, _round_half_up(size * ratios[1])), 0)
        n_test = np.where(ratios[2] > 0, np.maximum(1, _round_half_up(size * ratios[2])), 0)
    else:
        n_valid, n_test = counts_fn(size)
    eligible = size >= min_user
    n_train = size - n_valid - n_test
    labels[eligible & (rank >= n_train) & (rank < n_train + n_valid)] = VALID
    labels[eligible & (rank >= n_train + n_valid)] = TEST
    return labels


def random_split(
    frame: pd.DataFrame,
    ratios: tuple[float, float, float],
    min_user_interactions: int,
    seed: int,
) -> np.ndarray:
    """Per-user random split (MMRec protocol, 8:1:1 by default).

    Each eligible user gets max(1, round(n * ratio)) valid and test rows, the rest train; users
    with fewer than ``min_user_interactions`` rows stay train-only (they cannot give a train, a
    valid and a test item; they still shape the model through training).
    """
    rng = np.random.default_rng([seed, 0])
    canonical = np.lexsort((frame["item_idx"].to_numpy(), frame["user_idx"].to_numpy()))
    keys = np.empty(len(frame))
    keys[canonical] = rng.random(len(frame))
    order = np.lexsort((keys, frame["user_idx"].to_numpy()))
    labels = np.empty(len(frame), dtype=object)
    labels[order] = _labels_by_rank(
        frame["user_idx"].to_numpy()[order], ratios, min_user_interactions
    )
    return labels


def _require_timestamps(frame: pd.DataFrame, strategy: str) -> None:
    if (frame["timestamp"].to_numpy() < 0).any():
        raise DataValidationError(
            "interactions",
            f"split strategy {strategy!r} needs timestamps but the dataset has "
            "none (or some are -1)",
            expected="a timestamp column named in the adapter options (generic: "
            "timestamp_column), or split.strategy: random / published",
        )


def leave_last_out_split(frame: pd.DataFrame, min_user_interactions: int) -> np.ndarray:
    """Per user by time: the last interaction is test, the one before is valid.

    Ties in time are broken by ``item_idx`` so the result is deterministic. Users with fewer
    than ``min_user_interactions`` rows stay train-only.
    """
    _require_timestamps(frame, "leave_last_out")
    order = np.lexsort(
        (frame["item_idx"].to_numpy(), frame["timestamp"].to_numpy(), frame["user_idx"].to_numpy())
    )
    one = lambda size: (np.ones_like(size), np.ones_like(size))  # noqa: E731
    labels = np.empty(len(frame), dtype=object)
    labels[order] = _labels_by_rank(
        frame["user_idx"].to_numpy()[order],
        (0.8, 0.1, 0.1),
        max(min_user_interactions, 3),
        counts_fn=one,
    )
    return labels


def temporal_split(frame: pd.DataFrame, ratios: tuple[float, float, float]) -> np.ndarray:
    """Global time cut: the earliest share is train, then valid, then test.

    Realistic (no future leaks into training) but users first seen after the cut have no train
    rows; the data summary counts them.
    """
    _require_timestamps(frame, "temporal")
    order = np.lexsort(
        (frame["item_idx"].to_numpy(), frame["user_idx"].to_numpy(), frame["timestamp"].to_numpy())
    )
    n = len(frame)
    n_train = int(np.floor(ratios[0] * n + 0.5))
    n_valid = int(np.floor(ratios[1] * n + 0.5))
    sorted_labels = np.full(n, TEST, dtype=object)
    sorted_labels[:n_train] = TRAIN
    sorted_labels[n_train : n_train + n_valid] = VALID
    labels = np.empty(n, dtype=object)
    labels[order] = sorted_labels
    return labels


def published_split(frame: pd.DataFrame) -> np.ndarray:
    if "published_split" not in frame.columns:
        raise DataValidationError(
            "interactions",
            "split strategy 'published' but the dataset ships no split",
            expected="an adapter option naming the split column (generic and mmrec: split_column)",
        )
    return frame["published_split"].to_numpy(dtype=object)


def choose_share(ids: np.ndarray, share: float, seed: int, stream: int) -> np.ndarray:
    """A seeded ``share`` of the distinct ``ids`` (sorted); ``stream`` keeps the item and
    the user holdouts independent draws of one seed."""
    candidates = np.unique(ids)
    n_chosen = int(np.floor(share * len(candidates) + 0.5))
    if n_chosen == 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng([seed, stream])
    return np.sort(rng.choice(candidates, size=n_chosen, replace=False))


def choose_cold_items(item_idx: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A seeded ``share`` of the interacted items (sorted indices)."""
    return choose_share(item_idx, share, seed, stream=1)


def choose_cold_users(user_idx: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A seeded ``share`` of the users (sorted indices): their whole history is held out."""
    return choose_share(user_idx, share, seed, stream=3)


def cold_user_labels(users: np.ndarray, valid_fraction: float, seed: int) -> dict[int, str]:
    """Each cold user goes whole to valid (a seeded ``valid_fraction``) or to test."""
    draws = np.random.default_rng([seed, 4]).random(len(users))
    return {int(u): (VALID if d < valid_fraction else TEST) for u, d in zip(users, draws,
                                                                           strict=True)}


def assign_splits(
    frame: pd.DataFrame,
    strategy: str,
    *,
    ratios: tuple[float, float, float],
    min_user_interactions: int,
    cold_share: float,
    cold_valid_fraction: float,
    seed: int,
    cold_user_share: float = 0.0,
    cold_user_valid_fraction: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Split labels per row and the cold item indices.

    Cold users (``cold_user_share``) are drawn first: every row of one goes to valid or test
    (whole users, ``cold_user_valid_fraction`` of them to valid), so nothing of their history
    reaches training. The other rows are split as below."""
    cold_users = choose_cold_users(frame["user_idx"].to_numpy(), cold_user_share, seed)
    if len(cold_users):
        held = np.isin(frame["user_idx"].to_numpy(), cold_users)
        labels, cold = assign_splits(
            frame[~held], strategy, ratios=ratios, min_user_interactions=min_user_interactions,
            cold_share=cold_share, cold_valid_fraction=cold_valid_fraction, seed=seed,
        )
        out = np.empty(len(frame), dtype=object)
        out[~held] = labels
        by_user = cold_user_labels(cold_users, cold_user_valid_fraction, seed)
        out[held] = [by_user[int(u)] for u in frame["user_idx"].to_numpy()[held]]
        return out, cold
    """Split labels per row and the cold item indices.

    Cold items are drawn first; all their interactions go to valid (``cold_valid_fraction`` of
    them, seeded) or test, and the chosen strategy splits the remaining (warm) rows.
    """
    cold = choose_cold_items(frame["item_idx"].to_numpy(), cold_share, seed)
    is_cold_row = np.isin(frame["item_idx"].to_numpy(), cold)
    warm = frame[~is_cold_row]
    if strategy == "random":
        warm_labels = random_split(warm, ratios, min_user_interactions, seed)
    elif strategy == "leave_last_out":
        warm_labels = leave_last_out_split(warm, min_user_interactions)
    elif strategy == "temporal":
        warm_labels = temporal_split(warm, ratios)
    elif strategy == "published":
        warm_labels = published_split(warm)
    else:
        raise ValueError(f"unknown split strategy {strategy!r}; choose from {STRATEGIES}")
    labels = np.empty(len(frame), dtype=object)
    labels[~is_cold_row] = warm_labels
    if is_cold_row.any():
        cold_rows = frame[is_cold_row]
        canonical = np.lexsort((cold_rows["item_idx"].to_numpy(), cold_rows["user_idx"].to_numpy()))
        draws = np.empty(len(cold_rows))
        draws[canonical] = np.random.default_rng([seed, 2]).random(len(cold_rows))
        labels[is_cold_row] = np.where(draws < cold_valid_fraction, VALID, TEST)
    return labels, cold


def cold_share_for(
    strategy: str, share: float, apply_to_published: bool, what: str = "items"
) -> float:
    """The holdout share to use: a published split is reproduced exactly unless asked.

    Papers report results on their published split; silently moving a share of its items to
    valid/test would make our numbers incomparable with theirs.
    """
    if strategy == "published" and not apply_to_published:
        if share > 0:
            logger.info(
                "published split reproduced exactly: the cold-%s holdout (share %g) "
                "is not applied to it (split.cold_%s.apply_to_published: true would "
                "apply it)",
                what.rstrip("s"),
                share,
                what,
            )
        return 0.0
    return share


def published_rows_changed(frame: pd.DataFrame, labels: np.ndarray) -> int:
    """How many rows got another label than the published one (0 without a published split)."""
    if "published_split" not in frame.columns:
        return 0
    return int((frame["published_split"].to_numpy(dtype=object) != labels).sum())
