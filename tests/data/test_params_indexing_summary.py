"""Ingest parameter schema, id maps, data summary, error messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec.config import ConfigError
from crossrec.data.config import parse_ingest_params
from crossrec.data.errors import DatasetNotFoundError, DataValidationError
from crossrec.data.indexing import build_id_map, index_raw
from crossrec.data.raw import RawData
from crossrec.data.summary import format_summary, summarize


def test_dataset_overrides_merge_key_by_key():
    config = parse_ingest_params(
        {
            "datasets": {
                "a": {"adapter": "generic", "split": {"cold_items": {"share": 0.2}}},
                "b": {"adapter": "generic"},
            },
            "split": {"strategy": "temporal", "cold_items": {"valid_fraction": 0.3}},
        }
    )
    a, b = config.resolve("a"), config.resolve("b")
    assert a.split.strategy == "temporal" and a.split.cold_items.share == 0.2
    assert a.split.cold_items.valid_fraction == 0.3
    assert b.split.cold_items.share == 0.05  # the schema default, equal to the YAML one


def test_bad_params_name_the_key():
    with pytest.raises(ConfigError, match=r"(?s)parameters_ingest\.yml: ingest.*split\.ratios"):
        parse_ingest_params(
            {"datasets": {"a": {"adapter": "generic"}}, "split": {"ratios": [0.5, 0.1, 0.1]}}
        )
    with pytest.raises(ConfigError, match=r"(?s)datasets\.a\.kcore.*user_mim"):
        parse_ingest_params(
            {"datasets": {"a": {"adapter": "generic", "kcore": {"user_mim": 5}}}}
        ).resolve("a")
    with pytest.raises(ConfigError, match="at least one dataset"):
        parse_ingest_params({"datasets": {}})


def test_id_map_natural_and_stable():
    ids = pd.Series(["10", "2", "1", "2"])
    assert build_id_map(ids).to_dict() == {"1": 0, "2": 1, "10": 2}
    assert build_id_map(ids[::-1]).to_dict() == build_id_map(ids).to_dict()


def test_index_raw_aligns_features_and_sorts():
    items = pd.DataFrame(
        {
            "item_id": ["b", "a"],
            "txt": ["B", "A"],
            "image_path": pd.Series(["/x.png", None], dtype=object),
            "audio_path": pd.Series([None, None], dtype=object),
        }
    )
    inter = pd.DataFrame(
        {
            "user_id": ["u2", "u1", "u1"],
            "item_id": ["a", "b", "a"],
            "rating": np.ones(3, np.float32),
            "timestamp": [5, 9, 7],
        }
    )
    raw = RawData("t", inter, items, ["txt"], {"f": np.array([[2.0], [1.0]])})
    interactions, out_items, users, pre = index_raw(raw)
    assert out_items["item_id"].tolist() == ["a", "b"] and out_items["txt"].tolist() == ["A", "B"]
    assert out_items["image_path"].tolist() == [None, "/x.png"]
    assert pre["f"].ravel().tolist() == [1.0, 2.0] and pre["f"].dtype == np.float32
    assert users["user_id"].tolist() == ["u1", "u2"]
    assert interactions[["user_idx", "item_idx", "timestamp"]].values.tolist() == [
        [0, 0, 7],
        [0, 1, 9],
        [1, 0, 5],
    ]


def test_summary_numbers():
    inter = pd.DataFrame(
        {
            "user_idx": [0, 0, 0, 1, 1, 2],
            "item_idx": [0, 1, 2, 0, 3, 3],
            "split": ["train", "valid", "test", "train", "test", "test"],
        }
    )
    items = pd.DataFrame(
        {
            "item_idx": range(4),
            "title": ["a", "", "c", "d"],
            "image_path": ["/p", None, None, "/q"],
            "audio_path": [None] * 4,
            "is_cold": [False, False, False, True],
        }
    )
    info = {
        "name": "toy",
        "n_users": 3,
        "n_items": 4,
        "text_columns": ["title"],
        "has_timestamps": False,
        "precomputed": ["vgg"],
        "split_strategy": "random",
    }
    vgg = np.array([[1.0, 0.0], [0.0, 0.0], [0.5, 0.5], [0.0, -1.0]], dtype=np.float32)
    s = summarize(inter, items, info, [{"item_id": "1"}], {"vgg": vgg})
    assert s["density"] == pytest.approx(6 / 12)
    assert s["modality_coverage"] == {
        "text:title": 0.75,
        "text": 0.75,
        "image": 0.5,
        "vgg (pre)": 0.75,
    }  # no audio file at all: no audio line
    assert s["splits"]["test"] == {
        "interactions": 3,
        "users": 3,
        "items": 2,
        "users_without_train": 1,
        "items_without_train": 2,
    }
    assert s["cold_items"] == 1 and s["unusable_media"] == 1
    table = format_summary(s)
    assert "density" in table and "50.0000%" in table
    assert max(map(len, table.splitlines())) <= 36


def test_error_messages():
    err = DataValidationError("a.csv", "bad value", row=3, column="c", expected="an int")
    assert str(err) == "a.csv, row 3, column 'c': bad value (expected an int)"
    missing = DatasetNotFoundError("ds", "/nowhere/ds")
    assert "'ds' not found: looked in /nowhere/ds" in str(missing)
