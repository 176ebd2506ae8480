"""featurize_modalities nodes on the synthetic fixture (text + image + raw audio), the catalog
entries, and the pipeline wiring."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from crossrec.encoders.cache import EmbeddingStore
from crossrec.pipelines.featurize_modalities import create_pipeline, nodes

PROJECT_ROOT = Path(__file__).resolve().parents[3]
#: Small, fast settings: the packaged MiniLM for text, EfficientNet-Lite0, weight-free audio.
PARAMS = {
    "device": "cpu",
    "shard_size": 16,
    "text": {"model": "minilm-l6", "max_tokens": 64, "batch_size": 16},
    "image": {"batch_size": 16, "num_workers": 0},
    "audio": {"kind": "mel", "batch_size": 8, "num_workers": 0},
}


@pytest.fixture(scope="module", autouse=True)
def _model_cache():
    previous = os.environ.get("CROSSREC_MODEL_CACHE")
    os.environ.setdefault("CROSSREC_MODEL_CACHE", str(PROJECT_ROOT / "data/06_models/zoo"))
    yield
    if previous is None:
        os.environ.pop("CROSSREC_MODEL_CACHE", None)


def _media(ingested: dict) -> list:
    """The media inputs of encode_images / encode_audio: ingest's report, params, dataset."""
    return [ingested["media_report"], ingested["ingest_params"], ingested["dataset"]]


def _run_all(ingested: dict, caches: Path, params: dict = PARAMS):
    items, info = ingested["items"], ingested["dataset_info"]
    text = nodes.encode_text(items, info, params, EmbeddingStore(caches / "text"))
    image = nodes.encode_images(
        items, info, params, EmbeddingStore(caches / "image"), *_media(ingested)
    )
    audio = nodes.encode_audio(
        items, info, params, EmbeddingStore(caches / "audio"), *_media(ingested)
    )
    features, report, _ = nodes.assemble_item_features(
        text,
        image,
        audio,
        {},
        ingested["precomputed_features"],
        info,
        params,
        ingested["media_report"],
    )
    return features, report


@pytest.fixture(scope="module")
def ingested(synthetic_ingested, synthetic_dataset_dir):
    """The session's ingested synthetic dataset plus the ingest params that made it."""
    from crossrec.data.synthetic import synthetic_ingest_params

    return {
        **synthetic_ingested,
        "ingest_params": synthetic_ingest_params(synthetic_dataset_dir),
        "dataset": synthetic_dataset_dir.name,
    }


@pytest.fixture(scope="module")
def cold_run(ingested, tmp_path_factory):
    """One cold pass over the synthetic dataset; its caches are reused by the tests below."""
    caches = tmp_path_factory.mktemp("featurize_caches")
    features, report = _run_all(ingested, caches)
    return caches, features, report


def test_synthetic_dataset_gives_text_image_audio_features(synthetic_ingested, cold_run):
    info = synthetic_ingested["dataset_info"]
    assert info["has_images"] and info["has_audio"]
    _, features, report = cold_run
    n = info["n_items"]
    assert set(features) == {"text", "image", "audio"}
    dims = {"text": 384, "image": 1280, "audio": 168}
    for name, block in features.items():
        assert set(block) == {"vectors", "mask", "source"}
        assert block["vectors"].shape == (n, dims[name]) and block["vectors"].dtype == np.float32
        assert block["mask"].dtype == bool and block["mask"].shape == (n,)
        assert np.all(block["vectors"][~block["mask"]] == 0)
        assert np.isfinite(block["vectors"]).all()
    items = synthetic_ingested["items"]
    has_image = items["image_path"].notna().to_numpy()
    assert features["image"]["mask"][has_image].mean() > 0.9
    assert report["modalities"]["text"]["n_computed"] == n
    # content drives the vectors: items of the same content class are closer in image space
    if "content_class" in items.columns:
        cls = items["content_class"].to_numpy()
        v = features["image"]["vectors"]
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)
        sims = v @ v.T
        same = (cls[:, None] == cls[None, :]) & ~np.eye(n, dtype=bool)
        assert sims[same].mean() > sims[~same].mean()


