"""Embedding cache: shards, fingerprints, hits/misses through encode_modality, bad media,
concurrent writers and content-addressed keys."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import numpy as np
import pytest

from crossrec.encoders.cache import CorruptShardError, EmbeddingStore, fingerprint, item_key
from crossrec.encoders.featurize import (
    BadMediaError,
    check_media_budget,
    encode_modality,
    precomputed_block,
    select_names,
)


class Counting:
    """Wraps a real encoder and records how many inputs it was asked to encode."""

    def __init__(self, encoder):
        self.encoder, self.dim, self.seen = encoder, encoder.dim, []

    def settings(self):
        return self.encoder.settings()

    def encode(self, inputs, progress=None):
        self.seen.extend(inputs)
        return self.encoder.encode(inputs, progress=progress)


def test_store_appends_shards_and_looks_up(tmp_path):
    store = EmbeddingStore(tmp_path)
    cache = store.modality("text", {"model": "m", "pooling": "mean"})
    cache.append(["a\x1f1", "b\x1f2"], np.ones((2, 3)))
    cache.append(["c\x1f3"], np.full((1, 3), 2.0))
    assert cache.n_shards() == 2 and len(cache) == 3
    again = EmbeddingStore(tmp_path).modality("text", {"pooling": "mean", "model": "m"})
    hits, vectors = again.lookup(["c\x1f3", "zzz", "a\x1f1"])
    assert hits.tolist() == [True, False, True]
    np.testing.assert_array_equal(vectors, [[2, 2, 2], [1, 1, 1]])
    other = store.modality("text", {"model": "other", "pooling": "mean"})
    assert other.lookup(["a\x1f1"])[0].tolist() == [False]
    assert not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(ValueError):
        cache.append(["x"], np.ones((2, 3)))


def test_cache_module_does_not_import_kedro():
    code = (
        "import sys, crossrec.encoders.cache, crossrec.encoders.featurize; "
        "print('kedro' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_merge_from_copies_complete_shards_only(tmp_path):
    src = EmbeddingStore(tmp_path / "a")
    src.modality("image", {"m": 1}).append(["k"], np.ones((1, 2)))
    folder = src.modality("image", {"m": 1}).folder
    (folder / ".shard-x.vectors.npy.1234.tmp").write_bytes(b"half")  # an interrupted writer
    target = EmbeddingStore(tmp_path / "b")
    assert target.merge_from(src) == 1 and target.merge_from(src) == 0  # nothing overwritten
    assert target.modality("image", {"m": 1}).lookup(["k"])[0].tolist() == [True]
    assert not list((tmp_path / "b").rglob("*.tmp"))
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})


def _append_many(root, worker: int, n: int) -> None:
    cache = EmbeddingStore(root).modality("text", {"model": "m"})
    for i in range(n):
        cache.append([f"w{worker}-{i}\x1fh"], np.full((1, 4), worker * 1000 + i, dtype=np.float32))


def test_concurrent_writers_never_overwrite_each_others_shards(tmp_path):
    """Two runs appending to one shared store at once: every shard survives, keys match vectors."""
    ctx = multiprocessing.get_context("fork")
    n = 40
    workers = [ctx.Process(target=_append_many, args=(tmp_path, w, n)) for w in (1, 2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    cache = EmbeddingStore(tmp_path).modality("text", {"model": "m"})
    assert cache.n_shards() == 2 * n and len(cache) == 2 * n
    keys = [f"w{w}-{i}\x1fh" for w in (1, 2) for i in range(n)]
    hits, vectors = cache.lookup(keys)
    assert hits.all()
    np.testing.assert_array_equal(vectors[:, 0], [w * 1000 + i for w in (1, 2) for i in range(n)])
    assert not list(tmp_path.rglob("*.tmp"))


def test_same_id_other_content_is_another_key(tmp_path):
    """Two datasets sharing an id but not the content never serve each other's vectors."""
    cache = EmbeddingStore(tmp_path).modality("text", {"model": "m"})
    cache.append([item_key("42", "aaa")], np.ones((1, 2)))
    hits, _ = cache.lookup([item_key("42", "bbb"), item_key("42", "aaa")])
    assert hits.tolist() == [False, True]


def test_unreadable_shard_names_the_file(tmp_path):
    cache = EmbeddingStore(tmp_path).modality("text", {"model": "m"})
    cache.append(["a\x1f1"], np.ones((1, 2)))
    keys_file = next(cache.folder.glob("shard-*.keys.npy"))
    keys_file.write_bytes(keys_file.read_bytes()[:20])
    fresh = EmbeddingStore(tmp_path).modality("text", {"model": "m"})
    with pytest.raises(CorruptShardError, match=keys_file.name + ".*delete it"):
        fresh.lookup(["a\x1f1"])


