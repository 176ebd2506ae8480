"""One row per item id. Catalogues often repeat an item row verbatim (a join written twice);
that is noise, collapsed quietly. Rows that repeat an id with different content are a real
conflict: one of them is kept and the user is told which ids and columns disagreed."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

#: Ids named in the warning about conflicting rows (the count says how many there are).
EXAMPLE_IDS = 5


def _completeness(items: pd.DataFrame, text_columns: list[str]) -> np.ndarray:
    """Non-empty text columns and media paths per row."""
    filled = np.zeros(len(items), dtype=np.int64)
    for column in [*text_columns, "image_path", "audio_path"]:
        if column in items.columns:
            values = items[column]
            filled += (values.notna() & (values.astype(str).str.strip() != "")).to_numpy()
    return filled


def conflicting_columns(items: pd.DataFrame, content: list[str]) -> list[str]:
    """Columns in which rows of one id differ (``items`` holds only repeated ids)."""
    grouped = items.groupby("item_id", sort=False)[content]
    varying = grouped.nunique(dropna=False) > 1
    return [c for c in content if varying[c].any()]


def deduplicate_items(
    items: pd.DataFrame, text_columns: list[str], file: Path | str
) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per item id: identical repeats are collapsed (logged at INFO); among rows that
    disagree the most complete wins, ties to the first in the file (logged as a warning naming
    some ids and the differing columns).

    "Complete" counts non-empty text columns and media paths, so a duplicate that lacks the plot
    text or the poster never wins over one that has them. Returns the kept rows and their
    positions in ``items`` (to subset row-aligned arrays).
    """
    if not items["item_id"].duplicated().any():
        return items, np.arange(len(items))
    content = [c for c in items.columns if c != "row"]
    identical = items.duplicated(subset=content, keep="first").to_numpy()
    if identical.any():
        logger.info(
            "%s: collapsed %d item rows that repeat another row of the same id verbatim",
            file,
            int(identical.sum()),
        )
    positions = np.flatnonzero(~identical)
    distinct = items.iloc[positions]
    clash = distinct["item_id"].duplicated(keep=False).to_numpy()
    if not clash.any():
        return distinct.reset_index(drop=True), positions
    order = pd.DataFrame(
        {
            "item_id": distinct["item_id"].to_numpy(),
            "filled": -_completeness(distinct, text_columns),
            "pos": positions,
        }
    ).sort_values(["item_id", "filled", "pos"], kind="stable")
    keep = np.sort(order.drop_duplicates("item_id", keep="first")["pos"].to_numpy())
    clashing = distinct[clash]
    ids = list(pd.unique(clashing["item_id"]))
    logger.warning(
        "%s: %d duplicate item rows for %d ids dropped: their rows disagree in %s (e.g. ids "
        "%s); kept the most complete row of each, ties to the first",
        file,
        len(positions) - len(keep),
        len(ids),
        conflicting_columns(clashing, content),
        ", ".join(repr(i) for i in ids[:EXAMPLE_IDS]),
    )
    return items.iloc[keep].reset_index(drop=True), keep
