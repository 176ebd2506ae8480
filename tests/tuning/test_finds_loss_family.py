"""A short study on a dataset that needs the softmax family finds it (real training, CPU).

The dataset and the study are ``benchmarks/tune_loss_family.py``'s, at a smaller scale; the
benchmark prints the same check over seeds, with the one-key mechanics beside it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.benchmarks.conftest import load_benchmark

bench = load_benchmark("tune_loss_family")


@pytest.fixture(scope="module")
def small() -> tuple:
    finetune = copy.deepcopy(bench.FINETUNE)
    finetune["trainer"]["max_epochs"] = 20
    finetune["model"]["embedding_dim"] = 16
    return bench.nested_taste_data(n_users=240, seed=0), finetune


@pytest.mark.slow
def test_a_twelve_trial_study_finds_the_softmax_family(small, tmp_path: Path):
    """Trial 0 (the BPR defaults) and the softmax neighbour are the dataset check: the two
    short finetune runs, differing only in the loss family."""
    data, finetune = small
    study = bench.run_tune_study(data, finetune, 12, one_key=False, seed=0, root=tmp_path)
    trials = study["trials"].set_index("number")
    assert len(trials) == 12
    enqueued = trials["enqueued"].fillna("")
    assert (enqueued == "").sum() >= 6  # the cap leaves half the budget to the sampler
    defaults = trials.loc[0, "value"]
    assert enqueued[0] == "defaults" and trials.loc[0, "params_loss_family"] == "bpr"
    softmax = trials[(enqueued == "neighbour") & (trials["params_loss_family"] == "softmax")]
    assert softmax["value"].iloc[0] > 1.05 * defaults  # the dataset needs the family
    reference = trials.loc[trials["params_loss_family"] == "softmax", "value"].max()
    assert bench.exported_family(study["exported"], finetune) == "softmax" or (
        study["value"] >= 0.98 * reference
    )
