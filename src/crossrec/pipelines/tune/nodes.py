"""tune nodes: validate the search space, run the Optuna study, export the best configuration.

The study lives in an RDB (``tune.storage.url``) that the nodes open directly, so trials are
stored as they finish (``optuna-dashboard`` shows them live) and several ``kedro run
--pipelines tune`` processes can share one study. Everything else goes through the catalog.
Heavy imports (torch, lightning, optuna-integration) happen inside the functions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from crossrec.tuning.config import TuneConfig, needs_item_texts, parse_tune_config
from crossrec.tuning.space import apply_overrides

logger = logging.getLogger(__name__)


def validate_tuning(tune: dict[str, Any], finetune: dict[str, Any]) -> TuneConfig:
    """Parse ``tune`` and check every searched / fixed key against ``FinetuneConfig`` first,
    so a misspelt key fails with its name before any data is loaded or any trial trains."""
    return parse_tune_config(tune, finetune)


def build_tuning_data(config: TuneConfig, finetune: dict[str, Any], **artifacts: Any) -> Any:
    """finetune's ``TrainingData`` of the training artifacts (catalog entries of
    ``crossrec.models.inputs.TRAINING_ARTIFACTS``), with item texts when any trial can pick the
    ``llm`` fusion strategy."""
    from crossrec.models.inputs import TrainingArtifacts

    if needs_item_texts(config, finetune):
        finetune = apply_overrides(finetune, {"model.fusion.strategy": "llm"})
    return TrainingArtifacts(**artifacts).training_data(finetune)


def run_tuning(
    config: TuneConfig,
    training_data: Any,
    finetune: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """Run trials until the study holds ``n_trials``; return the study summary (JSON-ready).

    ``training_data`` is finetune's ``TrainingData`` (built by its own node function from the
    catalog artifacts). Other processes may add trials to the same study concurrently.
    """
    from crossrec.tuning.defaults import neighbour_trials, trial_zero
    from crossrec.tuning.objective import make_finetune_objective
    from crossrec.tuning.results import study_summary
    from crossrec.tuning.study import open_study, run_study

    objective = make_finetune_objective(
        training_data, finetune, config, run_root=Path(config.run_root), seed=seed
    )
    first = trial_zero(config, finetune)
    run = run_study(
        objective,
        config,
        seed,
        first_trial=first,
        neighbours=neighbour_trials(config, first, finetune),
    )
    study = open_study(config, seed)
    summary = study_summary(study, storage=run.storage, metric=config.metric)
    summary["this_run"] = {"trials": run.trials_run, "seconds": round(run.seconds, 2)}
    logger.info(
        "Study %r: %d trials %s; this run added %d in %.1f s; best %s",
        summary["study_name"],
        summary["n_trials"],
        summary["states"],
        len(run.trials_run),
        run.seconds,
        summary["best"] and summary["best"]["value"],
    )
    return summary


def export_best_parameters(
    summary: dict[str, Any],
    config: TuneConfig,
    finetune: dict[str, Any],
    seed: int,
    dataset: str,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The tuned ``finetune:`` parameters file (``--env tuned``, recording ``tuned_for``:
    this dataset and the best trial) and the trials table.

    ``summary`` only orders this node after the study; the study is read from its storage.
    """
    from crossrec.models.config import FinetuneConfig
    from crossrec.tuning.results import trials_table, tuned_finetune_block
    from crossrec.tuning.study import open_study

    study = open_study(config, seed)
    tuned = tuned_finetune_block(
        study, finetune, schema=FinetuneConfig, dataset=dataset, metric=summary["metric"]
    )
    logger.info(
        "Best trial %d (%s = %.4f) written as the finetune parameters of --env tuned: %s",
        study.best_trial.number,
        summary["metric"],
        study.best_value,
        study.best_trial.params,
    )
    return tuned, trials_table(study)


def plot_tuning(summary: dict[str, Any], config: TuneConfig, seed: int) -> tuple[Any, Any, Any]:
    """Optimisation history, parameter importances and parallel coordinates (plotly)."""
    from crossrec.tuning.results import study_plots
    from crossrec.tuning.study import open_study

    return study_plots(open_study(config, seed))
