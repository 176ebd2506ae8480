"""finetune nodes: build the in-memory TrainingData, then train with Lightning.

Heavy imports (torch, lightning) happen inside the functions so the registry stays fast.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

# torch-free modules (numpy / scipy / pydantic): imported at module level so Kedro can resolve
# the node type hints; torch and lightning are imported inside the functions that train
from crossrec.models.inputs import TrainingData, parse_finetune_config
from crossrec.models.inputs import build_training_data as _build_training_data

logger = logging.getLogger(__name__)

__all__ = ["build_training_data", "resume_command", "stop_unless_rank_zero", "train_model"]


def build_training_data(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    dataset_info: dict,
    fused_item_features: dict,
    modality_graphs: dict,
    user_item_graph: Any,
    finetune: dict[str, Any],
    item_texts: list[str] | None = None,
) -> TrainingData:
    """:func:`crossrec.models.inputs.build_training_data` with ``params:finetune`` typed as
    the dict Kedro passes (a ``dict | FinetuneConfig`` hint makes Kedro warn on every run)."""
    return _build_training_data(
        interactions,
        items,
        dataset_info,
        fused_item_features,
        modality_graphs,
        user_item_graph,
        finetune,
        item_texts,
    )


def content_modalities(fused_item_features: dict) -> list[str]:
    """The modalities fuse passed on (none for a dataset of interactions only)."""
    return [name for name in fused_item_features if not name.startswith("__")]


def resume_command(dataset: str) -> str:
    """The command that continues an interrupted finetune run from its last checkpoint.

    ``dataset`` is always spelt out: right whichever dataset is the default.
    """
    return f"kedro run --pipelines finetune --params finetune.trainer.resume=true,dataset={dataset}"


def train_model(
    data: TrainingData, finetune: dict[str, Any], seed: int, dataset: str
) -> tuple[dict, pd.DataFrame]:
    """Train with Lightning under ``run_dir`` ({dataset} is filled in); bundle + history."""
    from crossrec.models.training import train_recommender

    config = parse_finetune_config(finetune).model_copy(deep=True)
    if config.model.use_content and not content_modalities(data.item_features):
        logger.info("finetune: no content modality, so an ID-only model (model.use_content: false)")
        config.model.use_content = False
    if config.trainer.seed is None:
        config.trainer.seed = int(seed)
    run_dir = Path(config.run_dir.format(dataset=dataset))
    result = train_recommender(
        data, config, run_dir=run_dir, resume_command=resume_command(dataset)
    )
    stop_unless_rank_zero()
    logger.info("finetune: best %s = %.4f", config.trainer.monitor, result.best_score)
    return result.bundle, result.history


def stop_unless_rank_zero() -> None:
    """Under DDP every process runs ``kedro run`` (Lightning's launcher re-runs the command per
    device, torchrun / SLURM per machine); only global rank 0 goes on to save the artifacts and
    run later nodes, the others end here with exit status 0."""
    from lightning.pytorch.utilities import rank_zero_only

    rank = int(getattr(rank_zero_only, "rank", 0))
    if rank:
        logger.info("finetune: rank %d done; rank 0 writes trained_model and its history", rank)
        raise SystemExit(0)
