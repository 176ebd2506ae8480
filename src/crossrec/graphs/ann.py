"""Approximate top-k cosine neighbours with faiss, for item graphs too large for exact search.

Exact search scores every item against every item (``O(n^2 d)``): minutes at 10^5 items,
hours at 10^6. :func:`approximate_topk` builds a faiss index on the unit vectors (inner product
= cosine) and queries every item in batches of ``batch_rows``:

* ``hnsw``: ``IndexHNSWFlat`` (graph index, no training; ``m`` links per node, candidate lists
  of ``ef_construction`` when inserting and ``ef_search`` when querying);
* ``ivf``: ``IndexIVFFlat`` (k-means into ``nlist`` cells, trained on a seeded sample; a query
  scans its ``nprobe`` nearest cells).

:func:`sampled_recall` measures what the approximation costs: for a seeded sample of items it
computes the exact top-k by brute force (only those rows) and returns the mean fraction of it
that the approximate neighbours recover (ties at the k-th place count as found).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)

IndexKind = Literal["hnsw", "ivf"]

#: Byte budget of one brute-force score block when measuring recall (float32 scores).
RECALL_BLOCK_BYTES = 128 * 2**20
#: Cosines this close to the exact k-th best one count as tied with it (float32 rounding).
TIE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class AnnSettings:
    """Index settings (``conf/base/parameters_fuse.yml: fuse.knn.approximate``)."""

    index: IndexKind = "hnsw"
    hnsw_m: int = 16
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 64
    ivf_nlist: int | None = None  # None = 4 * sqrt(n), at least 1
    ivf_nprobe: int = 16
    batch_rows: int = 16384
    recall_sample: int = 1000
    #: before the full query, efSearch (HNSW) or nprobe (IVF) doubles while the recall@k of the
    #: recall sample is below this, at most ``max_widenings`` times (0: never widen), and is
    #: then narrowed by bisection to the smallest breadth found that reaches it
    recall_target: float = 0.0
    max_widenings: int = 3
    seed: int = 0

    def describe(self) -> str:
        if self.index == "hnsw":
            return (
                f"HNSW (M={self.hnsw_m}, efConstruction={self.hnsw_ef_construction}, "
                f"efSearch={self.hnsw_ef_search})"
            )
        return f"IVF-Flat (nlist={self.ivf_nlist or 'auto'}, nprobe={self.ivf_nprobe})"


def _unit_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    block = np.ascontiguousarray(vectors[rows], dtype=np.float32)
    block /= np.linalg.norm(block, axis=1, keepdims=True)
    return block


def ivf_nlist(n_items: int, settings: AnnSettings) -> int:
    """Cells of the IVF index: the configured number, else ``4 sqrt(n)``, never above n."""
    nlist = settings.ivf_nlist or max(1, int(4 * math.sqrt(n_items)))
    return max(1, min(nlist, n_items))


def _build_index(vectors: np.ndarray, rows: np.ndarray, settings: AnnSettings):
    import faiss

    d = vectors.shape[1]
    if settings.index == "hnsw":
        index = faiss.IndexHNSWFlat(d, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
    elif settings.index == "ivf":
        nlist = ivf_nlist(len(rows), settings)
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = settings.seed
        # faiss samples max_points_per_centroid * nlist points itself; sample here instead so
        # only the sample is copied and normalised
        n_train = min(len(rows), index.cp.max_points_per_centroid * nlist)
        rng = np.random.default_rng(settings.seed)
        sample = np.sort(rng.choice(len(rows), size=n_train, replace=False))
        index.train(_unit_rows(vectors, rows[sample]))
    else:
        raise ValueError(f"approximate_topk: index must be 'hnsw' or 'ivf', got {settings.index!r}")
    for start in range(0, len(rows), settings.batch_rows):
        index.add(_unit_rows(vectors, rows[start : start + settings.batch_rows]))
    _set_breadth(index, settings)
    return index


def _drop_self(ids: np.ndarray, scores: np.ndarray, first: int, k: int):
    """Per row, the first ``k`` results other than the row itself and faiss's -1 padding."""
    own = np.arange(first, first + ids.shape[0])[:, None]
    keep = (ids != own) & (ids >= 0)
    keep &= np.cumsum(keep, axis=1) <= k
    counts = keep.sum(axis=1)
    return np.repeat(own[:, 0], counts), ids[keep], scores[keep]


