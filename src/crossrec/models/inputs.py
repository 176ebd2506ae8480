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

import pandas as pd
import scipy.sparse as sp

from crossrec.config import parse_params, where
from crossrec.data.matrices import SplitMatrices, split_matrices
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


#: the catalog entries of :class:`TrainingArtifacts`, in field order (node inputs)
TRAINING_ARTIFACTS = tuple(f.name for f in fields(TrainingArtifacts))


def parse_finetune_config(params: dict[str, Any] | FinetuneConfig) -> FinetuneConfig:
    return parse_params(FinetuneConfig, params, where=WHERE)


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
    texts = None
    if config.model.fusion.strategy == "llm":
        if item_texts is None:
            raise ValueError(
                "fusion strategy 'llm' needs the item_texts artifact (featurize_modalities)"
            )
        texts = list(item_texts)
        if len(texts) != n_items:
            raise ValueError(
                f"item_texts: expected {n_items} texts (one per item), got {len(texts)}"
            )
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
