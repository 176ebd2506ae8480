"""Words users wrote about items, as requests: ``(user, item, text, split)``.

Two sources, one per dataset (``ingest.datasets.<name>.words``):

* ``file``: rows of (user, item, text) the data holds — tags a user gave an item, reviews,
  search logs. Several rows of one (user, item) pair are one request, their texts joined.
* ``item_columns``: the category-path protocol of personalized product search (Ai et al.,
  SIGIR 2017): the request of a (user, item) interaction is the item's own categories
  (``"1990s comedy, romance"``); many items match, so the history has to choose among them.

A request takes the split of its interaction (``none`` when the pair is not an interaction).
Words of valid / test pairs never reach training or the item text: ``item_text_column``
rebuilds that item text column from the words of the other pairs only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import model_validator

from crossrec.config import StrictConfig
from crossrec.data.errors import DataValidationError
from crossrec.data.validation import parse_ids, read_table, require_columns

logger = logging.getLogger(__name__)

#: Splits whose words must never reach training or item text.
HELD_OUT = ("valid", "test")
#: Columns of the ``word_requests`` table.
REQUEST_COLUMNS = ["user_idx", "item_idx", "text", "split"]


class WordsLookup(StrictConfig):
    """``text_column`` holds keys of this table (tag ids -> tag names)."""

    file: str
    key_column: str
    value_column: str
    separator: str | None = None
    encoding: str | None = None


class WordsIdMap(StrictConfig):
    """The words file uses original ids: ``original_file`` and ``ids_file`` are row-aligned
    tables (original ids, the dataset's ids) that translate them."""

    original_file: str
    ids_file: str
    user_column: str
    item_column: str
    separator: str | None = None


class WordsConfig(StrictConfig):
    """Where a dataset's words come from (exactly one of ``file`` / ``item_columns``)."""

    file: str | None = None
    user_column: str = "user"
    item_column: str = "item"
    text_column: str = "text"
    separator: str | None = None
    encoding: str = "utf-8"
    lookup: WordsLookup | None = None
    id_map: WordsIdMap | None = None
    #: category-path requests: these item columns (their values lower-cased) ...
    item_columns: list[str] = []
    #: ... preceded by this numeric column written as a decade ("1995" -> "1990s")
    decade_column: str | None = None
    #: rebuild this item text column from the words of pairs outside valid / test
    item_text_column: str | None = None
    #: how the words of one pair (and of one item's rebuilt text) are joined
    join: str = ", "

    @model_validator(mode="after")
    def _one_source(self) -> WordsConfig:
        has_columns = bool(self.item_columns or self.decade_column)
        if bool(self.file) == has_columns:
            raise ValueError("set exactly one of `file` (user words) or `item_columns`")
        if self.item_text_column and not self.file:
            raise ValueError("item_text_column needs `file`: it is rebuilt from user words")
        return self


def decade(values: pd.Series) -> pd.Series:
    """'1995' / '1995.0' -> '1990s'; anything that is not a year -> ''."""
    years = pd.to_numeric(values, errors="coerce")
    out = (years // 10 * 10).map(lambda y: "" if pd.isna(y) else f"{int(y)}s")
    return out.astype(object)


def item_column_words(items: pd.DataFrame, config: WordsConfig, file: str) -> pd.Series:
    """One request text per item from its own columns (item_idx order of ``items``)."""
    columns = [*([config.decade_column] if config.decade_column else []), *config.item_columns]
    require_columns(items, columns, file)
    parts = []
    if config.decade_column:
        parts.append(decade(items[config.decade_column]))
    for column in config.item_columns:
        parts.append(items[column].fillna("").astype(str).str.strip().str.lower())
    frame = pd.concat(parts, axis=1)
    return frame.apply(lambda row: " ".join(v for v in row if v), axis=1)


def read_word_pairs(folder: Path, config: WordsConfig) -> pd.DataFrame:
    """``user_id, item_id, text`` rows of the words file (ids as the dataset's ids)."""
    path = folder / str(config.file)
    table = read_table(path, sep=config.separator, encoding=config.encoding, role="words")
    require_columns(table, [config.user_column, config.item_column, config.text_column], path)
    users = parse_ids(table[config.user_column], path, config.user_column)
    items = parse_ids(table[config.item_column], path, config.item_column)
    text = table[config.text_column].fillna("").astype(str).str.strip()
    if config.lookup is not None:
        lookup_path = folder / config.lookup.file
        names = read_table(
            lookup_path,
            sep=config.lookup.separator,
            encoding=config.lookup.encoding or config.encoding,
            role="words lookup",
        )
        require_columns(names, [config.lookup.key_column, config.lookup.value_column], lookup_path)
        keys = parse_ids(names[config.lookup.key_column], lookup_path, config.lookup.key_column)
        values = names[config.lookup.value_column].fillna("").astype(str).str.strip()
        mapped = text.map(pd.Series(values.to_numpy(), index=keys.to_numpy()))
        missing = mapped.isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise DataValidationError(
                path,
                f"{int(missing.sum())} rows name a key absent from {lookup_path} "
                f"(first: {text.iloc[i]!r})",
                row=i + 1,
                column=config.text_column,
                expected=f"keys of {config.lookup.key_column!r} in {config.lookup.file}",
            )
        text = mapped.astype(str)
    if config.id_map is not None:
        users, items = _map_original_ids(folder, config.id_map, users, items)
    pairs = pd.DataFrame({"user_id": users, "item_id": items, "text": text})
    empty = pairs["text"].eq("").to_numpy()
    if empty.any():
        logger.info("%s: %d rows with empty words skipped", path, int(empty.sum()))
    return pairs[~empty].reset_index(drop=True)


def _map_original_ids(
    folder: Path, id_map: WordsIdMap, users: pd.Series, items: pd.Series
) -> tuple[pd.Series, pd.Series]:
    original_path, ids_path = folder / id_map.original_file, folder / id_map.ids_file
    original = read_table(original_path, sep=id_map.separator, role="original ids")
    ids = read_table(ids_path, sep=id_map.separator, role="dataset ids")
    for table, path in ((original, original_path), (ids, ids_path)):
        require_columns(table, [id_map.user_column, id_map.item_column], path)
    if len(original) != len(ids):
        raise DataValidationError(
            original_path,
            f"{len(original)} rows but {ids_path} has {len(ids)}",
            expected="row-aligned files: the same rows with original and dataset ids",
        )
    out = []
    for column, values in ((id_map.user_column, users), (id_map.item_column, items)):
        keys = parse_ids(original[column], original_path, column)
        targets = parse_ids(ids[column], ids_path, column)
        mapping = pd.Series(targets.to_numpy(), index=keys.to_numpy())
        mapping = mapping[~mapping.index.duplicated()]
        out.append(values.map(mapping))
    return out[0], out[1]


def requests_from_pairs(
    pairs: pd.DataFrame,
    interactions: pd.DataFrame,
    users: pd.DataFrame,
    items: pd.DataFrame,
    join: str,
    source: str,
) -> pd.DataFrame:
    """Words of each (user, item) pair as one request with the split of its interaction.

    Pairs whose user or item is not in the dataset (filtered out, or never interacted) are
    counted in the log, never silently dropped."""
    user_idx = pairs["user_id"].map(users.set_index("user_id")["user_idx"])
    item_idx = pairs["item_id"].map(items.set_index("item_id")["item_idx"])
    known = user_idx.notna().to_numpy() & item_idx.notna().to_numpy()
    if (~known).any():
        logger.info(
            "%s: %d of %d word rows name a user or item outside the dataset; not used",
            source,
            int((~known).sum()),
            len(known),
        )
    frame = pd.DataFrame(
        {
            "user_idx": user_idx[known].astype("int64").to_numpy(),
            "item_idx": item_idx[known].astype("int64").to_numpy(),
            "text": pairs["text"][known].to_numpy(),
        }
    )
    grouped = (
        frame.groupby(["user_idx", "item_idx"], sort=True)["text"]
        .agg(lambda words: join.join(dict.fromkeys(words)))
        .reset_index()
    )
    return with_split(grouped, interactions)


def with_split(requests: pd.DataFrame, interactions: pd.DataFrame) -> pd.DataFrame:
    """Add the split of each request's interaction (``none`` when the pair is not one)."""
    labels = interactions.drop_duplicates(["user_idx", "item_idx"])[
        ["user_idx", "item_idx", "split"]
    ]
    out = requests.merge(labels, on=["user_idx", "item_idx"], how="left")
    out["split"] = out["split"].fillna("none").astype(str)
    return out[REQUEST_COLUMNS].reset_index(drop=True)


def requests_from_item_columns(
    interactions: pd.DataFrame, items: pd.DataFrame, config: WordsConfig, source: str
) -> pd.DataFrame:
    """Every interaction is a request whose words are its item's categories."""
    table = items.sort_values("item_idx").reset_index(drop=True)
    words = item_column_words(table, config, source).to_numpy(dtype=object)
    out = interactions[["user_idx", "item_idx", "split"]].copy()
    out["text"] = words[out["item_idx"].to_numpy()]
    out = out[out["text"].astype(str) != ""]
    return out[REQUEST_COLUMNS].reset_index(drop=True)


def item_text_without_heldout(
    requests: pd.DataFrame, items: pd.DataFrame, separator: str
) -> np.ndarray:
    """Per item (``items`` row order): the distinct words of its pairs outside valid / test,
    sorted, joined by ``separator``. Words that only a held-out pair gave are absent."""
    usable = requests[~requests["split"].isin(HELD_OUT)]
    words = usable.assign(word=usable["text"].str.split(separator)).explode("word")
    words["word"] = words["word"].str.strip()
    words = words[words["word"] != ""]
    per_item = words.groupby("item_idx")["word"].agg(lambda w: separator.join(sorted(set(w))))
    return per_item.reindex(items["item_idx"].to_numpy()).fillna("").to_numpy(dtype=object)


def empty_requests() -> pd.DataFrame:
    """A ``word_requests`` table with no rows (a dataset without words)."""
    types = ("int64", "int64", object, object)
    return pd.DataFrame(
        {c: pd.Series(dtype=t) for c, t in zip(REQUEST_COLUMNS, types, strict=True)}
    )


def build_word_requests(
    folder: Path,
    config: WordsConfig | None,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame,
    dataset: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, word_requests): requests of every kind the dataset's words allow, and the items
    with ``item_text_column`` rebuilt without held-out words. No words: an empty table."""
    if config is None:
        return items, empty_requests()
    if config.file:
        pairs = read_word_pairs(folder, config)
        requests = requests_from_pairs(
            pairs, interactions, users, items, config.join, str(folder / config.file)
        )
    else:
        requests = requests_from_item_columns(interactions, items, config, f"{dataset} items")
    if config.item_text_column:
        column = config.item_text_column
        require_columns(items, [column], f"{dataset} items")
        before = items[column].fillna("").astype(str)
        items = items.copy()
        items[column] = item_text_without_heldout(requests, items, config.join.strip() or " ")
        changed = int((before.to_numpy() != items[column].to_numpy()).sum())
        logger.info(
            "%s: item text %r rebuilt from the words of %d pairs outside valid/test "
            "(%d of %d items changed)",
            dataset,
            column,
            int((~requests["split"].isin(HELD_OUT)).sum()),
            changed,
            len(items),
        )
    counts: dict[str, Any] = requests["split"].value_counts().to_dict()
    logger.info("%s: word requests by split %s", dataset, counts)
    return items, requests
