"""A random catalogue of any size with the interface of a ServingModel (top-K, similar items,
model card): what ``crossrec serve --synthetic-items N`` and benchmarks/serve.py measure
large catalogues with. No trained model, so no explanations or new items."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.serving.catalogue import Catalogue
from crossrec.serving.config import RecommendConfig, parse_recommend_config


@dataclass
class SyntheticServing:
    catalogue: Catalogue
    config: RecommendConfig
    version: str
    model: None = None
    cosine: bool = False
    artifacts: SimpleNamespace = field(default_factory=SimpleNamespace)
    fingerprint: str = "synthetic"

    def test_metrics(self) -> dict:
        return {}


def synthetic_serving(
    n_items: int,
    n_users: int = 1000,
    dim: int = 64,
    seen_per_user: int = 20,
    seed: int = 0,
    config: dict | RecommendConfig | None = None,
    index_kind: str | None = None,
) -> SyntheticServing:
    """Clustered random vectors (so ANN recall is measured on structure, not pure noise)."""
    config = parse_recommend_config(config)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(256, dim)).astype(np.float32)
    items = centres[rng.integers(0, 256, n_items)] + 0.5 * rng.normal(size=(n_items, dim)).astype(
        np.float32
    )
    users = centres[rng.integers(0, 256, n_users)] + 0.5 * rng.normal(size=(n_users, dim)).astype(
        np.float32
    )
    rows = np.repeat(np.arange(n_users), seen_per_user)
    cols = rng.integers(0, n_items, len(rows))
    seen = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    seen.sum_duplicates()
    ids = np.array([f"i{i}" for i in range(n_items)])
    table = pd.DataFrame({"item_idx": np.arange(n_items), "item_id": ids, "title": ids})
    catalogue = Catalogue(
        user_vectors=users,
        item_vectors=items,
        user_ids=np.array([f"u{u}" for u in range(n_users)]),
        item_ids=ids,
        seen=seen.tocsr(),
        items=table,
        config=config,
        index_kind=index_kind,
        text_columns=["title"],
    )
    artifacts = SimpleNamespace(
        dataset_info={"name": f"synthetic_{n_items}", "text_columns": ["title"]},
        trained_model={"config": {"synthetic": True, "dim": dim, "seed": seed}},
        item_texts=None,  # no words: nothing to fit at start-up
        word_requests=None,
    )
    return SyntheticServing(catalogue, config, f"synthetic-{n_items}-{seed}", artifacts=artifacts)
