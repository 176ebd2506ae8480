"""finetune nodes and pipeline on the synthetic dataset, with fuse's real nodes in front."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from crossrec.config import ConfigError
from crossrec.data.synthetic import bag_of_words, mean_colour
from crossrec.models.bundle import load_recommender
from crossrec.models.config import FinetuneConfig
from crossrec.pipelines.finetune import create_pipeline
from crossrec.pipelines.finetune.nodes import build_training_data, train_model

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PARAMS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_finetune.yml").read_text())[
    "finetune"
]
CATALOG = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog_finetune.yml").read_text())


def _item_texts(ingested: dict) -> list[str]:
    """featurize_modalities' item_texts artifact."""
    from crossrec.pipelines.featurize_modalities.nodes import render_item_texts

    featurize = yaml.safe_load(
        (PROJECT_ROOT / "conf/base/parameters_featurize_modalities.yml").read_text()
    )["featurize_modalities"]
    return render_item_texts(ingested["items"], ingested["dataset_info"], featurize)


@pytest.fixture(scope="module")
def fused(synthetic_ingested) -> dict:
    """fuse's nodes over simple real features of the synthetic items (text words, poster colour)."""
    from crossrec.pipelines.fuse.nodes import (
        build_modality_graphs,
        build_user_item_graph,
        fuse_item_features,
    )

    fuse_params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_fuse.yml").read_text())[
        "fuse"
    ]
    fuse_params["knn"]["k"] = 5
    info = synthetic_ingested["dataset_info"]
    items = synthetic_ingested["items"].sort_values("item_idx")
    texts = (items["title"].fillna("") + " " + items["description"].fillna("")).tolist()
    image, image_mask = mean_colour(items["image_path"].tolist())
    features = {
        "text": {
            "vectors": bag_of_words(texts),
            "mask": np.ones(len(items), bool),
            "source": "bow",
        },
        "image": {"vectors": image, "mask": image_mask, "source": "colour"},
    }
    fused_features = fuse_item_features(features, info, fuse_params)
    return {
        "fused_item_features": fused_features,
        "modality_graphs": build_modality_graphs(
            fused_features, synthetic_ingested["interactions"], info, fuse_params
        ),
        "user_item_graph": build_user_item_graph(synthetic_ingested["interactions"], info),
        "item_texts": _item_texts(synthetic_ingested),
    }


def _tiny_params(tmp_path: Path) -> dict:
    params = copy.deepcopy(PARAMS)
    params["run_dir"] = str(tmp_path / "{dataset}" / "lightning")
    params["model"]["embedding_dim"] = 16
    params["data"]["batch_size"] = 64
    params["trainer"].update({"max_epochs": 3, "cpu_threads": 1, "log_every_n_steps": 1})
    return params


def _training_data(ingested, fused, params):
    return build_training_data(
        ingested["interactions"],
        ingested["items"],
        ingested["dataset_info"],
        fused["fused_item_features"],
        fused["modality_graphs"],
        fused["user_item_graph"],
        params,
        fused["item_texts"],
    )


def test_shipped_parameters_are_valid():
    config = FinetuneConfig.model_validate(PARAMS)
    assert config.trainer.monitor == "val/recall@20"
    assert config.trainer.precision == "auto" and config.trainer.accelerator == "auto"


def test_pipeline_wiring_matches_catalog():
    pipeline = create_pipeline()
    assert {"trained_model", "training_history"} <= pipeline.outputs()
    assert {
        "interactions",
        "fused_item_features",
        "modality_graphs",
        "user_item_graph",
        "item_texts",
        "params:finetune",
        "params:seed",
    } <= pipeline.inputs()
    assert CATALOG["trained_model"]["versioned"] is True
    assert CATALOG["trained_model"]["type"] == "crossrec.datasets.atomic.AtomicPickleDataset"
    assert CATALOG["training_history"]["type"] == "crossrec.datasets.atomic.AtomicCSVDataset"


def test_training_data_matches_interactions(synthetic_ingested, fused, tmp_path):
    params = _tiny_params(tmp_path)
    data = _training_data(synthetic_ingested, fused, params)
    inter = synthetic_ingested["interactions"]
    assert data.train.nnz == (inter["split"] == "train").sum()
    assert data.valid.nnz == (inter["split"] == "valid").sum()
    # recency follows the (user, timestamp) order of the interactions table
    user0 = inter[(inter["user_idx"] == 0) & (inter["split"] == "train")]
    row = data.train_recency[0]
    order = row.indices[np.argsort(row.data)]
    assert order.tolist() == user0["item_idx"].tolist()
    assert data.item_texts is None  # only the llm strategy needs them
    params["model"]["fusion"]["strategy"] = "llm"
    with_texts = _training_data(synthetic_ingested, fused, params)
    assert with_texts.item_texts == fused["item_texts"]


def test_bad_inputs_are_clear_errors(synthetic_ingested, fused, tmp_path):
    params = _tiny_params(tmp_path)
    bad = synthetic_ingested["interactions"].copy()
    bad.loc[bad.index[0], "split"] = "holdout"
    with pytest.raises(ValueError, match=r"column 'split' has values \['holdout'\]"):
        build_training_data(
            bad,
            synthetic_ingested["items"],
            synthetic_ingested["dataset_info"],
            fused["fused_item_features"],
            fused["modality_graphs"],
            fused["user_item_graph"],
            params,
        )
    params["model"]["embeding_dim"] = 8
    with pytest.raises(ConfigError, match=r"(?s)parameters_finetune.yml.*model.embeding_dim"):
        _training_data(synthetic_ingested, fused, params)


def test_train_model_node_outputs(synthetic_ingested, fused, tmp_path):
    params = _tiny_params(tmp_path)
    data = _training_data(synthetic_ingested, fused, params)
    bundle, history = train_model(data, params, seed=3, dataset="synthetic")
    assert isinstance(history, pd.DataFrame)
    assert {"epoch", "train_loss", "val_recall@20", "val_ndcg@20"} <= set(history.columns)
    # the default: the content model and its ID-only twin, each in its own run folder
    for part in ("twin", "content"):
        rows = history[history["part"] == part]
        assert rows["epoch"].tolist() == [0, 1, 2]
        assert rows["train_loss"].iloc[-1] < rows["train_loss"].iloc[0]
        run_dir = tmp_path / "synthetic" / "lightning" / part
        assert (run_dir / "checkpoints" / "last.ckpt").exists()
        assert any((run_dir / "logs" / "csv").rglob("metrics.csv"))
    assert bundle["config"]["trainer"]["seed"] == 3
    assert bundle["content_mix"]["twin"]["config"]["trainer"]["seed"] == 3
    model = load_recommender(bundle, data)
    assert model.mixed
    assert model.score_users(np.arange(3)).shape == (3, data.n_items)
