"""Schema of ``conf/base/parameters_tune.yml: tune``."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import Field, model_validator

from crossrec.config import StrictConfig, parse_params, where
from crossrec.tuning.groups import SearchGroup, check_groups, group_keys, structure_problems
from crossrec.tuning.space import ParamSpec, apply_overrides, check_search_space

logger = logging.getLogger(__name__)


class StorageConfig(StrictConfig):
    """Where the study lives: any SQLAlchemy URL Optuna's ``RDBStorage`` accepts."""

    #: sqlite:///relative/path.db (relative to the working directory), sqlite:////abs/path.db,
    #: postgresql+psycopg2://user:pass@host:5432/db (needs the ``postgres`` extra)
    url: str
    #: SQLite: seconds a connection waits on a locked database before failing
    timeout_s: float = Field(60.0, gt=0)
    #: a running trial records a heartbeat this often; trials of killed processes are marked
    #: FAIL after ``grace_period_s`` (default 2 x interval) and re-run. None disables it.
    heartbeat_interval_s: int | None = Field(30, ge=1)
    grace_period_s: int | None = Field(None, ge=1)


class SamplerConfig(StrictConfig):
    type: Literal["tpe", "random"] = "tpe"
    #: None = the project seed (params:seed); trial k samples with seed + k
    seed: int | None = None
    n_startup_trials: int = Field(6, ge=0)
    multivariate: bool = True
    #: TPE: treat running trials of other workers as bad, so parallel workers spread out
    constant_liar: bool = True


class PrunerConfig(StrictConfig):
    """median / percentile: compare with earlier trials at the same epoch; hyperband: brackets."""

    type: Literal["median", "percentile", "hyperband", "none"] = "median"
    #: median / percentile: trials that run to the end before pruning starts
    n_startup_trials: int = Field(5, ge=0)
    #: median / percentile: epochs a trial runs before it can be pruned
    n_warmup_steps: int = Field(5, ge=0)
    interval_steps: int = Field(1, ge=1)
    #: percentile: prune when below this percentile of earlier trials (median = 50)
    percentile: float = Field(25.0, gt=0, lt=100)
    #: hyperband: epochs of the smallest bracket, the longest run, and the halving factor
    min_resource: int = Field(5, ge=1)
    max_resource: int | Literal["auto"] = "auto"
    reduction_factor: int = Field(3, ge=2)


class TuneConfig(StrictConfig):
    """The whole ``tune:`` block."""

    study_name: str = Field(min_length=1)
    storage: StorageConfig
    #: total number of (non-failed) trials the study should hold; a rerun only adds the missing
    #: ones, so an interrupted study resumes and concurrent workers share the budget exactly
    n_trials: int = Field(ge=1)
    #: stop starting new trials after this many seconds (None = no limit)
    timeout_s: float | None = Field(None, gt=0)
    #: the logged validation metric to optimise; also the pruning callback's monitor
    metric: str = "val/recall@20"
    direction: Literal["maximize", "minimize"] = "maximize"
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    pruner: PrunerConfig = Field(default_factory=PrunerConfig)
    #: dotted path into the finetune config -> distribution
    search_space: dict[str, ParamSpec] = Field(min_length=1)
    #: conditional space: sampled only in trials whose model.fusion.strategy is llm (after the
    #: strategy, Optuna's define-by-run), checked against FinetuneConfig with strategy llm
    llm_search_space: dict[str, ParamSpec] = Field(default_factory=dict)
    #: keys that only work together, searched as one categorical choice per group (name ->
    #: option -> {dotted path: value or distribution}); crossrec.tuning.groups
    search_groups: dict[str, SearchGroup] = Field(default_factory=dict)
    #: finetune overrides applied to every trial (dotted paths), e.g. fewer epochs while tuning;
    #: they are not written to the tuned parameters file
    fixed: dict[str, Any] = Field(default_factory=dict)
    #: enqueue the finetune block's current values as the first trial of a fresh study, so the
    #: exported best is never worse than the defaults on the tuning objective
    enqueue_defaults: bool = True
    #: after the defaults trial, one trial per other choice of each categorical key with every
    #: other key at its default (a one-knob sweep that random start-up trials and TPE do not
    #: make; docs/tuning.md). Enqueued only with the defaults, at most ``n_trials - 1``
    enqueue_neighbours: bool = True
    #: the neighbours' share of ``n_trials`` at most (and at least one trial is left to the
    #: sampler): a study that spends its budget on neighbours never samples
    neighbours_max_share: float = Field(0.5, ge=0, le=1)
    #: each trial trains in <run_root>/trial_<number>
    run_root: str = "data/06_models/tune"
    #: delete a finished trial's checkpoints (keeps disk use flat over long studies)
    keep_checkpoints: bool = False

    @model_validator(mode="after")
    def _no_overlap(self) -> TuneConfig:
        both = sorted(set(self.search_space) & set(self.fixed))
        if both:
            raise ValueError(f"keys both searched and fixed: {both}")
        twice = sorted(set(self.llm_search_space) & (set(self.search_space) | set(self.fixed)))
        if twice:
            raise ValueError(
                f"llm_search_space keys also in search_space or fixed: {twice} (a key is "
                f"searched in one place)"
            )
        taken = set(self.search_space) | set(self.fixed) | set(self.llm_search_space)
        problems = structure_problems(self.search_groups, taken)
        if any(STRATEGY_KEY in group_keys(group) for group in self.search_groups.values()):
            problems.append(f"{STRATEGY_KEY} cannot be in a group (it decides the LLM space)")
        if problems:
            raise ValueError("search_groups: " + "; ".join(problems))
        return self


