"""Schema of ``conf/base/parameters_evaluate.yml: evaluate`` and the baseline registry."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from crossrec.config import StrictConfig, where
from crossrec.registry import Registry
from crossrec.words.config import WordsConfig

#: how errors name the evaluate block
WHERE = where("evaluate")

#: baselines by name: a class with ``from_spec(spec, split, seed) -> ScoreFn`` and a
#: ``deterministic`` flag (one run instead of one per seed), or ``trained = True`` for
#: configurations of the recommender itself (``finetune``); see crossrec.evaluation.baselines
BASELINES: Registry = Registry(
    "baseline",
    ["crossrec.evaluation.baselines"],
    builtin_names=["most_popular", "item_knn", "random", "finetune", "bpr", "ease"],
)

#: the grid keys each baseline kind can search (crossrec.evaluation.selection.apply_point
#: says what each one sets); kinds not listed have nothing to search
GRID_KEYS: dict[str, tuple[str, ...]] = {
    "item_knn": ("neighbours", "shrink"),
    "ease": ("l2",),
    "bpr": ("lr", "reg", "negatives", "dim"),
    "finetune": ("lr", "reg", "weight_decay", "negatives", "dim"),
}


#: per-user ranking metrics of crossrec.metrics.ranking (what selection can maximise)
METRIC_NAMES = frozenset({"recall", "ndcg", "precision", "mrr", "hit", "map"})


class MFBPRConfig(StrictConfig):
    """``kind: bpr``: MF-BPR as Rendle et al. / Cornac (crossrec.evaluation.mf_bpr)."""

    dim: int = Field(64, ge=1)
    #: plain SGD step (Cornac's learning_rate)
    lr: float = Field(0.01, gt=0)
    #: L2 on the sampled rows, per occurrence (Cornac's lambda_reg)
    reg: float = Field(0.001, ge=0)
    #: uniform negatives per sampled positive
    negatives: int = Field(1, ge=1)
    #: learnt item bias (Cornac's use_bias)
    use_bias: bool = True
    #: samples updated at once from the same parameters (Hogwild-style, as Cornac's threads)
    batch_size: int = Field(1024, ge=1)
    max_epochs: int = Field(300, ge=1)
    #: validate (Recall@20 on the validation split) every this many epochs
    eval_every: int = Field(5, ge=1)
    #: validations without improvement before stopping (the best parameters are kept)
    patience: int = Field(10, ge=1)


class GridConfig(StrictConfig):
    """Values to try per hyperparameter; the grid is their cartesian product (unset = fixed).

    ``lr``: learning rate; ``reg``: L2 (bpr: ``reg``; finetune: ``loss.reg_weight``);
    ``weight_decay``: finetune's ``optim.weight_decay``; ``negatives``: sampled negatives per
    positive; ``dim``: embedding size; ``neighbours`` / ``shrink``: item_knn's; ``l2``: ease's.
    """

    lr: list[Annotated[float, Field(gt=0)]] | None = Field(None, min_length=1)
    reg: list[Annotated[float, Field(ge=0)]] | None = Field(None, min_length=1)
    weight_decay: list[Annotated[float, Field(ge=0)]] | None = Field(None, min_length=1)
    negatives: list[Annotated[int, Field(ge=1)]] | None = Field(None, min_length=1)
    dim: list[Annotated[int, Field(ge=1)]] | None = Field(None, min_length=1)
    neighbours: list[Annotated[int, Field(ge=1)]] | None = Field(None, min_length=1)
    shrink: list[Annotated[float, Field(ge=0)]] | None = Field(None, min_length=1)
    l2: list[Annotated[float, Field(gt=0)]] | None = Field(None, min_length=1)

    def keys(self) -> list[str]:
        """The searched keys, in schema order."""
        return [name for name in type(self).model_fields if getattr(self, name) is not None]

    def points(self) -> list[dict[str, Any]]:
        """Every configuration of the grid, the first key varying slowest."""
        keys = self.keys()
        values = [getattr(self, key) for key in keys]
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


class SelectionConfig(StrictConfig):
    """Per-baseline selection: each searched baseline trains every point of its ``grid`` with
    one seed, keeps the configuration best on the VALIDATION split, then runs its seeds (and
    the test slices) with that configuration only."""

    #: none | standalone (kinds other than finetune: ItemKNN, EASE, MF-BPR; seconds each) | all
    #: (also the finetune-kind baselines: LightGCN, VBPR, ContentOnly; one training run per
    #: grid point each)
    scope: Literal["none", "standalone", "all"] = "standalone"
    #: validation metric that picks the configuration (``name@k``, any k)
    metric: str = "recall@20"
    #: seed of the selection runs (None = the first of evaluate.seeds)
    seed: int | None = None

    @field_validator("metric")
    @classmethod
    def _metric_form(cls, metric: str) -> str:
        name, _, k = metric.partition("@")
        if name not in METRIC_NAMES or not k.isdigit():
            raise ValueError(
                f"metric must be <name>@<k> with name one of {sorted(METRIC_NAMES)}, got {metric!r}"
            )
        return metric


class BaselineConfig(StrictConfig):
    """One baseline: a simple scorer, or a FinetuneConfig variant of the trained model."""

    kind: BASELINES.name_field()  # type: ignore[valid-type]
    #: item_knn: neighbours kept per item and cosine shrinkage
    neighbours: int = Field(100, ge=1)
    shrink: float = Field(10.0, ge=0)
    #: ease: L2 weight of the item-item model (RecBole's reg_weight)
    l2: float = Field(250.0, gt=0)
    #: finetune: overrides of the trained model's finetune config (after baseline_defaults)
    overrides: dict[str, Any] = Field(default_factory=dict)
    #: finetune: keep only these modalities of fused_item_features (those the dataset has);
    #: None = all. A baseline none of whose modalities exist is skipped with a warning.
    modalities: list[str] | None = None
    #: seeds of this baseline (None = evaluate.seeds); deterministic kinds always run once
    seeds: list[int] | None = Field(None, min_length=1)
    #: false = left out of this run (kept in the file for reference)
    enabled: bool = True
    #: bpr: MF-BPR's hyperparameters (the grid's points replace some of them)
    bpr: MFBPRConfig = Field(default_factory=MFBPRConfig)
    #: values searched on validation when evaluate.selection.scope covers this baseline
    grid: GridConfig | None = None

    @model_validator(mode="after")
    def _grid_keys_fit_kind(self) -> BaselineConfig:
        if self.grid is None:
            return self
        allowed = GRID_KEYS.get(self.kind, ())
        wrong = [key for key in self.grid.keys() if key not in allowed]
        if wrong:
            raise ValueError(
                f"grid key(s) {wrong} cannot be searched for kind {self.kind!r} "
                f"(searchable: {list(allowed) or 'nothing'})"
            )
        return self


class SampleUsersConfig(StrictConfig):
    """A seeded sample of each slice's users, for catalogues too large to rank for everyone:
    users are put in one random order drawn from ``seed`` and each slice evaluates the first
    ``size`` of its own users in that order, the same users for every model (paired tests stay
    paired); metrics.json and report.md then give each metric's 95% confidence interval."""

    #: users per slice (None = every user: the full protocol, results as without sampling)
    size: int | None = Field(None, ge=1)
    seed: int = 0


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
    #: users scored per chunk (None = as many as ``score_batch_bytes`` allows)
    chunk_users: int | None = Field(None, ge=1)
    #: working memory of one chunk of users x every item (crossrec.metrics.ranking: ~28 bytes
    #: per cell), so scoring stays bounded whatever the catalogue size
    score_batch_bytes: int = Field(256 * 2**20, ge=2**20)
    #: evaluate a seeded sample of each slice's users (size None = every user)
    sample_users: SampleUsersConfig = Field(default_factory=SampleUsersConfig)
    #: per-modality ablation of the trained model at inference time
    ablation: bool = True
    #: what content is worth, trained both ways: the model's own configuration retrained
    #: without content (``content``), and also without each modality in turn (``modalities``),
    #: every seed, paired over users against the model. One finetune run per variant and seed.
    trained_ablation: Literal["none", "content", "modalities"] = "none"
    #: report Recall@k by the held-out item's train popularity in this many buckets (each about
    #: 1/n of the held-out pairs): where the hits come from, head or tail; 0 or 1 = off
    popularity_buckets: int = Field(5, ge=0)
    significance_metrics: list[str] = Field(default_factory=lambda: ["recall@20", "ndcg@20"])
    significance_slices: list[str] = Field(default_factory=lambda: ["test", "test_cold"])
    alpha: float = Field(0.05, gt=0, lt=1)
    #: overrides applied to every finetune-kind baseline before its own (e.g. fewer epochs)
    baseline_defaults: dict[str, Any] = Field(default_factory=dict)
    baselines: dict[str, BaselineConfig] = Field(default_factory=dict)
    #: which baselines pick their configuration from their grid on validation
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    #: worker processes for the independent training runs (extra seeds, baseline seeds, grid
    #: points; crossrec.evaluation.jobs): auto = usable cores // torch threads per run, at most
    #: one per run, 1 on CUDA; 1 = in this process, one run after the other
    workers: Literal["auto"] | Annotated[int, Field(ge=1)] = "auto"
    #: requests in words (``word_requests``): the ``words`` block of metrics.json
    words: WordsConfig = Field(default_factory=WordsConfig)

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
