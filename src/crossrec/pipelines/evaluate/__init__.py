"""evaluate: full-ranking metrics of the trained model vs baselines, slices, report and plots."""

from crossrec.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
