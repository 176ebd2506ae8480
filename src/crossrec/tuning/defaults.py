"""The study's first trial: the finetune block's current values (``tune.enqueue_defaults``).

A fresh study otherwise starts from random configurations, and with a small trial budget its best
trial can score below the untuned defaults, so ``--env tuned`` would make things worse. With the
defaults as trial 0 the exported best is never worse than the defaults on the tuning objective.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from crossrec.config import parse_params
from crossrec.tuning.config import FINETUNE_WHERE, STRATEGY_KEY, TuneConfig, trial_strategy
from crossrec.tuning.space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    apply_overrides,
    get_path,
)

logger = logging.getLogger(__name__)

_MISSING = object()


def _off_step(value: float, low: float, step: float) -> bool:
    steps = (value - low) / step
    return not math.isclose(steps, round(steps), abs_tol=1e-8)


def same_choice(a: Any, b: Any) -> bool:
    """Equal categorical values; 1 == True in Python, so bools only match bools."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def fit_to_spec(spec: FloatParam | IntParam | CategoricalParam, value: Any) -> tuple[Any, str]:
    """``(value Optuna can enqueue, "")``, or ``(None, why not)`` when the distribution cannot
    hold ``value``: Optuna would otherwise warn and still run the out-of-space value."""
    if isinstance(spec, CategoricalParam):
        for choice in spec.choices:
            if same_choice(choice, value):
                return choice, ""
        return None, f"{value!r} is not one of the choices {spec.choices}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"{value!r} is not a number"
    if isinstance(spec, IntParam) and not float(value).is_integer():
        return None, f"{value!r} is not an integer"
    if not spec.low <= value <= spec.high:
        return None, f"{value!r} is outside [{spec.low}, {spec.high}]"
    step = spec.step if isinstance(spec, FloatParam) else (None if spec.log else spec.step)
    if step is not None and _off_step(value, spec.low, step):
        return None, f"{value!r} is off the step {step} from {spec.low}"
    return (int(value) if isinstance(spec, IntParam) else float(value)), ""


def default_trial_params(
    config: TuneConfig, finetune: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``({key: default}, {left-out key: reason})`` for every searched key.

    Values are read as a trial sees them: the finetune block with ``fixed`` applied, keys absent
    from the YAML taken from the ``FinetuneConfig`` defaults. The LLM space counts only when the
    default strategy is ``llm``.
    """
    from crossrec.models.config import FinetuneConfig

    with_fixed = apply_overrides(finetune, config.fixed)
    resolved = parse_params(FinetuneConfig, with_fixed, where=FINETUNE_WHERE).model_dump()
    params: dict[str, Any] = {}
    left_out: dict[str, str] = {}

    def add(space: Mapping[str, FloatParam | IntParam | CategoricalParam]) -> None:
        for name, spec in space.items():
            value = get_path(resolved, name, _MISSING)
            if value is _MISSING:
                left_out[name] = "no value in the finetune block nor a schema default"
                continue
            fitted, why = fit_to_spec(spec, value)
            if why:
                left_out[name] = why
            else:
                params[name] = fitted

    add(config.search_space)
    strategy_left_out = STRATEGY_KEY in left_out
    if not strategy_left_out and trial_strategy(config, dict(finetune), params) == "llm":
        add(config.llm_search_space)
    return params, left_out


def trial_zero(config: TuneConfig, finetune: Mapping[str, Any]) -> dict[str, Any] | None:
    """The params to enqueue (None when ``enqueue_defaults`` is off); logs what is left out."""
    if not config.enqueue_defaults:
        return None
    params, left_out = default_trial_params(config, finetune)
    for name, why in left_out.items():
        logger.warning("Default trial: %s is sampled instead of enqueued: %s", name, why)
    return params


def neighbour_trials(config: TuneConfig, first: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The defaults trial with one categorical key changed, for every other choice of every
    categorical key of ``search_space`` (``tune.enqueue_neighbours``), in the space's order.

    Keys the defaults trial leaves to sampling stay out of them too. Empty without the
    defaults trial or with ``enqueue_neighbours`` off.
    """
    if not config.enqueue_neighbours or first is None:
        return []
    trials = []
    for name, spec in config.search_space.items():
        if not isinstance(spec, CategoricalParam) or name not in first:
            continue
        trials += [
            {**first, name: choice}
            for choice in spec.choices
            if not same_choice(choice, first[name])
        ]
    return trials
