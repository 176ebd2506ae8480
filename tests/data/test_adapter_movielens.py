"""movielens_multimodal adapter: genre flags -> text, year, posters by pattern, duplicate ids."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from crossrec.data.adapters import get_adapter
from crossrec.data.errors import DataValidationError

read_movielens = get_adapter("movielens_multimodal", "test")

ITEMS = (
    "movie_id,title,genre_unknown,Action,Comedy,year,overview\n"
    "1,Toy Story (1995),0,0,1,1995.0,Toys come alive.\n"
    "2,GoldenEye (1995),0,1,0,1995.0,\n"
    "2,GoldenEye (1995),0,1,0,1995.0,James Bond.\n"
    "3,Mystery (1996),1,0,0,,\n"
)
OPTIONS = {"genre_columns": ["genre_unknown", "Action", "Comedy"]}


@pytest.fixture()
def ml_folder(tmp_path):
    (tmp_path / "ratings.csv").write_text(
        "user_id,movie_id,rating,unix_timestamp\n7,1,5,100\n7,2,3,200\n8,1,1,150\n"
    )
    (tmp_path / "items.csv").write_text(ITEMS)
    (tmp_path / "posters").mkdir()
    for i in (1, 2):
        Image.new("RGB", (6, 9), (i * 50, 0, 0)).save(tmp_path / "posters" / f"{i}.jpg")
    return tmp_path


def test_reads_text_genres_year_and_poster_paths(ml_folder):
    raw = read_movielens("ml", ml_folder, OPTIONS)
    assert raw.text_columns == ["title", "overview", "genres", "year"]
    items = raw.items.set_index("item_id")
    assert items.loc["1", "genres"] == "Comedy" and items.loc["3", "genres"] == "unknown"
    assert items.loc["1", "year"] == "1995" and items.loc["3", "year"] == ""
    assert items.loc["1", "image_path"] == str(ml_folder / "posters" / "1.jpg")
    assert raw.interactions["rating"].tolist() == [5.0, 3.0, 1.0]
    assert raw.interactions["timestamp"].tolist() == [100, 200, 150] and raw.has_timestamps
    assert raw.attribute_columns == {
        "genres": {"kind": "categorical", "separator": ", "},
        "year": {"kind": "numeric"},
    }


def test_bad_genre_flag(ml_folder):
    (ml_folder / "items.csv").write_text(ITEMS.replace("0,1,0,1995.0,\n", "0,yes,0,1995.0,\n"))
    with pytest.raises(
        DataValidationError,
        match=r"items\.csv, row 2, column 'Action': genre "
        r"flag 'yes' \(expected 0 or 1\)",
    ):
        read_movielens("ml", ml_folder, OPTIONS)


def test_misnamed_ratings_column(ml_folder):
    options = {**OPTIONS, "ratings_columns": {"user": "userId", "item": "movie_id"}}
    with pytest.raises(
        DataValidationError,
        match=r"ratings\.csv, column 'userId': missing "
        r"column 'userId'; did you mean 'user_id'",
    ):
        read_movielens("ml", ml_folder, options)


def test_duplicates_and_missing_poster_through_ingest(ml_folder, caplog):
    from crossrec.pipelines.ingest.nodes import ingest_in_memory

    params = {
        "raw_root": str(ml_folder.parent),
        "datasets": {ml_folder.name: {"adapter": "movielens_multimodal", "options": OPTIONS}},
        "validation": {"drop_items_without_interactions": False},
        "media": {"max_bad_share": 0.5},
        "split": {"min_user_interactions": 1},  # 3 ratings: every user held out somewhere
    }
    out = ingest_in_memory(params, ml_folder.name, seed=0)
    items = out["items"].set_index("item_id")
    assert len(items) == 3  # duplicate id '2' deduplicated
    assert items.loc["2", "overview"] == "James Bond."  # the more complete row wins
    assert "1 duplicate item rows for 1 ids dropped" in caplog.text
    assert items.loc["3", "image_path"] is None        # no poster file -> reported
    assert out["media_report"] == [{"stage": "ingest", "item_id": "3", "modality": "image",
                                    "path": str(ml_folder / "posters" / "3.jpg"),
                                    "reason": "missing file"}]


def test_real_movielens(shared_data_dir):
    raw = read_movielens(
        "movielens100k_multimodal",
        shared_data_dir / "movielens100k_multimodal",
        {
            "genre_columns": [
                "genre_unknown",
                "Action",
                "Adventure",
                "Animation",
                "Children",
                "Comedy",
                "Crime",
                "Documentary",
                "Drama",
                "Fantasy",
                "FilmNoir",
                "Horror",
                "Musical",
                "Mystery",
                "Romance",
                "SciFi",
                "Thriller",
                "War",
                "Western",
            ]
        },
    )
    assert len(raw.interactions) == 99_815 and raw.interactions["user_id"].nunique() == 943
    assert len(raw.items) == 1_746 and raw.items["item_id"].nunique() == 1_682
    toy = raw.items[raw.items["item_id"] == "1"].iloc[0]
    assert toy["genres"] == "Animation, Children, Comedy" and toy["year"] == "1995"
    assert np.isin(raw.interactions["rating"].unique(), [1, 2, 3, 4, 5]).all()


def test_encoding_option_and_unknown_items_name_the_ratings_column(ml_folder):
    (ml_folder / "items.csv").write_bytes(ITEMS.replace("Toy Story", "L\u00e9on").encode("cp1252"))
    with pytest.raises(DataValidationError, match=r"items\.csv: items file is not valid utf-8"):
        read_movielens("ml", ml_folder, OPTIONS)
    raw = read_movielens("ml", ml_folder, {**OPTIONS, "encoding": "cp1252"})
    assert raw.items["title"].iloc[0] == "L\u00e9on (1995)"
    assert raw.column("item") == "movie_id" and raw.column("user") == "user_id"
    assert raw.media_patterns == {"image_path": str(ml_folder / "posters" / "{item_id}.jpg")}
