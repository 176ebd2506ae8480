"""The refresh state: one versioned artifact holding a model AND the data it was trained on.

``refreshed_model`` = ``{"bundle", "interactions", "items", "users", "dataset_info",
"item_features", "item_texts", "origin", "base_model", "report"}``. Model and data live in one
file, written atomically (``crossrec.datasets.atomic``): a refresh killed at any point leaves the
previous version whole, and no reader can ever pair a model with tables of another version.
:func:`load_state` rebuilds the servable model from it; the next refresh starts from it.

A chain of refreshes belongs to one ingest run (``origin``) and one trained model
(``base_model``: its fingerprint). Re-running ingest or finetune starts a new chain: the next
refresh starts from ingest + the new trained model, and serving serves the trained model until
then (:func:`is_current`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from crossrec.data.increments import DatasetTables
from crossrec.encoders.config import FeaturizeConfig
from crossrec.graphs.config import FuseConfig
from crossrec.graphs.fuse import (
    build_modality_graphs,
    build_user_item_graph,
    fuse_item_features,
    train_item_degrees,
)
from crossrec.models.inputs import TrainingArtifacts, TrainingData

log = logging.getLogger(__name__)

#: Key of what the refresh returns instead of a state when its increments add nothing.
UNCHANGED_KEY = "__unchanged__"


def unchanged(reason: str) -> dict[str, str]:
    """Returned as ``refreshed_model`` to write no new version
    (``crossrec.datasets.atomic.KeepLatestPickleDataset``)."""
    return {UNCHANGED_KEY: reason}


def is_unchanged(data: Any) -> bool:
    return isinstance(data, dict) and UNCHANGED_KEY in data


STATE_KEYS = ("bundle", "interactions", "items", "users", "dataset_info", "item_features")


def origin_of(dataset_info: dict) -> dict:
    """What identifies the ingest run a chain of refreshes started from."""
    return {k: dataset_info.get(k) for k in ("name", "n_users", "n_items", "n_interactions")}


def chain_mismatch(state: dict, dataset_info: dict, trained_model: dict) -> str | None:
    """Why ``state`` does not continue the current ingest + trained model (None: it does).

    A state written before ``base_model`` was recorded is checked against ingest only.
    """
    from crossrec.models.fingerprint import model_fingerprint

    if state.get("origin") != origin_of(dataset_info):
        return (
            f"it started from ingest {state.get('origin')}, ingest is now {origin_of(dataset_info)}"
        )
    base, trained = state.get("base_model"), model_fingerprint(trained_model)
    if base is not None and base != trained:
        return f"it started from trained model {base}, the trained model is now {trained}"
    return None


def is_current(state: dict | None, dataset_info: dict, trained_model: dict) -> bool:
    """True when ``state`` (a refreshed_model version) is the newest model to serve."""
    return state is not None and chain_mismatch(state, dataset_info, trained_model) is None


def start_state(previous: dict | None, ingest: dict[str, Any], bundle: dict) -> dict:
    """The state a refresh starts from: the latest refresh, else ingest + the trained model.

    ``ingest``: interactions, items, users, dataset_info, item_features, item_texts. A previous
    refresh of another chain (ingest or finetune was re-run since) is ignored, with a warning:
    its indices or weights belong to data or a model that were replaced.
    """
    from crossrec.models.fingerprint import model_fingerprint

    fresh = {
        **ingest,
        "bundle": bundle,
        "origin": origin_of(ingest["dataset_info"]),
        "base_model": model_fingerprint(bundle),
    }
    if previous is None:
        return fresh
    missing = [k for k in STATE_KEYS if k not in previous]
    if missing:
        raise ValueError(f"refreshed_model: the latest version lacks {missing}; delete it")
    why = chain_mismatch(previous, ingest["dataset_info"], bundle)
    if why is not None:
        log.warning(
            "refresh: ignoring the latest refreshed_model (%s); starting again from ingest + "
            "trained_model",
            why,
        )
        return fresh
    return previous


def tables_of(state: dict) -> DatasetTables:
    return DatasetTables(
        state["interactions"], state["items"], state["users"], state["dataset_info"]
    )


def extend_item_features(old: dict, new: dict, n_new: int) -> dict:
    """Old rows, then the new items' rows; a modality the new items lack gets masked zeros."""
    out = {}
    for name, entry in old.items():
        if name.startswith("__"):
            out[name] = entry
            continue
        vectors = np.asarray(entry["vectors"])
        if name in new:
            add_vectors = np.asarray(new[name]["vectors"], dtype=vectors.dtype)
            add_mask = np.asarray(new[name]["mask"], dtype=bool)
        else:
            add_vectors = np.zeros((n_new, vectors.shape[1]), vectors.dtype)
            add_mask = np.zeros(n_new, dtype=bool)
        if add_vectors.shape[1] != vectors.shape[1]:
            raise ValueError(
                f"item_features[{name!r}]: new items encoded to {add_vectors.shape[1]}-d, the "
                f"model's items are {vectors.shape[1]}-d (featurize settings changed?)"
            )
        out[name] = {
            **entry,
            "vectors": np.vstack([vectors, add_vectors]),
            "mask": np.concatenate([np.asarray(entry["mask"], bool), add_mask]),
        }
    return out


