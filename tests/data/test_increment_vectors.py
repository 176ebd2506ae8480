"""Increments of datasets that ship precomputed feature vectors (Last.fm's VGGish / whisper,
MMRec's .npy matrices): new items carry theirs in ``features/<name>.npy`` (crossrec.data
.increments), bad files fail naming the file, and a refresh gives the new items those vectors
before any interaction (crossrec.refresh.state.encode_new_items)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossrec.data.errors import DataValidationError
from crossrec.data.increment_files import read_increment
from crossrec.data.increments import DatasetTables, IncrementRules, apply_increment
from crossrec.encoders.config import FeaturizeConfig
from crossrec.refresh.state import encode_new_items, precomputed_dims

TEXT = ["title", "description"]
LATE = 1_700_000_000
DIMS = {"audio_vggish": 4}
NO_CACHES = dict.fromkeys(("text", "image", "audio"))  # every encoder is off
OFF = {"text": {"enabled": False}, "image": {"enabled": False}, "audio": {"enabled": False}}


@pytest.fixture()
def tables(synthetic_ingested) -> DatasetTables:
    s = synthetic_ingested
    return DatasetTables(
        s["interactions"].copy(), s["items"].copy(), s["users"].copy(), dict(s["dataset_info"])
    )


def write(folder: Path, items: list[str] | None, vectors: dict[str, np.ndarray]) -> Path:
    """One known user meeting the first new item; the other new items have no interaction."""
    folder.mkdir(parents=True)
    rows = [{"user_id": "user001", "item_id": (items or ["item003"])[0], "timestamp": LATE}]
    pd.DataFrame(rows).to_csv(folder / "interactions.csv", index=False)
    if items is not None:
        pd.DataFrame({"item_id": items, "title": [f"new {i}" for i in items]}).to_csv(
            folder / "items.csv", index=False
        )
    if vectors:
        (folder / "features").mkdir()
        for name, matrix in vectors.items():
            np.save(folder / "features" / f"{name}.npy", matrix)
    return folder


def test_vectors_follow_their_items_into_the_grown_tables(tables, tmp_path):
    # items.csv lists item902 before item901: vectors follow the item, not the position
    vectors = np.array([[0, 0, 2, 0], [1, 0, 0, 0]], np.float32)
    inc = read_increment(
        write(tmp_path / "0001", ["item902", "item901"], {"audio_vggish": vectors}),
        TEXT,
        True,
        DIMS,
    )
    out, _ = apply_increment(tables, inc, IncrementRules(), seed=0)
    assert out.items["item_id"].iloc[-2:].tolist() == ["item901", "item902"]
    rows = out.item_vectors["audio_vggish"]
    assert np.array_equal(rows["item901"], [1, 0, 0, 0])
    assert np.array_equal(rows["item902"], [0, 0, 2, 0])
    assert tables.item_vectors == {}  # the input tables are untouched


@pytest.mark.parametrize(
    ("items", "vectors", "file", "words"),
    [
        (["item901"], {"audio_vggish": np.ones((1, 3))}, "audio_vggish.npy", "3-d vectors"),
        (["item901"], {"audio_vgg": np.ones((1, 4))}, "audio_vgg.npy", "unknown precomputed"),
        (["item901"], {"audio_vggish": np.ones((2, 4))}, "audio_vggish.npy", "2 vectors for the 1"),
        (["item901"], {}, "audio_vggish.npy", "no vectors for the 1 new item"),
        (None, {"audio_vggish": np.ones((1, 4))}, "audio_vggish.npy", "without an items table"),
        (["item901"], {"audio_vggish": np.full((1, 4), np.nan)}, "audio_vggish.npy", "non-finite"),
    ],
)
def test_bad_vectors_fail_naming_the_file(tmp_path, items, vectors, file, words):
    folder = write(tmp_path / "0001", items, vectors)
    with pytest.raises(DataValidationError, match=words) as err:
        read_increment(folder, TEXT, True, DIMS)
    assert file in str(err.value)


def test_a_new_item_gets_its_shipped_vector_before_any_interaction(tables, tmp_path):
    n = len(tables.items)
    old = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    state = {
        "items": tables.items,
        "item_texts": [],
        "item_features": {
            "audio_vggish": {
                "vectors": old,
                "mask": np.ones(n, bool),
                "source": "precomputed:audio_vggish",
            }
        },
    }
    assert precomputed_dims(state["item_features"]) == DIMS
    shipped = np.array([[0.5, -1, 0, 2], [0, 0, 0, 0]], np.float32)  # item902: no vector
    inc = read_increment(
        write(tmp_path / "0001", ["item901", "item902"], {"audio_vggish": shipped}),
        TEXT,
        True,
        precomputed_dims(state["item_features"]),
    )
    grown, _ = apply_increment(tables, inc, IncrementRules(), seed=0)
    never_seen = grown.items.set_index("item_id").loc["item902", "item_idx"]
    assert never_seen not in set(grown.interactions["item_idx"])
    features, _ = encode_new_items(
        state, grown, FeaturizeConfig.model_validate(OFF), NO_CACHES, 0.05
    )
    block = features["audio_vggish"]
    assert np.array_equal(block["vectors"][:n], old)  # known items keep theirs
    assert np.array_equal(block["vectors"][n], shipped[0]) and block["mask"][n]
    assert not block["mask"][n + 1]  # a zero row = no vector, masked as at ingest


def test_refresh_refuses_new_items_without_the_models_precomputed_vectors(tables, tmp_path):
    n = len(tables.items)
    state = {
        "items": tables.items,
        "item_texts": [],
        "item_features": {
            "audio_vggish": {
                "vectors": np.ones((n, 4), np.float32),
                "mask": np.ones(n, bool),
                "source": "precomputed:audio_vggish",
            }
        },
    }
    # read without the model's features (a caller that did not pass them): caught at encoding
    inc = read_increment(write(tmp_path / "0001", ["item901"], {}), TEXT, True)
    grown, _ = apply_increment(tables, inc, IncrementRules(), seed=0)
    with pytest.raises(ValueError, match=r"\['item901'\] have no 'audio_vggish' vectors"):
        encode_new_items(state, grown, FeaturizeConfig.model_validate(OFF), NO_CACHES, 0.05)
