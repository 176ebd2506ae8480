"""finetune: (interactions, fuse outputs) -> training data -> trained_model + training_history."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from crossrec.pipelines.finetune import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """Outputs (catalog_finetune.yml): trained_model (versioned pickle), training_history (csv)."""
    return Pipeline(
        [
            Node(
                nodes.build_training_data,
                [
                    "interactions",
                    "items",
                    "dataset_info",
                    "fused_item_features",
                    "modality_graphs",
                    "user_item_graph",
                    "params:finetune",
                    "item_texts",
                ],
                "finetune_training_data",
                name="build_training_data",
            ),
            Node(
                nodes.train_model,
                ["finetune_training_data", "params:finetune", "params:seed", "params:dataset"],
                ["trained_model", "training_history"],
                name="train_model",
            ),
        ]
    )
