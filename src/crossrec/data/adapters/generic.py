"""Generic adapter: your own data as an interactions table + an optional item table.

Files are CSV / TSV (``.tsv``, ``.tab``, ``.inter`` are read as tab-separated) or parquet, with a
header line; paths are relative to the dataset folder. Each file may be given as a plain path or
as ``{path, separator, encoding}`` to override the dataset-wide ``separator`` / ``encoding``.

Ids (users and items, in every table) are read as text by ONE rule: surrounding whitespace is
trimmed and an integer written as a float loses its ``.0`` (``7.0`` -> ``7``, what a spreadsheet
or a pandas float column writes); nothing else changes, so leading zeros and case are kept
(``07`` and ``7`` are two different ids, as zero-padded product codes are).

Media: either a column of paths in the item table (``image_column`` / ``audio_column``) or a path
pattern (``image_pattern: images/{item_id}.jpg``); paths are relative to the dataset folder.

Precomputed vectors: ``features`` maps a name to a ``.npy`` matrix whose row *i* is the item on
row *i* of the item table (vectors the user already has: image or text embeddings).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import field_validator, model_validator

from crossrec.config import StrictConfig, parse_params
from crossrec.data.adapters.base import (
    absolute_pattern,
    build_interactions,
    check_encoding,
    check_pattern,
    pattern_paths,
    register,
)
from crossrec.data.errors import DataValidationError
from crossrec.data.raw import RawData, attribute_columns
from crossrec.data.validation import (
    load_feature_matrix,
    parse_ids,
    read_table,
    require_columns,
    resolve_media_paths,
)


class TableFile(StrictConfig):
    """One file with its own reading options; None inherits the dataset-wide option."""

    path: str
    separator: str | None = None
    encoding: str | None = None

    @field_validator("encoding")
    @classmethod
    def _encoding_known(cls, value: str | None) -> str | None:
        return check_encoding(value)


class GenericOptions(StrictConfig):
    """Column names of the two tables; paths are relative to the dataset folder."""

    interactions_file: str | TableFile = "interactions.csv"
    items_file: str | TableFile | None = "items.csv"
    separator: str | None = None  # None: tab for .tsv/.tab/.inter, else comma
    encoding: str = "utf-8"
    user_column: str = "user"
    item_column: str = "item"
    rating_column: str | None = None
    timestamp_column: str | None = None
    split_column: str | None = None
    split_values: dict[str, str] | None = None
    item_id_column: str = "item"
    text_columns: list[str] = []
    #: structured item columns (read as text too): categories / tags, and numbers such as a
    #: year or a price; each becomes part of the ``attributes`` modality
    categorical_columns: list[str] = []
    numeric_columns: list[str] = []
    #: splits a categorical cell into several values ("Comedy|Drama"); None = one value
    value_separator: str | None = "|"
    image_column: str | None = None
    audio_column: str | None = None
    image_pattern: str | None = None
    audio_pattern: str | None = None
    #: precomputed vectors: name -> .npy with one row per item-table row, in file order
    features: dict[str, str] = {}

    @field_validator("encoding")
    @classmethod
    def _encoding_known(cls, value: str) -> str:
        return check_encoding(value)

    @field_validator("image_pattern", "audio_pattern")
    @classmethod
    def _pattern_names_item_id(cls, value: str | None) -> str | None:
        return check_pattern(value)

    @model_validator(mode="after")
    def _attribute_columns_once(self) -> GenericOptions:
        both = sorted(set(self.categorical_columns) & set(self.numeric_columns))
        if both:
            raise ValueError(f"{both} listed as both categorical_columns and numeric_columns")
        if self.items_file is None and self.attribute_columns():
            raise ValueError("categorical_columns / numeric_columns need an items_file")
        if self.items_file is None and self.features:
            raise ValueError("features need an items_file (row i of a .npy = row i of the table)")
        return self

    def attribute_columns(self) -> dict[str, dict]:
        """``RawData.attribute_columns`` of these options."""
        return attribute_columns(
            self.categorical_columns, self.numeric_columns, self.value_separator
        )

    def all_text_columns(self) -> list[str]:
        """The text columns, then the attribute columns not already among them."""
        extra = [c for c in self.attribute_columns() if c not in self.text_columns]
        return [*self.text_columns, *extra]

    @model_validator(mode="after")
    def _column_or_pattern(self) -> GenericOptions:
        for modality in ("image", "audio"):
            if getattr(self, f"{modality}_column") and getattr(self, f"{modality}_pattern"):
                raise ValueError(f"give either {modality}_column or {modality}_pattern, not both")
        return self

    def table(self, spec: str | TableFile) -> TableFile:
        """The file spec with the dataset-wide separator / encoding filled in."""
        spec = TableFile(path=spec) if isinstance(spec, str) else spec
        return TableFile(
            path=spec.path,
            separator=spec.separator or self.separator,
            encoding=spec.encoding or self.encoding,
        )


def read_file(folder: Path, spec: TableFile, role: str) -> tuple[Path, pd.DataFrame]:
    path = folder / spec.path
    return path, read_table(path, sep=spec.separator, encoding=spec.encoding, role=role)


def item_feature_matrices(
    folder: Path, features: Mapping[str, str], n_rows: int, items_path: Path
) -> dict[str, np.ndarray]:
    """name -> (n_rows, d) float32 matrix, one row per item-table row."""
    out = {}
    for name, file in sorted(features.items()):
        path = folder / file
        matrix = load_feature_matrix(path, rows="row of the item table")
        if matrix.shape[0] != n_rows:
            raise DataValidationError(
                path,
                f"{matrix.shape[0]} rows but the item table {items_path} has {n_rows}",
                expected="row i = the item on row i of the item table",
            )
        out[name] = matrix
    return out


@register("generic")
def read_generic(name: str, folder: Path, options: Mapping[str, Any]) -> RawData:
    """Read a generic dataset folder; without an item table, items are the interacted ids."""
    opts = parse_params(
        GenericOptions,
        dict(options),
        f"conf/base/parameters_ingest.yml: ingest.datasets.{name}.options",
    )
    inter_path, raw = read_file(folder, opts.table(opts.interactions_file), "interactions")
    interactions = build_interactions(
        raw,
        inter_path,
        user=opts.user_column,
        item=opts.item_column,
        rating=opts.rating_column,
        timestamp=opts.timestamp_column,
        split=opts.split_column,
        split_values=opts.split_values,
    )
    files = {"interactions": str(inter_path)}
    patterns = {
        role: absolute_pattern(pattern, folder)
        for role, pattern in (
            ("image_path", opts.image_pattern),
            ("audio_path", opts.audio_pattern),
        )
    }
    common = {
        "has_timestamps": opts.timestamp_column is not None,
        "id_columns": {"user": opts.user_column, "item": opts.item_column},
        "media_patterns": {role: p for role, p in patterns.items() if p},
    }
    if opts.items_file is None:
        ids = pd.Series(sorted(set(interactions["item_id"])), dtype=object)
        items = pd.DataFrame(
            {
                "item_id": ids,
                "image_path": pattern_paths(ids, opts.image_pattern, folder),
                "audio_path": pattern_paths(ids, opts.audio_pattern, folder),
            }
        )
        return RawData(name, interactions, items, [], {}, files, **common)

    items_path, table = read_file(folder, opts.table(opts.items_file), "items")
    files["items"] = str(items_path)
    media_cols = [c for c in (opts.image_column, opts.audio_column) if c]
    text_columns = opts.all_text_columns()
    require_columns(table, [opts.item_id_column, *text_columns, *media_cols], items_path)
    ids = parse_ids(table[opts.item_id_column], items_path, opts.item_id_column)
    items = pd.DataFrame({"item_id": ids.to_numpy(dtype=object)})
    items["row"] = range(1, len(items) + 1)
    for column in text_columns:
        items[column] = table[column].fillna("").astype(str).to_numpy(dtype=object)
    for modality in ("image", "audio"):
        column, pattern = getattr(opts, f"{modality}_column"), getattr(opts, f"{modality}_pattern")
        items[f"{modality}_path"] = (
            resolve_media_paths(table[column], folder, items_path, column)
            if column
            else pattern_paths(ids, pattern, folder)
        )
    precomputed = item_feature_matrices(folder, opts.features, len(items), items_path)
    return RawData(
        name,
        interactions,
        items,
        text_columns,
        precomputed,
        files,
        attribute_columns=opts.attribute_columns(),
        **common,
    )
