"""Per-baseline hyperparameter selection on the validation split.

Every searched baseline gets the same budget shape: each point of its grid
(:class:`crossrec.evaluation.config.GridConfig`) trains once with one seed and early stopping,
is scored on the VALIDATION slice only, and the best point (first one on ties, in grid order)
is the configuration its seeds then run with; the test slices are evaluated for that
configuration alone. Pure functions here; the runner does the training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crossrec.config import deep_merge
from crossrec.evaluation.config import BaselineConfig, SelectionConfig

#: finetune overrides each grid key sets (crossrec.models.config.FinetuneConfig paths)
FINETUNE_PATHS: dict[str, tuple[str, str]] = {
    "lr": ("optim", "lr"),
    "reg": ("loss", "reg_weight"),
    "weight_decay": ("optim", "weight_decay"),
    "negatives": ("data", "num_negatives"),
    "dim": ("model", "embedding_dim"),
}


def is_searched(spec: BaselineConfig, selection: SelectionConfig) -> bool:
    """Whether ``selection.scope`` covers this baseline (and it has a grid to search)."""
    if spec.grid is None or not spec.grid.points() or selection.scope == "none":
        return False
    return selection.scope == "all" or spec.kind != "finetune"


def apply_point(spec: BaselineConfig, point: dict[str, Any]) -> BaselineConfig:
    """``spec`` with one grid point's values in the place its kind reads them."""
    if spec.kind == "finetune":
        overrides: dict[str, Any] = {}
        for key, value in point.items():
            block, name = FINETUNE_PATHS[key]
            overrides = deep_merge(overrides, {block: {name: value}})
        return spec.model_copy(update={"overrides": deep_merge(spec.overrides, overrides)})
    if spec.kind == "bpr":
        return spec.model_copy(update={"bpr": spec.bpr.model_copy(update=point)})
    return spec.model_copy(update=point)


def select(
    spec: BaselineConfig, score: Callable[[int, BaselineConfig], tuple[float, Any]]
) -> tuple[int, list[dict[str, Any]], Any]:
    """Score every grid point with ``score(index, spec) -> (validation value, artefact)``
    (``index`` into ``spec.grid.points()``: the runner trains every point first, in parallel).

    Returns the index of the best point, one ``{"config", "valid"}`` row per point, and the
    best point's artefact (e.g. its trained scorer, reused for the selection seed).
    """
    assert spec.grid is not None
    trials, best, best_value, kept = [], -1, float("-inf"), None
    for index, point in enumerate(spec.grid.points()):
        value, artefact = score(index, apply_point(spec, point))
        trials.append({"config": point, "valid": float(value)})
        if value > best_value:
            best, best_value, kept = index, value, artefact
    if best < 0:  # every point scored NaN: keep the first, say so in the trials
        best = 0
    return best, trials, kept
