"""Increments: new interactions and new items appended to an ingested dataset.

One format for every adapter, because an increment arrives after ingest: adapters translate a
source's historic dump (MovieLens' ``u.data``, mmrec's ``.inter`` ...) into the canonical
columns once, and new batches are written in those canonical columns directly. Each increment
is a folder ``<raw root>/<dataset>/increments/<name>/`` (applied in name order, so name them
``0001-2026-11-30`` ...) holding

* ``interactions.csv`` (or ``.tsv`` / ``.parquet``): ``user_id, item_id, timestamp`` and
  optionally ``rating`` (without one every row is a positive); ``timestamp`` is required when
  the dataset has timestamps (unix seconds or ISO dates);
* optionally ``items.csv``: ``item_id``, any of the dataset's text columns, ``image_path`` /
  ``audio_path`` (relative to the increment folder, or absolute inside the dataset folder);
* for datasets that ship precomputed feature vectors instead of raw media (Last.fm's VGGish /
  whisper vectors, MMRec's ``.npy`` matrices): ``features/<name>.npy``, one float matrix per
  precomputed feature the model uses, row *i* = the item on row *i* of ``items.csv`` (as ingest
  reads them: one row per item). A row of zeros means "no vector for this item" (masked, as at
  ingest). Every precomputed feature the model uses needs a file when new items arrive; the
  dimension must be the dataset's; a name the model does not use, a row count other than the
  items table's, non-finite values or vectors without an items table fail naming the file.

Reading one: :mod:`crossrec.data.increment_files`. Applying one (:func:`apply_increment`)
keeps every existing ``user_idx`` / ``item_idx`` and appends new users and items after them, in
natural id order. Rules (every one logged):

* a column the format does not know fails naming the file and the column;
* an interaction that repeats a known (user, item) pair (or one earlier in the increment)
  fails (``duplicates: error``, default) or is dropped with a count (``duplicates: skip``);
* an interaction older than the newest one already ingested fails (``older_than_seen: error``,
  default) or is accepted (``accept``: late events);
* an item in ``items.csv`` that is already in the catalogue fails (content updates are not
  supported: they would change a known item's vectors); an interaction naming an item that is
  neither in the catalogue nor in ``items.csv`` fails with its row;
* ``implicit.min_rating`` of ingest applies to increments too;
* split labels: ``valid_share`` of the increment's rows (seeded per increment) go to
  ``valid``, the others to ``train``; labels of ingested rows never change.

Nothing is modified in place: a bad increment raises before anything is returned, so the
previous tables (and the model trained on them) stay as they were.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from crossrec.data.errors import DataValidationError
from crossrec.data.media import check_media
from crossrec.data.validation import natural_order

logger = logging.getLogger(__name__)

INCREMENTS_DIR = "increments"
MEDIA_COLUMNS = ("image_path", "audio_path")


@dataclass(frozen=True)
class IncrementRules:
    """How :func:`apply_increment` treats imperfect rows (the ``refresh.increments`` block)."""

    duplicates: Literal["error", "skip"] = "error"
    older_than_seen: Literal["error", "accept"] = "error"
    valid_share: float = 0.1
    min_rating: float | None = None


@dataclass
class Increment:
    """One batch as read from its folder (ids as text, not yet indexed)."""

    name: str
    interactions: pd.DataFrame  # user_id, item_id, rating, timestamp, row
    items: pd.DataFrame  # item_id, text columns, image_path, audio_path
    files: dict[str, str] = field(default_factory=dict)
    #: precomputed feature name -> (len(items), d) vectors, rows aligned to ``items``
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DatasetTables:
    """Ingest's artifacts (schemas: docs/architecture.md "ingest")."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    dataset_info: dict
    #: precomputed feature name -> {item_id: vector} of the items increments appended to these
    #: tables (``features/<name>.npy``); the refresh turns them into those items' features
    item_vectors: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def applied(self) -> list[str]:
        """Names of the increments already in these tables, in order."""
        return list(self.dataset_info.get("increments", []))


def first_bad(
    path: Path | str,
    frame: pd.DataFrame,
    bad: np.ndarray,
    problem: Callable[[pd.Series, int], str],
    *,
    column: str | None,
    expected: str,
) -> DataValidationError:
    """The error naming the first flagged row of ``frame`` (its ``row`` column when it has one,
    else its position + 1); ``problem(first_row, n_flagged)`` says what is wrong."""
    i = int(np.flatnonzero(bad)[0])
    first = frame.iloc[i]
    row = int(first["row"]) if "row" in frame.columns else i + 1
    return DataValidationError(
        path, problem(first, int(bad.sum())), row=row, column=column, expected=expected
    )


