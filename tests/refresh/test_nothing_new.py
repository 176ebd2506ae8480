"""A refresh whose increments add nothing (every row skipped) fine-tunes nothing and writes
no new refreshed_model version; the log says why."""

from __future__ import annotations

import logging

import pandas as pd
from kedro.io import DataCatalog, Version

from crossrec.datasets.atomic import KeepLatestPickleDataset
from crossrec.pipelines.refresh import nodes
from crossrec.refresh import steps

SKIPPED = [{"name": "0002", "rows_read": 3, "interactions": 0, "skipped_duplicates": 3,
            "skipped_below_min_rating": 0, "new_users": 0, "new_items": 0}]


def test_adds_nothing():
    assert steps.adds_nothing(SKIPPED)
    assert not steps.adds_nothing([{**SKIPPED[0], "interactions": 1}])
    assert not steps.adds_nothing([{**SKIPPED[0], "new_items": 1}])


def test_nothing_new_skips_fine_tuning_and_the_new_version(tmp_path, monkeypatch, caplog):
    def no_training(*args, **kwargs):
        raise AssertionError("fine-tuned although nothing was added")

    monkeypatch.setattr(steps, "run_refresh", no_training)
    path = tmp_path / "refreshed_model.pkl"
    dataset = KeepLatestPickleDataset(filepath=str(path), version=Version(None, None))
    catalog = DataCatalog({"refreshed_model": dataset})
    catalog.save("refreshed_model", {"bundle": "previous"})
    with caplog.at_level(logging.INFO):
        state, report, history = nodes.fine_tune(
            {}, None, {}, [], SKIPPED, {}, {}, 0, "synthetic"
        )
        catalog.save("refreshed_model", state)
    assert report["unchanged"] is True and isinstance(history, pd.DataFrame)
    assert len(list(path.iterdir())) == 1  # no new version folder
    fresh = KeepLatestPickleDataset(filepath=str(path), version=Version(None, None))
    assert fresh.load() == {"bundle": "previous"}
    assert "add nothing new (0002: 3 rows read, 3 already known" in caplog.text
    assert "no new refreshed_model version" in caplog.text
