"""``train_recommender``: the one entry point the finetune pipeline and Optuna's tune call.

Lightning does the engineering: accelerator/devices/strategy from the config (DDP is
Lightning's, without per-step buffer syncs), precision by device (bf16-mixed on CUDA, 32-true
elsewhere), seeding, EarlyStopping and ModelCheckpoint (best, plus last.ckpt after every
validation) on ``val/recall@20``, CSV + TensorBoard logs under ``<run_dir>/logs``. Resuming
from ``<run_dir>/checkpoints/last.ckpt`` is checked against the config first
(:mod:`crossrec.models.resume`); a fresh run moves old checkpoints aside instead of deleting
them; Ctrl-C logs how to resume.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crossrec.models.config import FinetuneConfig, TrainerConfig, effective_config
from crossrec.models.inputs import TrainingData
from crossrec.models.resume import (
    ResumePlan,
    check_state_shapes,
    log_plan,
    move_aside_checkpoints,
    plan_resume,
)

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


def usable_cpu_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, usable or 1)


def resolve_cpu_threads(value: int | str | None) -> int | None:
    """torch intra-op threads for ``trainer.cpu_threads``: an int as is, None = torch's default
    (one per core), ``auto`` = min(4, max(1, usable cores // 2)).

    Why not one per core: a step is a chain of small ops (sparse graph matmuls over 64-d
    embeddings, gathers, Adam updates) that scale poorly past a few threads, and when the cores
    are shared, threads that wait for each other stall every op. On a 2-core machine under load
    torch's default (2 threads) ran 2-20x slower per epoch than 1 thread; half the usable cores
    leaves room for the data loader and other processes.
    """
    if value != "auto":
        return value
    return max(1, min(4, usable_cpu_cores() // 2))


#: Lightning noise repeated on every run (for each baseline and seed) that says nothing about
#: this run: torch's LeafSpec deprecation inside Lightning's own pytree helper; the
#: logging-interval hint (train/loss is logged every n *global* steps, across epochs); and the
#: non-empty checkpoint directory, which holds our own moved-aside ``previous-*`` folders or
#: the checkpoint being resumed.
QUIET_WARNINGS = (
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    (r"The number of training batches \(\d+\) is smaller than the logging interval", Warning),
    (r"Checkpoint directory .* exists and is not empty", Warning),
)


@contextmanager
def quiet_lightning():
    with warnings.catch_warnings():
        for message, category in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def _prepare_checkpoints(
    checkpoint_dir: Path, config: FinetuneConfig, data: TrainingData, is_rank_zero: bool
) -> tuple[ResumePlan | None, dict | None]:
    """Resume plan (+ the loaded checkpoint) when resuming; else move old checkpoints aside."""
    import torch

    last = checkpoint_dir / "last.ckpt"
    if config.trainer.resume and last.exists():
        checkpoint = torch.load(last, map_location="cpu", weights_only=False, mmap=True)
        plan = plan_resume(checkpoint, last, config, data.n_users, data.n_items)
        if is_rank_zero:
            log_plan(plan)
        return plan, checkpoint
    if config.trainer.resume:
        log.info("resume requested but %s does not exist: starting fresh", last)
    if is_rank_zero:
        move_aside_checkpoints(checkpoint_dir)
    return None, None


def _log_interrupt(trainer, checkpoint_dir: Path, resume_command: str | None) -> None:
    last = checkpoint_dir / "last.ckpt"
    if not last.exists():
        log.warning(
            "training interrupted in epoch %d before any checkpoint was saved: nothing to resume",
            trainer.current_epoch,
        )
        return
    how = resume_command or "run again with trainer.resume: true"
    log.warning(
        "training interrupted in epoch %d; %s holds the last validated epoch. To resume: %s",
        trainer.current_epoch,
        last,
        how,
    )


def train_recommender(
    data: TrainingData,
    config: FinetuneConfig,
    *,
    run_dir: Path,
    extra_callbacks: Sequence = (),
    enable_progress_bar: bool = True,
    resume_command: str | None = None,
    initial_state: dict | None = None,
) -> TrainingResult:
    """Train on ``data.train``, early-stop on validation, return the best model's bundle.

    ``trainer.resume`` with ``<run_dir>/<checkpoint_dir>/last.ckpt`` present continues that run
    after checking the checkpoint against ``config`` (:mod:`crossrec.models.resume`: changed
    model-defining settings fail before training, the others are applied and logged); without
    it, a previous run's checkpoints are moved to ``<checkpoint_dir>/previous-<timestamp>/``.
    On Ctrl-C the run logs how to resume (``resume_command``: the caller's exact command) and
    raises KeyboardInterrupt. ``initial_state`` (e.g. :func:`crossrec.models.warm.warm_state`)
    replaces the random init: a refresh fine-tunes from the previous model.

    ``model.content_mix`` trains the content model and its ID-only twin and mixes them
    (:func:`crossrec.models.mixed.train_mixed`).
    """
    from crossrec.models.mixed import is_mixed, train_mixed, without_mix_when_no_content

    config = without_mix_when_no_content(config, data)
    if is_mixed(config):
        return train_mixed(
            data,
            config,
            Path(run_dir),
            train_recommender,
            extra_callbacks=extra_callbacks,
            enable_progress_bar=enable_progress_bar,
            resume_command=resume_command,
            initial_state=initial_state,
        )
    with quiet_lightning():
        return _train(
            data,
            config,
            Path(run_dir),
            extra_callbacks,
            enable_progress_bar,
            resume_command,
            initial_state,
        )


def _train(
    data: TrainingData,
    config: FinetuneConfig,
    run_dir: Path,
    extra_callbacks: Sequence,
    enable_progress_bar: bool,
    resume_command: str | None,
    initial_state: dict | None = None,
) -> TrainingResult:
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    from lightning.pytorch.utilities import rank_zero_only

    from crossrec.models.bundle import build_recommender, make_bundle
    from crossrec.models.data import InteractionDataModule
    from crossrec.models.module import PatientEarlyStopping, RecommenderModule, history_frame

    config = effective_config(config)  # strategy llm: its own batch / negatives / validation
    checkpoint_dir = run_dir / config.trainer.checkpoint_dir
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    plan, checkpoint = _prepare_checkpoints(
        checkpoint_dir, config, data, is_rank_zero=rank_zero_only.rank == 0
    )
    if plan is not None:
        config = plan.config  # the effective config: what really runs, recorded in the bundle
    tcfg = config.trainer
    seed = tcfg.seed if tcfg.seed is not None else 0
    pl.seed_everything(seed, workers=True, verbose=False)
    threads = resolve_cpu_threads(tcfg.cpu_threads)
    if threads is not None:
        torch.set_num_threads(threads)

    model = build_recommender(data, config)
    if initial_state is not None:
        model.load_state_dict(initial_state, strict=False)
    module = RecommenderModule(model, config, data.train, data.valid)
    resume_from = None
    if plan is not None:
        resume_from = plan.resumed_from["checkpoint"]
        check_state_shapes(checkpoint["state_dict"], module.state_dict(), resume_from)
        del checkpoint
    datamodule = InteractionDataModule(data.train, config.data, seed)
    if model.late_content:  # an LLM in the loop: say what an epoch will cost before it starts
        from crossrec.models.budget import log_projection, project_epoch

        projection = project_epoch(module, datamodule, tcfg.limit_train_batches)
        log_projection(projection, tcfg.check_val_every_n_epoch)
    checkpoint_cb = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best-{epoch:03d}",
        monitor=tcfg.monitor,
        mode=tcfg.mode,
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    # last.ckpt after EVERY validation (Lightning's save_last only writes it when the best
    # improved, so a resume would restart from the last improvement). After checkpoint_cb in
    # the list: it then holds checkpoint_cb's updated best score.
    last_cb = ModelCheckpoint(
        dirpath=checkpoint_dir, filename="last", monitor=None, enable_version_counter=False
    )
    callbacks = [
        PatientEarlyStopping(monitor=tcfg.monitor, mode=tcfg.mode, patience=tcfg.patience),
        checkpoint_cb,
        last_cb,
        *extra_callbacks,
    ]
    log_root = run_dir / tcfg.log_dir
    loggers = [CSVLogger(log_root, name="csv"), TensorBoardLogger(log_root, name="tensorboard")]
    precision = resolve_precision(tcfg)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(
        "training %s users x %s items, %d trainable parameters, precision %s, %s CPU threads, "
        "run_dir %s",
        data.n_users,
        data.n_items,
        n_params,
        precision,
        torch.get_num_threads(),
        run_dir,
    )
    trainer = pl.Trainer(
        accelerator=tcfg.accelerator,
        devices=tcfg.devices,
        num_nodes=tcfg.num_nodes,
        strategy=resolve_strategy(tcfg.strategy),
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
    sigint = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
    except (KeyboardInterrupt, SystemExit) as stop:
        if not trainer.interrupted:
            raise
        # Lightning answers Ctrl-C with a graceful shutdown, SIGINT ignored, and sys.exit(1)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, sigint)
        if trainer.is_global_zero:
            _log_interrupt(trainer, checkpoint_dir, resume_command)
        raise KeyboardInterrupt("training interrupted") from stop

    best_path = checkpoint_cb.best_model_path
    if best_path and Path(best_path).exists():
        state = torch.load(best_path, map_location="cpu", weights_only=False)["state_dict"]
        model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
        log.info(
            "best checkpoint %s (%s = %s)", best_path, tcfg.monitor, checkpoint_cb.best_model_score
        )
    model.cpu().eval()
    records = module.history or _history_from(checkpoint_dir / "last.ckpt")
    history = history_frame(records)
    column = tcfg.monitor.replace("val/", "val_")
    if checkpoint_cb.best_model_score is not None:
        best_score = float(checkpoint_cb.best_model_score)
    elif column in history and history[column].notna().any():
        best_score = float(
            np.nanmax(history[column]) if tcfg.mode == "max" else np.nanmin(history[column])
        )
    else:
        best_score = float("nan")
    resumed_from = plan.resumed_from if plan is not None else None
    bundle = make_bundle(model, config, records, resumed_from=resumed_from)
    return TrainingResult(bundle=bundle, history=history, best_score=best_score)


def resolve_strategy(strategy: str):
    """``ddp`` / ``ddp_spawn`` without per-step buffer syncs.

    DDP would otherwise broadcast every buffer from rank 0 before each forward pass: here they
    are frozen inputs (modality feature tables, histories, masks) that every rank builds
    identically from the same data. Gradients are all-reduced as usual.
    """
    if strategy not in ("ddp", "ddp_spawn"):
        return strategy
    from lightning.pytorch.strategies import DDPStrategy

    start = "spawn" if strategy == "ddp_spawn" else "popen"
    return DDPStrategy(start_method=start, forward_sync_buffers=False)


def _history_from(last_checkpoint: Path) -> list[dict]:
    """Per-epoch records from the last checkpoint (ddp_spawn trains in child processes, so the
    module in this process never saw its epochs)."""
    if not last_checkpoint.exists():
        return []
    import torch

    saved = torch.load(last_checkpoint, map_location="cpu", weights_only=False, mmap=True)
    return list(saved.get("crossrec_history", []))
