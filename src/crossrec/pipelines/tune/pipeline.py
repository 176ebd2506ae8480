"""tune: validate search space -> training data -> Optuna study -> best parameters + plots."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from crossrec.models.inputs import TRAINING_ARTIFACTS
from crossrec.pipelines.tune import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """Outputs (catalog_tune.yml): tune_summary, tune_trials, tuned_finetune_parameters
    (conf/tuned/parameters_finetune.yml) and three plotly figures. The study is in the RDB."""
    return Pipeline(
        [
            Node(nodes.validate_tuning, ["params:tune", "params:finetune"], "tune_config",
                 name="validate_tuning"),
            Node(nodes.build_tuning_data,
                 {"config": "tune_config", "finetune": "params:finetune",
                  **{name: name for name in TRAINING_ARTIFACTS}},
                 "tune_training_data", name="build_tuning_data"),
            Node(nodes.run_tuning,
                 ["tune_config", "tune_training_data", "params:finetune", "params:seed"],
                 "tune_summary", name="run_tuning"),
            Node(nodes.export_best_parameters,
                 ["tune_summary", "tune_config", "params:finetune", "params:seed",
                  "params:dataset"],
                 ["tuned_finetune_parameters", "tune_trials"], name="export_best_parameters"),
            Node(nodes.plot_tuning, ["tune_summary", "tune_config", "params:seed"],
                 ["tune_history_plot", "tune_importance_plot", "tune_parallel_plot"],
                 name="plot_tuning"),
        ]
    )
