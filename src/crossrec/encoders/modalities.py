"""Item features from ``items``: one function per raw modality (text, image, audio) plus the
assembly with the dataset's precomputed matrices. The featurize_modalities nodes call these;
media failures join ingest's report and are budgeted once (``check_media_budget``)."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from crossrec.data.media import read_report
from crossrec.encoders.attributes import (
    check_attribute_columns,
    encode_attributes,
    fit_attribute_spec,
)
from crossrec.encoders.cache import EmbeddingStore
from crossrec.encoders.config import FeaturizeConfig, is_enabled
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


#: Said once when a dataset has no content: it still runs, as an ID-only recommender.
ID_ONLY_NOTE = (
    "no content modality (the dataset has no text, images, audio or precomputed features "
    "enabled): crossrec runs it as an ID-only recommender, compared with its baselines. "
    "Content would add cold-start items and explanations: add item text / media / vectors "
    "to the dataset and rerun ingest and featurize_modalities"
)


def check_items(items: pd.DataFrame, info: dict[str, Any], columns: list[str]) -> None:
    """``items`` has the named columns and one row per item, in item_idx order."""
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


def item_texts(items: pd.DataFrame, info: dict[str, Any], config: FeaturizeConfig) -> list[str]:
    """The text each item is encoded from: the first template whose fields are all text columns
    (``featurize_modalities.text.templates``), else every text column. Rendered only here."""
    columns = list(info.get("text_columns") or [])
    check_items(items, info, columns)
    template = choose_template(config.text.templates, columns)
    logger.info("Text template: %s", template or f"automatic over {columns}")
    return render_texts(items[columns].to_dict("records"), columns, template)


def encode_text(
    items: pd.DataFrame, info: dict[str, Any], config: FeaturizeConfig, cache: EmbeddingStore
) -> dict[str, ModalityResult]:
    """Text modality from the dataset's text columns through a transformers model."""
    columns = list(info.get("text_columns") or [])
    if not is_enabled(config.text.enabled, bool(columns), "text"):
        return {}
    t = config.text
    texts = item_texts(items, info, config)
    encoder = text_encoder(config)
    ids = items["item_id"].astype(str).tolist()
    store = cache.modality("text", encoder.settings())
    source = f"text:{t.model}/{t.pooling}"
    result = encode_modality(
        "text",
        ids,
        texts,
        "text",
        encoder,
        store,
        source=source,
        shard_size=config.shard_size,
        items=(config.items.index, config.items.count),
    )
    return {"text": result}


def encode_attribute_columns(
    items: pd.DataFrame, info: dict[str, Any], config: FeaturizeConfig
) -> dict[str, ModalityResult]:
    """The ``attributes`` modality from ``dataset_info.attribute_columns`` (structured text
    columns: categories, tags, years), encoded without a model; its fitted spec travels in the
    result so new items are encoded into the same space."""
    columns = dict(info.get("attribute_columns") or {})
    if not is_enabled(config.attributes.enabled, bool(columns), "attributes"):
        return {}
    check_attribute_columns(columns, list(info.get("text_columns") or []), "dataset_info")
    check_items(items, info, list(columns))
    start = time.perf_counter()
    a = config.attributes
    spec = fit_attribute_spec(items, columns, a.min_count, a.numeric_bins)
    vectors, mask = encode_attributes(items, spec)
    result = ModalityResult(
        "attributes",
        vectors,
        mask,
        source="attributes:" + ",".join(columns),
        n_with_input=int(mask.sum()),
        n_computed=len(items),
        seconds=time.perf_counter() - start,
        spec=spec,
    )
    return {"attributes": result}


def text_encoder(config: FeaturizeConfig):
    """The text encoder of ``featurize_modalities.text`` (serving encodes new items with it)."""
    from crossrec.encoders.text import TextEncoder

    t = config.text
    return TextEncoder(
        model=t.model,
        pooling=t.pooling,
        prompt=t.prompt,
        max_tokens=t.max_tokens,
        batch_size=t.batch_size,
        device=config.device,
        bf16=config.bf16,
        normalize=t.normalize,
    )


