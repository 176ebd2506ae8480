"""Temporal replay (crossrec.refresh.replay) on the synthetic dataset: one row per step and
method, every model tested on the slice after its data, the never-refreshed model unable to
rank what arrived later."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from crossrec.data.increments import DatasetTables
from crossrec.graphs.config import FuseConfig
from crossrec.models.config import FinetuneConfig
from crossrec.refresh.config import RefreshConfig
from crossrec.refresh.replay import (
    PaddedModel,
    ReplaySettings,
    paired_comparison,
    replay,
    seed_summary,
    summary_table,
)


def test_replay_reports_every_method_on_the_next_slice(
    synthetic_ingested, tmp_path: Path, tiny_finetune_params
):
    s = synthetic_ingested
    tables = DatasetTables(s["interactions"], s["items"], s["users"], s["dataset_info"])
    rng = np.random.default_rng(0)
    n = len(tables.items)
    features = {
        "text": {
            "vectors": rng.normal(size=(n, 8)).astype(np.float32),
            "mask": np.ones(n, bool),
            "source": "random",
        }
    }
    variants = (("random_users", "random"), ("early_stop", {"patience": 1, "validate_on": "new"}))
    settings = ReplaySettings(0.6, 0.1, 3, seed=0, ks=(10,), variants=variants)
    result = replay(
        tables,
        features,
        FuseConfig(),
        FinetuneConfig.model_validate(tiny_finetune_params),
        RefreshConfig(epochs=1),
        settings,
        tmp_path,
    )
    frame = result.frame
    methods = ["incremental", "random_users", "early_stop", "full_retrain", "fold_in", "never"]
    assert list(frame["method"].unique()) == methods
    assert frame["test_slice"].tolist() == [k for k in (1, 2, 3) for _ in methods]
    first = frame[frame["test_slice"] == 1]
    assert first["recall@10"].nunique() == 1  # before any increment every model is the base one
    later = frame[frame["test_slice"] == 3]
    assert (later["users_known"] >= first["users_known"].iloc[0]).all()
    assert (frame.loc[frame["method"] == "incremental", "epochs"].iloc[1:] == 1).all()
    table = summary_table(frame, "recall@10")
    assert list(table.index) == [1, 2, 3] and "full_retrain_wall_s" in table
    # the per-user rows average back to the table's means
    users = result.per_user.groupby(["test_slice", "method"], sort=False)["recall@10"].mean()
    means = frame.set_index(["test_slice", "method"])["recall@10"]
    assert np.allclose(users.loc[means.index].to_numpy(), means.to_numpy())
    counts = result.per_user.groupby(["test_slice", "method"]).size()
    assert (counts.loc[means.index].to_numpy() == frame["users"].to_numpy()).all()


def test_never_refreshed_model_cannot_rank_later_users_or_items():
    class Base:
        n_users, n_items = 2, 3

        def score_users(self, users):
            return torch.arange(3, dtype=torch.float32).expand(len(users), 3) + 1

    scores = PaddedModel(Base(), n_users=4, n_items=5).score_users(torch.tensor([0, 3]))
    assert torch.equal(scores[0, :3], torch.tensor([1.0, 2.0, 3.0]))
    assert torch.isinf(scores[:, 3:]).all()
    assert torch.equal(scores[1, :3], torch.zeros(3))  # a later user: every item ties


def _per_user(rows):
    return pd.DataFrame(rows, columns=["seed", "test_slice", "method", "user", "recall@20"])


def test_paired_comparison_averages_each_user_over_seeds_then_users():
    rows = []
    for seed, shift in ((1, 0.0), (2, 0.2)):
        for user, (a, b) in enumerate([(0.5, 0.4), (0.2, 0.4), (1.0, 0.6)]):
            rows += [(seed, 2, "incremental", user, a + shift), (seed, 2, "full_retrain", user, b)]
    table = paired_comparison(_per_user(rows), "incremental", "full_retrain")
    row = table.loc[2]
    # per user, seeds averaged: +0.2, -0.1, +0.5 -> mean 0.2, 2 better, 1 worse
    assert row["users"] == 3 and row["better"] == 2 and row["worse"] == 1
    assert np.isclose(row["diff"], 0.2)
    assert row["ci_low"] < 0.2 < row["ci_high"]
    assert np.isclose(row["relative"], (1.7 / 3 + 0.1) / (1.4 / 3) - 1)  # means over seeds


def test_seed_summary_gives_mean_and_std_per_step_and_method():
    frame = pd.DataFrame(
        {
            "seed": [1, 1, 2, 2],
            "test_slice": [1, 1, 1, 1],
            "method": ["incremental", "never"] * 2,
            "recall@20": [0.1, 0.05, 0.3, 0.05],
            "wall_s": [10.0, 0.0, 20.0, 0.0],
        }
    )
    table = seed_summary(frame)
    assert np.isclose(table.loc[1, "incremental"], 0.2)
    assert np.isclose(table.loc[1, "incremental_std"], np.std([0.1, 0.3], ddof=1))
    assert table.loc[1, "never_std"] == 0.0 and table.loc[1, "incremental_wall_s"] == 15.0
    assert "never_wall_s" not in table
