"""``train_recommender``: the one entry point the finetune pipeline and Optuna's tune call.

Lightning does the engineering: accelerator/devices/strategy from the config (DDP is
Lightning's), precision by device (bf16-mixed on CUDA, 32-true elsewhere), seeding,
EarlyStopping and ModelCheckpoint (best + last) on ``val/recall@20``, resume from
``<run_dir>/checkpoints/last.ckpt``, CSV + TensorBoard logs under ``<run_dir>/logs``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crossrec.models.config import FinetuneConfig, TrainerConfig
from crossrec.models.inputs import TrainingData

log = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    bundle: dict  # the `trained_model` artifact
    history: pd.DataFrame  # per-epoch metrics
    best_score: float  # best monitored validation metric (default val/recall@20)


def resolve_precision(trainer: TrainerConfig) -> str:
    """``auto`` -> bf16-mixed (or 16-mixed) on CUDA, 32-true on CPU/MPS."""
    if trainer.precision != "auto":
        return trainer.precision
    import torch

    wants_cuda = trainer.accelerator in ("auto", "gpu", "cuda")
    if wants_cuda and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def _clear_stale_checkpoints(checkpoint_dir: Path) -> None:
    """A fresh (non-resumed) run must not pick up a previous run's best/last checkpoints."""
    stale = sorted(checkpoint_dir.glob("*.ckpt"))
    if stale:
        log.info("fresh run: removing %d old checkpoints in %s", len(stale), checkpoint_dir)
        for path in stale:
            path.unlink()


def train_recommender(
    data: TrainingData,
    config: FinetuneConfig,
    *,
    run_dir: Path,
    extra_callbacks: Sequence = (),
    enable_progress_bar: bool = True,
) -> TrainingResult:
    """Train on ``data.train``, early-stop on validation, return the best model's bundle."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from crossrec.models.bundle import build_recommender, make_bundle
    from crossrec.models.data import InteractionDataModule
    from crossrec.models.module import RecommenderModule, history_frame

    tcfg = config.trainer
    seed = tcfg.seed if tcfg.seed is not None else 0
    pl.seed_everything(seed, workers=True)
    if tcfg.cpu_threads is not None:
        torch.set_num_threads(tcfg.cpu_threads)
    run_dir = Path(run_dir)
    checkpoint_dir = run_dir / tcfg.checkpoint_dir
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    last = checkpoint_dir / "last.ckpt"
    resume_from = str(last) if tcfg.resume and last.exists() else None
    if resume_from:
        log.info("resuming from %s", resume_from)
    elif tcfg.resume:
        log.info("resume requested but %s does not exist: starting fresh", last)
    if resume_from is None:
        _clear_stale_checkpoints(checkpoint_dir)

    model = build_recommender(data, config)
    module = RecommenderModule(model, config, data.train, data.valid)
    datamodule = InteractionDataModule(data.train, config.data, seed)
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best-{epoch:03d}",
        monitor=tcfg.monitor,
        mode=tcfg.mode,
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
    )
    callbacks = [
        EarlyStopping(monitor=tcfg.monitor, mode=tcfg.mode, patience=tcfg.patience),
        checkpoint,
        *extra_callbacks,
    ]
    log_root = run_dir / tcfg.log_dir
    loggers = [CSVLogger(log_root, name="csv"), TensorBoardLogger(log_root, name="tensorboard")]
    precision = resolve_precision(tcfg)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(
        "training %s users x %s items, %d trainable parameters, precision %s, run_dir %s",
        data.n_users,
        data.n_items,
        n_params,
        precision,
        run_dir,
    )
    trainer = pl.Trainer(
        accelerator=tcfg.accelerator,
        devices=tcfg.devices,
        strategy=tcfg.strategy,
        precision=precision,
        max_epochs=tcfg.max_epochs,
        min_epochs=tcfg.min_epochs,
        callbacks=callbacks,
        logger=loggers,
        default_root_dir=run_dir,
        enable_progress_bar=enable_progress_bar,
        enable_model_summary=False,
        check_val_every_n_epoch=tcfg.check_val_every_n_epoch,
        deterministic=tcfg.deterministic,
        log_every_n_steps=tcfg.log_every_n_steps,
        gradient_clip_val=config.optim.gradient_clip_val,
        limit_train_batches=tcfg.limit_train_batches,
        fast_dev_run=tcfg.fast_dev_run,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)

    best_path = checkpoint.best_model_path
    if best_path and Path(best_path).exists():
        state = torch.load(best_path, map_location="cpu", weights_only=False)["state_dict"]
        model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
        log.info(
            "best checkpoint %s (%s = %s)", best_path, tcfg.monitor, checkpoint.best_model_score
        )
    model.cpu().eval()
    history = history_frame(module.history)
    column = tcfg.monitor.replace("val/", "val_")
    if checkpoint.best_model_score is not None:
        best_score = float(checkpoint.best_model_score)
    elif column in history and history[column].notna().any():
        best_score = float(
            np.nanmax(history[column]) if tcfg.mode == "max" else np.nanmin(history[column])
        )
    else:
        best_score = float("nan")
    bundle = make_bundle(model, config, module.history)
    return TrainingResult(bundle=bundle, history=history, best_score=best_score)
