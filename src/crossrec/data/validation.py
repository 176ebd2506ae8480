"""Parsing and checks shared by all adapters; every failure names the file, row and column."""

from __future__ import annotations

import codecs
import difflib
import logging
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from crossrec.data.errors import DataValidationError
from crossrec.data.item_dedup import deduplicate_items  # noqa: F401  (imported from here)

logger = logging.getLogger(__name__)


def read_table(
    path: Path, *, sep: str | None = None, encoding: str | None = None, role: str = "table"
) -> pd.DataFrame:
    """Read a CSV / TSV / parquet file with every column as string (ids stay exact).

    ``encoding`` defaults to UTF-8 (text files only). A file that does not decode, is empty or
    has a header but no data rows fails here, naming the file, instead of later in the pipeline.
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(path, f"{role} file does not exist", expected="a readable file")
    suffix = path.suffix.lower()
    encoding = encoding or "utf-8"
    try:
        if suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
            frame = frame.astype({c: "string" for c in frame.columns}).astype(object)
        else:
            if sep is None:
                sep = "\t" if suffix in {".tsv", ".inter", ".tab"} else ","
            frame = pd.read_csv(
                path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding
            )
    except UnicodeError:
        raise decode_error(path, encoding, role) from None
    except pd.errors.EmptyDataError:
        raise DataValidationError(
            path, f"{role} file is empty", expected="a header line and at least one row of data"
        ) from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise DataValidationError(path, f"cannot be parsed as a {role} table: {err}") from None
    if suffix not in {".parquet", ".pq"}:
        require_unique_header(path, sep, encoding, role)
    if frame.empty:
        raise DataValidationError(
            path, "no data rows", expected=f"a {role} table with at least one row under its header"
        )
    return frame


def require_unique_header(path: Path, sep: str, encoding: str, role: str) -> None:
    """Fail on a repeated column name: pandas would silently rename the second one
    ('movie_id.1') and the configured column would read only the first."""
    header = (
        pd.read_csv(
            path, sep=sep, header=None, nrows=1, dtype=str, encoding=encoding, keep_default_na=False
        )
        .iloc[0]
        .tolist()
    )
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if name in seen:
            raise DataValidationError(
                path,
                f"the header names column {name!r} twice (again as column {position} of "
                f"{len(header)})",
                column=name,
                expected=f"a header that names each column of the {role} table once",
            )
        seen.add(name)


def decode_error(path: Path, encoding: str, role: str) -> DataValidationError:
    """Where ``path`` stops decoding as ``encoding`` (line, byte) and which option fixes it."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, lines, problem = 0, 1, "does not decode"
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                lines += chunk[: err.start].count(b"\n")
                offset += err.start
                problem = f"byte 0x{chunk[err.start]:02x} at line {lines} (byte {offset})"
                break
            lines += chunk.count(b"\n")
            offset += len(chunk)
        else:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                problem = f"incomplete character at the end (byte {offset})"
    guess = (
        "utf-16"
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
        else "e.g. cp1252, latin-1 or utf-16"
    )
    return DataValidationError(
        path,
        f"{role} file is not valid {encoding} text: {problem}",
        expected=f"{encoding} text, or set the adapter option `encoding` to the file's "
        f"encoding ({guess})",
    )


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


#: rows of a feature matrix checked for finite values at once
FINITE_CHECK_ROWS = 65536

#: An integer written as a float by a spreadsheet or a pandas float column: '7.0', '7.', '-3.00'.
_FLOAT_WRITTEN_INT = re.compile(r"^([+-]?\d+)\.0*$")


def parse_ids(values: pd.Series, file: Path | str, column: str) -> pd.Series:
    """Ids as non-empty strings, by ONE rule for users and items in every table.

    The id is the cell's text with surrounding whitespace trimmed; an integer written as a float
    ('7.0', '7.') loses its '.0' suffix so a float column matches an integer one. Nothing else is
    changed: case and leading zeros are kept ('07' and '7' are different ids, as zero-padded
    product codes are), and '1e3' stays '1e3'. Columns holding ids that differ only by leading
    zeros get a warning, since that is usually a file written by two different tools.
    """
    # every rule applies to the distinct values only; rows take theirs by code (a column of
    # 10^7 rows holds far fewer distinct ids, and the rows share one string object per id)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = pd.Series(uniques, dtype=object).astype(str).str.strip()
    empty = (text == "").to_numpy()
    missing = codes < 0
    if empty.any():
        missing |= empty[np.maximum(codes, 0)] & (codes >= 0)
    if missing.any():
        i = _first_bad(missing)
        raise DataValidationError(
            file, "empty id", row=i + 1, column=column, expected="a non-empty id"
        )
    dotted = text.str.contains(".", regex=False).to_numpy(dtype=bool)
    if dotted.any():  # only these can be an integer written as a float
        text = text.copy()
        text[dotted] = text[dotted].str.replace(_FLOAT_WRITTEN_INT, r"\1", regex=True)
    _warn_leading_zero_twins(text, file, column)
    # '7' and '7.0' are one id now: one entry per id, then the rows by code (a C take)
    id_codes, ids = pd.factorize(text)
    return pd.Series(pd.array(ids, dtype="str").take(id_codes[codes]), index=values.index)