def approximate_topk(
    vectors: np.ndarray,
    rows: np.ndarray,
    k: int,
    settings: AnnSettings,
    used: dict | None = None,
    extra: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Approximate top-``k`` cosine neighbours among ``vectors[rows]`` (non-zero rows), and
    ``extra`` more candidates per row (what a tie rule re-ranks; the recall is of the top k).

    Returns ``(src, dst, score)`` as positions into ``rows``, without self pairs, each row's
    in order of score. A row gets fewer than ``k + extra`` only when the index returns fewer
    (IVF cells too small for the probes). Memory beyond the index (``len(rows) * d`` floats
    plus the links) is one batch.
    With ``settings.recall_target`` the search first widens until the recall sample reaches it
    (:func:`widen_to_target`); ``used["settings"]`` receives the settings it searched with,
    and ``used["recall"]`` the sample's ``(recall@k, items sampled)`` when the widening
    measured it.
    """
    index = _build_index(vectors, rows, settings)
    settings, recall = widen_to_target(index, vectors, rows, k, settings)
    if used is not None:
        used["settings"] = settings
        if recall is not None:
            used["recall"] = recall
    src, dst, score = [], [], []
    for start in range(0, len(rows), settings.batch_rows):
        queries = _unit_rows(vectors, rows[start : start + settings.batch_rows])
        scores, ids = index.search(queries, k + extra + 1)
        s, t, v = _drop_self(ids, scores, start, k + extra)
        src.append(s)
        dst.append(t)
        score.append(v)
    return np.concatenate(src), np.concatenate(dst), np.concatenate(score).astype(np.float32)


def _set_breadth(index, settings: AnnSettings) -> None:
    if settings.index == "hnsw":
        index.hnsw.efSearch = max(settings.hnsw_ef_search, 1)
    else:
        index.nprobe = min(settings.ivf_nprobe, index.nlist)


def widen_to_target(
    index, vectors: np.ndarray, rows: np.ndarray, k: int, settings: AnnSettings
) -> tuple[AnnSettings, tuple[float, int] | None]:
    """The settings to search with: efSearch (HNSW) or nprobe (IVF) doubled while the recall@k
    of the seeded recall sample is below ``recall_target`` (at most ``max_widenings`` times),
    then narrowed by two bisection steps between the last breadth short of the target and the
    first that reached it (doubling overshoots, and the full query's time follows the breadth);
    and the sample's ``(recall, size)`` with those settings (None when nothing was measured).

    A large catalogue needs a wider search for the same recall (HNSW's default efSearch kept
    0.95 / 0.87 at 943k items where it kept 0.997 at 10^5). Only the sample is queried per try;
    its exact neighbours are computed once. The recall follows :func:`sampled_recall`'s rule
    on the same sample, so the full query's recall need not be measured again.
    """
    if settings.recall_target <= 0 or settings.recall_sample <= 0 or settings.max_widenings <= 0:
        return settings, None
    queries = sample_rows(len(rows), settings.recall_sample, settings.seed)
    if len(queries) == 0:
        return settings, None
    _, exact_scores = exact_topk_of(vectors, rows, queries, k)
    probe = _RecallProbe(index, _unit_rows(vectors, rows[queries]), queries, exact_scores, k)
    short = None  # the last breadth that missed the target
    for widening in range(settings.max_widenings + 1):
        recall = probe.recall(settings)
        if recall >= settings.recall_target or widening == settings.max_widenings:
            break
        short, before = settings, settings.describe()
        settings = _with_breadth(settings, 2 * _breadth(settings))
        logger.info(
            "approximate kNN: sampled recall@%d %.3f below %.2f with %s: widening to %s",
            k, recall, settings.recall_target, before, settings.describe(),
        )  # fmt: skip
    if short is not None and recall >= settings.recall_target:
        low, high = _breadth(short), _breadth(settings)
        for _ in range(2):
            middle = (low + high) // 2
            if middle in (low, high):
                break
            tried = probe.recall(_with_breadth(settings, middle))
            if tried >= settings.recall_target:
                high, recall = middle, tried
            else:
                low = middle
        if high < _breadth(settings):
            settings = _with_breadth(settings, high)
            logger.info(
                "approximate kNN: narrowed to %s (sampled recall@%d %.3f)",
                settings.describe(), k, recall,
            )  # fmt: skip
    _set_breadth(index, settings)
    return settings, (recall, len(queries))


class _RecallProbe:
    """The recall sample's queries and exact k-th best cosines: the recall@k of a breadth."""

    def __init__(self, index, q_unit, queries, exact_scores, k: int):
        self.index, self.q_unit, self.queries, self.k = index, q_unit, queries, k
        self.kth = exact_scores.min(axis=1)

    def recall(self, settings: AnnSettings) -> float:
        _set_breadth(self.index, settings)
        scores, ids = self.index.search(self.q_unit, self.k + 1)
        other = (ids != self.queries[:, None]) & (ids >= 0)  # not the item itself, not padding
        other &= np.cumsum(other, axis=1) <= self.k  # the k neighbours the full query keeps
        found = ((scores >= self.kth[:, None] - TIE_TOLERANCE) & other).sum(axis=1)
        return float(np.minimum(found, self.k).mean() / self.k)


def _breadth(settings: AnnSettings) -> int:
    return settings.hnsw_ef_search if settings.index == "hnsw" else settings.ivf_nprobe


def _with_breadth(settings: AnnSettings, breadth: int) -> AnnSettings:
    if settings.index == "hnsw":
        return replace(settings, hnsw_ef_search=breadth)
    return replace(settings, ivf_nprobe=breadth)


def sample_rows(n_items: int, size: int, seed: int) -> np.ndarray:
    """Seeded sample of ``min(size, n_items)`` positions, sorted."""
    size = min(size, n_items)
    return np.sort(np.random.default_rng(seed).choice(n_items, size=size, replace=False))


def exact_topk_of(
    vectors: np.ndarray, rows: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` cosine neighbours (positions into ``rows``, self excluded) of the
    positions ``queries`` and their similarities, by brute force over all ``rows`` in one pass
    of blocks (memory: one ``len(queries) x block`` score block): two ``(len(queries), k)``."""
    q_unit = _unit_rows(vectors, rows[queries])
    block = max(k + 1, RECALL_BLOCK_BYTES // (4 * max(len(queries), 1)))
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(rows), block):
        stop = min(start + block, len(rows))
        sims = q_unit @ _unit_rows(vectors, rows[start:stop]).T
        own = (queries >= start) & (queries < stop)
        sims[np.flatnonzero(own), queries[own] - start] = -np.inf  # no self
        scores = np.concatenate([best_scores, sims], axis=1)
        ids = np.concatenate(
            [best_ids, np.broadcast_to(np.arange(start, stop), sims.shape)], axis=1
        )
        keep = min(k, scores.shape[1])
        top = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_ids = np.take_along_axis(ids, top, axis=1)
    return best_ids, best_scores


def sampled_recall(
    vectors: np.ndarray,
    rows: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    k: int,
    sample: int,
    seed: int,
) -> tuple[float, int]:
    """Mean recall@k of the directed neighbours ``src -> dst`` (positions into ``rows``)
    against exact search, over a seeded sample of ``sample`` items: ``(recall, n_sampled)``.

    A returned neighbour counts as found when its cosine reaches the exact k-th best one
    (within ``TIE_TOLERANCE``): with ties at the k-th place (repeated vectors, e.g. items with the
    same attributes) any of the tied items is a correct neighbour, whichever exact search picked.
    Without ties this is ``|approximate ∩ exact| / k``.
    """
    queries = sample_rows(len(rows), sample, seed)
    if len(queries) == 0:
        return float("nan"), 0
    _, exact_scores = exact_topk_of(vectors, rows, queries, k)
    kth = exact_scores.min(axis=1)
    order = np.argsort(src, kind="stable")
    starts = np.searchsorted(src[order], queries)
    ends = np.searchsorted(src[order], queries, side="right")
    q_unit = _unit_rows(vectors, rows[queries])
    hits = np.empty(len(queries))
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        found = np.unique(dst[order[a:b]])
        sims = _unit_rows(vectors, rows[found]) @ q_unit[i]
        hits[i] = min(k, int((sims >= kth[i] - TIE_TOLERANCE).sum())) / k
    return float(hits.mean()), len(queries)
