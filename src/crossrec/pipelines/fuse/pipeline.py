"""fuse: the collaborative structure and fused content that finetune consumes."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from crossrec.pipelines.fuse import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """Outputs (catalog_fuse.yml): fused_item_features, modality_graphs, user_item_graph,
    modality_graph_report."""
    return Pipeline(
        [
            Node(
                nodes.fuse_item_features,
                ["item_features", "dataset_info", "params:fuse"],
                "fused_item_features",
                name="fuse_item_features",
            ),
            Node(
                nodes.build_modality_graphs,
                ["fused_item_features", "interactions", "dataset_info", "params:fuse"],
                "modality_graphs",
                name="build_modality_graphs",
            ),
            Node(
                nodes.report_modality_graphs,
                ["modality_graphs", "interactions", "dataset_info"],
                "modality_graph_report",
                name="report_modality_graphs",
            ),
            Node(
                nodes.build_user_item_graph,
                ["interactions", "dataset_info"],
                "user_item_graph",
                name="build_user_item_graph",
            ),
        ]
    )
