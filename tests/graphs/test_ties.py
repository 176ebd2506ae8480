"""One rule for equally similar neighbours: the kNN graph of multi-hot attribute vectors (many
repeated rows, many distinct rows at the same cosine) is the brute-force rule's, in both
searches."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.graphs.ann import AnnSettings
from crossrec.graphs.knn import knn_graph, knn_search_info
from crossrec.graphs.ties import distinct_rows, priority_rank

K = 5


def _attributes(n_items: int = 400, seed: int = 3) -> np.ndarray:
    """Genre-like multi-hot rows over 8 tags, one to three tags each."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n_items, 8), dtype=np.float32)
    for row in rows:
        row[rng.choice(8, size=rng.integers(1, 4), replace=False)] = 1.0
    return rows


def _rule_neighbours(vectors: np.ndarray, priority: np.ndarray | None, k: int) -> list[set]:
    """Brute force: every other item by cosine (equal to 1e-6), then higher priority, then
    lower index; the first k."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = np.round(unit.astype(np.float64) @ unit.T.astype(np.float64), 6)
    prio = np.zeros(len(vectors)) if priority is None else priority.astype(np.float64)
    out = []
    for i in range(len(vectors)):
        others = [j for j in range(len(vectors)) if j != i]
        others.sort(key=lambda j: (-sims[i, j], -prio[j], j))
        out.append(set(others[:k]))
    return out


def _directed(graph, n: int) -> list[set]:
    dense = graph.toarray() > 0
    return [set(np.flatnonzero(dense[i])) for i in range(n)]


@pytest.mark.parametrize("with_priority", [True, False])
def test_exact_and_approximate_graphs_follow_the_rule(with_priority):
    vectors = _attributes()
    rng = np.random.default_rng(0)
    priority = rng.integers(0, 30, size=len(vectors)) if with_priority else None
    expected = _rule_neighbours(vectors, priority, K)
    graphs = {
        search: knn_graph(vectors, None, K, search=search, priority=priority)
        for search in ("exact", "approximate")
    }
    assert knn_search_info(graphs["exact"])["distinct"] < len(vectors) / 2  # rows repeat
    for search, graph in graphs.items():
        symmetric = _directed(graph, len(vectors))
        for i, picks in enumerate(expected):
            assert picks <= symmetric[i], (search, i)  # its k picks (plus who picked it)
        # nothing beyond the picks and the items that picked it
        picked_by = [{j for j, p in enumerate(expected) if i in p} for i in range(len(vectors))]
        assert all(symmetric[i] == expected[i] | picked_by[i] for i in range(len(vectors)))
    assert (graphs["exact"] != graphs["approximate"]).nnz == 0


def test_without_priority_ties_go_to_the_lower_index():
    vectors = np.ones((30, 4), dtype=np.float32)  # one repeated row: everything is tied
    graph = knn_graph(vectors, None, 3, search="exact")
    directed = _directed(graph, 30)
    assert directed[29] == {0, 1, 2}
    assert directed[0] >= {1, 2, 3}


def test_distinct_rows_groups_identical_vectors_in_order_of_appearance():
    rows = np.array([[1, 0], [0, 1], [1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    groups = distinct_rows(rows)
    assert groups.first.tolist() == [0, 1, 3]
    assert groups.group.tolist() == [0, 1, 0, 2, 1]


def test_priority_rank_prefers_higher_priority_then_lower_row():
    assert priority_rank(np.array([1, 5, 5, 0]), 4).tolist() == [2, 0, 1, 3]
    assert priority_rank(None, 3).tolist() == [0, 1, 2]


def test_recall_is_measured_among_distinct_vectors():
    vectors = _attributes()
    graph = knn_graph(
        vectors, None, K, search="approximate", approximate=AnnSettings(recall_sample=50)
    )
    info = knn_search_info(graph)
    assert info["recall_sampled_items"] == min(50, info["distinct"])
    assert info["recall_at_k"] == pytest.approx(1.0)
