"""Datasets too small or too thin to split fail at ingest, naming what is missing; evaluation
refuses a split with nothing held out."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossrec.data.errors import DataValidationError
from crossrec.data.ingest import ingest_in_memory
from crossrec.evaluation.protocol import build_split, require_held_out_rows


def interactions_only_params(folder: Path, **split) -> dict:
    """Generic adapter, interactions file only (items are the interacted ids)."""
    return {
        "raw_root": str(folder.parent),
        "datasets": {
            folder.name: {
                "adapter": "generic",
                "options": {"items_file": None, "timestamp_column": "timestamp"},
            }
        },
        "media": {"check": False},
        "split": {"strategy": "random", "cold_items": {"share": 0.0}, **split},
    }


def write_interactions(folder: Path, pairs: list[tuple[int, int]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        {"user": [u for u, _ in pairs], "item": [i for _, i in pairs],
         "timestamp": np.arange(len(pairs))}
    )
    frame.to_csv(folder / "interactions.csv", index=False)
    return folder


def test_one_row_dataset_fails_at_split_naming_what_is_missing(tmp_path):
    folder = write_interactions(tmp_path / "one_row", [(1, 1)])
    with pytest.raises(DataValidationError) as err:
        ingest_in_memory(interactions_only_params(folder), "one_row", seed=0)
    message = str(err.value)
    assert "0 valid and 0 test rows" in message
    assert "1 users have fewer than split.min_user_interactions = 3" in message
    assert "expected users with at least 3 interactions" in message


def test_every_user_with_one_interaction_fails(tmp_path, caplog):
    folder = write_interactions(tmp_path / "singles", [(u, u % 7) for u in range(40)])
    with caplog.at_level(logging.WARNING), pytest.raises(DataValidationError, match="40 users"):
        ingest_in_memory(interactions_only_params(folder), "singles", seed=0)
    assert "40 of 40 users (100%) have ONE interaction" in caplog.text


def test_mostly_single_interaction_users_warn_but_run(tmp_path, caplog):
    pairs = [(u, u % 7) for u in range(30)] + [(100 + u, i) for u in range(5) for i in range(6)]
    folder = write_interactions(tmp_path / "mostly_singles", pairs)
    with caplog.at_level(logging.WARNING):
        out = ingest_in_memory(interactions_only_params(folder), "mostly_singles", seed=0)
    assert "30 of 35 users (86%) have ONE interaction" in caplog.text
    assert (out["interactions"]["split"] == "test").sum() == 5


def test_evaluation_refuses_a_split_without_test_rows():
    interactions = pd.DataFrame(
        {"user_idx": [0, 0], "item_idx": [0, 1], "split": ["train", "valid"],
         "rating": [1.0, 1.0], "timestamp": [0, 1]}
    )
    items = pd.DataFrame({"item_idx": [0, 1], "is_cold": [False, False]})
    split = build_split(interactions, items, 1, 2)
    with pytest.raises(ValueError, match="nothing to evaluate: the split has 1 valid and 0 test"):
        require_held_out_rows(split)


def test_duplicate_column_names_fail_naming_file_and_column(tmp_path):
    from crossrec.data.validation import read_table

    path = tmp_path / "items.csv"
    path.write_text("movie_id,title,movie_id\n1,A,2\n")
    with pytest.raises(DataValidationError) as err:
        read_table(path, role="items")
    message = str(err.value)
    assert str(path) in message and "column 'movie_id'" in message
    assert "names column 'movie_id' twice" in message


def test_verbatim_item_repeats_collapse_quietly_conflicts_warn(caplog):
    from crossrec.data.validation import deduplicate_items

    items = pd.DataFrame(
        {
            "item_id": ["1", "1", "2", "2", "3"],
            "row": [1, 2, 3, 4, 5],
            "title": ["A", "A", "B", "B2", "C"],
            "image_path": [None] * 5,
            "audio_path": [None] * 5,
        }
    )
    with caplog.at_level(logging.INFO):
        kept, positions = deduplicate_items(items, ["title"], "items.csv")
    assert kept["item_id"].tolist() == ["1", "2", "3"] and positions.tolist() == [0, 2, 4]
    verbatim = [r for r in caplog.records if "verbatim" in r.message]
    assert len(verbatim) == 1 and verbatim[0].levelno == logging.INFO
    assert "collapsed 1 item rows" in verbatim[0].getMessage()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "1 duplicate item rows for 1 ids dropped" in warnings[0]
    assert "['title']" in warnings[0] and "'2'" in warnings[0] and "'1'" not in warnings[0]


def test_shipped_movielens_items_ingest_without_duplicate_warnings(shared_data_dir, caplog):
    import yaml

    from crossrec.data.ingest import clean_dataset, load_raw_dataset

    root = Path(__file__).resolve().parents[2]
    ingest = yaml.safe_load((root / "conf/base/parameters_ingest.yml").read_text())["ingest"]
    ingest["raw_root"] = str(shared_data_dir)
    name = "movielens100k_multimodal"
    with caplog.at_level(logging.INFO):
        raw = clean_dataset(load_raw_dataset(ingest, name), ingest, name)
    assert raw.items["item_id"].is_unique
    assert not [r for r in caplog.records if "duplicate item rows" in r.getMessage()]
    assert any("collapsed 64 item rows" in r.getMessage() for r in caplog.records)


def test_summary_of_vectors_only_dataset_lists_no_empty_media():
    from crossrec.data.summary import format_summary, summarize

    inter = pd.DataFrame({"user_idx": [0, 0, 1], "item_idx": [0, 1, 1],
                          "split": ["train", "test", "train"]})
    items = pd.DataFrame({"item_idx": [0, 1], "image_path": [None, None],
                          "audio_path": [None, None]})
    info = {"name": "vectors", "n_users": 2, "n_items": 2, "text_columns": []}
    vectors = {"audio_vggish": np.ones((2, 3), dtype=np.float32)}
    summary = summarize(inter, items, info, [], vectors)
    assert summary["modality_coverage"] == {"audio_vggish (pre)": 1.0}
    table = format_summary(summary)
    assert "image" not in table and "audio_vggish (vec)" in table
    bare = summarize(inter, items, info, [], {})
    assert "IDs only" in format_summary(bare)
