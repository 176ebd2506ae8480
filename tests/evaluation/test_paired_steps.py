"""Paired statistics of a timeline (crossrec.evaluation.significance): each user's difference
averaged over seeds then users, and a method's gap set next to the seed noise of its
reference."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crossrec.evaluation.significance import paired_comparison, seed_noise


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


def test_seed_noise_sets_the_gap_next_to_a_full_retrain_of_another_seed():
    rows = []
    # slice 1: nothing refreshed (incremental == full retrain): left out
    # slice 2: full retrain 0.20 / 0.22 / 0.18 over seeds, incremental 2% below it in each seed
    for seed, full in ((1, 0.20), (2, 0.22), (3, 0.18)):
        rows += [(seed, 1, "incremental", 0.1), (seed, 1, "full_retrain", 0.1)]
        rows += [(seed, 2, "incremental", full * 0.98), (seed, 2, "full_retrain", full)]
        rows += [(seed, 2, "never", 0.05)]
    frame = pd.DataFrame(rows, columns=["seed", "test_slice", "method", "recall@20"])
    table = seed_noise(frame, "incremental")
    assert list(table.index) == [2]
    row = table.loc[2]
    assert row["seeds"] == 3
    assert np.isclose(row["method_gap"], -0.02) and np.isclose(row["method_abs_gap"], 0.02)
    full = [0.20, 0.22, 0.18]
    pairs = [abs(a / b - 1) for i, a in enumerate(full) for j, b in enumerate(full) if i != j]
    assert np.isclose(row["reference_abs_gap"], np.mean(pairs))
    assert np.isclose(row["reference_max_gap"], 0.22 / 0.18 - 1)
    assert row["reference_outside"] == 1.0  # every pair of these seeds is > 2% apart
    # one seed: no seed-to-seed noise to compare with
    assert seed_noise(frame[frame["seed"] == 1], "incremental").empty
