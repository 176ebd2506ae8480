"""The in-memory form every adapter returns, so later steps never depend on a source format."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


def attribute_columns(
    categorical: list[str], numeric: list[str], separator: str | None
) -> dict[str, dict]:
    """``RawData.attribute_columns`` of an adapter's categorical and numeric columns (a
    categorical cell holds several values split by ``separator``; None = one value)."""
    out = {c: {"kind": "categorical", "separator": separator} for c in categorical}
    out.update({c: {"kind": "numeric"} for c in numeric})
    return out


#: Values of ``published_split``.
SPLIT_NAMES = ("train", "valid", "test")


@dataclass
class RawData:
    """A dataset as read by an adapter, before filtering, indexing and splitting.

    ``interactions``: ``user_id:str, item_id:str, rating:float32, timestamp:int64`` (-1 when the
    data has none), plus ``published_split:str`` when the source ships a split; ``row`` holds the
    1-based data row in ``files['interactions']`` for error messages.
    ``items``: ``item_id:str``, the text columns (str), ``image_path``/``audio_path`` (absolute
    str or None). ``precomputed``: ``name -> (len(items), d)`` arrays aligned to ``items`` rows.
    ``id_columns``: ``user`` / ``item`` -> the column names in the interactions file, so later
    errors name the user's columns. ``media_patterns``: ``image_path`` / ``audio_path`` ->
    absolute path pattern with ``{item_id}``, used for items added without an item-table row.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    text_columns: list[str]
    precomputed: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    has_timestamps: bool = False
    id_columns: dict[str, str] = field(default_factory=dict)
    media_patterns: dict[str, str] = field(default_factory=dict)
    #: text columns that hold structured values: ``{column: {"kind": "categorical",
    #: "separator": ", "}}`` or ``{"kind": "numeric"}`` (``crossrec.encoders.attributes``)
    attribute_columns: dict[str, dict] = field(default_factory=dict)

    @property
    def has_published_split(self) -> bool:
        return "published_split" in self.interactions.columns

    def replace(self, **changes) -> RawData:
        """A copy with some fields changed (nodes never mutate their inputs)."""
        return dataclasses.replace(self, **changes)

    def file(self, role: str) -> str:
        """The source file of a role ('interactions', 'items', ...) for error messages."""
        return self.files.get(role, f"<{self.name} {role}>")

    def column(self, role: str) -> str:
        """The source column of ``user`` / ``item`` in the interactions file (errors)."""
        return self.id_columns.get(role, f"{role}_id")
