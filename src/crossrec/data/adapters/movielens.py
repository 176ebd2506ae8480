"""MovieLens-style multimodal adapter: ratings table + item table with genre flag columns, a
year, plot text and one image per item found by a path pattern (e.g. posters/{item_id}.jpg)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import field_validator

from crossrec.config import StrictConfig, parse_params
from crossrec.data.adapters.base import (
    absolute_pattern,
    build_interactions,
    check_encoding,
    pattern_paths,
    register,
)
from crossrec.data.errors import DataValidationError
from crossrec.data.raw import RawData, attribute_columns
from crossrec.data.validation import parse_ids, read_table, require_columns


class RatingsColumns(StrictConfig):
    user: str = "user_id"
    item: str = "movie_id"
    rating: str | None = "rating"
    timestamp: str | None = "unix_timestamp"


class MovieLensOptions(StrictConfig):
    ratings_file: str = "ratings.csv"
    ratings_columns: RatingsColumns = RatingsColumns()
    items_file: str = "items.csv"
    item_id_column: str = "movie_id"
    text_columns: list[str] = ["title", "overview"]
    genre_columns: list[str] = []
    genres_text_column: str = "genres"
    year_column: str | None = "year"
    image_pattern: str | None = "posters/{item_id}.jpg"
    audio_pattern: str | None = None
    separator: str | None = None
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _encoding_known(cls, value: str) -> str:
        return check_encoding(value)


def genres_text(table: pd.DataFrame, columns: list[str], file: Path) -> np.ndarray:
    """Genre flag columns (0/1) -> 'Action, Comedy' (a 'genre_' prefix is dropped)."""
    names = [c.removeprefix("genre_") for c in columns]
    flags = np.zeros((len(table), len(columns)), dtype=bool)
    for j, column in enumerate(columns):
        values = table[column].fillna("0").astype(str).str.strip()
        bad = ~values.isin(["0", "1", "0.0", "1.0"])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataValidationError(
                file,
                f"genre flag {table[column].iloc[i]!r}",
                row=i + 1,
                column=column,
                expected="0 or 1",
            )
        flags[:, j] = values.isin(["1", "1.0"]).to_numpy()
    return np.array(
        [", ".join(n for n, f in zip(names, row, strict=True) if f) for row in flags], dtype=object
    )


def year_text(values: pd.Series) -> np.ndarray:
    """'1995.0' -> '1995'; empty stays empty (the year is text for the language model)."""
    numbers = pd.to_numeric(values, errors="coerce")
    text = values.fillna("").astype(str).str.strip()
    integral = numbers.notna() & (numbers == np.round(numbers))
    text = text.where(~integral, numbers[integral].astype("Int64").astype(str))
    return text.to_numpy(dtype=object)


@register("movielens_multimodal")
def read_movielens(name: str, folder: Path, options: Mapping[str, Any]) -> RawData:
    opts = parse_params(
        MovieLensOptions,
        dict(options),
        f"conf/base/parameters_ingest.yml: ingest.datasets.{name}.options",
    )
    ratings_path = folder / opts.ratings_file
    cols = opts.ratings_columns
    interactions = build_interactions(
        read_table(ratings_path, sep=opts.separator, encoding=opts.encoding, role="ratings"),
        ratings_path,
        user=cols.user,
        item=cols.item,
        rating=cols.rating,
        timestamp=cols.timestamp,
    )

    items_path = folder / opts.items_file
    table = read_table(items_path, sep=opts.separator, encoding=opts.encoding, role="items")
    year = [opts.year_column] if opts.year_column else []
    require_columns(
        table, [opts.item_id_column, *opts.text_columns, *opts.genre_columns, *year], items_path
    )
    ids = parse_ids(table[opts.item_id_column], items_path, opts.item_id_column)
    items = pd.DataFrame({"item_id": ids.to_numpy(dtype=object)})
    text_columns = list(opts.text_columns)
    for column in opts.text_columns:
        items[column] = table[column].fillna("").astype(str).to_numpy(dtype=object)
    if opts.genre_columns:
        items[opts.genres_text_column] = genres_text(table, opts.genre_columns, items_path)
        text_columns.append(opts.genres_text_column)
    if opts.year_column:
        items[opts.year_column] = year_text(table[opts.year_column])
        text_columns.append(opts.year_column)
    items["image_path"] = pattern_paths(ids, opts.image_pattern, folder)
    items["audio_path"] = pattern_paths(ids, opts.audio_pattern, folder)
    # the genres and the year are also structured attributes (crossrec.encoders.attributes)
    attributes = attribute_columns(
        [opts.genres_text_column] if opts.genre_columns else [],
        [opts.year_column] if opts.year_column else [],
        separator=", ",  # as genres_text joins them
    )
    return RawData(
        name,
        interactions,
        items,
        text_columns,
        {},
        {"interactions": str(ratings_path), "items": str(items_path)},
        has_timestamps=cols.timestamp is not None,
        id_columns={"user": cols.user, "item": cols.item},
        attribute_columns=attributes,
        media_patterns=_patterns(opts, folder),
    )


def _patterns(opts: MovieLensOptions, folder: Path) -> dict[str, str]:
    pairs = {
        "image_path": absolute_pattern(opts.image_pattern, folder),
        "audio_path": absolute_pattern(opts.audio_pattern, folder),
    }
    return {role: pattern for role, pattern in pairs.items() if pattern}
