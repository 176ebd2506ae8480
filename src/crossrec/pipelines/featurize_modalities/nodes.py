"""featurize_modalities nodes: parse parameters, call :mod:`crossrec.encoders.modalities`.

Each raw modality node returns ``{modality: ModalityResult}`` (empty when the modality is off
for this dataset: Kedro cannot save None). The encoders read media and write cache shards
through the ``*_embedding_cache`` catalog datasets (see ``crossrec.encoders.cache``), so no
node opens a file itself. Heavy libraries are imported inside the encoder constructors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crossrec.data.config import parse_ingest_params
from crossrec.encoders import modalities as lib
from crossrec.encoders.cache import EmbeddingStore
from crossrec.encoders.config import parse_featurize_params
from crossrec.encoders.featurize import ModalityResult


def _media_budget(ingest: dict[str, Any], dataset: str) -> float:
    """The run's one bad-media budget: ``ingest.media.max_bad_share`` for this dataset."""
    return parse_ingest_params(ingest).resolve(dataset).media.max_bad_share


def render_item_texts(
    items: pd.DataFrame, dataset_info: dict[str, Any], params: dict[str, Any]
) -> list[str]:
    """The ``item_texts`` artifact: the text each item is encoded from, aligned to item_idx
    (also the input of the ``llm`` fusion strategy)."""
    return lib.item_texts(items, dataset_info, parse_featurize_params(params))


def encode_text(
    items: pd.DataFrame, dataset_info: dict[str, Any], params: dict[str, Any], cache: EmbeddingStore
) -> dict[str, ModalityResult]:
    """Text modality from the dataset's text columns through a transformers model."""
    return lib.encode_text(items, dataset_info, parse_featurize_params(params), cache)


def encode_images(
    items: pd.DataFrame,
    dataset_info: dict[str, Any],
    params: dict[str, Any],
    cache: EmbeddingStore,
    media_report: list[dict],
    ingest: dict[str, Any],
    dataset: str,
) -> dict[str, ModalityResult]:
    """Image modality from ``items.image_path`` through a timm backbone."""
    config = parse_featurize_params(params)
    budget = _media_budget(ingest, dataset)
    return lib.encode_media("image", items, dataset_info, config, cache, media_report, budget)


def encode_audio(
    items: pd.DataFrame,
    dataset_info: dict[str, Any],
    params: dict[str, Any],
    cache: EmbeddingStore,
    media_report: list[dict],
    ingest: dict[str, Any],
    dataset: str,
) -> dict[str, ModalityResult]:
    """Audio modality from ``items.audio_path`` (log-mel statistics or the Whisper encoder)."""
    config = parse_featurize_params(params)
    budget = _media_budget(ingest, dataset)
    return lib.encode_media("audio", items, dataset_info, config, cache, media_report, budget)


def encode_attributes(
    items: pd.DataFrame, dataset_info: dict[str, Any], params: dict[str, Any]
) -> dict[str, ModalityResult]:
    """Structured columns (``dataset_info.attribute_columns``) as one modality, no model."""
    return lib.encode_attribute_columns(items, dataset_info, parse_featurize_params(params))


def assemble_item_features(
    text: dict[str, ModalityResult],
    image: dict[str, ModalityResult],
    audio: dict[str, ModalityResult],
    attributes: dict[str, ModalityResult],
    precomputed_features: dict[str, np.ndarray],
    dataset_info: dict[str, Any],
    params: dict[str, Any],
    media_report: list[dict],
) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[dict]]:
    """``item_features``, the featurize report and the merged media report."""
    results = [*text.values(), *image.values(), *audio.values(), *attributes.values()]
    config = parse_featurize_params(params)
    return lib.assemble_item_features(
        results, precomputed_features, dataset_info, config, media_report
    )
