"""The split as sparse matrices: the one place the train / valid / test / recency matrices are
built from ingest's ``interactions`` table (finetune, evaluate, tune, benchmarks and serving all
call :func:`split_matrices`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

SPLITS = ("train", "valid", "test")
WHERE = "interactions (data/02_intermediate/<dataset>/interactions.parquet)"


def interactions_to_csr(
    user_idx: np.ndarray, item_idx: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """Binary (n_users, n_items) matrix of interactions (duplicates collapse to 1)."""
    data = np.ones(len(user_idx), dtype=np.float32)
    matrix = sp.csr_matrix((data, (user_idx, item_idx)), shape=(n_users, n_items))
    matrix.data[:] = 1.0
    return matrix


@dataclass
class SplitMatrices:
    """Binary (n_users, n_items) matrices of each split, the train recency and cold items."""

    n_users: int
    n_items: int
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    #: same pattern as ``train``, larger = more recent; None when the data has no timestamps
    train_recency: sp.csr_matrix | None
    is_cold: np.ndarray  # bool (n_items,): in the cold-start holdout
    #: users with held-out rows but no train row (the cold-user holdout, users first seen after
    #: a temporal cut): their rows are in ``cold_valid`` / ``cold_test``, not ``valid`` / ``test``
    #: (a history model cannot rank for them; they are evaluated apart)
    cold_users: np.ndarray | None = None
    cold_valid: sp.csr_matrix | None = None
    cold_test: sp.csr_matrix | None = None


def check_interactions(interactions: pd.DataFrame, n_users: int, n_items: int) -> None:
    """Columns, split labels and index bounds of the ``interactions`` table."""
    missing = {"user_idx", "item_idx", "split"} - set(interactions.columns)
    if missing:
        raise ValueError(f"{WHERE}: missing columns {sorted(missing)}")
    unknown = set(interactions["split"].unique()) - set(SPLITS)
    if unknown:
        raise ValueError(f"{WHERE}: column 'split' has values {sorted(unknown)}; expected {SPLITS}")
    for column, bound, name in (("user_idx", n_users, "n_users"), ("item_idx", n_items, "n_items")):
        values = interactions[column].to_numpy()
        if len(values) and (values.min() < 0 or values.max() >= bound):
            raise ValueError(
                f"{WHERE}: {column} must lie in [0, {bound}) (dataset_info.{name}), "
                f"got [{values.min()}, {values.max()}]"
            )


def train_recency(interactions: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix | None:
    """Rank of each train interaction in (user, timestamp, item) order; None without timestamps.

    Without timestamps there is no recency: user towers then order histories by item index.
    """
    if "timestamp" not in interactions or not (interactions["timestamp"] >= 0).any():
        return None
    train = interactions[interactions["split"].to_numpy() == "train"]
    users = train["user_idx"].to_numpy(np.int64)
    items = train["item_idx"].to_numpy(np.int64)
    order = np.lexsort((items, train["timestamp"].to_numpy(np.int64), users))
    rank = np.empty(len(order), dtype=np.float32)
    rank[order] = np.arange(1, len(order) + 1, dtype=np.float32)  # never 0 (sparse would drop it)
    return sp.csr_matrix((rank, (users, items)), shape=(n_users, n_items))


def cold_item_mask(items: pd.DataFrame, n_items: int) -> np.ndarray:
    """``items.is_cold`` aligned to item_idx (all False when the column is absent)."""
    is_cold = np.zeros(n_items, dtype=bool)
    if "is_cold" in items.columns:
        cold = items.set_index("item_idx")["is_cold"].astype(bool)
        is_cold[cold.index.to_numpy(np.int64)] = cold.to_numpy()
    return is_cold


def split_matrices(
    interactions: pd.DataFrame, items: pd.DataFrame, n_users: int, n_items: int
) -> SplitMatrices:
    """Every split matrix of ingest's tables, validated."""
    check_interactions(interactions, n_users, n_items)
    users = interactions["user_idx"].to_numpy(np.int64)
    item_idx = interactions["item_idx"].to_numpy(np.int64)
    split = interactions["split"].to_numpy()
    matrices = {
        name: interactions_to_csr(users[split == name], item_idx[split == name], n_users, n_items)
        for name in SPLITS
    }
    cold = users_without_history(matrices["train"], matrices["valid"] + matrices["test"])
    keep = sp.diags((~cold).astype(np.float32))
    only = sp.diags(cold.astype(np.float32))
    held = {name: matrices[name] for name in ("valid", "test")}
    for name, matrix in held.items():
        matrices[name] = _binary(keep @ matrix)
    return SplitMatrices(
        n_users=n_users,
        n_items=n_items,
        **matrices,
        train_recency=train_recency(interactions, n_users, n_items),
        is_cold=cold_item_mask(items, n_items),
        cold_users=cold,
        cold_valid=_binary(only @ held["valid"]),
        cold_test=_binary(only @ held["test"]),
    )


def users_without_history(train: sp.csr_matrix, held_out: sp.csr_matrix) -> np.ndarray:
    """bool (n_users,): users with held-out rows and no train row."""
    has_train = np.diff(train.tocsr().indptr) > 0
    has_held = np.diff(held_out.tocsr().indptr) > 0
    return has_held & ~has_train


def _binary(matrix: sp.spmatrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float32)
    out.eliminate_zeros()
    out.sort_indices()
    return out
