"""The synthetic dataset: real media, deterministic, content-driven preferences."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import soundfile
from PIL import Image

from crossrec.data.synthetic import CLASSES, make_synthetic_dataset


def _digest(folder) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_files_are_real_media(synthetic_dataset_dir):
    items = pd.read_csv(synthetic_dataset_dir / "items.csv")
    assert len(items) == 48
    image = Image.open(synthetic_dataset_dir / items.loc[0, "image_path"])
    assert image.format == "PNG" and image.size == (32, 32)
    audio, rate = soundfile.read(synthetic_dataset_dir / items.loc[0, "audio_path"])
    assert rate == 8000 and audio.ndim == 1 and len(audio) == 4000


def test_every_modality_shows_the_class(synthetic_dataset_dir):
    items = pd.read_csv(synthetic_dataset_dir / "items.csv")
    for _, row in items.iterrows():
        cls = CLASSES[row["content_class"]]
        assert any(w in (row["title"] + row["description"]).lower() for w in cls["words"])
        pixel = np.asarray(Image.open(synthetic_dataset_dir / row["image_path"]))[0, 0]
        assert np.abs(pixel.astype(int) - np.array(cls["colour"])).max() <= 25
        audio, rate = soundfile.read(synthetic_dataset_dir / row["audio_path"])
        peak_hz = np.argmax(np.abs(np.fft.rfft(audio))) * rate / len(audio)
        assert abs(peak_hz - cls["pitch"]) / cls["pitch"] < 0.06


def test_users_prefer_content_classes(synthetic_dataset_dir):
    items = pd.read_csv(synthetic_dataset_dir / "items.csv")
    inter = pd.read_csv(synthetic_dataset_dir / "interactions.csv").merge(
        items[["item", "content_class"]], on="item")
    top2_share = inter.groupby("user")["content_class"].apply(
        lambda s: s.value_counts().iloc[:2].sum() / len(s))
    # Users pick 85% of their items in 1-2 liked classes; 4 classes at random would give ~50%.
    assert top2_share.mean() > 0.8
    assert inter.duplicated(["user", "item"]).sum() == 0


def test_deterministic_for_a_seed(tmp_path):
    a = make_synthetic_dataset(tmp_path / "a", n_users=10, n_items=8, seed=3)
    b = make_synthetic_dataset(tmp_path / "b", n_users=10, n_items=8, seed=3)
    c = make_synthetic_dataset(tmp_path / "c", n_users=10, n_items=8, seed=4)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_without_media(tmp_path):
    folder = make_synthetic_dataset(tmp_path / "s", n_users=5, n_items=8, with_images=False,
                                    with_audio=False)
    items = pd.read_csv(folder / "items.csv", keep_default_na=False)
    assert (items["image_path"] == "").all() and (items["audio_path"] == "").all()
    assert not (folder / "images").exists()


def test_synthetic_ingested_fixture_matches_contract(synthetic_ingested):
    inter = synthetic_ingested["interactions"]
    items = synthetic_ingested["items"]
    info = synthetic_ingested["dataset_info"]
    assert list(inter.columns) == ["user_idx", "item_idx", "rating", "timestamp", "split"]
    assert inter["user_idx"].dtype == np.int64 and inter["rating"].dtype == np.float32
    assert set(inter["split"]) == {"train", "valid", "test"}
    assert list(items.columns) == ["item_idx", "item_id", "title", "description", "image_path",
                                   "audio_path", "is_cold"]
    assert items["item_idx"].tolist() == list(range(info["n_items"]))
    assert synthetic_ingested["users"]["user_idx"].tolist() == list(range(info["n_users"]))
    assert info["has_images"] and info["has_audio"] and info["n_interactions"] == len(inter)
    assert synthetic_ingested["precomputed_features"] == {}
    assert synthetic_ingested["media_report"] == []


def test_content_predicts_held_out_items(synthetic_dataset_dir, synthetic_ingested):
    """Scoring by the class profile of a user's train items beats popularity on test items."""
    classes = pd.read_csv(synthetic_dataset_dir / "items.csv").set_index("item")["content_class"]
    items = synthetic_ingested["items"]
    item_class = classes.loc[items["item_id"]].to_numpy()
    inter = synthetic_ingested["interactions"]
    train, test = inter[inter.split == "train"], inter[inter.split == "test"]
    popularity = np.bincount(train["item_idx"], minlength=len(items)).astype(float)

    def recall_at_10(score_fn) -> float:
        hits = []
        for user, rows in test.groupby("user_idx"):
            seen = train.loc[train.user_idx == user, "item_idx"].to_numpy()
            scores = score_fn(seen)
            scores[seen] = -np.inf
            top = np.argsort(-scores, kind="stable")[:10]
            hits.append(np.isin(rows["item_idx"], top).mean())
        return float(np.mean(hits))

    def content(seen):
        profile = np.bincount(item_class[seen], minlength=len(CLASSES)) / len(seen)
        return profile[item_class] + 1e-3 * popularity

    assert recall_at_10(content) > recall_at_10(lambda seen: popularity.copy()) + 0.15
