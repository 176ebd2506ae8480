"""What a finished study leaves: a tuned ``finetune:`` block, a summary, a trials table, plots."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import optuna
import pandas as pd
from optuna.study import Study
from optuna.trial import TrialState

from crossrec.config import deep_merge, parse_params
from crossrec.tuning.space import apply_overrides

logger = logging.getLogger(__name__)

#: user attribute holding what a trial changed in the finetune block (search groups expanded
#: into their keys): what the export writes
OVERRIDES_ATTR = "finetune_overrides"
#: user attribute marking the trials the study enqueued (``defaults`` / ``neighbour``)
ENQUEUED_ATTR = "enqueued"


def trial_overrides_of(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The finetune keys a trial set: recorded by the objective, else its Optuna params (a
    study from before search groups, whose params are all finetune keys)."""
    return dict(trial.user_attrs.get(OVERRIDES_ATTR) or trial.params)


def completed_trials(study: Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def study_summary(study: Study, storage: str, metric: str) -> dict[str, Any]:
    """JSON-ready counts by state, the best trial and when trials ran."""
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    summary: dict[str, Any] = {
        "study_name": study.study_name,
        "storage": storage,
        "metric": metric,
        "direction": study.direction.name.lower(),
        "n_trials": len(trials),
        "states": dict(sorted(states.items())),
        "best": None,
    }
    if completed_trials(study):
        best = study.best_trial
        summary["best"] = {
            "number": best.number,
            "value": best.value,
            "params": best.params,
            "user_attrs": best.user_attrs,
        }
    return summary


def tuned_finetune_block(
    study: Study,
    finetune_params: Mapping[str, Any],
    schema: type | None = None,
    dataset: str | None = None,
    metric: str | None = None,
) -> dict[str, Any]:
    """``{"finetune": <the best trial's values as a nested block>}``.

    Only the tuned keys are written: the project soft-merges parameters across environments
    (``settings.py``), so ``--env tuned`` overrides exactly these and keeps every other base
    setting (later edits of the base file included). The merged result is validated with
    ``schema`` first, so the file written is one finetune accepts. With ``dataset``, the block
    also records ``tuned_for`` (dataset, study, trial, ``metric``, value): values chosen on one
    dataset's validation split must not be applied to another without a word.
    """
    if not completed_trials(study):
        raise ValueError(
            f"study {study.study_name!r} has no completed trial: nothing to export "
            "(every trial was pruned or failed; relax the pruner or raise n_trials)"
        )
    block = apply_overrides({}, trial_overrides_of(study.best_trial))
    if dataset is not None:
        block["tuned_for"] = {
            "dataset": dataset,
            "study": study.study_name,
            "trial": study.best_trial.number,
            "metric": metric or "objective",
            "value": float(study.best_value),
        }
    if schema is not None:
        merged = deep_merge(dict(finetune_params), block)
        parse_params(schema, merged, where=f"best trial of study {study.study_name!r}")
    return {"finetune": block}


def trials_table(study: Study) -> pd.DataFrame:
    """One row per trial: number, state, value, params, durations (Optuna's trials_dataframe),
    and ``enqueued``: ``defaults`` / ``neighbour`` for the trials the study enqueued, empty
    for sampled ones (a sampled trial that beats the neighbours is what the sampler is for)."""
    frame = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params"))
    if "duration" in frame:
        frame["duration_s"] = frame.pop("duration").dt.total_seconds()
    trials = study.get_trials(deepcopy=False)
    marks = {t.number: t.user_attrs.get(ENQUEUED_ATTR, "") for t in trials}
    numbers = frame["number"] if "number" in frame else []
    frame.insert(min(1, frame.shape[1]), "enqueued", [marks.get(n, "") for n in numbers])
    return frame


def _placeholder(title: str, reason: str) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    figure.update_layout(title=title)
    figure.add_annotation(text=reason, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return figure


def study_plots(study: Study) -> tuple[Any, Any, Any]:
    """Optimisation history, parameter importances and parallel coordinates (plotly figures).

    Importances need at least two completed trials with varying parameters; otherwise a figure
    says why instead of failing the run.
    """
    from optuna import visualization as vis

    history = vis.plot_optimization_history(study)
    n_complete = len(completed_trials(study))
    if n_complete >= 2:
        try:
            importance = vis.plot_param_importances(study)
        except (RuntimeError, ValueError) as err:  # e.g. every trial sampled the same values
            logger.warning("parameter importances unavailable: %s", err)
            importance = _placeholder("Hyperparameter Importances", str(err))
    else:
        importance = _placeholder(
            "Hyperparameter Importances",
            f"needs at least 2 completed trials (the study has {n_complete})",
        )
    parallel = vis.plot_parallel_coordinate(study)
    return history, importance, parallel
