"""The timeline cut of the temporal replay (benchmarks/_timeline.py): a base and increments that
cover the data once, in time order, and rebuild it when applied."""

from __future__ import annotations

import numpy as np
import pytest
from _timeline import split_timeline

from crossrec.data.increments import DatasetTables, IncrementRules, apply_increment


@pytest.fixture()
def tables(synthetic_ingested) -> DatasetTables:
    s = synthetic_ingested
    return DatasetTables(
        s["interactions"].copy(), s["items"].copy(), s["users"].copy(), dict(s["dataset_info"])
    )


def test_timeline_base_and_increments_cover_the_data_once(tables):
    base, incs = split_timeline(tables, 0.6, 0.1, 4, seed=0)
    assert len(base.interactions) + sum(len(i.interactions) for i in incs) == len(
        tables.interactions
    )
    assert base.interactions["timestamp"].max() <= min(
        i.interactions["timestamp"].min() for i in incs
    )
    assert base.users["user_idx"].tolist() == list(range(len(base.users)))
    current = base
    for inc in incs:
        current, _ = apply_increment(current, inc, IncrementRules(), seed=0)
    assert len(current.interactions) == len(tables.interactions)
    assert sorted(current.items["item_id"]) == sorted(tables.items["item_id"])
    assert np.array_equal(current.users["user_idx"].to_numpy(), np.arange(len(current.users)))
