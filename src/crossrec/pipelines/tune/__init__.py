"""tune: Optuna sweeps over the finetune configuration (see docs/tuning.md)."""

from crossrec.pipelines.tune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
