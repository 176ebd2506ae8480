"""evaluate: trained model (several seeds) + baselines + modality ablation (at inference, and
retrained without content when asked) -> metrics & report."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from crossrec.models.inputs import TRAINING_ARTIFACTS
from crossrec.pipelines.evaluate import nodes

#: what finetune trained from: every retrained seed, baseline and ablation is rebuilt from it
ARTIFACTS = {name: name for name in TRAINING_ARTIFACTS}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.prepare_evaluation,
                ["interactions", "items", "dataset_info", "params:evaluate"],
                "evaluate_split",
                name="prepare_evaluation",
            ),
            Node(
                nodes.evaluate_trained_model,
                {
                    "trained_model": "trained_model",
                    "split": "evaluate_split",
                    "params": "params:evaluate",
                    "seed": "params:seed",
                    **ARTIFACTS,
                },
                "evaluate_model_runs",
                name="evaluate_trained_model",
            ),
            Node(
                nodes.evaluate_baselines,
                {
                    "trained_model": "trained_model",
                    "split": "evaluate_split",
                    "params": "params:evaluate",
                    **ARTIFACTS,
                },
                "evaluate_baseline_runs",
                name="evaluate_baselines",
            ),
            Node(
                nodes.evaluate_modality_ablation,
                {
                    "model_runs": "evaluate_model_runs",
                    "split": "evaluate_split",
                    "params": "params:evaluate",
                    **ARTIFACTS,
                },
                "evaluate_ablation_runs",
                name="evaluate_modality_ablation",
            ),
            Node(
                nodes.evaluate_words,
                {
                    "model_runs": "evaluate_model_runs",
                    "requests": "word_requests",
                    "split": "evaluate_split",
                    "params": "params:evaluate",
                    **ARTIFACTS,
                },
                "evaluate_word_runs",
                name="evaluate_words",
            ),
            Node(
                nodes.evaluate_cold_users,
                {
                    "model_runs": "evaluate_model_runs",
                    "users": "users",
                    "split": "evaluate_split",
                    "params": "params:evaluate",
                    **ARTIFACTS,
                },
                "evaluate_cold_user_runs",
                name="evaluate_cold_users",
            ),
            Node(
                nodes.summarize_evaluation,
                [
                    "evaluate_model_runs",
                    "evaluate_baseline_runs",
                    "evaluate_ablation_runs",
                    "evaluate_word_runs",
                    "evaluate_cold_user_runs",
                    "params:evaluate",
                ],
                ["metrics", "significance", "evaluation_timings"],
                name="summarize_evaluation",
            ),
            Node(
                nodes.per_user_table,
                ["evaluate_model_runs", "evaluate_baseline_runs", "evaluate_ablation_runs"],
                "per_user_metrics",
                name="export_per_user_metrics",
            ),
            Node(
                nodes.write_report,
                [
                    "metrics",
                    "significance",
                    "evaluation_timings",
                    "training_history",
                    "dataset_info",
                    "params:evaluate",
                    "trained_model",
                    "llm_before_after",
                    "modality_graph_report",
                ],
                [
                    "evaluation_report",
                    "plot_metric_at_k",
                    "plot_slices",
                    "plot_modality_ablation",
                    "plot_training_curves",
                ],
                name="write_report",
            ),
        ]
    )
