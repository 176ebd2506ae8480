"""Parsing and checks shared by all adapters; every failure names the file, row and column."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from crossrec.data.errors import DataValidationError

logger = logging.getLogger(__name__)


def read_table(path: Path, *, sep: str | None = None, role: str = "table") -> pd.DataFrame:
    """Read a CSV / TSV / parquet file with every column as string (ids stay exact)."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(path, f"{role} file does not exist", expected="a readable file")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
            return frame.astype({c: "string" for c in frame.columns}).astype(object)
        if sep is None:
            sep = "\t" if suffix in {".tsv", ".inter", ".tab"} else ","
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataValidationError(path, f"cannot be parsed as a {role} table: {err}") from None


def require_columns(frame: pd.DataFrame, columns: Iterable[str], file: Path | str) -> None:
    """Fail when a configured column is absent, suggesting the closest existing name."""
    available = [str(c) for c in frame.columns]
    for column in columns:
        if column not in frame.columns:
            close = difflib.get_close_matches(column, available, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise DataValidationError(
                file,
                f"missing column {column!r}{hint} (columns present: {available})",
                column=column,
                expected="the column named in the adapter options",
            )


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def parse_ids(values: pd.Series, file: Path | str, column: str) -> pd.Series:
    """Ids as non-empty strings; integer-like floats ('3.0') become '3' so files agree."""
    text = values.astype(object)
    missing = text.isna().to_numpy() | (text.astype(str).str.strip() == "").to_numpy()
    if missing.any():
        i = _first_bad(missing)
        raise DataValidationError(
            file, "empty id", row=i + 1, column=column, expected="a non-empty id"
        )
    text = text.astype(str).str.strip()
    as_float = pd.to_numeric(text, errors="coerce")
    integral = as_float.notna() & np.isfinite(as_float) & (as_float == np.round(as_float))
    dotted = integral & text.str.contains(r"[.eE]", regex=True)
    if dotted.any():
        text = text.where(~dotted, as_float[dotted].astype("int64").astype(str))
    return text


def parse_int_ids(values: pd.Series, file: Path | str, column: str) -> np.ndarray:
    """Ids that must be non-negative integers (mmrec rows of the feature matrices)."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna().to_numpy() | ~np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
    if not bad.any():
        bad = (numbers.to_numpy() < 0) | (numbers.to_numpy() != np.round(numbers.to_numpy()))
    if bad.any():
        i = _first_bad(bad)
        raise DataValidationError(
            file,
            f"id {values.iloc[i]!r} is not a non-negative integer",
            row=i + 1,
            column=column,
            expected="0-based integer ids",
        )
    return numbers.to_numpy().astype(np.int64)


def parse_ratings(values: pd.Series, file: Path | str, column: str) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna().to_numpy()
    if bad.any():
        i = _first_bad(bad)
        raise DataValidationError(
            file, f"rating {values.iloc[i]!r} is not a number", row=i + 1, column=column,
            expected="a numeric rating",
        )
    return numbers.to_numpy(dtype=np.float32)


def parse_timestamps(values: pd.Series, file: Path | str, column: str) -> np.ndarray:
    """Unix seconds (int64) from integer seconds or from date/time strings."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all():
        return np.floor(numbers.to_numpy(dtype=np.float64)).astype(np.int64)
    if numbers.notna().any():  # mix of numbers and something else: report the first non-number
        bad = numbers.isna().to_numpy()
        i = _first_bad(bad)
        raise DataValidationError(
            file, f"timestamp {values.iloc[i]!r} is not a number like the rows before it",
            row=i + 1, column=column, expected="one format per column: unix seconds or ISO dates",
        )
    else:
        dates = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        bad = dates.isna().to_numpy()
        if not bad.any():
            epoch = pd.Timestamp(0, tz="UTC")
            return ((dates - epoch) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
    i = _first_bad(bad)
    raise DataValidationError(
        file,
        f"timestamp {values.iloc[i]!r} cannot be parsed",
        row=i + 1,
        column=column,
        expected="unix seconds or an ISO date/time",
    )


def deduplicate_interactions(
    interactions: pd.DataFrame, policy: str, file: Path | str
) -> pd.DataFrame:
    """One row per (user, item): 'error' fails on the first repeat, 'keep_first' logs the count.

    'first' is the earliest interaction (by timestamp, then file order), which keeps the time of
    first contact for temporal splits.
    """
    ordered = interactions.sort_values(["timestamp"], kind="stable")
    dup = ordered.duplicated(["user_id", "item_id"], keep="first")
    n_dup = int(dup.sum())
    if n_dup == 0:
        return interactions
    if policy == "error":
        first = ordered[dup].sort_values("row").iloc[0]
        raise DataValidationError(
            file,
            f"duplicate interaction of user {first['user_id']!r} with item {first['item_id']!r} "
            f"({n_dup} duplicate rows in total)",
            row=int(first["row"]),
            expected="one row per (user, item); set validation.duplicate_interactions: keep_first "
            "to keep the earliest",
        )
    logger.warning("%s: dropped %d duplicate (user, item) interactions, kept the earliest",
                   file, n_dup)
    return ordered[~dup].sort_values("row", kind="stable").reset_index(drop=True)


def check_unknown_items(
    interactions: pd.DataFrame, item_ids: pd.Series, policy: str, file: Path | str,
    items_file: Path | str,
) -> pd.DataFrame:
    """Interactions must point at items of the item table ('error') or are dropped with a log."""
    unknown = ~interactions["item_id"].isin(set(item_ids))
    n_unknown = int(unknown.sum())
    if n_unknown == 0:
        return interactions
    if policy == "error":
        first = interactions[unknown].iloc[0]
        raise DataValidationError(
            file,
            f"item {first['item_id']!r} is not in the item table {items_file} "
            f"({n_unknown} interactions with {interactions.loc[unknown, 'item_id'].nunique()} "
            "unknown items)",
            row=int(first["row"]),
            column="item",
            expected="every interacted item in the item table; set validation.unknown_items: "
            "drop to drop them",
        )
    logger.warning("%s: dropped %d interactions whose item is not in %s", file, n_unknown,
                   items_file)
    return interactions[~unknown].reset_index(drop=True)


def resolve_media_paths(
    values: pd.Series, folder: Path, file: Path | str, column: str
) -> pd.Series:
    """Media paths relative to the dataset folder -> absolute str, empty -> None."""

    def one(value: object) -> str | None:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        text = str(value).strip()
        if not text:
            return None
        path = Path(text)
        if not path.is_absolute():
            path = folder / path
        return str(path.resolve())

    return pd.Series([one(v) for v in values], index=values.index, dtype=object)


def natural_order(ids: Iterable[str]) -> list[str]:
    """Ids sorted numerically when all are integers, else as strings: stable id maps."""
    unique = sorted(set(ids))
    try:
        return sorted(unique, key=lambda s: (int(s), s))
    except ValueError:
        return unique


def deduplicate_items(
    items: pd.DataFrame, text_columns: list[str], file: Path | str
) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per item id: keep the most complete row, ties to the first in the file.

    "Complete" counts non-empty text columns and media paths, so a duplicate that lacks the plot
    text or the poster never wins over one that has them. Returns the kept rows and their
    positions in ``items`` (to subset row-aligned arrays); logs how many rows were dropped.
    """
    dup_any = items["item_id"].duplicated(keep=False)
    if not dup_any.any():
        return items, np.arange(len(items))
    filled = np.zeros(len(items), dtype=np.int64)
    for column in [*text_columns, "image_path", "audio_path"]:
        if column in items.columns:
            values = items[column]
            filled += (values.notna() & (values.astype(str).str.strip() != "")).to_numpy()
    order = pd.DataFrame({"item_id": items["item_id"].to_numpy(), "filled": -filled,
                          "pos": np.arange(len(items))})
    order = order.sort_values(["item_id", "filled", "pos"], kind="stable")
    keep = np.sort(order.drop_duplicates("item_id", keep="first")["pos"].to_numpy())
    n_dropped = len(items) - len(keep)
    n_ids = int(items.loc[dup_any, "item_id"].nunique())
    logger.warning("%s: %d duplicate item rows for %d ids dropped (kept the most complete row "
                   "of each, ties to the first)", file, n_dropped, n_ids)
    return items.iloc[keep].reset_index(drop=True), keep
