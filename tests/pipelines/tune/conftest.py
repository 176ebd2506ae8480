"""Training inputs for the tune tests, built from the synthetic dataset without any encoder.

Text vectors are hashed bags of words of the items' title + description, image vectors the mean
colour of their PNG: cheap but real content (the synthetic classes show in both), turned into
graphs with fuse's own functions so the tuned model sees artifacts shaped like the catalog's.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from crossrec.data.synthetic import bag_of_words, mean_colour

#: A small, fast finetune block (2-3 epochs on 60 users x 48 items, CPU).
TINY_FINETUNE: dict[str, Any] = {
    "model": {
        "embedding_dim": 16,
        "fusion": {"strategy": "concat"},
        "user_tower": {"kind": "mean", "history_length": 20},
        "propagation": {"kind": "lightgcn", "layers": 1, "item_graph_layers": 1},
    },
    "data": {"batch_size": 128, "sampler": "uniform", "num_negatives": 1},
    "optim": {"lr": 5e-3},
    "loss": {"kind": "bpr"},
    "trainer": {
        "max_epochs": 3,
        "accelerator": "cpu",
        "devices": 1,
        "precision": "32-true",
        "patience": 3,
        "val_ks": [20],
        "log_every_n_steps": 1,
    },
}


@pytest.fixture
def tiny_finetune() -> dict[str, Any]:
    """A fresh copy of :data:`TINY_FINETUNE` (tests may edit it)."""
    return copy.deepcopy(TINY_FINETUNE)


@pytest.fixture(scope="session")
def synthetic_fused(synthetic_ingested: dict) -> dict[str, Any]:
    """Catalog-shaped fuse outputs of the synthetic dataset: item_texts, fused_item_features,
    modality_graphs, user_item_graph."""
    from crossrec.graphs.knn import knn_graph, normalized_user_item_graph

    info = synthetic_ingested["dataset_info"]
    n_users, n_items = info["n_users"], info["n_items"]
    items = synthetic_ingested["items"].sort_values("item_idx")
    texts = (items["title"].fillna("") + " " + items["description"].fillna("")).tolist()
    text = bag_of_words(texts, normalise=True)
    image, image_mask = mean_colour(items["image_path"].tolist(), normalise=True)
    features = {
        "text": {"vectors": text, "mask": np.ones(n_items, bool), "source": "hashed-bow"},
        "image": {"vectors": image, "mask": image_mask, "source": "mean-colour"},
        "__order__": ["text", "image"],
    }
    interactions = synthetic_ingested["interactions"]
    train_rows = interactions[interactions["split"] == "train"]
    return {
        "item_texts": texts,
        "fused_item_features": features,
        "modality_graphs": {
            name: knn_graph(features[name]["vectors"], features[name]["mask"], 5)
            for name in ("text", "image")
        },
        "user_item_graph": normalized_user_item_graph(
            train_rows["user_idx"].to_numpy(), train_rows["item_idx"].to_numpy(), n_users, n_items
        ),
    }
