"""Non-learnt baselines: exact scores on tiny cases, sanity on the synthetic dataset."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from crossrec.evaluation.baselines import (
    EASE,
    ItemKNN,
    MostPopular,
    RandomScorer,
    ease_weights,
    item_cosine_neighbours,
    item_popularity,
)
from crossrec.evaluation.protocol import build_split
from crossrec.metrics.ranking import evaluate_ranking, mean_metrics, rank_all_items


def test_most_popular_ranks_in_popularity_order_with_index_ties() -> None:
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 1], [0, 1, 0, 0, 1], [0, 1, 0, 1, 0]]))
    assert item_popularity(train).tolist() == [1, 3, 0, 1, 2]
    empty = sp.csr_matrix((3, 5))
    ranked = rank_all_items(MostPopular(train), np.arange(3), empty, k=5)
    assert ranked[0].tolist() == [1, 4, 0, 3, 2]  # items 0 and 3 tie at 1: lower index first
    assert (ranked == ranked[0]).all()


def test_item_cosine_matches_hand_computation() -> None:
    # users x items: item0 {u0,u1}, item1 {u0}, item2 {u1,u2}
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=np.float32))
    sim = item_cosine_neighbours(train, neighbours=5, shrink=0.0).toarray()
    expected = np.array(
        [[0, 1 / np.sqrt(2), 1 / 2], [1 / np.sqrt(2), 0, 0], [1 / 2, 0, 0]], dtype=np.float32
    )
    np.testing.assert_allclose(sim, expected, rtol=1e-6)
    pruned = item_cosine_neighbours(train, neighbours=1, shrink=0.0).toarray()
    assert (pruned > 0).sum(axis=1).tolist() == [1, 1, 1]
    assert pruned[0, 1] == pytest.approx(1 / np.sqrt(2))  # the strongest neighbour survives


def test_item_knn_scores_are_history_times_similarity() -> None:
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=np.float32))
    knn = ItemKNN(train, neighbours=5, shrink=0.0)
    scores = knn(torch.tensor([2]))
    np.testing.assert_allclose(scores.numpy(), [[0.5, 0.0, 0.0]], rtol=1e-6)


def test_item_knn_prunes_per_candidate_as_recbole() -> None:
    """neighbours=1: a candidate scores only from its own nearest item (RecBole's ItemKNN)."""
    # top-1 neighbours: item0 -> item1, item1 -> item0, item2 -> item0
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=np.float32))
    knn = ItemKNN(train, neighbours=1, shrink=0.0)
    # user 0 holds items 0 and 1: item2's nearest item (item0) is in the history -> 1/2;
    # pruned per history item instead, item2 would get nothing (neither 0 nor 1 picks it)
    np.testing.assert_allclose(
        knn(torch.tensor([0])).numpy(), [[1 / np.sqrt(2), 1 / np.sqrt(2), 0.5]], rtol=1e-6
    )
    # user 2 holds item2, which is nobody's nearest item: nothing is supported
    np.testing.assert_allclose(knn(torch.tensor([2])).numpy(), [[0.0, 0.0, 0.0]])


def test_ease_weights_solve_each_items_ridge_regression() -> None:
    """Column j of B is the ridge regression of item j on every other item (Steck 2019), so
    the closed form must match solving those regressions one by one; an item nobody
    trained on gets a zero column."""
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 6)) < 0.4).astype(np.float32)
    dense[:, 5] = 0.0  # a cold item
    l2 = 3.0
    weights = ease_weights(sp.csr_matrix(dense), l2)
    x = dense.astype(np.float64)
    for j in range(5):
        others = [i for i in range(6) if i != j]
        gram = x[:, others].T @ x[:, others] + l2 * np.eye(5)
        expected = np.linalg.solve(gram, x[:, others].T @ x[:, j])
        np.testing.assert_allclose(weights[others, j], expected, rtol=1e-4, atol=1e-6)
    assert np.all(np.diag(weights) == 0.0)
    assert np.all(weights[:, 5] == 0.0)


