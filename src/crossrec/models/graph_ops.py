"""Sparse graph operations of the recommender: scipy graphs as torch CSR tensors, propagation
with a transpose built once, and the item / user graphs the model derives from fuse's outputs."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
import torch


def scipy_to_torch_sparse(matrix: sp.spmatrix) -> torch.Tensor:
    """scipy sparse -> float32 torch CSR tensor (CPU sparse @ dense is ~2x faster than COO)."""
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    csr.sum_duplicates()
    csr.sort_indices()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": sparse.mm is all we use
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.as_tensor(csr.indptr.astype(np.int64)),
            torch.as_tensor(csr.indices.astype(np.int64)),
            torch.as_tensor(csr.data),
            size=csr.shape,
            check_invariants=True,
        )


def graph_and_transpose(matrix: sp.spmatrix) -> tuple[torch.Tensor, torch.Tensor]:
    """The graph and its transpose as CSR tensors (the same tensor when it is symmetric)."""
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    graph = scipy_to_torch_sparse(csr)
    asymmetry = abs(csr - csr.T)
    if asymmetry.nnz and asymmetry.max() > 1e-6 * abs(csr).max():
        return graph, scipy_to_torch_sparse(csr.T)
    return graph, graph


class GraphMatmul(torch.autograd.Function):
    """``graph @ x`` whose backward is ``graph.T @ grad`` with a transpose built once.

    torch's own sparse backward rebuilds the transpose on every call: ~9x slower per
    propagation step on CPU, and propagation runs over the whole graph on every training step.
    The graph itself gets no gradient (it is a fixed normalised adjacency).
    """

    @staticmethod
    def forward(ctx, graph: torch.Tensor, graph_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.graph_t = graph_t
        return torch.sparse.mm(graph, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, torch.sparse.mm(ctx.graph_t, grad.contiguous())


#: item graphs with more nodes than this are propagated in a locality order (below it the
#: graph fits the caches anyway, and the products stay bit-identical to item order)
LOCALITY_MIN_NODES = 20_000


def locality_order(graph: sp.spmatrix) -> np.ndarray | None:
    """A renumbering of the graph's nodes that keeps neighbours close in memory (reverse
    Cuthill-McKee), or None for a graph of at most :data:`LOCALITY_MIN_NODES` nodes.

    A product with 128-d rows is bound by fetching the neighbours' rows: on the scale
    benchmark's 95,385-item kNN graph it took 0.66 CPU s in item order and 0.14 s in this
    order (docs/scale.md, "Training at scale").
    """
    if graph.shape[0] <= LOCALITY_MIN_NODES:
        return None
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    csr = sp.csr_matrix(graph)
    return np.ascontiguousarray(reverse_cuthill_mckee(csr, symmetric_mode=True), dtype=np.int64)


def item_graph_tensors(
    graph: sp.spmatrix,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(graph, transpose, order, inverse order): the item graph as CSR tensors, renumbered by
    :func:`locality_order` when it is large (``order[j]`` = the item at position j), else in
    item order with ``order`` and ``inverse`` None."""
    order = locality_order(graph)
    if order is None:
        return (*graph_and_transpose(graph), None, None)
    positions = torch.as_tensor(order, dtype=torch.long)
    renumbered = sp.csr_matrix(graph)[order][:, order]
    return (*graph_and_transpose(renumbered), positions, torch.argsort(positions))


