"""Training inputs: the one builder of :class:`TrainingData` from the pipeline artifacts.

finetune, evaluate (every retrained seed, baseline and ablation), tune, the benchmarks and
serving code all call :func:`build_training_data`, so every consumer sees exactly the matrices
and features the model was trained on. numpy / scipy / pydantic only (no torch), so Kedro can
resolve node type hints without importing torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.config import parse_params, where
from crossrec.data.matrices import (
    SplitMatrices,
    check_interactions,
    interactions_to_csr,
    split_matrices,
    train_recency,
)
from crossrec.models.config import FinetuneConfig

logger = logging.getLogger(__name__)

WHERE = where("finetune")


@dataclass
class TrainingData:
    """In-memory inputs of training: split matrices plus the fuse outputs."""

    n_users: int
    n_items: int
    train: sp.csr_matrix  # (n_users, n_items) binary
    valid: sp.csr_matrix  # (n_users, n_items) binary
    item_features: dict  # fused_item_features
    modality_graphs: dict[str, sp.csr_matrix]
    user_item_graph: sp.csr_matrix
    item_texts: list[str] | None = None  # for the llm fusion strategy
    #: same pattern as ``train``; larger = more recent (orders user histories); None = no times
    train_recency: sp.csr_matrix | None = None
    #: the test split and cold-item mask, for evaluation and serving (None in hand-built data)
    splits: SplitMatrices | None = None
    #: who users are, as the user-attributes modality (crossrec.models.user_attributes); None
    #: = the model has none
    user_attributes: Any = None

    def __post_init__(self) -> None:
        shape = (self.n_users, self.n_items)
        for name in ("train", "valid"):
            matrix = getattr(self, name)
            if matrix.shape != shape:
                raise ValueError(f"TrainingData.{name}: expected shape {shape}, got {matrix.shape}")
        if self.item_texts is not None and len(self.item_texts) != self.n_items:
            raise ValueError(
                f"TrainingData.item_texts: expected {self.n_items} texts, "
                f"got {len(self.item_texts)}"
            )


@dataclass
class TrainingArtifacts:
    """The pipeline artifacts training inputs are built from (ingest, featurize, fuse), named as
    their catalog entries: what evaluate, tune and serving carry to rebuild a model's data."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    dataset_info: dict
    fused_item_features: dict
    modality_graphs: dict
    user_item_graph: sp.spmatrix
    item_texts: list[str] | None = None  # for the llm fusion strategy

    def training_data(
        self,
        config: dict[str, Any] | FinetuneConfig,
        features: dict | None = None,
        graphs: dict | None = None,
    ) -> TrainingData:
        """:func:`build_training_data` of these artifacts (``features`` / ``graphs`` replace the
        fused features / modality graphs, e.g. for an ablation), so every consumer sees what
        training saw."""
        return build_training_data(
            self.interactions,
            self.items,
            self.dataset_info,
            self.fused_item_features if features is None else features,
            self.modality_graphs if graphs is None else graphs,
            self.user_item_graph,
            config,
            self.item_texts,
        )

    def model_data(self, config: dict[str, Any] | FinetuneConfig) -> TrainingData:
        """:func:`build_model_data` of these artifacts."""
        return build_model_data(self, config)


#: the catalog entries of :class:`TrainingArtifacts`, in field order (node inputs)
TRAINING_ARTIFACTS = tuple(f.name for f in fields(TrainingArtifacts))


def parse_finetune_config(params: dict[str, Any] | FinetuneConfig) -> FinetuneConfig:
    return parse_params(FinetuneConfig, params, where=WHERE)


def llm_texts(
    config: FinetuneConfig, item_texts: list[str] | None, n_items: int
) -> list[str] | None:
    """The item texts the ``llm`` fusion strategy reads (one per item); None for the others."""
    if config.model.fusion.strategy != "llm":
        return None
    if item_texts is None:
        raise ValueError(
            "fusion strategy 'llm' needs the item_texts artifact (featurize_modalities)"
        )
    texts = list(item_texts)
    if len(texts) != n_items:
        raise ValueError(f"item_texts: expected {n_items} texts (one per item), got {len(texts)}")
    return texts


def build_training_data(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    dataset_info: dict,
    fused_item_features: dict,
    modality_graphs: dict,
    user_item_graph: sp.spmatrix,
    config: dict[str, Any] | FinetuneConfig,
    item_texts: list[str] | None = None,
) -> TrainingData:
    """Split matrices (+ train recency) and the fuse outputs, in one validated object.

    ``item_texts`` (featurize's ``item_texts`` artifact) is required by the ``llm`` fusion
    strategy and ignored otherwise.
    """
    config = parse_finetune_config(config)
    n_users, n_items = int(dataset_info["n_users"]), int(dataset_info["n_items"])
    matrices = split_matrices(interactions, items, n_users, n_items)
    texts = llm_texts(config, item_texts, n_items)
    too_large = [k for k in config.trainer.val_ks if k >= n_items]
    if too_large:
        logger.warning(
            "trainer.val_ks %s reach the catalogue size (%d items): validation @K ranks every "
            "item, so it cannot tell models apart (early stopping and tuning see a flat "
            "metric); use K < %d",
            too_large,
            n_items,
            n_items,
        )
    logger.info(
        "training data: %d users, %d items, %d train / %d valid interactions, modalities %s",
        n_users,
        n_items,
        matrices.train.nnz,
        matrices.valid.nnz,
        [k for k in fused_item_features if not k.startswith("__")],
    )
    return TrainingData(
        n_users=n_users,
        n_items=n_items,
        train=matrices.train,
        valid=matrices.valid,
        item_features=fused_item_features,
        modality_graphs=modality_graphs,
        user_item_graph=user_item_graph,
        item_texts=texts,
        train_recency=matrices.train_recency,
        splits=matrices,
    )


def build_model_data(
    artifacts: TrainingArtifacts, config: dict[str, Any] | FinetuneConfig
) -> TrainingData:
    """What a trained model is rebuilt from, and no more: the train matrix (with its recency
    only when the user tower reads histories) and the fuse outputs; the model sees exactly
    what :func:`build_training_data` gives it. No validation, test or cold-item matrices
    (``valid`` is empty, ``splits`` None): for serving a trained model, never for training or
    evaluating one, so serving starts without splitting every interaction."""
    config = parse_finetune_config(config)
    info, interactions = artifacts.dataset_info, artifacts.interactions
    n_users, n_items = int(info["n_users"]), int(info["n_items"])
    check_interactions(interactions, n_users, n_items)
    rows = interactions[interactions["split"].to_numpy() == "train"]
    users, items = rows["user_idx"].to_numpy(np.int64), rows["item_idx"].to_numpy(np.int64)
    histories = config.model.user_tower.kind != "none"
    return TrainingData(
        n_users=n_users,
        n_items=n_items,
        train=interactions_to_csr(users, items, n_users, n_items),
        valid=sp.csr_matrix((n_users, n_items), dtype=np.float32),
        item_features=artifacts.fused_item_features,
        modality_graphs=artifacts.modality_graphs,
        user_item_graph=artifacts.user_item_graph,
        item_texts=llm_texts(config, artifacts.item_texts, n_items),
        train_recency=train_recency(interactions, n_users, n_items) if histories else None,
    )
