"""model.content_mix as one trained model: train_recommender trains the content model and its
ID-only twin, chooses the point on validation, and the bundle reloads, scores, refreshes and is
served as that mix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from crossrec.config import deep_merge
from crossrec.models.bundle import load_recommender
from crossrec.models.config import ContentMixConfig, FinetuneConfig
from crossrec.models.content_mix import (
    MixChoice,
    bound,
    mix_scorer,
    validation_values,
)
from crossrec.models.fingerprint import model_fingerprint
from crossrec.models.gate import item_degrees
from crossrec.models.mixed import MIX_KEY, MixedRecommender, content_part
from crossrec.models.training import train_recommender
from crossrec.models.warm import warm_state
from crossrec.serving.catalogue import Catalogue
from crossrec.serving.config import AnnConfig, parse_recommend_config
from crossrec.serving.slots import TailSlots

MIX = {
    "taus": [0.0, 10.0],
    "slopes": [1.0],
    "scales": [1.0],
    "slots": [0, 1],
    "k": 5,
}


def _config(**model) -> FinetuneConfig:
    return FinetuneConfig.model_validate(
        {
            "model": deep_merge({"embedding_dim": 16, "content_mix": MIX}, model),
            "data": {"batch_size": 64, "num_negatives": 2},
            "trainer": {"max_epochs": 2, "seed": 0, "cpu_threads": 1, "val_ks": [5, 20]},
        }
    )


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("mix")
    result = train_recommender(tiny_data, _config(), run_dir=run_dir, enable_progress_bar=False)
    return result, run_dir


def _parts(bundle, data):
    twin = load_recommender(bundle[MIX_KEY]["twin"], data)
    content = load_recommender(content_part(bundle), data)
    return twin.scoring_vectors(), content.scoring_vectors()


def test_both_models_train_and_the_bundle_reloads_as_the_chosen_mix(trained, tiny_data):
    result, run_dir = trained
    bundle = result.bundle
    assert (run_dir / "twin").is_dir() and (run_dir / "content").is_dir()
    twin_config = bundle[MIX_KEY]["twin"]["config"]["model"]
    assert twin_config["use_content"] is False and twin_config["content_mix"]["kind"] == "none"
    assert bundle["config"]["model"]["content_mix"]["kind"] == "popularity"
    assert set(result.history["part"]) == {"twin", "content"}
    # every grid point was scored on validation: 2 taus x 2 slot counts, tau 0 once per
    # count, and the content model alone
    assert len(bundle[MIX_KEY]["points"]) == 5

    model = load_recommender(bundle, tiny_data)
    assert isinstance(model, MixedRecommender) and model.mixed
    assert model.modalities == ["text", "image"]  # everything else is the content model's
    choice = MixChoice(**bundle[MIX_KEY]["choice"])
    config = ContentMixConfig.model_validate(bundle["config"]["model"]["content_mix"])
    twin, content = _parts(bundle, tiny_data)
    expected = bound(
        mix_scorer(twin, content, item_degrees(tiny_data.train), choice, config), tiny_data.train
    )
    users = torch.arange(tiny_data.n_users)
    assert torch.allclose(model.score_users(users), expected.score_users(users), atol=1e-5)
    # the result's best score is the chosen point's validation value, recomputed here
    value = validation_values(model, tiny_data.valid, tiny_data.train, "recall", 5)[0]
    assert result.best_score == pytest.approx(value, abs=1e-6)


def test_a_model_without_content_is_trained_once(tiny_data, tmp_path):
    result = train_recommender(
        tiny_data, _config(use_content=False), run_dir=tmp_path, enable_progress_bar=False
    )
    assert MIX_KEY not in result.bundle
    assert result.bundle["config"]["model"]["content_mix"]["kind"] == "none"
    assert not (tmp_path / "twin").exists()


def test_a_refresh_starts_both_models_and_the_fingerprint_covers_the_twin(trained, tiny_data):
    bundle = trained[0].bundle
    state = warm_state(bundle, tiny_data)
    assert set(state) == {"twin", "content"}
    assert not any("fusion" in name for name in state["twin"])
    assert any("fusion" in name for name in state["content"])
    other_twin = {
        **bundle[MIX_KEY]["twin"],
        "state_dict": {k: v + 1 for k, v in bundle[MIX_KEY]["twin"]["state_dict"].items()},
    }
    changed = {**bundle, MIX_KEY: {**bundle[MIX_KEY], "twin": other_twin}}
    assert model_fingerprint(changed) != model_fingerprint(bundle)


def _slotted_model(trained, data, slots: int = 2) -> MixedRecommender:
    """The trained parts mixed at a point with tail slots (the choice on tiny data may have
    none)."""
    bundle = trained[0].bundle
    model = load_recommender(bundle, data)
    return MixedRecommender(
        model.content,
        model.twin,
        MixChoice(10.0, 1.0, 1.0, slots),
        model.mix,
        item_degrees(data.train),
        data.train,
    )


def _catalogue(model, data) -> Catalogue:
    users, items = model.scoring_vectors()
    ids = np.array([f"i{i}" for i in range(data.n_items)])
    return Catalogue(
        user_vectors=users.numpy(),
        item_vectors=items.numpy(),
        user_ids=np.array([f"u{u}" for u in range(data.n_users)]),
        item_ids=ids,
        seen=data.train,
        items=pd.DataFrame({"item_idx": np.arange(data.n_items), "item_id": ids, "title": ids}),
        config=parse_recommend_config({}),
        tail_slots=TailSlots.of(model, AnnConfig(), users.numpy()),
    )


@pytest.mark.parametrize("k", [5, 3, 8])
def test_served_lists_are_the_lists_evaluate_ranks(trained, tiny_data, k):
    """The catalogue's lists (index search, then the tail slots) hold the items, in the order,
    that the model's slotted scores rank first: what evaluate measured is what is served."""
    model = _slotted_model(trained, tiny_data)
    catalogue = _catalogue(model, tiny_data)
    assert catalogue.tail_slots is not None and catalogue.tail_slots.slots == 2
    users = torch.arange(tiny_data.n_users)
    scores = model.score_users(users)
    scores[torch.from_numpy(tiny_data.train.toarray() > 0)] = -torch.inf
    reached_tail = 0
    for user in range(tiny_data.n_users):
        _, served = catalogue.recommend_user(user, k)
        expected = torch.argsort(-scores[user], stable=True)[:k].numpy()
        assert list(served) == list(expected), user
        reached_tail += int(np.isin(served, catalogue.tail_slots.tail).sum())
    if k >= model.mix.k:  # the slotted places are the last of the first k
        assert reached_tail >= tiny_data.n_users



def test_the_choice_reads_at_most_max_choice_users_and_stopping_reads_them_all(tiny_data):
    from crossrec.models.mixed import stopping_data

    config = _config(content_mix={"max_choice_users": 10})
    stop, choice = stopping_data(tiny_data, config)
    assert stop is tiny_data  # early stopping: every validation user
    users = np.flatnonzero(np.diff(choice.indptr) > 0)
    assert len(users) == 10
    assert (choice[users] != tiny_data.valid[users]).nnz == 0  # those users' pairs, whole
    again = stopping_data(tiny_data, config)[1]
    assert (again != choice).nnz == 0  # seeded
    assert stopping_data(tiny_data, _config())[1] is tiny_data.valid  # 40 users <= 10,000
