"""Iterated k-core filtering reaches a fixed point."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crossrec.data.kcore import kcore_filter


def test_kcore_cascades_to_a_fixed_point():
    # u3 has 1 interaction -> dropped; then item c falls to 1 -> dropped; then u2 falls to 1.
    rows = [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "c"), ("u3", "c"),
            ("u4", "a"), ("u4", "b")]
    df = pd.DataFrame(rows, columns=["user_id", "item_id"])
    out = kcore_filter(df, user_min=2, item_min=2)
    assert sorted(map(tuple, out.to_numpy())) == [("u1", "a"), ("u1", "b"), ("u4", "a"),
                                                  ("u4", "b")]


def test_kcore_result_satisfies_thresholds_on_random_data():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user_id": rng.integers(0, 300, 3000).astype(str),
                       "item_id": rng.zipf(1.6, 3000).astype(str)}).drop_duplicates()
    out = kcore_filter(df, user_min=5, item_min=4)
    assert 0 < len(out) < len(df)
    assert out["user_id"].value_counts().min() >= 5
    assert out["item_id"].value_counts().min() >= 4


def test_kcore_off_returns_input():
    df = pd.DataFrame({"user_id": ["a"], "item_id": ["x"]})
    assert kcore_filter(df, 0, 0) is df
