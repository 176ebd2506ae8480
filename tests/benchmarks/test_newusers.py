"""New users of a test slice (benchmarks/_newusers.py): the history / truth split by time, the
untestable users counted, and the fold-in a refresh uses really reading their history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _newusers import history_count, split_new_users, with_history
from _replay import ReplaySettings, training_inputs

from crossrec.data.increments import DatasetTables, Increment
from crossrec.graphs.config import FuseConfig
from crossrec.models.config import FinetuneConfig
from crossrec.models.training import train_recommender
from crossrec.models.warm import warm_start


def _tables() -> DatasetTables:
    """Two known users (u1, u2) and four known items (i1..i4), newest row at t=100."""
    inter = pd.DataFrame(
        {
            "user_idx": [0, 0, 1, 1],
            "item_idx": [0, 1, 2, 3],
            "rating": np.ones(4, np.float32),
            "timestamp": [10, 20, 30, 100],
            "split": ["train"] * 4,
        }
    )
    items = pd.DataFrame(
        {
            "item_idx": np.arange(4),
            "item_id": ["i1", "i2", "i3", "i4"],
            "title": ["a", "b", "c", "d"],
            "image_path": [None] * 4,
            "audio_path": [None] * 4,
            "is_cold": [False] * 4,
        }
    )
    users = pd.DataFrame({"user_idx": [0, 1], "user_id": ["u1", "u2"]})
    info = {"name": "tiny", "n_users": 2, "n_items": 4, "has_timestamps": True}
    info["text_columns"] = ["title"]
    return DatasetTables(inter, items, users, info)


def _increment(rows: list[tuple[str, str, int]]) -> Increment:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame["rating"] = np.float32(1.0)
    frame["row"] = np.arange(1, len(frame) + 1)
    return Increment("step01", frame, pd.DataFrame(columns=["item_id"]))


def test_new_users_are_split_by_time_and_the_untestable_ones_counted():
    inc = _increment(
        [
            ("n1", "i3", 300),  # n1: 4 rows on known items, out of time order in the file
            ("u1", "i3", 150),  # a known user: not a new one
            ("n1", "i1", 200),
            ("n2", "i2", 210),  # n2: one usable row and one on an unknown item -> untestable
            ("n1", "i4", 400),
            ("n2", "new-item", 220),
            ("n1", "i2", 200),  # same time as n1's i1: the file's row order decides
            ("n3", "new-item", 230),  # n3: nothing usable -> untestable
        ]
    )
    split = split_new_users(_tables(), inc, history_share=0.5)
    assert split.users == 1 and split.untestable == 2 and split.unknown_item_rows == 2
    assert split.history["item_id"].tolist() == ["i1", "i2"]  # the earliest half
    assert split.truth["item_id"].tolist() == ["i3", "i4"]
    assert set(split.history["user_id"]) == set(split.truth["user_id"]) == {"n1"}


def test_history_share_keeps_at_least_one_history_and_one_truth_row():
    assert history_count(2, 0.9) == 1 and history_count(2, 0.1) == 1
    assert history_count(5, 0.5) == 2 and history_count(10, 0.3) == 3
    inc = _increment([("n1", "i1", 200), ("n1", "i2", 300), ("n1", "i3", 400)])
    split = split_new_users(_tables(), inc, history_share=0.9)
    assert split.history["item_id"].tolist() == ["i1", "i2"]
    assert split.truth["item_id"].tolist() == ["i3"]


@pytest.mark.parametrize("share", [0.0, 1.0, -0.5])
def test_a_history_share_outside_0_1_fails_before_any_training(share):
    with pytest.raises(ValueError, match="new_user_history_share"):
        ReplaySettings(new_user_history_share=share)
    with pytest.raises(ValueError, match="new_user_history_share"):
        split_new_users(_tables(), _increment([("n1", "i1", 200)]), share)


def test_with_history_appends_the_new_users_as_train_rows_with_stable_indices():
    tables = _tables()
    history = _increment([("n2", "i1", 200), ("n1", "i4", 210), ("n1", "unknown", 220)])
    grown = with_history(tables, history.interactions, "step01-history")
    assert grown.users["user_id"].tolist() == ["u1", "u2", "n1", "n2"]
    added = grown.interactions[grown.interactions["user_idx"] >= 2]
    assert sorted(zip(added["user_idx"], added["item_idx"], strict=True)) == [(2, 3), (3, 0)]
    assert (added["split"] == "train").all()  # all history: nothing held out for validation
    assert with_history(tables, history.interactions.iloc[2:], "x") is tables


def test_the_fold_in_of_a_new_user_follows_their_history(
    synthetic_ingested, synthetic_dataset_dir, tiny_finetune_params, tmp_path
):
    """Synthetic users like one or two content classes: a new user folded in from three items
    of class A scores the other class-A items above a user folded in from class-B items."""
    s = synthetic_ingested
    tables = DatasetTables(s["interactions"], s["items"], s["users"], s["dataset_info"])
    rng = np.random.default_rng(0)
    n = len(tables.items)
    features = {  # random content: the signal can only come from the history and the graph
        "text": {
            "vectors": rng.normal(size=(n, 8)).astype(np.float32),
            "mask": np.ones(n, bool),
            "source": "random",
        }
    }
    params = {**tiny_finetune_params, "trainer": {**tiny_finetune_params["trainer"]}}
    params["trainer"]["max_epochs"] = 5
    config = FinetuneConfig.model_validate(params)
    ids = tables.items["item_id"]
    data = training_inputs(tables, features, ids, FuseConfig(), config)
    bundle = train_recommender(data, config, run_dir=tmp_path, enable_progress_bar=False).bundle
    written = pd.read_csv(synthetic_dataset_dir / "items.csv").set_index("item")
    classes = written["content_class"].loc[ids.to_numpy()].to_numpy()
    a, b = (np.flatnonzero(classes == c) for c in np.unique(classes)[:2])
    history = pd.DataFrame(
        {
            "user_id": ["newA"] * 3 + ["newB"] * 3,
            "item_id": [*ids.iloc[a[:3]], *ids.iloc[b[:3]]],
            "rating": np.float32(5.0),
            "timestamp": 2_000_000_000,
        }
    )
    grown = with_history(tables, history, "history")
    grown_data = training_inputs(grown, features, ids, FuseConfig(), config)
    model = warm_start(bundle, grown_data, "history")
    new_a, new_b = len(tables.users), len(tables.users) + 1
    with torch.no_grad():
        scores = model.score_users(torch.tensor([new_a, new_b])).numpy()
    rest_a, rest_b = a[3:], b[3:]
    assert scores[0, rest_a].mean() > scores[1, rest_a].mean()
    assert scores[1, rest_b].mean() > scores[0, rest_b].mean()