def _increment_seed(name: str, seed: int) -> int:
    digest = hashlib.sha256(f"{name}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _new_ids(ids: pd.Series, known: pd.Series) -> list[str]:
    return natural_order(sorted(set(ids) - set(known)))


def _check_time(inc: Increment, newest: int, rule: str, path: str) -> None:
    older = inc.interactions["timestamp"].to_numpy() < newest
    if not older.any():
        return
    if rule == "error":
        raise first_bad(
            path,
            inc.interactions,
            older,
            lambda r, n: (
                f"{n} interaction(s) older than the newest one already ingested "
                f"(timestamp {newest}); first: {int(r['timestamp'])}"
            ),
            column="timestamp",
            expected="increments in time order (or refresh.increments.older_than_seen: accept)",
        )
    logger.warning(
        "%s: %d interaction(s) older than the newest ingested one accepted "
        "(older_than_seen: accept)",
        path,
        int(older.sum()),
    )


def _drop_duplicates(frame: pd.DataFrame, known: set, rule: str, path: str) -> pd.DataFrame:
    pairs = list(zip(frame["user_idx"].to_numpy(), frame["item_idx"].to_numpy(), strict=True))
    repeated = np.array([p in known for p in pairs], dtype=bool)
    repeated |= pd.Series(pairs, dtype=object).duplicated().to_numpy()
    if not repeated.any():
        return frame
    if rule == "error":
        raise first_bad(
            path,
            frame,
            repeated,
            lambda r, n: (
                f"{n} interaction(s) repeat a known (user, item) pair; first: "
                f"user {r['user_id']!r}, item {r['item_id']!r}"
            ),
            column=None,
            expected="only new (user, item) pairs (or refresh.increments.duplicates: skip)",
        )
    logger.warning(
        "%s: skipped %d interaction(s) repeating a known (user, item) pair (duplicates: skip)",
        path,
        int(repeated.sum()),
    )
    return frame[~repeated]


def _append_items(
    tables: DatasetTables,
    inc: Increment,
    text_columns: list[str],
    root: Path | None,
    max_bad_share: float,
) -> tuple[pd.DataFrame, list[dict]]:
    """The item table with the increment's new items appended (media checked)."""
    path = inc.files.get("items", "<no items file>")
    known = inc.items["item_id"].isin(set(tables.items["item_id"])).to_numpy()
    if known.any():
        raise first_bad(
            path,
            inc.items,
            known,
            lambda r, n: f"item {r['item_id']!r} is already in the catalogue",
            column="item_id",
            expected="only new items (changing a known item's content is not supported)",
        )
    if inc.items.empty:
        return tables.items, []
    order = natural_order(inc.items["item_id"].tolist())
    new = inc.items.set_index("item_id").loc[order].reset_index()
    new, report = check_media(
        new, max_bad_share=max_bad_share, workers=4, items_file=path, root=root
    )
    new.insert(0, "item_idx", np.arange(len(tables.items), len(tables.items) + len(new)))
    new["is_cold"] = False
    for column in text_columns + list(MEDIA_COLUMNS):
        if column not in new:
            new[column] = "" if column in text_columns else None
    items = pd.concat([tables.items, new[list(tables.items.columns)]], ignore_index=True)
    return same_dtypes(items, tables.items), report


def apply_increment(
    tables: DatasetTables,
    inc: Increment,
    rules: IncrementRules,
    seed: int,
    media_root: Path | None = None,
    max_bad_share: float = 0.05,
) -> tuple[DatasetTables, dict]:
    """``tables`` with the increment appended (indices of known users / items unchanged).

    Returns the new tables and a report ``{name, interactions, skipped_*, new_users, new_items,
    media_report}``. Raises :class:`DataValidationError` (file, row, column) on a bad increment.
    """
    info = tables.dataset_info
    path = inc.files.get("interactions", inc.name)
    if inc.name in tables.applied:
        raise DataValidationError(
            path,
            f"increment {inc.name!r} was already applied",
            expected=f"a name not in {tables.applied}",
        )
    text_columns = list(info.get("text_columns", []))
    items, media_report = _append_items(tables, inc, text_columns, media_root, max_bad_share)
    frame = inc.interactions
    n_read = len(frame)
    if rules.min_rating is not None:
        frame = frame[frame["rating"].to_numpy() >= rules.min_rating]
    item_map = pd.Series(items["item_idx"].to_numpy(), index=items["item_id"].to_numpy())
    unknown = ~frame["item_id"].isin(item_map.index).to_numpy()
    if unknown.any():
        raise first_bad(
            path,
            frame,
            unknown,
            lambda r, n: (
                f"item {r['item_id']!r} is neither in the catalogue nor in the "
                "increment's items table"
            ),
            column="item_id",
            expected="a known item id, or a row for it in the increment's items file",
        )
    if info.get("has_timestamps") and len(tables.interactions):
        _check_time(inc, int(tables.interactions["timestamp"].max()), rules.older_than_seen, path)
    new_users = _new_ids(frame["user_id"], tables.users["user_id"])
    users = pd.concat(
        [
            tables.users,
            pd.DataFrame(
                {
                    "user_idx": np.arange(len(tables.users), len(tables.users) + len(new_users)),
                    "user_id": pd.Series(new_users, dtype=object),
                }
            ),
        ],
        ignore_index=True,
    )
    users = same_dtypes(users, tables.users)
    user_map = pd.Series(users["user_idx"].to_numpy(), index=users["user_id"].to_numpy())
    frame = frame.assign(
        user_idx=user_map.loc[frame["user_id"].to_numpy()].to_numpy(),
        item_idx=item_map.loc[frame["item_id"].to_numpy()].to_numpy(),
    )
    known = set(
        zip(
            tables.interactions["user_idx"].to_numpy(),
            tables.interactions["item_idx"].to_numpy(),
            strict=True,
        )
    )
    kept = _drop_duplicates(frame, known, rules.duplicates, path)
    rng = np.random.default_rng(_increment_seed(inc.name, seed))
    split = np.where(rng.random(len(kept)) < rules.valid_share, "valid", "train")
    added = pd.DataFrame(
        {
            "user_idx": kept["user_idx"].to_numpy(np.int64),
            "item_idx": kept["item_idx"].to_numpy(np.int64),
            "rating": kept["rating"].to_numpy(np.float32),
            "timestamp": kept["timestamp"].to_numpy(np.int64),
            "split": split.astype(object),
        }
    )
    interactions = (
        pd.concat([tables.interactions, added], ignore_index=True)
        .sort_values(["user_idx", "timestamp", "item_idx"], kind="stable")
        .reset_index(drop=True)
    )
    interactions = same_dtypes(interactions, tables.interactions)
    items = _update_cold(items, interactions)
    new_info = {
        **info,
        "n_users": int(len(users)),
        "n_items": int(len(items)),
        "n_interactions": int(len(interactions)),
        "has_images": bool(items["image_path"].notna().any()),
        "has_audio": bool(items["audio_path"].notna().any()),
        "increments": [*tables.applied, inc.name],
    }
    report = {
        "name": inc.name,
        "rows_read": n_read,
        "interactions": int(len(added)),
        "skipped_below_min_rating": int(n_read - len(frame)),
        "skipped_duplicates": int(len(frame) - len(kept)),
        "new_users": len(new_users),
        "new_items": int(len(items) - len(tables.items)),
        "media_report": media_report,
    }
    logger.info(
        "increment %s: %d interactions, %d new users, %d new items",
        inc.name,
        report["interactions"],
        report["new_users"],
        report["new_items"],
    )
    vectors = _append_vectors(tables.item_vectors, inc)
    return DatasetTables(interactions, items, users, new_info, vectors), report


def _append_vectors(known: dict, inc: Increment) -> dict[str, dict[str, np.ndarray]]:
    """``known`` plus the increment's new items' vectors, by item id (new dicts: no mutation)."""
    ids = inc.items["item_id"].tolist()
    out = {name: dict(rows) for name, rows in known.items()}
    for name, matrix in inc.vectors.items():
        out.setdefault(name, {}).update(zip(ids, matrix, strict=True))
    return out


def same_dtypes(frame: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the column dtypes of ``like`` (appending must not change a schema)."""
    return frame.astype(like.dtypes.to_dict())


def _update_cold(items: pd.DataFrame, interactions: pd.DataFrame) -> pd.DataFrame:
    """An item of the cold-start holdout stops being cold once it has train interactions."""
    if "is_cold" not in items or not items["is_cold"].any():
        return items
    trained = interactions.loc[interactions["split"] == "train", "item_idx"].unique()
    warm = items["is_cold"].to_numpy() & np.isin(items["item_idx"].to_numpy(), trained)
    if not warm.any():
        return items
    return replace_column(items, "is_cold", items["is_cold"].to_numpy() & ~warm)


def replace_column(frame: pd.DataFrame, column: str, values: np.ndarray) -> pd.DataFrame:
    out = frame.copy()
    out[column] = values
    return out


__all__ = [
    "DatasetTables",
    "Increment",
    "IncrementRules",
    "apply_increment",
]
