"""Checks on a split before anything is trained on it: a split with nothing held out cannot be
evaluated, and a dataset whose users mostly have one interaction gives a model nothing to learn
from, so both are said at ingest rather than as a report of zeros at the end of the chain."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from crossrec.data.errors import DataValidationError
from crossrec.data.splits import TEST, VALID

logger = logging.getLogger(__name__)

#: Share of users with a single interaction above which ingest warns.
SINGLE_INTERACTION_WARN_SHARE = 0.5


def user_history_sizes(interactions: pd.DataFrame) -> np.ndarray:
    """Interactions per user (users with none are absent)."""
    if interactions.empty:
        return np.zeros(0, dtype=np.int64)
    return np.bincount(interactions["user_idx"].to_numpy())[
        np.unique(interactions["user_idx"].to_numpy())
    ]


def warn_thin_histories(sizes: np.ndarray, dataset: str) -> None:
    """Warn when most users have one interaction: such a user gives no (train, held-out) pair,
    so the model learns from, and is judged on, the few others."""
    if not len(sizes):
        return
    single = int((sizes == 1).sum())
    if single / len(sizes) > SINGLE_INTERACTION_WARN_SHARE:
        logger.warning(
            "%s: %d of %d users (%.0f%%) have ONE interaction: they cannot be split into "
            "train and held-out rows, so they stay train-only and the metrics describe the "
            "other %d users only; check that the interactions file is complete (expected "
            "several interactions per user)",
            dataset,
            single,
            len(sizes),
            100.0 * single / len(sizes),
            len(sizes) - single,
        )


def require_held_out(
    labels: np.ndarray,
    sizes: np.ndarray,
    dataset: str,
    strategy: str,
    min_user_interactions: int,
    expect_valid: bool,
) -> None:
    """Fail when the split leaves no test rows (or no valid rows while the ratios ask for
    some): every later stage would run and report zeros."""
    counts = {name: int((labels == name).sum()) for name in (VALID, TEST)}
    missing = [name for name, n in counts.items() if n == 0 and (name == TEST or expect_valid)]
    if not missing:
        return
    too_few = int((sizes < min_user_interactions).sum())
    largest = int(sizes.max()) if len(sizes) else 0
    raise DataValidationError(
        f"{dataset} interactions",
        f"the {strategy!r} split leaves {counts[VALID]} valid and {counts[TEST]} test rows "
        f"(no {' / '.join(missing)} rows) from {len(labels)} interactions of {len(sizes)} "
        f"users; {too_few} users have fewer than split.min_user_interactions = "
        f"{min_user_interactions} interactions (the largest history has {largest})",
        column="split",
        expected=f"users with at least {min_user_interactions} interactions (one for train, "
        "valid and test each), a dataset with more rows, or a lower "
        "ingest.split.min_user_interactions",
    )
