"""fuse nodes and pipeline on the synthetic dataset, with features from its real media."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml

from crossrec.config import ConfigError
from crossrec.pipelines.fuse import create_pipeline
from crossrec.pipelines.fuse.nodes import (
    build_modality_graphs,
    build_user_item_graph,
    fuse_item_features,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PARAMS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_fuse.yml").read_text())["fuse"]
MISSING_IMAGE = (5, 30)


def _item_texts(ingested: dict) -> list[str]:
    """featurize_modalities' item_texts artifact (the llm strategy's input)."""
    from crossrec.pipelines.featurize_modalities.nodes import render_item_texts

    featurize = yaml.safe_load(
        (PROJECT_ROOT / "conf/base/parameters_featurize_modalities.yml").read_text()
    )["featurize_modalities"]
    return render_item_texts(ingested["items"], ingested["dataset_info"], featurize)


def _image_vector(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((4, 4)), dtype=np.float32).ravel() / 255.0


def _audio_vector(path: str, n_bins: int = 32) -> np.ndarray:
    import soundfile

    wave, _ = soundfile.read(path, dtype="float32", always_2d=True)
    spectrum = np.abs(np.fft.rfft(wave.mean(axis=1)))
    return np.log1p(np.array([b.sum() for b in np.array_split(spectrum, n_bins)], dtype=np.float32))


def _text_vector(text: str, dim: int = 64) -> np.ndarray:
    vec = np.zeros(dim, dtype=np.float32)
    for word in re.findall(r"[a-z]+", text.lower()):
        vec[sum(map(ord, word)) % dim] += 1.0
    return vec


@pytest.fixture(scope="module")
def item_features(synthetic_ingested) -> dict:
    """What featurize would hand over: raw (unnormalised) vectors from the real PNG/WAV/text."""
    items = synthetic_ingested["items"].sort_values("item_idx")
    n = len(items)
    image = np.stack([_image_vector(p) for p in items["image_path"]]) * 7.0
    image_mask = np.ones(n, dtype=bool)
    image_mask[list(MISSING_IMAGE)] = False
    image[~image_mask] = 0.0
    audio = np.stack([_audio_vector(p) for p in items["audio_path"]])
    text = np.stack(
        [
            _text_vector(f"{t} {d}")
            for t, d in zip(items["title"], items["description"], strict=True)
        ]
    )
    return {
        "text": {"vectors": text, "mask": np.ones(n, dtype=bool), "source": "hashed words"},
        "image": {"vectors": image, "mask": image_mask, "source": "pixels"},
        "audio": {"vectors": audio, "mask": np.ones(n, dtype=bool), "source": "fft"},
    }


@pytest.fixture(scope="module")
def content_class(synthetic_ingested) -> np.ndarray:
    """Ground-truth class of each item, read off its description ("A <class> tale: ...")."""
    items = synthetic_ingested["items"].sort_values("item_idx")
    return items["description"].str.extract(r"^An? (\w+) tale")[0].to_numpy()


def _tiny_llama_helpers():
    """tests/models/conftest.py (tests are imported in importlib mode, not as a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "fusion_conftest", PROJECT_ROOT / "tests" / "models" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_parameters_parse_and_unknown_keys_fail():
    fused = fuse_item_features(
        {"x": {"vectors": np.ones((2, 2), np.float32), "mask": np.ones(2, bool)}},
        {"n_items": 2},
        PARAMS,
    )
    assert fused["__order__"] == ["x"]
    with pytest.raises(ConfigError, match=r"(?s)parameters_fuse.yml.*knn.kk"):
        fuse_item_features({}, {"n_items": 2}, {"knn": {"kk": 3}})


def test_fused_features_are_unit_rows_with_masks_applied(item_features, synthetic_ingested):
    info = synthetic_ingested["dataset_info"]
    fused = fuse_item_features(item_features, info, PARAMS)
    assert fused["__order__"] == ["text", "image", "audio"]
    for name in fused["__order__"]:
        vectors, mask = fused[name]["vectors"], fused[name]["mask"]
        assert vectors.dtype == np.float32 and vectors.shape[0] == info["n_items"]
        np.testing.assert_allclose(np.linalg.norm(vectors[mask], axis=1), 1.0, rtol=1e-5)
        assert not vectors[~mask].any()
        # direction kept: cosine with the input is 1
        raw = item_features[name]["vectors"][mask]
        cos = (raw * vectors[mask]).sum(1) / np.linalg.norm(raw, axis=1)
        np.testing.assert_allclose(cos, 1.0, rtol=1e-5)
    assert fused["image"]["source"] == "pixels"
    assert item_features["image"]["vectors"].max() > 1.0  # the input was not modified in place
    only = fuse_item_features(item_features, info, {**PARAMS, "modalities": ["audio", "image"]})
    assert only["__order__"] == ["audio", "image"] and "text" not in only


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (
            {"vectors": np.ones((47, 4), np.float32), "mask": np.ones(47, bool)},
            r"shape \(47, 4\).*\(48, d\)",
        ),
        ({"vectors": np.ones((48, 4), np.float32), "mask": np.ones(48)}, "mask must be bool"),
        (
            {"vectors": np.full((48, 4), np.nan, np.float32), "mask": np.ones(48, bool)},
            "non-finite",
        ),
        ({"vectors": np.ones((48, 4), np.float32)}, "'vectors' and 'mask'"),
    ],
)
def test_bad_item_features_name_the_modality(item_features, synthetic_ingested, broken, message):
    features = {**item_features, "broken": broken}
    with pytest.raises(ValueError) as err:
        fuse_item_features(features, synthetic_ingested["dataset_info"], PARAMS)
    assert re.search(message, str(err.value)) and "broken" in str(err.value)
    with pytest.raises(ValueError, match=r"modalities: \['video'\]"):
        fuse_item_features(
            item_features, synthetic_ingested["dataset_info"], {"modalities": ["video"]}
        )


