"""Temporal replay (benchmarks/_replay.py) on the synthetic dataset: one row per step and
method, every model tested on the slice after its data, the never-refreshed model unable to
rank what arrived later."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _replay import PaddedModel, ReplaySettings, in_group, replay, seed_summary, summary_table

from crossrec.data.increments import DatasetTables
from crossrec.evaluation.significance import paired_comparison
from crossrec.graphs.config import FuseConfig
from crossrec.models.config import FinetuneConfig
from crossrec.refresh.config import RefreshConfig


def _late_users(s: dict, first_late: int = 48) -> DatasetTables:
    """The synthetic tables with users ``first_late``.. arriving after everyone else (their
    timestamps moved past the others'): the last slices hold users the earlier data never saw."""
    inter = s["interactions"].copy()
    late = inter["user_idx"].to_numpy() >= first_late
    span = int(inter["timestamp"].max() - inter["timestamp"].min()) + 1
    inter.loc[late, "timestamp"] += span
    return DatasetTables(inter, s["items"], s["users"], s["dataset_info"])


def test_replay_reports_every_method_on_the_next_slice(
    synthetic_ingested, tmp_path: Path, tiny_finetune_params
):
    tables = _late_users(synthetic_ingested)
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
    groups = ["known", "new", "all"]
    assert frame["test_slice"].tolist() == [k for k in (1, 2, 3) for _ in methods for _ in groups]
    assert frame["group"].tolist() == groups * (3 * len(methods))
    known = frame[frame["group"] == "known"]
    first = known[known["test_slice"] == 1]
    assert first["recall@10"].nunique() == 1  # before any increment every model is the base one
    later = known[known["test_slice"] == 3]
    assert (later["users_known"] >= first["users_known"].iloc[0]).all()
    assert (known.loc[known["method"] == "incremental", "epochs"].iloc[1:] == 1).all()
    table = summary_table(frame, "recall@10", group="known")
    assert list(table.index) == [1, 2, 3] and "full_retrain_wall_s" in table
    # the late users: new in the last slice (12 users, all with enough rows to be tested)
    counts = frame.set_index(["test_slice", "method", "group"])
    new = counts.xs("new", level="group")
    assert (new.loc[3, "users"] + new.loc[3, "users_untestable"] == 12).all()
    assert (new.loc[3, "users"] > 0).all() and (new.loc[[1, 2], "users"] == 0).all()
    assert new.loc[[1, 2], "recall@10"].isna().all()  # no new user: no mean, not 0
    for column in ("users", "users_in_slice", "users_untestable", "rows_unknown_item"):
        pooled = counts.xs("known", level="group")[column] + new[column]
        assert (counts.xs("all", level="group")[column] == pooled).all(), column
    # the folded-in new users are ranked from their history: better than ties
    assert (new.loc[3, "recall@10"] > 0).all()
    # the per-user rows average back to the table's means, group by group
    per_user = result.per_user
    assert set(per_user["group"]) == {"known", "new"}
    for group in ("known", "new", "all"):
        rows = per_user if group == "all" else per_user[per_user["group"] == group]
        means = counts.xs(group, level="group")
        users = rows.groupby(["test_slice", "method"])["recall@10"].mean()
        tested = means[means["users"] > 0]
        assert np.allclose(users.loc[tested.index].to_numpy(), tested["recall@10"].to_numpy())
        sizes = rows.groupby(["test_slice", "method"]).size()
        assert (sizes.reindex(means.index, fill_value=0) == means["users"]).all()
    paired = paired_comparison(per_user.assign(seed=0), "incremental", "full_retrain", "recall@10")
    assert paired.loc[3, "users"] == counts.loc[(3, "incremental", "all"), "users"]
    new_only = paired_comparison(
        in_group(per_user.assign(seed=0), "new"), "incremental", "full_retrain", "recall@10"
    )
    assert list(new_only.index) == [3]


def test_never_refreshed_model_cannot_rank_later_users_or_items():
    class Base:
        n_users, n_items = 2, 3

        def score_users(self, users):
            return torch.arange(3, dtype=torch.float32).expand(len(users), 3) + 1

    scores = PaddedModel(Base(), n_users=4, n_items=5).score_users(torch.tensor([0, 3]))
    assert torch.equal(scores[0, :3], torch.tensor([1.0, 2.0, 3.0]))
    assert torch.isinf(scores[:, 3:]).all()
    assert torch.equal(scores[1, :3], torch.zeros(3))  # a later user: every item ties


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
