"""Generic adapter: configurable columns, CSV or parquet, text and media-path columns."""

from __future__ import annotations

import pandas as pd
import pytest

from crossrec.config import ConfigError
from crossrec.data.adapters import get_adapter
from crossrec.data.errors import DataValidationError

read_generic = get_adapter("generic", "test")

OPTIONS = {"user_column": "uid", "item_column": "iid", "rating_column": "stars",
           "timestamp_column": "when", "item_id_column": "iid", "text_columns": ["name"],
           "image_column": "pic", "audio_column": "sound"}


def _write(folder, inter: str, items: str | None = "iid,name,pic,sound\nA,Alpha,a.png,\n"
           "B,,,b.wav\n") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "interactions.csv").write_text(inter)
    if items is not None:
        (folder / "items.csv").write_text(items)


def test_reads_configured_columns(tmp_path):
    _write(tmp_path, "uid,iid,stars,when\nu1,A,4,1970-01-01 00:01:40\n"
           "u2,B,2.5,2020-01-01T00:00:00Z\n")
    raw = read_generic("toy", tmp_path, OPTIONS)
    inter = raw.interactions
    assert inter["user_id"].tolist() == ["u1", "u2"] and inter["item_id"].tolist() == ["A", "B"]
    assert inter["rating"].tolist() == [4.0, 2.5]
    assert inter["timestamp"].tolist() == [100, 1577836800]
    assert raw.text_columns == ["name"] and raw.items["name"].tolist() == ["Alpha", ""]
    assert raw.items["image_path"].tolist() == [str(tmp_path / "a.png"), None]
    assert raw.items["audio_path"].tolist() == [None, str(tmp_path / "b.wav")]
    assert raw.has_timestamps and raw.files["items"] == str(tmp_path / "items.csv")


def test_parquet_interactions_and_no_item_table(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    pd.DataFrame({"user": [1, 1, 2], "item": [10, 11, 10]}).to_parquet(tmp_path / "x.parquet")
    raw = read_generic("toy", tmp_path, {"interactions_file": "x.parquet", "items_file": None})
    assert raw.interactions["rating"].tolist() == [1.0, 1.0, 1.0]
    assert (raw.interactions["timestamp"] == -1).all() and not raw.has_timestamps
    assert raw.items["item_id"].tolist() == ["10", "11"] and raw.text_columns == []


def test_published_split_column(tmp_path):
    _write(tmp_path, "uid,iid,part\nu1,A,tr\nu1,B,te\n")
    options = {**OPTIONS, "rating_column": None, "timestamp_column": None,
               "split_column": "part", "split_values": {"tr": "train", "te": "test"}}
    raw = read_generic("toy", tmp_path, options)
    assert raw.interactions["published_split"].tolist() == ["train", "test"]
    (tmp_path / "interactions.csv").write_text("uid,iid,part\nu1,A,tr\nu1,B,holdout\n")
    with pytest.raises(DataValidationError, match=r"row 2, column 'part': split label 'holdout'"):
        read_generic("toy", tmp_path, options)


def test_misnamed_interaction_column(tmp_path):
    _write(tmp_path, "user_id,iid,stars,when\nu1,A,4,100\n")
    with pytest.raises(DataValidationError) as err:
        read_generic("toy", tmp_path, OPTIONS)
    assert str(err.value).startswith(f"{tmp_path / 'interactions.csv'}, column 'uid': "
                                     "missing column 'uid'")


def test_misnamed_item_column(tmp_path):
    _write(tmp_path, "uid,iid,stars,when\nu1,A,4,100\n", "iid,title,pic,sound\nA,x,,\n")
    with pytest.raises(DataValidationError, match=r"items\.csv, column 'name': missing column"):
        read_generic("toy", tmp_path, OPTIONS)


def test_bad_timestamp_names_file_and_row(tmp_path):
    _write(tmp_path, "uid,iid,stars,when\nu1,A,4,100\nu2,B,3,yesterday-ish\n")
    with pytest.raises(DataValidationError, match=r"interactions\.csv, row 2, column 'when': "
                                                  r"timestamp 'yesterday-ish'"):
        read_generic("toy", tmp_path, OPTIONS)


def test_mixed_timestamp_formats(tmp_path):
    _write(tmp_path, "uid,iid,stars,when\nu1,A,4,100\nu2,B,3,2020-01-01\n")
    with pytest.raises(DataValidationError, match=r"row 2, column 'when': timestamp "
                                                  r"'2020-01-01' is not a number"):
        read_generic("toy", tmp_path, OPTIONS)


def test_empty_user_id(tmp_path):
    _write(tmp_path, "uid,iid,stars,when\nu1,A,4,100\n,B,3,5\n")
    with pytest.raises(DataValidationError, match=r"row 2, column 'uid': empty id"):
        read_generic("toy", tmp_path, OPTIONS)


def test_unknown_option_is_a_config_error(tmp_path):
    _write(tmp_path, "uid,iid\nu1,A\n")
    with pytest.raises(ConfigError, match=r"(?s)datasets\.toy\.options.*user_col"):
        read_generic("toy", tmp_path, {"user_col": "uid"})


def test_missing_interactions_file(tmp_path):
    with pytest.raises(DataValidationError, match=r"interactions\.csv: interactions file does "
                                                  r"not exist"):
        read_generic("toy", tmp_path, OPTIONS)


def test_synthetic_folder(synthetic_dataset_dir):
    from crossrec.data.synthetic import synthetic_ingest_params

    params = synthetic_ingest_params(synthetic_dataset_dir)
    options = params["datasets"][synthetic_dataset_dir.name]["options"]
    raw = read_generic("synthetic", synthetic_dataset_dir, options)
    assert len(raw.items) == 48 and raw.text_columns == ["title", "description"]
    assert raw.items["image_path"].map(lambda p: p.endswith(".png")).all()
