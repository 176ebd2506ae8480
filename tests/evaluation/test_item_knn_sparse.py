"""ItemKNN against RecBole's formulation, on sparse data, and the grid-edge note."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import yaml

from crossrec.evaluation.baselines import ItemKNN
from crossrec.evaluation.grid_edge import grid_edge_note, grid_edges

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def recbole_item_knn_weights(train: sp.csr_matrix, topk: int, shrink: float) -> np.ndarray:
    """RecBole's ``ComputeSimilarity(method="item").compute_similarity`` written out densely:
    per candidate column j, cosine with shrink over every item i, its top-k kept as W[i, j]."""
    x = train.toarray().astype(np.float64)
    norms = np.sqrt((x**2).sum(axis=0))
    weights = np.zeros((x.shape[1], x.shape[1]))
    for j in range(x.shape[1]):
        column = x.T @ x[:, j]
        column[j] = 0.0
        column = column / (norms[j] * norms + shrink + 1e-6)
        top = np.argsort(-column, kind="stable")[: min(topk, x.shape[1])]
        weights[top, j] = column[top]
    return weights


def random_train(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, 31) ** 1.1
    dense = rng.random((60, 30)) < 0.6 * popularity / popularity.max()
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.mark.parametrize("shrink", [0.0, 10.0, 100.0])
def test_scores_equal_recboles_item_knn(shrink: float):
    """Same normalisation, shrink, per-candidate pruning and sum over the history; with pruning
    the kept similarities per candidate are the same values (ties may pick other items)."""
    train = random_train()
    users = torch.arange(train.shape[0])
    ours = ItemKNN(train, neighbours=30, shrink=shrink)
    theirs = train.toarray() @ recbole_item_knn_weights(train, 30, shrink)
    np.testing.assert_allclose(ours(users).numpy(), theirs, rtol=1e-4, atol=1e-7)
    pruned = ItemKNN(train, neighbours=5, shrink=shrink).similarity.toarray()
    expected = recbole_item_knn_weights(train, 5, shrink)
    for j in range(train.shape[1]):
        np.testing.assert_allclose(
            np.sort(pruned[:, j])[-5:], np.sort(expected[:, j])[-5:], rtol=1e-4, atol=1e-7
        )


def drowning_case() -> tuple[sp.csr_matrix, int, list[int]]:
    """User 0 holds two niche items (a, b: two users each). Each niche item's other user also
    holds a one-off tail item (one user) and the popular item P (held by 300 users), which
    co-occurs with both of user 0's items. Returns (train, P, the tail items)."""
    a, b, p, tail_a, tail_b, filler = 0, 1, 2, 3, 4, 5
    rows = [(0, a), (0, b), (1, a), (1, tail_a), (1, p), (2, b), (2, tail_b), (2, p)]
    rows += [(u, p) for u in range(3, 301)] + [(u, filler) for u in range(3, 200)]
    users, items = zip(*rows, strict=True)
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (users, items)), shape=(301, 6))
    return train, p, [tail_a, tail_b]


@pytest.mark.parametrize(("shrink", "popular_first"), [(0.0, False), (10.0, False), (100.0, True)])
def test_one_co_occurrence_drowns_a_popular_item_without_enough_shrink(
    shrink: float, popular_first: bool
):
    """Cosine gives a one-off pair of niche items 1/sqrt(2), the popular item 1/sqrt(600) per
    supporting item: the tail items outrank the popular item that two of the user's items
    support, unless the shrink discounts one-off support (what a sparse catalogue needs:
    without it ItemKNN fell below MostPop there, recommending the deep tail)."""
    train, popular, tail = drowning_case()
    scores = ItemKNN(train, neighbours=100, shrink=shrink)(torch.tensor([0]))[0]
    assert (scores[popular] > scores[tail].max()).item() is popular_first


def test_the_shipped_grid_reaches_the_shrink_sparse_data_needs():
    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_evaluate.yml").read_text())
    grid = params["evaluate"]["baselines"]["ItemKNN"]["grid"]
    assert max(grid["shrink"]) >= 100 and min(grid["shrink"]) == 0
    assert max(grid["neighbours"]) >= 1000


def test_grid_edges():
    points = [{"neighbours": k, "shrink": s} for k in (50, 100) for s in (0.0, 10.0, 100.0)]
    assert grid_edges(points, {"neighbours": 50, "shrink": 10.0}) == {"neighbours": "lowest"}
    assert grid_edges(points, {"neighbours": 100, "shrink": 0.0}) == {"neighbours": "highest"}
    assert grid_edges(points, {"neighbours": 100, "shrink": 100.0}) == {
        "neighbours": "highest",
        "shrink": "highest",
    }
    inside = [{"l2": v} for v in (50.0, 250.0, 1000.0)]
    assert grid_edge_note("EASE", inside, {"l2": 250.0}) == ""
    note = grid_edge_note("EASE", inside, {"l2": 50.0})
    assert note.startswith("EASE: the chosen point is at the edge of its grid")
    assert "l2 50.0 is the lowest of [50.0, 250.0, 1000.0]" in note
    # a key the grid does not vary has no edge; non-numeric values are not ranked
    assert grid_edges([{"l2": 1.0, "kind": "a"}, {"l2": 1.0, "kind": "b"}], {"l2": 1.0}) == {}
