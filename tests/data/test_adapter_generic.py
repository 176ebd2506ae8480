"""Generic adapter: configurable columns, CSV or parquet, text and media-path columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crossrec.config import ConfigError
from crossrec.data.adapters import get_adapter
from crossrec.data.errors import DataValidationError

read_generic = get_adapter("generic", "test")

OPTIONS = {
    "user_column": "uid",
    "item_column": "iid",
    "rating_column": "stars",
    "timestamp_column": "when",
    "item_id_column": "iid",
    "text_columns": ["name"],
    "image_column": "pic",
    "audio_column": "sound",
}


def _write(
    folder, inter: str, items: str | None = "iid,name,pic,sound\nA,Alpha,a.png,\nB,,,b.wav\n"
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "interactions.csv").write_text(inter)
    if items is not None:
        (folder / "items.csv").write_text(items)


def test_reads_configured_columns(tmp_path):
    _write(
        tmp_path, "uid,iid,stars,when\nu1,A,4,1970-01-01 00:01:40\nu2,B,2.5,2020-01-01T00:00:00Z\n"
    )
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
    options = {
        **OPTIONS,
        "rating_column": None,
        "timestamp_column": None,
        "split_column": "part",
        "split_values": {"tr": "train", "te": "test"},
    }
    raw = read_generic("toy", tmp_path, options)
    assert raw.interactions["published_split"].tolist() == ["train", "test"]
    (tmp_path / "interactions.csv").write_text("uid,iid,part\nu1,A,tr\nu1,B,holdout\n")
    with pytest.raises(DataValidationError, match=r"row 2, column 'part': split label 'holdout'"):
        read_generic("toy", tmp_path, options)


def test_misnamed_interaction_column(tmp_path):
    _write(tmp_path, "user_id,iid,stars,when\nu1,A,4,100\n")
    with pytest.raises(DataValidationError) as err:
        read_generic("toy", tmp_path, OPTIONS)
    assert str(err.value).startswith(
        f"{tmp_path / 'interactions.csv'}, column 'uid': missing column 'uid'"
    )


def test_misnamed_item_column(tmp_path):
    _write(tmp_path, "uid,iid,stars,when\nu1,A,4,100\n", "iid,title,pic,sound\nA,x,,\n")
    with pytest.raises(DataValidationError, match=r"items\.csv, column 'name': missing column"):
        read_generic("toy", tmp_path, OPTIONS)


def test_bad_timestamp_names_file_and_row(tmp_path):
    _write(tmp_path, "uid,iid,stars,when\nu1,A,4,100\nu2,B,3,yesterday-ish\n")
    with pytest.raises(
        DataValidationError,
        match=r"interactions\.csv, row 2, column 'when': "
        r"timestamp 'yesterday-ish'",
    ):
        read_generic("toy", tmp_path, OPTIONS)


def test_mixed_timestamp_formats(tmp_path):
    _write(tmp_path, "uid,iid,stars,when\nu1,A,4,100\nu2,B,3,2020-01-01\n")
    with pytest.raises(
        DataValidationError,
        match=r"row 2, column 'when': timestamp "
        r"'2020-01-01' is not a number",
    ):
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
    with pytest.raises(
        DataValidationError,
        match=r"interactions\.csv: interactions file does "
        r"not exist",
    ):
        read_generic("toy", tmp_path, OPTIONS)


def test_synthetic_folder(synthetic_dataset_dir):
    from crossrec.data.synthetic import synthetic_ingest_params

    params = synthetic_ingest_params(synthetic_dataset_dir)
    options = params["datasets"][synthetic_dataset_dir.name]["options"]
    raw = read_generic("synthetic", synthetic_dataset_dir, options)
    assert len(raw.items) == 48 and raw.text_columns == ["title", "description"]
    assert raw.items["image_path"].map(lambda p: p.endswith(".png")).all()


def test_encoding_option_reads_cp1252(tmp_path):
    _write(tmp_path, "uid,iid,stars,when\nu1,A,4,100\n")
    (tmp_path / "items.csv").write_bytes(
        "iid,name,pic,sound\nA,Caf\u00e9 cr\u00e8me,,\n".encode("cp1252")
    )
    with pytest.raises(
        DataValidationError,
        match=r"items\.csv: items file is not valid utf-8 "
        r"text: byte 0xe9 at line 2.*option `encoding`",
    ):
        read_generic("toy", tmp_path, OPTIONS)
    raw = read_generic("toy", tmp_path, {**OPTIONS, "encoding": "cp1252"})
    assert raw.items["name"].tolist() == ["Caf\u00e9 cr\u00e8me"]


def test_per_file_separator_and_encoding(tmp_path):
    """ratings ';'-separated UTF-16, items tab-separated UTF-8: each file its own options."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "ratings.txt").write_text("uid;iid;stars\nu\u00e9;A;4\nu2;B;3\n", encoding="utf-16")
    (tmp_path / "items.txt").write_text("iid\tname\nA\tAlpha, the first\nB\tBeta\n")
    options = {
        "interactions_file": {"path": "ratings.txt", "separator": ";", "encoding": "utf-16"},
        "items_file": {"path": "items.txt", "separator": "\t"},
        "user_column": "uid",
        "item_column": "iid",
        "rating_column": "stars",
        "item_id_column": "iid",
        "text_columns": ["name"],
    }
    raw = read_generic("toy", tmp_path, options)
    assert raw.interactions["user_id"].tolist() == ["u\u00e9", "u2"]
    assert raw.items["name"].tolist() == ["Alpha, the first", "Beta"]