def test_warm_rerun_loads_everything_from_the_cache(ingested, cold_run):
    caches, features, _ = cold_run
    warm, warm_report = _run_all(ingested, caches)
    for name in features:
        np.testing.assert_array_equal(warm[name]["vectors"], features[name]["vectors"])
        np.testing.assert_array_equal(warm[name]["mask"], features[name]["mask"])
        assert warm_report["modalities"][name]["n_computed"] == 0


def test_changed_model_recomputes_only_that_modality(ingested, cold_run):
    caches = cold_run[0]
    params = copy.deepcopy(PARAMS)
    params["text"]["pooling"] = "last"
    _, report = _run_all(ingested, caches, params)
    n = ingested["dataset_info"]["n_items"]
    assert report["modalities"]["text"]["n_computed"] == n
    assert report["modalities"]["image"]["n_computed"] == 0
    assert report["modalities"]["audio"]["n_computed"] == 0


def test_precomputed_pass_through_and_disabled_modalities(ingested, tmp_path):
    info = dict(ingested["dataset_info"], precomputed=["audio_vggish"])
    n = info["n_items"]
    rng = np.random.default_rng(0)
    shipped = {"audio_vggish": rng.normal(size=(n, 8))}
    params = {**PARAMS, "image": {"enabled": False}, "audio": {"enabled": False}}
    items = ingested["items"]
    text = nodes.encode_text(items, info, params, EmbeddingStore(tmp_path))
    assert (
        nodes.encode_images(items, info, params, EmbeddingStore(tmp_path), *_media(ingested)) == {}
    )
    features, report, merged = nodes.assemble_item_features(
        text, {}, {}, {}, shipped, info, params, []
    )
    assert set(features) == {"text", "audio_vggish"} and merged == report["failures"] == []
    assert features["audio_vggish"]["vectors"].dtype == np.float32
    assert features["audio_vggish"]["mask"].all()
    excluded = {**params, "precomputed": {"exclude": ["audio_*"]}}
    features, _, _ = nodes.assemble_item_features(text, {}, {}, {}, shipped, info, excluded, [])
    assert set(features) == {"text"}


def test_bad_configuration_and_inputs_fail_clearly(ingested, tmp_path):
    from crossrec.config import ConfigError

    items, info = ingested["items"], ingested["dataset_info"]
    with pytest.raises(ConfigError, match="parameters_featurize_modalities.yml"):
        nodes.encode_text(items, info, {"text": {"modle": "x"}}, EmbeddingStore(tmp_path))
    no_images = dict(info, has_images=False)
    with pytest.raises(ValueError, match="image.enabled is true"):
        nodes.encode_images(
            items,
            no_images,
            {"image": {"enabled": True}},
            EmbeddingStore(tmp_path),
            *_media(ingested),
        )
    with pytest.raises(ConfigError, match="max_bad_media_share"):  # one budget: ingest's
        nodes.encode_text(items, info, {"max_bad_media_share": 0.1}, EmbeddingStore(tmp_path))
    with pytest.raises(ValueError, match="missing column"):
        nodes.encode_text(items.drop(columns=["item_id"]), info, PARAMS, EmbeddingStore(tmp_path))


