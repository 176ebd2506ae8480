"""Temporal replay (crossrec.refresh.replay) on the synthetic dataset: one row per step and
method, every model tested on the slice after its data, the never-refreshed model unable to
rank what arrived later."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from crossrec.data.increments import DatasetTables
from crossrec.graphs.config import FuseConfig
from crossrec.models.config import FinetuneConfig
from crossrec.refresh.config import RefreshConfig
from crossrec.refresh.replay import PaddedModel, ReplaySettings, replay, summary_table


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
    settings = ReplaySettings(0.6, 0.1, 3, seed=0, ks=(10,), variants=(("random_users", "random"),))
    frame = replay(
        tables,
        features,
        FuseConfig(),
        FinetuneConfig.model_validate(tiny_finetune_params),
        RefreshConfig(epochs=1),
        settings,
        tmp_path,
    )
    methods = ["incremental", "random_users", "full_retrain", "fold_in", "never"]
    assert list(frame["method"].unique()) == methods
    assert frame["test_slice"].tolist() == [k for k in (1, 2, 3) for _ in methods]
    first = frame[frame["test_slice"] == 1]
    assert first["recall@10"].nunique() == 1  # before any increment every model is the base one
    later = frame[frame["test_slice"] == 3]
    assert (later["users_known"] >= first["users_known"].iloc[0]).all()
    assert (frame.loc[frame["method"] == "incremental", "epochs"].iloc[1:] == 1).all()
    table = summary_table(frame, "recall@10")
    assert list(table.index) == [1, 2, 3] and "full_retrain_wall_s" in table


def test_never_refreshed_model_cannot_rank_later_users_or_items():
    class Base:
        n_users, n_items = 2, 3

        def score_users(self, users):
            return torch.arange(3, dtype=torch.float32).expand(len(users), 3) + 1

    scores = PaddedModel(Base(), n_users=4, n_items=5).score_users(torch.tensor([0, 3]))
    assert torch.equal(scores[0, :3], torch.tensor([1.0, 2.0, 3.0]))
    assert torch.isinf(scores[:, 3:]).all()
    assert torch.equal(scores[1, :3], torch.zeros(3))  # a later user: every item ties
