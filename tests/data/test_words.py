"""Words as requests: reading them, their split, and the item text rebuilt without held-out
words (a test pair's words never reach the item text)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from crossrec.config import ConfigError, parse_params
from crossrec.data.errors import DataValidationError
from crossrec.data.words import (
    WordsConfig,
    build_word_requests,
    decade,
    item_text_without_heldout,
)

CONF = Path(__file__).resolve().parents[2] / "conf" / "base"


def _tables():
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "user_idx": [0, 1, 2]})
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "item_idx": [0, 1, 2],
            "tags": ["old", "old", "old"],
            "genres": ["Comedy, Romance", "Drama", ""],
            "year": ["1995", "1987.0", ""],
        }
    )
    interactions = pd.DataFrame(
        {
            "user_idx": [0, 0, 1, 2],
            "item_idx": [0, 1, 0, 2],
            "split": ["train", "test", "valid", "train"],
        }
    )
    return users, items, interactions


def _write_words(folder: Path, rows: list[tuple[str, str, str]]) -> None:
    frame = pd.DataFrame(rows, columns=["user", "item", "text"])
    frame.to_csv(folder / "words.csv", index=False)


def test_pairs_become_requests_with_their_split_and_held_out_words_leave_item_text(tmp_path):
    users, items, interactions = _tables()
    _write_words(
        tmp_path,
        [
            ("u1", "a", "rock"),
            ("u1", "a", "indie"),  # same pair: one request, words joined
            ("u1", "b", "secret test words"),  # a test pair
            ("u2", "a", "valid only"),  # a valid pair
            ("u3", "b", "jazz"),  # tagged, never interacted: split none, usable
            ("u9", "a", "unknown user"),  # outside the dataset: not used (logged)
        ],
    )
    config = WordsConfig(file="words.csv", item_text_column="tags")
    new_items, requests = build_word_requests(
        tmp_path, config, interactions, items, users, "toy"
    )
    table = {(r.user_idx, r.item_idx): (r.text, r.split) for r in requests.itertuples()}
    assert table == {
        (0, 0): ("rock, indie", "train"),
        (0, 1): ("secret test words", "test"),
        (1, 0): ("valid only", "valid"),
        (2, 1): ("jazz", "none"),
    }
    # the item text holds the words of train / none pairs only
    assert new_items["tags"].tolist() == ["indie,rock", "jazz", ""]
    assert not new_items["tags"].str.contains("secret|valid").any()
    assert items["tags"].tolist() == ["old", "old", "old"]  # inputs are not mutated


def test_category_path_requests_use_the_items_own_columns(tmp_path):
    users, items, interactions = _tables()
    config = WordsConfig(item_columns=["genres"], decade_column="year")
    _, requests = build_word_requests(tmp_path, config, interactions, items, users, "toy")
    # item 2 has neither genres nor year: no words, no request
    assert requests[["user_idx", "item_idx", "text", "split"]].values.tolist() == [
        [0, 0, "1990s comedy, romance", "train"],
        [0, 1, "1980s drama", "test"],
        [1, 0, "1990s comedy, romance", "valid"],
    ]


def test_decade_of_years_and_junk():
    assert decade(pd.Series(["1995", "2000.0", "", "n/a"])).tolist() == ["1990s", "2000s", "", ""]


def test_lookup_keys_missing_name_the_row(tmp_path):
    users, items, interactions = _tables()
    _write_words(tmp_path, [("u1", "a", "1"), ("u1", "b", "7")])
    pd.DataFrame({"id": ["1"], "name": ["rock"]}).to_csv(tmp_path / "names.csv", index=False)
    config = WordsConfig(
        file="words.csv", lookup={"file": "names.csv", "key_column": "id", "value_column": "name"}
    )
    with pytest.raises(DataValidationError, match=r"words.csv, row 2, column 'text'.*'7'"):
        build_word_requests(tmp_path, config, interactions, items, users, "toy")


def test_words_config_needs_exactly_one_source():
    with pytest.raises(ConfigError, match="exactly one"):
        parse_params(WordsConfig, {"file": "w.csv", "item_columns": ["genres"]}, "x.words")
    with pytest.raises(ConfigError, match="exactly one"):
        parse_params(WordsConfig, {}, "x.words")
    with pytest.raises(ConfigError, match="fil"):
        parse_params(WordsConfig, {"fil": "w.csv"}, "x.words")


def test_item_text_rebuild_ignores_split_labels_it_does_not_hold_out():
    items = pd.DataFrame({"item_idx": [0, 1]})
    requests = pd.DataFrame(
        {
            "user_idx": [0, 1, 2],
            "item_idx": [0, 0, 1],
            "text": ["b, a", "a, c", "z"],
            "split": ["train", "none", "test"],
        }
    )
    assert item_text_without_heldout(requests, items, ",").tolist() == ["a,b,c", ""]


def test_real_lastfm_test_pairs_words_never_reach_item_text(shared_data_dir):
    """On the published split: the request counts per split, and no word that only held-out
    pairs gave an artist is in that artist's rebuilt text."""
    from crossrec.data.ingest import ingest_in_memory

    params = yaml.safe_load((CONF / "parameters_ingest.yml").read_text())["ingest"]
    params["raw_root"] = str(shared_data_dir)
    params["media"] = {"check": False}
    out = ingest_in_memory(params, "lastfm2k_multimodal", seed=0)
    requests, items = out["word_requests"], out["items"]
    counts = requests["split"].value_counts()
    assert (counts["test"], counts["valid"], counts["train"]) == (1636, 1039, 9912)
    assert requests.loc[requests["split"] == "test", "user_idx"].nunique() == 844

    def words(frame: pd.DataFrame) -> pd.DataFrame:
        exploded = frame.assign(word=frame["text"].str.split(",")).explode("word")
        return exploded.assign(word=exploded["word"].str.strip())[["item_idx", "word"]]

    held = words(requests[requests["split"].isin(["valid", "test"])]).drop_duplicates()
    kept = words(requests[~requests["split"].isin(["valid", "test"])]).drop_duplicates()
    only_held = held.merge(kept, how="left", indicator=True).query("_merge == 'left_only'")
    assert len(only_held) > 1000  # the protocol has something to protect
    text = items.set_index("item_idx")["text"].str.split(",").map(set)
    leaked = [w for i, w in only_held[["item_idx", "word"]].itertuples(index=False) if w in text[i]]
    assert leaked == []
    # and every word a kept pair gave is there
    sample = kept.sample(200, random_state=0)
    assert all(w in text[i] for i, w in sample.itertuples(index=False))
    # the shipped text (every user's tags) did hold such words: the rebuild matters
    folder = shared_data_dir / "lastfm2k_multimodal"
    ids = pd.read_csv(folder / "lfm2k.inter", sep="\t")["itemID"].astype(str)
    original = pd.read_csv(folder / "lfm2k_og_ids.inter", sep="\t")["itemID"]
    artist = pd.Series(original.to_numpy(), index=ids.to_numpy()).groupby(level=0).first()
    shipped = pd.read_csv(folder / "lfm2k_text.tsv", sep="\t").set_index("artistID")["text"]
    shipped_words = (
        items["item_id"].map(artist).map(shipped).fillna("").str.split(",").map(set)
    )
    shipped_words.index = items["item_idx"]
    in_shipped = [
        w for i, w in only_held[["item_idx", "word"]].itertuples(index=False)
        if w in shipped_words[i]
    ]
    assert len(in_shipped) > 0.5 * len(only_held)


def test_a_misspelt_words_key_fails_with_the_parameters_not_at_its_node():
    from crossrec.data.config import IngestConfig

    params = yaml.safe_load((CONF / "parameters_ingest.yml").read_text())["ingest"]
    params["datasets"]["lastfm2k_multimodal"]["words"]["item_colum"] = "artistID"
    with pytest.raises(ConfigError, match=r"lastfm2k_multimodal\.words\.item_colum.*item_column"):
        parse_params(IngestConfig, params, "conf/base/parameters_ingest.yml: ingest")
