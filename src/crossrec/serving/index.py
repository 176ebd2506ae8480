"""Maximum-inner-product search over item vectors: exact below a catalogue size, a faiss index
(IVF-Flat or HNSW, by default the one measured faster at the recall target) above it. Both
return the same (scores, items) shape; -1 marks "no item" as in ``crossrec.metrics.ranking``.

Exclusions (seen items, attribute filters) are applied by asking the index for
``k + len(excluded)`` candidates and dropping excluded ones, so an ANN search never returns a
seen item and never silently returns fewer than k when enough items are left.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from crossrec.metrics.ranking import topk_deterministic
from crossrec.serving.config import AnnConfig

logger = logging.getLogger(__name__)

#: Scores of the recall sample's exact search held at once (1,000 users x 10^6 items would be
#: 4 GB in one block).
EXACT_BLOCK_BYTES = 128 * 2**20


class ExactIndex:
    """Brute force: scores = queries @ items.T, deterministic tie order (item index)."""

    kind = "exact"

    def __init__(self, vectors: np.ndarray):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.vectors)

    def search(
        self, queries: np.ndarray, k: int, exclude: list[np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = np.asarray(queries, np.float32) @ self.vectors.T
        if exclude is not None:
            for row, items in enumerate(exclude):
                scores[row, items] = -np.inf
        return top_k(scores, k)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, items) of the k best columns per row; ties by item index; -1 = masked."""
    items = topk_deterministic(torch.from_numpy(scores), k).numpy()
    values = np.take_along_axis(scores, np.maximum(items, 0), axis=1)
    return np.where(items >= 0, values, -np.inf).astype(np.float32), items


