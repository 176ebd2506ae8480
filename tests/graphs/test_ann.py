"""Approximate (faiss) kNN item graphs: recall against exact search, the recorded recall,
the exact path below the threshold, the fuse configuration."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import crossrec.graphs.knn as knn_module
from crossrec.config import ConfigError
from crossrec.graphs.ann import AnnSettings, sampled_recall
from crossrec.graphs.config import parse_fuse_params
from crossrec.graphs.fuse import build_modality_graphs, modality_graph_lift
from crossrec.graphs.knn import knn_graph, knn_search_info

N_ITEMS, DIM, K = 5000, 64, 10


def _embeddings(n_items: int = N_ITEMS, d: int = DIM, seed: int = 0) -> np.ndarray:
    """Clustered vectors of low intrinsic dimension, like content embeddings: 50 clusters of
    unequal size in a 16-d latent space, mapped linearly to ``d`` dims, plus isotropic noise."""
    rng = np.random.default_rng(seed)
    sizes = rng.pareto(1.5, 50) + 1
    cluster = rng.choice(50, size=n_items, p=sizes / sizes.sum())
    latent = rng.normal(size=(50, 16))[cluster] + 0.6 * rng.normal(size=(n_items, 16))
    return (latent @ rng.normal(size=(16, d)) + 0.1 * rng.normal(size=(n_items, d))).astype(
        np.float32
    )


def _exact_top_k(vectors: np.ndarray, k: int) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :k]


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return _embeddings()


def _with_neighbours(vectors: np.ndarray, k: int, settings: AnnSettings):
    """The approximate graph and the directed top-k neighbours the index returned (read off
    :func:`approximate_topk` as knn_graph calls it; the vectors are distinct)."""
    calls = []
    real = knn_module.approximate_topk

    def spy(*args, **kwargs):
        calls.append(real(*args, **kwargs))
        return calls[-1]

    knn_module.approximate_topk = spy
    try:
        graph = knn_graph(
            vectors, None, k, search="auto", approximate_above=0, approximate=settings
        )
    finally:
        knn_module.approximate_topk = real
    ((src, dst, _),) = calls  # k + k candidates per row, in order of score: the top k
    top = np.arange(len(src)) - np.searchsorted(src, src) < k
    return graph, src[top], dst[top]


def _recall_with_ties(vectors: np.ndarray, src: np.ndarray, dst: np.ndarray, k: int) -> float:
    """Mean over all items of the share of their k returned neighbours whose cosine reaches
    the exact k-th best (any of several tied items is a right answer)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    kth = -np.sort(-sims, axis=1)[:, k - 1]
    return float(np.mean(sims[src, dst] >= kth[src] - 1e-5))


@pytest.fixture(scope="module")
def spied(vectors):
    """Approximate graph with the recall of every item measured."""
    return _with_neighbours(vectors, K, AnnSettings(recall_sample=N_ITEMS))


def test_forced_approximate_graph_recovers_the_exact_neighbours(vectors, spied):
    graph, src, dst = spied
    exact = _exact_top_k(vectors, K)
    # every item gets k directed neighbours, none of them itself
    assert np.array_equal(np.bincount(src, minlength=N_ITEMS), np.full(N_ITEMS, K))
    assert not (src == dst).any()
    # the symmetrised graph contains >= 90% of the exact top-k pairs
    exact_pairs = (np.repeat(np.arange(N_ITEMS), K), exact.ravel())
    found = np.asarray(graph[exact_pairs]).ravel() > 0
    assert found.mean() >= 0.9
    # and the exact graph's edges: compare with the exact path's graph
    exact_graph = knn_graph(vectors, None, K, search="exact")
    shared = exact_graph.multiply(graph > 0).nnz / exact_graph.nnz
    assert shared >= 0.9


def test_recorded_recall_matches_an_independent_computation(vectors, spied):
    graph, src, dst = spied
    info = knn_search_info(graph)
    exact = _exact_top_k(vectors, K)
    assert np.array_equal(src, np.repeat(np.arange(N_ITEMS), K))  # k per item, in item order
    neighbours = dst.reshape(N_ITEMS, K)
    per_item = [len(set(neighbours[i]) & set(exact[i])) / K for i in range(N_ITEMS)]
    assert info["search"] == "approximate" and info["index"] == "hnsw"
    assert info["items"] == N_ITEMS and info["k"] == K
    assert info["recall_sampled_items"] == N_ITEMS
    assert info["recall_at_k"] == pytest.approx(np.mean(per_item), abs=1e-9)
    assert info["recall_at_k"] >= 0.9
    assert _recall_with_ties(vectors, src, dst, K) == pytest.approx(np.mean(per_item), abs=1e-9)


