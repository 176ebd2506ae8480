"""ingest: read (adapter) -> clean -> k-core -> media check -> index -> split -> summary."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from crossrec.pipelines.ingest import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """Outputs (catalog_ingest.yml): interactions, items, users, dataset_info,
    precomputed_features, media_report, data_summary, word_requests."""
    return Pipeline(
        [
            Node(nodes.load_raw_dataset, ["params:ingest", "params:dataset"], "ingest_raw",
                 name="load_raw_dataset"),
            Node(nodes.clean_dataset, ["ingest_raw", "params:ingest", "params:dataset"],
                 "ingest_clean", name="clean_dataset"),
            Node(nodes.filter_dataset, ["ingest_clean", "params:ingest", "params:dataset"],
                 "ingest_filtered", name="filter_dataset"),
            Node(nodes.check_dataset_media, ["ingest_filtered", "params:ingest",
                                             "params:dataset"],
                 ["ingest_checked", "media_report"], name="check_dataset_media"),
            Node(nodes.index_dataset, "ingest_checked",
                 ["ingest_indexed_interactions", "ingest_indexed_items", "ingest_indexed_users",
                  "precomputed_features", "ingest_meta"], name="index_dataset"),
            Node(nodes.describe_users, ["ingest_indexed_users", "params:ingest", "params:dataset"],
                 "users", name="describe_users"),
            Node(nodes.split_dataset,
                 ["ingest_indexed_interactions", "ingest_indexed_items", "precomputed_features",
                  "ingest_meta", "params:ingest", "params:dataset", "params:seed"],
                 ["interactions", "ingest_split_items", "dataset_info"], name="split_dataset"),
            Node(nodes.attach_words,
                 ["interactions", "ingest_split_items", "users", "params:ingest",
                  "params:dataset"],
                 ["items", "word_requests"], name="attach_words"),
            Node(nodes.summarize_dataset,
                 ["interactions", "items", "dataset_info", "media_report",
                  "precomputed_features"], "data_summary",
                 name="summarize_dataset"),
        ]
    )
