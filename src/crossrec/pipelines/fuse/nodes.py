"""fuse nodes: parse ``params:fuse`` and call :mod:`crossrec.graphs.fuse`."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import scipy.sparse as sp

from crossrec.graphs import fuse as lib
from crossrec.graphs.config import parse_fuse_params

logger = logging.getLogger(__name__)


def fuse_item_features(
    item_features: dict, dataset_info: dict[str, Any], fuse: dict[str, Any]
) -> dict[str, Any]:
    """Selected modalities with rows L2-normalised, masked rows zeroed, plus ``"__order__"``."""
    return lib.fuse_item_features(item_features, dataset_info, parse_fuse_params(fuse))


def build_modality_graphs(
    fused_item_features: dict,
    interactions: pd.DataFrame,
    dataset_info: dict[str, Any],
    fuse: dict[str, Any],
) -> dict[str, sp.csr_matrix]:
    """One symmetric-normalised top-k cosine item-item graph per modality; equally similar
    neighbours by train interactions (``fuse.knn.ties``)."""
    degrees = lib.train_item_degrees(interactions, int(dataset_info["n_items"]))
    return lib.build_modality_graphs(fused_item_features, parse_fuse_params(fuse), degrees)


def build_user_item_graph(
    interactions: pd.DataFrame, dataset_info: dict[str, Any]
) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` over users then items, from the TRAIN split only (no leakage)."""
    return lib.build_user_item_graph(interactions, dataset_info)


def report_modality_graphs(
    modality_graphs: dict[str, sp.spmatrix],
    interactions: pd.DataFrame,
    dataset_info: dict[str, Any],
) -> dict[str, dict]:
    """How often each modality graph's neighbours are co-consumed in train, against random
    item pairs (``crossrec.graphs.alignment``): which content carries collaborative signal."""
    report = lib.modality_graph_lift(modality_graphs, interactions, dataset_info)
    for name, entry in report.items():
        lift = entry["lift"]
        logger.info(
            "%s kNN graph: its neighbours share train users %s as often as random item pairs",
            name,
            "(no co-occurrence in train)" if lift is None else f"{lift:.2f}x",
        )
    return report
