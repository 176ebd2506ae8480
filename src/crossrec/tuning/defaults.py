"""The study's first trial: the finetune block's current values (``tune.enqueue_defaults``).

A fresh study otherwise starts from random configurations, and with a small trial budget its best
trial can score below the untuned defaults, so ``--env tuned`` would make things worse. With the
defaults as trial 0 the exported best is never worse than the defaults on the tuning objective.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from crossrec.config import parse_params
from crossrec.tuning.config import FINETUNE_WHERE, STRATEGY_KEY, TuneConfig, trial_strategy
from crossrec.tuning.groups import expand_choice, option_space, option_values
from crossrec.tuning.inert import effective_params
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


def resolved_finetune(config: TuneConfig, finetune: Mapping[str, Any]) -> dict[str, Any]:
    """The finetune block as a trial sees it: ``fixed`` applied, schema defaults filled in."""
    from crossrec.models.config import FinetuneConfig

    with_fixed = apply_overrides(finetune, config.fixed)
    return parse_params(FinetuneConfig, with_fixed, where=FINETUNE_WHERE).model_dump()


def default_option(group: Mapping[str, Mapping[str, Any]], resolved: Mapping[str, Any]) -> str:
    """The first option of a search group that trains the defaults' model ("" when none does):
    its values, applied to the defaults, change nothing that acts (``crossrec.tuning.inert``)."""
    current = effective_params(resolved)
    for name, option in group.items():
        if effective_params(apply_overrides(resolved, option_values(option))) == current:
            return name
    return ""


def default_trial_params(
    config: TuneConfig, finetune: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``({key: default}, {left-out key: reason})`` for every searched key and search group.

    Values are read as a trial sees them: the finetune block with ``fixed`` applied, keys absent
    from the YAML taken from the ``FinetuneConfig`` defaults. A group takes the option that
    holds the defaults. The LLM space counts only when the default strategy is ``llm``.
    """
    resolved = resolved_finetune(config, finetune)
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
    for name, group in config.search_groups.items():
        option = default_option(group, resolved)
        if not option:
            left_out[name] = "no option of the group holds the finetune block's values"
            continue
        params[name] = option
        add(option_space(group[option]))
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


def by_distance(choices: Sequence[Any], current: Any) -> list[Any]:
    """The other choices, nearest to ``current`` in the list first (ties: list order): with a
    capped budget the one-step moves come before the far ones."""
    at = next(i for i, choice in enumerate(choices) if same_choice(choice, current))
    others = [i for i in range(len(choices)) if i != at]
    return [choices[i] for i in sorted(others, key=lambda i: abs(i - at))]


def _key_moves(
    config: TuneConfig, first: Mapping[str, Any], resolved: Mapping[str, Any]
) -> list[list[dict[str, Any]]]:
    """Per search group and categorical key, its neighbours of ``first``, nearest first; groups
    first (they hold the moves no one-key change reaches)."""
    moves = []
    for name, group in config.search_groups.items():
        if name not in first:
            continue
        base = {k: v for k, v in first.items() if k not in option_space(group[first[name]])}
        moves.append(
            [
                _with_option(base, name, group[o], o, resolved)
                for o in by_distance(list(group), first[name])
            ]
        )
    for name, spec in config.search_space.items():
        if isinstance(spec, CategoricalParam) and name in first:
            moves.append([{**first, name: c} for c in by_distance(spec.choices, first[name])])
    return moves


def _with_option(
    base: Mapping[str, Any],
    name: str,
    option: Mapping[str, Any],
    option_name: str,
    resolved: Mapping[str, Any],
) -> dict[str, Any]:
    """``base`` with the group moved to ``option``; the option's sampled keys start at the
    finetune block's values where the distribution holds them, else the sampler picks them."""
    moved = {**base, name: option_name}
    for key, spec in option_space(option).items():
        fitted, why = fit_to_spec(spec, get_path(resolved, key))
        if not why:
            moved[key] = fitted
    return moved


def interleave(lists: Sequence[Sequence[Any]]) -> list[Any]:
    """Round robin: the first of every list, then the second of every list, ...; so a capped
    budget moves every key once before it moves any key twice."""
    longest = max((len(items) for items in lists), default=0)
    return [items[i] for i in range(longest) for items in lists if i < len(items)]


def neighbour_cap(config: TuneConfig) -> int:
    """How many neighbours the budget allows: ``neighbours_max_share`` of ``n_trials``, and
    at least one trial left to the sampler after the defaults."""
    return max(
        0, min(math.floor(config.neighbours_max_share * config.n_trials), config.n_trials - 2)
    )


def neighbour_trials(
    config: TuneConfig, first: Mapping[str, Any] | None, finetune: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The defaults trial with one categorical key or one search group moved, for every other
    choice (``tune.enqueue_neighbours``): nearest choices first, one move per key before any
    second one, at most :func:`neighbour_cap` of them.

    A neighbour that trains the same model as the defaults or an earlier neighbour (it only
    changes settings that do nothing there, ``crossrec.tuning.inert``) is skipped. ``finetune``
    is the finetune block (None: the schema defaults). Keys the defaults trial leaves to
    sampling stay out of them too. Empty without the defaults trial or with
    ``enqueue_neighbours`` off.
    """
    if not config.enqueue_neighbours or first is None:
        return []
    resolved = resolved_finetune(config, finetune or {})

    def model_of(params: Mapping[str, Any]) -> dict[str, Any]:
        overrides = expand_choice(config.search_groups, params)
        return effective_params(apply_overrides(resolved, overrides))

    seen = [model_of(first)]
    kept = []
    for params in interleave(_key_moves(config, first, resolved)):
        model = model_of(params)
        if model in seen:
            moved = {k: v for k, v in params.items() if not same_choice(v, first.get(k))}
            logger.info(
                "Neighbour %s skipped: it trains the same model as %s",
                moved,
                "the defaults" if model == seen[0] else "an earlier neighbour",
            )
            continue
        seen.append(model)
        kept.append(params)
    cap = neighbour_cap(config)
    if len(kept) > cap:
        logger.info(
            "Enqueuing %d of %d neighbours (neighbours_max_share %s of %d trials, one trial "
            "left to the sampler at least); not enqueued: %s",
            cap,
            len(kept),
            config.neighbours_max_share,
            config.n_trials,
            [{k: v for k, v in p.items() if not same_choice(v, first.get(k))} for p in kept[cap:]],
        )
    return kept[:cap]
