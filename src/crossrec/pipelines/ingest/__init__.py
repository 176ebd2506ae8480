"""The ingest pipeline: raw multimodal dataset -> validated, indexed, split tables."""

from crossrec.pipelines.ingest.pipeline import create_pipeline

__all__ = ["create_pipeline"]
