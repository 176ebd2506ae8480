"""Splits: proportions, no leakage where the protocol forbids it, determinism, cold holdout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec.data.errors import DataValidationError
from crossrec.data.splits import (
    assign_splits,
    choose_cold_items,
    cold_share_for,
    leave_last_out_split,
    published_rows_changed,
    published_split,
    random_split,
    temporal_split,
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """200 users with 2..60 interactions each on 300 items, distinct timestamps."""
    rng = np.random.default_rng(7)
    rows = []
    for u in range(200):
        n = int(rng.integers(2, 61))
        for i in rng.choice(300, size=n, replace=False):
            rows.append((u, int(i)))
    df = pd.DataFrame(rows, columns=["user_idx", "item_idx"])
    df["timestamp"] = rng.permutation(len(df)).astype(np.int64) + 1_000
    return df


def _split(df, strategy="random", seed=0, share=0.0, **kw):
    kw.setdefault("ratios", (0.8, 0.1, 0.1))
    kw.setdefault("min_user_interactions", 3)
    return assign_splits(df, strategy, cold_share=share, cold_valid_fraction=0.5, seed=seed, **kw)


def test_random_split_per_user_proportions(frame):
    labels = random_split(frame, (0.8, 0.1, 0.1), 3, seed=0)
    df = frame.assign(split=labels)
    shares = df["split"].value_counts(normalize=True)
    assert abs(shares["train"] - 0.8) < 0.03
    assert abs(shares["valid"] - 0.1) < 0.02 and abs(shares["test"] - 0.1) < 0.02
    counts = df.groupby(["user_idx", "split"]).size().unstack(fill_value=0)
    n = counts.sum(axis=1)
    eligible = n >= 3
    # every eligible user has train, valid and test rows, with round(n*0.1) (>=1) of each
    assert (counts.loc[eligible, ["train", "valid", "test"]] >= 1).all().all()
    expected = np.maximum(1, np.floor(n[eligible] * 0.1 + 0.5))
    assert (counts.loc[eligible, "test"] == expected).all()
    # users with fewer than 3 interactions stay train-only
    assert (counts.loc[~eligible, ["valid", "test"]] == 0).all().all()
    assert (~eligible).any()


def test_random_split_deterministic_and_order_free(frame):
    a = random_split(frame, (0.8, 0.1, 0.1), 3, seed=5)
    b = random_split(frame, (0.8, 0.1, 0.1), 3, seed=5)
    assert (a == b).all()
    shuffled = frame.sample(frac=1.0, random_state=1)
    c = pd.Series(random_split(shuffled, (0.8, 0.1, 0.1), 3, seed=5), index=shuffled.index)
    assert (c.sort_index().to_numpy() == a).all()
    assert (random_split(frame, (0.8, 0.1, 0.1), 3, seed=6) != a).any()


def test_leave_last_out_puts_the_latest_in_test(frame):
    df = frame.assign(split=leave_last_out_split(frame, 3))
    for _, user in df.groupby("user_idx"):
        if len(user) < 3:
            assert (user["split"] == "train").all()
            continue
        ordered = user.sort_values("timestamp")
        assert ordered["split"].tolist()[-2:] == ["valid", "test"]
        assert (ordered["split"].iloc[:-2] == "train").all()


def test_temporal_split_has_no_future_in_train(frame):
    df = frame.assign(split=temporal_split(frame, (0.8, 0.1, 0.1)))
    assert (
        df.loc[df.split == "train", "timestamp"].max()
        < df.loc[df.split == "valid", "timestamp"].min()
    )
    assert (
        df.loc[df.split == "valid", "timestamp"].max()
        < df.loc[df.split == "test", "timestamp"].min()
    )
    assert abs((df.split == "train").mean() - 0.8) < 0.001


def test_time_based_splits_need_timestamps(frame):
    no_time = frame.assign(timestamp=-1)
    for strategy in ("leave_last_out", "temporal"):
        with pytest.raises(DataValidationError, match="needs timestamps"):
            _split(no_time, strategy)


def test_published_split_is_kept_and_required(frame):
    labels = np.array(["train", "valid", "test"], dtype=object)[np.arange(len(frame)) % 3]
    out, _ = _split(frame.assign(published_split=labels), "published")
    assert (out == labels).all()
    with pytest.raises(DataValidationError, match="ships no split"):
        published_split(frame)


def test_published_split_reproduced_unless_the_holdout_is_asked_for(frame, caplog):
    """The default holdout share does not touch a published split; apply_to_published does."""
    caplog.set_level("INFO", logger="crossrec.data.splits")
    labels = np.array(["train", "valid", "test"], dtype=object)[np.arange(len(frame)) % 3]
    published = frame.assign(published_split=labels)
    share = cold_share_for("published", 0.05, apply_to_published=False)
    assert share == 0.0 and "not applied to it" in caplog.text
    out, cold = _split(published, "published", share=share)
    assert len(cold) == 0 and published_rows_changed(published, out) == 0
    share = cold_share_for("published", 0.05, apply_to_published=True)
    out, cold = _split(published, "published", share=share)
    assert len(cold) == 15  # 5% of 300 items
    changed = published_rows_changed(published, out)
    cold_rows = np.isin(frame["item_idx"], cold)
    assert 0 < changed <= cold_rows.sum() and (out[~cold_rows] == labels[~cold_rows]).all()
    # other strategies keep their share; data without a published split never counts changes
    assert cold_share_for("random", 0.05, apply_to_published=False) == 0.05
    assert published_rows_changed(frame, out) == 0


@pytest.mark.parametrize("strategy", ["random", "leave_last_out", "temporal"])
def test_cold_items_never_in_train(frame, strategy):
    labels, cold = _split(frame, strategy, seed=3, share=0.1)
    n_items = frame["item_idx"].nunique()
    assert len(cold) == round(0.1 * n_items)
    cold_rows = np.isin(frame["item_idx"], cold)
    assert not (labels[cold_rows] == "train").any()
    share_valid = (labels[cold_rows] == "valid").mean()
    assert 0.35 < share_valid < 0.65
    # warm rows follow the base strategy
    warm_train = (labels[~cold_rows] == "train").mean()
    if strategy == "leave_last_out":
        assert warm_train > 0.85  # two held-out rows per user of ~30
    else:
        assert abs(warm_train - 0.8) < 0.05


def test_cold_item_choice_seeded():
    items = np.arange(50).repeat(2)
    assert (choose_cold_items(items, 0.2, 1) == choose_cold_items(items, 0.2, 1)).all()
    assert len(choose_cold_items(items, 0.2, 1)) == 10
    assert len(choose_cold_items(items, 0.0, 1)) == 0


def test_unknown_strategy(frame):
    with pytest.raises(ValueError, match="unknown split strategy"):
        _split(frame, "by_moon_phase")
