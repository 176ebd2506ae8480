"""Downloader, exercised offline on a file:// copy of the GroupLens archive."""

from __future__ import annotations

import zipfile

import pytest

from crossrec.data.adapters import get_adapter
from crossrec.data.download import ChecksumError, download_movielens100k


def _zip(tmp_path, source, corrupt: bool = False):
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("u.data", "u.item", "u.genre"):
            data = (source / name).read_bytes()
            zf.writestr(f"ml-100k/{name}", data[:-10] if corrupt and name == "u.item" else data)
    return archive.as_uri()


def test_download_verifies_and_converts(shared_data_dir, tmp_path):
    url = _zip(tmp_path, shared_data_dir / "movielens100k_multimodal" / "ml-100k")
    folder = download_movielens100k(tmp_path / "raw", url=url)
    raw = get_adapter("movielens_multimodal", "t")(
        "movielens100k", folder,
        {"text_columns": ["title"], "genre_columns": ["genre_unknown", "Action", "Animation",
                                                     "Children", "Comedy"],
         "image_pattern": None})
    assert len(raw.interactions) == 100_000 and raw.items["item_id"].nunique() == 1_682
    toy = raw.items.set_index("item_id").loc["1"]
    assert toy["title"] == "Toy Story (1995)" and toy["year"] == "1995"
    assert toy["genres"] == "Animation, Children, Comedy"


def test_download_rejects_a_corrupt_file(shared_data_dir, tmp_path):
    url = _zip(tmp_path, shared_data_dir / "movielens100k_multimodal" / "ml-100k", corrupt=True)
    with pytest.raises(ChecksumError, match=r"u\.item has sha256 .* expected 553841eb"):
        download_movielens100k(tmp_path / "raw", url=url)
    assert not (tmp_path / "raw").exists()


def test_missing_folder_hint_names_the_downloader(tmp_path):
    from crossrec.pipelines.ingest.nodes import load_raw_dataset

    params = {"raw_root": str(tmp_path),
              "datasets": {"movielens100k": {"adapter": "movielens_multimodal",
                                             "download": {"source": "grouplens_ml100k"}}}}
    with pytest.raises(FileNotFoundError, match=r"python -m crossrec\.data\.download "
                                                r"movielens100k"):
        load_raw_dataset(params, "movielens100k")
