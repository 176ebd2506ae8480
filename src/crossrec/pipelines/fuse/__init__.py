"""fuse: item features + train interactions -> fused features, kNN item graphs, user-item graph."""

from crossrec.pipelines.fuse.pipeline import create_pipeline

__all__ = ["create_pipeline"]
