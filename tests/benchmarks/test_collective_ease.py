"""benchmarks/collective_ease.py: the content graph it adds to EASE's Gram matrix."""

from __future__ import annotations

import numpy as np
import pytest

from tests.benchmarks.conftest import load_benchmark


@pytest.fixture(scope="module")
def collective_ease():
    return load_benchmark("collective_ease")


def test_content_graph_is_a_symmetric_top_k_cosine_mean(collective_ease):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 4))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    features = {"a": {"vectors": vectors}, "b": {"vectors": vectors[::-1].copy()}}
    graph = collective_ease.content_graph(features, ["a"], k=2)
    np.testing.assert_allclose(graph, graph.T)
    assert np.all(np.diag(graph) == 0) and np.all(graph >= 0)
    sims = np.clip(vectors @ vectors.T, 0, None)
    for i in range(6):  # each item keeps at least its 2 strongest neighbours (positive ones)
        others = np.argsort(-np.where(np.eye(6, dtype=bool)[i], -1, sims[i]))[:2]
        for j in others:
            if sims[i, j] > 0:
                assert graph[i, j] == pytest.approx(sims[i, j])
    both = collective_ease.content_graph(features, ["a", "b"], k=6)
    single_b = collective_ease.content_graph(features, ["b"], k=6)
    np.testing.assert_allclose(
        both, (collective_ease.content_graph(features, ["a"], 6) + single_b) / 2
    )
