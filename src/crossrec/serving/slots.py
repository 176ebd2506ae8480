"""Tail slots at serving time: a mix (``model.content_mix``) whose chosen point gives ``slots``
of each list's first ``k`` places to the content model's best tail items, served as evaluate
ranked it (:func:`crossrec.models.content_mix.slotted_scores`).

The served list is the mix's own top items; the tail items come from a second index over the
tail items' content vectors. A user's mixed vector holds the content model's standardised user
vector as its last columns, so that part against a tail item's centred content vector is the
content model's standardised score: trained users and folded-in ones are served alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crossrec.models.content_mix import slotted_list
from crossrec.serving.config import AnnConfig
from crossrec.serving.index import build_index


@dataclass
class TailSlots:
    slots: int  # places of the first k given to tail items
    k: int  # the list length the slots were chosen for
    tail: np.ndarray  # (n_tail,) item indices of the tail items
    tail_vectors: np.ndarray  # (n_tail, d_content) their centred content vectors
    head: np.ndarray  # (n_items,) bool: the head items, never displaced while another can go
    offset: int  # where the content model's columns start in a mixed user vector
    ann: AnnConfig = field(default_factory=AnnConfig)
    #: the served users' mixed vectors: an ANN index over a large tail is widened on them
    users: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.tail_vectors = np.ascontiguousarray(self.tail_vectors, np.float32)
        self.local = np.full(len(self.head), -1, np.int64)
        self.local[self.tail] = np.arange(len(self.tail))
        queries = None if self.users is None else self.users[:, self.offset :]
        self.index = build_index(self.tail_vectors, self.ann, queries=queries)
        self.users = None  # only needed to build the index

    @classmethod
    def of(cls, model, ann: AnnConfig, users: np.ndarray | None = None) -> TailSlots | None:
        """The served mix's slots, or None (no mix, or no slots chosen)."""
        parts = model.tail_slot_parts() if getattr(model, "mixed", False) else None
        return None if parts is None else cls(**parts, ann=ann, users=users)

    def depth(self, k: int) -> int:
        """How many of the mix's own items a list of ``k`` needs."""
        return max(k, self.k)

    def picks(
        self, queries: np.ndarray, blocked: list[np.ndarray], candidates: np.ndarray | None
    ) -> list[list[int]]:
        """Each query's best tail items by the content model, none of ``blocked`` (excluded
        or already listed) and, with ``candidates``, only those."""
        exclude = [self.local[b][self.local[b] >= 0] for b in blocked]
        if candidates is not None:
            outside = np.flatnonzero(~candidates[self.tail])
            exclude = [np.union1d(e, outside) for e in exclude]
        _, local = self.index.search(queries[:, self.offset :], self.slots, exclude)
        return [[int(self.tail[i]) for i in row if i >= 0] for row in local]

    def apply(
        self,
        queries: np.ndarray,
        items: np.ndarray,
        k: int,
        exclude: list[np.ndarray] | None,
        candidates: np.ndarray | None,
    ) -> np.ndarray:
        """(n_queries, k) items: each row of ``items`` (the mix's top ``depth(k)``, -1 padded)
        with its first ``self.k`` slotted, then the mix's order, the displaced items first."""
        listed = [[int(i) for i in row if i >= 0] for row in items]
        blocked = [
            np.union1d(row[: self.k], exclude[n] if exclude is not None else [])
            .astype(np.int64)
            for n, row in enumerate(listed)
        ]
        out = np.full((len(items), k), -1, np.int64)
        for n, new in enumerate(self.picks(np.asarray(queries, np.float32), blocked, candidates)):
            first = listed[n][: self.k]
            first = slotted_list(first, new, self.head) if new else first
            taken = set(first)
            final = (first + [i for i in listed[n] if i not in taken])[:k]
            out[n, : len(final)] = final
        return out