def isin_ids(values: pd.Series, ids: Iterable[str] | pd.Series) -> np.ndarray:
    """``values.isin(ids)`` for id columns of millions of rows: both factorized together
    (hashing in C), then integer membership."""
    ids = ids if isinstance(ids, pd.Series) else pd.Series(list(ids), dtype="str")
    codes, _ = pd.factorize(pd.concat([values.astype("str"), ids.astype("str")], ignore_index=True))
    return np.isin(codes[: len(values)], codes[len(values) :])


def strip_leading_zeros(ids: pd.Series) -> pd.Series:
    """'007' -> '7' for all-digit ids (others unchanged): only to explain near-misses."""
    digits = ids.str.fullmatch(r"\d+")
    return ids.where(~digits, ids.str.lstrip("0").replace("", "0"))


def _warn_leading_zero_twins(ids: pd.Series, file: Path | str, column: str) -> None:
    unique = pd.Series(pd.unique(ids), dtype=object)
    stripped = strip_leading_zeros(unique)
    twins = stripped.duplicated(keep=False)
    if twins.any():
        first = stripped[twins].iloc[0]
        examples = sorted(unique[stripped == first].tolist())
        logger.warning(
            "%s, column %r: %d ids differ from another only by leading zeros (e.g. "
            "%s); ids keep their leading zeros, so these are different ids",
            file,
            column,
            int(twins.sum()),
            ", ".join(repr(e) for e in examples),
        )


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
    """Finite numbers ('inf', 'nan' or text fail with the row)."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = ~np.isfinite(numbers.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        i = _first_bad(bad)
        if pd.isna(values.iloc[i]):
            what = "rating is empty"
        else:
            what = f"rating {values.iloc[i]!r} " + (
                "is not finite" if pd.notna(numbers.iloc[i]) else "is not a number"
            )
        raise DataValidationError(
            file,
            what,
            row=i + 1,
            column=column,
            expected="a finite numeric rating",
        )
    return numbers.to_numpy(dtype=np.float32)


def parse_timestamps(values: pd.Series, file: Path | str, column: str) -> np.ndarray:
    """Unix seconds (int64) from integer seconds or from date/time strings."""
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(values):
        try:  # integer seconds, the common case: one C cast instead of a parse per row
            return values.astype(np.int64).to_numpy()
        except (ValueError, TypeError, OverflowError):
            pass
    numbers = pd.to_numeric(values, errors="coerce")
    infinite = np.isinf(numbers.to_numpy(dtype=np.float64, na_value=np.nan))
    if infinite.any():
        i = _first_bad(infinite)
        raise DataValidationError(
            file,
            f"timestamp {values.iloc[i]!r} is not finite",
            row=i + 1,
            column=column,
            expected="unix seconds or an ISO date/time",
        )
    if numbers.notna().all():
        return np.floor(numbers.to_numpy(dtype=np.float64)).astype(np.int64)
    if numbers.notna().any():  # mix of numbers and something else: report the first non-number
        bad = numbers.isna().to_numpy()
        i = _first_bad(bad)
        raise DataValidationError(
            file,
            f"timestamp {values.iloc[i]!r} is not a number like the rows before it",
            row=i + 1,
            column=column,
            expected="one format per column: unix seconds or ISO dates",
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
    order = np.argsort(interactions["timestamp"].to_numpy(), kind="stable")
    dup = np.zeros(len(interactions), dtype=bool)
    dup[order] = pd.Series(pair_codes(interactions)[order]).duplicated(keep="first").to_numpy()
    n_dup = int(dup.sum())
    if n_dup == 0:
        return interactions
    if policy == "error":
        first = interactions[dup].sort_values("row").iloc[0]
        raise DataValidationError(
            file,
            f"duplicate interaction of user {first['user_id']!r} with item {first['item_id']!r} "
            f"({n_dup} duplicate rows in total)",
            row=int(first["row"]),
            expected="one row per (user, item); set validation.duplicate_interactions: keep_first "
            "to keep the earliest",
        )
    logger.warning(
        "%s: dropped %d duplicate (user, item) interactions, kept the earliest", file, n_dup
    )
    kept = interactions[~dup]
    if not kept["row"].is_monotonic_increasing:
        kept = kept.sort_values("row", kind="stable")
    return kept.reset_index(drop=True)


def pair_codes(interactions: pd.DataFrame) -> np.ndarray:
    """One int64 per (user_id, item_id) pair: equal pairs, equal codes."""
    users, _ = pd.factorize(interactions["user_id"])
    items, item_values = pd.factorize(interactions["item_id"])
    return users.astype(np.int64) * max(1, len(item_values)) + items


def check_unknown_items(
    interactions: pd.DataFrame,
    item_ids: pd.Series,
    policy: str,
    file: Path | str,
    items_file: Path | str,
    column: str = "item",
) -> pd.DataFrame:
    """Interactions must point at items of the item table.

    'error' fails on the first unknown item (``column`` is the item column as the user named it),
    'drop' drops those interactions with a log, 'keep' keeps them (the caller then adds the
    items with :func:`add_bare_items`).
    """
    unknown = ~isin_ids(interactions["item_id"], item_ids)
    n_unknown = int(unknown.sum())
    if n_unknown == 0 or policy == "keep":
        return interactions
    n_items = int(interactions.loc[unknown, "item_id"].nunique())
    if policy == "error":
        first = interactions[unknown].iloc[0]
        raise DataValidationError(
            file,
            f"item {first['item_id']!r} is not in the item table {items_file} "
            f"({n_unknown} interactions with {n_items} unknown items)"
            + _leading_zero_hint(first["item_id"], item_ids),
            row=int(first["row"]),
            column=column,
            expected="every interacted item in the item table; set validation.unknown_items: "
            "drop to drop these interactions, or keep to keep the items without metadata",
        )
    logger.warning(
        "%s: dropped %d interactions with %d items that are not in %s",
        file,
        n_unknown,
        n_items,
        items_file,
    )
    return interactions[~unknown].reset_index(drop=True)


def _leading_zero_hint(item_id: str, item_ids: pd.Series) -> str:
    """Point at an item-table id that differs only by leading zeros, if there is one."""
    table = pd.Series(pd.unique(item_ids.astype(str)), dtype=object)
    key = strip_leading_zeros(pd.Series([str(item_id)])).iloc[0]
    match = table[strip_leading_zeros(table) == key]
    if match.empty:
        return ""
    return (
        f"; the item table has {match.iloc[0]!r}, which differs only by leading zeros "
        "(ids keep their leading zeros)"
    )


def add_bare_items(
    items: pd.DataFrame,
    item_ids: Iterable[str],
    text_columns: list[str],
    media_patterns: dict[str, str],
    file: Path | str,
) -> pd.DataFrame:
    """Append items that have no item-table row: empty text, media from the path patterns.

    ``media_patterns`` maps ``image_path`` / ``audio_path`` to an absolute pattern with
    ``{item_id}``; a modality without a pattern gets no file (None).
    """
    new = pd.Series(natural_order(item_ids), dtype=object)
    if new.empty:
        return items
    extra = pd.DataFrame({"item_id": new})
    for column in text_columns:
        extra[column] = ""
    for column in ("image_path", "audio_path"):
        pattern = media_patterns.get(column)
        extra[column] = pd.Series(
            [str(Path(pattern.format(item_id=i)).resolve()) if pattern else None for i in new],
            dtype=object,
        )
    with_media = [c for c in ("image_path", "audio_path") if media_patterns.get(c)]
    logger.warning(
        "%s: kept %d interacted items that have no row in the item table (empty "
        "text; media from the %s pattern)",
        file,
        len(new),
        " / ".join(with_media) if with_media else "no",
    )
    return pd.concat(
        [items, extra[[c for c in extra.columns if c in items.columns]]], ignore_index=True
    )


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


def load_feature_matrix(path: Path, rows: str = "itemID") -> np.ndarray:
    """A precomputed feature matrix (one row per ``rows``): 2-D, numeric, finite, float32."""
    if not path.is_file():
        raise DataValidationError(
            path, "feature file does not exist", expected=f"a .npy matrix with one row per {rows}"
        )
    try:
        matrix = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataValidationError(path, f"cannot be read as a .npy array: {err}") from None
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        raise DataValidationError(
            path,
            f"array of shape {matrix.shape} and dtype {matrix.dtype}",
            expected="a 2-D numeric matrix (n_items, d)",
        )
    matrix = matrix.astype(np.float32, copy=False)
    for start in range(0, len(matrix), FINITE_CHECK_ROWS):  # a bool copy per block, not whole
        block = np.isfinite(matrix[start : start + FINITE_CHECK_ROWS]).all(axis=1)
        if not block.all():
            row = start + int(np.flatnonzero(~block)[0])
            raise DataValidationError(
                path, "non-finite values", row=row, expected="finite feature values"
            )
    return matrix
