"""Stable contiguous id maps (user_idx, item_idx) and the indexed tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crossrec.data.media import optional_paths
from crossrec.data.raw import RawData
from crossrec.data.validation import natural_order


def build_id_map(ids: pd.Series) -> pd.Series:
    """Original id -> 0-based index, in natural id order (the same data gives the same map)."""
    ordered = natural_order([str(i) for i in pd.unique(ids)])
    return pd.Series(np.arange(len(ordered), dtype=np.int64), index=pd.Index(ordered, dtype=object))


def index_raw(
    raw: RawData,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """(interactions, items, users, precomputed) with contiguous indices, sorted as documented.

    Items are those of ``raw.items`` (already filtered to the catalogue that is kept).
    """
    user_map = build_id_map(raw.interactions["user_id"])
    item_map = build_id_map(raw.items["item_id"])
    users = pd.DataFrame({"user_idx": user_map.to_numpy(), "user_id": user_map.index.to_numpy()})

    item_pos = lookup(item_map, raw.items["item_id"])
    order = np.argsort(item_pos, kind="stable")
    identity = bool((order == np.arange(len(order))).all())
    items = pd.DataFrame(
        {
            "item_idx": np.arange(len(order), dtype=np.int64),
            "item_id": raw.items["item_id"].to_numpy(dtype=object)[order],
        }
    )
    for column in raw.text_columns:
        items[column] = raw.items[column].fillna("").astype(str).to_numpy(dtype=object)[order]
    for column in ("image_path", "audio_path"):
        values = (
            optional_paths(raw.items[column]).to_numpy(dtype=object)[order]
            if column in raw.items.columns
            else np.full(len(order), None, dtype=object)
        )
        items[column] = pd.Series(values, index=items.index, dtype=object)
    precomputed = {
        name: np.ascontiguousarray(matrix if identity else matrix[order], dtype=np.float32)
        for name, matrix in sorted(raw.precomputed.items())
    }

    inter = raw.interactions
    interactions = pd.DataFrame(
        {
            "user_idx": lookup(user_map, inter["user_id"]),
            "item_idx": lookup(item_map, inter["item_id"]),
            "rating": inter["rating"].to_numpy(dtype=np.float32),
            "timestamp": inter["timestamp"].to_numpy(dtype=np.int64),
        }
    )
    if "published_split" in inter.columns:
        interactions["published_split"] = inter["published_split"].to_numpy(dtype=object)
    order = np.lexsort(
        (
            interactions["item_idx"].to_numpy(),
            interactions["timestamp"].to_numpy(),
            interactions["user_idx"].to_numpy(),
        )
    )
    interactions = interactions.take(order).reset_index(drop=True)
    return interactions, items, users, precomputed


def lookup(id_map: pd.Series, ids: pd.Series) -> np.ndarray:
    """``id_map[ids]`` as int64, hashing each distinct id once (rows repeat ids many times)."""
    codes, uniques = pd.factorize(ids)
    positions = id_map.index.get_indexer(pd.Index(uniques).astype(str))
    if (codes < 0).any() or (positions < 0).any():
        raise KeyError("ids missing from the id map")
    return id_map.to_numpy()[positions][codes].astype(np.int64, copy=False)
