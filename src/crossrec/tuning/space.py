"""The search space: dotted paths into the finetune configuration mapped to ``trial.suggest_*``.

The YAML reads like the config it overrides::

    optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    model.embedding_dim: {type: int, low: 32, high: 128, step: 32}
    model.fusion.strategy: {type: categorical, choices: [concat, gated, attention]}

:func:`check_search_space` resolves every path against the config schema and validates the
extreme values / every choice *before any trial runs*, so a misspelt key or a value of the wrong
type fails with the key's name instead of crashing trial 17 after an hour.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, ValidationError, model_validator

from crossrec.config import ConfigError, StrictConfig

#: Values Optuna can store for a categorical parameter.
CategoricalChoice = None | bool | int | float | str


class FloatParam(StrictConfig):
    """``trial.suggest_float(name, low, high, step=step, log=log)``."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check_range(self) -> FloatParam:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0 (got {self.low})")
        return self


class IntParam(StrictConfig):
    """``trial.suggest_int(name, low, high, step=step, log=log)``."""

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _check_range(self) -> IntParam:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        if self.log and self.step != 1:
            raise ValueError("log and step cannot be combined")
        if self.log and self.low < 1:
            raise ValueError(f"log scale needs low >= 1 (got {self.low})")
        return self


class CategoricalParam(StrictConfig):
    """``trial.suggest_categorical(name, choices)``."""

    type: Literal["categorical"]
    choices: list[CategoricalChoice] = Field(min_length=1)


ParamSpec = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


def suggest(trial: Any, space: Mapping[str, FloatParam | IntParam | CategoricalParam]) -> dict:
    """Draw one value per entry from an Optuna trial; returns ``{dotted_path: value}``."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, FloatParam):
            values[name] = trial.suggest_float(
                name, spec.low, spec.high, step=spec.step, log=spec.log
            )
        elif isinstance(spec, IntParam):
            values[name] = trial.suggest_int(
                name, spec.low, spec.high, step=spec.step, log=spec.log
            )
        else:
            values[name] = trial.suggest_categorical(name, spec.choices)
    return values


def apply_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a deep copy of the nested ``params`` with each dotted path set to its value."""
    result = copy.deepcopy(dict(params))
    for path, value in overrides.items():
        node = result
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"{path}: '{part}' is a value, not a section")
            node = child
        node[leaf] = value
    return result


def get_path(params: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """The value at a dotted path of nested mappings (``default`` when any part is missing)."""
    node: Any = params
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives of an annotation (``X | None`` -> [X, NoneType], Annotated stripped)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and issubclass(origin, Mapping)


def resolve_path(schema: type[BaseModel], path: str) -> Any:
    """The annotation of the field a dotted path names; raises ``KeyError`` naming the bad part.

    Below a free-form ``dict`` field (e.g. ``model.fusion.llm``) any key is accepted: the schema
    cannot say more, the value check in :func:`check_search_space` still runs.
    """
    current: Any = schema
    walked: list[str] = []
    for part in path.split("."):
        options = _unwrap(current)
        models = [opt for opt in options if _is_model(opt)]
        if models:
            model = models[0]
            if part not in model.model_fields:
                known = ", ".join(sorted(model.model_fields))
                where = ".".join(walked) or "<root>"
                raise KeyError(f"'{part}' is not a field of {where} (known: {known})")
            current = model.model_fields[part].annotation
        elif any(_is_mapping(opt) for opt in options):
            return Any
        else:
            raise KeyError(f"'{'.'.join(walked)}' is a value, not a section")
        walked.append(part)
    return current


def _kind_problem(spec: FloatParam | IntParam | CategoricalParam, annotation: Any) -> str | None:
    """Why a float / int search cannot feed this field (None when it can)."""
    options = _unwrap(annotation)
    if Any in options or isinstance(spec, CategoricalParam):
        return None
    accepts_float = float in options
    accepts_int = int in options or accepts_float
    if (
        isinstance(spec, FloatParam)
        and not accepts_float
        and not (spec.step is not None and float(spec.step).is_integer() and accepts_int)
    ):
        return f"type float does not fit a field of type {annotation}"
    if isinstance(spec, IntParam) and not accepts_int:
        return f"type int does not fit a field of type {annotation}"
    return None


def _candidates(spec: FloatParam | IntParam | CategoricalParam) -> list[Any]:
    if isinstance(spec, CategoricalParam):
        return list(spec.choices)
    return [spec.low, spec.high]


def check_search_space(
    space: Mapping[str, FloatParam | IntParam | CategoricalParam],
    schema: type[StrictConfig],
    base_params: Mapping[str, Any],
    where: str,
) -> None:
    """Fail with every bad entry's name: unknown path, wrong kind, or a value the schema rejects.

    Each candidate value (low, high, every choice) is written into ``base_params`` and the result
    validated with ``schema``, so range constraints (``ge``, ``Literal`` choices, ...) are
    checked too.
    """
    problems: list[str] = []
    for name, spec in space.items():
        try:
            annotation = resolve_path(schema, name)
        except KeyError as err:
            problems.append(f"  - {name}: unknown key: {err.args[0]}")
            continue
        kind_problem = _kind_problem(spec, annotation)
        if kind_problem:
            problems.append(f"  - {name}: {kind_problem}")
            continue
        for value in _candidates(spec):
            try:
                schema.model_validate(apply_overrides(base_params, {name: value}))
            except (ValidationError, ConfigError) as err:
                reason = err.errors()[0]["msg"] if isinstance(err, ValidationError) else str(err)
                problems.append(f"  - {name}: value {value!r} rejected by the schema: {reason}")
                break
    if problems:
        raise ConfigError(f"Invalid search space in {where}:\n" + "\n".join(problems))
