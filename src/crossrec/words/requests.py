"""``word_requests`` as the words models read them (the table itself: ``crossrec.data.words``):
the pairs they may learn from, and a split's requests grouped by (user, words)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crossrec.data.words import HELD_OUT


def training_pairs(requests: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """(words, item) pairs the tower and the encoder learn from: never valid / test pairs."""
    usable = requests[~requests["split"].isin(HELD_OUT)]
    return usable["text"].astype(str).tolist(), usable["item_idx"].to_numpy(np.int64)


def grouped_requests(
    requests: pd.DataFrame, split: str
) -> tuple[np.ndarray, list[str], list[np.ndarray]]:
    """(users, words, relevant items) of a split: one request per (user, words), whose
    relevant items are every item of that split the user said those words about."""
    rows = requests[requests["split"] == split]
    grouped = rows.groupby(["user_idx", "text"], sort=True)["item_idx"].agg(
        lambda s: np.unique(s.to_numpy())
    )
    users = np.asarray([u for u, _ in grouped.index], dtype=np.int64)
    return users, [str(t) for _, t in grouped.index], list(grouped.to_numpy())


def encode_each_once(encoder, texts: list[str]) -> np.ndarray:
    """Rows of ``encoder.encode`` aligned to ``texts``, each distinct text encoded once
    (category-path words repeat across thousands of pairs)."""
    unique, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    return encoder.encode(list(unique))[inverse]
