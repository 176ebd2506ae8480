"""model.content_gate: content weighed per item by train degree; off = the ungated model."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from crossrec.models.bundle import build_recommender
from crossrec.models.config import ContentGateConfig, FinetuneConfig
from crossrec.models.gate import ContentGate, item_degrees

from .conftest import user_item_graph


def _config(**model) -> FinetuneConfig:
    return FinetuneConfig.model_validate({"model": {"embedding_dim": 16, **model}})


def _with_cold_item(data, item: int = 0):
    """The tiny data with every train interaction of ``item`` removed (a cold item)."""
    keep = np.ones(data.n_items, dtype=np.float32)
    keep[item] = 0.0
    train = sp.csr_matrix(data.train @ sp.diags(keep))
    train.eliminate_zeros()
    return type(data)(
        **{**data.__dict__, "train": train, "user_item_graph": user_item_graph(train)}
    )


def _build(data, seed: int = 0, **model):
    torch.manual_seed(seed)
    return build_recommender(data, _config(**model)).eval()


@pytest.mark.parametrize("kind", ["degree", "learned"])
def test_gate_falls_with_degree_and_cold_items_keep_all_content(kind):
    degree = np.array([0, 1, 5, 50, 500], dtype=np.float32)
    gate = ContentGate(ContentGateConfig(kind=kind, tau=10.0), degree)().detach().squeeze(1)
    assert gate[0] == 1.0  # cold: content is all the model knows
    assert torch.all(gate[1:-1] > gate[2:])  # strictly less content the better known
    assert 0.0 < gate[-1] < 0.05
    # the learned gate starts on the fixed schedule 1 / (1 + deg / tau)
    expected = 1.0 / (1.0 + torch.as_tensor(degree) / 10.0)
    assert torch.allclose(gate, expected, atol=1e-6)
    # a steeper schedule: more content below tau, less above
    steep = ContentGate(ContentGateConfig(kind=kind, tau=10.0, slope=2.0), degree)()
    steep = steep.detach().squeeze(1)
    assert steep[0] == 1.0 and steep[2] > gate[2] and steep[4] < gate[4]
    assert torch.allclose(steep, 1.0 / (1.0 + (torch.as_tensor(degree) / 10.0) ** 2), atol=1e-5)


def test_learned_gate_trains_and_never_rises_with_degree():
    gate = ContentGate(ContentGateConfig(kind="learned", tau=10.0), np.array([0, 3, 30, 300]))
    assert {name for name, _ in gate.named_parameters()} == {"centre", "raw_slope"}
    (-gate().sum()).backward()  # push every weight up
    assert gate.centre.grad is not None and gate.centre.grad < 0
    with torch.no_grad():
        gate.raw_slope.fill_(-30.0)  # slope -> 0+: flat, still not increasing
    values = gate().detach().squeeze(1)
    assert torch.all(values[1:-1] >= values[2:])


def test_off_by_default_and_gate_of_one_is_the_ungated_model(tiny_data):
    assert FinetuneConfig().model.content_gate.kind == "none"
    plain = _build(tiny_data)
    assert plain.content_gate is None
    assert not any("gate" in key for key in plain.state_dict())
    users = torch.arange(tiny_data.n_users)
    # a gate at 1 everywhere (tau huge) runs the gated code and gives today's scores
    wide = _build(tiny_data, content_gate={"kind": "degree", "tau": 1e12})
    assert wide.content_gate is not None
    assert torch.allclose(plain.score_users(users), wide.score_users(users), atol=1e-5)
    narrow = _build(tiny_data, content_gate={"kind": "degree", "tau": 1.0})
    assert not torch.allclose(plain.score_users(users), narrow.score_users(users), atol=1e-3)


@pytest.mark.parametrize(
    ("targets", "stage"),
    [
        (["content"], "input"),
        (["item_graph"], "input"),
        (["content", "item_graph"], "input"),
        (["content"], "output"),
    ],
)
def test_warm_items_lose_content_cold_items_keep_it(tiny_data, targets, stage):
    data = _with_cold_item(tiny_data, item=0)
    assert item_degrees(data.train)[0] == 0
    plain = _build(data)
    gate = {"kind": "degree", "tau": 1.0, "targets": targets, "stage": stage}
    gated = _build(data, content_gate=gate)
    with torch.no_grad():
        plain_items, gated_items = plain.embeddings().items, gated.embeddings().items
    assert torch.allclose(plain_items[0], gated_items[0], atol=1e-6)  # cold: full content
    warm = np.flatnonzero(item_degrees(data.train) > 0)
    assert not torch.allclose(plain_items[warm], gated_items[warm], atol=1e-4)


def test_gated_content_channel_and_checks(tiny_data):
    channel = {"content_path": "channel"}
    model = _build(tiny_data, propagation=channel, content_gate={"kind": "learned"})
    model.train()
    emb = model.embeddings()
    emb.items.sum().backward()
    assert model.content_gate.centre.grad is not None
    with pytest.raises(ValueError, match="content_gate"):
        _build(
            tiny_data,
            use_id_embedding=False,
            user_tower={"kind": "mean"},
            content_gate={"kind": "degree"},
        )
    with pytest.raises(ValueError, match="content_gate.kind"):
        _config(content_gate={"kind": "popularity"})
    # without content there is nothing to gate: no gate, no error
    assert (
        _build(tiny_data, use_content=False, content_gate={"kind": "degree"}).content_gate is None
    )


def test_output_stage_keeps_the_users_content_taste(tiny_data):
    """Gated at the output, users still see all the content of their items; only the items'
    final vectors lose theirs (and a gate of 1 is the ungated model)."""
    plain = _build(tiny_data)
    gated = _build(tiny_data, content_gate={"kind": "degree", "tau": 1.0, "stage": "output"})
    with torch.no_grad():
        a, b = plain.embeddings(), gated.embeddings()
    assert torch.allclose(a.users, b.users, atol=1e-6)
    assert not torch.allclose(a.items, b.items, atol=1e-4)
    wide = _build(tiny_data, content_gate={"kind": "learned", "tau": 1e12, "stage": "output"})
    users = torch.arange(tiny_data.n_users)
    assert torch.allclose(plain.score_users(users), wide.score_users(users), atol=1e-5)
    wide.train()
    wide.embeddings().items.sum().backward()
    assert wide.content_gate.centre.grad is not None


@pytest.mark.parametrize("stage", ["input", "output"])
def test_explanation_parts_sum_to_the_gated_item_vectors(tiny_data, stage):
    from crossrec.serving.explain import item_vector_parts

    model = _build(tiny_data, content_gate={"kind": "degree", "tau": 3.0, "stage": stage})
    _, parts = item_vector_parts(model)
    with torch.no_grad():
        items = model.embeddings().items.numpy()
    assert np.allclose(parts.sum(0), items, atol=1e-4)
