"""Cheap checks run before any featurize_modalities encoding (see crossrec.hooks).

A misspelt model name must fail in seconds, before image and audio encoding spend minutes:
every enabled modality's model is resolved by name (zoo name, folder, cached Hugging Face id)
without loading or converting weights.
"""

from __future__ import annotations

from typing import Any

from crossrec.config import ConfigError, describe_source, lookup_source, param_sources
from crossrec.encoders.config import is_enabled, parse_featurize_params
from crossrec.encoders.zoo import ModelNotFoundError, check_model, zoo_names

BLOCK = "featurize_modalities"


def models_in_use(params: dict[str, Any], dataset_info: dict[str, Any]) -> dict[str, str]:
    """``{dotted key: model name}`` of the modalities this dataset will encode with a model."""
    config = parse_featurize_params(params)
    models = {}
    if is_enabled(config.text.enabled, bool(dataset_info.get("text_columns")), "text"):
        models[f"{BLOCK}.text.model"] = config.text.model
    if is_enabled(config.image.enabled, bool(dataset_info.get("has_images")), "image"):
        models[f"{BLOCK}.image.model"] = config.image.model
    audio = is_enabled(config.audio.enabled, bool(dataset_info.get("has_audio")), "audio")
    if audio and config.audio.kind == "whisper":  # kind: mel uses no weights
        models[f"{BLOCK}.audio.model"] = config.audio.model
    return models


def resolve_encoders(params: dict[str, Any], dataset_info: dict[str, Any]) -> dict[str, str]:
    """Where each model in use loads from; a :class:`ConfigError` listing every bad one."""
    resolved, problems = {}, []
    for key, name in models_in_use(params, dataset_info).items():
        try:
            resolved[key] = check_model(name)
        except ModelNotFoundError as err:
            origin = describe_source(lookup_source(param_sources(), key))
            problems.append(f"  - {key} = {name!r}{f' ({origin})' if origin else ''}: {err}")
    if problems:
        raise ConfigError(
            "Unknown encoder model(s); nothing was encoded. Known zoo names: "
            f"{', '.join(zoo_names())} (or a local folder / Hugging Face id 'org/name'):\n"
            + "\n".join(problems)
        )
    return resolved
