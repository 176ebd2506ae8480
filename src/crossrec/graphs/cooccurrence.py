"""User-user co-occurrence graph of the train interactions (DRAGON's homogeneous user graph).

DRAGON (Zhou et al., 2023; enoche/MMRec ``src/models/dragon.py``) links every user to the
``k`` users who share the most train items with them and adds the weighted mean of those
neighbours' final vectors to the user's own. LightGCN reaches such users only at its second
hop, diluted by every popular item on the way; the co-occurrence graph names them directly.

One deviation, on purpose: DRAGON weights the neighbours by a softmax over the raw shared-item
counts, which for counts in the tens puts all the weight on the single top neighbour. Here the
weights are the counts divided by their row sum (a weighted mean), which keeps the ``k``
neighbours that DRAGON asks for.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Byte budget of one chunk's dense co-occurrence block (float32 counts).
DEFAULT_CHUNK_BYTES = 64 * 2**20


def user_cooccurrence_graph(
    train: sp.spmatrix, k: int, *, chunk_rows: int | None = None
) -> sp.csr_matrix:
    """Row-stochastic (n_users, n_users) graph: each user's top-``k`` co-occurring users.

    ``train`` is the (n_users, n_items) TRAIN matrix (any positive value is one interaction).
    Neighbours share at least one train item; no self loops; ties in the count are broken by
    the lower user index, so the graph is deterministic. Users without train items, or who
    share none, get an all-zero row (their vector is left as it is). Memory is
    ``O(chunk_rows * n_users)`` per chunk instead of ``O(n_users^2)``.
    """
    if k < 1:
        raise ValueError(f"user_cooccurrence_graph: k must be >= 1, got {k}")
    binary = sp.csr_matrix(train, dtype=np.float32)
    binary.sum_duplicates()
    binary.data[:] = 1.0
    binary.eliminate_zeros()
    n_users = binary.shape[0]
    k_eff = min(k, n_users - 1)
    if k_eff < 1:
        return sp.csr_matrix((n_users, n_users), dtype=np.float32)
    if chunk_rows is None:
        chunk_rows = max(1, DEFAULT_CHUNK_BYTES // (4 * n_users))
    transposed = binary.T.tocsc()
    rows_out, cols_out, vals_out = [], [], []
    for start in range(0, n_users, chunk_rows):
        stop = min(start + chunk_rows, n_users)
        block = (binary[start:stop] @ transposed).toarray()
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0  # no self loops
        # stable sort on -count: equal counts keep the lower user index first
        top = np.argsort(-block, axis=1, kind="stable")[:, :k_eff]
        counts = np.take_along_axis(block, top, axis=1)
        keep = counts > 0
        rows_out.append(np.repeat(np.arange(start, stop), k_eff)[keep.ravel()])
        cols_out.append(top[keep])
        vals_out.append(counts[keep])
    rows, cols = np.concatenate(rows_out), np.concatenate(cols_out)
    vals = np.concatenate(vals_out).astype(np.float64)
    graph = sp.csr_matrix((vals, (rows, cols)), shape=(n_users, n_users))
    row_sums = np.asarray(graph.sum(axis=1)).ravel()
    scale = np.divide(1.0, row_sums, out=np.zeros_like(row_sums), where=row_sums > 0)
    out = (sp.diags(scale) @ graph).tocsr()
    out.sort_indices()
    return out.astype(np.float32)
