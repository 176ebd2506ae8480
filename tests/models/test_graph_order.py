"""A large item graph is stored and propagated in a locality order (reverse Cuthill-McKee):
the model, its gradients, its explanations and serving's new-item layers are the same as in
item order, up to float rounding."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
import torch

from crossrec.models import graph_ops
from crossrec.models.bundle import build_recommender
from crossrec.models.config import FinetuneConfig


def _pair(tiny_data, monkeypatch):
    """The same model (same weights) with the item graph in item order and in locality order."""
    config = FinetuneConfig.model_validate({"model": {"embedding_dim": 16}})
    torch.manual_seed(0)
    plain = build_recommender(tiny_data, config)
    monkeypatch.setattr(graph_ops, "LOCALITY_MIN_NODES", 0)
    torch.manual_seed(0)
    ordered = build_recommender(tiny_data, config)
    ordered.load_state_dict(plain.state_dict())
    return plain, ordered


def test_locality_order_keeps_neighbours_close():
    rng = np.random.default_rng(0)
    n = 400
    ring = sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1], format="csr")  # a path graph
    shuffle = rng.permutation(n)
    scattered = ring[shuffle][:, shuffle]
    assert graph_ops.locality_order(scattered) is None  # small graphs stay in item order
    graph_ops_min = graph_ops.LOCALITY_MIN_NODES
    try:
        graph_ops.LOCALITY_MIN_NODES = 0
        order = graph_ops.locality_order(scattered)
    finally:
        graph_ops.LOCALITY_MIN_NODES = graph_ops_min
    assert sorted(order) == list(range(n))
    coo = scattered[order][:, order].tocoo()
    assert np.abs(coo.row - coo.col).max() == 1  # the bandwidth of a path, restored
    assert np.abs(scattered.tocoo().row - scattered.tocoo().col).max() > 100


def test_the_ordered_model_scores_and_learns_as_the_plain_one(tiny_data, monkeypatch):
    plain, ordered = _pair(tiny_data, monkeypatch)
    assert plain.ii_layers > 0 and plain.ii_order is None and ordered.ii_order is not None
    assert not torch.equal(ordered.ii_order, torch.arange(tiny_data.n_items))
    for model in (plain, ordered):
        model.train()
        model.embeddings().items.square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), ordered.named_parameters(), strict=True):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-5), name
    plain.eval(), ordered.eval()
    for a, b in zip(plain.scoring_vectors(), ordered.scoring_vectors(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_explanations_and_new_item_layers_follow_the_order(tiny_data, monkeypatch):
    from crossrec.serving.explain import item_vector_parts
    from crossrec.serving.newitem import _item_graph_layers

    plain, ordered = _pair(tiny_data, monkeypatch)
    plain.eval(), ordered.eval()
    names, parts = item_vector_parts(ordered)
    assert names == item_vector_parts(plain)[0]
    np.testing.assert_allclose(parts, item_vector_parts(plain)[1], atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(parts.sum(0), ordered.embeddings().items.numpy(), atol=1e-4)
    layers = [
        _item_graph_layers(SimpleNamespace(lock=threading.Lock(), cache={}, model=m))
        for m in (plain, ordered)
    ]
    for a, b in zip(*layers, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
