"""Reading an increment folder (the format is described in :mod:`crossrec.data.increments`):
its interactions, its new items with their media, and their precomputed vectors, each checked
as ingest checks its files, failing with the file, the row and the column."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from crossrec.data.errors import DataValidationError
from crossrec.data.increments import INCREMENTS_DIR, MEDIA_COLUMNS, Increment, first_bad
from crossrec.data.validation import (
    load_feature_matrix,
    parse_ids,
    parse_ratings,
    parse_timestamps,
    read_table,
)

FEATURES_DIR = "features"
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "rating")


def list_increments(dataset_folder: Path, folder: str = INCREMENTS_DIR) -> list[Path]:
    """Increment folders of a dataset, in name order (none: empty list)."""
    root = Path(dataset_folder) / folder
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))



def _table(folder: Path, stem: str, required: bool) -> Path | None:
    found = [folder / f"{stem}{s}" for s in TABLE_SUFFIXES if (folder / f"{stem}{s}").is_file()]
    if len(found) > 1:
        raise DataValidationError(
            folder, f"several {stem} tables {[p.name for p in found]}", expected=f"one {stem} file"
        )
    if not found and required:
        raise DataValidationError(
            folder / f"{stem}.csv",
            "increment has no interactions table",
            expected=f"{stem}{{{','.join(TABLE_SUFFIXES)}}} in the increment folder",
        )
    return found[0] if found else None


def _reject_unknown_columns(frame: pd.DataFrame, allowed: list[str], path: Path) -> None:
    unknown = [str(c) for c in frame.columns if c not in allowed]
    if unknown:
        raise DataValidationError(
            path,
            f"unknown column(s) {unknown}",
            column=unknown[0],
            expected=f"only the increment format's columns {allowed}",
        )


def read_vectors(
    folder: Path, items: pd.DataFrame, dims: Mapping[str, int], items_path: Path | None
) -> dict[str, np.ndarray]:
    """``features/<name>.npy`` of an increment, checked against its items and ``dims`` (the
    model's precomputed features: name -> dimension)."""
    root = folder / FEATURES_DIR
    files = sorted(root.glob("*.npy")) if root.is_dir() else []
    if files and items_path is None:
        raise DataValidationError(
            files[0], "feature vectors without an items table", expected="items.csv beside them"
        )
    vectors = {}
    for path in files:
        if path.stem not in dims:
            raise DataValidationError(
                path,
                f"unknown precomputed feature {path.stem!r}",
                expected=f"one of the model's precomputed features {sorted(dims)}",
            )
        matrix = load_feature_matrix(path, "items-table row")  # 2-D, numeric, finite
        if matrix.shape[0] != len(items):
            raise DataValidationError(
                path,
                f"{matrix.shape[0]} vectors for the {len(items)} items of {items_path.name}",
                expected="one row per items-table row, in its order",
            )
        if matrix.shape[1] != dims[path.stem]:
            raise DataValidationError(
                path,
                f"{matrix.shape[1]}-d vectors",
                expected=f"{dims[path.stem]}-d, the dimension of the dataset's {path.stem!r}",
            )
        vectors[path.stem] = matrix
    missing = sorted(set(dims) - set(vectors))
    if missing and len(items):
        raise DataValidationError(
            root / f"{missing[0]}.npy",
            f"no vectors for the {len(items)} new item(s) of {items_path.name}",
            expected=f"features/<name>.npy for each of the model's precomputed features {missing}",
        )
    return vectors


def read_increment(
    folder: Path,
    text_columns: list[str],
    has_timestamps: bool,
    precomputed: Mapping[str, int] | None = None,
) -> Increment:
    """Read and check one increment folder (columns, ids, ratings, timestamps, media paths, and
    the vectors of ``precomputed``: the model's precomputed features, name -> dimension)."""
    folder = Path(folder)
    path = _table(folder, "interactions", required=True)
    frame = read_table(path, role="interactions")
    _reject_unknown_columns(frame, list(INTERACTION_COLUMNS), path)
    required = ["user_id", "item_id"] + (["timestamp"] if has_timestamps else [])
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataValidationError(
            path,
            f"missing column(s) {missing}",
            column=missing[0],
            expected=f"columns {required} (+ optional rating)",
        )
    interactions = pd.DataFrame(
        {
            "user_id": parse_ids(frame["user_id"], path, "user_id").to_numpy(dtype=object),
            "item_id": parse_ids(frame["item_id"], path, "item_id").to_numpy(dtype=object),
            "rating": (
                parse_ratings(frame["rating"], path, "rating")
                if "rating" in frame
                else np.ones(len(frame), dtype=np.float32)
            ),
            "timestamp": (
                parse_timestamps(frame["timestamp"], path, "timestamp")
                if "timestamp" in frame
                else np.full(len(frame), -1, dtype=np.int64)
            ),
            "row": np.arange(1, len(frame) + 1, dtype=np.int64),
        }
    )
    files = {"interactions": str(path)}
    items = pd.DataFrame({"item_id": pd.Series([], dtype=object)})
    items_path = _table(folder, "items", required=False)
    if items_path is not None:
        table = read_table(items_path, role="items")
        _reject_unknown_columns(table, ["item_id", *text_columns, *MEDIA_COLUMNS], items_path)
        if "item_id" not in table.columns:
            raise DataValidationError(items_path, "missing column 'item_id'", column="item_id")
        items = pd.DataFrame({"item_id": parse_ids(table["item_id"], items_path, "item_id")})
        repeated = items["item_id"].duplicated().to_numpy()
        if repeated.any():
            raise first_bad(
                items_path,
                items,
                repeated,
                lambda r, n: f"item {r['item_id']!r} is listed twice",
                column="item_id",
                expected="one row per item",
            )
        for column in text_columns:
            items[column] = (
                table[column].fillna("").astype(str)
                if column in table
                else pd.Series([""] * len(table), dtype=object)
            )
        for column in MEDIA_COLUMNS:
            values = table[column] if column in table else pd.Series([None] * len(table))
            items[column] = [
                None
                if pd.isna(v) or str(v).strip() == ""
                else str((folder / str(v).strip()).resolve())
                for v in values
            ]
        files["items"] = str(items_path)
    items = items.reset_index(drop=True)
    vectors = read_vectors(folder, items, precomputed or {}, items_path)
    return Increment(folder.name, interactions, items, files, vectors)
