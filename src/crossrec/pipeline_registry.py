"""Project pipelines, discovered with ``find_pipelines``.

Pipeline modules import only Kedro and their own ``nodes`` module; heavy libraries (torch,
transformers, lightning) are imported inside node functions or model modules so that
``kedro registry list`` stays fast.
"""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: The order of the default chain; ``tune`` is run on its own.
DEFAULT_CHAIN = ("ingest", "featurize_modalities", "fuse", "finetune", "evaluate")


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline folder; ``__default__`` is the ingest → evaluate chain."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in DEFAULT_CHAIN if name in pipelines), Pipeline([])
    )
    return pipelines
