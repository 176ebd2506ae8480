"""The Optuna objective: train the recommender with a trial's configuration, return its score.

The score is the best value of ``config.metric`` (validation Recall@20 by default) over the
epochs, exactly what ``finetune`` early-stops and checkpoints on, computed by the shared
``crossrec.metrics.ranking`` code inside the LightningModule. The pruning callback reports the
same metric each epoch so the pruner can stop hopeless trials early.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from crossrec.config import parse_params
from crossrec.tuning.config import TuneConfig, trial_strategy
from crossrec.tuning.groups import suggest_groups
from crossrec.tuning.results import OVERRIDES_ATTR
from crossrec.tuning.space import apply_overrides, suggest

logger = logging.getLogger(__name__)


class ReportsOnly:
    """A trial that reports its epochs (the dashboard's curves, the pruner's history) but is
    never told to stop: enqueued trials train to the end."""

    def __init__(self, trial: Any) -> None:
        self._trial = trial

    def should_prune(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)


def trial_overrides(config: TuneConfig, sampled: Mapping[str, Any]) -> dict[str, Any]:
    """Everything a trial changes in the finetune block: fixed values, samples, monitoring."""
    return {
        **config.fixed,
        **sampled,
        "trainer.monitor": config.metric,
        "trainer.mode": "max" if config.direction == "maximize" else "min",
        "trainer.resume": False,
    }


def suggest_trial(trial: Any, config: TuneConfig, finetune: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's finetune overrides: the search space's values, each group's picked option
    (``crossrec.tuning.groups``), plus the conditional LLM space when the trial's strategy is
    ``llm`` (define-by-run: other trials never sample, nor record, those parameters)."""
    sampled = suggest(trial, config.search_space)
    sampled.update(suggest_groups(trial, config.search_groups))
    if config.llm_search_space and trial_strategy(config, dict(finetune), sampled) == "llm":
        sampled.update(suggest(trial, config.llm_search_space))
    return sampled


def make_finetune_objective(
    data: Any,
    finetune_params: Mapping[str, Any],
    config: TuneConfig,
    *,
    run_root: Path,
    seed: int,
) -> Callable[[Any], float]:
    """An objective over ``train_recommender(data, ...)``; ``data`` is a ``TrainingData``.

    Each trial trains in ``run_root/trial_<number>`` (its checkpoints are removed afterwards
    unless ``keep_checkpoints``) and records the run dir and epochs run as user attributes.
    """
    from optuna_integration import PyTorchLightningPruningCallback

    from crossrec.models.config import FinetuneConfig
    from crossrec.models.mixed import MIX_KEY, epochs_trained, json_point
    from crossrec.models.training import train_recommender

    base = dict(finetune_params)
    if (base.get("trainer") or {}).get("seed") is None:
        base = apply_overrides(base, {"trainer.seed": seed})

    def objective(trial: Any) -> float:
        sampled = suggest_trial(trial, config, base)
        params = apply_overrides(base, trial_overrides(config, sampled))
        finetune = parse_params(FinetuneConfig, params, where=f"tune trial {trial.number}")
        run_dir = Path(run_root) / f"trial_{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        # what the trial changed in the finetune block (groups expanded): what export writes
        trial.set_user_attr(OVERRIDES_ATTR, sampled)
        logger.info("Trial %d: %s", trial.number, sampled)
        # an enqueued trial (the defaults, their neighbours) is a deliberate point: it trains
        # to the end. Early epochs rank configurations poorly: on Last.fm the median pruner
        # stopped the defaults-with-k-5 trial at epoch 7 while it led the defaults there
        enqueued = "enqueued" in trial.user_attrs
        pruning = PyTorchLightningPruningCallback(
            ReportsOnly(trial) if enqueued else trial, monitor=config.metric
        )
        try:
            result = train_recommender(
                data,
                finetune,
                run_dir=run_dir,
                extra_callbacks=[pruning],
                enable_progress_bar=False,
            )
        except SystemExit as exit_:
            # Lightning answers Ctrl-C with a graceful shutdown and sys.exit(1); SystemExit
            # would bypass Optuna and leave the trial RUNNING until its heartbeat expires.
            # As KeyboardInterrupt, Optuna marks it FAIL at once (a rerun replaces it).
            raise KeyboardInterrupt(f"trial {trial.number} interrupted") from exit_
        finally:
            if not config.keep_checkpoints:  # a mix's two models keep theirs one level down
                for folder in (run_dir, run_dir / "twin", run_dir / "content"):
                    shutil.rmtree(folder / finetune.trainer.checkpoint_dir, ignore_errors=True)
        # Under DDP the callback only flags the trial (see optuna-integration); raise here.
        if not enqueued:
            pruning.check_pruned()
        for key, epochs in epochs_trained(result.history).items():  # a mix: both models'
            trial.set_user_attr(key, epochs)
        if MIX_KEY in result.bundle:  # the mix's point, chosen on validation
            trial.set_user_attr(MIX_KEY, json_point(result.bundle[MIX_KEY]["choice"]))
        if not math.isfinite(result.best_score):
            raise ValueError(
                f"trial {trial.number}: metric {config.metric!r} was never logged "
                f"(history columns: {list(result.history.columns)})"
            )
        return float(result.best_score)

    return objective
