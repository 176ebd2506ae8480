"""kNN item graphs and the normalised user–item graph."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.graphs.knn import knn_graph, normalized_user_item_graph, symmetric_normalize


def _clustered(n_items: int = 60, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, d))
    return (centres[np.arange(n_items) % 4] + 0.1 * rng.normal(size=(n_items, d))).astype(
        np.float32
    )


def test_hand_made_case_has_exact_normalised_values():
    vectors = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]], dtype=np.float32)
    graph = knn_graph(vectors, np.ones(3, dtype=bool), k=1)
    # top-1: 0->1, 1->0, 2->1; symmetric edges 0-1 and 1-2; degrees 1, 2, 1
    expected = np.array(
        [[0, 1 / np.sqrt(2), 0], [1 / np.sqrt(2), 0, 1 / np.sqrt(2)], [0, 1 / np.sqrt(2), 0]]
    )
    np.testing.assert_allclose(graph.toarray(), expected, atol=1e-6)
    assert isinstance(graph, sp.csr_matrix) and graph.dtype == np.float32


def test_graph_is_symmetric_without_self_loops_and_has_top_k_degree():
    vectors = _clustered()
    k = 5
    graph = knn_graph(vectors, np.ones(len(vectors), dtype=bool), k=k)
    dense = graph.toarray()
    np.testing.assert_allclose(dense, dense.T, atol=1e-7)
    assert np.all(np.diag(dense) == 0)
    degree = (dense > 0).sum(axis=1)
    assert degree.min() >= k  # each item keeps its own k neighbours; symmetrising only adds
    # the chosen neighbours are the true top-k by cosine
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    for i in range(len(vectors)):
        top = set(np.argsort(-sims[i])[:k])
        assert top <= set(np.flatnonzero(dense[i]))
    # items of the same cluster link together
    same_cluster = (np.arange(60)[:, None] % 4) == (np.arange(60)[None, :] % 4)
    assert dense[~same_cluster].sum() == 0


def test_chunking_gives_the_same_graph():
    vectors = _clustered(n_items=50, seed=3)
    mask = np.ones(50, dtype=bool)
    whole = knn_graph(vectors, mask, k=4, weighting="cosine")
    chunked = knn_graph(vectors, mask, k=4, weighting="cosine", chunk_rows=7)
    np.testing.assert_allclose(whole.toarray(), chunked.toarray(), atol=1e-6)


def test_masked_and_zero_items_are_isolated():
    vectors = _clustered(n_items=40)
    mask = np.ones(40, dtype=bool)
    mask[[3, 17]] = False
    vectors[25] = 0.0  # mask says usable but the vector is empty
    graph = knn_graph(vectors, mask, k=3).toarray()
    for isolated in (3, 17, 25):
        assert graph[isolated].sum() == 0 and graph[:, isolated].sum() == 0
    others = np.setdiff1d(np.arange(40), [3, 17, 25])
    assert ((graph[others] > 0).sum(axis=1) >= 3).all()


def test_symmetric_normalisation_row_sums_match_formula():
    vectors = _clustered(n_items=30, seed=1)
    graph = knn_graph(vectors, None, k=3, weighting="cosine")
    # D^-1/2 A D^-1/2 has spectral radius 1 (largest eigenvalue of a normalised adjacency)
    eig = np.linalg.eigvalsh(graph.toarray().astype(np.float64))
    assert eig.max() == pytest.approx(1.0, abs=1e-5)


def test_k_larger_than_catalogue_is_capped_and_tiny_catalogue_is_empty():
    vectors = _clustered(n_items=4)
    graph = knn_graph(vectors, np.ones(4, dtype=bool), k=10).toarray()
    off_diag = ~np.eye(4, dtype=bool)
    assert (graph[off_diag] > 0).all()
    single = knn_graph(vectors, np.array([True, False, False, False]), k=2)
    assert single.nnz == 0 and single.shape == (4, 4)


@pytest.mark.parametrize(
    ("vectors", "mask", "k", "message"),
    [
        (np.zeros(5), None, 2, "2-D"),
        (np.zeros((5, 2)), np.ones(4, dtype=bool), 2, "shape"),
        (np.zeros((5, 2)), np.ones(5), 2, "boolean"),
        (np.zeros((5, 2)), None, 0, "k must be"),
        (np.array([[1.0, np.nan], [1.0, 0.0]]), None, 1, "non-finite"),
    ],
)
def test_bad_inputs_raise_clear_errors(vectors, mask, k, message):
    with pytest.raises(ValueError, match=message):
        knn_graph(vectors, mask, k)


def test_user_item_graph_values_and_layout():
    # users 0,1; items 0,1,2; edges u0-i0, u0-i1, u1-i1 (u0-i1 repeated)
    graph = normalized_user_item_graph(np.array([0, 0, 1, 0]), np.array([0, 1, 1, 1]), 2, 3)
    assert graph.shape == (5, 5)
    dense = graph.toarray()
    np.testing.assert_allclose(dense, dense.T)
    deg = {"u0": 2, "u1": 1, "i0": 1, "i1": 2, "i2": 0}
    assert dense[0, 2] == pytest.approx(1 / np.sqrt(deg["u0"] * deg["i0"]))
    assert dense[0, 3] == pytest.approx(1 / np.sqrt(deg["u0"] * deg["i1"]))
    assert dense[1, 3] == pytest.approx(1 / np.sqrt(deg["u1"] * deg["i1"]))
    assert dense[:2, :2].sum() == 0 and dense[2:, 2:].sum() == 0  # bipartite
    assert dense[4].sum() == 0  # item 2 has no train interaction


def test_user_item_graph_rejects_out_of_range_indices():
    with pytest.raises(ValueError, match="item indices outside"):
        normalized_user_item_graph(np.array([0]), np.array([3]), 1, 3)
    with pytest.raises(ValueError, match="equal length"):
        normalized_user_item_graph(np.array([0, 1]), np.array([0]), 2, 3)


def test_symmetric_normalize_keeps_isolated_rows_zero():
    adj = sp.csr_matrix(np.array([[0, 2.0, 0], [2.0, 0, 0], [0, 0, 0]]))
    out = symmetric_normalize(adj).toarray()
    np.testing.assert_allclose(out, [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
