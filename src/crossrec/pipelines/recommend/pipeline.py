"""recommend: the newest model (trained_model, or the latest refreshed_model of its chain) ->
recommendations (top-K per user) + similar_items (per item) + word_recommendations (lists
for a file of requests in words, when there is one)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from crossrec.pipelines.recommend import nodes
from crossrec.serving.config import ARTIFACTS


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.load_serving_model,
                # metrics only feed serve's model card: the lists do not wait for evaluate
                {
                    "recommend": "params:recommend",
                    "fuse": "params:fuse",
                    "refresh_previous": "refresh_previous",
                    **{n: n for n in ARTIFACTS if n != "metrics"},
                },
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
            Node(
                nodes.recommend_word_queries,
                ["recommend_serving_model", "word_queries", "params:recommend"],
                "word_recommendations",
                name="recommend_word_queries",
            ),
        ]
    )
