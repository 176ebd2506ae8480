"""recommend nodes: rebuild the trained model for serving, then write its lists as tables.

Heavy imports (torch) happen inside crossrec.serving's functions so the registry stays fast.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from crossrec.serving.config import parse_recommend_config


def load_serving_model(
    trained_model: dict,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame,
    dataset_info: dict,
    fused_item_features: dict,
    modality_graphs: dict,
    user_item_graph: Any,
    item_texts: list[str] | None,
    recommend: dict[str, Any],
):
    """The trained model with its user and item vectors (exact search: every list is exact)."""
    from crossrec.serving.model import Artifacts, ServingModel

    artifacts = Artifacts(
        trained_model=trained_model,
        interactions=interactions,
        items=items,
        users=users,
        dataset_info=dataset_info,
        fused_item_features=fused_item_features,
        modality_graphs=modality_graphs,
        user_item_graph=user_item_graph,
        item_texts=item_texts,
    )
    return ServingModel.from_artifacts(artifacts, parse_recommend_config(recommend), "exact")


def recommend_all_users(serving, recommend: dict[str, Any]) -> pd.DataFrame:
    """Top-K unseen items per user, chunked over users (evaluation's memory bound)."""
    from crossrec.serving.batch import recommendations_table

    config = parse_recommend_config(recommend)
    return recommendations_table(
        serving.catalogue, config.top_k, serving.fingerprint, config.chunk_users
    )


def similar_items_all(serving, recommend: dict[str, Any]) -> pd.DataFrame:
    """K most similar items per item, by the model's item vectors and by each modality."""
    from crossrec.serving.batch import similar_items_table

    config = parse_recommend_config(recommend)
    return similar_items_table(serving.catalogue, config.similar_k, serving.fingerprint)
