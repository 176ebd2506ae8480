"""Split matrices, slices (warm/cold, history buckets) and seed aggregation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from crossrec.evaluation.protocol import (
    aggregate_seeds,
    build_split,
    evaluate_scorer,
    history_buckets,
    per_user_seed_mean,
    ranking_slices,
)


def _tiny():
    # 3 users, 6 items; item 5 is cold (only in test)
    rows = [
        (0, 0, "train"),
        (0, 1, "train"),
        (0, 2, "valid"),
        (0, 3, "test"),
        (0, 5, "test"),
        (1, 0, "train"),
        (1, 4, "test"),
        (2, 1, "train"),
        (2, 2, "train"),
        (2, 3, "train"),
        (2, 4, "train"),
        (2, 5, "valid"),
    ]
    inter = pd.DataFrame(rows, columns=["user_idx", "item_idx", "split"])
    inter["timestamp"] = np.arange(len(inter))
    items = pd.DataFrame({"item_idx": range(6), "is_cold": [False] * 5 + [True]})
    return build_split(inter, items, 3, 6)


def test_build_split_matrices_and_errors() -> None:
    split = _tiny()
    assert split.train.sum() == 7 and split.valid.sum() == 2 and split.test.sum() == 3
    assert split.is_cold.tolist() == [False] * 5 + [True]
    assert split.popularity.tolist() == [2, 2, 1, 1, 1, 0]
    assert split.history_length.tolist() == [2, 1, 4]
    bad = pd.DataFrame({"user_idx": [0], "item_idx": [0], "split": ["tset"]})
    with pytest.raises(ValueError, match="'tset'"):
        build_split(bad, pd.DataFrame({"item_idx": [0]}), 1, 1)
    with pytest.raises(ValueError, match=r"item_idx must lie in \[0, 1\)"):
        build_split(bad.assign(split="train", item_idx=3), pd.DataFrame({"item_idx": [0]}), 1, 1)


def test_cold_and_warm_slices_restrict_candidates() -> None:
    split = _tiny()
    slices = {s.name: s for s in ranking_slices(split, ["valid", "test", "test_warm", "test_cold"])}
    scores = torch.arange(6, dtype=torch.float32).flip(0).expand(3, 6)  # prefers low indices
    result = evaluate_scorer(lambda u: scores[u], split, list(slices.values()), [1, 2], 2, None)
    # test_cold: only user 0 has a cold test item (5); only item 5 competes -> rank 1
    assert result["test_cold"]["users"].tolist() == [0]
    assert result["test_cold"]["metrics"]["recall@1"].tolist() == [1.0]
    # test_warm: user 0's warm test item 3 (items 0,1,2 masked, 5 not a candidate) -> rank 1
    assert result["test_warm"]["metrics"]["recall@1"].tolist() == [1.0, 0.0]
    # test: user 0 ranks 3, 4, 5 -> hits 3 (rank 1) and 5 (rank 3, outside K=2)
    assert result["test"]["metrics"]["recall@2"].tolist() == [0.5, 0.0]
    # top-2 lists: user 0 -> {3, 4}, user 1 -> {1, 2}
    assert result["test"]["scalars"]["coverage@2"] == pytest.approx(4 / 6)


def test_slow_slices_are_logged_with_their_size(monkeypatch, caplog) -> None:
    import logging

    from crossrec.evaluation import protocol

    split = _tiny()
    slices = ranking_slices(split, ["test", "test_cold"])
    scores = torch.ones(3, 6)
    with caplog.at_level(logging.INFO, logger="crossrec.evaluation.protocol"):
        evaluate_scorer(lambda u: scores[u], split, slices, [1], 1, None)
        assert not caplog.records  # fast slices stay at DEBUG
        monkeypatch.setattr(protocol, "SLOW_SLICE_S", 0.0)
        evaluate_scorer(lambda u: scores[u], split, slices, [1], 1, None)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("test: 2 users ranked over 6 items in ")
    assert lines[1].startswith("test_cold: 1 users ranked over 1 items in ")


def test_no_cold_items_skips_cold_slice() -> None:
    split = _tiny()
    split.is_cold[:] = False
    names = [s.name for s in ranking_slices(split, ["test", "test_warm", "test_cold"])]
    assert names == ["test"]
    with pytest.raises(ValueError, match="unknown slices"):
        ranking_slices(split, ["tests"])


def test_history_buckets() -> None:
    lengths = np.array([1, 2, 3, 4, 5, 6, 0])
    buckets = history_buckets(lengths, [0.5])
    assert buckets["users_short"].tolist() == [True, True, True, False, False, False, True]
    assert set(history_buckets(lengths, [0.33, 0.67])) == {
        "users_short",
        "users_medium",
        "users_long",
    }


def test_aggregate_seeds_mean_std_and_user_means() -> None:
    users = np.array([0, 1])
    runs = [
        {
            "test": {
                "users": users,
                "metrics": {"recall@1": np.array([1.0, 0.0])},
                "scalars": {"coverage@1": 0.2},
            }
        },
        {
            "test": {
                "users": users,
                "metrics": {"recall@1": np.array([1.0, 1.0])},
                "scalars": {"coverage@1": 0.4},
            }
        },
    ]
    table = aggregate_seeds(runs)
    assert table["test"]["recall@1"]["mean"] == pytest.approx(0.75)
    assert table["test"]["recall@1"]["std"] == pytest.approx(np.std([0.5, 1.0], ddof=1))
    assert table["test"]["coverage@1"]["mean"] == pytest.approx(0.3)
    _, values = per_user_seed_mean(runs, "test", "recall@1")
    assert values.tolist() == [1.0, 0.5]
