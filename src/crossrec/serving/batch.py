"""Top-K lists and similar items for the whole catalogue (the recommend pipeline), chunked over
users with the evaluation code's memory bound (``crossrec.metrics.ranking.rank_all_items``)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from crossrec.graphs.knn import knn_search_info
from crossrec.metrics.ranking import rank_all_items
from crossrec.serving.config import AnnConfig
from crossrec.serving.index import top_k, unit_rows

logger = logging.getLogger(__name__)


def top_k_all_users(catalogue, k: int, chunk_users: int | None = None):
    """(scores, items) of shape (n_users, k): every user's best unseen items; exact, or from
    the catalogue's faiss index when it has one (``recommend.ann.min_items`` items on)."""
    if catalogue.tail_slots is not None:
        return _top_k_slotted(catalogue, k)
    if catalogue.index.kind != "exact":
        return _top_k_from_index(catalogue, k)
    users_vec, items_vec = catalogue.user_vectors, catalogue.item_vectors

    def score(users: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(users_vec[users.numpy()] @ items_vec.T)

    users = np.arange(catalogue.n_users)
    ranked = rank_all_items(score, users, catalogue.seen, k, chunk_users)
    scores = np.full(ranked.shape, -np.inf, dtype=np.float32)
    for start in range(0, len(users), 4096):
        block = ranked[start : start + 4096]
        rows = users_vec[start : start + 4096]
        gathered = np.einsum("ud,ukd->uk", rows, items_vec[np.maximum(block, 0)])
        scores[start : start + 4096] = np.where(block >= 0, gathered, -np.inf)
    return scores, ranked


def _top_k_from_index(catalogue, k: int, chunk: int = 1024):
    """Every user's top k from the ANN index, seen items excluded. Users go in chunks of like
    history length: the index returns k + (the chunk's longest history) candidates per user,
    so one heavy user does not make a whole chunk search deep."""
    seen = catalogue.seen
    n_users = seen.shape[0]
    order = np.argsort(np.diff(seen.indptr), kind="stable")
    scores = np.full((n_users, k), -np.inf, dtype=np.float32)
    items = np.full((n_users, k), -1, dtype=np.int64)
    for start in range(0, n_users, chunk):
        users = order[start : start + chunk]
        exclude = [seen.indices[seen.indptr[u] : seen.indptr[u + 1]] for u in users]
        s, i = catalogue.index.search(catalogue.user_vectors[users], k, exclude)
        scores[users, : s.shape[1]], items[users, : i.shape[1]] = s, i
    logger.info("top-%d for %s users from the %s index", k, f"{n_users:,}", catalogue.index.kind)
    return scores, items


def _top_k_slotted(catalogue, k: int, chunk: int = 1024):
    """Every user's top k with a mix's tail slots (``Catalogue.user_lists``), seen excluded."""
    seen = catalogue.seen
    n_users = seen.shape[0]
    scores = np.full((n_users, k), -np.inf, dtype=np.float32)
    items = np.full((n_users, k), -1, dtype=np.int64)
    for start in range(0, n_users, chunk):
        users = np.arange(start, min(start + chunk, n_users))
        exclude = [seen.indices[seen.indptr[u] : seen.indptr[u + 1]] for u in users]
        queries = catalogue.user_vectors[users]
        scores[users], items[users] = catalogue.user_lists(queries, k, exclude)
    logger.info("top-%d for %s users, with tail slots", k, f"{n_users:,}")
    return scores, items


def recommendations_table(catalogue, k: int, version: str, chunk_users: int | None = None):
    """One row per (user, rank): user_idx, user_id, rank (1-based), item_idx, item_id, score,
    model_version. Users with fewer than k unseen items get fewer rows."""
    scores, ranked = top_k_all_users(catalogue, k, chunk_users)
    users, ranks = np.nonzero(ranked >= 0)
    items = ranked[users, ranks]
    return pd.DataFrame(
        {
            "user_idx": users.astype(np.int64),
            "user_id": catalogue.user_ids[users].astype(str),
            "rank": (ranks + 1).astype(np.int64),
            "item_idx": items.astype(np.int64),
            "item_id": catalogue.item_ids[items].astype(str),
            "score": scores[users, ranks].astype(np.float32),
            "model_version": version,
        }
    )


def similar_items_table(
    catalogue,
    k: int,
    version: str,
    ann: AnnConfig | None = None,
    graphs: dict[str, sp.spmatrix] | None = None,
):
    """One row per (item, space, rank): space = "model" (cosine of the model's item vectors) or
    a modality name (cosine of its fused vectors).

    Exact below ``ann.min_items`` usable items of a space; from there on the neighbours come from
    a faiss index (``recommend.ann``: IVF-Flat or HNSW), as fuse's item graphs do, since exact
    search scores every item against every item (hours at 10^6 items). A modality whose fuse
    kNN graph (``graphs``) already holds at least ``k`` neighbours per item, found exactly or
    at ``ann.recall_target``, takes them from it (:func:`graph_neighbours`): no search at all.
    """
    frames = []
    for space in [None, *sorted(catalogue.modality_vectors)]:
        if space is None:
            vectors = unit_rows(catalogue.similarity_vectors)
            mask = np.ones(catalogue.n_items, bool)
        else:
            vectors, mask = catalogue.modality_vectors[space]
        graph = (graphs or {}).get(space) if space is not None else None
        from_graph = None if graph is None else graph_similar(graph, vectors, mask, k, ann, space)
        if from_graph is not None:
            item, rank, similar, score = from_graph
        elif ann is not None and int(mask.sum()) >= ann.min_items:
            item, rank, similar, score = _approximate_similar(vectors, mask, k, ann)
            logger.info(
                "similar items (%s): approximate (%s) over %s items",
                space or "model",
                similar_index_kind(ann),
                f"{len(np.unique(item)):,}",
            )
        else:
            item, rank, similar, score = _exact_similar(vectors, mask, k)
        frames.append(
            pd.DataFrame(
                {
                    "item_idx": item.astype(np.int64),
                    "space": space or "model",
                    "rank": rank.astype(np.int64),
                    "similar_idx": similar.astype(np.int64),
                    "score": score.astype(np.float32),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(out):
        out.insert(1, "item_id", catalogue.item_ids[out["item_idx"]].astype(str))
        out["similar_id"] = catalogue.item_ids[out["similar_idx"]].astype(str)
    out["model_version"] = version
    return out


def graph_similar(graph, vectors: np.ndarray, mask: np.ndarray, k: int, ann, space: str):
    """The rows of :func:`graph_neighbours` when fuse's kNN graph holds at least ``k``
    neighbours per item and they are as good as a search would give: found exactly, or their
    recall@k against exact search on a seeded sample of items reaches ``ann.recall_target``.
    Short of it, the neighbours of each item's neighbours join the candidates (the step of a
    kNN-graph refinement such as NN-descent) and the recall is measured again. None when that
    misses the target too (the caller searches)."""
    info = knn_search_info(graph) or {}
    if int(info.get("k", 0)) < k:
        return None
    found, hops, recall = graph_neighbours(graph, vectors, k), 1, 1.0
    target = ann.recall_target if ann is not None else 1.0
    if info.get("search") != "exact":
        recall = list_recall(found, vectors, mask, k, ann)
        if not recall >= target:
            found, hops = graph_neighbours(two_hop(found, len(mask)), vectors, k), 2
            recall = list_recall(found, vectors, mask, k, ann)
        if not recall >= target:
            logger.info(
                "similar items (%s): fuse's kNN graph reaches recall@%d %.3f < %.3f at %d "
                "hops: searching",
                space, k, recall, target, hops,
            )
            return None
    logger.info(
        "similar items (%s): from fuse's kNN graph (%s search, %d hop(s), recall@%d %.3f)",
        space, info.get("search"), hops, k, recall,
    )
    return found


def list_recall(found, vectors: np.ndarray, mask: np.ndarray, k: int, ann) -> float:
    """Recall@k of the lists ``found`` against exact search, on a seeded sample of items."""
    from crossrec.graphs.ann import sampled_recall

    rows = np.flatnonzero(mask & (np.abs(vectors).sum(axis=1) > 0))
    position = np.full(len(mask), -1, np.int64)
    position[rows] = np.arange(len(rows))
    item, _, similar, _ = found
    sample = ann.recall_queries if ann is not None else 1000
    recall, _ = sampled_recall(vectors, rows, position[item], position[similar], k, sample, 0)
    return float(recall)


def two_hop(found, n_items: int) -> sp.csr_matrix:
    """Each item's listed items and theirs: the candidates of a second look."""
    item, _, similar, _ = found
    near = sp.csr_matrix(
        (np.ones(len(item), np.float32), (item, similar)), shape=(n_items, n_items)
    )
    return sp.csr_matrix(near + near @ near)


def graph_neighbours(graph: sp.spmatrix, vectors: np.ndarray, k: int, chunk: int = 1 << 17):
    """(item, rank, similar item, cosine): each item's ``k`` best of its graph neighbours
    (itself excepted) by the cosine of its vectors. The symmetrised graph holds each item's own
    top ``k`` and those that picked it, so the best ``k`` of them are its ``k`` nearest as the
    graph found them."""
    graph = sp.csr_matrix(graph)
    rows = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr))
    cols = graph.indices.astype(np.int64)
    other = rows != cols
    rows, cols = rows[other], cols[other]
    scores = np.empty(len(cols), np.float32)
    for start in range(0, len(cols), chunk):  # one dot product per edge, bounded in memory
        r, c = rows[start : start + chunk], cols[start : start + chunk]
        scores[start : start + chunk] = np.einsum("ed,ed->e", vectors[r], vectors[c])
    order = np.lexsort((cols, -scores, rows))  # by item, best first, ties by item index
    rows, cols, scores = rows[order], cols[order], scores[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=graph.shape[0]))])
    rank = np.arange(len(rows)) - starts[rows] + 1
    keep = rank <= k
    return rows[keep], rank[keep], cols[keep], scores[keep]


