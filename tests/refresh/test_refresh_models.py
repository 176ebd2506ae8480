"""A refresh (warm start + bounded fine-tuning, crossrec.refresh.steps.fine_tune) of models
beyond the default: a history user tower (new users are encoded from their history) and the
``llm`` fusion strategy (new items are read by the LLM item encoder from their text)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from crossrec.models.config import FinetuneConfig
from crossrec.models.training import train_recommender
from crossrec.models.warm import warm_start
from crossrec.refresh.config import RefreshConfig
from crossrec.refresh.steps import fine_tune
from tests.models.conftest import WORDS, make_tiny_data, make_tiny_llama
from tests.models.test_warm import sub_data

N_OLD_USERS, N_OLD_ITEMS, NEW_ITEM = 36, 44, 47


@pytest.fixture(scope="module")
def grown():
    """40 users and 48 items, the last 4 of each new; item 47's content and text are item 3's."""
    data = make_tiny_data(n_users=40, n_items=48)
    for entry in (data.item_features["text"], data.item_features["image"]):
        entry["vectors"][NEW_ITEM], entry["mask"][NEW_ITEM] = entry["vectors"][3], entry["mask"][3]
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(WORDS, size=5)) for _ in range(48)]
    texts[NEW_ITEM] = texts[3]
    return replace(data, item_texts=texts)


def _old(grown):
    return replace(
        sub_data(grown, N_OLD_USERS, N_OLD_ITEMS), item_texts=grown.item_texts[:N_OLD_ITEMS]
    )


def _refresh(grown, params: dict, tmp_path) -> tuple[dict, dict]:
    """(the old model's bundle, the refreshed bundle) after one fine-tuning epoch."""
    config = FinetuneConfig.model_validate(params)
    old = train_recommender(
        _old(grown), config, run_dir=tmp_path / "old", enable_progress_bar=False
    )
    new = fine_tune(grown, old.bundle, RefreshConfig(epochs=1), tmp_path / "refresh", seed=0)
    return old.bundle, new.bundle


def _params(tiny: dict, model: dict) -> dict:
    return {**tiny, "model": {**tiny["model"], **model}}


@pytest.mark.parametrize("use_id_embedding", [True, False])
def test_refresh_with_a_history_user_tower(grown, tmp_path, tiny_finetune_params, use_id_embedding):
    tower = {"kind": "attention", "history_length": 8}
    params = _params(
        tiny_finetune_params, {"user_tower": tower, "use_id_embedding": use_id_embedding}
    )
    old, new = _refresh(grown, params, tmp_path)
    assert (new["n_users"], new["n_items"]) == (grown.n_users, grown.n_items)
    warm = warm_start(old, grown)
    # the tower's learnt weights are carried over, and its history covers the new users
    tower_keys = [k for k in old["state_dict"] if k.startswith("history_encoder.")]
    assert tower_keys
    assert all(torch.equal(warm.state_dict()[k], old["state_dict"][k]) for k in tower_keys)
    for user in range(N_OLD_USERS, grown.n_users):
        history = set(warm.history[user].tolist()) - {grown.n_items}  # n_items = padding
        assert history and history <= set(grown.train[user].indices)
    with torch.no_grad():
        users = warm.embeddings().users
        scores = warm.score_users(torch.arange(grown.n_users))
    assert torch.isfinite(scores).all()
    # a new user is encoded from their own history: different histories, different vectors
    assert not torch.allclose(users[N_OLD_USERS], users[N_OLD_USERS + 1])


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return make_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


def test_refresh_with_the_llm_fusion_strategy(grown, tmp_path, tiny_finetune_params, tiny_llama):
    llm = {"model": str(tiny_llama), "trunk_cache_dir": None}
    params = _params(
        tiny_finetune_params, {"embedding_dim": 8, "fusion": {"strategy": "llm", "llm": llm}}
    )
    params["trainer"] = {**params["trainer"], "max_epochs": 1}
    params["llm_training"] = {"batch_size": 64, "num_negatives": 4, "limit_train_batches": 2}
    old, new = _refresh(grown, params, tmp_path)
    assert (new["n_users"], new["n_items"]) == (grown.n_users, grown.n_items)
    warm = warm_start(old, grown)
    assert torch.count_nonzero(warm.item_id.weight[N_OLD_ITEMS:]) == 0  # content only
    with torch.no_grad():
        late = warm.fusion.encode_all(grown.n_items, torch.device("cpu"))
        scores = warm.score_users(torch.arange(grown.n_users))
    # the new item has item 3's text and features: the old model's LLM encoder (carried over)
    # reads it to item 3's content vector, before the item is trained on
    assert torch.linalg.vector_norm(late[NEW_ITEM]) > 0
    assert torch.allclose(late[NEW_ITEM], late[3], atol=1e-5)
    assert not torch.allclose(late[NEW_ITEM], late[5], atol=1e-3)  # ... and not every item's
    assert torch.isfinite(scores).all() and scores[:, NEW_ITEM].std() > 0



def _trunk_entries(cache_dir) -> int:
    """Item texts held by the trunk cache (one settings fingerprint folder)."""
    folders = [p for p in cache_dir.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return sum(len(np.load(f)) for f in folders[0].glob("shard-*.keys.npy"))


def test_llm_refresh_reads_known_texts_from_the_trunk_cache_and_adds_only_new_ones(
    grown, tmp_path, tiny_finetune_params, tiny_llama, caplog
):
    """With the disk trunk cache on, a refresh computes the trunk for the new items' texts
    only (item 47 repeats item 3's text: a hit), and the cached states give the item vectors
    a computation without the cache gives."""
    import logging

    cache_dir = tmp_path / "trunk"
    llm = {"model": str(tiny_llama), "trunk_cache_dir": str(cache_dir), "top_n_layers": 1}
    params = _params(
        tiny_finetune_params, {"embedding_dim": 8, "fusion": {"strategy": "llm", "llm": llm}}
    )
    params["trainer"] = {**params["trainer"], "max_epochs": 1}
    params["llm_training"] = {"batch_size": 64, "num_negatives": 4, "limit_train_batches": 2}
    old_texts = set(grown.item_texts[:N_OLD_ITEMS])
    new_texts = set(grown.item_texts[N_OLD_ITEMS:]) - old_texts
    assert len(new_texts) == 3  # items 44-46; item 47's text is item 3's

    with caplog.at_level(logging.INFO, logger="crossrec.models.item_towers.llm_trunk"):
        _, new = _refresh(grown, params, tmp_path)
    assert _trunk_entries(cache_dir) == len(old_texts) + len(new_texts)
    computed = [r.getMessage() for r in caplog.records if "LLM trunk:" in r.getMessage()]
    assert any(f"over {len(new_texts)} item texts" in m for m in computed), computed

    def item_vectors(bundle) -> torch.Tensor:
        with torch.no_grad():
            return warm_start(bundle, grown).fusion.encode_all(grown.n_items, torch.device("cpu"))

    from_cache = item_vectors(new)
    config = FinetuneConfig.model_validate(new["config"])
    config.model.fusion.llm.trunk_cache_dir = None
    from_scratch = item_vectors({**new, "config": config.model_dump(mode="json")})
    assert _trunk_entries(cache_dir) == len(old_texts) + len(new_texts)  # nothing re-added
    assert torch.allclose(from_cache, from_scratch, atol=1e-3)
    assert torch.allclose(from_cache[NEW_ITEM], from_cache[3], atol=1e-5)
