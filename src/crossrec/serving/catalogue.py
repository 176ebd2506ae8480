"""The searchable catalogue: user and item vectors (score = user . item, exactly the model's
``score_users``), ids, seen items, item attributes, and the item index. Knows no torch model,
so a synthetic catalogue (benchmarks) and a trained one share every query."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.serving.config import RecommendConfig
from crossrec.serving.index import ExactIndex, build_index, index_vectors, top_k, unit_rows

if TYPE_CHECKING:
    from crossrec.serving.slots import TailSlots

#: item attributes that hold ids: a filter on them matches the whole id, not a part of it
ID_COLUMNS = ("item_id", "item_idx")


def clip_text(text: str, limit: int = 100) -> str:
    """``text`` cut to ``limit`` characters: an answer never echoes unbounded client input."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def clean_id(value) -> str:
    """An id as ingest stores it: its text with surrounding whitespace trimmed (one rule for
    ids in paths, queries and bodies, as for ids in the data files)."""
    return str(value).strip()


class UnknownIdError(KeyError):
    """An id the catalogue does not hold; the message names it, clipped (HTTP 404)."""

    def __init__(self, kind: str, value: str):
        shown = clip_text(str(value))
        super().__init__(f"unknown {kind} id {shown!r}")
        self.kind, self.value = kind, shown

    def __str__(self) -> str:
        return self.args[0]


