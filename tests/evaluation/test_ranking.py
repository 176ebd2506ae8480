"""Ranking metrics against hand-computed values on tiny cases, masking and tie-breaking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from crossrec.data.matrices import interactions_to_csr
from crossrec.metrics.ranking import (
    auto_chunk_size,
    evaluate_ranking,
    mean_metrics,
    metrics_from_hits,
    rank_all_items,
    tie_break_order,
    topk_deterministic,
)


def _csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    users = [u for u, items in enumerate(rows) for _ in items]
    items = [i for row in rows for i in row]
    return interactions_to_csr(np.array(users), np.array(items), len(rows), n_items)


def _fixed_scores(matrix: np.ndarray):
    table = torch.as_tensor(matrix, dtype=torch.float32)
    return lambda users: table[users]


def test_topk_breaks_ties_by_lower_index_and_orders_by_score() -> None:
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0, 1.0]])
    assert topk_deterministic(scores, 3).tolist() == [[1, 0, 2], [0, 1, 2]]
    # the cut falls inside the tie run {0, 2, 3}: lower indices win
    assert topk_deterministic(scores, 2).tolist() == [[1, 0], [0, 1]]


def test_topk_same_result_whatever_the_column_order_of_ties() -> None:
    """Permuting tied columns must not change which item indices come back."""
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (50, 40), generator=gen).float()
    ranked = topk_deterministic(scores, 10)
    for row, items in zip(scores, ranked, strict=True):
        expected = sorted(range(40), key=lambda i: (-row[i].item(), i))[:10]
        assert items.tolist() == expected


def test_topk_masked_and_nan_items_are_never_returned() -> None:
    scores = torch.tensor([[-torch.inf, 0.2, float("nan"), -torch.inf]])
    assert topk_deterministic(scores, 4).tolist() == [[1, -1, -1, -1]]


def test_topk_k_larger_than_catalogue_and_empty() -> None:
    assert topk_deterministic(torch.tensor([[0.1, 0.3]]), 5).tolist() == [[1, 0]]
    assert topk_deterministic(torch.zeros((0, 3)), 2).shape == (0, 2)


def test_metrics_hand_computed() -> None:
    # user 0: hits at ranks 1 and 3, 3 relevant items; user 1: hit at rank 2 only, 1 relevant
    hits = np.array([[1, 0, 1, 0], [0, 1, 0, 0]], dtype=bool)
    out = metrics_from_hits(hits, np.array([3, 1]), ks=[2, 4])
    d = [1 / math.log2(i + 1) for i in range(1, 5)]
    assert out["recall@2"].tolist() == pytest.approx([1 / 3, 1.0])
    assert out["precision@2"].tolist() == pytest.approx([0.5, 0.5])
    assert out["hit@2"].tolist() == [1.0, 1.0]
    assert out["mrr@2"].tolist() == pytest.approx([1.0, 0.5])
    assert out["ndcg@2"].tolist() == pytest.approx([d[0] / (d[0] + d[1]), d[1] / d[0]])
    assert out["map@2"].tolist() == pytest.approx([1.0 / 2, 0.5 / 1])
    assert out["recall@4"].tolist() == pytest.approx([2 / 3, 1.0])
    assert out["precision@4"].tolist() == pytest.approx([0.5, 0.25])
    assert out["ndcg@4"][0] == pytest.approx((d[0] + d[2]) / (d[0] + d[1] + d[2]))
    assert out["map@4"][0] == pytest.approx((1.0 + 2 / 3) / 3)


def test_metrics_reject_users_without_relevant_items() -> None:
    with pytest.raises(ValueError, match="n_relevant > 0"):
        metrics_from_hits(np.zeros((1, 2), dtype=bool), np.array([0]), ks=[1])


def test_evaluate_ranking_end_to_end_hand_computed() -> None:
    # 3 users, 5 items. User 2 has no test items: left out of the averages.
    scores = np.array(
        [
            [0.9, 0.8, 0.7, 0.6, 0.5],  # train {0}: ranking 1,2,3,4 ; test {2} -> rank 2
            [0.1, 0.1, 0.1, 0.1, 0.1],  # all tied, train {1}: ranking 0,2,3,4 ; test {4} -> rank 4
            [0.5, 0.4, 0.3, 0.2, 0.1],
        ]
    )
    train = _csr([[0], [1], [0]], 5)
    test = _csr([[2], [4], []], 5)
    users, per_user = evaluate_ranking(_fixed_scores(scores), test, train, ks=[1, 2, 10])
    assert users.tolist() == [0, 1]
    assert per_user["recall@1"].tolist() == [0.0, 0.0]
    assert per_user["recall@2"].tolist() == [1.0, 0.0]
    assert per_user["mrr@10"].tolist() == pytest.approx([0.5, 0.25])
    assert per_user["ndcg@10"].tolist() == pytest.approx([1 / math.log2(3), 1 / math.log2(5)])
    # K = 10 > 5 items: precision still divides by K
    assert per_user["precision@10"].tolist() == pytest.approx([0.1, 0.1])
    assert per_user["hit@10"].tolist() == [1.0, 1.0]
    assert mean_metrics(per_user)["recall@2"] == pytest.approx(0.5)


def test_perfect_scorer_gets_one() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 30, 25
    train = sp.csr_matrix((rng.random((n_users, n_items)) < 0.3).astype(np.float32))
    test_dense = (rng.random((n_users, n_items)) < 0.1) & (train.toarray() == 0)
    test = sp.csr_matrix(test_dense.astype(np.float32))
    # score test items highest, TRAIN items even higher: masking must remove them
    scores = test_dense * 1.0 + train.toarray() * 5.0
    users, per_user = evaluate_ranking(_fixed_scores(scores), test, train, ks=[n_items])
    means = mean_metrics(per_user)
    for name in ("recall", "ndcg", "mrr", "hit", "map"):
        assert means[f"{name}@{n_items}"] == pytest.approx(1.0), name
    assert len(users) == int((test_dense.sum(1) > 0).sum())


def test_train_items_are_never_recommended_across_chunks() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items = 23, 17
    exclude = sp.csr_matrix((rng.random((n_users, n_items)) < 0.4).astype(np.float32))
    scores = exclude.toarray() * 100 + rng.random((n_users, n_items))
    ranked = rank_all_items(
        _fixed_scores(scores), np.arange(n_users), exclude, k=n_items, chunk_users=4
    )
    for user, items in enumerate(ranked):
        kept = items[items >= 0]
        assert not set(kept) & set(exclude[user].indices)
        assert len(kept) == n_items - exclude[user].nnz  # every unmasked item is ranked


def test_chunking_does_not_change_results() -> None:
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 3, size=(40, 30)).astype(np.float32)  # many ties
    train = sp.csr_matrix((rng.random((40, 30)) < 0.2).astype(np.float32))
    test = sp.csr_matrix(((rng.random((40, 30)) < 0.2) & (train.toarray() == 0)).astype(np.float32))
    a = evaluate_ranking(_fixed_scores(scores), test, train, ks=[5, 20], chunk_users=3)
    b = evaluate_ranking(_fixed_scores(scores), test, train, ks=[5, 20])
    assert np.array_equal(a[0], b[0])
    for name in a[1]:
        assert np.array_equal(a[1][name], b[1][name]), name


def test_score_fn_output_is_not_modified() -> None:
    table = torch.ones((2, 3))
    train = _csr([[0], [1]], 3)
    evaluate_ranking(lambda users: table[:2], _csr([[1], [2]], 3), train, ks=[2])
    assert torch.equal(table, torch.ones((2, 3)))


def test_overlap_between_truth_and_exclude_is_dropped_with_warning(caplog) -> None:
    train = _csr([[0, 1]], 3)
    test = _csr([[1, 2]], 3)
    users, per_user = evaluate_ranking(_fixed_scores(np.ones((1, 3))), test, train, ks=[1])
    assert per_user["recall@1"].tolist() == [1.0]  # only item 2 counts; it is ranked first
    assert "dropping them" in caplog.text


def test_clear_errors_for_bad_inputs() -> None:
    fn = _fixed_scores(np.ones((2, 3)))
    with pytest.raises(ValueError, match="exclude has shape"):
        evaluate_ranking(fn, _csr([[1], [2]], 3), _csr([[1], [2], [0]], 3))
    with pytest.raises(ValueError, match="positive cut-offs"):
        evaluate_ranking(fn, _csr([[1], [2]], 3), _csr([[0], [0]], 3), ks=[0])
    with pytest.raises(ValueError, match="expected \\(2, 3\\)"):
        evaluate_ranking(lambda u: torch.ones((2, 4)), _csr([[1], [2]], 3), _csr([[0], [0]], 3))


def test_auto_chunk_size_respects_budget() -> None:
    assert auto_chunk_size(1_000_000) == 9
    assert auto_chunk_size(10, budget_bytes=100) == 1


def test_topk_accepts_half_precision_and_matches_float() -> None:
    scores = torch.tensor([[0.5, 0.25, 0.75, 0.25]])
    assert topk_deterministic(scores.to(torch.bfloat16), 3).tolist() == [[2, 0, 1]]
    assert topk_deterministic(scores.double(), 3).tolist() == [[2, 0, 1]]


@pytest.mark.parametrize("tie_order", [None, "seeded"])
def test_ranking_a_candidate_subset_equals_masking_the_other_items(tie_order) -> None:
    """Candidates are ranked on their own columns: the same lists, ties in the same order, as
    scoring every item and masking the non-candidates (a few candidates, many tied scores)."""
    rng = np.random.default_rng(3)
    n_users, n_items, k = 40, 300, 20
    scores = torch.tensor(rng.integers(0, 4, size=(n_users, n_items)), dtype=torch.float32)
    exclude = sp.csr_matrix(rng.random((n_users, n_items)) < 0.1)
    candidates = rng.random(n_items) < 0.08  # fewer candidates than k for some users
    order = None if tie_order is None else tie_break_order(n_items, 7)
    users = np.arange(n_users)
    subset = rank_all_items(
        lambda u: scores[u],
        users,
        exclude,
        k,
        chunk_users=7,
        candidates=candidates,
        tie_order=order,
    )
    masked = rank_all_items(
        lambda u: scores[u],
        users,
        exclude + sp.csr_matrix(np.tile(~candidates, (n_users, 1))),
        k,
        chunk_users=7,
        tie_order=order,
    )
    np.testing.assert_array_equal(subset, masked)
    assert (subset == -1).any() and set(subset[subset >= 0]) <= set(np.flatnonzero(candidates))


def _wide_rows() -> dict[str, torch.Tensor]:
    """Rows wide enough for the threshold path, shaped like real scores and their worst cases."""
    gen = torch.Generator().manual_seed(3)
    n = 20_000
    sparse = torch.rand(30, n, generator=gen) < 0.999
    return {
        "learnt": torch.randn(40, n, generator=gen),
        "rounded (ties at the cut)": torch.round(torch.randn(30, n, generator=gen) * 3),
        "all tied": torch.zeros(4, n),
        "mostly masked": torch.where(sparse, -torch.inf, torch.randn(30, n, generator=gen)),
        "one row all masked": torch.cat([torch.full((1, n), -torch.inf), torch.randn(3, n)]),
        "popularity (one sorted row for everyone)": torch.sort(
            torch.rand(1, n, generator=gen), descending=True
        ).values.repeat(6, 1),
        "int64 keys": torch.randint(-(2**62), 2**62, (10, n), generator=gen),
    }


@pytest.mark.parametrize("m", [1, 21, 51, 301])
def test_threshold_top_m_equals_selection_by_partition(m: int) -> None:
    from crossrec.metrics import ranking

    for name, scores in _wide_rows().items():
        fast_values, fast_items = ranking._largest_above_threshold(scores, m)
        values, _ = ranking._largest_by_partition(scores, m)
        assert torch.equal(fast_values, values), name
        assert torch.equal(torch.gather(scores, 1, fast_items), fast_values), name
        assert all(len(set(row.tolist())) == m for row in fast_items), name


def test_topk_of_wide_rows_is_the_exact_order_with_nan_as_masked() -> None:
    for name, scores in _wide_rows().items():
        if scores.dtype != torch.float32:
            continue
        scores = scores[:4].clone()
        scores[0, 7] = float("nan")
        ranked = topk_deterministic(scores, 25)
        for row, items in zip(scores, ranked, strict=True):
            clean = torch.where(torch.isnan(row), -torch.inf, row)
            order = sorted(range(len(row)), key=lambda i: (-clean[i].item(), i))[:25]
            expected = [i if clean[i] > -torch.inf else -1 for i in order]
            assert items.tolist() == expected, name


def test_a_cut_too_deep_for_the_threshold_path_is_selected_by_partition() -> None:
    from crossrec.metrics import ranking

    scores = torch.randn(3, 20_000, generator=torch.Generator().manual_seed(4))
    for m in (1000, 19_999):  # blocks would hold fewer than four entries each
        values, items = ranking._largest(scores, m)
        assert torch.equal(values, ranking._largest_by_partition(scores, m)[0])
        assert torch.equal(torch.gather(scores, 1, items), values)
