"""MMRec-format adapter: ``<name>.inter`` (userID itemID rating x_label) + one ``.npy`` feature
matrix per modality (row = itemID) + optional raw text keyed by another id.

The text file may be keyed by the ORIGINAL item ids; a second ``.inter`` file with the same rows
as the main one but original ids (``id_map_file``) then maps itemID -> original id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import field_validator, model_validator

from crossrec.config import StrictConfig, parse_params
from crossrec.data.adapters.base import (
    build_interactions,
    check_encoding,
    empty_media,
    register,
)
from crossrec.data.errors import DataValidationError
from crossrec.data.raw import RawData, attribute_columns
from crossrec.data.validation import (
    load_feature_matrix,
    parse_ids,
    parse_int_ids,
    read_table,
    require_columns,
)

logger = logging.getLogger(__name__)


class MMRecText(StrictConfig):
    file: str
    key_column: str
    columns: list[str]
    id_map_file: str | None = None
    id_map_item_column: str | None = None  # default: the main item column
    separator: str | None = None
    encoding: str | None = None  # default: the dataset's `encoding`
    #: text columns that are lists of values (tags: "rock,indie"): also the attributes modality
    categorical_columns: list[str] = []
    value_separator: str | None = "|"

    @field_validator("encoding")
    @classmethod
    def _encoding_known(cls, value: str | None) -> str | None:
        return check_encoding(value)

    @model_validator(mode="after")
    def _categorical_are_text_columns(self) -> MMRecText:
        unknown = [c for c in self.categorical_columns if c not in self.columns]
        if unknown:
            raise ValueError(f"categorical_columns {unknown} are not among columns {self.columns}")
        return self

    def attribute_columns(self) -> dict[str, dict]:
        """``RawData.attribute_columns`` of these options."""
        return attribute_columns(self.categorical_columns, [], self.value_separator)


class MMRecOptions(StrictConfig):
    inter_file: str
    user_column: str = "userID"
    item_column: str = "itemID"
    rating_column: str | None = "rating"
    timestamp_column: str | None = None
    split_column: str | None = "x_label"
    split_values: dict[str, str] = {"0": "train", "1": "valid", "2": "test"}
    features: dict[str, str] = {}
    text: MMRecText | None = None
    separator: str | None = None
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _encoding_known(cls, value: str) -> str:
        return check_encoding(value)


def original_item_ids(
    inter: pd.DataFrame,
    item_ids: np.ndarray,
    map_path: Path,
    column: str,
    sep: str | None,
    encoding: str = "utf-8",
) -> pd.Series:
    """itemID -> original id via a file row-aligned with the main .inter file."""
    mapping_table = read_table(map_path, sep=sep, encoding=encoding, role="id map")
    require_columns(mapping_table, [column], map_path)
    if len(mapping_table) != len(inter):
        raise DataValidationError(
            map_path,
            f"{len(mapping_table)} rows but the interactions file has {len(inter)}",
            expected="the same rows as the interactions file, with original ids",
        )
    original = parse_ids(mapping_table[column], map_path, column).to_numpy(dtype=object)
    pairs = pd.DataFrame({"item": item_ids, "original": original})
    counts = pairs.drop_duplicates().groupby("item")["original"].nunique()
    if (counts > 1).any():
        bad = counts[counts > 1].index[0]
        row = int(np.flatnonzero(pairs["item"].to_numpy() == bad)[0]) + 1
        raise DataValidationError(
            map_path,
            f"item {bad!r} maps to several original ids",
            row=row,
            column=column,
            expected="one original id per item (row-aligned files)",
        )
    return pairs.drop_duplicates("item").set_index("item")["original"]


@register("mmrec")
def read_mmrec(name: str, folder: Path, options: Mapping[str, Any]) -> RawData:
    opts = parse_params(
        MMRecOptions,
        dict(options),
        f"conf/base/parameters_ingest.yml: ingest.datasets.{name}.options",
    )
    inter_path = folder / opts.inter_file
    table = read_table(inter_path, sep=opts.separator, encoding=opts.encoding, role="interactions")
    interactions = build_interactions(
        table,
        inter_path,
        user=opts.user_column,
        item=opts.item_column,
        rating=opts.rating_column,
        timestamp=opts.timestamp_column,
        split=opts.split_column,
        split_values=opts.split_values,
    )
    item_int = parse_int_ids(table[opts.item_column], inter_path, opts.item_column)
    interactions["item_id"] = item_int.astype(str).astype(object)

    precomputed = {n: load_feature_matrix(folder / f) for n, f in sorted(opts.features.items())}
    n_rows = {m.shape[0] for m in precomputed.values()}
    if len(n_rows) > 1:
        shapes = {n: m.shape for n, m in precomputed.items()}
        raise DataValidationError(
            folder,
            f"feature matrices disagree on the item count {shapes}",
            expected="one row per itemID in every .npy",
        )
    n_items = n_rows.pop() if n_rows else int(item_int.max()) + 1
    too_big = item_int >= n_items
    if too_big.any():
        i = int(np.flatnonzero(too_big)[0])
        raise DataValidationError(
            inter_path,
            f"itemID {item_int[i]} has no feature row (matrices have {n_items} rows)",
            row=i + 1,
            column=opts.item_column,
            expected=f"itemID < {n_items}",
        )
    ids = np.arange(n_items)
    items = pd.DataFrame({"item_id": ids.astype(str).astype(object)})
    text_columns: list[str] = []
    files = {"interactions": str(inter_path)}
    if opts.text:
        text_path = folder / opts.text.file
        files["items"] = str(text_path)
        text = read_table(
            text_path,
            sep=opts.text.separator,
            encoding=opts.text.encoding or opts.encoding,
            role="text",
        )
        require_columns(text, [opts.text.key_column, *opts.text.columns], text_path)
        text = text.assign(
            _key=parse_ids(text[opts.text.key_column], text_path, opts.text.key_column)
        )
        if text["_key"].duplicated().any():
            i = int(np.flatnonzero(text["_key"].duplicated().to_numpy())[0])
            raise DataValidationError(
                text_path,
                f"duplicate key {text['_key'].iloc[i]!r}",
                row=i + 1,
                column=opts.text.key_column,
                expected="one text row per key",
            )
        if opts.text.id_map_file:
            map_path = folder / opts.text.id_map_file
            original = original_item_ids(
                table,
                item_int,
                map_path,
                opts.text.id_map_item_column or opts.item_column,
                opts.separator,
                opts.encoding,
            )
            keys = original.reindex(ids).to_numpy(dtype=object)
        else:
            keys = items["item_id"].to_numpy(dtype=object)
        lookup = text.set_index("_key")
        found = pd.Series(keys).isin(lookup.index).to_numpy()
        for column in opts.text.columns:
            values = lookup[column].fillna("").astype(str).reindex(keys).fillna("")
            items[column] = values.to_numpy(dtype=object)
        text_columns = list(opts.text.columns)
        if not found.all():
            logger.warning(
                "%s: %d of %d items have no row in %s (empty text)",
                name,
                int((~found).sum()),
                len(found),
                text_path,
            )
    items["image_path"] = empty_media(len(items))
    items["audio_path"] = empty_media(len(items))
    return RawData(
        name,
        interactions,
        items,
        text_columns,
        precomputed,
        files,
        has_timestamps=opts.timestamp_column is not None,
        id_columns={"user": opts.user_column, "item": opts.item_column},
        attribute_columns=opts.text.attribute_columns() if opts.text else {},
    )
