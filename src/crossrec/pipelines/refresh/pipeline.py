"""refresh: increments -> grown tables -> new items encoded -> warm-started fine-tuning ->
a new ``refreshed_model`` version (model + its data, one atomic file)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from crossrec.pipelines.refresh import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """Outputs (catalog_refresh.yml): refreshed_model (versioned), refresh_report,
    refresh_history."""
    return Pipeline(
        [
            Node(
                nodes.start_refresh,
                [
                    "refresh_previous",
                    "interactions",
                    "items",
                    "users",
                    "dataset_info",
                    "item_features",
                    "item_texts",
                    "trained_model",
                ],
                "refresh_start",
                name="start_refresh",
            ),
            Node(
                nodes.apply_increments,
                [
                    "refresh_start",
                    "params:refresh",
                    "params:ingest",
                    "params:dataset",
                    "params:seed",
                ],
                ["refresh_tables", "increment_report"],
                name="apply_increments",
            ),
            Node(
                nodes.encode_new_items,
                [
                    "refresh_start",
                    "refresh_tables",
                    "params:featurize_modalities",
                    "text_embedding_cache",
                    "image_embedding_cache",
                    "audio_embedding_cache",
                    "params:ingest",
                    "params:dataset",
                ],
                ["refresh_item_features", "refresh_item_texts"],
                name="encode_new_items",
            ),
            Node(
                nodes.fine_tune,
                [
                    "refresh_start",
                    "refresh_tables",
                    "refresh_item_features",
                    "refresh_item_texts",
                    "increment_report",
                    "params:fuse",
                    "params:refresh",
                    "params:seed",
                    "params:dataset",
                ],
                ["refreshed_model", "refresh_report", "refresh_history"],
                name="refresh_model",
            ),
        ]
    )