def test_single_separator_still_applies_to_every_file(tmp_path):
    _write(tmp_path, "uid|iid\nu1|A\n", "iid|name\nA|Alpha\n")
    options = {
        "separator": "|",
        "user_column": "uid",
        "item_column": "iid",
        "item_id_column": "iid",
        "text_columns": ["name"],
    }
    raw = read_generic("toy", tmp_path, options)
    assert raw.interactions["item_id"].tolist() == ["A"] and raw.items["name"].tolist() == ["Alpha"]


def test_unknown_encoding_is_a_config_error(tmp_path):
    _write(tmp_path, "uid,iid\nu1,A\n")
    with pytest.raises(
        ConfigError,
        match=r"(?s)options.*encoding.*unknown text encoding "
        r"'utf-9'",
    ):
        read_generic("toy", tmp_path, {**OPTIONS, "encoding": "utf-9"})
    with pytest.raises(ConfigError, match=r"(?s)items_file.*unknown text encoding"):
        read_generic(
            "toy", tmp_path, {**OPTIONS, "items_file": {"path": "items.csv", "encoding": "klingon"}}
        )


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan"])
def test_non_finite_rating_names_file_row_and_column(tmp_path, bad):
    _write(tmp_path, f"uid,iid,stars,when\nu1,A,4,100\nu2,B,{bad},200\n")
    with pytest.raises(DataValidationError) as err:
        read_generic("toy", tmp_path, OPTIONS)
    assert str(err.value).startswith(
        f"{tmp_path / 'interactions.csv'}, row 2, column 'stars': rating '{bad}' is not"
    )


@pytest.mark.parametrize("which", ["interactions.csv", "items.csv"])
def test_header_only_file_fails_at_read_time(tmp_path, which):
    _write(tmp_path, "uid,iid,stars,when\nu1,A,4,100\n")
    (tmp_path / which).write_text((tmp_path / which).read_text().splitlines()[0] + "\n")
    with pytest.raises(DataValidationError) as err:
        read_generic("toy", tmp_path, OPTIONS)
    assert str(err.value).startswith(f"{tmp_path / which}: no data rows")


def test_one_id_rule_for_users_and_items_in_every_table(tmp_path):
    """'7.0' is '7' in both tables; '07' stays its own id (leading zeros are kept)."""
    _write(tmp_path, "uid,iid\n7,7.0\n7.0,07\n07,7\n", "iid,name\n7,seven\n07,zero-seven\n")
    options = {
        "user_column": "uid",
        "item_column": "iid",
        "item_id_column": "iid",
        "text_columns": ["name"],
    }
    raw = read_generic("toy", tmp_path, options)
    assert raw.interactions["user_id"].tolist() == ["7", "7", "07"]
    assert raw.interactions["item_id"].tolist() == ["7", "07", "7"]
    assert raw.items["item_id"].tolist() == ["7", "07"]


def test_image_and_audio_patterns(tmp_path):
    _write(tmp_path, "uid,iid\nu1,A\nu2,B\n", "iid,name\nA,Alpha\nB,Beta\n")
    options = {
        "user_column": "uid",
        "item_column": "iid",
        "item_id_column": "iid",
        "image_pattern": "img/{item_id}.jpg",
        "audio_pattern": "/abs/{item_id}.wav",
    }
    raw = read_generic("toy", tmp_path, options)
    assert raw.items["image_path"].tolist() == [
        str(tmp_path / "img/A.jpg"),
        str(tmp_path / "img/B.jpg"),
    ]
    assert raw.items["audio_path"].tolist() == ["/abs/A.wav", "/abs/B.wav"]
    assert raw.media_patterns == {
        "image_path": str(tmp_path / "img/{item_id}.jpg"),
        "audio_path": "/abs/{item_id}.wav",
    }
    # without an item table the pattern applies to the interacted items
    raw = read_generic("toy", tmp_path, {**options, "items_file": None})
    assert raw.items["image_path"].tolist() == [
        str(tmp_path / "img/A.jpg"),
        str(tmp_path / "img/B.jpg"),
    ]


