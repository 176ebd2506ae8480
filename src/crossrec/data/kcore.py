"""Iterated k-core filtering of interactions."""

from __future__ import annotations

import logging

import pandas as pd

logger = logging.getLogger(__name__)


def kcore_filter(
    interactions: pd.DataFrame, user_min: int, item_min: int,
    user_col: str = "user_id", item_col: str = "item_id",
) -> pd.DataFrame:
    """Drop users with < user_min and items with < item_min interactions until a fixed point.

    Dropping a user can push an item below its threshold and vice versa, so one pass is not
    enough; the loop ends when a pass removes nothing (every remaining user and item qualifies).
    """
    if user_min <= 1 and item_min <= 1:
        return interactions
    current = interactions
    rounds = 0
    while True:
        rounds += 1
        user_counts = current[user_col].map(current[user_col].value_counts())
        item_counts = current[item_col].map(current[item_col].value_counts())
        keep = (user_counts >= user_min) & (item_counts >= item_min)
        if keep.all():
            break
        current = current[keep.to_numpy()]
    dropped = len(interactions) - len(current)
    logger.info("k-core (users>=%d, items>=%d): %d rounds, dropped %d of %d interactions",
                user_min, item_min, rounds, dropped, len(interactions))
    return current.reset_index(drop=True)
