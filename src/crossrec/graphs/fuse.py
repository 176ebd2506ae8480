"""What the fuse pipeline builds: fused (normalised, masked) item features, one frozen kNN
graph per modality and the normalised train user-item graph. Library code, no Kedro."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.data.matrices import check_interactions, interactions_to_csr
from crossrec.graphs.alignment import graph_lift
from crossrec.graphs.ann import AnnSettings
from crossrec.graphs.config import WHERE, FuseConfig
from crossrec.graphs.knn import knn_graph, knn_search_info, normalized_user_item_graph

logger = logging.getLogger(__name__)


def _modality_names(item_features: dict, config: FuseConfig) -> list[str]:
    available = list(item_features.get("__order__") or [])  # keep an order given upstream
    available += [n for n in item_features if not n.startswith("__") and n not in available]
    if config.modalities is None:
        return available
    unknown = [m for m in config.modalities if m not in available]
    if unknown:
        raise ValueError(
            f"{WHERE}.modalities: {unknown} not in item_features (available: {available})"
        )
    return list(config.modalities)


def _check_modality(name: str, entry: Any, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(entry, dict) or "vectors" not in entry or "mask" not in entry:
        raise ValueError(f"item_features[{name!r}] must be a dict with 'vectors' and 'mask'")
    vectors, mask = np.asarray(entry["vectors"]), np.asarray(entry["mask"])
    if vectors.ndim != 2 or vectors.shape[0] != n_items:
        raise ValueError(
            f"item_features[{name!r}].vectors has shape {vectors.shape}; expected ({n_items}, d) "
            f"with n_items from dataset_info"
        )
    if mask.shape != (n_items,) or mask.dtype != bool:
        raise ValueError(
            f"item_features[{name!r}].mask must be bool of shape ({n_items},), "
            f"got {mask.dtype} {mask.shape}"
        )
    bad = mask & ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise ValueError(
            f"item_features[{name!r}]: non-finite vectors for items "
            f"{np.flatnonzero(bad)[:5].tolist()} (first 5)"
        )
    return vectors, mask


def fuse_item_features(
    item_features: dict, dataset_info: dict[str, Any], config: FuseConfig
) -> dict[str, Any]:
    """Selected modalities with rows L2-normalised, masked rows zeroed, plus ``"__order__"``."""
    n_items = int(dataset_info["n_items"])
    names = _modality_names(item_features, config)
    fused: dict[str, Any] = {}
    for name in names:
        vectors, mask = _check_modality(name, item_features[name], n_items)
        vectors = np.where(mask[:, None], vectors, 0.0).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        empty = mask & (norms[:, 0] == 0)
        if empty.any():
            logger.warning("%s: %d items have mask True but a zero vector", name, int(empty.sum()))
        if not mask.any():
            logger.warning("%s: no item has a usable vector; the modality carries no signal", name)
        fused[name] = {
            "vectors": vectors,
            "mask": mask.copy(),
            "source": str(item_features[name].get("source", "")),
        }
        if "spec" in item_features[name]:  # how new items are encoded (attributes)
            fused[name]["spec"] = item_features[name]["spec"]
        logger.info("%s: %d-d, %.1f%% of items present", name, vectors.shape[1], 100 * mask.mean())
    fused["__order__"] = names
    return fused


def _graph_device(name: str) -> str:
    from crossrec.device import resolve_device

    try:
        return str(resolve_device(name))
    except ValueError as err:
        raise ValueError(f"{WHERE}.knn.device: {err}") from None


def train_item_degrees(interactions: pd.DataFrame, n_items: int) -> np.ndarray:
    """(n_items,) each item's TRAIN interactions: the kNN graphs' tie rule (``knn.ties``)."""
    train = interactions.loc[interactions["split"] == "train", "item_idx"].to_numpy()
    return np.bincount(train.astype(np.int64), minlength=n_items)[:n_items]


def build_modality_graphs(
    fused_item_features: dict, config: FuseConfig, item_degrees: np.ndarray | None = None
) -> dict[str, sp.csr_matrix]:
    """One symmetric-normalised top-k cosine item-item graph per modality. Equally similar
    neighbours go to the items with more train interactions (``item_degrees``, ``knn.ties:
    popular``), else to the lower item index (``ties: index``, or no degrees given)."""
    device = _graph_device(config.knn.device)
    priority = item_degrees if config.knn.ties == "popular" else None
    unknown = set(config.knn.k_per_modality) - set(fused_item_features["__order__"])
    if unknown:
        logger.warning("%s.knn.k_per_modality names absent modalities %s", WHERE, sorted(unknown))
    settings = AnnSettings(**config.knn.approximate.model_dump())
    graphs = {}
    for name in fused_item_features["__order__"]:
        entry = fused_item_features[name]
        k = config.knn.k_per_modality.get(name, config.knn.k)
        start = time.perf_counter()
        graphs[name] = knn_graph(
            entry["vectors"],
            entry["mask"],
            k,
            weighting=config.knn.weighting,
            chunk_rows=config.knn.chunk_rows,
            device=device,
            search=config.knn.search,
            approximate_above=config.knn.approximate_above,
            approximate=settings,
            name=name,
            priority=priority,
        )
        logger.info(
            "%s kNN graph: k=%d, %s search, %d edges, %.2f s",
            name,
            k,
            knn_search_info(graphs[name])["search"],
            graphs[name].nnz,
            time.perf_counter() - start,
        )
    return graphs


def build_user_item_graph(
    interactions: pd.DataFrame, dataset_info: dict[str, Any]
) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` over users then items, from the TRAIN split only (no leakage)."""
    missing = [c for c in ("user_idx", "item_idx", "split") if c not in interactions.columns]
    if missing:
        raise ValueError(f"interactions: missing column(s) {missing} (docs/architecture.md)")
    train = interactions[interactions["split"] == "train"]
    if train.empty:
        raise ValueError(
            "interactions: no row has split == 'train'; cannot build the user-item graph"
        )
    graph = normalized_user_item_graph(
        train["user_idx"].to_numpy(),
        train["item_idx"].to_numpy(),
        int(dataset_info["n_users"]),
        int(dataset_info["n_items"]),
    )
    logger.info("user-item graph: %d train interactions, %d nodes", len(train), graph.shape[0])
    return graph


def modality_graph_lift(
    modality_graphs: dict[str, sp.spmatrix],
    interactions: pd.DataFrame,
    dataset_info: dict[str, Any],
) -> dict[str, dict]:
    """Each modality graph's lift over random item pairs (``crossrec.graphs.alignment``),
    measured on the TRAIN interactions only, like the user-item graph; plus, under ``knn``, how
    its neighbours were found (exact or approximate with the sampled recall@k) when known."""
    n_users, n_items = int(dataset_info["n_users"]), int(dataset_info["n_items"])
    check_interactions(interactions, n_users, n_items)
    train = interactions[interactions["split"] == "train"]
    matrix = interactions_to_csr(
        train["user_idx"].to_numpy(), train["item_idx"].to_numpy(), n_users, n_items
    )
    report = graph_lift(modality_graphs, matrix)
    for name, graph in modality_graphs.items():
        info = knn_search_info(graph)
        if info is not None:
            report[name]["knn"] = dict(info)
    return report
