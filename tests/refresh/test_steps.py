"""Refresh fine-tuning settings (crossrec.refresh.steps): which validation rows pick the best
epoch, and the bounded epoch budget with optional early stopping."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.models.config import FinetuneConfig
from crossrec.models.inputs import TrainingData
from crossrec.refresh.config import RefreshConfig
from crossrec.refresh.steps import monitored_data, refresh_finetune_config


def _data() -> TrainingData:
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], np.float32))
    valid = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]], np.float32))
    return TrainingData(3, 4, train, valid, {}, {}, sp.csr_matrix((7, 7)))


def test_validate_on_new_keeps_only_the_increments_valid_rows():
    data = _data()
    new_rows = sp.csr_matrix(np.array([[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 0]], np.float32))
    picked = monitored_data(data, RefreshConfig(validate_on="new"), new_rows)
    assert sorted(zip(*picked.valid.nonzero(), strict=True)) == [(1, 2), (1, 3)]
    assert picked.train is data.train  # training sees every row as before
    assert monitored_data(data, RefreshConfig(), new_rows) is data  # validate_on: all


def test_validate_on_new_without_new_valid_rows_falls_back_to_all(caplog):
    data = _data()
    new_rows = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.float32))
    assert monitored_data(data, RefreshConfig(validate_on="new"), new_rows) is data
    assert "no valid rows" in caplog.text
    with pytest.raises(ValueError, match="needs the increments' rows"):
        monitored_data(data, RefreshConfig(validate_on="new"), None)


def test_patience_stops_a_refresh_early_within_its_epoch_budget(tiny_finetune_params):
    bundle = {"config": FinetuneConfig.model_validate(tiny_finetune_params).model_dump()}
    full = refresh_finetune_config(bundle, RefreshConfig(epochs=10), seed=0).trainer
    assert full.max_epochs == 10 and full.patience >= 10  # no patience: every epoch runs
    early = refresh_finetune_config(bundle, RefreshConfig(epochs=10, patience=2), 0).trainer
    assert early.max_epochs == 10 and early.patience == 2 and early.min_epochs == 0
