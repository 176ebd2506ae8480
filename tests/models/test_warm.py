"""Warm start (crossrec.models.warm): a trained model carried over to grown data keeps what it
learnt, gives new items their content vector and new users their history's."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from crossrec.models.config import FinetuneConfig
from crossrec.models.inputs import TrainingData
from crossrec.models.training import train_recommender
from crossrec.models.warm import warm_start, warm_state

from .conftest import knn_item_graph, make_tiny_data, user_item_graph

N_OLD_USERS, N_OLD_ITEMS = 36, 44


def sub_data(full: TrainingData, n_users: int, n_items: int) -> TrainingData:
    """The first users / items of ``full``: the data before an increment appended the rest."""
    features = {
        k: v
        if k.startswith("__")
        else {**v, "vectors": v["vectors"][:n_items], "mask": v["mask"][:n_items]}
        for k, v in full.item_features.items()
    }
    train = sp.csr_matrix(full.train[:n_users, :n_items])
    return TrainingData(
        n_users=n_users,
        n_items=n_items,
        train=train,
        valid=sp.csr_matrix(full.valid[:n_users, :n_items]),
        item_features=features,
        modality_graphs={
            m: knn_item_graph(features[m]["vectors"], features[m]["mask"], 5)
            for m in ("text", "image")
        },
        user_item_graph=user_item_graph(train),
    )


@pytest.fixture(scope="module")
def grown() -> TrainingData:
    """48 items (the last 4 new) and 40 users (the last 4 new); new item 47 has no interaction
    yet and the content of item 3."""
    full = make_tiny_data(n_users=40, n_items=48)
    for entry in (full.item_features["text"], full.item_features["image"]):
        entry["vectors"][47], entry["mask"][47] = entry["vectors"][3], entry["mask"][3]
    keep = np.ones(48, bool)
    keep[47] = False
    train = sp.csr_matrix(full.train @ sp.diags(keep.astype(np.float32)))
    train.eliminate_zeros()
    full.train, full.user_item_graph = train, user_item_graph(train)
    full.valid = sp.csr_matrix(full.valid @ sp.diags(keep.astype(np.float32)))
    full.modality_graphs = {
        m: knn_item_graph(full.item_features[m]["vectors"], full.item_features[m]["mask"], 5)
        for m in ("text", "image")
    }
    return full


@pytest.fixture(scope="module")
def old_bundle(grown, tmp_path_factory, tiny_finetune_params) -> dict:
    old = sub_data(grown, N_OLD_USERS, N_OLD_ITEMS)
    config = FinetuneConfig.model_validate(tiny_finetune_params)
    result = train_recommender(
        old, config, run_dir=tmp_path_factory.mktemp("old"), enable_progress_bar=False
    )
    return result.bundle


def test_known_users_items_and_shared_weights_are_reused(old_bundle, grown):
    model = warm_start(old_bundle, grown)
    state = model.state_dict()
    old = old_bundle["state_dict"]
    assert torch.equal(state["user_id.weight"][:N_OLD_USERS], old["user_id.weight"])
    assert torch.equal(state["item_id.weight"][:N_OLD_ITEMS], old["item_id.weight"])
    shared = [k for k in old if k not in ("user_id.weight", "item_id.weight")]
    assert shared and all(torch.equal(state[k], old[k]) for k in shared)
    # new items start from content alone: their ID rows are zero
    assert torch.count_nonzero(state["item_id.weight"][N_OLD_ITEMS:]) == 0


def test_new_users_start_from_their_history(old_bundle, grown):
    model = warm_start(old_bundle, grown, new_users="history")
    with torch.no_grad():
        items = model.item_ego()
    for user in range(N_OLD_USERS, grown.n_users):
        liked = grown.train[user].indices
        assert len(liked) > 0
        expected = items[liked].mean(dim=0)
        assert torch.allclose(model.user_id.weight[user], expected, atol=1e-5)
    random = warm_start(old_bundle, grown, new_users="random")
    assert not torch.allclose(
        random.user_id.weight[N_OLD_USERS:], model.user_id.weight[N_OLD_USERS:]
    )
    # known users are the same either way
    assert torch.equal(random.user_id.weight[:N_OLD_USERS], model.user_id.weight[:N_OLD_USERS])


def test_new_item_gets_a_content_vector_before_any_interaction(old_bundle, grown):
    model = warm_start(old_bundle, grown)
    assert grown.train[:, 47].nnz == 0
    with torch.no_grad():
        content = model.fusion(None)
        ego = model.item_ego()
        scores = model.score_users(torch.arange(grown.n_users))
    # item 47 has item 3's content and no interaction: its vector is that content, learnt by
    # the old model's fusion weights (not zero, not random)
    assert torch.linalg.vector_norm(ego[47]) > 0.1
    assert torch.allclose(ego[47], content[3], atol=1e-6)
    assert scores[:, 47].std() > 0  # users rank it differently, from its content


def test_fine_tuning_starts_from_the_warm_state(old_bundle, grown, tmp_path, tiny_finetune_params):
    frozen_lr = FinetuneConfig.model_validate(
        {
            **tiny_finetune_params,
            "optim": {"lr": 1e-12},
            "trainer": {**tiny_finetune_params["trainer"], "max_epochs": 1},
        }
    )
    state = warm_state(old_bundle, grown)
    warm = train_recommender(
        grown, frozen_lr, run_dir=tmp_path / "warm", enable_progress_bar=False, initial_state=state
    )
    cold = train_recommender(grown, frozen_lr, run_dir=tmp_path / "cold", enable_progress_bar=False)
    old_users = old_bundle["state_dict"]["user_id.weight"]
    assert torch.allclose(
        warm.bundle["state_dict"]["user_id.weight"][:N_OLD_USERS], old_users, atol=1e-6
    )
    assert not torch.allclose(
        cold.bundle["state_dict"]["user_id.weight"][:N_OLD_USERS], old_users, atol=1e-3
    )


def test_data_that_is_not_a_continuation_fails_clearly(old_bundle, grown):
    smaller = sub_data(grown, N_OLD_USERS - 1, N_OLD_ITEMS)
    with pytest.raises(ValueError, match="35 users, fewer than the 36 the model was trained on"):
        warm_start(old_bundle, smaller)


def test_item_biases_carry_over_and_new_items_start_without_an_id_bias(
    grown, tmp_path, tiny_finetune_params
):
    """model.id_bias is a per-item table: known items keep theirs, new items start at 0 (like
    their ID vector) and are scored by their content bias alone."""
    params = {**tiny_finetune_params}
    params["model"] = {**params.get("model", {}), "id_bias": True, "content_bias": True}
    config = FinetuneConfig.model_validate(params)
    old = sub_data(grown, N_OLD_USERS, N_OLD_ITEMS)
    bundle = train_recommender(old, config, run_dir=tmp_path, enable_progress_bar=False).bundle
    learnt = bundle["state_dict"]["id_bias.weight"]
    assert learnt.shape == (N_OLD_ITEMS, 1) and torch.count_nonzero(learnt) > 0
    model = warm_start(bundle, grown)
    state = model.state_dict()
    assert state["id_bias.weight"].shape == (grown.n_items, 1)
    assert torch.equal(state["id_bias.weight"][:N_OLD_ITEMS], learnt)
    assert torch.count_nonzero(state["id_bias.weight"][N_OLD_ITEMS:]) == 0
    with torch.no_grad():
        bias = model.item_bias()
        content_bias = model.content_bias(model.fusion(None)).squeeze(1)
    torch.testing.assert_close(bias[47], content_bias[3])  # item 3's content, no ID bias
