"""The refresh pipeline end to end on the synthetic dataset (weight-free audio features):
increments applied, only new items encoded, a new refreshed_model version that reloads, and
bad or interrupted refreshes leaving the previous version whole."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.runner import SequentialRunner

from crossrec.data.errors import DataValidationError
from crossrec.data.ingest import ingest_in_memory
from crossrec.data.synthetic import synthetic_ingest_params
from crossrec.datasets.atomic import AtomicPickleDataset
from crossrec.datasets.latest import LatestOrNoneDataset
from crossrec.encoders import modalities as enc
from crossrec.encoders.cache import EmbeddingStore
from crossrec.encoders.config import FeaturizeConfig
from crossrec.graphs.config import FuseConfig
from crossrec.models.config import FinetuneConfig
from crossrec.models.training import train_recommender
from crossrec.pipelines.refresh import create_pipeline
from crossrec.refresh.config import RefreshConfig
from crossrec.refresh.state import (
    is_current,
    load_state,
    serving_artifacts,
    start_state,
    training_data,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
#: weight-free features, so the test encodes new items for real without model downloads
FEATURIZE = {
    "device": "cpu",
    "text": {"enabled": False},
    "image": {"enabled": False},
    "audio": {"kind": "mel", "batch_size": 8, "num_workers": 0},
}
LATE = 1_700_000_000


@pytest.fixture(scope="module")
def setup(synthetic_dataset_dir, tmp_path_factory, tiny_finetune_params) -> dict:
    """A private copy of the synthetic dataset, ingested, featurized and trained."""
    root = tmp_path_factory.mktemp("refresh")
    folder = root / "raw" / "synthetic"
    shutil.copytree(synthetic_dataset_dir, folder)
    ingest = synthetic_ingest_params(folder)
    ingested = ingest_in_memory(ingest, "synthetic", seed=0)
    config = FeaturizeConfig.model_validate(FEATURIZE)
    info = ingested["dataset_info"]
    audio = enc.encode_media(
        "audio", ingested["items"], info, config, EmbeddingStore(root / "cache" / "audio"), [], 0.05
    )
    features, _, _ = enc.assemble_item_features(list(audio.values()), {}, info, config, [])
    data = training_data(
        _tables(ingested),
        features,
        FuseConfig(),
        FinetuneConfig.model_validate(tiny_finetune_params),
    )
    bundle = train_recommender(
        data,
        FinetuneConfig.model_validate(tiny_finetune_params),
        run_dir=root / "base",
        enable_progress_bar=False,
    ).bundle
    return {
        "root": root,
        "folder": folder,
        "ingest": ingest,
        "ingested": ingested,
        "features": features,
        "bundle": bundle,
    }


def _tables(ingested):
    from crossrec.data.increments import DatasetTables

    return DatasetTables(
        ingested["interactions"], ingested["items"], ingested["users"], ingested["dataset_info"]
    )


def catalog(setup: dict) -> DataCatalog:
    root, ingested = setup["root"], setup["ingested"]
    state_file = str(root / "models" / "refreshed_model.pkl")
    refresh = {"epochs": 2, "run_dir": str(root / "runs" / "{dataset}"), "ks": [10]}
    datasets = {
        **{
            name: MemoryDataset(ingested[name])
            for name in ("interactions", "items", "users", "dataset_info")
        },
        "item_features": MemoryDataset(setup["features"]),
        "item_texts": MemoryDataset([]),
        "trained_model": MemoryDataset(setup["bundle"]),
        "refreshed_model": AtomicPickleDataset(filepath=state_file, version=Version(None, None)),
        "refresh_previous": LatestOrNoneDataset(filepath=state_file, version=Version(None, None)),
        "refresh_report": MemoryDataset(),
        "refresh_history": MemoryDataset(),
        "params:refresh": MemoryDataset(refresh),
        "params:ingest": MemoryDataset(setup["ingest"]),
        "params:dataset": MemoryDataset("synthetic"),
        "params:seed": MemoryDataset(0),
        "params:featurize_modalities": MemoryDataset(FEATURIZE),
        "params:fuse": MemoryDataset({}),
    }
    for modality in ("text", "image", "audio"):
        store = EmbeddingStore(root / "cache" / modality)
        datasets[f"{modality}_embedding_cache"] = MemoryDataset(store, copy_mode="assign")
    return DataCatalog(datasets=datasets)


def versions(setup: dict) -> list[str]:
    folder = setup["root"] / "models" / "refreshed_model.pkl"
    return (
        sorted(p.name for p in folder.iterdir() if (p / "refreshed_model.pkl").is_file())
        if folder.is_dir()
        else []
    )


def latest(setup: dict) -> dict:
    state_file = str(setup["root"] / "models" / "refreshed_model.pkl")
    return LatestOrNoneDataset(filepath=state_file, version=Version(None, None)).load()


def write_increment(setup: dict, name: str, rows: list[dict], new_item: str | None = None):
    folder = setup["folder"] / "increments" / name
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "interactions.csv", index=False)
    if new_item:
        shutil.copy(setup["folder"] / "audio" / "item005.wav", folder / "new.wav")
        pd.DataFrame([{"item_id": new_item, "title": "A new one", "audio_path": "new.wav"}]).to_csv(
            folder / "items.csv", index=False
        )
    return folder


def score_all(state: dict) -> torch.Tensor:
    model, data = load_state(state, FuseConfig())
    with torch.no_grad():
        return model.score_users(torch.arange(data.n_users))


@pytest.fixture(scope="module")
def first_refresh(setup) -> dict:
    assert (
        LatestOrNoneDataset(
            filepath=str(setup["root"] / "models" / "refreshed_model.pkl"),
            version=Version(None, None),
        ).load()
        is None
    )
    write_increment(
        setup,
        "0001",
        [
            {"user_id": "user900", "item_id": "item001", "timestamp": LATE},
            {"user_id": "user900", "item_id": "item900", "timestamp": LATE + 1},
            {"user_id": "user003", "item_id": "item900", "timestamp": LATE + 2},
        ],
        new_item="item900",
    )
    SequentialRunner().run(create_pipeline(), catalog(setup))
    return latest(setup)


def test_refresh_writes_a_version_that_reloads_with_the_grown_data(setup, first_refresh):
    state, info = first_refresh, setup["ingested"]["dataset_info"]
    assert len(versions(setup)) == 1
    assert state["dataset_info"]["increments"] == ["0001"]
    assert (state["bundle"]["n_users"], state["bundle"]["n_items"]) == (
        info["n_users"] + 1,
        info["n_items"] + 1,
    )
    # only the new item went through the encoder; known rows are the ingested ones
    audio = state["item_features"]["audio"]
    old = setup["features"]["audio"]
    assert np.array_equal(audio["vectors"][:-1], old["vectors"]) and audio["mask"][-1]
    report = state["report"]
    assert report["increments"][0]["new_users"] == 1 and report["epochs"] == 2
    assert (
        set(report["before"]) == {"new_batch", "valid"} and "recall@10" in report["after"]["valid"]
    )
    model, data = load_state(state, FuseConfig())
    scores = score_all(state)
    assert scores.shape == (info["n_users"] + 1, info["n_items"] + 1)
    # a mix with tail slots ranks with the users' train items excluded (-inf), nothing else
    seen = torch.from_numpy(data.train.toarray() > 0)
    assert torch.isfinite(scores[~seen]).all()
    assert getattr(model, "mixed", False) or torch.isfinite(scores).all()


def test_bad_increment_fails_clearly_and_keeps_the_version(setup, first_refresh):
    before = versions(setup)
    folder = write_increment(
        setup, "0002", [{"user_id": "user900", "item_id": "item001", "timestamp": LATE + 5}]
    )  # known pair
    try:
        with pytest.raises(
            DataValidationError,
            match=r"0002/interactions.csv, row 1: 1 "
            r"interaction\(s\) repeat a known \(user, item\) pair",
        ):
            SequentialRunner().run(create_pipeline(), catalog(setup))
    finally:
        shutil.rmtree(folder)
    assert versions(setup) == before
    assert latest(setup)["dataset_info"]["increments"] == ["0001"]


def test_interrupted_refresh_keeps_the_previous_version_usable(setup, first_refresh, monkeypatch):
    before = versions(setup)
    expected = score_all(latest(setup))
    write_increment(
        setup, "0003", [{"user_id": "user901", "item_id": "item002", "timestamp": LATE + 10}]
    )
    import crossrec.refresh.steps as steps

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("training interrupted")

    with monkeypatch.context() as patch:
        patch.setattr(steps, "fine_tune", interrupted)
        with pytest.raises(KeyboardInterrupt):
            SequentialRunner().run(create_pipeline(), catalog(setup))
    assert versions(setup) == before
    # killed while the new version was being written: the rename never happens
    real_replace = os.replace

    def killed(src, dst):
        if str(dst).endswith("refreshed_model.pkl"):
            raise KeyboardInterrupt("killed mid-save")
        return real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", killed)
        with pytest.raises(KeyboardInterrupt):
            SequentialRunner().run(create_pipeline(), catalog(setup))
    assert versions(setup) == before
    state = latest(setup)
    assert state["dataset_info"]["increments"] == ["0001"]
    assert torch.allclose(score_all(state), expected)
    # and the next run picks the increment up from that version
    SequentialRunner().run(create_pipeline(), catalog(setup))
    assert len(versions(setup)) == len(before) + 1
    assert latest(setup)["dataset_info"]["increments"] == ["0001", "0003"]


def _retrained(bundle: dict) -> dict:
    """Another trained model of the same data (finetune re-run): other weights."""
    state = {k: v.clone() for k, v in bundle["state_dict"].items()}
    name = next(iter(state))
    state[name] = state[name] + 1.0
    return {**bundle, "state_dict": state}


def test_serving_takes_the_refresh_of_the_current_chain_only(setup, first_refresh, caplog):
    ingested = setup["ingested"]
    trained = {**{k: ingested[k] for k in ("interactions", "items", "users", "dataset_info")}}
    trained.update(trained_model=setup["bundle"], item_texts=None, metrics={"model": {}})
    served, is_refresh = serving_artifacts(trained, first_refresh, FuseConfig())
    assert is_refresh and served["trained_model"] is first_refresh["bundle"]
    n_items = ingested["dataset_info"]["n_items"] + 1
    assert len(served["items"]) == n_items and served["metrics"] is None
    assert served["user_item_graph"].shape[0] == served["user_item_graph"].shape[1]
    fused = served["fused_item_features"]
    assert all(len(fused[m]["vectors"]) == n_items for m in fused if not m.startswith("__"))
    assert serving_artifacts(trained, None, FuseConfig()) == (trained, False)
    # finetune re-run since the refresh: the trained model is newer than the chain
    newer = {**trained, "trained_model": _retrained(setup["bundle"])}
    assert serving_artifacts(newer, first_refresh, FuseConfig()) == (newer, False)
    assert "it started from trained model" in caplog.text
    assert not is_current(first_refresh, ingested["dataset_info"], newer["trained_model"])
    # ... and the next refresh starts a new chain from it, not from the stale refresh
    ingest = {**{k: trained[k] for k in ("interactions", "items", "users", "dataset_info")}}
    ingest.update(item_features=setup["features"], item_texts=[])
    start = start_state(first_refresh, ingest, newer["trained_model"])
    assert start["bundle"] is newer["trained_model"] and start["items"] is ingested["items"]
    assert start_state(first_refresh, ingest, setup["bundle"]) is first_refresh


def test_no_new_increment_says_where_it_looked(setup, first_refresh):
    with pytest.raises(FileNotFoundError, match=r"refresh: no new increment in .*increments"):
        SequentialRunner().run(create_pipeline(), catalog(setup))


def test_catalog_and_parameters_match_the_pipeline():
    entries = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog_refresh.yml").read_text())
    assert entries["refreshed_model"]["versioned"] is True
    assert entries["refresh_previous"]["filepath"] == entries["refreshed_model"]["filepath"]
    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_refresh.yml").read_text())
    assert RefreshConfig.model_validate(params["refresh"]) == RefreshConfig()
    outputs = create_pipeline().outputs()
    assert {"refreshed_model", "refresh_report", "refresh_history"} <= outputs


def test_apply_increments_node_checks_new_items_vectors_against_the_model(setup, tmp_path):
    """A model with a precomputed feature: the node reads new items' vectors for it."""
    from crossrec.pipelines.refresh import nodes

    folder = tmp_path / "raw" / "synthetic"
    shutil.copytree(setup["folder"], folder, ignore=shutil.ignore_patterns("increments"))
    ingested = setup["ingested"]
    n = ingested["dataset_info"]["n_items"]
    features = {
        **setup["features"],
        "audio_vggish": {
            "vectors": np.ones((n, 4), np.float32),
            "mask": np.ones(n, bool),
            "source": "precomputed:audio_vggish",
        },
    }
    ingest = {k: ingested[k] for k in ("interactions", "items", "users", "dataset_info")}
    start = start_state(
        None, {**ingest, "item_features": features, "item_texts": []}, setup["bundle"]
    )
    inc = write_increment(
        {"folder": folder},
        "0001",
        [{"user_id": "user001", "item_id": "item900", "timestamp": LATE}],
    )
    pd.DataFrame([{"item_id": "item900", "title": "shipped vectors only"}]).to_csv(
        inc / "items.csv", index=False
    )
    (inc / "features").mkdir()

    def run():
        params = synthetic_ingest_params(folder)
        return nodes.apply_increments(start, {}, params, "synthetic", 0)

    np.save(inc / "features" / "audio_vggish.npy", np.ones((1, 5), np.float32))
    with pytest.raises(DataValidationError, match=r"audio_vggish.npy.*5-d vectors"):
        run()
    np.save(inc / "features" / "audio_vggish.npy", np.full((1, 4), 2.0, np.float32))
    tables, _ = run()
    assert np.array_equal(tables.item_vectors["audio_vggish"]["item900"], [2.0] * 4)
