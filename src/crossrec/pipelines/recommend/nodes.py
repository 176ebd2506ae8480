"""recommend nodes: rebuild the trained model for serving, then write its lists as tables.

Heavy imports (torch) happen inside crossrec.serving's functions so the registry stays fast.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from crossrec.graphs.config import parse_fuse_params
from crossrec.refresh.state import serving_artifacts
from crossrec.serving.config import parse_recommend_config


def load_serving_model(
    recommend: dict[str, Any], fuse: dict[str, Any], refresh_previous: dict | None, **artifacts: Any
):
    """The newest model (the trained one, or the latest refresh of it) with its user and item
    vectors; lists are exact below ``recommend.ann.min_items`` items and come from the faiss
    index from there on, as in serving. ``artifacts``: the catalog entries named in
    ``crossrec.serving.config.ARTIFACTS``; ``refresh_previous``: the newest refreshed_model."""
    from crossrec.serving.model import Artifacts, ServingModel

    config = parse_recommend_config(recommend)
    artifacts, _ = serving_artifacts(artifacts, refresh_previous, parse_fuse_params(fuse))
    return ServingModel.from_artifacts(Artifacts(**artifacts), config)


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
    return similar_items_table(
        serving.catalogue,
        config.similar_k,
        serving.fingerprint,
        config.ann,
        serving.artifacts.modality_graphs,
    )


def recommend_word_queries(serving, word_queries: pd.DataFrame | None, recommend: dict[str, Any]):
    """Lists for a file of requests in words (``word_queries``: columns user, query, liked);
    no file: an empty table."""
    from crossrec.serving.batch import word_recommendations_table

    config = parse_recommend_config(recommend)
    if word_queries is None:
        word_queries = pd.DataFrame(columns=["user", "query", "liked"])
    return word_recommendations_table(
        serving, word_queries, config.top_k, "word_queries (conf/base/catalog_recommend.yml)"
    )
