"""evaluate nodes: parse ``params:evaluate`` and make one call into
:mod:`crossrec.evaluation.runner`, :mod:`~crossrec.evaluation.summary` or
:mod:`crossrec.evaluation.report` each.

Heavy libraries (torch, lightning) are imported by the runner when it trains or scores, so the
pipeline registry stays fast.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from crossrec.config import parse_params
from crossrec.evaluation import runner, summary
from crossrec.evaluation.config import WHERE, EvaluateConfig
from crossrec.evaluation.protocol import EvalSplit, require_held_out_rows
from crossrec.models.inputs import TrainingArtifacts


def _config(params: dict | EvaluateConfig) -> EvaluateConfig:
    return parse_params(EvaluateConfig, params, where=WHERE)


def prepare_evaluation(
    interactions: pd.DataFrame, items: pd.DataFrame, dataset_info: dict, params: dict
) -> EvalSplit:
    """Split matrices and item/user facts shared by every model evaluated."""
    split = runner.prepare_split(interactions, items, dataset_info, _config(params))
    require_held_out_rows(split)
    return split


def _evaluation(split: EvalSplit, params: dict, artifacts: dict[str, Any]) -> runner.Evaluation:
    return runner.Evaluation(_config(params), split, TrainingArtifacts(**artifacts))


def evaluate_trained_model(
    trained_model: dict, split: EvalSplit, params: dict, seed: int, **artifacts: Any
) -> dict:
    """The trained model on every slice, for every seed in ``evaluate.seeds``.
    ``artifacts``: the catalog entries of ``crossrec.models.inputs.TRAINING_ARTIFACTS``."""
    return _evaluation(split, params, artifacts).model_runs(trained_model, int(seed))


def evaluate_baselines(trained_model: dict, split: EvalSplit, params: dict, **artifacts: Any):
    """Every baseline on the same split, slices and ranking code as the trained model."""
    return _evaluation(split, params, artifacts).baseline_runs(trained_model)


def evaluate_modality_ablation(model_runs: dict, split: EvalSplit, params: dict, **artifacts):
    """The trained model (every seed) with one modality removed at inference time, and
    (``evaluate.trained_ablation``) its configuration retrained without content / each
    modality."""
    return _evaluation(split, params, artifacts).ablation_runs(model_runs)


def per_user_table(model_runs: dict, baseline_runs: dict, ablation_runs: dict) -> pd.DataFrame:
    """One row per (model, seed, slice, user), one column per metric."""
    return summary.per_user_table(model_runs, baseline_runs, ablation_runs)


def evaluate_words(model_runs: dict, requests, split: EvalSplit, params: dict, **artifacts):
    """Requests in words: history only, words only, words + history (``metrics.json: words``)."""
    artifacts = TrainingArtifacts(**artifacts)
    return runner.words_runs(_config(params), split, artifacts, model_runs, requests)


def evaluate_cold_users(model_runs: dict, users, split: EvalSplit, params: dict, **artifacts):
    """Users without history, from their attributes (``metrics.json: cold_users``)."""
    artifacts = TrainingArtifacts(**artifacts)
    return runner.cold_user_runs(_config(params), split, artifacts, model_runs, users)


def summarize_evaluation(model_runs, baseline_runs, ablation_runs, words, cold_users, params):
    """metrics.json, significance tests and timings."""
    cfg = _config(params)
    return summary.summarize(cfg, model_runs, baseline_runs, ablation_runs, words, cold_users)


def write_report(
    metrics: dict,
    significance: dict,
    timings: dict,
    training_history: pd.DataFrame,
    dataset_info: dict,
    params: dict,
    trained_model: dict | None = None,
    llm_before_after: dict | None = None,
    modality_graph_report: dict | None = None,
):
    """report.md and the figures (+ "before vs after fine-tuning" for an LLM model, and fuse's
    modality lift when it wrote one)."""
    from crossrec.evaluation.report import build_report

    config = (trained_model or {}).get("config", {})
    strategy = config.get("model", {}).get("fusion", {}).get("strategy")
    return build_report(
        metrics,
        significance,
        timings,
        training_history,
        dataset_info,
        _config(params),
        before_after=llm_before_after if strategy == "llm" else None,
        modality_lift=modality_graph_report,
    )
