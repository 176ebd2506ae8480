"""Generic adapter: interactions CSV/parquet + item table with text and media-path columns."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from crossrec.config import StrictConfig, parse_params
from crossrec.data.adapters.base import build_interactions, empty_media, register
from crossrec.data.raw import RawData
from crossrec.data.validation import (
    parse_ids,
    read_table,
    require_columns,
    resolve_media_paths,
)


class GenericOptions(StrictConfig):
    """Column names of the two tables; paths are relative to the dataset folder."""

    interactions_file: str = "interactions.csv"
    items_file: str | None = "items.csv"
    separator: str | None = None
    user_column: str = "user"
    item_column: str = "item"
    rating_column: str | None = None
    timestamp_column: str | None = None
    split_column: str | None = None
    split_values: dict[str, str] | None = None
    item_id_column: str = "item"
    text_columns: list[str] = []
    image_column: str | None = None
    audio_column: str | None = None


@register("generic")
def read_generic(name: str, folder: Path, options: Mapping[str, Any]) -> RawData:
    """Read a generic dataset folder; without an item table, items are the interacted ids."""
    opts = parse_params(GenericOptions, dict(options),
                        f"conf/base/parameters_ingest.yml: ingest.datasets.{name}.options")
    inter_path = folder / opts.interactions_file
    raw = read_table(inter_path, sep=opts.separator, role="interactions")
    interactions = build_interactions(
        raw, inter_path, user=opts.user_column, item=opts.item_column,
        rating=opts.rating_column, timestamp=opts.timestamp_column,
        split=opts.split_column, split_values=opts.split_values,
    )
    files = {"interactions": str(inter_path)}
    if opts.items_file is None:
        ids = pd.Series(sorted(set(interactions["item_id"])), dtype=object)
        items = pd.DataFrame({"item_id": ids, "image_path": empty_media(len(ids)),
                              "audio_path": empty_media(len(ids))})
        return RawData(name, interactions, items, [], {}, files,
                       has_timestamps=opts.timestamp_column is not None)

    items_path = folder / opts.items_file
    files["items"] = str(items_path)
    table = read_table(items_path, sep=opts.separator, role="items")
    media_cols = [c for c in (opts.image_column, opts.audio_column) if c]
    require_columns(table, [opts.item_id_column, *opts.text_columns, *media_cols], items_path)
    items = pd.DataFrame({"item_id": parse_ids(table[opts.item_id_column], items_path,
                                               opts.item_id_column).to_numpy(dtype=object)})
    items["row"] = range(1, len(items) + 1)
    for column in opts.text_columns:
        items[column] = table[column].fillna("").astype(str).to_numpy(dtype=object)
    for role, column in (("image_path", opts.image_column), ("audio_path", opts.audio_column)):
        items[role] = (resolve_media_paths(table[column], folder, items_path, column)
                       if column else empty_media(len(items)))
    return RawData(name, interactions, items, list(opts.text_columns), {}, files,
                   has_timestamps=opts.timestamp_column is not None)