def propagate_mean(
    graph: torch.Tensor, graph_t: torch.Tensor, x: torch.Tensor, layers: int
) -> torch.Tensor:
    """Mean of the layer outputs (layer 0 included), in float32 even under autocast."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float()
        total = x  # a running sum: each layer's output is freed once added (no stack)
        for _ in range(layers):
            x = GraphMatmul.apply(graph, graph_t, x)
            total = total + x
        return total / (layers + 1)


def mean_item_graph(
    graphs: dict[str, sp.spmatrix], names: Iterable[str], n_items: int
) -> sp.csr_matrix:
    """Average of the named modality kNN graphs (each already normalised by fuse)."""
    names = list(names)
    for name in names:
        if name not in graphs:
            raise ValueError(
                f"propagation.item_graph_modalities names {name!r}, but modality_graphs has "
                f"only {sorted(graphs)}"
            )
        if graphs[name].shape != (n_items, n_items):
            raise ValueError(
                f"modality_graphs[{name!r}]: expected shape ({n_items}, {n_items}), "
                f"got {graphs[name].shape}"
            )
    total = sum(
        (sp.csr_matrix(graphs[n], dtype=np.float32) for n in names),
        sp.csr_matrix((n_items, n_items), dtype=np.float32),
    )
    return (total / max(len(names), 1)).tocsr()


def rebuilt_item_graphs(
    item_features: dict, names: Iterable[str], k: int, train: sp.spmatrix
) -> dict[str, sp.csr_matrix]:
    """The named modalities' kNN graphs rebuilt from their fused vectors at ``k`` neighbours
    (``propagation.item_graph_k``) by fuse's own builder, with its default binary weights and
    tie rule (equally similar neighbours by ``train`` interactions)."""
    from crossrec.graphs.config import FuseConfig, KnnConfig
    from crossrec.graphs.fuse import build_modality_graphs
    from crossrec.models.gate import item_degrees

    names = list(names)
    missing = [name for name in names if name not in item_features]
    if missing:
        raise ValueError(
            f"propagation.item_graph_k rebuilds the {missing} item graphs from their fused "
            f"vectors, but item_features has only {sorted(item_features)}"
        )
    chosen = {name: item_features[name] for name in names}
    return build_modality_graphs(
        {**chosen, "__order__": names}, FuseConfig(knn=KnnConfig(k=k)), item_degrees(train)
    )


def user_mean_matrix(train: sp.spmatrix) -> sp.csr_matrix:
    """(n_users, n_items) train matrix with each user's row summing to 1 (empty rows stay 0):
    times the item content, every user's mean content."""
    csr = sp.csr_matrix(train, dtype=np.float32, copy=True)
    csr.sum_duplicates()
    csr.data[:] = 1.0
    counts = np.asarray(csr.sum(axis=1)).ravel()
    scale = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return sp.diags(scale.astype(np.float32)) @ csr


def edge_sampling_weights(
    train: sp.spmatrix, n_users: int, n_items: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(users, items, weight) of every train edge, weight 1 / sqrt(deg u * deg i): FREEDOM's
    probability of keeping an edge when the graph is pruned."""
    coo = sp.coo_matrix(sp.csr_matrix(train, dtype=np.float32))
    coo.sum_duplicates()
    users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    deg_u = np.bincount(users, minlength=n_users).astype(np.float64)
    deg_i = np.bincount(items, minlength=n_items).astype(np.float64)
    weight = 1.0 / np.sqrt(deg_u[users] * deg_i[items])
    return (
        torch.as_tensor(users),
        torch.as_tensor(items),
        torch.as_tensor(weight, dtype=torch.float32),
    )


def pruned_user_item_graph(
    users: torch.Tensor,
    items: torch.Tensor,
    weight: torch.Tensor,
    keep_share: float,
    n_users: int,
    n_items: int,
) -> torch.Tensor:
    """A re-normalised user-item graph over ``keep_share`` of the edges, each drawn without
    replacement with probability ~ ``weight`` (FREEDOM): edges between popular nodes go
    first, which denoises the graph and keeps the long tail connected. Symmetric (its own
    transpose)."""
    n_keep = max(1, int(len(weight) * keep_share))
    keep = torch.multinomial(weight, n_keep, replacement=False)
    users, items = users[keep], items[keep]
    deg_u = torch.bincount(users, minlength=n_users).float()
    deg_i = torch.bincount(items, minlength=n_items).float()
    values = (deg_u[users] * deg_i[items]).rsqrt()
    rows = torch.cat([users, items + n_users])
    cols = torch.cat([items + n_users, users])
    size = n_users + n_items
    graph = torch.sparse_coo_tensor(
        torch.stack([rows, cols]),
        torch.cat([values, values]),
        (size, size),
        check_invariants=False,  # built from in-range indices just above
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta")
        return graph.coalesce().to_sparse_csr()
