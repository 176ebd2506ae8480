"""refresh: fold new increments into the latest model (warm start + bounded fine-tuning)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