def media_encoder(modality: str, config: FeaturizeConfig):
    """(encoder, source label) of a file modality (serving encodes new items with it)."""
    if modality == "image":
        from crossrec.encoders.image import ImageEncoder

        c = config.image
        encoder = ImageEncoder(
            model=c.model,
            batch_size=c.batch_size,
            num_workers=c.num_workers,
            device=config.device,
            bf16=config.bf16,
        )
        return encoder, f"image:{c.model}"
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
    return encoder, f"audio:{a.model}" if a.kind == "whisper" else "audio:log-mel+mfcc-stats"


def encode_media(
    modality: str,
    items: pd.DataFrame,
    info: dict[str, Any],
    config: FeaturizeConfig,
    cache: EmbeddingStore,
    media_report: list[dict],
    max_bad_share: float,
) -> dict[str, ModalityResult]:
    """``image`` or ``audio`` from ``items.<modality>_path``; the bad-media budget is checked
    on ingest's ``media_report`` plus the files that fail to decode here."""
    settings = {"image": config.image, "audio": config.audio}[modality]
    present = bool(info.get({"image": "has_images", "audio": "has_audio"}[modality]))
    if not is_enabled(settings.enabled, present, modality):
        return {}
    column = f"{modality}_path"
    check_items(items, info, [column])
    encoder, source = media_encoder(modality, config)
    ids = items["item_id"].astype(str).tolist()
    paths = items[column].tolist()
    store = cache.modality(modality, encoder.settings())
    result = encode_modality(
        modality,
        ids,
        paths,
        "file",
        encoder,
        store,
        source=source,
        shard_size=config.shard_size,
        items=(config.items.index, config.items.count),
    )
    check_media_budget(result, ids, paths, read_report(media_report), max_bad_share)
    return {result.name: result}


def _precomputed_stats(block: dict, n_items: int) -> dict[str, Any]:
    return {
        "source": block["source"],
        "dim": int(block["vectors"].shape[1]),
        "n_items": n_items,
        "n_usable": int(block["mask"].sum()),
    }


def assemble_item_features(
    results: list[ModalityResult],
    precomputed_features: dict[str, np.ndarray],
    info: dict[str, Any],
    config: FeaturizeConfig,
    media_report: list[dict],
) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[dict]]:
    """``item_features`` (raw modalities, then selected precomputed ones), the featurize report
    and the merged media report (ingest's entries plus this stage's failures)."""
    if config.items.count > 1:
        raise ValueError(
            "featurize_modalities.items.count > 1 encodes one share of the items into the "
            "embedding cache: run it with --to-nodes encode_text,encode_images,encode_audio, "
            "then once without it to assemble item_features from the cache (docs/scale.md)"
        )
    n_items = int(info["n_items"])
    merged = merge_media_report(read_report(media_report), results)
    report: dict[str, Any] = {"dataset": info.get("name"), "modalities": {}, "failures": merged}
    features: dict[str, dict[str, Any]] = {}
    for result in results:
        if len(result.mask) != n_items:
            raise ValueError(
                f"{result.name}: {len(result.mask)} rows, dataset_info.n_items = {n_items}"
            )
        features[result.name] = result.block()
        report["modalities"][result.name] = result.stats()
    shipped = list((precomputed_features or {}).keys())
    declared = list(info.get("precomputed") or [])
    if set(declared) - set(shipped):
        raise ValueError(
            f"dataset_info.precomputed lists {sorted(set(declared) - set(shipped))} "
            "but precomputed_features lacks them"
        )
    for name in select_names(shipped, config.precomputed.include, config.precomputed.exclude):
        if name in features:
            raise ValueError(f"precomputed feature '{name}' collides with an encoded modality name")
        features[name] = precomputed_block(name, precomputed_features[name], n_items)
        report["modalities"][name] = _precomputed_stats(features[name], n_items)
    if not features:
        logger.info(ID_ONLY_NOTE)
    for name, stats in report["modalities"].items():
        logger.info("item_features[%s]: %s", name, stats)
    return features, report, merged
