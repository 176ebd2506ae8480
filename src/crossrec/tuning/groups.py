"""Search groups: keys that only work together, searched as one categorical choice.

A one-key change cannot reach settings that need several keys at once: sampled softmax wants a
cosine score and a temperature, and ``loss.kind: softmax`` alone (cosine off) can score below
BPR while the whole family beats it. A group names such bundles (YAML)::

    search_groups:
      loss_family:
        bpr: {loss.kind: bpr, loss.cosine: false}
        softmax:
          loss.kind: softmax
          loss.cosine: true
          loss.temperature: {type: categorical, choices: [0.1, 0.2, 0.5]}

A trial picks one option (the Optuna parameter is the group's name); plain values are set
together, a distribution is sampled only when its option is picked (define-by-run). The
finetune overrides of a trial are the option's values (:func:`expand_choice`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

from crossrec.config import ConfigError, StrictConfig
from crossrec.tuning.space import (
    CategoricalChoice,
    CategoricalParam,
    FloatParam,
    IntParam,
    ParamSpec,
    apply_overrides,
    check_search_space,
    resolve_path,
    suggest,
)

#: one option: dotted finetune path -> a value set as is, or a distribution sampled with it
GroupOption = dict[str, Union[ParamSpec, CategoricalChoice]]  # noqa: UP007 (discriminated)
#: one group: option name -> its keys
SearchGroup = dict[str, GroupOption]

Spec = FloatParam | IntParam | CategoricalParam


def option_values(option: Mapping[str, Any]) -> dict[str, Any]:
    """The keys an option sets as they are (not sampled)."""
    return {key: value for key, value in option.items() if not isinstance(value, StrictConfig)}


def option_space(option: Mapping[str, Any]) -> dict[str, Spec]:
    """The keys an option samples when it is picked."""
    return {key: value for key, value in option.items() if isinstance(value, StrictConfig)}


def group_keys(group: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Every finetune key some option of the group sets or samples."""
    return {key for option in group.values() for key in option}


def structure_problems(groups: Mapping[str, SearchGroup], taken: set[str]) -> list[str]:
    """Why the groups cannot be searched as declared (empty when they can): fewer than two
    options, an option without keys, a key also searched or fixed elsewhere or in two groups,
    a key sampled with different distributions by two options (Optuna needs one per name)."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for name, group in groups.items():
        if name in taken:
            problems.append(f"{name}: the group's name is also a searched or fixed key")
        if len(group) < 2:
            problems.append(f"{name}: a group needs at least two options (has {len(group)})")
        for option, keys in group.items():
            if not keys:
                problems.append(f"{name}.{option}: an option sets at least one key")
        for key in sorted(group_keys(group)):
            if key in taken:
                problems.append(f"{name}: {key} is also in search_space / fixed / llm_search_space")
            elif key in seen:
                problems.append(f"{name}: {key} is also in group {seen[key]}")
            seen.setdefault(key, name)
            specs = [o[key] for o in group.values() if isinstance(o.get(key), StrictConfig)]
            if any(spec != specs[0] for spec in specs[1:]):
                problems.append(f"{name}: {key} is sampled with different distributions")
    return problems


def _known(schema: type[StrictConfig], key: str) -> bool:
    try:
        resolve_path(schema, key)
    except KeyError:
        return False
    return True


def check_groups(
    groups: Mapping[str, SearchGroup],
    schema: type[StrictConfig],
    base_params: Mapping[str, Any],
    where: str,
) -> None:
    """Fail naming every bad ``<group>.<option>``'s key: an unknown path, or a value (a sampled
    extreme / choice) the schema rejects together with the option's other values."""
    problems: list[str] = []
    for name, group in groups.items():
        for option_name, option in group.items():
            values = option_values(option)
            known = {key: value for key, value in values.items() if _known(schema, key)}
            space = {
                **{k: CategoricalParam(type="categorical", choices=[v]) for k, v in values.items()},
                **option_space(option),
            }
            try:
                base = apply_overrides(base_params, known)
                check_search_space(space, schema, base, where=f"{where}.{name}.{option_name}")
            except ConfigError as err:
                problems.append(str(err))
    if problems:
        raise ConfigError("\n".join(problems))


def suggest_groups(trial: Any, groups: Mapping[str, SearchGroup]) -> dict[str, Any]:
    """Pick one option per group, then sample that option's distributions; returns the
    finetune overrides (dotted paths), not the Optuna parameters."""
    overrides: dict[str, Any] = {}
    for name, group in groups.items():
        picked = trial.suggest_categorical(name, list(group))
        overrides.update(option_values(group[picked]))
        overrides.update(suggest(trial, option_space(group[picked])))
    return overrides


def expand_choice(groups: Mapping[str, SearchGroup], params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's Optuna parameters as finetune overrides: each group's name replaced by its
    picked option's values (sampled keys are already dotted paths)."""
    overrides = {key: value for key, value in params.items() if key not in groups}
    for name, group in groups.items():
        if name in params:
            overrides.update(option_values(group[params[name]]))
    return overrides
