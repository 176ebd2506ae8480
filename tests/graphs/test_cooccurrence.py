"""DRAGON's user co-occurrence graph: top-k by shared train items, row-stochastic, chunk-free."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.graphs.cooccurrence import user_cooccurrence_graph


def _train() -> sp.csr_matrix:
    # user 0 shares 3 items with user 1, 1 with user 2, none with user 3; user 4 has no items
    rows = [0, 0, 0, 0, 1, 1, 1, 2, 2, 3]
    cols = [0, 1, 2, 3, 0, 1, 2, 3, 4, 5]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(5, 6))


def test_neighbours_are_the_users_sharing_most_items_weighted_by_count():
    graph = user_cooccurrence_graph(_train(), k=2).toarray()
    np.testing.assert_allclose(graph[0], [0, 3 / 4, 1 / 4, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(graph[1], [1, 0, 0, 0, 0])  # shares only with user 0
    np.testing.assert_allclose(graph[2], [1, 0, 0, 0, 0])
    assert not graph[3].any() and not graph[4].any()  # no shared item / no items: left alone
    assert not np.diag(graph).any()


def test_k_keeps_the_top_counts_and_breaks_ties_by_lower_index():
    graph = user_cooccurrence_graph(_train(), k=1).toarray()
    np.testing.assert_allclose(graph[0], [0, 1, 0, 0, 0])
    # three users each sharing one item with user 3 -> the lowest index wins the tie
    tied = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=float))
    assert user_cooccurrence_graph(tied, k=1).toarray()[3].tolist() == [1, 0, 0, 0]


def test_matches_a_dense_computation_on_random_data_in_any_chunking():
    train = sp.random(60, 40, density=0.15, format="csr", random_state=3)
    counts = ((train > 0).astype(float) @ (train > 0).astype(float).T).toarray()
    np.fill_diagonal(counts, 0)
    k = 5
    expected = np.zeros_like(counts)
    for user, row in enumerate(counts):
        top = np.argsort(-row, kind="stable")[:k]
        top = top[row[top] > 0]
        if len(top):
            expected[user, top] = row[top] / row[top].sum()
    whole = user_cooccurrence_graph(train, k=k)
    np.testing.assert_allclose(whole.toarray(), expected, rtol=1e-5, atol=1e-7)
    chunked = user_cooccurrence_graph(train, k=k, chunk_rows=7)
    np.testing.assert_allclose(chunked.toarray(), whole.toarray())


def test_repeated_interactions_count_once():
    train = _train()
    doubled = train + train  # a value of 2 is still one interaction
    np.testing.assert_allclose(
        user_cooccurrence_graph(doubled, k=2).toarray(), user_cooccurrence_graph(train, 2).toarray()
    )


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k must be >= 1"):
        user_cooccurrence_graph(_train(), k=0)