def test_corrupt_media_share_stops_the_run(ingested, tmp_path):
    items = ingested["items"].copy()
    info = ingested["dataset_info"]
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with_path = items.index[items["image_path"].notna()]
    items.loc[with_path[: len(with_path) // 2], "image_path"] = str(bad)
    from crossrec.encoders.featurize import BadMediaError

    report, ingest, dataset = _media(ingested)
    with pytest.raises(BadMediaError, match=r"ingest\.media\.max_bad_share=5\.0%"):
        nodes.encode_images(items, info, PARAMS, EmbeddingStore(tmp_path / "c"), *_media(ingested))
    lenient = {**ingest, "media": {"max_bad_share": 0.9}}
    result = nodes.encode_images(
        items, info, PARAMS, EmbeddingStore(tmp_path / "c"), report, lenient, dataset
    )["image"]
    assert len(result.failures) == len(with_path) // 2
    assert all(f["path"] == str(bad) and f["modality"] == "image" for f in result.failures)


def _cut_jpeg(path: Path) -> None:
    """A JPEG whose second half is missing: PIL's header check passes, decoding fails."""
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture()
def two_of_24_bad(tmp_path):
    """24 items with images: one fails ingest's check, one passes it but cannot be decoded."""
    import pandas as pd

    from crossrec.data.synthetic import make_synthetic_dataset, synthetic_ingest_params
    from crossrec.pipelines.ingest.nodes import ingest_in_memory

    folder = make_synthetic_dataset(
        tmp_path / "raw" / "syn24", n_users=30, n_items=24, seed=3, with_audio=False
    )
    (folder / "images" / "item004.png").write_bytes(b"\x89PNG garbage")
    _cut_jpeg(folder / "images" / "item009.jpg")
    table = pd.read_csv(folder / "items.csv", dtype=str, keep_default_na=False)
    table.loc[table["item"] == "item009", "image_path"] = "images/item009.jpg"
    table.to_csv(folder / "items.csv", index=False)
    ingest = synthetic_ingest_params(folder)
    out = ingest_in_memory(ingest, "syn24", seed=0)  # 1 of 24 (4.2%) passes ingest alone
    assert out["dataset_info"]["n_items"] == 24
    assert [(e["stage"], e["item_id"]) for e in out["media_report"]] == [("ingest", "item004")]
    return {**out, "ingest_params": ingest, "dataset": "syn24", "folder": folder}


def test_ingest_and_featurize_failures_share_one_budget(two_of_24_bad, tmp_path):
    from crossrec.encoders.featurize import BadMediaError

    data = two_of_24_bad
    items, info = data["items"], data["dataset_info"]
    with pytest.raises(BadMediaError) as err:
        nodes.encode_images(items, info, PARAMS, EmbeddingStore(tmp_path), *_media(data))
    message = str(err.value)
    assert "2 of 24 image files (8.3%) are unusable" in message
    assert "ingest.media.max_bad_share=5.0%" in message
    assert f"[ingest] item item004: {data['folder'] / 'images' / 'item004.png'}" in message
    assert f"[featurize] item item009: {data['folder'] / 'images' / 'item009.jpg'}" in message
    assert "truncated" in message  # PIL: image file is truncated

    lenient = {**data["ingest_params"], "media": {"max_bad_share": 0.1}}
    image = nodes.encode_images(
        items, info, PARAMS, EmbeddingStore(tmp_path), data["media_report"], lenient, "syn24"
    )
    features, report, merged = nodes.assemble_item_features(
        {}, image, {}, {}, data["precomputed_features"], info, PARAMS, data["media_report"]
    )
    assert [(e["stage"], e["item_id"], e["modality"]) for e in merged] == [
        ("ingest", "item004", "image"),
        ("featurize", "item009", "image"),
    ]
    assert all(set(e) == {"stage", "item_id", "modality", "path", "reason"} for e in merged)
    assert report["failures"] == merged
    assert report["modalities"]["image"]["media_budget"] == {
        "n_with_path": 24,
        "n_unusable": 2,
        "n_unusable_at_ingest": 1,
        "max_bad_share": 0.1,
    }
    assert report["modalities"]["image"]["n_failed"] == 1
    assert features["image"]["mask"].sum() == 22


def test_truncated_wav_is_reported_by_the_encoder_when_ingest_did_not_open_files(tmp_path):
    from crossrec.data.synthetic import make_synthetic_dataset, synthetic_ingest_params
    from crossrec.pipelines.ingest.nodes import ingest_in_memory

    folder = make_synthetic_dataset(
        tmp_path / "raw" / "syn", n_users=12, n_items=12, seed=1, with_images=False
    )
    wav = folder / "audio" / "item005.wav"
    wav.write_bytes(wav.read_bytes()[: 44 + 2 * 100])  # header says 4000 frames
    ingest = synthetic_ingest_params(folder, media={"check": False, "max_bad_share": 0.1})
    out = ingest_in_memory(ingest, "syn", seed=0)
    assert out["media_report"] == []
    result = nodes.encode_audio(
        out["items"],
        out["dataset_info"],
        PARAMS,
        EmbeddingStore(tmp_path / "c"),
        out["media_report"],
        ingest,
        "syn",
    )["audio"]
    assert [(f["stage"], f["item_id"]) for f in result.failures] == [("featurize", "item005")]
    assert "truncated: header says 4000 frames, file holds 100" in result.failures[0]["reason"]
    assert not result.mask[out["items"]["item_id"].tolist().index("item005")]


def test_saved_ingest_report_is_validated(ingested):
    with pytest.raises(ValueError, match=r"media_report, entry 1: expected keys"):
        nodes.assemble_item_features(
            {}, {}, {}, {}, {}, ingested["dataset_info"], PARAMS, [{"item_id": "x"}]
        )


def test_pipeline_wiring_and_catalog_entries():
    from kedro.config import OmegaConfigLoader
    from omegaconf.resolvers import oc

    pipe = create_pipeline()
    assert {
        "items",
        "dataset_info",
        "precomputed_features",
        "params:featurize_modalities",
        "text_embedding_cache",
        "image_embedding_cache",
        "audio_embedding_cache",
    } <= pipe.inputs()
    assert {"media_report", "params:ingest", "params:dataset"} <= pipe.inputs()
    assert pipe.outputs() == {
        "item_features",
        "featurize_report",
        "merged_media_report",
        "item_texts",
    }
    catalog = yaml.safe_load(
        (PROJECT_ROOT / "conf/base/catalog_featurize_modalities.yml").read_text()
    )
    assert catalog["merged_media_report"]["filepath"].startswith("data/08_reporting/")
    assert "merged_media_report" not in yaml.safe_load(
        (PROJECT_ROOT / "conf/base/catalog_ingest.yml").read_text()
    )
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env="base",
        custom_resolvers={"oc.env": oc.env},
    )
    params = loader["parameters"]["featurize_modalities"]
    from crossrec.encoders.config import parse_featurize_params

    config = parse_featurize_params(params)
    assert (
        config.text.model == "smollm2-135m-instruct" and config.image.model == "efficientnet-lite0"
    )


def test_item_texts_follow_item_idx_and_template(synthetic_ingested):
    """render_item_texts: one text per item in item_idx order, by the configured templates."""
    import yaml

    from crossrec.pipelines.featurize_modalities.nodes import render_item_texts

    root = Path(__file__).resolve().parents[3]
    params = yaml.safe_load((root / "conf/base/parameters_featurize_modalities.yml").read_text())[
        "featurize_modalities"
    ]
    items, info = synthetic_ingested["items"], synthetic_ingested["dataset_info"]
    texts = render_item_texts(items, info, params)
    assert len(texts) == info["n_items"]
    ordered = items.sort_values("item_idx")
    assert all(t in text for t, text in zip(ordered["title"], texts, strict=True))
    titled = render_item_texts(
        items, info, {**params, "text": {**params["text"], "templates": ["{title}!"]}}
    )
    assert titled == [f"{t}!" for t in ordered["title"]]
    with pytest.raises(ValueError, match="47 rows but dataset_info.n_items = 48"):
        render_item_texts(items.iloc[1:], info, params)


def test_attribute_columns_become_the_attributes_modality():
    """dataset_info.attribute_columns -> one `attributes` block with its fitted spec; on by
    `auto`, off by `false`, `true` without such columns is a clear error."""
    import pandas as pd

    items = pd.DataFrame(
        {
            "item_idx": [0, 1, 2],
            "item_id": ["1", "2", "3"],
            "title": ["A", "B", "C"],
            "genres": ["Comedy, Drama", "Comedy", ""],
            "year": ["1995", "1994", ""],
        }
    )
    info = {
        "n_items": 3,
        "text_columns": ["title", "genres", "year"],
        "attribute_columns": {
            "genres": {"kind": "categorical", "separator": ", "},
            "year": {"kind": "numeric"},
        },
    }
    params = {**PARAMS, "attributes": {"min_count": 1}}
    result = nodes.encode_attributes(items, info, params)
    features, report, _ = nodes.assemble_item_features({}, {}, {}, result, {}, info, params, [])
    block = features["attributes"]
    assert block["mask"].tolist() == [True, True, False]
    assert block["spec"]["genres"]["vocabulary"] == ["Comedy", "Drama"]
    assert block["source"] == "attributes:genres,year"
    assert report["modalities"]["attributes"]["n_usable"] == 2
    off = {**params, "attributes": {"enabled": False}}
    assert nodes.encode_attributes(items, info, off) == {}
    without = {**info, "attribute_columns": {}}
    assert nodes.encode_attributes(items, without, params) == {}
    with pytest.raises(ValueError, match="attributes.enabled is true"):
        nodes.encode_attributes(items, without, {**params, "attributes": {"enabled": True}})
