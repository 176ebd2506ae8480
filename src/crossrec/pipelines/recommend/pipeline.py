"""recommend: trained_model -> recommendations (top-K per user) + similar_items (per item)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from crossrec.pipelines.recommend import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.load_serving_model,
                [
                    "trained_model",
                    "interactions",
                    "items",
                    "users",
                    "dataset_info",
                    "fused_item_features",
                    "modality_graphs",
                    "user_item_graph",
                    "item_texts",
                    "params:recommend",
                ],
                "recommend_serving_model",
                name="load_serving_model",
            ),
            Node(
                nodes.recommend_all_users,
                ["recommend_serving_model", "params:recommend"],
                "recommendations",
                name="recommend_all_users",
            ),
            Node(
                nodes.similar_items_all,
                ["recommend_serving_model", "params:recommend"],
                "similar_items",
                name="similar_items_all",
            ),
        ]
    )
