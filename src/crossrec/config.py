"""Validation of YAML parameters at the pipeline edge.

Every pipeline parses its ``params:<name>`` block into a pydantic model derived from
:class:`StrictConfig`, so a misspelt key or a wrong type fails at once with the key's dotted
path and the parameters file it lives in, instead of deep inside a node.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound="StrictConfig")


class ConfigError(ValueError):
    """A parameters block does not match its schema."""


class StrictConfig(BaseModel):
    """Base for parameter schemas: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def parse_params(schema: type[T], params: dict[str, Any] | T, where: str) -> T:
    """Validate ``params`` against ``schema``; ``where`` names the YAML file / key for the error."""
    if isinstance(params, schema):
        return params
    try:
        return schema.model_validate(params or {})
    except ValidationError as err:
        problems = []
        for issue in err.errors():
            key = ".".join(str(part) for part in issue["loc"]) or "<root>"
            problems.append(f"  - {key}: {issue['msg']} (got {issue.get('input')!r:.80})")
        raise ConfigError(f"Invalid parameters in {where}:\n" + "\n".join(problems)) from None


def deep_merge(base: dict, overrides: dict | None) -> dict:
    """``base`` with ``overrides`` applied key by key (nested dicts merge, the rest replaces)."""
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