@pytest.mark.parametrize(
    "extra,match",
    [
        ({"image_pattern": "img/{id}.jpg"}, r"must contain \{item_id\} and no other field"),
        ({"image_pattern": "img/x.jpg"}, r"must contain \{item_id\}"),
        (
            {"image_pattern": "img/{item_id}.jpg", "image_column": "pic"},
            "either image_column or image_pattern",
        ),
    ],
)
def test_bad_media_pattern_is_a_config_error(tmp_path, extra, match):
    _write(tmp_path, "uid,iid\nu1,A\n")
    with pytest.raises(ConfigError, match=match):
        read_generic("toy", tmp_path, {**OPTIONS, "image_column": None, **extra})


def test_commented_example_in_parameters_file_shows_the_defaults():
    """The generic example in parameters_ingest.yml, uncommented, is valid and is the defaults."""
    import yaml

    from crossrec.data.adapters.generic import GenericOptions

    conf = Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_ingest.yml"
    lines = conf.read_text().splitlines()
    start = lines.index("    # my_shop:")
    block = []
    for line in lines[start:]:
        if not line.startswith("    # "):
            break
        block.append(line[:4] + line[6:])
    spec = yaml.safe_load("\n".join(block))["my_shop"]
    assert spec["adapter"] == "generic"
    assert GenericOptions.model_validate(spec["options"]) == GenericOptions()
    assert set(spec["options"]) == set(GenericOptions.model_fields)


def test_readme_example_is_a_valid_dataset_entry():
    import yaml

    from crossrec.data.adapters.generic import GenericOptions
    from crossrec.data.config import ValidationConfig

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Your own data (generic adapter)", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = yaml.safe_load(block)["ingest"]["datasets"]["my_shop"]
    options = GenericOptions.model_validate(spec["options"])
    assert options.table(options.items_file).encoding == "cp1252"
    assert ValidationConfig.model_validate(spec["validation"]).unknown_items == "keep"


def test_categorical_and_numeric_columns_become_attribute_text_columns(tmp_path):
    _write(
        tmp_path,
        "uid,iid\nu1,A\nu2,B\n",
        "iid,name,kind,price\nA,Alpha,shoe|red,10.5\nB,Beta,hat,\n",
    )
    options = {
        **{k: v for k, v in OPTIONS.items() if k not in ("image_column", "audio_column")},
        "rating_column": None,
        "timestamp_column": None,
        "categorical_columns": ["kind"],
        "numeric_columns": ["price"],
    }
    raw = read_generic("shop", tmp_path, options)
    assert raw.text_columns == ["name", "kind", "price"]
    assert raw.attribute_columns == {
        "kind": {"kind": "categorical", "separator": "|"},
        "price": {"kind": "numeric"},
    }
    assert raw.items.set_index("item_id").loc["A", "kind"] == "shoe|red"
    with pytest.raises(ConfigError, match="both categorical_columns and numeric_columns"):
        read_generic("shop", tmp_path, {**options, "numeric_columns": ["kind"]})
    with pytest.raises(DataValidationError, match="colour"):
        read_generic("shop", tmp_path, {**options, "categorical_columns": ["colour"]})


def test_features_are_row_aligned_with_the_item_table(tmp_path):
    import numpy as np

    _write(tmp_path, "uid,iid\nu1,B\nu2,A\n", "iid,name\nB,Beta\nA,Alpha\nB,Beta\n")
    np.save(tmp_path / "img.npy", np.arange(6, dtype=np.float64).reshape(3, 2))
    options = {"user_column": "uid", "item_column": "iid", "item_id_column": "iid"}
    raw = read_generic("toy", tmp_path, {**options, "features": {"image": "img.npy"}})
    assert raw.precomputed["image"].dtype == np.float32
    assert raw.precomputed["image"].tolist() == [[0, 1], [2, 3], [4, 5]]
    # ingest keeps one row per item id and the vectors of the rows it keeps
    from crossrec.data.ingest import clean_dataset

    ingest = {"raw_root": str(tmp_path.parent), "datasets": {"toy": {"adapter": "generic"}}}
    clean = clean_dataset(raw, ingest, "toy")
    assert clean.items["item_id"].tolist() == ["B", "A"]
    assert clean.precomputed["image"].tolist() == [[0, 1], [2, 3]]

    np.save(tmp_path / "short.npy", np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(DataValidationError, match=r"2 rows but the item table .* has 3"):
        read_generic("toy", tmp_path, {**options, "features": {"image": "short.npy"}})
    with pytest.raises(ConfigError, match="features need an items_file"):
        read_generic("toy", tmp_path, {**options, "items_file": None, "features": {"x": "a.npy"}})