def test_ease_refuses_a_catalogue_too_large_for_dense_matrices() -> None:
    train = sp.csr_matrix((2, 60_000), dtype=np.float32)
    with pytest.raises(ValueError, match=r"60,000 x 60,000.*EASE.enabled: false"):
        ease_weights(train, 250.0)


def test_ease_scores_are_history_times_weights() -> None:
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1], [1, 1, 1]], dtype=np.float32))
    model = EASE(train, l2=1.0)
    weights = ease_weights(train, 1.0)
    scores = model(torch.tensor([1])).numpy()
    np.testing.assert_allclose(scores, [weights[0] + weights[2]], rtol=1e-6)


def test_random_scorer_is_reproducible_per_user() -> None:
    scorer = RandomScorer(7, seed=3)
    a = scorer(torch.tensor([0, 4]))
    b = scorer(torch.tensor([4]))
    assert torch.equal(a[1], b[0])
    assert not torch.equal(a[0], a[1])


def test_baselines_sane_on_synthetic(synthetic_ingested) -> None:
    info = synthetic_ingested["dataset_info"]
    split = build_split(
        synthetic_ingested["interactions"],
        synthetic_ingested["items"],
        info["n_users"],
        info["n_items"],
    )
    seen = split.train + split.valid

    def recall(scorer) -> float:
        _, per_user = evaluate_ranking(scorer, split.test, seen, ks=[10])
        return mean_metrics(per_user)["recall@10"]

    random_recall = np.mean([recall(RandomScorer(split.n_items, seed=s)) for s in range(5)])
    knn_recall = recall(ItemKNN(split.train, neighbours=20, shrink=1.0))
    ease_recall = recall(EASE(split.train, l2=10.0))
    pop_recall = recall(MostPopular(split.train))
    assert knn_recall > random_recall + 0.05
    assert ease_recall > random_recall + 0.05
    assert pop_recall > 0.0


def test_tie_order_decides_ties_and_keeps_score_order() -> None:
    """MostPop with a tie order: popularity first, tied items in the given order, masks kept."""
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 1], [0, 1, 0, 0, 1], [0, 1, 0, 1, 0]]))
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]))
    order = np.array([3, 2, 4, 0, 1])  # ties: item 3 before 2 before 4 before 0 before 1
    ranked = rank_all_items(MostPopular(train), np.arange(3), exclude, k=5, tie_order=order)
    assert ranked[0].tolist() == [1, 4, 3, 0, 2]  # 3 and 0 tie at popularity 1: order says 3
    assert ranked[1].tolist() == [1, 4, 3, 2, -1]  # item 0 masked for user 1


def test_tie_order_removes_the_edge_item_ids_give_to_ties() -> None:
    """All-zero (tied) scores: under index ties the low ids win; under a seeded permutation the
    result matches chance, whatever the ids encode."""
    from crossrec.metrics.ranking import tie_break_order

    n_users, n_items = 300, 200
    rng = np.random.default_rng(0)
    # held-out items concentrate on low ids, as popular old movies do in MovieLens
    truth_items = np.minimum(rng.geometric(0.05, size=n_users) - 1, n_items - 1)
    truth = sp.csr_matrix(
        (np.ones(n_users), (np.arange(n_users), truth_items)), shape=(n_users, n_items)
    )
    empty = sp.csr_matrix((n_users, n_items))
    tied = lambda users: torch.zeros(len(users), n_items)  # noqa: E731
    _, by_index = evaluate_ranking(tied, truth, empty, ks=[20])
    _, by_random = evaluate_ranking(
        tied, truth, empty, ks=[20], tie_order=tie_break_order(n_items, 0)
    )
    assert by_index["recall@20"].mean() > 0.5
    assert abs(by_random["recall@20"].mean() - 20 / n_items) < 0.06
    with pytest.raises(ValueError, match="permutation"):
        evaluate_ranking(tied, truth, empty, ks=[20], tie_order=np.zeros(n_items, np.int64))