def _exact_similar(vectors: np.ndarray, mask: np.ndarray, k: int):
    """(item, rank, similar item, cosine) of every usable item's k nearest, by brute force."""
    parts = []
    for start in range(0, len(mask), 2048):
        rows = np.arange(start, min(start + 2048, len(mask)))
        rows = rows[mask[rows]]
        if not len(rows):
            continue
        scores = vectors[rows] @ vectors.T
        scores[np.arange(len(rows)), rows] = -np.inf
        scores[:, ~mask] = -np.inf
        values, items = top_k(scores, k)
        r, c = np.nonzero(items >= 0)
        parts.append((rows[r], c + 1, items[r, c], values[r, c]))
    if not parts:
        return tuple(np.zeros(0) for _ in range(4))
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def similar_index_kind(ann: AnnConfig) -> str:
    """The faiss index of item-to-item search: ``auto`` has no users to measure on there and
    takes IVF, the faster to build."""
    return "ivf" if ann.kind == "auto" else ann.kind


def _approximate_similar(vectors: np.ndarray, mask: np.ndarray, k: int, ann: AnnConfig):
    """The same rows from a faiss index over the usable items with a non-zero vector."""
    from crossrec.graphs.ann import AnnSettings, approximate_topk

    rows = np.flatnonzero(mask & (np.abs(vectors).sum(axis=1) > 0))
    settings = AnnSettings(
        index=similar_index_kind(ann),
        hnsw_m=ann.hnsw_m,
        hnsw_ef_construction=ann.ef_construction,
        hnsw_ef_search=ann.ef_search,
        ivf_nlist=ann.ivf_lists,
        ivf_nprobe=ann.nprobe,
        recall_target=ann.recall_target,
        max_widenings=ann.max_widenings,
    )
    src, dst, score = approximate_topk(vectors, rows, k, settings)
    starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]]) if len(src) else np.zeros(0, int)
    sizes = np.diff(np.r_[starts, len(src)])
    rank = np.arange(len(src)) - np.repeat(starts, sizes) + 1
    return rows[src], rank, rows[dst], score