def test_modality_graphs_follow_content_and_masks(item_features, synthetic_ingested, content_class):
    fused = fuse_item_features(item_features, synthetic_ingested["dataset_info"], PARAMS)
    params = {**PARAMS, "knn": {**PARAMS["knn"], "k": 4, "k_per_modality": {"audio": 2}}}
    info, interactions = synthetic_ingested["dataset_info"], synthetic_ingested["interactions"]
    graphs = build_modality_graphs(fused, interactions, info, params)
    assert list(graphs) == ["text", "image", "audio"]
    for name, graph in graphs.items():
        assert isinstance(graph, sp.csr_matrix) and graph.shape == (48, 48)
        assert abs(graph - graph.T).max() < 1e-6
        present = fused[name]["mask"]
        degree = np.diff(graph.indptr)
        assert degree[present].min() >= (2 if name == "audio" else 4)
        assert degree[~present].sum() == 0
    assert np.diff(graphs["image"].indptr)[list(MISSING_IMAGE)].sum() == 0
    # the real media carry the class: most image/audio neighbours share it
    for name in ("image", "audio"):
        coo = graphs[name].tocoo()
        same = np.mean(content_class[coo.row] == content_class[coo.col])
        assert same > 0.9, (name, same)


def test_user_item_graph_uses_train_interactions_only(synthetic_ingested):
    interactions = synthetic_ingested["interactions"]
    info = synthetic_ingested["dataset_info"]
    n_users, n_items = info["n_users"], info["n_items"]
    graph = build_user_item_graph(interactions, info)
    assert graph.shape == (n_users + n_items, n_users + n_items)
    block = graph[:n_users, n_users:].tocoo()
    edges = set(zip(block.row.tolist(), block.col.tolist(), strict=True))
    train = interactions[interactions["split"] == "train"]
    held_out = interactions[interactions["split"] != "train"]
    assert edges == set(zip(train["user_idx"], train["item_idx"], strict=True))
    assert not edges & set(zip(held_out["user_idx"], held_out["item_idx"], strict=True))
    # changing a held-out row leaves the graph unchanged; dropping a train row changes it
    moved = interactions.copy()
    moved.loc[held_out.index[:5], "item_idx"] = (
        moved.loc[held_out.index[:5], "item_idx"] + 1
    ) % n_items
    assert (build_user_item_graph(moved, info) != graph).nnz == 0
    assert (build_user_item_graph(interactions.drop(train.index[:1]), info) != graph).nnz > 0
    with pytest.raises(ValueError, match="missing column"):
        build_user_item_graph(interactions.drop(columns="split"), info)


