"""Ingest, step by step: raw dataset -> validated, filtered, indexed, split tables.

Each step is one node of the ingest pipeline (``crossrec.pipelines.ingest``) and takes the
``ingest`` parameters block as a dict (validated here by :func:`parse_ingest_params`).
Adapters are the only readers of raw files; every step is a pure function of its inputs.
:func:`ingest_in_memory` runs them in order without Kedro (benchmarks, notebooks, tests).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossrec.data.adapters.base import get_adapter
from crossrec.data.config import WHERE, parse_ingest_params
from crossrec.data.errors import DatasetNotFoundError
from crossrec.data.indexing import index_raw
from crossrec.data.kcore import kcore_filter
from crossrec.data.media import check_media
from crossrec.data.raw import RawData
from crossrec.data.split_checks import require_held_out, user_history_sizes, warn_thin_histories
from crossrec.data.splits import assign_splits, cold_share_for, published_rows_changed
from crossrec.data.summary import format_summary, summarize
from crossrec.data.users import attach_user_attributes
from crossrec.data.validation import (
    add_bare_items,
    check_unknown_items,
    deduplicate_interactions,
    deduplicate_items,
    isin_ids,
)
from crossrec.data.words import build_word_requests

logger = logging.getLogger(__name__)


def load_raw_dataset(ingest: dict[str, Any], dataset: str) -> RawData:
    """Read the dataset folder ``<raw_root>/<dataset>`` with its configured adapter."""
    config = parse_ingest_params(ingest)
    spec = config.resolve(dataset)
    folder = Path(config.raw_root) / dataset
    if not folder.is_dir():
        hint = ""
        if spec.download:
            hint = (
                f"download it (online): python -m crossrec.data.download {dataset} "
                f"--root {config.raw_root}"
            )
        raise DatasetNotFoundError(dataset, folder.resolve(), hint)
    adapter = get_adapter(spec.adapter, f"{WHERE}.datasets.{dataset}.adapter")
    raw = adapter(dataset, folder.resolve(), spec.options)
    logger.info(
        "%s: read %d interactions and %d item rows with the %r adapter",
        dataset,
        len(raw.interactions),
        len(raw.items),
        spec.adapter,
    )
    return raw


def clean_dataset(raw: RawData, ingest: dict[str, Any], dataset: str) -> RawData:
    """Deduplicate items and interactions, apply the implicit rule, check item references."""
    spec = parse_ingest_params(ingest).resolve(dataset)
    items, kept = deduplicate_items(raw.items, raw.text_columns, raw.file("items"))
    precomputed = raw.precomputed
    if len(kept) != len(raw.items):  # some rows were repeats: keep the vectors of the others
        precomputed = {name: matrix[kept] for name, matrix in precomputed.items()}

    interactions = raw.interactions
    threshold = spec.implicit.min_rating
    if threshold is not None:
        keep = interactions["rating"].to_numpy() >= threshold
        logger.info(
            "%s: implicit rule rating >= %g keeps %d of %d interactions",
            dataset,
            threshold,
            int(keep.sum()),
            len(keep),
        )
        interactions = interactions[keep].reset_index(drop=True)
    interactions = deduplicate_interactions(
        interactions, spec.validation.duplicate_interactions, raw.file("interactions")
    )
    policy = spec.validation.unknown_items
    interactions = check_unknown_items(
        interactions,
        items["item_id"],
        policy,
        raw.file("interactions"),
        raw.file("items"),
        column=raw.column("item"),
    )
    if policy == "keep":
        unknown = set(pd.unique(interactions["item_id"].to_numpy(dtype=object))) - set(
            items["item_id"]
        )
        n_before = len(items)
        items = add_bare_items(
            items, unknown, raw.text_columns, raw.media_patterns, raw.file("interactions")
        )
        precomputed = {
            name: np.vstack([m, np.zeros((len(items) - n_before, m.shape[1]), dtype=m.dtype)])
            for name, m in precomputed.items()
        }
    return raw.replace(interactions=interactions, items=items, precomputed=precomputed)


def filter_dataset(raw: RawData, ingest: dict[str, Any], dataset: str) -> RawData:
    """k-core filtering, then (by default) drop catalogue items nobody interacted with."""
    spec = parse_ingest_params(ingest).resolve(dataset)
    interactions = kcore_filter(raw.interactions, spec.kcore.user_min, spec.kcore.item_min)
    items, precomputed = raw.items, raw.precomputed
    if spec.validation.drop_items_without_interactions:
        used = isin_ids(items["item_id"], interactions["item_id"])
        if not used.all():
            logger.info(
                "%s: dropped %d of %d catalogue items without interactions",
                dataset,
                int((~used).sum()),
                len(used),
            )
            items = items[used].reset_index(drop=True)
            precomputed = {name: matrix[used] for name, matrix in precomputed.items()}
    if interactions.empty:
        raise ValueError(
            f"{dataset}: no interactions left after filtering; lower "
            f"{WHERE}.kcore / implicit.min_rating"
        )
    return raw.replace(interactions=interactions, items=items, precomputed=precomputed)


def check_dataset_media(
    raw: RawData, ingest: dict[str, Any], dataset: str
) -> tuple[RawData, list[dict]]:
    """Confine media to the dataset folder and open every file; unusable ones go to the report
    (``stage: ingest``) and their path becomes None. Featurize appends to this report."""
    config = parse_ingest_params(ingest)
    media = config.resolve(dataset).media
    root = None if media.allow_outside_dataset else (Path(config.raw_root) / dataset).resolve()
    if not media.check and root is None:
        return raw, []
    items, report = check_media(
        raw.items,
        max_bad_share=media.max_bad_share,
        workers=media.workers,
        items_file=raw.file("items"),
        root=root,
        open_files=media.check,
    )
    return raw.replace(items=items), report


def index_dataset(
    raw: RawData,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, np.ndarray], dict[str, Any]]:
    """Contiguous ids: (interactions, items, users, precomputed_features, dataset_meta)."""
    interactions, items, users, precomputed = index_raw(raw)
    meta = {
        "name": raw.name,
        "text_columns": list(raw.text_columns),
        "attribute_columns": dict(raw.attribute_columns),
        "has_timestamps": bool(raw.has_timestamps),
        "has_published_split": raw.has_published_split,
    }
    return interactions, items, users, precomputed, meta


def split_dataset(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    precomputed: dict[str, np.ndarray],
    meta: dict[str, Any],
    ingest: dict[str, Any],
    dataset: str,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Add ``split`` to interactions and ``is_cold`` to items; build ``dataset_info``."""
    spec = parse_ingest_params(ingest).resolve(dataset)
    strategy = spec.split.strategy
    if strategy == "auto":
        strategy = "published" if meta["has_published_split"] else "random"
    cold_items = spec.split.cold_items
    cold_users = spec.split.cold_users
    user_share = cold_share_for(strategy, cold_users.share, cold_users.apply_to_published, "users")
    labels, cold = assign_splits(
        interactions,
        strategy,
        ratios=spec.split.ratios,
        min_user_interactions=spec.split.min_user_interactions,
        cold_share=cold_share_for(strategy, cold_items.share, cold_items.apply_to_published),
        cold_valid_fraction=cold_items.valid_fraction,
        seed=seed,
        cold_user_share=user_share,
        cold_user_valid_fraction=cold_users.valid_fraction,
    )
    sizes = user_history_sizes(interactions)
    warn_thin_histories(sizes, dataset)
    require_held_out(
        labels,
        sizes,
        dataset,
        strategy,
        spec.split.min_user_interactions,
        expect_valid=strategy != "published" and spec.split.ratios[1] > 0,
    )
    changed = published_rows_changed(interactions, labels) if strategy == "published" else 0
    if changed:
        logger.warning(
            "%s: the cold-item holdout ALTERS the published split (cold_items."
            "apply_to_published: true): %d items held out, %d of %d rows changed "
            "split; results are not comparable with those on the published split",
            dataset,
            len(cold),
            changed,
            len(labels),
        )
    # copy-on-write: the new column and dtypes below never touch the input frame
    out = interactions.drop(columns=["published_split"], errors="ignore")
    out["split"] = labels.astype(str)
    out = out.astype(
        {"user_idx": "int64", "item_idx": "int64", "rating": "float32", "timestamp": "int64"}
    )
    items = items.copy()
    items["is_cold"] = np.isin(items["item_idx"].to_numpy(), cold)
    n_cold_users = users_without_train(out)
    info = {
        "name": meta["name"],
        "n_users": int(out["user_idx"].max() + 1) if len(out) else 0,
        "n_items": int(len(items)),
        "n_interactions": int(len(out)),
        "text_columns": list(meta["text_columns"]),
        "attribute_columns": dict(meta.get("attribute_columns") or {}),
        "has_images": bool(items["image_path"].notna().any()),
        "has_audio": bool(items["audio_path"].notna().any()),
        "has_timestamps": bool(meta["has_timestamps"]),
        "precomputed": sorted(precomputed),
        "split_strategy": strategy
        + ("+cold_items" if len(cold) else "")
        + ("+cold_users" if n_cold_users and user_share > 0 else ""),
        "n_cold_users": n_cold_users,
        "published_split_altered": changed > 0,
    }
    return out, items, info


