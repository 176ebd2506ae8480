"""The catalog's embedding caches: one content-addressed store shared by every dataset name and
variant; a variant of the same items encodes nothing, changed content under a reused id does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from crossrec.datasets.embedding_cache import EmbeddingCacheDataset
from crossrec.encoders.cache import EmbeddingStore
from crossrec.encoders.featurize import encode_modality
from crossrec.encoders.text import render_texts

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CACHE_ENTRIES = ("text_embedding_cache", "image_embedding_cache", "audio_embedding_cache")


def project_catalog(dataset: str):
    """The project's real catalog (conf/base) for ``kedro run --params dataset=<dataset>``."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog
    from omegaconf.resolvers import oc

    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env="base",
        runtime_params={"dataset": dataset},
        custom_resolvers={"oc.env": oc.env},
    )
    return DataCatalog.from_config(loader["catalog"])


class Counting:
    """Wraps a real encoder and records every input it was asked to encode."""

    def __init__(self, encoder):
        self.encoder, self.dim, self.seen = encoder, encoder.dim, []

    def settings(self):
        return self.encoder.settings()

    def encode(self, inputs, progress=None):
        self.seen.extend(inputs)
        return self.encoder.encode(inputs, progress=progress)


@pytest.fixture(scope="module")
def encoders():
    os.environ.setdefault("CROSSREC_MODEL_CACHE", str(PROJECT_ROOT / "data/06_models/zoo"))
    from crossrec.encoders.image import ImageEncoder
    from crossrec.encoders.text import TextEncoder

    text = TextEncoder("minilm-l6", pooling="mean", batch_size=16, device="cpu", max_tokens=64)
    image = ImageEncoder("efficientnet-lite0", batch_size=16, num_workers=0, device="cpu")
    return Counting(text), Counting(image)


def _encode(items, store: EmbeddingStore, encoders) -> dict:
    text_enc, image_enc = encoders
    ids = items["item_id"].astype(str).tolist()
    texts = render_texts(
        items[["title", "description"]].to_dict("records"), ["title", "description"], None
    )
    return {
        "text": encode_modality(
            "text",
            ids,
            texts,
            "text",
            text_enc,
            store.modality("text", text_enc.settings()),
            source="text",
        ),
        "image": encode_modality(
            "image",
            ids,
            items["image_path"].tolist(),
            "file",
            image_enc,
            store.modality("image", image_enc.settings()),
            source="image",
        ),
    }


def test_every_dataset_name_resolves_to_one_shared_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = set()
    for dataset in ("movielens100k_multimodal", "movielens100k_multimodal_5core"):
        catalog = project_catalog(dataset)
        for entry in CACHE_ENTRIES:
            store = catalog.load(entry)
            assert isinstance(store, EmbeddingStore)
            assert "movielens" not in str(store.root)
            paths.add(store.root.resolve())
    assert paths == {(tmp_path / "data/04_feature/embedding_cache").resolve()}


def test_variant_of_same_items_encodes_nothing_and_changed_content_is_encoded(
    synthetic_ingested, synthetic_dataset_dir, encoders, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    text_enc, image_enc = encoders
    items_a = synthetic_ingested["items"]
    first = _encode(items_a, project_catalog("synthetic").load("image_embedding_cache"), encoders)
    n_images = int(items_a["image_path"].astype(bool).sum())
    assert len(text_enc.seen) == len(items_a) and len(image_enc.seen) == n_images

    # Variant B: another dataset name, a subset (like a k-core) in another order, media copied
    # to another folder (same bytes, other paths).
    copy = shutil.copytree(synthetic_dataset_dir, tmp_path / "raw" / "synthetic_5core")
    items_b = items_a.iloc[::-2].reset_index(drop=True).copy()
    items_b["image_path"] = [
        p.replace(str(synthetic_dataset_dir), str(copy)) if p else p for p in items_b["image_path"]
    ]
    text_enc.seen.clear()
    image_enc.seen.clear()
    store_b = project_catalog("synthetic_5core").load("text_embedding_cache")
    second = _encode(items_b, store_b, encoders)
    assert text_enc.seen == [] and image_enc.seen == []
    assert second["text"].n_computed == 0 and second["text"].n_cached == len(items_b)
    rows = items_b["item_idx"].to_numpy()
    for name in ("text", "image"):
        np.testing.assert_array_equal(second[name].vectors, first[name].vectors[rows])
        np.testing.assert_array_equal(second[name].mask, first[name].mask[rows])

    # Same ids, other content: one edited title and one replaced image are encoded again.
    with_image = items_b.index[items_b["image_path"].astype(bool)]
    target, donor = with_image[0], with_image[1]
    Path(items_b.loc[target, "image_path"]).write_bytes(
        Path(items_b.loc[donor, "image_path"]).read_bytes()
    )
    items_b.loc[0, "title"] = "A Completely Different Title"
    text_enc.seen.clear()
    image_enc.seen.clear()
    third = _encode(items_b, store_b, encoders)
    assert len(text_enc.seen) == 1 and "A Completely Different Title" in text_enc.seen[0]
    assert image_enc.seen == [items_b.loc[target, "image_path"]]
    np.testing.assert_allclose(
        third["image"].vectors[target], third["image"].vectors[donor], atol=1e-5
    )
    assert not np.allclose(third["image"].vectors[target], second["image"].vectors[target])
    # dataset A still gets its own (original) vectors for the reused ids
    again = _encode(items_a, project_catalog("synthetic").load("text_embedding_cache"), encoders)
    np.testing.assert_array_equal(again["image"].vectors, first["image"].vectors)
    np.testing.assert_array_equal(again["text"].vectors, first["text"].vectors)


def test_dataset_save_merges_another_store(tmp_path):
    src = EmbeddingStore(tmp_path / "a")
    src.modality("image", {"m": 1}).append(["k"], np.ones((1, 2)))
    target = EmbeddingCacheDataset(str(tmp_path / "b"))
    assert not target.exists()
    target.save(src)
    target.save(target.load())  # same folder: no-op
    assert target.load().modality("image", {"m": 1}).lookup(["k"])[0].tolist() == [True]
    with pytest.raises(Exception, match="saves an EmbeddingStore"):
        target.save({"not": "a store"})