def test_one_changed_text_recomputes_one_item_and_model_change_recomputes_all(
    tmp_path, minilm, zoo_dir
):
    from crossrec.encoders.text import TextEncoder

    store = EmbeddingStore(tmp_path)
    ids = ["i1", "i2", "i3", "i4"]
    texts = [
        "A heist thriller in Los Angeles.",
        "A romantic comedy in Paris.",
        "",
        "A documentary about whales.",
    ]
    enc = Counting(minilm)
    first = encode_modality(
        "text",
        ids,
        texts,
        "text",
        enc,
        store.modality("text", enc.settings()),
        source="text:minilm",
        shard_size=2,
    )
    assert len(enc.seen) == 3 and first.n_computed == 3
    assert first.mask.tolist() == [True, True, False, True]
    assert np.all(first.vectors[2] == 0)

    enc.seen.clear()
    warm = encode_modality(
        "text",
        ids,
        texts,
        "text",
        enc,
        store.modality("text", enc.settings()),
        source="text:minilm",
    )
    assert enc.seen == [] and warm.n_cached == 3
    np.testing.assert_array_equal(warm.vectors, first.vectors)

    edited = list(texts)
    edited[1] = "A romantic comedy in Rome."
    third = encode_modality(
        "text",
        ids,
        edited,
        "text",
        enc,
        store.modality("text", enc.settings()),
        source="text:minilm",
    )
    assert enc.seen == ["A romantic comedy in Rome."] and third.n_cached == 2
    np.testing.assert_array_equal(third.vectors[[0, 3]], first.vectors[[0, 3]])
    assert not np.allclose(third.vectors[1], first.vectors[1])

    other = Counting(TextEncoder("minilm-l6", pooling="last", device="cpu", max_tokens=64))
    fourth = encode_modality(
        "text",
        ids,
        edited,
        "text",
        other,
        store.modality("text", other.settings()),
        source="text:minilm/last",
    )
    assert len(other.seen) == 3 and fourth.n_cached == 0


def test_corrupt_and_missing_media_are_masked_and_reported(tmp_path, image_encoder, media):
    store = EmbeddingStore(tmp_path)
    ids = ["a", "b", "c", "d", "e"]
    paths = [
        str(media["red"]),
        str(media["bad_png"]),
        str(media["missing_png"]),
        None,
        str(media["blue"]),
    ]
    enc = Counting(image_encoder)
    result = encode_modality(
        "image",
        ids,
        paths,
        "file",
        enc,
        store.modality("image", enc.settings()),
        source="image:efficientnet-lite0",
    )
    assert result.mask.tolist() == [True, False, False, False, True]
    by_item = {f["item_id"]: f for f in result.failures}
    assert set(by_item) == {"b", "c"}
    assert by_item["b"]["path"].endswith("bad.png") and "decode" in by_item["b"]["reason"]
    assert by_item["c"]["reason"] == "missing or unreadable file"
    assert result.n_with_input == 4  # item d has no image at all: masked, not a failure
    assert {f["stage"] for f in result.failures} == {"featurize"}
    with pytest.raises(BadMediaError, match=r"2 of 4 image files \(50\.0%\)"):
        check_media_budget(result, ids, paths, [], max_bad_share=0.25)
    check_media_budget(result, ids, paths, [], max_bad_share=0.5)
    # failures are not cached: fixing the file makes the next run encode it
    enc.seen.clear()
    media["bad_png"].write_bytes(media["red"].read_bytes())
    again = encode_modality(
        "image",
        ids,
        paths,
        "file",
        enc,
        store.modality("image", enc.settings()),
        source="image:efficientnet-lite0",
    )
    assert enc.seen == [str(media["bad_png"])] and again.mask.tolist() == [
        True,
        True,
        False,
        False,
        True,
    ]


def test_precomputed_blocks_and_selection():
    matrix = np.array([[1.0, 2.0], [0.0, 0.0], [np.nan, 1.0]])
    block = precomputed_block("audio_vggish", matrix, 3)
    assert block["vectors"].dtype == np.float32 and block["mask"].tolist() == [True, False, False]
    assert np.all(block["vectors"][2] == 0) and block["source"] == "precomputed:audio_vggish"
    with pytest.raises(ValueError, match="rows aligned"):
        precomputed_block("x", matrix, 4)
    names = ["audio_vggish", "audio_whisper", "text_minilm"]
    assert select_names(names, ["audio_*"], []) == names[:2]
    assert select_names(names, ["*"], ["*whisper"]) == ["audio_vggish", "text_minilm"]
    assert item_key("7", "abc") == "7\x1fabc"


def test_prune_removes_stale_settings_folders(tmp_path):
    store = EmbeddingStore(tmp_path)
    old = store.modality("text", {"model": "old"})
    new = store.modality("text", {"model": "new"})
    image = store.modality("image", {"model": "cnn"})
    for cache in (old, new, image):
        cache.append(["k"], np.ones((1, 2)))
    removed = store.prune({"text": [new.folder.name]})
    assert removed == [old.folder]
    assert new.folder.is_dir() and image.folder.is_dir() and not old.folder.exists()
    assert store.modalities() == ["image", "text"]


def test_shares_of_the_catalogue_fill_one_cache_that_a_full_run_reads(tmp_path, minilm):
    """Two machines each encode their share (``featurize_modalities.items``) into one cache; the
    run that assembles the features then encodes nothing and gets what one machine would."""
    from crossrec.encoders.config import FeaturizeConfig
    from crossrec.encoders.modalities import assemble_item_features

    ids = [f"i{n}" for n in range(5)]
    texts = ["a heist", "a romance", "whales", "a space opera", "a courtroom drama"]

    def encode(encoder, folder, **share):
        store = EmbeddingStore(tmp_path / folder).modality("text", encoder.settings())
        return encode_modality("text", ids, texts, "text", encoder, store, "text:minilm", **share)

    seen = []
    for index in (0, 1):
        enc = Counting(minilm)
        part = encode(enc, "shared", items=(index, 2))
        seen.append(list(enc.seen))
        assert part.n_computed == len(enc.seen)
    assert seen == [texts[:2], texts[2:]]
    enc = Counting(minilm)
    full = encode(enc, "shared")
    assert enc.seen == [] and full.n_cached == 5
    np.testing.assert_allclose(full.vectors, encode(minilm, "alone").vectors, atol=1e-6)

    with pytest.raises(ValueError, match="index 2 must be below count 2"):
        FeaturizeConfig(items={"index": 2, "count": 2})
    with pytest.raises(ValueError, match="items.count > 1"):
        assemble_item_features([], {}, {}, FeaturizeConfig(items={"index": 0, "count": 2}), [])
