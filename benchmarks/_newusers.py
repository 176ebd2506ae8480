"""New users of a test slice (strong generalisation): a history to fold in, the rest to predict.

Most users in a later slice of a timeline are new: the data the model was trained on never saw
them. To test them, each new user's interactions in the slice are split in time order: the first
``history_share`` become the history the model folds them in from (the same new-user fold-in a
refresh uses: :func:`crossrec.models.warm.warm_start` with ``new_users: history``), the rest the
truth to rank. Interactions with items the current data does not know cannot be folded in nor
ranked: they are dropped before the split and counted; a user left with fewer than 2 usable
interactions cannot be tested and is counted, never dropped silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossrec.data.increments import DatasetTables, Increment, IncrementRules, apply_increment

log = logging.getLogger(__name__)


@dataclass
class NewUserSplit:
    """The new users of one slice: increment-format rows (``user_id``, ``item_id``, ...)."""

    #: the rows each tested new user is folded in from (the earliest of their slice)
    history: pd.DataFrame
    #: the rows to rank (the rest)
    truth: pd.DataFrame
    #: new users tested (at least 1 history and 1 truth interaction)
    users: int
    #: new users with fewer than 2 usable interactions in the slice: not testable
    untestable: int
    #: new users' rows on items the current data does not know (excluded before the split)
    unknown_item_rows: int


def history_count(n: int, share: float) -> int:
    """How many of a user's ``n`` interactions become history: ``share`` of them, rounded,
    at least 1 and at most ``n - 1`` (one is always left to predict)."""
    return int(min(max(round(n * share), 1), n - 1))


def split_new_users(tables: DatasetTables, inc: Increment, history_share: float) -> NewUserSplit:
    """The users of ``inc`` that ``tables`` does not know, split into history and truth."""
    if not 0.0 < history_share < 1.0:
        raise ValueError(f"new_user_history_share: {history_share} is not in (0, 1)")
    frame = inc.interactions
    new = frame[~frame["user_id"].isin(tables.users["user_id"]).to_numpy()]
    known_item = new["item_id"].isin(tables.items["item_id"]).to_numpy()
    unknown_rows = int((~known_item).sum())
    # time order; ties keep the increment's row order (a stable sort)
    usable = new[known_item].sort_values("timestamp", kind="stable")
    all_new = pd.unique(new["user_id"])
    rank = usable.groupby("user_id", sort=False).cumcount().to_numpy()
    size = usable.groupby("user_id", sort=False)["item_id"].transform("size").to_numpy()
    testable = size >= 2
    cut = np.array([history_count(n, history_share) if n >= 2 else 0 for n in size], dtype=int)
    history = usable[testable & (rank < cut)].reset_index(drop=True)
    truth = usable[testable & (rank >= cut)].reset_index(drop=True)
    n_tested = int(pd.unique(history["user_id"]).size)
    split = NewUserSplit(history, truth, n_tested, len(all_new) - n_tested, unknown_rows)
    log.info(
        "%s: %d new users, %d tested (history share %.2f), %d with < 2 usable interactions, "
        "%d rows on unknown items",
        inc.name,
        len(all_new),
        split.users,
        history_share,
        split.untestable,
        split.unknown_item_rows,
    )
    return split


def with_history(tables: DatasetTables, history: pd.DataFrame, name: str) -> DatasetTables:
    """``tables`` plus the new users' ``history`` rows (all ``train``), appended as an increment:
    the data their fold-in runs on. Rows on items ``tables`` does not know are left out (a model
    can only fold a user in from items it knows); a user left without rows is not added."""
    rows = history[history["item_id"].isin(tables.items["item_id"]).to_numpy()]
    if rows.empty:
        return tables
    inc = Increment(name, rows, pd.DataFrame(columns=["item_id"]), {"interactions": name})
    grown, _ = apply_increment(tables, inc, IncrementRules(valid_share=0.0), seed=0)
    return grown