def users_without_train(interactions: pd.DataFrame) -> int:
    """Users with held-out rows but none in train (the cold-user holdout, or a temporal cut)."""
    split = interactions["split"].to_numpy()
    users = interactions["user_idx"].to_numpy()
    train = split == "train"
    return len(np.setdiff1d(users[~train], users[train]))


def describe_users(users: pd.DataFrame, ingest: dict[str, Any], dataset: str) -> pd.DataFrame:
    """The users table with the dataset's user attributes (``crossrec.data.users``)."""
    config = parse_ingest_params(ingest)
    return attach_user_attributes(
        users, Path(config.raw_root) / dataset, config.resolve(dataset).users, dataset
    )


def attach_words(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame,
    ingest: dict[str, Any],
    dataset: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, word_requests): the dataset's words as requests with the split of their pair,
    and the item text they rebuild without held-out words (``crossrec.data.words``)."""
    config = parse_ingest_params(ingest)
    return build_word_requests(
        Path(config.raw_root) / dataset,
        config.resolve(dataset).words,
        interactions,
        items,
        users,
        dataset,
    )


def summarize_dataset(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    dataset_info: dict[str, Any],
    media_report: list[dict],
    precomputed_features: dict[str, np.ndarray],
) -> dict[str, Any]:
    """The data summary (saved under data/08_reporting) and printed as a table in the log."""
    summary = summarize(interactions, items, dataset_info, media_report, precomputed_features)
    logger.info("\n%s", format_summary(summary))
    return summary


def ingest_in_memory(ingest: dict[str, Any], dataset: str, seed: int) -> dict[str, Any]:
    """Run the ingest nodes in pipeline order without a catalog (tests, notebooks).

    Returns the catalog artifacts by name: interactions, items, users, dataset_info,
    precomputed_features, media_report, data_summary, word_requests.
    """
    raw = load_raw_dataset(ingest, dataset)
    raw = clean_dataset(raw, ingest, dataset)
    raw = filter_dataset(raw, ingest, dataset)
    raw, media_report = check_dataset_media(raw, ingest, dataset)
    interactions, items, users, precomputed, meta = index_dataset(raw)
    users = describe_users(users, ingest, dataset)
    interactions, items, info = split_dataset(
        interactions, items, precomputed, meta, ingest, dataset, seed
    )
    items, word_requests = attach_words(interactions, items, users, ingest, dataset)
    summary = summarize_dataset(interactions, items, info, media_report, precomputed)
    return {
        "interactions": interactions,
        "items": items,
        "users": users,
        "dataset_info": info,
        "precomputed_features": precomputed,
        "media_report": media_report,
        "data_summary": summary,
        "word_requests": word_requests,
    }
