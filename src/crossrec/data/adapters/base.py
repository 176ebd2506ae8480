"""Adapter registry and the row-level builders adapters share."""

from __future__ import annotations

import codecs
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossrec.data.errors import DataValidationError
from crossrec.data.raw import SPLIT_NAMES, RawData
from crossrec.data.validation import (
    parse_ids,
    parse_ratings,
    parse_timestamps,
    require_columns,
)
from crossrec.registry import Registry, UnknownComponentError

Adapter = Callable[[str, Path, Mapping[str, Any]], RawData]
#: adapters by the name used in ``parameters_ingest.yml`` (like every pluggable part)
ADAPTERS: Registry = Registry(
    "adapter",
    ["crossrec.data.adapters"],
    builtin_names=["generic", "mmrec", "movielens_multimodal"],
)


def register(name: str) -> Callable[[Adapter], Adapter]:
    """Register an adapter under the name used in ``parameters_ingest.yml``."""
    return ADAPTERS.register(name)


def get_adapter(name: str, where: str) -> Adapter:
    """The adapter named ``name``; an unknown name fails with a suggestion and ``where``."""
    try:
        return ADAPTERS.get(name)
    except UnknownComponentError as err:
        raise UnknownComponentError(f"{where}: {err}") from None


def build_interactions(
    frame: pd.DataFrame,
    file: Path | str,
    *,
    user: str,
    item: str,
    rating: str | None = None,
    timestamp: str | None = None,
    split: str | None = None,
    split_values: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Standard interaction columns from a raw table (validated, row numbers kept for errors)."""
    wanted = [c for c in (user, item, rating, timestamp, split) if c]
    require_columns(frame, wanted, file)
    out = pd.DataFrame(
        {
            "user_id": parse_ids(frame[user], file, user).array,
            "item_id": parse_ids(frame[item], file, item).array,
            "rating": (
                parse_ratings(frame[rating], file, rating)
                if rating
                else np.ones(len(frame), dtype=np.float32)
            ),
            "timestamp": (
                parse_timestamps(frame[timestamp], file, timestamp)
                if timestamp
                else np.full(len(frame), -1, dtype=np.int64)
            ),
            "row": np.arange(1, len(frame) + 1, dtype=np.int64),
        }
    )
    if split:
        out["published_split"] = parse_split_labels(frame[split], file, split, split_values)
    return out


def parse_split_labels(
    values: pd.Series, file: Path | str, column: str, mapping: Mapping[str, str] | None
) -> np.ndarray:
    """Published split labels -> 'train'/'valid'/'test' through ``mapping`` (raw -> name)."""
    mapping = dict(mapping or {name: name for name in SPLIT_NAMES})
    bad_target = set(mapping.values()) - set(SPLIT_NAMES)
    if bad_target:
        raise DataValidationError(
            file,
            f"split mapping targets {sorted(bad_target)}",
            column=column,
            expected=f"values in {SPLIT_NAMES}",
        )
    text = values.astype(str).str.strip()
    mapped = text.map(mapping)
    bad = mapped.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            file,
            f"split label {values.iloc[i]!r} is unknown",
            row=i + 1,
            column=column,
            expected=f"one of {sorted(mapping)}",
        )
    return mapped.to_numpy(dtype=object)


def empty_media(n: int) -> pd.Series:
    return pd.Series([None] * n, dtype=object)


def check_encoding(value: str | None) -> str | None:
    """A text encoding Python knows (pydantic validator of the adapters' ``encoding``)."""
    if value is not None:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown text encoding {value!r} (e.g. utf-8, cp1252, latin-1, utf-16)"
            ) from None
    return value


def check_pattern(pattern: str | None) -> str | None:
    """A media path pattern must name ``{item_id}`` and nothing else (pydantic validator)."""
    if pattern is None:
        return None
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None}
    except ValueError as err:
        raise ValueError(f"bad path pattern {pattern!r}: {err}") from None
    if fields != {"item_id"}:
        raise ValueError(
            f"path pattern {pattern!r} must contain {{item_id}} and no other field "
            f"(found {sorted(fields)})"
        )
    return pattern


def absolute_pattern(pattern: str | None, folder: Path) -> str | None:
    """The pattern as an absolute path pattern (relative ones are under the dataset folder)."""
    if not pattern:
        return None
    path = Path(pattern)
    return str(path if path.is_absolute() else folder.resolve() / path)


def pattern_paths(ids: pd.Series, pattern: str | None, folder: Path) -> pd.Series:
    """Media path per item from a pattern; files that are absent are caught by the media check."""
    if not pattern:
        return empty_media(len(ids))
    return pd.Series(
        [str((folder / pattern.format(item_id=i)).resolve()) for i in ids], dtype=object
    )
