"""Increments (crossrec.data.increments): stable indices, appended users / items, and every
bad increment failing clearly with the tables it was applied to left untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from crossrec.data.errors import DataValidationError
from crossrec.data.increment_files import list_increments, read_increment
from crossrec.data.increments import DatasetTables, IncrementRules, apply_increment
from crossrec.data.validation import natural_order

TEXT = ["title", "description"]
LATE = 1_700_000_000  # after every synthetic timestamp


@pytest.fixture()
def tables(synthetic_ingested) -> DatasetTables:
    s = synthetic_ingested
    return DatasetTables(
        s["interactions"].copy(), s["items"].copy(), s["users"].copy(), dict(s["dataset_info"])
    )


def write_increment(
    folder: Path, rows: list[dict], items: list[dict] | None = None, poster: Path | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "interactions.csv", index=False)
    if items is not None:
        if poster is not None:
            shutil.copy(poster, folder / "new.png")
        pd.DataFrame(items).to_csv(folder / "items.csv", index=False)
    return folder


def one_batch(tmp_path: Path, tables: DatasetTables, name: str = "0001") -> Path:
    """Known user + known item, known user + new item, new user + known and new item."""
    poster = Path(tables.items["image_path"].iloc[0])
    rows = [
        {"user_id": "user001", "item_id": "item047", "timestamp": LATE, "rating": 4},
        {"user_id": "user001", "item_id": "item900", "timestamp": LATE + 1, "rating": 5},
        {"user_id": "user900", "item_id": "item003", "timestamp": LATE + 2, "rating": 3},
        {"user_id": "user900", "item_id": "item900", "timestamp": LATE + 3, "rating": 5},
    ]
    known = tables.interactions
    user1 = tables.users.set_index("user_id").loc["user001", "user_idx"]
    item47 = tables.items.set_index("item_id").loc["item047", "item_idx"]
    assert not ((known.user_idx == user1) & (known.item_idx == item47)).any()
    items = [
        {
            "item_id": "item900",
            "title": "The New One",
            "description": "A new tale.",
            "image_path": "new.png",
        }
    ]
    return write_increment(tmp_path / "increments" / name, rows, items, poster)


def test_indices_stay_and_new_ones_append(tables, tmp_path):
    inc = read_increment(one_batch(tmp_path, tables), TEXT, has_timestamps=True)
    out, report = apply_increment(tables, inc, IncrementRules(valid_share=0.0), seed=0)
    n_users, n_items = len(tables.users), len(tables.items)
    # every known user / item keeps its index; the new ones come right after
    pd.testing.assert_frame_equal(out.users.iloc[:n_users], tables.users)
    pd.testing.assert_frame_equal(out.items.iloc[:n_items], tables.items)
    assert out.users["user_id"].iloc[n_users:].tolist() == ["user900"]
    assert out.users["user_idx"].tolist() == list(range(n_users + 1))
    new_item = out.items.iloc[n_items]
    assert (new_item["item_idx"], new_item["item_id"]) == (n_items, "item900")
    assert new_item["image_path"].endswith("new.png") and new_item["title"] == "The New One"
    # every ingested row is still there with its split label
    merged = tables.interactions.merge(
        out.interactions,
        how="left",
        indicator=True,
        on=["user_idx", "item_idx", "timestamp", "split"],
    )
    assert (merged["_merge"] == "both").all()
    added = out.interactions[out.interactions["timestamp"] >= LATE]
    assert len(added) == 4 and set(added["split"]) == {"train"}
    assert out.dataset_info["n_users"] == n_users + 1
    assert out.dataset_info["n_items"] == n_items + 1
    assert out.dataset_info["increments"] == ["0001"]
    assert (report["new_users"], report["new_items"], report["interactions"]) == (1, 1, 4)


def test_indices_are_stable_across_a_chain_of_increments(tables, tmp_path):
    first = read_increment(one_batch(tmp_path, tables), TEXT, True)
    after_one, _ = apply_increment(tables, first, IncrementRules(), seed=0)
    rows = [
        {"user_id": "user900", "item_id": "item000", "timestamp": LATE + 10},
        {"user_id": "user950", "item_id": "item900", "timestamp": LATE + 11},
        {"user_id": "user0999", "item_id": "item001", "timestamp": LATE + 12},
    ]
    second = read_increment(write_increment(tmp_path / "increments" / "0002", rows), TEXT, True)
    after_two, _ = apply_increment(after_one, second, IncrementRules(), seed=0)
    pd.testing.assert_frame_equal(after_two.users.iloc[: len(after_one.users)], after_one.users)
    pd.testing.assert_frame_equal(after_two.items, after_one.items)
    # new users in ingest's natural id order
    assert after_two.users["user_id"].iloc[len(after_one.users) :].tolist() == natural_order(
        ["user950", "user0999"]
    )
    assert after_two.dataset_info["increments"] == ["0001", "0002"]
    assert [p.name for p in list_increments(tmp_path)] == ["0001", "0002"]


def test_valid_share_labels_some_new_rows_valid_reproducibly(tables, tmp_path):
    rows = [
        {"user_id": f"user{u:03d}", "item_id": f"item{i:03d}", "timestamp": LATE}
        for u in range(60)
        for i in (40, 41, 42, 43, 44, 45, 46, 47)
    ]
    inc = read_increment(write_increment(tmp_path / "inc", rows), TEXT, True)
    rules = IncrementRules(duplicates="skip", valid_share=0.25)
    first, report = apply_increment(tables, inc, rules, seed=3)
    again, _ = apply_increment(tables, inc, rules, seed=3)
    added = first.interactions[first.interactions["timestamp"] == LATE]
    assert 0.15 < (added["split"] == "valid").mean() < 0.35
    pd.testing.assert_frame_equal(first.interactions, again.interactions)
    assert report["skipped_duplicates"] > 0


def _expect_failure(tables: DatasetTables, folder: Path, match: str) -> None:
    before = [
        tables.interactions.copy(),
        tables.items.copy(),
        tables.users.copy(),
        dict(tables.dataset_info),
    ]
    with pytest.raises(DataValidationError, match=match):
        inc = read_increment(folder, TEXT, has_timestamps=True)
        apply_increment(tables, inc, IncrementRules(), seed=0)
    # nothing lost: the tables the increment was applied to are exactly as before
    pd.testing.assert_frame_equal(tables.interactions, before[0])
    pd.testing.assert_frame_equal(tables.items, before[1])
    pd.testing.assert_frame_equal(tables.users, before[2])
    assert tables.dataset_info == before[3]


def _fails_unless(tables: DatasetTables, folder: Path, match: str, rules: IncrementRules):
    """Fails by default (nothing lost), applies under ``rules``: (tables, report)."""
    _expect_failure(tables, folder, match)
    return apply_increment(tables, read_increment(folder, TEXT, True), rules, seed=0)


def test_repeated_interaction_fails_or_is_skipped_by_rule(tables, tmp_path):
    row = tables.interactions.iloc[5]
    user = tables.users.set_index("user_idx").loc[row["user_idx"], "user_id"]
    item = tables.items.set_index("item_idx").loc[row["item_idx"], "item_id"]
    rows = [
        {"user_id": "user777", "item_id": "item010", "timestamp": LATE},
        {"user_id": user, "item_id": item, "timestamp": LATE},
    ]
    out, report = _fails_unless(
        tables,
        write_increment(tmp_path / "dup", rows),
        rf"dup/interactions.csv, row {len(rows)}: .*repeat a known "
        rf"\(user, item\) pair; first: user '{user}', item '{item}'",
        IncrementRules(duplicates="skip"),
    )
    assert report["skipped_duplicates"] == 1
    assert len(out.interactions) == len(tables.interactions) + len(rows) - 1


def test_unknown_columns_fail_naming_the_column(tables, tmp_path):
    rows = [{"user_id": "user001", "item_id": "item047", "timestamp": LATE, "price": 3}]
    _expect_failure(
        tables,
        write_increment(tmp_path / "cols", rows),
        r"cols/interactions.csv, column 'price': unknown column\(s\) \['price'\]",
    )
    rows = [{"user_id": "user001", "item_id": "item901", "timestamp": LATE}]
    items = [{"item_id": "item901", "title": "t", "colour": "red"}]
    _expect_failure(
        tables,
        write_increment(tmp_path / "icols", rows, items),
        r"icols/items.csv, column 'colour': unknown column",
    )
    _expect_failure(
        tables,
        write_increment(tmp_path / "nots", [{"user_id": "u", "item_id": "i"}]),
        r"nots/interactions.csv, column 'timestamp': missing column",
    )


def test_increment_older_than_the_data_fails_or_is_accepted(tables, tmp_path):
    newest = int(tables.interactions["timestamp"].max())
    rows = [
        {"user_id": "user777", "item_id": "item047", "timestamp": newest + 5},
        {"user_id": "user778", "item_id": "item047", "timestamp": newest - 100},
    ]
    out, _ = _fails_unless(
        tables,
        write_increment(tmp_path / "old", rows),
        rf"old/interactions.csv, row {len(rows)}, column "
        rf"'timestamp': 1 interaction\(s\) older than the newest one already ingested",
        IncrementRules(older_than_seen="accept"),
    )
    assert len(out.interactions) == len(tables.interactions) + len(rows)


def test_unknown_item_known_catalogue_item_and_reapplied_increment_fail(tables, tmp_path):
    rows = [{"user_id": "user001", "item_id": "item999", "timestamp": LATE}]
    _expect_failure(
        tables,
        write_increment(tmp_path / "unk", rows),
        r"unk/interactions.csv, row 1, column 'item_id': item 'item999' is neither "
        r"in the catalogue nor in the increment's items table",
    )
    items = [{"item_id": "item003", "title": "changed"}]
    _expect_failure(
        tables,
        write_increment(tmp_path / "known", rows, items),
        r"known/items.csv, row 1, column 'item_id': item 'item003' is already in the "
        r"catalogue",
    )
    inc = read_increment(one_batch(tmp_path, tables), TEXT, True)
    once, _ = apply_increment(tables, inc, IncrementRules(), seed=0)
    with pytest.raises(DataValidationError, match="increment '0001' was already applied"):
        apply_increment(once, inc, IncrementRules(), seed=0)
