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
from crossrec.models.inputs import TrainingData, build_training_data, parse_finetune_config

logger = logging.getLogger(__name__)

__all__ = ["build_training_data", "resume_command", "train_model"]


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
    if config.trainer.seed is None:
        config.trainer.seed = int(seed)
    run_dir = Path(config.run_dir.format(dataset=dataset))
    result = train_recommender(
        data, config, run_dir=run_dir, resume_command=resume_command(dataset)
    )
    logger.info("finetune: best %s = %.4f", config.trainer.monitor, result.best_score)
    return result.bundle, result.history