TUNE_WHERE = where("tune")
FINETUNE_WHERE = where("finetune")


def parse_tune_config(tune: dict[str, Any], finetune: dict[str, Any]) -> TuneConfig:
    """Parse ``tune`` and check every searched / fixed key against ``FinetuneConfig``.

    Runs first, so a misspelt key or a wrong type fails with its name before any data is loaded
    or any trial trains.
    """
    from crossrec.models.config import FinetuneConfig
    from crossrec.tuning.storage import redact

    config = parse_params(TuneConfig, tune, where=TUNE_WHERE)
    parse_params(FinetuneConfig, finetune, where=FINETUNE_WHERE)
    with_fixed = apply_overrides(finetune, config.fixed)
    parse_params(FinetuneConfig, with_fixed, where=f"{TUNE_WHERE}.fixed")
    check_search_space(
        config.search_space, FinetuneConfig, with_fixed, where=f"{TUNE_WHERE}.search_space"
    )
    check_groups(
        config.search_groups, FinetuneConfig, with_fixed, where=f"{TUNE_WHERE}.search_groups"
    )
    as_llm = apply_overrides(with_fixed, {STRATEGY_KEY: "llm"})
    check_search_space(
        config.llm_search_space, FinetuneConfig, as_llm, where=f"{TUNE_WHERE}.llm_search_space"
    )
    logger.info(
        "Search space: %d parameters, %d groups, %d trials, pruner %s, storage %s",
        len(config.search_space),
        len(config.search_groups),
        config.n_trials,
        config.pruner.type,
        redact(config.storage.url),
    )
    return config


STRATEGY_KEY = "model.fusion.strategy"


def trial_strategy(config: TuneConfig, finetune: dict[str, Any], sampled: dict[str, Any]) -> str:
    """The fusion strategy a trial runs: sampled, else fixed, else the finetune block's."""
    if STRATEGY_KEY in sampled:
        return sampled[STRATEGY_KEY]
    if STRATEGY_KEY in config.fixed:
        return config.fixed[STRATEGY_KEY]
    return ((finetune.get("model") or {}).get("fusion") or {}).get("strategy") or "concat"


def needs_item_texts(config: TuneConfig, finetune: dict[str, Any]) -> bool:
    """Whether some trial may use the ``llm`` fusion strategy (which reads item texts)."""
    key = STRATEGY_KEY
    base = ((finetune.get("model") or {}).get("fusion") or {}).get("strategy")
    spec = config.search_space.get(key)
    choices = getattr(spec, "choices", None) or []
    return "llm" in ({base, config.fixed.get(key)} | set(choices))