def test_repeated_vectors_give_the_same_graph_in_both_searches():
    # attribute-like vectors: 40 distinct rows, 25 items each, so every item has 24 neighbours
    # at cosine 1: the search runs over the 40 distinct rows and both paths keep the same 10
    # copies, those with the highest priority
    rng = np.random.default_rng(5)
    vectors = np.repeat(rng.normal(size=(40, 12)).astype(np.float32), 25, axis=0)
    vectors = vectors[rng.permutation(len(vectors))]
    priority = rng.integers(0, 50, size=len(vectors))
    approximate = knn_graph(
        vectors,
        None,
        K,
        search="approximate",
        approximate=AnnSettings(recall_sample=40),
        priority=priority,
    )
    exact = knn_graph(vectors, None, K, search="exact", priority=priority)
    info = knn_search_info(approximate)
    assert info["distinct"] == 40 and info["items"] == len(vectors)
    assert info["recall_at_k"] == 1.0 and info["recall_sampled_items"] == 40
    assert (approximate != exact).nnz == 0
    copies = np.unique(vectors, axis=0, return_inverse=True)[1].ravel()
    order = np.lexsort((np.arange(len(vectors)), -priority))
    directed = approximate.toarray() > 0
    for item in rng.choice(len(vectors), size=50, replace=False):
        mates = [j for j in order if copies[j] == copies[item] and j != item][:K]
        assert directed[item, mates].all()  # its picks (the graph adds who picked it)


def test_sampled_recall_is_logged_and_close_to_the_full_recall(vectors, spied, caplog):
    full = knn_search_info(spied[0])["recall_at_k"]
    with caplog.at_level(logging.INFO, logger="crossrec.graphs.knn"):
        graph = knn_graph(vectors, None, K, search="approximate", name="image")
    info = knn_search_info(graph)
    assert info["recall_sampled_items"] == 1000
    assert abs(info["recall_at_k"] - full) < 0.05
    message = next(r.getMessage() for r in caplog.records if "knn_graph(image)" in r.getMessage())
    assert "approximate HNSW" in message and "5,000 items" in message
    assert f"recall@{K} {info['recall_at_k']:.3f} on 1,000 sampled items" in message


def test_approximate_graph_is_symmetric_normalised_without_self_loops(spied):
    graph = spied[0]
    assert abs(graph - graph.T).max() < 1e-7
    assert graph.diagonal().max() == 0
    # binary weights: entry (i, j) = 1 / sqrt(deg_i deg_j), degrees counted on the graph
    coo = graph.tocoo()
    degree = np.diff(graph.indptr)
    np.testing.assert_allclose(coo.data, 1 / np.sqrt(degree[coo.row] * degree[coo.col]), rtol=1e-6)


def test_ivf_index_and_a_low_recall_warning(vectors, caplog):
    good = knn_graph(
        vectors, None, K, search="approximate", approximate=AnnSettings(index="ivf", ivf_nprobe=32)
    )
    assert knn_search_info(good)["index"] == "ivf"
    assert knn_search_info(good)["recall_at_k"] >= 0.9
    poor = AnnSettings(index="ivf", ivf_nlist=400, ivf_nprobe=1)
    with caplog.at_level(logging.INFO, logger="crossrec.graphs.knn"):
        graph = knn_graph(vectors, None, K, search="approximate", approximate=poor)
    recall = knn_search_info(graph)["recall_at_k"]
    assert recall < 0.9
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "recall@" in r.message]
    assert len(warned) == 1 and f"{recall:.3f}" in warned[0].message


def test_a_search_short_of_the_recall_target_widens_before_the_full_query(vectors, caplog):
    """nprobe 1 of 400 cells misses neighbours; with a recall target the search doubles nprobe
    on the recall sample until it reaches the target, narrows it back by bisection while the
    target holds, then queries every item that way."""
    poor = AnnSettings(index="ivf", ivf_nlist=400, ivf_nprobe=1, recall_target=0.9)
    with caplog.at_level(logging.INFO, logger="crossrec.graphs"):
        graph, src, dst = _with_neighbours(vectors, K, replace(poor, max_widenings=8))
    info = knn_search_info(graph)
    assert info["recall_at_k"] >= 0.9
    # the recall the widening measured is the full query's recall on the same sample
    rows = np.arange(N_ITEMS)
    assert info["recall_at_k"] == pytest.approx(
        sampled_recall(vectors, rows, src, dst, K, 1000, 0)[0], abs=1e-12
    )
    nprobe = int(info["index_settings"].split("nprobe=")[1].rstrip(")"))
    widened = [r.message for r in caplog.records if "widening to" in r.message]
    doubled = 2 ** len(widened)  # the first power of two that reached the target
    assert doubled // 2 < nprobe <= doubled
    narrowed = [r.message for r in caplog.records if "narrowed to" in r.message]
    assert bool(narrowed) == (nprobe < doubled)
    # the breadth just below it misses the target on the same sample
    below = replace(poor, ivf_nprobe=nprobe - 1, recall_target=0.0)
    _, below_src, below_dst = _with_neighbours(vectors, K, below)
    if nprobe - 1 > doubled // 2:
        assert sampled_recall(vectors, rows, below_src, below_dst, K, 1000, 0)[0] < 0.9 or (
            nprobe - 1 - doubled // 2 < doubled // 8  # finer than two bisection steps
        )
    # one widening allowed: nprobe 2, still short, and the warning says so
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="crossrec.graphs"):
        short = knn_graph(
            vectors, None, K, search="approximate", approximate=replace(poor, max_widenings=1)
        )
    assert "nprobe=2)" in knn_search_info(short)["index_settings"]
    assert knn_search_info(short)["recall_at_k"] < 0.9
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def _reference_graph(vectors: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """The exact graph written out with numpy: top-k of the usable items, symmetrised by max,
    ``D^-1/2 A D^-1/2``."""
    usable = np.flatnonzero(mask & (np.linalg.norm(vectors, axis=1) > 0))
    top = _exact_top_k(vectors[usable], k)
    adj = np.zeros((len(vectors), len(vectors)))
    adj[np.repeat(usable, k), usable[top.ravel()]] = 1.0
    adj = np.maximum(adj, adj.T)
    degree = adj.sum(axis=1)
    inv = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1)), 0.0)
    return inv[:, None] * adj * inv[None, :]