def precomputed_dims(item_features: dict) -> dict[str, int]:
    """The model's precomputed features (shipped by the dataset, not encoded): name -> dim."""
    return {
        name: int(np.asarray(entry["vectors"]).shape[1])
        for name, entry in item_features.items()
        if not name.startswith("__") and str(entry.get("source", "")).startswith("precomputed:")
    }


def precomputed_rows(item_features: dict, tables: DatasetTables, new_ids: pd.Series) -> dict:
    """Feature blocks of the new items for every precomputed feature of the model, from the
    vectors their increments carried (``features/<name>.npy``, :mod:`crossrec.data.increments`)."""
    from crossrec.encoders.featurize import precomputed_block

    out = {}
    for name in precomputed_dims(item_features):
        rows = tables.item_vectors.get(name, {})
        missing = [i for i in new_ids if i not in rows]
        if missing:
            raise ValueError(
                f"refresh: new item(s) {missing[:5]} have no {name!r} vectors; the model uses "
                f"this precomputed feature: add features/{name}.npy to their increment"
            )
        matrix = np.stack([np.asarray(rows[i], np.float32) for i in new_ids])
        out[name] = precomputed_block(name, matrix, len(new_ids))
    return out


def attribute_rows(item_features: dict, new_items: pd.DataFrame) -> dict:
    """The new items' ``attributes`` block, encoded with the vocabularies the model's items were
    (``spec``, fitted once by featurize): the same columns mean the same dimensions."""
    from crossrec.encoders.attributes import encode_attributes

    spec = (item_features.get("attributes") or {}).get("spec")
    if not spec:
        return {}
    vectors, mask = encode_attributes(new_items, spec)
    return {"attributes": {"vectors": vectors, "mask": mask}}


def encode_new_items(
    state: dict, tables: DatasetTables, config: FeaturizeConfig, caches: dict, max_bad_share: float
) -> tuple[dict, list[str]]:
    """Item features and texts of the grown catalogue: only the new items are encoded.

    ``caches``: ``{"text"|"image"|"audio": EmbeddingStore}``.
    """
    from crossrec.encoders import modalities as enc

    n_old = len(state["items"])
    new_items = tables.items.iloc[n_old:].reset_index(drop=True)
    new_items["item_idx"] = np.arange(len(new_items), dtype=np.int64)  # the encoders' own rows
    texts = list(state.get("item_texts") or [])
    if new_items.empty:
        return state["item_features"], texts
    info = {
        **tables.dataset_info,
        "n_items": len(new_items),
        "has_images": bool(new_items["image_path"].notna().any()),
        "has_audio": bool(new_items["audio_path"].notna().any()),
    }
    results = [*enc.encode_text(new_items, info, config, caches["text"]).values()]
    for modality in ("image", "audio"):
        results += enc.encode_media(
            modality, new_items, info, config, caches[modality], [], max_bad_share
        ).values()
    new = {r.name: r.block() for r in results}
    new.update(attribute_rows(state["item_features"], new_items))
    new.update(precomputed_rows(state["item_features"], tables, new_items["item_id"]))
    log.info("refresh: encoded %d new items (%s)", len(new_items), sorted(new))
    if texts:
        texts += enc.item_texts(new_items, info, config)
    return extend_item_features(state["item_features"], new, len(new_items)), texts


