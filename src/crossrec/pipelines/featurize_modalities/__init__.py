"""featurize_modalities: item media -> per-modality vectors (text, image, audio, precomputed)."""

from crossrec.pipelines.featurize_modalities.pipeline import create_pipeline

__all__ = ["create_pipeline"]
