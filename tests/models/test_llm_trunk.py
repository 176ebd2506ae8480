"""Cached frozen trunk of the LLM item encoder: cache hits/misses, where soft tokens enter,
cached == uncached, LoRA on the top layers, and a LoRA run that learns."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from crossrec.models.item_towers.llm_encoder import (
    LLMFusionConfig,
    build_llm_item_encoder,
    decoder_layers,
)
from crossrec.models.item_towers.llm_trunk import TrunkCache, token_key


def _build(model_dir, texts, features, **overrides):
    torch.manual_seed(0)
    config = LLMFusionConfig(model=str(model_dir), **overrides)
    return build_llm_item_encoder(texts, features, config)


def _trunk_log(caplog) -> str:
    return " ".join(r.getMessage() for r in caplog.records if "LLM trunk" in r.getMessage())


def test_trunk_cache_hit_miss_and_invalidation(
    tiny_llama4_dir, tiny_llama_dir, toy_items, tmp_path, caplog
):
    texts, features = toy_items
    cache_dir = tmp_path / "trunk"
    kwargs = {"mode": "partial", "top_n_layers": 1, "trunk_cache_dir": str(cache_dir)}
    with caplog.at_level(logging.INFO, logger="crossrec.models.item_towers.llm_trunk"):
        first = _build(tiny_llama4_dir, texts, features, **kwargs)
        assert "over 12 item texts" in _trunk_log(caplog)  # miss: computed and saved
        folders = list(cache_dir.iterdir())
        assert len(folders) == 1 and (folders[0] / "settings.json").exists()

        caplog.clear()
        second = _build(tiny_llama4_dir, texts, features, **kwargs)
        assert "all 12 items from the cache" in _trunk_log(caplog)  # hit: nothing computed
        torch.testing.assert_close(second.item_data()["trunk"], first.item_data()["trunk"])

        caplog.clear()
        edited = list(texts)
        edited[3] = "a brand new jazz song about the ocean"
        third = _build(tiny_llama4_dir, edited, features, **kwargs)
        assert "over 1 item texts" in _trunk_log(caplog)  # only the edited text misses
        assert "(11 cached already)" in _trunk_log(caplog)
        assert not torch.equal(third.item_data()["trunk"][3], first.item_data()["trunk"][3])
        torch.testing.assert_close(third.item_data()["trunk"][5], first.item_data()["trunk"][5])

        caplog.clear()
        _build(tiny_llama_dir, texts, features, **kwargs)  # another model: another folder
        assert "over 12 item texts" in _trunk_log(caplog)
        caplog.clear()
        _build(tiny_llama4_dir, texts, features, **{**kwargs, "top_n_layers": 2})
        assert "over 12 item texts" in _trunk_log(caplog)  # another trunk depth: a miss too
    assert len(list(cache_dir.iterdir())) == 3


def test_precompute_trunk_fills_the_cache_the_build_reads(
    tiny_llama4_dir, toy_items, tmp_path, caplog
):
    from crossrec.models.item_towers.llm_encoder import precompute_trunk

    texts, features = toy_items
    kwargs = {"mode": "lora", "top_n_layers": 1, "trunk_cache_dir": str(tmp_path / "trunk")}
    config = LLMFusionConfig(model=str(tiny_llama4_dir), **kwargs)
    with caplog.at_level(logging.INFO, logger="crossrec.models.item_towers.llm_trunk"):
        precompute_trunk(texts, config, "cpu")
        assert "over 12 item texts" in _trunk_log(caplog)
        caplog.clear()
        encoder = _build(tiny_llama4_dir, texts, features, **kwargs)
        assert "all 12 items from the cache" in _trunk_log(caplog)
    fresh = _build(tiny_llama4_dir, texts, features, **{**kwargs, "trunk_cache_dir": None})
    torch.testing.assert_close(encoder.item_data()["trunk"], fresh.item_data()["trunk"])
    for bad in ({"mode": "full"}, {"trunk_cache": False}, {"trunk_cache_dir": None}):
        with pytest.raises(ValueError, match="precompute_trunk: needs llm.trunk_cache true"):
            precompute_trunk(texts, {**config.model_dump(), **bad}, "cpu")


def test_trunk_cache_store_roundtrip_and_corrupt_shard(tmp_path):
    cache = TrunkCache(tmp_path, {"model": "m", "trunk_layers": 1})
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((4, 3), np.float32)]
    keys = [token_key(np.array([5, 6])), token_key(np.array([5, 6, 7, 8]))]
    cache.append(keys, arrays)
    again = TrunkCache(tmp_path, {"model": "m", "trunk_layers": 1})
    found = again.lookup([*keys, token_key(np.array([1]))])
    assert set(found) == set(keys) and len(again) == 2
    np.testing.assert_allclose(found[keys[0]], arrays[0])
    np.testing.assert_allclose(found[keys[1]], arrays[1])
    assert TrunkCache(tmp_path, {"model": "other", "trunk_layers": 1}).lookup(keys) == {}
    keys_file = next(again.folder.glob("shard-*.keys.npy"))
    keys_file.write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"trunk cache shard .*keys\.npy cannot be read.*delete"):
        TrunkCache(tmp_path, {"model": "m", "trunk_layers": 1}).lookup(keys)


@pytest.mark.parametrize("mode", ["frozen", "lora", "partial"])
def test_cached_forward_equals_uncached(tiny_llama4_dir, toy_items, mode):
    texts, features = toy_items
    encoder = _build(
        tiny_llama4_dir, texts, features, mode=mode, top_n_layers=1, trunk_cache_dir=None
    )
    encoder.eval()
    items = torch.tensor([0, 2, 4, 7, 11])
    with torch.no_grad():
        cached = encoder._encode(items)
        uncached = encoder._encode(items, cached=False)
    # the cache holds float16: equal within its rounding
    torch.testing.assert_close(cached, uncached, rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(encoder.encode_all(batch_size=5)[items], cached)


def test_split_layers_equal_the_models_own_forward(tiny_llama4_dir, toy_items):
    """Text only (no soft tokens): trunk + top layers == one pass of the whole model."""
    texts, _ = toy_items
    encoder = _build(
        tiny_llama4_dir, texts, {"__order__": []}, top_n_layers=2, trunk_cache_dir=None
    ).eval()
    assert encoder.modalities == [] and encoder.n_trunk == 2
    whole = _build(
        tiny_llama4_dir, texts, {"__order__": []}, trunk_cache=False, trunk_cache_dir=None
    ).eval()
    assert whole.n_trunk is None
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_all(), whole.encode_all(), rtol=2e-3, atol=2e-3)


def test_soft_tokens_enter_at_the_first_trainable_layer(tiny_llama4_dir, toy_items):
    texts, features = toy_items
    encoder = _build(
        tiny_llama4_dir, texts, features, mode="partial", top_n_layers=1, trunk_cache_dir=None
    )
    trunk_before = encoder.item_data()["trunk"].clone()
    layers = decoder_layers(encoder.backbone)
    seen: dict[int, list[int]] = {i: [] for i in range(len(layers))}
    hooks = [
        layer.register_forward_pre_hook(
            lambda mod, args, kwargs, i=i: seen[i].append(args[0].shape[1]), with_kwargs=True
        )
        for i, layer in enumerate(layers)
    ]
    items = torch.tensor([0, 1])
    out = encoder(items)
    for hook in hooks:
        hook.remove()
    length = int(encoder.item_data()["text_mask"][items].sum(dim=1).max())
    assert seen[0] == seen[1] == seen[2] == []  # the trunk did not run: it came from the cache
    assert seen[3] == [2 + length]  # image + audio soft tokens, then the text, at layer 3
    out.pow(2).sum().backward()
    assert encoder.projectors["image"].proj[0].weight.grad.abs().sum() > 0
    # the trunk does not depend on the soft tokens: new image vectors leave it as it was
    features["image"]["vectors"] = features["image"]["vectors"] + 1.0
    other = _build(
        tiny_llama4_dir, texts, features, mode="partial", top_n_layers=1, trunk_cache_dir=None
    )
    torch.testing.assert_close(other.item_data()["trunk"], trunk_before)


def test_lora_adapters_only_on_the_top_layers(tiny_llama4_dir, toy_items):
    texts, features = toy_items
    encoder = _build(
        tiny_llama4_dir, texts, features, mode="lora", top_n_layers=1, trunk_cache_dir=None
    )
    names = [n for n, p in encoder.backbone.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n and ".layers.3." in n for n in names)
    everywhere = _build(
        tiny_llama4_dir, texts, features, mode="lora", trunk_cache=False, trunk_cache_dir=None
    )
    layers_with_lora = {
        n.split(".layers.")[1].split(".")[0]
        for n, p in everywhere.backbone.named_parameters()
        if p.requires_grad
    }
    assert layers_with_lora == {"0", "1", "2", "3"} and everywhere.n_trunk is None


def test_lora_run_through_train_recommender_beats_most_popular(
    tiny_data, tiny_llama4_dir, tmp_path, caplog
):
    from crossrec.metrics.ranking import evaluate_ranking, mean_metrics
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.training import train_recommender

    config = FinetuneConfig.model_validate(
        {
            "model": {
                "embedding_dim": 16,
                "content_mix": {"kind": "none"},
                "fusion": {
                    "strategy": "llm",
                    "llm": {
                        "model": str(tiny_llama4_dir),
                        "mode": "lora",
                        "top_n_layers": 1,
                        "trunk_cache_dir": str(tmp_path / "trunk"),
                    },
                },
            },
            "optim": {"lr": 0.02, "llm_lr": 0.005},
            "llm_training": {"batch_size": 64, "num_negatives": 16},
            "trainer": {"max_epochs": 6, "patience": 3, "val_ks": [10], "monitor": "val/recall@10"},
        }
    )
    result = train_recommender(
        tiny_data, config, run_dir=tmp_path / "run", enable_progress_bar=False
    )
    popularity = torch.as_tensor(np.asarray(tiny_data.train.sum(axis=0)).ravel())
    _, per_user = evaluate_ranking(
        lambda users: popularity.float().expand(len(users), -1),
        tiny_data.valid,
        tiny_data.train,
        ks=[10],
    )
    most_popular = mean_metrics(per_user)["recall@10"]
    assert result.best_score > most_popular + 0.05
    run = result.bundle["config"]
    assert run["data"]["shared_negatives"] and run["data"]["batch_size"] == 64  # llm_training
    # evaluation's extra seeds / load_recommender rebuild the encoder: the trunk comes from disk
    from crossrec.models.bundle import load_recommender

    with caplog.at_level(logging.INFO, logger="crossrec.models.item_towers.llm_trunk"):
        caplog.clear()
        load_recommender(result.bundle, tiny_data)
    assert f"all {tiny_data.n_items} items from the cache" in _trunk_log(caplog)
    lora = [k for k in result.bundle["state_dict"] if "lora_" in k]
    assert lora and all(".layers.3." in k for k in lora)
    assert not any("layers.0." in k and "lora_" not in k for k in result.bundle["state_dict"])


def test_bundle_size_logged_and_full_mode_warns(caplog):
    from crossrec.models.bundle import warn_about_size
    from crossrec.models.config import FinetuneConfig

    state = {"w": torch.zeros(1024, 256)}  # 1 MB
    for mode, level in (("lora", logging.INFO), ("full", logging.WARNING)):
        config = FinetuneConfig.model_validate(
            {"model": {"fusion": {"strategy": "llm", "llm": {"mode": mode}}}}
        )
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="crossrec.models.bundle"):
            warn_about_size(config, state)
        (record,) = caplog.records
        assert (
            record.levelno == level
            and "1.0 MB" in record.getMessage()
            or (mode == "full" and "1 MB" in record.getMessage())
        )
    caplog.clear()
    warn_about_size(FinetuneConfig(), state)  # not an LLM model: nothing to say
    assert not caplog.records


def test_shared_negatives_are_one_set_per_batch_and_mask_train_items(tiny_data):
    from crossrec.models.config import DataConfig
    from crossrec.models.data import NegativeSampler

    sampler = NegativeSampler(tiny_data.train, DataConfig(num_negatives=20), seed=0)
    users = np.arange(10)
    neg, valid = sampler.sample_shared(users)
    assert neg.shape == valid.shape and neg.shape[0] == 10 and 0 < neg.shape[1] <= 20
    assert (neg == neg[0]).all()  # the same items for every example
    train = tiny_data.train.toarray() > 0
    np.testing.assert_array_equal(valid, ~train[users[:, None], neg])
    assert not valid.all()  # some shared negatives are some user's train items (masked)


def _llm_module(tiny_data, model_dir, llm_training: dict):
    """(effective config, model, LightningModule) of a small llm-strategy recommender."""
    from crossrec.models.bundle import build_recommender
    from crossrec.models.config import FinetuneConfig, effective_config
    from crossrec.models.module import RecommenderModule

    llm = {"model": str(model_dir), "trunk_cache_dir": None}
    config = effective_config(
        FinetuneConfig.model_validate(
            {
                "model": {"embedding_dim": 8, "fusion": {"strategy": "llm", "llm": llm}},
                "llm_training": llm_training,
            }
        )
    )
    model = build_recommender(tiny_data, config)
    return config, model, RecommenderModule(model, config, tiny_data.train, tiny_data.valid)


def test_a_step_encodes_each_distinct_item_once(tiny_data, tiny_llama_dir, tmp_path):

    config, model, module = _llm_module(tiny_data, tiny_llama_dir, {"num_negatives": 6})
    assert config.data.shared_negatives and config.data.in_batch_negatives
    calls = []
    encode = model.fusion.encoder._encode
    model.fusion.encoder._encode = lambda items, **kw: calls.append(len(items)) or encode(items)
    pos = torch.tensor([0, 1, 1, 5])
    neg = torch.tensor([[1, 2, 3]] * 4)
    batch = {"users": torch.tensor([0, 1, 2, 3]), "pos": pos, "neg": neg}
    module.batch_loss(batch).backward()
    assert calls == [5]  # items 0, 1, 2, 3, 5: one call, each once


def test_projected_epoch_time_leaves_training_unchanged(tiny_data, tiny_llama_dir):
    from crossrec.models.budget import project_epoch, steps_per_epoch
    from crossrec.models.data import InteractionDataModule

    assert steps_per_epoch(38, 4) == 4 and steps_per_epoch(38, 1.0) == 38
    assert steps_per_epoch(38, 0.25) == 9 and steps_per_epoch(3, 10) == 3
    llm_training = {"batch_size": 64, "num_negatives": 8, "limit_train_batches": 2}
    config, model, module = _llm_module(tiny_data, tiny_llama_dir, llm_training)
    datamodule = InteractionDataModule(tiny_data.train, config.data, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    untouched = InteractionDataModule(tiny_data.train, config.data, seed=0)
    projection = project_epoch(module, datamodule, config.trainer.limit_train_batches)
    assert projection.steps == 2 and projection.step_s > 0 and projection.validation_s > 0
    assert 0 < projection.distinct_items <= tiny_data.n_items
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in model.parameters())
    first = next(iter(datamodule.train_dataloader()))
    expected = next(iter(untouched.train_dataloader()))
    assert torch.equal(first["neg"], expected["neg"])  # the sampler's stream is as it was