def test_kedro_pipeline_runs_and_feeds_the_llm_encoder(item_features, synthetic_ingested, tmp_path):
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    class Kept(MemoryDataset):
        def _release(self) -> None:
            pass

    outputs = ("fused_item_features", "modality_graphs", "user_item_graph", "modality_graph_report")
    catalog = DataCatalog(datasets={n: Kept() for n in outputs})
    catalog["item_features"] = item_features
    for name in ("interactions", "items", "dataset_info"):
        catalog[name] = synthetic_ingested[name]
    catalog["params:fuse"] = PARAMS
    SequentialRunner().run(create_pipeline(), catalog)
    fused = catalog.load("fused_item_features")
    texts = _item_texts(synthetic_ingested)
    assert set(catalog.load("modality_graphs")) == {"text", "image", "audio"}
    assert catalog.load("user_item_graph").shape == (108, 108)
    report = catalog.load("modality_graph_report")
    assert set(report) == {"text", "image", "audio"}
    for entry in report.values():
        assert entry["edges"] > 0 and entry["lift"] is not None and entry["lift"] >= 0

    import torch

    from crossrec.models.item_towers.llm_encoder import LLMFusionConfig, build_llm_item_encoder

    model_dir = _tiny_llama_helpers().make_tiny_llama(tmp_path / "llm")
    encoder = build_llm_item_encoder(
        texts, fused, LLMFusionConfig(model=str(model_dir), mode="lora", lora_r=2)
    )
    assert encoder.modalities == ["image", "audio"]
    out = encoder(torch.arange(10))
    assert out.shape == (10, encoder.out_dim) and torch.isfinite(out).all()
    assert pd.Series(texts).str.len().min() > 0


def test_graph_device_cuda_without_gpu_is_a_clear_error(item_features, synthetic_ingested):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    fused = fuse_item_features(item_features, synthetic_ingested["dataset_info"], PARAMS)
    with pytest.raises(ValueError, match="knn.device.*cuda.*not available"):
        cuda = {**PARAMS, "knn": {**PARAMS["knn"], "device": "cuda"}}
        info = synthetic_ingested["dataset_info"]
        build_modality_graphs(fused, synthetic_ingested["interactions"], info, cuda)


def test_fuse_outputs_train_an_llm_lora_recommender_end_to_end(
    item_features, synthetic_ingested, tmp_path
):
    """synthetic media -> fuse nodes -> finetune's train_recommender with the real LLM encoder
    (tiny LLaMA, LoRA) -> bundle without frozen LLM weights -> load_recommender -> scores."""
    import torch

    from crossrec.data.matrices import interactions_to_csr
    from crossrec.models.bundle import load_recommender
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.inputs import TrainingData
    from crossrec.models.training import train_recommender

    info, inter = synthetic_ingested["dataset_info"], synthetic_ingested["interactions"]
    fused = fuse_item_features(item_features, info, PARAMS)

    def matrix(split):
        rows = inter[inter["split"] == split]
        return interactions_to_csr(
            rows["user_idx"].to_numpy(),
            rows["item_idx"].to_numpy(),
            info["n_users"],
            info["n_items"],
        )

    data = TrainingData(
        n_users=info["n_users"], n_items=info["n_items"], train=matrix("train"),
        valid=matrix("valid"), item_features=fused,
        modality_graphs=build_modality_graphs(fused, inter, info, PARAMS),
        user_item_graph=build_user_item_graph(inter, info),
        item_texts=_item_texts(synthetic_ingested),
    )  # fmt: skip
    model_dir = _tiny_llama_helpers().make_tiny_llama(tmp_path / "llm")
    llm = {"model": str(model_dir), "mode": "lora", "lora_r": 2, "max_text_tokens": 16}
    config = FinetuneConfig.model_validate(
        {
            "model": {"embedding_dim": 16, "fusion": {"strategy": "llm", "llm": llm}},
            "data": {"batch_size": 256},
            "optim": {"lr": 0.01, "llm_lr": 0.001},
            "trainer": {"max_epochs": 1, "seed": 0, "val_ks": [10, 20]},
        }
    )
    result = train_recommender(data, config, run_dir=tmp_path / "run", enable_progress_bar=False)
    state = result.bundle["state_dict"]
    assert any("lora_B" in k for k in state) and any("projectors.image" in k for k in state)
    assert not any(k.endswith("base_layer.weight") or "embed_tokens" in k for k in state)
    model = load_recommender(result.bundle, data)
    scores = model.score_users(torch.arange(4))
    assert scores.shape == (4, info["n_items"]) and torch.isfinite(scores).all()