#: Columns of a word-queries file (``recommend``'s ``word_queries``): ``query`` is required.
WORD_QUERY_COLUMNS = ("user", "query", "liked")


def word_recommendations_table(
    serving, queries: pd.DataFrame, k: int, source: str, liked_separator: str = "|"
) -> pd.DataFrame:
    """Lists for a file of requests in words, one row per (request, rank): request (0-based
    row of the file), user_id (empty = a new user), query, rank, item_id, score, from_words,
    from_history, model_version. A known ``user`` combines their history with the words;
    ``liked`` (ids split by ``liked_separator``) folds a new user in from a few items. A bad
    row fails naming the file, row and column, before any list is written."""
    from crossrec.data.errors import DataValidationError
    from crossrec.serving import service
    from crossrec.serving.catalogue import BadRequestError, UnknownIdError

    if "query" not in queries.columns:
        raise DataValidationError(
            source,
            f"no 'query' column (columns: {list(queries.columns)})",
            expected="columns query, and optionally user and liked",
        )
    frames = []
    for row, record in enumerate(queries.to_dict("records")):
        user = _cell(record.get("user"))
        liked = [i for i in _cell(record.get("liked")).split(liked_separator) if i.strip()]
        try:
            if user:
                answer = service.recommend_user_words(serving, user, record["query"], k, True, {})
            else:
                answer = service.recommend_words(serving, record["query"], liked, k, {})
        except (BadRequestError, UnknownIdError) as err:
            column = (
                "user"
                if isinstance(err, UnknownIdError) and user
                else ("liked" if isinstance(err, UnknownIdError) else "query")
            )
            raise DataValidationError(source, str(err), row=row + 1, column=column) from None
        items = answer["items"]
        frames.append(
            pd.DataFrame(
                {
                    "request": row,
                    "user_id": user,
                    "query": answer["query"],
                    "rank": np.arange(1, len(items) + 1, dtype=np.int64),
                    "item_id": [i["item_id"] for i in items],
                    "score": np.array([i["score"] for i in items], dtype=np.float32),
                    "from_words": np.array([i["from_words"] for i in items], dtype=np.float32),
                    "from_history": np.array([i["from_history"] for i in items], np.float32),
                    "model_version": serving.fingerprint,
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            columns=[
                "request",
                "user_id",
                "query",
                "rank",
                "item_id",
                "score",
                "from_words",
                "from_history",
                "model_version",
            ]
        )
    return pd.concat(frames, ignore_index=True)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()
