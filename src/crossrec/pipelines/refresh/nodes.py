"""refresh nodes: parse parameters, call :mod:`crossrec.refresh` (torch only inside it)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from crossrec.data.config import parse_ingest_params
from crossrec.data.increments import DatasetTables
from crossrec.encoders.cache import EmbeddingStore
from crossrec.encoders.config import parse_featurize_params
from crossrec.graphs.config import parse_fuse_params
from crossrec.refresh import state as lib
from crossrec.refresh import steps
from crossrec.refresh.config import parse_refresh_params

logger = logging.getLogger(__name__)


def start_refresh(
    refresh_previous: dict | None,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame,
    dataset_info: dict[str, Any],
    item_features: dict,
    item_texts: list[str],
    trained_model: dict,
) -> dict:
    """The latest refreshed_model version, else ingest's tables + the latest trained_model."""
    ingest = {
        "interactions": interactions,
        "items": items,
        "users": users,
        "dataset_info": dataset_info,
        "item_features": item_features,
        "item_texts": item_texts,
    }
    return lib.start_state(refresh_previous, ingest, trained_model)


def apply_increments(
    start: dict, refresh: dict[str, Any], ingest: dict[str, Any], dataset: str, seed: int
) -> tuple[DatasetTables, list[dict]]:
    """Every increment folder not applied yet, in name order (indices stay, new ones append)."""
    cfg = parse_refresh_params(refresh)
    config = parse_ingest_params(ingest)
    spec = config.resolve(dataset)
    folder = Path(config.raw_root).resolve() / dataset
    tables = lib.tables_of(start)
    pending = steps.pending_increments(folder, cfg.increments.folder, tables.applied)
    rules = steps.rules_of(cfg, spec.implicit.min_rating)
    root = None if spec.media.allow_outside_dataset else folder
    dims = lib.precomputed_dims(start["item_features"])
    return steps.apply_pending(
        tables, pending, rules, int(seed), root, spec.media.max_bad_share, dims
    )


def encode_new_items(
    start: dict,
    tables: DatasetTables,
    featurize: dict[str, Any],
    text_cache: EmbeddingStore,
    image_cache: EmbeddingStore,
    audio_cache: EmbeddingStore,
    ingest: dict[str, Any],
    dataset: str,
) -> tuple[dict, list[str]]:
    """Item features + texts of the grown catalogue; only new items go through the encoders."""
    budget = parse_ingest_params(ingest).resolve(dataset).media.max_bad_share
    caches = {"text": text_cache, "image": image_cache, "audio": audio_cache}
    return lib.encode_new_items(start, tables, parse_featurize_params(featurize), caches, budget)


def fine_tune(
    start: dict,
    tables: DatasetTables,
    item_features: dict,
    item_texts: list[str],
    increment_report: list[dict],
    fuse: dict[str, Any],
    refresh: dict[str, Any],
    seed: int,
    dataset: str,
) -> tuple[dict, dict, pd.DataFrame]:
    """Warm start, bounded fine-tuning, evaluation -> (refreshed_model, report, history);
    increments that add nothing give no fine-tuning and no new refreshed_model version."""
    if steps.adds_nothing(increment_report):
        message = steps.nothing_new_message(increment_report)
        logger.warning(message)
        report = {"increments": increment_report, "unchanged": True}
        return lib.unchanged(message), report, pd.DataFrame()
    cfg = parse_refresh_params(refresh)
    run_dir = Path(cfg.run_dir.format(dataset=dataset))
    bundle, report = steps.run_refresh(
        start, tables, item_features, item_texts, parse_fuse_params(fuse), cfg, int(seed), run_dir
    )
    report = {"increments": increment_report, **report}
    state = lib.make_state(start, tables, item_features, item_texts, bundle, report)
    return state, report, lib.report_frame(report)
