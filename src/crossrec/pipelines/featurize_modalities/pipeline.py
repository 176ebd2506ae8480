"""featurize_modalities: one node per raw modality (each with its own embedding cache), then
assembly with the dataset's precomputed matrices into ``item_features``."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from crossrec.pipelines.featurize_modalities import nodes

_COMMON = ["items", "dataset_info", "params:featurize_modalities"]
#: The bad-media budget is ingest's (one per run), checked on ingest's report + featurize's.
_MEDIA = ["media_report", "params:ingest", "params:dataset"]


def create_pipeline(**kwargs) -> Pipeline:
    """Outputs (catalog_featurize_modalities.yml): item_features, featurize_report, item_texts,
    merged_media_report (ingest's media_report plus the files that failed to encode)."""
    return Pipeline(
        [
            Node(
                nodes.render_item_texts,
                _COMMON,
                "item_texts",
                name="render_item_texts",
            ),
            Node(
                nodes.encode_text,
                [*_COMMON, "text_embedding_cache"],
                "featurize_text_result",
                name="encode_text",
            ),
            Node(
                nodes.encode_images,
                [*_COMMON, "image_embedding_cache", *_MEDIA],
                "featurize_image_result",
                name="encode_images",
            ),
            Node(
                nodes.encode_audio,
                [*_COMMON, "audio_embedding_cache", *_MEDIA],
                "featurize_audio_result",
                name="encode_audio",
            ),
            Node(
                nodes.encode_attributes,
                _COMMON,
                "featurize_attributes_result",
                name="encode_attributes",
            ),
            Node(
                nodes.assemble_item_features,
                [
                    "featurize_text_result",
                    "featurize_image_result",
                    "featurize_audio_result",
                    "featurize_attributes_result",
                    "precomputed_features",
                    "dataset_info",
                    "params:featurize_modalities",
                    "media_report",
                ],
                ["item_features", "featurize_report", "merged_media_report"],
                name="assemble_item_features",
            ),
        ]
    )
