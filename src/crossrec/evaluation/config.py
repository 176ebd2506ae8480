"""Schema of ``conf/base/parameters_evaluate.yml: evaluate`` and the baseline registry."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from crossrec.config import StrictConfig
from crossrec.registry import Registry

#: baselines by name: a class with ``from_spec(spec, split, seed) -> ScoreFn`` and a
#: ``deterministic`` flag (one run instead of one per seed), or ``trained = True`` for
#: configurations of the recommender itself (``finetune``); see crossrec.evaluation.baselines
BASELINES: Registry = Registry(
    "baseline",
    ["crossrec.evaluation.baselines"],
    builtin_names=["most_popular", "item_knn", "random", "finetune"],
)


class BaselineConfig(StrictConfig):
    """One baseline: a simple scorer, or a FinetuneConfig variant of the trained model."""

    kind: BASELINES.name_field()  # type: ignore[valid-type]
    #: item_knn: neighbours kept per item and cosine shrinkage
    neighbours: int = Field(100, ge=1)
    shrink: float = Field(10.0, ge=0)
    #: finetune: overrides of the trained model's finetune config (after baseline_defaults)
    overrides: dict[str, Any] = Field(default_factory=dict)
    #: finetune: keep only these modalities of fused_item_features (those the dataset has);
    #: None = all. A baseline none of whose modalities exist is skipped with a warning.
    modalities: list[str] | None = None
    #: seeds of this baseline (None = evaluate.seeds); deterministic kinds always run once
    seeds: list[int] | None = Field(None, min_length=1)
    #: false = left out of this run (kept in the file for reference)
    enabled: bool = True


class EvaluateConfig(StrictConfig):
    """The whole ``evaluate:`` block."""

    model_name: str = "crossrec"
    ks: list[int] = Field(default_factory=lambda: [10, 20, 50])
    #: K of the beyond-accuracy measures, the slice tables and the plots
    k: int = Field(20, ge=1)
    slices: list[str] = Field(default_factory=lambda: ["valid", "test", "test_warm", "test_cold"])
    #: users bucketed by training-history length at these quantiles (empty = no buckets)
    history_quantiles: list[float] = Field(default_factory=lambda: [0.33, 0.67])
    #: seeds of the trained model and of every trained baseline (mean ± std over them); the
    #: trained_model artifact is reused for the seed it was trained with
    seeds: list[int] = Field(default_factory=lambda: [2026, 2027, 2028], min_length=1)
    #: order of tied scores: random (a permutation drawn from tie_break_seed, shared by every
    #: model) or index (item index; ids often encode release order or popularity)
    tie_break: Literal["random", "index"] = "random"
    tie_break_seed: int = 0
    #: auto = cuda when available
    device: str = "auto"
    #: users scored per chunk (None = from a 256 MiB budget, see crossrec.metrics.ranking)
    chunk_users: int | None = Field(None, ge=1)
    #: per-modality ablation of the trained model at inference time
    ablation: bool = True
    significance_metrics: list[str] = Field(default_factory=lambda: ["recall@20", "ndcg@20"])
    significance_slices: list[str] = Field(default_factory=lambda: ["test", "test_cold"])
    alpha: float = Field(0.05, gt=0, lt=1)
    #: overrides applied to every finetune-kind baseline before its own (e.g. fewer epochs)
    baseline_defaults: dict[str, Any] = Field(default_factory=dict)
    baselines: dict[str, BaselineConfig] = Field(default_factory=dict)

    @field_validator("ks")
    @classmethod
    def _positive_ks(cls, ks: list[int]) -> list[int]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError("ks must be a non-empty list of positive integers")
        return sorted(set(ks))

    @field_validator("history_quantiles")
    @classmethod
    def _quantiles(cls, values: list[float]) -> list[float]:
        if any(not 0 < q < 1 for q in values):
            raise ValueError("history_quantiles must lie strictly between 0 and 1")
        return sorted(values)

    @model_validator(mode="after")
    def _k_in_ks(self) -> EvaluateConfig:
        if self.k not in self.ks:
            raise ValueError(f"k={self.k} must be one of ks={self.ks}")
        return self
