"""benchmarks/collective_ease.py: the content graph and the closed form it feeds."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

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


def test_without_content_it_is_crossrecs_ease(collective_ease):
    from crossrec.evaluation.baselines import ease_weights

    rng = np.random.default_rng(1)
    train = sp.csr_matrix((rng.random((30, 8)) < 0.3).astype(np.float32))
    gram = (train.T @ train).toarray().astype(np.float64)
    np.testing.assert_allclose(
        collective_ease.ease_from_gram(gram, 5.0), ease_weights(train, 5.0), rtol=1e-5, atol=1e-6
    )
