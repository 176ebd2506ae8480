"""featurize_modalities nodes: pick each modality's inputs from ``items``, call the encoders.

Each raw modality node returns ``{modality: ModalityResult}`` (empty when the modality is off
for this dataset: Kedro cannot save None). The encoders read media and write cache shards
through the ``*_embedding_cache`` catalog datasets (see ``crossrec.encoders.cache``), so no
node opens a file itself. Heavy libraries are imported inside the encoder constructors.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from crossrec.data.media import read_report
from crossrec.data.params import parse_ingest_params
from crossrec.encoders.cache import EmbeddingStore
from crossrec.encoders.config import FeaturizeConfig, is_enabled, parse_featurize_params
from crossrec.encoders.featurize import (
    ModalityResult,
    check_media_budget,
    encode_modality,
    merge_media_report,
    precomputed_block,
    select_names,
)
from crossrec.encoders.text import choose_template, render_texts

logger = logging.getLogger(__name__)


def _check_items(items: pd.DataFrame, info: dict[str, Any], columns: list[str]) -> None:
    missing = [c for c in ["item_idx", "item_id", *columns] if c not in items.columns]
    if missing:
        raise ValueError(
            f"items: missing column(s) {missing} (dataset_info / docs/architecture.md)"
        )
    if len(items) != int(info.get("n_items", len(items))):
        raise ValueError(
            f"items has {len(items)} rows but dataset_info.n_items = {info['n_items']}"
        )
    if not np.array_equal(items["item_idx"].to_numpy(), np.arange(len(items))):
        raise ValueError("items.item_idx must be 0..n_items-1 in row order")


def item_texts(
    items: pd.DataFrame, dataset_info: dict[str, Any], config: FeaturizeConfig
) -> list[str]:
    """The text each item is encoded from (template chosen from the dataset's text columns)."""
    columns = list(dataset_info.get("text_columns") or [])
    template = choose_template(config.text.templates, columns)
    logger.info("Text template: %s", template or f"automatic over {columns}")
    return render_texts(items[columns].to_dict("records"), columns, template)


def encode_text(
    items: pd.DataFrame, dataset_info: dict[str, Any], params: dict[str, Any], cache: EmbeddingStore
) -> dict[str, ModalityResult]:
    """Text modality from the dataset's text columns through a transformers model."""
    config = parse_featurize_params(params)
    columns = list(dataset_info.get("text_columns") or [])
    if not is_enabled(config.text.enabled, bool(columns), "text"):
        return {}
    _check_items(items, dataset_info, columns)
    from crossrec.encoders.text import TextEncoder

    t = config.text
    encoder = TextEncoder(
        model=t.model,
        pooling=t.pooling,
        prompt=t.prompt,
        max_tokens=t.max_tokens,
        batch_size=t.batch_size,
        device=config.device,
        bf16=config.bf16,
        normalize=t.normalize,
    )
    return {
        "text": encode_modality(
            "text",
            items["item_id"].astype(str).tolist(),
            item_texts(items, dataset_info, config),
            "text",
            encoder,
            cache.modality("text", encoder.settings()),
            source=f"text:{t.model}/{t.pooling}",
            shard_size=config.shard_size,
        )
    }


def _media_budget(ingest: dict[str, Any], dataset: str) -> float:
    """The run's one bad-media budget: ``ingest.media.max_bad_share`` for this dataset."""
    return parse_ingest_params(ingest).resolve(dataset).media.max_bad_share


def encode_images(
    items: pd.DataFrame,
    dataset_info: dict[str, Any],
    params: dict[str, Any],
    cache: EmbeddingStore,
    media_report: list[dict],
    ingest: dict[str, Any],
    dataset: str,
) -> dict[str, ModalityResult]:
    """Image modality from ``items.image_path`` through a timm backbone; the bad-media budget
    is checked on ingest's ``media_report`` plus the images that fail to decode here."""
    config = parse_featurize_params(params)
    if not is_enabled(config.image.enabled, bool(dataset_info.get("has_images")), "image"):
        return {}
    _check_items(items, dataset_info, ["image_path"])
    from crossrec.encoders.image import ImageEncoder

    c = config.image
    encoder = ImageEncoder(
        model=c.model,
        batch_size=c.batch_size,
        num_workers=c.num_workers,
        device=config.device,
        bf16=config.bf16,
    )
    result = encode_modality(
        "image",
        items["item_id"].astype(str).tolist(),
        items["image_path"].tolist(),
        "file",
        encoder,
        cache.modality("image", encoder.settings()),
        source=f"image:{c.model}",
        shard_size=config.shard_size,
    )
    check_media_budget(
        result,
        items["item_id"].astype(str).tolist(),
        items["image_path"].tolist(),
        read_report(media_report),
        _media_budget(ingest, dataset),
    )
    return {result.name: result}


def encode_audio(
    items: pd.DataFrame,
    dataset_info: dict[str, Any],
    params: dict[str, Any],
    cache: EmbeddingStore,
    media_report: list[dict],
    ingest: dict[str, Any],
    dataset: str,
) -> dict[str, ModalityResult]:
    """Audio modality from ``items.audio_path`` (log-mel statistics or the Whisper encoder);
    budget as for :func:`encode_images`."""
    config = parse_featurize_params(params)
    if not is_enabled(config.audio.enabled, bool(dataset_info.get("has_audio")), "audio"):
        return {}
    _check_items(items, dataset_info, ["audio_path"])
    from crossrec.encoders.audio import AudioEncoder

    a = config.audio
    encoder = AudioEncoder(
        kind=a.kind,
        model=a.model,
        sample_rate=a.sample_rate,
        max_seconds=a.max_seconds,
        n_mels=a.n_mels,
        n_mfcc=a.n_mfcc,
        batch_size=a.batch_size,
        num_workers=a.num_workers,
        device=config.device,
        bf16=config.bf16,
    )
    source = f"audio:{a.model}" if a.kind == "whisper" else "audio:log-mel+mfcc-stats"
    result = encode_modality(
        "audio",
        items["item_id"].astype(str).tolist(),
        items["audio_path"].tolist(),
        "file",
        encoder,
        cache.modality("audio", encoder.settings()),
        source=source,
        shard_size=config.shard_size,
    )
    check_media_budget(
        result,
        items["item_id"].astype(str).tolist(),
        items["audio_path"].tolist(),
        read_report(media_report),
        _media_budget(ingest, dataset),
    )
    return {result.name: result}


def assemble_item_features(
    text: dict[str, ModalityResult],
    image: dict[str, ModalityResult],
    audio: dict[str, ModalityResult],
    precomputed_features: dict[str, np.ndarray],
    dataset_info: dict[str, Any],
    params: dict[str, Any],
    media_report: list[dict],
) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[dict]]:
    """``item_features`` (raw modalities, then selected precomputed ones), the featurize report
    and the merged media report (ingest's entries plus this stage's failures)."""
    config = parse_featurize_params(params)
    n_items = int(dataset_info["n_items"])
    features: dict[str, dict[str, Any]] = {}
    results = [*text.values(), *image.values(), *audio.values()]
    merged = merge_media_report(read_report(media_report), results)
    report: dict[str, Any] = {
        "dataset": dataset_info.get("name"),
        "modalities": {},
        "failures": merged,
    }
    for result in results:
        if len(result.mask) != n_items:
            raise ValueError(
                f"{result.name}: {len(result.mask)} rows, dataset_info.n_items = {n_items}"
            )
        features[result.name] = result.block()
        report["modalities"][result.name] = result.stats()
    shipped = list((precomputed_features or {}).keys())
    declared = list(dataset_info.get("precomputed") or [])
    if set(declared) - set(shipped):
        raise ValueError(
            f"dataset_info.precomputed lists {sorted(set(declared) - set(shipped))} "
            "but precomputed_features lacks them"
        )
    for name in select_names(shipped, config.precomputed.include, config.precomputed.exclude):
        if name in features:
            raise ValueError(f"precomputed feature '{name}' collides with an encoded modality name")
        block = precomputed_block(name, precomputed_features[name], n_items)
        features[name] = block
        report["modalities"][name] = {
            "source": block["source"],
            "dim": int(block["vectors"].shape[1]),
            "n_items": n_items,
            "n_usable": int(block["mask"].sum()),
        }
    if not features:
        raise ValueError(
            "featurize_modalities produced no modality: the dataset has no text, "
            "images, audio or precomputed features enabled"
        )
    for name, stats in report["modalities"].items():
        logger.info("item_features[%s]: %s", name, stats)
    return features, report, merged


def render_item_texts(
    items: pd.DataFrame, dataset_info: dict[str, Any], params: dict[str, Any]
) -> list[str]:
    """The ``item_texts`` artifact: the text each item is encoded from, aligned to item_idx
    (the input of the ``llm`` fusion strategy, rendered once by the same templates)."""
    config = parse_featurize_params(params)
    _check_items(items, dataset_info, list(dataset_info.get("text_columns") or []))
    return item_texts(items, dataset_info, config)
