"""build_training_data: the one builder of training inputs (matrices, recency, texts)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from crossrec.models.inputs import build_training_data


def _build(ingested, config, texts=None):
    return build_training_data(
        ingested["interactions"],
        ingested["items"],
        ingested["dataset_info"],
        {},
        {},
        None,
        config,
        texts,
    )


def test_matrices_follow_the_interactions_table(synthetic_ingested):
    inter = synthetic_ingested["interactions"]
    data = _build(synthetic_ingested, {})
    assert data.train.nnz == (inter["split"] == "train").sum()
    assert data.valid.nnz == (inter["split"] == "valid").sum()
    assert data.splits.test.nnz == (inter["split"] == "test").sum()
    # recency ranks each user's train items by timestamp (the synthetic data has timestamps)
    user = inter[(inter["user_idx"] == 1) & (inter["split"] == "train")]
    row = data.train_recency[1]
    by_recency = row.indices[np.argsort(row.data)]
    assert by_recency.tolist() == user.sort_values(["timestamp", "item_idx"])["item_idx"].tolist()


def test_no_timestamps_means_no_recency(synthetic_ingested):
    ingested = dict(synthetic_ingested)
    ingested["interactions"] = synthetic_ingested["interactions"].assign(timestamp=-1)
    assert _build(ingested, {}).train_recency is None


def test_k_at_catalogue_size_is_warned(synthetic_ingested, caplog):
    n_items = synthetic_ingested["dataset_info"]["n_items"]
    with caplog.at_level(logging.WARNING, logger="crossrec.models.inputs"):
        _build(synthetic_ingested, {"trainer": {"val_ks": [10, n_items]}})
    assert f"trainer.val_ks [{n_items}] reach the catalogue size ({n_items} items)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="crossrec.models.inputs"):
        _build(synthetic_ingested, {"trainer": {"val_ks": [10, 20]}})
    assert "catalogue size" not in caplog.text


def test_llm_strategy_needs_the_item_texts_artifact(synthetic_ingested):
    config = {"model": {"fusion": {"strategy": "llm"}}}
    with pytest.raises(ValueError, match="needs the item_texts artifact"):
        _build(synthetic_ingested, config)
    n_items = synthetic_ingested["dataset_info"]["n_items"]
    with pytest.raises(ValueError, match=f"expected {n_items} texts"):
        _build(synthetic_ingested, config, ["a"])
    assert _build(synthetic_ingested, config, ["t"] * n_items).item_texts == ["t"] * n_items
