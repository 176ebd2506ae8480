"""recommend: top-K lists for every user and similar items for every item (crossrec.serving)."""

from crossrec.pipelines.recommend.pipeline import create_pipeline

__all__ = ["create_pipeline"]