def test_below_the_threshold_the_graph_is_the_exact_one():
    vectors = _embeddings(n_items=800, d=32, seed=4)
    mask = np.ones(800, dtype=bool)
    mask[::7] = False
    auto = knn_graph(vectors, mask, 6, approximate_above=mask.sum())  # not above: exact
    exact = knn_graph(vectors, mask, 6, search="exact")
    assert knn_search_info(auto)["search"] == "exact"
    assert (auto != exact).nnz == 0
    np.testing.assert_allclose(auto.toarray(), _reference_graph(vectors, mask, 6), atol=1e-6)
    above = knn_graph(vectors, mask, 6, approximate_above=mask.sum() - 1)
    assert knn_search_info(above)["search"] == "approximate"


def test_approximate_path_isolates_masked_and_zero_items():
    vectors = _embeddings(n_items=600, d=32, seed=2)
    mask = np.ones(600, dtype=bool)
    mask[[5, 70]] = False
    vectors[300] = 0.0
    graph = knn_graph(vectors, mask, 5, search="approximate").toarray()
    for isolated in (5, 70, 300):
        assert graph[isolated].sum() == 0 and graph[:, isolated].sum() == 0
    others = np.setdiff1d(np.arange(600), [5, 70, 300])
    assert ((graph[others] > 0).sum(axis=1) >= 5).all()


def test_fuse_records_how_each_graph_was_searched(vectors):
    n_items = 1500
    fused = {
        "image": {"vectors": vectors[:n_items], "mask": np.ones(n_items, dtype=bool)},
        "text": {"vectors": _embeddings(n_items, 24, seed=9), "mask": np.ones(n_items, bool)},
        "__order__": ["image", "text"],
    }
    params = {"knn": {"k": 5, "approximate_above": 0, "k_per_modality": {"text": 3}}}
    graphs = build_modality_graphs(fused, parse_fuse_params(params))
    rng = np.random.default_rng(0)
    interactions = pd.DataFrame(
        {"user_idx": rng.integers(0, 100, 3000), "item_idx": rng.integers(0, n_items, 3000)}
    ).assign(split="train")
    report = modality_graph_lift(graphs, interactions, {"n_users": 100, "n_items": n_items})
    for name, k in (("image", 5), ("text", 3)):
        knn = report[name]["knn"]
        assert knn["search"] == "approximate" and knn["k"] == k and knn["items"] == n_items
        assert knn["recall_at_k"] == knn_search_info(graphs[name])["recall_at_k"] >= 0.9
    exact = build_modality_graphs(fused, parse_fuse_params({"knn": {"k": 5}}))
    assert knn_search_info(exact["image"])["search"] == "exact"


@pytest.mark.parametrize(
    ("knn", "key"),
    [
        ({"search": "fast"}, "fuse.knn.search"),
        ({"approximate_above": -1}, "fuse.knn.approximate_above"),
        ({"approximate": {"index": "lsh"}}, "fuse.knn.approximate.index"),
        ({"approximate": {"hnsw_m": 1}}, "fuse.knn.approximate.hnsw_m"),
        ({"approximate": {"hnsw_ef_search": 0}}, "fuse.knn.approximate.hnsw_ef_search"),
        ({"approximate": {"ivf_nprobe": 0}}, "fuse.knn.approximate.ivf_nprobe"),
        ({"approximate": {"recall_sample": -5}}, "fuse.knn.approximate.recall_sample"),
        ({"approximate": {"ef": 10}}, "fuse.knn.approximate.ef"),
    ],
)
def test_bad_knn_settings_fail_with_the_key_name(knn, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_fuse_params({"knn": knn})
