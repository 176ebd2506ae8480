"""Parsing and validation helpers: each bad input names the file, row, column and problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec.data.errors import DataValidationError
from crossrec.data.validation import (
    add_bare_items,
    check_unknown_items,
    deduplicate_interactions,
    deduplicate_items,
    natural_order,
    parse_ids,
    parse_int_ids,
    parse_ratings,
    parse_timestamps,
    read_table,
    require_columns,
)


def _inter(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    frame["row"] = np.arange(1, len(frame) + 1)
    return frame


def test_read_table_missing_file_names_it(tmp_path):
    with pytest.raises(DataValidationError, match=r"nope\.csv: interactions file does not exist"):
        read_table(tmp_path / "nope.csv", role="interactions")


def test_read_table_keeps_ids_as_text(tmp_path):
    (tmp_path / "t.csv").write_text("id,x\n007,1\n8,\n")
    frame = read_table(tmp_path / "t.csv")
    assert frame["id"].tolist() == ["007", "8"]
    assert pd.isna(frame.loc[1, "x"])


def test_read_table_parquet(tmp_path):
    pd.DataFrame({"u": [1, 2], "i": ["a", "b"]}).to_parquet(tmp_path / "t.parquet")
    frame = read_table(tmp_path / "t.parquet")
    assert frame["u"].tolist() == ["1", "2"]


def test_missing_column_suggests_the_close_name():
    frame = pd.DataFrame({"user_id": [], "item": []})
    with pytest.raises(DataValidationError) as err:
        require_columns(frame, ["user_id", "itme"], "data/x.csv")
    message = str(err.value)
    assert message.startswith("data/x.csv, column 'itme': missing column 'itme'")
    assert "did you mean 'item'" in message and "columns present" in message


def test_empty_id_names_row_and_column():
    with pytest.raises(DataValidationError, match=r"f\.csv, row 2, column 'user': empty id"):
        parse_ids(pd.Series(["a", " ", "c"]), "f.csv", "user")


def test_int_ids_reject_text_and_negatives():
    assert parse_int_ids(pd.Series(["0", "5"]), "f", "c").tolist() == [0, 5]
    with pytest.raises(DataValidationError, match=r"row 2, column 'itemID': id 'b'"):
        parse_int_ids(pd.Series(["1", "b"]), "f", "itemID")
    with pytest.raises(DataValidationError, match=r"row 1.*'-1'"):
        parse_int_ids(pd.Series(["-1"]), "f", "itemID")


def test_ratings_must_be_numbers():
    assert parse_ratings(pd.Series(["4", "2.5"]), "f", "r").dtype == np.float32
    with pytest.raises(DataValidationError, match=r"row 2, column 'r': rating 'good'"):
        parse_ratings(pd.Series(["4", "good"]), "f", "r")


def test_timestamps_unix_and_iso():
    assert parse_timestamps(pd.Series(["10", "20.7"]), "f", "t").tolist() == [10, 20]
    iso = parse_timestamps(pd.Series(["1970-01-01T00:01:00Z", "1970-01-02"]), "f", "t")
    assert iso.tolist() == [60, 86400]


@pytest.mark.parametrize("values,row", [(["10", "soon", "30"], 2), (["2020-01-01", "never"], 2)])
def test_bad_timestamp_names_row(values, row):
    with pytest.raises(DataValidationError, match=rf"row {row}, column 'ts': timestamp"):
        parse_timestamps(pd.Series(values), "f.csv", "ts")


def test_duplicate_interactions_error_names_the_row():
    frame = _inter([["u", "a", 1, 5], ["u", "b", 1, 6], ["u", "a", 1, 7]])
    with pytest.raises(
        DataValidationError,
        match=r"r\.csv, row 3: duplicate interaction of "
        r"user 'u' with item 'a'",
    ):
        deduplicate_interactions(frame, "error", "r.csv")


def test_duplicate_interactions_keep_earliest_and_log(caplog):
    frame = _inter([["u", "a", 1, 9], ["u", "b", 1, 6], ["u", "a", 5, 3]])
    out = deduplicate_interactions(frame, "keep_first", "r.csv")
    assert len(out) == 2
    assert out.loc[out["item_id"] == "a", "rating"].item() == 5  # the earliest (t=3) is kept
    assert "dropped 1 duplicate" in caplog.text


def test_unknown_items_error_and_drop(caplog):
    frame = _inter([["u", "a", 1, 1], ["u", "zz", 1, 2]])
    with pytest.raises(DataValidationError, match=r"row 2.*item 'zz' is not in the item table"):
        check_unknown_items(frame, pd.Series(["a"]), "error", "r.csv", "items.csv")
    out = check_unknown_items(frame, pd.Series(["a"]), "drop", "r.csv", "items.csv")
    assert out["item_id"].tolist() == ["a"] and "dropped 1 interactions" in caplog.text


def test_deduplicate_items_keeps_most_complete_then_first(caplog):
    items = pd.DataFrame(
        {
            "item_id": ["1", "2", "1", "2", "3"],
            "title": ["A", "B", "A", "B2", "C"],
            "overview": ["", "x", "plot", "y", ""],
            "image_path": [None] * 5,
            "audio_path": [None] * 5,
        }
    )
    kept, positions = deduplicate_items(items, ["title", "overview"], "items.csv")
    # '1' keeps its row with the plot (position 2); '2' is a tie -> the first (position 1);
    # kept rows stay in file order.
    assert positions.tolist() == [1, 2, 4]
    assert kept["item_id"].tolist() == ["2", "1", "3"]
    assert kept["overview"].tolist() == ["x", "plot", ""]
    assert "2 duplicate item rows for 2 ids dropped" in caplog.text


def test_natural_order():
    assert natural_order(["10", "9", "100", "9"]) == ["9", "10", "100"]
    assert natural_order(["b", "a10", "a9"]) == ["a10", "a9", "b"]


def test_read_table_header_only_fails_at_read_time(tmp_path):
    (tmp_path / "ratings.csv").write_text("user,item,rating\n\n")
    with pytest.raises(DataValidationError, match=r"ratings\.csv: no data rows"):
        read_table(tmp_path / "ratings.csv", role="interactions")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataValidationError, match=r"empty\.csv: items file is empty"):
        read_table(tmp_path / "empty.csv", role="items")


def test_read_table_decode_error_names_line_and_option(tmp_path):
    path = tmp_path / "items.csv"
    path.write_bytes("id,title\n1,Cafe\n2,Caf\u00e9\n".encode("cp1252"))
    with pytest.raises(DataValidationError) as err:
        read_table(path, role="items")
    message = str(err.value)
    assert message.startswith(f"{path}: items file is not valid utf-8 text: byte 0xe9 at line 3")
    assert "set the adapter option `encoding`" in message
    assert read_table(path, encoding="cp1252")["title"].tolist() == ["Cafe", "Caf\u00e9"]


def test_read_table_utf16_is_recognised_by_its_byte_order_mark(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,item\nu1,\u00e9t\u00e9\n", encoding="utf-16")
    with pytest.raises(
        DataValidationError,
        match=r"not valid utf-8 text: byte 0xff at line 1 "
        r"\(byte 0\).*encoding` to the file's "
        r"encoding \(utf-16\)",
    ):
        read_table(path)
    assert read_table(path, encoding="utf-16")["item"].tolist() == ["\u00e9t\u00e9"]


def test_id_rule_trims_and_drops_float_suffix_but_keeps_leading_zeros(caplog):
    values = pd.Series([" 7 ", "7.0", "7.", "-3.00", "07", "007.0", "1e3", "x7.0", "A1", "7.5"])
    assert parse_ids(values, "f", "c").tolist() == [
        "7",
        "7",
        "7",
        "-3",
        "07",
        "007",
        "1e3",
        "x7.0",
        "A1",
        "7.5",
    ]
    assert "ids differ from another only by leading zeros (e.g. '007', '07', '7')" in caplog.text


@pytest.mark.parametrize("bad", ["inf", "-inf", "Infinity", "nan"])
def test_non_finite_ratings_name_row_and_column(bad):
    with pytest.raises(
        DataValidationError,
        match=rf"f\.csv, row 3, column 'stars': rating "
        rf"'{bad}' is not (finite|a number)",
    ):
        parse_ratings(pd.Series(["4", "2", bad]), "f.csv", "stars")


def test_non_finite_timestamp_names_row():
    with pytest.raises(
        DataValidationError,
        match=r"row 2, column 'ts': timestamp 'inf' is not "
        r"finite",
    ):
        parse_timestamps(pd.Series(["10", "inf"]), "f.csv", "ts")


def test_unknown_item_error_names_the_users_column_and_leading_zero_near_miss():
    frame = _inter([["u", "0108775015", 1, 1], ["u", "108775044", 1, 2]])
    with pytest.raises(DataValidationError) as err:
        check_unknown_items(
            frame,
            pd.Series(["0108775015", "0108775044"]),
            "error",
            "t.csv",
            "articles.csv",
            column="article_id",
        )
    message = str(err.value)
    assert message.startswith("t.csv, row 2, column 'article_id': item '108775044' is not in")
    assert "the item table has '0108775044', which differs only by leading zeros" in message
    assert "keep to keep the items" in message


def test_unknown_items_keep_adds_bare_items_with_pattern_media(caplog):
    frame = _inter([["u", "a", 1, 1], ["u", "zz", 1, 2], ["v", "b9", 1, 3]])
    items = pd.DataFrame(
        {"item_id": ["a"], "title": ["Alpha"], "image_path": ["/x/a.jpg"], "audio_path": [None]}
    )
    out = check_unknown_items(frame, items["item_id"], "keep", "r.csv", "items.csv")
    assert out["item_id"].tolist() == ["a", "zz", "b9"]
    kept = add_bare_items(
        items, {"zz", "b9"}, ["title"], {"image_path": "/img/{item_id}.jpg"}, "r.csv"
    )
    assert kept["item_id"].tolist() == ["a", "b9", "zz"]
    assert kept["title"].tolist() == ["Alpha", "", ""]
    assert kept["image_path"].tolist() == ["/x/a.jpg", "/img/b9.jpg", "/img/zz.jpg"]
    assert kept["audio_path"].tolist() == [None, None, None]
    assert "kept 2 interacted items that have no row in the item table" in caplog.text


def test_empty_rating_says_so():
    with pytest.raises(DataValidationError, match=r"row 2, column 'r': rating is empty"):
        parse_ratings(pd.Series(["4", None]), "f.csv", "r")
