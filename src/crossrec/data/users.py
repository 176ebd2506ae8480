"""Who users are: a table of user attributes (age, sex, occupation, country ...), read for any
adapter from ``ingest.datasets.<name>.users`` and joined to the ``users`` table, and the same
attributes written as words ("age 20s, sex f, occupation engineer") for the query path."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from crossrec.config import StrictConfig
from crossrec.data.errors import DataValidationError
from crossrec.data.validation import parse_ids, read_table, require_columns

logger = logging.getLogger(__name__)

RESERVED = ("user_idx", "user_id", "is_cold")


class UsersConfig(StrictConfig):
    """A user attribute file: one row per user id (users without a row get empty values)."""

    file: str
    id_column: str = "user_id"
    categorical_columns: list[str] = []
    numeric_columns: list[str] = []
    #: a numeric value is written in words as its band of this width ("age 20s")
    numeric_band: float = Field(10.0, gt=0)
    separator: str | None = None
    encoding: str = "utf-8"

    @model_validator(mode="after")
    def _some_columns(self) -> UsersConfig:
        columns = [*self.categorical_columns, *self.numeric_columns]
        if not columns:
            raise ValueError("name at least one of categorical_columns / numeric_columns")
        clash = sorted(set(columns) & set(RESERVED))
        if clash:
            raise ValueError(f"attribute columns {clash} clash with the users table's own")
        return self

    @property
    def columns(self) -> list[str]:
        return [*self.categorical_columns, *self.numeric_columns]


def read_user_attributes(folder: Path, config: UsersConfig) -> pd.DataFrame:
    """``user_id`` + the configured columns (categorical as text, numeric as float)."""
    path = folder / config.file
    table = read_table(path, sep=config.separator, encoding=config.encoding, role="users")
    require_columns(table, [config.id_column, *config.columns], path)
    ids = parse_ids(table[config.id_column], path, config.id_column)
    if ids.duplicated().any():
        row = int(np.flatnonzero(ids.duplicated().to_numpy())[0])
        raise DataValidationError(
            path, f"duplicate user id {ids.iloc[row]!r}", row=row + 1, column=config.id_column,
            expected="one row per user",
        )
    out = pd.DataFrame({"user_id": ids.to_numpy(dtype=object)})
    for column in config.categorical_columns:
        out[column] = table[column].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    for column in config.numeric_columns:
        numbers = pd.to_numeric(table[column], errors="coerce")
        bad = numbers.isna().to_numpy() & table[column].notna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataValidationError(
                path, f"{table[column].iloc[row]!r} is not a number", row=row + 1,
                column=column, expected="a number or an empty cell",
            )
        out[column] = numbers.to_numpy(dtype=np.float64)
    return out


def attach_user_attributes(
    users: pd.DataFrame, folder: Path, config: UsersConfig | None, dataset: str
) -> pd.DataFrame:
    """The users table with the attribute columns (empty / NaN for users without a row)."""
    if config is None:
        return users
    attributes = read_user_attributes(folder, config)
    out = users.merge(attributes, on="user_id", how="left")
    missing = int(out[config.columns[0]].isna().sum())
    if missing:
        logger.warning(
            "%s: %d of %d users have no row in %s (their attributes are empty)",
            dataset, missing, len(out), folder / config.file,
        )
    for column in config.categorical_columns:
        out[column] = out[column].fillna("").astype(object)
    logger.info("%s: user attributes %s read for %d users", dataset, config.columns,
                len(out) - missing)
    return out


def attribute_words(
    table: pd.DataFrame, categorical: list[str], numeric: list[str], band: float = 10.0
) -> list[str]:
    """Each row's attributes as words: ``"age 20s, sex m, occupation technician"``; empty
    values are left out (a user with none gives "")."""
    parts: list[pd.Series] = []
    for column in numeric:
        values = pd.to_numeric(table[column], errors="coerce")
        low = (values // band * band).map(lambda v: "" if pd.isna(v) else f"{v:g}s")
        parts.append(low.map(lambda v, c=column: f"{c} {v}" if v else ""))
    for column in categorical:
        values = table[column].fillna("").astype(str).str.strip().str.lower()
        parts.append(values.map(lambda v, c=column: f"{c} {v}" if v else ""))
    if not parts:
        return [""] * len(table)
    frame = pd.concat(parts, axis=1)
    return [", ".join(v for v in row if v) for row in frame.itertuples(index=False)]


def attribute_columns(users: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(categorical, numeric) attribute columns of the users table (ingest's ``users``)."""
    own = {"user_idx", "user_id", "is_cold"}
    columns = [c for c in users.columns if c not in own]
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(users[c])]
    return [c for c in columns if c not in numeric], numeric


def user_words(users: pd.DataFrame, n_users: int) -> list[str]:
    """Attribute words per user_idx ("" for a user without attributes)."""
    categorical, numeric = attribute_columns(users)
    table = users.sort_values("user_idx")
    words = attribute_words(table, categorical, numeric)
    out = [""] * n_users
    for idx, text in zip(table["user_idx"].to_numpy(), words, strict=True):
        out[int(idx)] = text
    return out


def attribute_tokens(
    table: pd.DataFrame, categorical: list[str], numeric: list[str], band: float = 10.0
) -> list[list[str]]:
    """Each row's attribute values as tokens (``"sex=m"``, ``"age=20s"``): one per attribute
    with a value; numeric values by band, as in :func:`attribute_words`."""
    columns: list[list[str]] = []
    for column in numeric:
        values = pd.to_numeric(table[column], errors="coerce")
        columns.append(["" if pd.isna(v) else f"{column}={v // band * band:g}s" for v in values])
    for column in categorical:
        values = table[column].fillna("").astype(str).str.strip().str.lower()
        columns.append([f"{column}={v}" if v else "" for v in values])
    return [[t for t in row if t] for row in zip(*columns, strict=True)] if columns else [
        [] for _ in range(len(table))
    ]


def user_tokens(users: pd.DataFrame, n_users: int) -> list[list[str]]:
    """Attribute tokens per user_idx (none for a user without attributes)."""
    categorical, numeric = attribute_columns(users)
    table = users.sort_values("user_idx")
    out: list[list[str]] = [[] for _ in range(n_users)]
    rows = attribute_tokens(table, categorical, numeric)
    for idx, tokens in zip(table["user_idx"].to_numpy(), rows, strict=True):
        out[int(idx)] = tokens
    return out
