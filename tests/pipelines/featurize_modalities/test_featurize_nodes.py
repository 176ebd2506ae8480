"""featurize_modalities nodes on the synthetic fixture (text + image + raw audio), the catalog
entries, and the pipeline wiring."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest

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


def _run_all(ingested: dict, caches: Path, params: dict = PARAMS):
    items, info = ingested["items"], ingested["dataset_info"]
    text = nodes.encode_text(items, info, params, EmbeddingStore(caches / "text"))
    image = nodes.encode_images(items, info, params, EmbeddingStore(caches / "image"))
    audio = nodes.encode_audio(items, info, params, EmbeddingStore(caches / "audio"))
    return nodes.assemble_item_features(
        text, image, audio, ingested["precomputed_features"], info, params
    )


@pytest.fixture(scope="module")
def cold_run(synthetic_ingested, tmp_path_factory):
    """One cold pass over the synthetic dataset; its caches are reused by the tests below."""
    caches = tmp_path_factory.mktemp("featurize_caches")
    features, report = _run_all(synthetic_ingested, caches)
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


def test_warm_rerun_loads_everything_from_the_cache(synthetic_ingested, cold_run):
    caches, features, _ = cold_run
    warm, warm_report = _run_all(synthetic_ingested, caches)
    for name in features:
        np.testing.assert_array_equal(warm[name]["vectors"], features[name]["vectors"])
        np.testing.assert_array_equal(warm[name]["mask"], features[name]["mask"])
        assert warm_report["modalities"][name]["n_computed"] == 0


def test_changed_model_recomputes_only_that_modality(synthetic_ingested, cold_run):
    caches = cold_run[0]
    params = copy.deepcopy(PARAMS)
    params["text"]["pooling"] = "last"
    _, report = _run_all(synthetic_ingested, caches, params)
    n = synthetic_ingested["dataset_info"]["n_items"]
    assert report["modalities"]["text"]["n_computed"] == n
    assert report["modalities"]["image"]["n_computed"] == 0
    assert report["modalities"]["audio"]["n_computed"] == 0


def test_precomputed_pass_through_and_disabled_modalities(synthetic_ingested, tmp_path):
    info = dict(synthetic_ingested["dataset_info"], precomputed=["audio_vggish"])
    n = info["n_items"]
    rng = np.random.default_rng(0)
    shipped = {"audio_vggish": rng.normal(size=(n, 8))}
    params = {**PARAMS, "image": {"enabled": False}, "audio": {"enabled": False}}
    items = synthetic_ingested["items"]
    text = nodes.encode_text(items, info, params, EmbeddingStore(tmp_path))
    assert nodes.encode_images(items, info, params, EmbeddingStore(tmp_path)) == {}
    features, report = nodes.assemble_item_features(text, {}, {}, shipped, info, params)
    assert set(features) == {"text", "audio_vggish"}
    assert features["audio_vggish"]["vectors"].dtype == np.float32
    assert features["audio_vggish"]["mask"].all()
    excluded = {**params, "precomputed": {"exclude": ["audio_*"]}}
    features, _ = nodes.assemble_item_features(text, {}, {}, shipped, info, excluded)
    assert set(features) == {"text"}


def test_bad_configuration_and_inputs_fail_clearly(synthetic_ingested, tmp_path):
    from crossrec.config import ConfigError

    items, info = synthetic_ingested["items"], synthetic_ingested["dataset_info"]
    with pytest.raises(ConfigError, match="parameters_featurize_modalities.yml"):
        nodes.encode_text(items, info, {"text": {"modle": "x"}}, EmbeddingStore(tmp_path))
    no_images = dict(info, has_images=False)
    with pytest.raises(ValueError, match="image.enabled is true"):
        nodes.encode_images(
            items, no_images, {"image": {"enabled": True}}, EmbeddingStore(tmp_path)
        )
    with pytest.raises(ValueError, match="missing column"):
        nodes.encode_text(items.drop(columns=["item_id"]), info, PARAMS, EmbeddingStore(tmp_path))


def test_corrupt_media_share_stops_the_run(synthetic_ingested, tmp_path):
    items = synthetic_ingested["items"].copy()
    info = synthetic_ingested["dataset_info"]
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with_path = items.index[items["image_path"].notna()]
    items.loc[with_path[: len(with_path) // 2], "image_path"] = str(bad)
    from crossrec.encoders.featurize import BadMediaError

    with pytest.raises(BadMediaError, match="max_bad_media_share"):
        nodes.encode_images(items, info, PARAMS, EmbeddingStore(tmp_path / "c"))
    lenient = {**PARAMS, "max_bad_media_share": 0.9}
    result = nodes.encode_images(items, info, lenient, EmbeddingStore(tmp_path / "c"))["image"]
    assert len(result.failures) == len(with_path) // 2
    assert all(f["path"] == str(bad) and f["modality"] == "image" for f in result.failures)


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
    assert pipe.outputs() == {"item_features", "featurize_report", "item_texts"}
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
