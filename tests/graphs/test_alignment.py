"""Lift of a modality graph: co-occurrence of its neighbours against random item pairs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.graphs.alignment import edge_cosines, graph_lift, mean_pair_cosine


def _dense_cosines(train: sp.csr_matrix) -> np.ndarray:
    dense = train.toarray()
    co = dense.T @ dense
    degree = dense.sum(axis=0)
    return co / np.sqrt(np.maximum(np.outer(degree, degree), 1.0))


@pytest.fixture
def train() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 12)) < 0.3).astype(np.float32)
    dense[:, 11] = 0.0  # an item nobody consumed in train
    return sp.csr_matrix(dense)


def test_mean_pair_cosine_is_the_mean_over_distinct_pairs(train):
    cos = _dense_cosines(train)
    off_diagonal = ~np.eye(12, dtype=bool)
    assert mean_pair_cosine(train) == pytest.approx(cos[off_diagonal].mean(), rel=1e-6)


def test_edge_cosines_read_each_stored_off_diagonal_entry(train):
    graph = sp.csr_matrix((np.ones(5), ([0, 1, 2, 3, 4], [1, 0, 2, 11, 7])), shape=(12, 12))
    cos = _dense_cosines(train)
    got = edge_cosines(graph, train, chunk=2)  # chunks smaller than the edge list
    np.testing.assert_allclose(got, [cos[0, 1], cos[1, 0], cos[3, 11], cos[4, 7]], rtol=1e-6)


def test_a_graph_of_co_consumed_items_has_a_lift_above_one_and_a_random_one_near_one():
    # two user groups, each consuming one half of the catalogue
    rng = np.random.default_rng(1)
    dense = np.zeros((200, 20), dtype=np.float32)
    dense[:100, :10] = rng.random((100, 10)) < 0.4
    dense[100:, 10:] = rng.random((100, 10)) < 0.4
    train = sp.csr_matrix(dense)
    same_half = sp.csr_matrix(
        (np.ones(20), (np.arange(20), (np.arange(20) + 1) % 10 + (np.arange(20) // 10) * 10)),
        shape=(20, 20),
    )
    across = sp.csr_matrix((np.ones(20), (np.arange(20), (np.arange(20) + 10) % 20)))
    report = graph_lift({"content": same_half, "noise": across}, train)
    assert report["content"]["lift"] > 1.8
    assert report["noise"]["lift"] == 0.0  # the halves never share a user
    assert report["content"]["edges"] == 20
    assert graph_lift({"x": same_half}, sp.csr_matrix((200, 20)))["x"]["lift"] is None
