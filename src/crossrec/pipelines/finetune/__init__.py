"""finetune: train the multimodal recommender with Lightning (see crossrec.models)."""

from crossrec.pipelines.finetune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
