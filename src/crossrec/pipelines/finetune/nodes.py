"""finetune nodes: build the in-memory TrainingData, then train with Lightning.

Heavy imports (torch, lightning) happen inside the functions so the registry stays fast.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

# torch-free modules (numpy / scipy / pydantic): imported at module level so Kedro can resolve
# the node type hints; torch and lightning are imported inside the functions that train
from crossrec.models.config import FinetuneConfig
from crossrec.models.training import TrainingData

logger = logging.getLogger(__name__)

WHERE = "conf/base/parameters_finetune.yml: finetune"
REQUIRED_COLUMNS = ("user_idx", "item_idx", "split")


def parse_finetune_params(params: dict[str, Any] | FinetuneConfig) -> FinetuneConfig:
    from crossrec.config import parse_params

    return parse_params(FinetuneConfig, params, where=WHERE)


def _check_interactions(interactions: pd.DataFrame, n_users: int, n_items: int) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in interactions.columns]
    if missing:
        raise ValueError(
            f"interactions: missing columns {missing}; expected {list(REQUIRED_COLUMNS)}"
        )
    bad_split = set(interactions["split"].unique()) - {"train", "valid", "test"}
    if bad_split:
        raise ValueError(f"interactions.split: unexpected values {sorted(bad_split)}")
    for column, bound in (("user_idx", n_users), ("item_idx", n_items)):
        values = interactions[column].to_numpy()
        if len(values) and (values.min() < 0 or values.max() >= bound):
            raise ValueError(
                f"interactions.{column}: values must lie in [0, {bound}) (dataset_info), "
                f"got [{values.min()}, {values.max()}]"
            )


def item_texts_from_items(items: pd.DataFrame, text_columns: list[str], n_items: int) -> list[str]:
    """One text per item (its text columns joined), aligned to item_idx."""
    ordered = items.set_index("item_idx").reindex(range(n_items))
    columns = [c for c in text_columns if c in ordered.columns]
    if not columns:
        return [""] * n_items
    parts = ordered[columns].fillna("").astype(str)
    return [". ".join(p for p in row if p.strip()) for row in parts.itertuples(index=False)]


def build_training_data(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    dataset_info: dict,
    fused_item_features: dict,
    modality_graphs: dict,
    user_item_graph,
    finetune: dict[str, Any],
    item_texts: list[str] | None = None,
) -> TrainingData:
    """Train/valid matrices (+ recency order of train) and the fuse outputs, in one object.

    ``item_texts`` (fuse's artifact, rendered like featurize's text) feeds the ``llm`` fusion
    strategy; without it the items' text columns are joined.
    """
    from crossrec.evaluation.ranking import interactions_to_csr

    config = parse_finetune_params(finetune)
    n_users, n_items = int(dataset_info["n_users"]), int(dataset_info["n_items"])
    _check_interactions(interactions, n_users, n_items)
    split = interactions["split"].to_numpy()
    train_rows = interactions[split == "train"]
    valid_rows = interactions[split == "valid"]
    users, item_idx = train_rows["user_idx"].to_numpy(), train_rows["item_idx"].to_numpy()
    train = interactions_to_csr(users, item_idx, n_users, n_items)
    valid = interactions_to_csr(
        valid_rows["user_idx"].to_numpy(), valid_rows["item_idx"].to_numpy(), n_users, n_items
    )
    # interactions are sorted by (user, timestamp, item): row position = recency order
    order = np.arange(1, len(train_rows) + 1, dtype=np.float32)
    recency = sp.csr_matrix((order, (users, item_idx)), shape=(n_users, n_items))
    texts = None
    if config.model.fusion.strategy == "llm":
        if item_texts is not None:
            texts = list(item_texts)
            if len(texts) != n_items:
                raise ValueError(
                    f"item_texts: expected {n_items} texts (one per item), got {len(texts)}"
                )
        else:
            texts = item_texts_from_items(
                items, list(dataset_info.get("text_columns", [])), n_items
            )
    logger.info(
        "finetune data: %d users, %d items, %d train / %d valid interactions, modalities %s",
        n_users,
        n_items,
        train.nnz,
        valid.nnz,
        [k for k in fused_item_features if not k.startswith("__")],
    )
    return TrainingData(
        n_users=n_users,
        n_items=n_items,
        train=train,
        valid=valid,
        item_features=fused_item_features,
        modality_graphs=modality_graphs,
        user_item_graph=user_item_graph,
        item_texts=texts,
        train_recency=recency,
    )


def train_model(
    data: TrainingData, finetune: dict[str, Any], seed: int, dataset: str
) -> tuple[dict, pd.DataFrame]:
    """Train with Lightning under ``run_dir`` ({dataset} is filled in); bundle + history."""
    from crossrec.models.training import train_recommender

    config = parse_finetune_params(finetune).model_copy(deep=True)
    if config.trainer.seed is None:
        config.trainer.seed = int(seed)
    run_dir = Path(config.run_dir.format(dataset=dataset))
    result = train_recommender(data, config, run_dir=run_dir)
    logger.info("finetune: best %s = %.4f", config.trainer.monitor, result.best_score)
    return result.bundle, result.history