class BadRequestError(ValueError):
    """A well-formed request the catalogue cannot answer; ``field`` names the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class Catalogue:
    user_vectors: np.ndarray  # (n_users, d)
    item_vectors: np.ndarray  # (n_items, d)
    user_ids: np.ndarray  # str, aligned to user_idx
    item_ids: np.ndarray  # str, aligned to item_idx
    seen: sp.csr_matrix  # (n_users, n_items): every known interaction
    items: pd.DataFrame  # item_idx-aligned attributes (titles, genres, ...)
    config: RecommendConfig
    #: modality -> (L2-normalised vectors, mask), for similar-by-modality
    modality_vectors: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    index_kind: str | None = None  # None: by catalogue size (config.ann.min_items)
    text_columns: list[str] = field(default_factory=list)  # shown on item cards
    #: the vectors' last column is VBPR's item bias (users: 1); see crossrec.serving.foldin
    bias_column: bool = False
    #: a mix's tail slots (crossrec.serving.slots): places of users' lists for tail items
    tail_slots: TailSlots | None = None

    def __post_init__(self) -> None:
        self.user_vectors = np.ascontiguousarray(self.user_vectors, np.float32)
        self.item_vectors = np.ascontiguousarray(self.item_vectors, np.float32)
        self.user_pos = {str(u): i for i, u in enumerate(self.user_ids)}
        self.item_pos = {str(x): i for i, x in enumerate(self.item_ids)}
        self.index = build_index(
            self.item_vectors,
            self.config.ann,
            self.index_kind,
            queries=self.user_vectors,
            seen=self.seen,
        )
        self.modality_index = {
            name: ExactIndex(vectors) for name, (vectors, _) in self.modality_vectors.items()
        }
        self._card_columns = self._display_columns()
        self._thresholds: np.ndarray | None = None
        self._unit_index = None
        self._lock = threading.Lock()

    @property
    def similarity_vectors(self) -> np.ndarray:
        """Item vectors for item-to-item similarity: without the bias column (a popularity
        score, not a direction of taste)."""
        return self.item_vectors[:, :-1] if self.bias_column else self.item_vectors

    @property
    def n_users(self) -> int:
        return len(self.user_vectors)

    @property
    def n_items(self) -> int:
        return len(self.item_vectors)

    # ------------------------------------------------------------------ ids
    def user(self, user_id: str) -> int:
        key = clean_id(user_id)
        if key not in self.user_pos:
            raise UnknownIdError("user", key)
        return self.user_pos[key]

    def item(self, item_id: str) -> int:
        key = clean_id(item_id)
        if key not in self.item_pos:
            raise UnknownIdError("item", key)
        return self.item_pos[key]

    def seen_items(self, user_idx: int) -> np.ndarray:
        return self.seen.indices[self.seen.indptr[user_idx] : self.seen.indptr[user_idx + 1]]

    # ------------------------------------------------------------------ item cards
    def _display_columns(self) -> dict[str, list]:
        """Column values as plain lists: a card is then a few list lookups (pandas row access
        costs ~0.25 ms per item, more than the whole top-K search)."""
        title = (
            "title" if "title" in self.items.columns else (self.text_columns[:1] or ["item_id"])[0]
        )
        columns = {"title": self.items[title].astype(str).tolist()}
        for column in self.text_columns:
            if column != title and column in self.items.columns:
                columns[column] = [
                    v[:300] if isinstance(v, str) else None for v in self.items[column]
                ]
        if "image_path" in self.items.columns:
            columns["has_image"] = [
                isinstance(v, str) and bool(v) for v in self.items["image_path"]
            ]
        return columns

    def card(self, item_idx: int, score: float | None = None) -> dict:
        """What a client shows for an item: id, title, text attributes, whether it has a poster."""
        out = {"item_id": str(self.item_ids[item_idx])}
        for column, values in self._card_columns.items():
            if values[item_idx] is not None:
                out[column] = values[item_idx]
        out.setdefault("has_image", False)
        if score is not None:
            out["score"] = round(float(score), 6)
        return out

    # ------------------------------------------------------------------ filters
    def filter_mask(self, filters: Mapping[str, str | Sequence[str]]) -> np.ndarray | None:
        """Items passing every attribute's filter (AND across attributes), where an attribute
        given several values passes when any matches (OR within it). A value matches when the
        attribute contains it (case-insensitive; lists match any entry), except an id column,
        which must equal it. None = no filter. Unknown attributes fail naming the valid ones."""
        if not filters:
            return None
        mask = np.ones(self.n_items, dtype=bool)
        for column, values in filters.items():
            wanted = [values] if isinstance(values, str) else list(values)
            mask &= self._attribute_mask(column, wanted)
        return mask

    def _attribute_mask(self, column: str, wanted: list[str]) -> np.ndarray:
        """Items whose ``column`` matches any of ``wanted``."""
        if column not in self.items.columns or column.endswith("_path"):
            valid = [c for c in self.items.columns if not c.endswith("_path")]
            raise BadRequestError(
                "filter", f"unknown item attribute {clip_text(column)!r} in filter; one of {valid}"
            )
        if column in ID_COLUMNS:
            return self.items[column].astype(str).isin([clean_id(w) for w in wanted]).to_numpy()
        text = self.items[column].astype(str).str.lower()
        mask = np.zeros(self.n_items, dtype=bool)
        for value in wanted:
            mask |= text.str.contains(str(value).lower(), regex=False).to_numpy()
        return mask

    # ------------------------------------------------------------------ queries
    def top_items(
        self,
        queries: np.ndarray,
        k: int,
        exclude: list[np.ndarray] | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best k items per query vector. ``candidates`` (bool mask) restricts the items:
        searched exactly over them (a filter may keep few items an ANN probe would miss)."""
        if candidates is None:
            return self.index.search(queries, k, exclude)
        allowed = np.flatnonzero(candidates)
        scores = np.asarray(queries, np.float32) @ self.item_vectors[allowed].T
        if exclude is not None:
            for row, items in enumerate(exclude):
                scores[row, np.isin(allowed, items)] = -np.inf
        values, local = top_k(scores, k)
        return values, np.where(local >= 0, allowed[np.maximum(local, 0)], -1)

    def user_lists(
        self,
        queries: np.ndarray,
        k: int,
        exclude: list[np.ndarray] | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best k items per user vector, as the model ranks them for users: :meth:`top_items`,
        with a mix's tail slots applied (the scores stay the vectors' dot products)."""
        if self.tail_slots is None:
            return self.top_items(queries, k, exclude, candidates)
        _, ranked = self.top_items(queries, self.tail_slots.depth(k), exclude, candidates)
        items = self.tail_slots.apply(queries, ranked, k, exclude, candidates)
        vectors = self.item_vectors[np.maximum(items, 0)]
        scores = np.einsum("qd,qkd->qk", np.asarray(queries, np.float32), vectors)
        return np.where(items >= 0, scores, -np.inf).astype(np.float32), items

    def recommend_user(
        self, user_idx: int, k: int, exclude_seen: bool = True, filters: dict | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        exclude = [self.seen_items(user_idx)] if exclude_seen else None
        scores, items = self.user_lists(
            self.user_vectors[user_idx : user_idx + 1], k, exclude, self.filter_mask(filters or {})
        )
        return scores[0], items[0]

    def similar(
        self, item_idx: int, k: int, modality: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """k nearest other items by cosine: of the model's item vectors (raw inner products
        would favour popular items, whose vectors are long) or of one modality's vectors."""
        if modality is None:
            index = self.unit_index()
            query = index_vectors(index)[item_idx : item_idx + 1]
        else:
            if modality not in self.modality_vectors:
                raise BadRequestError(
                    "modality",
                    f"unknown modality {modality!r}; "
                    f"this model has {sorted(self.modality_vectors)}",
                )
            vectors, mask = self.modality_vectors[modality]
            if not mask[item_idx]:
                raise BadRequestError(
                    "modality", f"item {self.item_ids[item_idx]!r} has no {modality} input"
                )
            index, query = self.modality_index[modality], vectors[item_idx : item_idx + 1]
            exclude_missing = np.flatnonzero(~mask)
            scores, items = index.search(query, k, [np.append(exclude_missing, item_idx)])
            return scores[0], items[0]
        scores, items = index.search(query, k, [np.array([item_idx])])
        return scores[0], items[0]

    def unit_index(self):
        """Index over the L2-normalised item vectors (built on first use)."""
        with self._lock:
            if self._unit_index is None:
                unit = unit_rows(self.similarity_vectors)
                kind = self.index_kind or self.index.kind
                self._unit_index = build_index(unit, self.config.ann, kind, queries=unit)
            return self._unit_index

    def reach_thresholds(self) -> np.ndarray:
        """Each user's reach_k-th best unseen score: a new item above it enters their list."""
        with self._lock:
            if self._thresholds is None:
                from crossrec.serving.batch import top_k_all_users

                k = min(self.config.reach_k, self.n_items)
                scores, _ = top_k_all_users(self, k, self.config.chunk_users)
                last = scores[:, -1]
                self._thresholds = np.where(np.isfinite(last), last, -np.inf).astype(np.float32)
        return self._thresholds

    def rank_among_users(self, item_vector: np.ndarray, limit: int) -> list[tuple[int, float, int]]:
        """(user_idx, score, rank the item would take in the user's list of unseen items) of the
        users where it ranks best, best rank first. Exact; None when the catalogue is too large
        (users x items over 50M scores): then only ``reached_users`` answers."""
        if self.n_users * self.n_items > 50_000_000:
            return None
        scores = self.user_vectors @ np.asarray(item_vector, np.float32)
        ranks = np.empty(self.n_users, dtype=np.int64)
        for start in range(0, self.n_users, 1024):
            block = self.user_vectors[start : start + 1024] @ self.item_vectors.T
            rows = self.seen[start : start + 1024]
            block[np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)), rows.indices] = -np.inf
            ranks[start : start + 1024] = 1 + (block > scores[start : start + 1024, None]).sum(1)
        order = np.lexsort((np.arange(self.n_users), -scores, ranks))[:limit]
        return [(int(u), float(scores[u]), int(ranks[u])) for u in order]

    def reached_users(self, item_vector: np.ndarray, limit: int) -> list[tuple[int, float, float]]:
        """(user_idx, score, margin over the user's threshold) of the users a new item with
        this vector would reach, best margin first."""
        scores = self.user_vectors @ np.asarray(item_vector, np.float32)
        margin = scores - self.reach_thresholds()
        reached = np.flatnonzero(margin > 0)
        order = reached[np.lexsort((reached, -margin[reached]))][:limit]
        return [(int(u), float(scores[u]), float(margin[u])) for u in order]