def test_an_upstream_order_is_kept(item_features, synthetic_ingested):
    ordered = {**item_features, "__order__": ["audio", "text", "image"]}
    fused = fuse_item_features(ordered, synthetic_ingested["dataset_info"], PARAMS)
    assert fused["__order__"] == ["audio", "text", "image"]


def test_a_fitted_spec_travels_with_the_fused_modality(item_features, synthetic_ingested):
    """The attributes' vocabularies reach serving through fuse (new items are encoded with it)."""
    spec = {"kind": {"kind": "categorical", "separator": "|", "vocabulary": ["a", "b"]}}
    with_spec = {**item_features, "text": {**item_features["text"], "spec": spec}}
    fused = fuse_item_features(with_spec, synthetic_ingested["dataset_info"], PARAMS)
    assert fused["text"]["spec"] == spec
    assert "spec" not in fused["image"]


def test_modality_lift_reads_train_interactions_only(item_features, synthetic_ingested):
    """Like the user-item graph: moving held-out rows leaves the lift unchanged, dropping
    train rows changes it."""
    from crossrec.graphs.fuse import modality_graph_lift

    interactions = synthetic_ingested["interactions"]
    info = synthetic_ingested["dataset_info"]
    fused = fuse_item_features(item_features, info, PARAMS)
    graphs = build_modality_graphs(fused, interactions, info, PARAMS)
    report = modality_graph_lift(graphs, interactions, info)
    held_out = interactions[interactions["split"] != "train"].index[:20]
    moved = interactions.copy()
    moved.loc[held_out, "item_idx"] = (moved.loc[held_out, "item_idx"] + 1) % info["n_items"]
    assert modality_graph_lift(graphs, moved, info) == report
    train = interactions[interactions["split"] == "train"].index[:40]
    assert modality_graph_lift(graphs, interactions.drop(train), info) != report


def test_equally_similar_neighbours_follow_train_interactions_only(synthetic_ingested):
    """Items with one repeated vector are all tied: each picks the tied items with the most
    TRAIN interactions, and held-out rows moved to other items change nothing."""
    interactions = synthetic_ingested["interactions"]
    info = synthetic_ingested["dataset_info"]
    n_items = info["n_items"]
    tied = {"vectors": np.ones((n_items, 4), dtype=np.float32), "mask": np.ones(n_items, bool)}
    fused = fuse_item_features({"attributes": tied}, info, PARAMS)
    params = {**PARAMS, "knn": {**PARAMS["knn"], "k": 3}}
    graph = build_modality_graphs(fused, interactions, info, params)["attributes"]
    train = interactions[interactions["split"] == "train"]
    degree = np.bincount(train["item_idx"], minlength=n_items)
    top = np.lexsort((np.arange(n_items), -degree))[:4]
    loner = next(i for i in np.argsort(degree) if i not in top)
    picks = set(np.flatnonzero(graph[loner].toarray()))
    assert picks == set(top[:3].tolist())  # picked by nobody else: exactly its own picks
    moved = interactions.copy()
    held_out = moved["split"] != "train"
    moved.loc[held_out, "item_idx"] = int(np.argmin(degree))
    again = build_modality_graphs(fused, moved, info, params)["attributes"]
    assert (again != graph).nnz == 0
    by_index = {**params, "knn": {**params["knn"], "ties": "index"}}
    indexed = build_modality_graphs(fused, interactions, info, by_index)["attributes"]
    assert set(np.flatnonzero(indexed[n_items - 1].toarray())) == {0, 1, 2}
