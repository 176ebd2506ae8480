"""Validation of YAML parameters at the pipeline edge.

Every pipeline parses its ``params:<name>`` block into a pydantic model derived from
:class:`StrictConfig`, so a misspelt key or a wrong type fails at once with the key's dotted
path, a "did you mean" among the valid keys of that level, and the place the value came from
(a parameters file or ``--params``), instead of deep inside a node.

Where values came from is a mapping ``dotted key -> source`` (see :func:`lookup_source`). The
Kedro hook (:mod:`crossrec.hooks`) builds it from the run's parameters files and runtime
parameters and registers it with :func:`set_param_sources`; this module itself knows nothing of
Kedro, and callers may also pass ``sources=`` explicitly.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound="StrictConfig")

#: Source label of values given on the command line (``kedro run --params a.b=c``).
RUNTIME_SOURCE = "--params"

_active_sources: Mapping[str, str] = {}


class ConfigError(ValueError):
    """A parameters block does not match its schema."""


#: Every parameters block and the schema that checks it (``module:Class``, imported only when
#: the block is used, so this module needs none of the schemas' packages). A block's defaults
#: live in :func:`block_file`; errors name it by :func:`where`.
BLOCKS: dict[str, str] = {
    "ingest": "crossrec.data.config:IngestConfig",
    "featurize_modalities": "crossrec.encoders.config:FeaturizeConfig",
    "fuse": "crossrec.graphs.config:FuseConfig",
    "finetune": "crossrec.models.config:FinetuneConfig",
    "evaluate": "crossrec.evaluation.config:EvaluateConfig",
    "tune": "crossrec.tuning.config:TuneConfig",
    "refresh": "crossrec.refresh.config:RefreshConfig",
    "recommend": "crossrec.serving.config:RecommendConfig",
}


def block_file(block: str) -> str:
    """The file holding a block's defaults (one ``parameters_<block>.yml`` per block)."""
    if block not in BLOCKS:
        raise KeyError(f"{block!r} is not a parameters block; expected one of {list(BLOCKS)}")
    return f"conf/base/parameters_{block}.yml"


def where(block: str) -> str:
    """How errors name a block: ``<its file>: <block>`` (the form :func:`parse_params` reads
    the dotted key from)."""
    return f"{block_file(block)}: {block}"


def block_schema(block: str) -> type[StrictConfig]:
    """The schema class of a block (imports its module)."""
    module, _, name = BLOCKS[block].partition(":")
    return getattr(importlib.import_module(module), name)


class StrictConfig(BaseModel):
    """Base for parameter schemas: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def set_param_sources(sources: Mapping[str, str] | None) -> None:
    """Register where the current run's parameters came from (``None`` forgets them)."""
    global _active_sources
    _active_sources = dict(sources or {})


def param_sources() -> Mapping[str, str]:
    """The mapping registered by :func:`set_param_sources` (empty outside a Kedro run)."""
    return _active_sources


def flatten_keys(tree: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a nested mapping, parents before children (``a``, ``a.b``, ...)."""
    keys: list[str] = []
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            keys.append(dotted)
            keys.extend(flatten_keys(value, dotted))
    return keys


def lookup_source(sources: Mapping[str, str], dotted: str) -> str | None:
    """Source of ``dotted``, else of its closest parent that has one (a key set as a whole)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        source = sources.get(".".join(parts[:end]))
        if source is not None:
            return source
    return None


def describe_source(source: str | None) -> str:
    """``set in conf/local/parameters.yml`` / ``set with --params`` for an error message."""
    if source is None:
        return ""
    return f"set with {source}" if source == RUNTIME_SOURCE else f"set in {source}"


def did_you_mean(key: str, valid: list[str]) -> str:
    """`` did you mean 'x'?`` when a valid key is close to ``key``, else an empty string."""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f" did you mean {close[0]!r}?" if close else ""


def unknown_key_message(key: str, valid: list[str]) -> str:
    """The text for a key no schema knows: suggestion first, then the valid keys."""
    listed = ", ".join(sorted(valid)) if valid else "none"
    suggestion = did_you_mean(key, valid)
    return f"unknown key{';' + suggestion if suggestion else ''} (valid keys here: {listed})"


def _models_in(annotation: Any) -> list[Any]:
    """Candidate types one level inside ``annotation`` (unwrapping Optional / unions)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    return [annotation]


def _step(annotation: Any, part: str | int) -> Any:
    """The type found at ``part`` (field name, dict key, list index, union tag) below a type."""
    for candidate in _models_in(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            if isinstance(part, str) and part in candidate.model_fields:
                return candidate.model_fields[part].annotation
            if part == candidate.__name__:  # pydantic tags union members by class name
                return candidate
            continue
        origin = typing.get_origin(candidate)
        args = typing.get_args(candidate)
        if origin in (dict, Mapping) and len(args) == 2 and isinstance(part, str):
            return args[1]
        if origin in (list, tuple, set, frozenset) and args and isinstance(part, int):
            return args[0]
    return None


def model_at(schema: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model reached by following ``loc`` from ``schema`` (None when unknown)."""
    annotation: Any = schema
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    for candidate in _models_in(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _valid_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _block_key(where: str) -> str | None:
    """The dotted key a ``where`` like ``conf/base/parameters_x.yml: x.y`` points at."""
    file, sep, key = where.rpartition(": ")
    if not sep or not file.endswith((".yml", ".yaml", ".json")):
        return None
    key = key.strip()
    return key if key and " " not in key else None


def _problem(schema: type[BaseModel], issue: Mapping[str, Any]) -> str:
    loc = tuple(issue["loc"])
    if issue["type"] == "extra_forbidden" and loc:
        parent = model_at(schema, loc[:-1])
        if parent is not None:
            return unknown_key_message(str(loc[-1]), _valid_keys(parent))
    return f"{issue['msg']} (got {issue.get('input')!r:.80})"


def parse_params(
    schema: type[T],
    params: dict[str, Any] | T,
    where: str,
    sources: Mapping[str, str] | None = None,
    key: str | None = None,
) -> T:
    """Validate ``params`` against ``schema``.

    ``where`` names the YAML file / key for the error (its ``file: dotted.key`` form gives
    ``key`` when that is not passed). ``sources`` (default: the run's registered sources)
    maps dotted keys to the file or ``--params`` that set them, so each problem names its origin.
    """
    if isinstance(params, schema):
        return params
    try:
        return schema.model_validate(params or {})
    except ValidationError as err:
        sources = param_sources() if sources is None else sources
        key = key if key is not None else _block_key(where)
        problems, all_sourced = [], True
        for issue in err.errors():
            loc = ".".join(str(part) for part in issue["loc"])
            dotted = ".".join(p for p in (key, loc) if p) or "<root>"
            origin = lookup_source(sources, dotted) if key and sources else None
            all_sourced &= origin is not None
            suffix = f"; {describe_source(origin)}" if origin else ""
            problems.append(f"  - {dotted}: {_problem(schema, issue)}{suffix}")
        label = key if (key and all_sourced) else where
        raise ConfigError(f"Invalid parameters in {label}:\n" + "\n".join(problems)) from None


def deep_merge(base: dict, overrides: dict | None) -> dict:
    """``base`` with ``overrides`` applied key by key (nested dicts merge, the rest replaces)."""
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
