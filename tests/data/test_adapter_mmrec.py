"""mmrec adapter: .inter + per-modality .npy (row = itemID) + text through an id map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossrec.config import ConfigError
from crossrec.data.adapters import get_adapter
from crossrec.data.errors import DataValidationError

read_mmrec = get_adapter("mmrec", "test")

OPTIONS = {
    "inter_file": "toy.inter",
    "features": {"audio_x": "audio.npy", "text_y": "t.npy"},
    "text": {
        "file": "text.tsv",
        "key_column": "artistID",
        "columns": ["text"],
        "id_map_file": "og.inter",
    },
}


@pytest.fixture()
def mm_folder(tmp_path):
    (tmp_path / "toy.inter").write_text(
        "userID\titemID\trating\tx_label\n0\t0\t1\t0\n0\t2\t1\t2\n1\t1\t1\t0\n1\t2\t1\t1\n"
    )
    (tmp_path / "og.inter").write_text(
        "userID\titemID\trating\tx_label\n5\t50\t1\t0\n5\t70\t1\t2\n6\t60\t1\t0\n6\t70\t1\t1\n"
    )
    (tmp_path / "text.tsv").write_text("artistID\ttext\n70\trock,loud\n50\tjazz\n99\tunused\n")
    np.save(tmp_path / "audio.npy", np.arange(12, dtype=np.float64).reshape(3, 4))
    np.save(tmp_path / "t.npy", np.ones((3, 2), dtype=np.float32))
    return tmp_path


def test_reads_split_features_and_mapped_text(mm_folder, caplog):
    raw = read_mmrec("toy", mm_folder, OPTIONS)
    assert raw.interactions["published_split"].tolist() == ["train", "test", "train", "valid"]
    assert raw.items["item_id"].tolist() == ["0", "1", "2"]
    assert raw.items["text"].tolist() == ["jazz", "", "rock,loud"]  # item 1 -> artist 60: none
    assert "1 of 3 items have no row" in caplog.text
    assert raw.precomputed["audio_x"].dtype == np.float32
    assert raw.precomputed["audio_x"][2].tolist() == [8, 9, 10, 11]
    assert raw.items["image_path"].isna().all() and not raw.has_timestamps


def test_features_follow_item_index_after_ingest(mm_folder):
    from crossrec.pipelines.ingest.nodes import ingest_in_memory

    params = {
        "raw_root": str(mm_folder.parent),
        "datasets": {mm_folder.name: {"adapter": "mmrec", "options": OPTIONS}},
    }
    out = ingest_in_memory(params, mm_folder.name, seed=0)
    assert out["dataset_info"]["split_strategy"] == "published"
    assert out["dataset_info"]["precomputed"] == ["audio_x", "text_y"]
    feats = out["precomputed_features"]["audio_x"]
    for row in out["items"].itertuples():
        assert feats[row.item_idx, 0] == 4 * int(row.item_id)
    assert out["interactions"]["split"].tolist() == ["train", "test", "train", "valid"]


def test_item_beyond_feature_rows(mm_folder):
    (mm_folder / "toy.inter").write_text("userID\titemID\trating\tx_label\n0\t3\t1\t0\n")
    (mm_folder / "og.inter").write_text("userID\titemID\trating\tx_label\n5\t50\t1\t0\n")
    with pytest.raises(
        DataValidationError,
        match=r"toy\.inter, row 1, column 'itemID': itemID "
        r"3 has no feature row",
    ):
        read_mmrec("toy", mm_folder, OPTIONS)


def test_feature_matrices_disagree(mm_folder):
    np.save(mm_folder / "t.npy", np.ones((4, 2), dtype=np.float32))
    with pytest.raises(DataValidationError, match="disagree on the item count"):
        read_mmrec("toy", mm_folder, OPTIONS)


def test_id_map_not_row_aligned(mm_folder):
    (mm_folder / "og.inter").write_text("userID\titemID\trating\tx_label\n5\t50\t1\t0\n")
    with pytest.raises(
        DataValidationError,
        match=r"og\.inter: 1 rows but the interactions "
        r"file has 4",
    ):
        read_mmrec("toy", mm_folder, OPTIONS)


def test_missing_feature_file(mm_folder):
    with pytest.raises(DataValidationError, match=r"nope\.npy: feature file does not exist"):
        read_mmrec("toy", mm_folder, {**OPTIONS, "features": {"a": "nope.npy"}})


def test_bad_split_label(mm_folder):
    (mm_folder / "toy.inter").write_text("userID\titemID\trating\tx_label\n0\t0\t1\t7\n")
    with pytest.raises(DataValidationError, match=r"row 1, column 'x_label': split label '7'"):
        read_mmrec("toy", mm_folder, OPTIONS)


def test_real_lastfm(shared_data_dir):
    import yaml

    params_file = Path(__file__).resolve().parents[2] / "conf/base/parameters_ingest.yml"
    spec = yaml.safe_load(params_file.read_text())["ingest"]["datasets"]
    raw = read_mmrec(
        "lastfm2k_multimodal",
        shared_data_dir / "lastfm2k_multimodal",
        spec["lastfm2k_multimodal"]["options"],
    )
    counts = raw.interactions["published_split"].value_counts()
    assert (counts["train"], counts["valid"], counts["test"]) == (44_327, 4_799, 7_219)
    assert len(raw.items) == 1_425 and raw.interactions["user_id"].nunique() == 1_858
    assert {k: v.shape for k, v in raw.precomputed.items()} == {
        "audio_vggish": (1425, 128),
        "audio_whisper": (1425, 512),
    }  # the shipped MiniLM matrix encodes held-out users' tags: not configured
    assert (raw.items["text"] != "").all()


def test_text_file_encoding(mm_folder):
    (mm_folder / "text.tsv").write_bytes(
        "artistID\ttext\n70\tBj\u00f6rk\n50\tjazz\n".encode("latin-1")
    )
    with pytest.raises(
        DataValidationError,
        match=r"text\.tsv: text file is not valid utf-8 "
        r"text: byte 0xf6 at line 2",
    ):
        read_mmrec("toy", mm_folder, OPTIONS)
    options = {**OPTIONS, "text": {**OPTIONS["text"], "encoding": "latin-1"}}
    assert read_mmrec("toy", mm_folder, options).items["text"].tolist() == [
        "jazz",
        "",
        "Bj\u00f6rk",
    ]


def test_tag_text_declared_categorical_becomes_an_attribute_column(mm_folder):
    text = {**OPTIONS["text"], "categorical_columns": ["text"], "value_separator": ","}
    raw = read_mmrec("toy", mm_folder, {**OPTIONS, "text": text})
    assert raw.attribute_columns == {"text": {"kind": "categorical", "separator": ","}}
    assert raw.text_columns == ["text"]
    assert read_mmrec("toy", mm_folder, OPTIONS).attribute_columns == {}
    with pytest.raises(ConfigError, match=r"categorical_columns \['tags'\]"):
        read_mmrec("toy", mm_folder, {**OPTIONS, "text": {**text, "categorical_columns": ["tags"]}})
