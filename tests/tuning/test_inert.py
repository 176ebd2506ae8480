"""The no-op rules of ``crossrec.tuning.inert`` hold in the model: a setting said to do nothing
leaves the training loss and the scores unchanged, and acts where it is said to act."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from crossrec.models.bundle import build_recommender
from crossrec.models.config import FinetuneConfig
from crossrec.models.module import RecommenderModule
from crossrec.tuning.inert import ACTS_ONLY_WHEN, effective_params, inert_reason
from tests.models.conftest import make_tiny_data

DATA = make_tiny_data(n_users=12, n_items=24, per_user=5)
BATCH = {
    "users": torch.tensor([0, 1, 2, 3]),
    "pos": torch.tensor([0, 1, 2, 3]),
    "neg": torch.tensor([[4, 5], [6, 7], [8, 9], [10, 11]]),
}


def module(**loss: Any) -> RecommenderModule:
    config = FinetuneConfig.model_validate(
        {
            "model": {"embedding_dim": 8, "user_tower": {"kind": "mean", "history_length": 4}},
            "data": {"batch_size": 8, "num_negatives": 2},
            "loss": loss,
            "trainer": {"seed": 0, "cpu_threads": 1},
        }
    )
    torch.manual_seed(0)
    return RecommenderModule(build_recommender(DATA, config), config, DATA.train, DATA.valid)


def loss_and_scores(**loss: Any) -> tuple[float, torch.Tensor]:
    mod = module(**loss)
    with torch.no_grad():
        return mod.batch_loss(BATCH).item(), mod.model.score_users(torch.tensor([0, 1]))


@pytest.mark.parametrize("kind", ["bpr", "bce"])
@pytest.mark.parametrize(
    "changed",
    [{"cosine": True}, {"temperature": 0.05}, {"logq_correction": False}],
)
def test_said_inert_changes_nothing(kind: str, changed: dict[str, Any]):
    key = f"loss.{next(iter(changed))}"
    assert key in ACTS_ONLY_WHEN
    params = {"loss": {"kind": kind, **changed}}
    assert inert_reason(key, params)
    plain_loss, plain_scores = loss_and_scores(kind=kind)
    other_loss, other_scores = loss_and_scores(kind=kind, **changed)
    assert other_loss == pytest.approx(plain_loss, rel=1e-6)
    assert torch.allclose(other_scores, plain_scores)
    assert effective_params(params) == effective_params({"loss": {"kind": kind}})


@pytest.mark.parametrize("changed", [{"cosine": True}, {"temperature": 0.05}])
def test_they_act_under_softmax(changed: dict[str, Any]):
    key = f"loss.{next(iter(changed))}"
    assert inert_reason(key, {"loss": {"kind": "softmax"}}) == ""
    plain_loss, _ = loss_and_scores(kind="softmax")
    other_loss, _ = loss_and_scores(kind="softmax", **changed)
    assert other_loss != pytest.approx(plain_loss, rel=1e-4)