class HnswIndex:
    """faiss ``IndexHNSWFlat`` with inner-product metric (approximate)."""

    kind = "hnsw"

    def __init__(self, vectors: np.ndarray, config: AnnConfig):
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index = faiss.IndexHNSWFlat(
            vectors.shape[1], config.hnsw_m, faiss.METRIC_INNER_PRODUCT
        )
        self.index.hnsw.efConstruction = config.ef_construction
        self.index.hnsw.efSearch = config.ef_search
        self.index.add(vectors)
        self.ef_search = config.ef_search
        self.n = len(vectors)
        self.vectors = vectors
        self.recall: dict | None = None
        self.choice: dict | None = None  # set by chosen_index (kind auto)

    def __len__(self) -> int:
        return self.n

    def breadth(self) -> dict:
        return {"ef_search": self.ef_search}

    def widen(self) -> None:
        self.ef_search *= 2

    def _params(self, want: int):
        import faiss

        return faiss.SearchParametersHNSW(efSearch=max(self.ef_search, want))

    def search(
        self, queries: np.ndarray, k: int, exclude: list[np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        extra = max((len(e) for e in exclude), default=0) if exclude is not None else 0
        want = min(k + extra, self.n)
        scores, items = self.index.search(queries, want, params=self._params(want))
        out_s = np.full((len(queries), k), -np.inf, np.float32)
        out_i = np.full((len(queries), k), -1, np.int64)
        for row in range(len(queries)):
            keep = items[row] >= 0
            if exclude is not None and len(exclude[row]):
                keep &= ~np.isin(items[row], exclude[row])
            s, i = scores[row][keep][:k], items[row][keep][:k]
            out_s[row, : len(s)], out_i[row, : len(i)] = s, i
        return out_s, out_i


class IvfIndex(HnswIndex):
    """faiss ``IndexIVFFlat`` (inner product): k-means cells, ``nprobe`` of them searched.

    Builds faster than HNSW (a 1M x 64-d synthetic server was up after 59 s against 100 s on 2
    cores), so a reload of a large catalogue stays short; which of the two keeps the recall
    target at less breadth depends on the vectors (docs/serving.md)."""

    kind = "ivf"

    def __init__(self, vectors: np.ndarray, config: AnnConfig):
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.n, self.vectors = len(vectors), vectors
        lists = config.ivf_lists or int(min(4096, max(1, 4 * np.sqrt(self.n))))
        self.quantizer = faiss.IndexFlatIP(vectors.shape[1])
        self.index = faiss.IndexIVFFlat(
            self.quantizer, vectors.shape[1], lists, faiss.METRIC_INNER_PRODUCT
        )
        sample = np.random.default_rng(0).choice(self.n, min(self.n, 100 * lists), replace=False)
        self.index.train(vectors[np.sort(sample)])
        self.index.add(vectors)
        self.nprobe = min(config.nprobe, lists)
        self.recall: dict | None = None
        self.choice: dict | None = None  # set by chosen_index (kind auto)

    def breadth(self) -> dict:
        return {"nprobe": self.nprobe, "lists": self.index.nlist}

    def widen(self) -> None:
        self.nprobe = min(self.nprobe * 2, self.index.nlist)

    def _params(self, want: int):
        import faiss

        return faiss.SearchParametersIVF(nprobe=self.nprobe)


def build_index(
    vectors: np.ndarray,
    config: AnnConfig,
    force: str | None = None,
    queries: np.ndarray | None = None,
    seen=None,
):
    """``config.kind`` (auto / ivf / hnsw) when the catalogue has at least ``config.min_items``
    items, else exact; ``force`` picks one of exact / ivf / hnsw / auto / ann (=
    ``config.kind``). An ANN index given the ``queries`` it will answer (user vectors, with the
    items each has ``seen`` excluded as serving excludes them) is widened to the recall target
    on a sample of them (:func:`widen_to_recall`); ``auto`` chooses between IVF and HNSW on
    that sample (:func:`chosen_index`)."""
    kind = force or ("ann" if len(vectors) >= config.min_items else "exact")
    kind = config.kind if kind == "ann" else kind
    indexes = {"exact": ExactIndex, "hnsw": HnswIndex, "ivf": IvfIndex}
    if kind not in {*indexes, "auto"}:
        raise ValueError(f"index kind must be one of {sorted(indexes)}, auto or ann, got {kind!r}")
    if kind == "exact":
        return ExactIndex(vectors)
    if queries is None or not len(queries) or config.recall_target <= 0:
        # nothing to measure on; auto takes the index that builds fastest
        return indexes["ivf" if kind == "auto" else kind](vectors, config)
    sample = RecallSample.draw(vectors, queries, config, seen)
    if kind == "auto":
        return chosen_index(vectors, config, sample)
    index = indexes[kind](vectors, config)
    widen_to_recall(index, sample, config)
    return index


def chosen_index(vectors: np.ndarray, config: AnnConfig, sample: RecallSample):
    """IVF when it reaches the recall target at its configured ``nprobe``; otherwise HNSW is
    built too, and the one that answers the sample faster at the target is kept (the higher
    recall when neither reaches it). ``index.choice`` records both measurements.

    Which index keeps recall at less work depends on the vectors: clustered ones suit IVF's
    cells, a trained model's spread-out vectors made IVF scan 16x the cells that HNSW needed
    (docs/serving.md), so the choice is measured, not configured."""
    ivf = IvfIndex(vectors, config)
    widen_to_recall(ivf, sample, config)
    candidates = [ivf]
    if ivf.nprobe > min(config.nprobe, ivf.index.nlist):
        hnsw = HnswIndex(vectors, config)
        widen_to_recall(hnsw, sample, config)
        candidates.append(hnsw)
    key = f"recall@{sample.k}"
    reached = [c for c in candidates if c.recall[key] >= config.recall_target]
    kept = (
        min(reached, key=lambda c: c.recall["ms_per_query"])
        if reached
        else max(candidates, key=lambda c: c.recall[key])
    )
    kept.choice = {c.kind: c.recall for c in candidates} | {"kept": kept.kind}
    if len(candidates) > 1:
        logger.info(
            "index choice over %s items: %s kept (%s)",
            *(f"{len(kept):,}", kept.kind, kept.choice),
        )
    return kept


class RecallSample:
    """The queries a recall is measured on: a seeded sample of the served users, each with the
    items serving excludes for them, and their exact top-k."""

    def __init__(self, queries: np.ndarray, exclude, exact: np.ndarray, k: int):
        self.queries, self.exclude, self.exact, self.k = queries, exclude, exact, k

    def __len__(self) -> int:
        return len(self.queries)

    @classmethod
    def draw(cls, vectors: np.ndarray, queries: np.ndarray, config: AnnConfig, seen=None):
        rng = np.random.default_rng(0)
        rows = np.sort(rng.choice(len(queries), min(config.recall_queries, len(queries)), False))
        q = np.ascontiguousarray(queries[rows], dtype=np.float32)
        k = min(config.recall_k, len(vectors))
        exclude = None
        if seen is not None:  # (n_queries, n_items) sparse: each sampled user's seen items
            exclude = [seen.indices[seen.indptr[r] : seen.indptr[r + 1]] for r in rows]
        brute, block = ExactIndex(vectors), max(1, EXACT_BLOCK_BYTES // (4 * len(vectors)))
        parts = []
        for a in range(0, len(q), block):
            skip = None if exclude is None else exclude[a : a + block]
            parts.append(brute.search(q[a : a + block], k, skip)[1])
        return cls(q, exclude, np.concatenate(parts), k)


def widen_to_recall(index, sample: RecallSample, config: AnnConfig) -> dict:
    """Double the index's search breadth (IVF nprobe, HNSW efSearch) while its recall@k against
    exact search over the ``sample`` is below ``config.recall_target``, at most
    ``config.max_widenings`` times; ``index.recall``
    records the last measurement and the milliseconds per query it took (the sample searched
    in one batch).

    Trained vectors are not clustered like benchmark data: the breadth that keeps 0.98 on a
    clustered catalogue can keep far less on a model's own, and nothing else would say so."""
    import time

    k = sample.k
    for widening in range(config.max_widenings + 1):
        start = time.perf_counter()
        found = index.search(sample.queries, k, sample.exclude)[1]
        ms_per_query = 1000 * (time.perf_counter() - start) / max(len(sample), 1)
        recall = recall_vs_exact(found, sample.exact)
        done = recall >= config.recall_target or widening == config.max_widenings
        before = index.breadth()
        if not done:
            index.widen()
            done = index.breadth() == before  # IVF: every cell is already searched
        if done:
            break
        logger.info(
            "%s index: recall@%d %.3f below %.2f with %s, widening to %s",
            *(index.kind, k, recall, config.recall_target, before, index.breadth()),
        )
    index.recall = {
        f"recall@{k}": round(recall, 4),
        "queries": len(sample),
        "ms_per_query": round(ms_per_query, 4),
        **index.breadth(),
    }
    level = logging.WARNING if recall < config.recall_target else logging.INFO
    logger.log(
        level,
        "%s index over %s items: recall@%d %.3f against exact search on %d sampled queries (%s)",
        *(index.kind, f"{len(index):,}", k, recall, len(sample), index.breadth()),
    )
    return index.recall


def recall_vs_exact(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-k that the approximate top-k also holds."""
    hits = [
        len(np.intersect1d(a[a >= 0], e[e >= 0])) / max((e >= 0).sum(), 1)
        for a, e in zip(approx, exact, strict=True)
    ]
    return float(np.mean(hits)) if hits else 0.0


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def index_vectors(index) -> np.ndarray:
    return index.vectors