def fused_artifacts(
    tables: DatasetTables,
    item_features: dict,
    fuse: FuseConfig,
    item_texts: list[str] | None = None,
) -> TrainingArtifacts:
    """``tables`` with their fuse outputs (fused features, modality graphs, user-item graph),
    built as the fuse pipeline builds them: what a refresh trains on and serving rebuilds a
    refreshed model from."""
    info = tables.dataset_info
    fused = fuse_item_features(item_features, info, fuse)
    degrees = train_item_degrees(tables.interactions, int(info["n_items"]))
    graphs = build_modality_graphs(fused, fuse, degrees)
    ui = build_user_item_graph(tables.interactions, info)
    return TrainingArtifacts(tables.interactions, tables.items, info, fused, graphs, ui, item_texts)


def training_data(
    tables: DatasetTables,
    item_features: dict,
    fuse: FuseConfig,
    finetune,
    item_texts: list[str] | None = None,
) -> TrainingData:
    """Fused features, modality graphs, user-item graph and matrices of ``tables``."""
    return fused_artifacts(tables, item_features, fuse, item_texts).training_data(finetune)


def load_state(state: dict, fuse: FuseConfig):
    """(model in eval mode, its TrainingData) from a ``refreshed_model`` version."""
    from crossrec.models.bundle import load_recommender

    bundle = state["bundle"]
    data = training_data(
        tables_of(state), state["item_features"], fuse, bundle["config"], state.get("item_texts")
    )
    return load_recommender(bundle, data), data


def state_artifacts(state: dict, fuse: FuseConfig) -> dict[str, Any]:
    """A ``refreshed_model`` version as the catalog entries serving rebuilds a model from
    (``crossrec.serving.config.ARTIFACTS``, less ``metrics``): its fused features and graphs
    are built here, exactly as :func:`load_state` builds them."""
    texts = state.get("item_texts") or None
    artifacts = fused_artifacts(tables_of(state), state["item_features"], fuse, texts)
    return {"trained_model": state["bundle"], "users": state["users"], **vars(artifacts)}


def serving_artifacts(
    artifacts: dict[str, Any], refreshed: dict | None, fuse: FuseConfig
) -> tuple[dict[str, Any], bool]:
    """(catalog entries to serve, whether they are the refreshed model's).

    ``artifacts``: the trained model's entries (``crossrec.serving.config.ARTIFACTS``);
    ``refreshed``: the newest ``refreshed_model`` version or None. A refresh of the current
    chain (:func:`is_current`) replaces the model and its data; the trained model's test
    ``metrics`` do not describe it and are dropped.
    """
    if refreshed is None:
        return artifacts, False
    why = chain_mismatch(refreshed, artifacts["dataset_info"], artifacts["trained_model"])
    if why is not None:
        log.warning("serving the trained model, not the latest refreshed_model: %s", why)
        return artifacts, False
    return {**artifacts, **state_artifacts(refreshed, fuse), "metrics": None}, True


def make_state(
    start: dict,
    tables: DatasetTables,
    item_features: dict,
    item_texts: list[str],
    bundle: dict,
    report: dict,
) -> dict:
    return {
        "bundle": bundle,
        "interactions": tables.interactions,
        "items": tables.items,
        "users": tables.users,
        "dataset_info": tables.dataset_info,
        "item_features": item_features,
        "item_texts": item_texts,
        "origin": start["origin"],
        "base_model": start.get("base_model"),
        "report": report,
    }


def report_frame(report: dict) -> pd.DataFrame:
    """The per-epoch history of a refresh as a table (refresh_history.csv)."""
    return pd.DataFrame(report.get("history", []))
