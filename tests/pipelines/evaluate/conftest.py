"""Upstream artifacts for the evaluate tests, built small and fast from the synthetic dataset.

Content vectors are derived from the synthetic items' text (bag of words) and a random
'image' matrix, so the test does not wait for the pretrained encoders of featurize.
"""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.data.synthetic import bag_of_words

TINY_TRAINER = {
    "max_epochs": 2,
    "patience": 1,
    "accelerator": "cpu",
    "devices": 1,
    "log_every_n_steps": 1,
}


@pytest.fixture(scope="session")
def evaluate_inputs(synthetic_ingested) -> dict:
    from crossrec.evaluation.protocol import build_split
    from crossrec.graphs.knn import knn_graph, normalized_user_item_graph

    info = synthetic_ingested["dataset_info"]
    items = synthetic_ingested["items"].sort_values("item_idx")
    n_users, n_items = info["n_users"], info["n_items"]
    texts = (items["title"].fillna("") + " " + items["description"].fillna("")).tolist()
    rng = np.random.default_rng(0)
    raw = {
        "text": bag_of_words(texts, dim=32),
        "image": rng.normal(size=(n_items, 8)).astype(np.float32),
    }
    features: dict = {}
    for name, vectors in raw.items():
        mask = np.ones(n_items, dtype=bool)
        mask[::7] = name == "text"  # some items miss their image
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        features[name] = {"vectors": vectors * mask[:, None], "mask": mask, "source": "test"}
    features["__order__"] = ["text", "image"]
    graphs = {m: knn_graph(features[m]["vectors"], features[m]["mask"], 5) for m in raw}
    inter = synthetic_ingested["interactions"]
    train = inter[inter["split"] == "train"]
    ui_graph = normalized_user_item_graph(
        train["user_idx"].to_numpy(), train["item_idx"].to_numpy(), n_users, n_items
    )
    split = build_split(inter, synthetic_ingested["items"], n_users, n_items)
    return {
        "interactions": inter,
        "items": synthetic_ingested["items"],
        "dataset_info": info,
        "fused_item_features": features,
        "modality_graphs": graphs,
        "user_item_graph": ui_graph,
        "split": split,
    }


@pytest.fixture(scope="session")
def tiny_trained_model(evaluate_inputs) -> dict:
    """A two-epoch trained_model bundle (seed 7) of the default multimodal config."""
    import tempfile
    from pathlib import Path

    from crossrec.models.config import FinetuneConfig
    from crossrec.models.inputs import TrainingData
    from crossrec.models.training import train_recommender

    split = evaluate_inputs["split"]
    config = FinetuneConfig.model_validate(
        {
            "model": {"embedding_dim": 16},
            "data": {"batch_size": 128},
            "trainer": TINY_TRAINER | {"seed": 7},
        }
    )
    data = TrainingData(
        n_users=split.n_users,
        n_items=split.n_items,
        train=split.train,
        valid=split.valid,
        item_features=evaluate_inputs["fused_item_features"],
        modality_graphs=evaluate_inputs["modality_graphs"],
        user_item_graph=evaluate_inputs["user_item_graph"],
    )
    with tempfile.TemporaryDirectory() as run_dir:
        result = train_recommender(data, config, run_dir=Path(run_dir), enable_progress_bar=False)
    return result.bundle
