"""Fusion strategies on the tiny data: shapes, missing modalities, what trains and what not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossrec.models.config import FusionConfig
from crossrec.models.item_towers import build_fusion
from crossrec.models.item_towers.modality import check_item_features, modality_order

DIM = 16


def _fusion(strategy: str, features: dict):
    torch.manual_seed(0)
    config = FusionConfig(strategy=strategy, attention_heads=2)
    return build_fusion(config, features, modality_order(features), DIM)


@pytest.mark.parametrize("strategy", ["concat", "gated", "attention"])
def test_shapes_and_gradients(strategy, tiny_data):
    fusion = _fusion(strategy, tiny_data.item_features)
    out_all = fusion(None)
    assert out_all.shape == (tiny_data.n_items, DIM)
    idx = torch.tensor([0, 5, 7])
    assert torch.allclose(fusion(idx), out_all[idx], atol=1e-5)
    out_all.pow(2).sum().backward()
    trainable = dict(fusion.named_parameters())
    assert trainable, "fusion must have trainable parameters"
    for name, param in trainable.items():
        assert param.grad is not None, f"no gradient reached {name}"
    # the feature vectors are frozen buffers: not parameters, never in the state dict
    assert not any(name.startswith("tokens.vectors") for name in trainable)
    assert not any("vectors_" in key or "mask_" in key for key in fusion.state_dict())
    for buffer in fusion.buffers():
        assert not buffer.requires_grad


@pytest.mark.parametrize("strategy", ["concat", "gated", "attention"])
def test_missing_modality_uses_learned_vector(strategy, tiny_data):
    features = tiny_data.item_features
    image_mask = features["image"]["mask"]
    missing = np.flatnonzero(~image_mask)[:2]
    assert len(missing) == 2
    changed = {k: (dict(v) if isinstance(v, dict) else v) for k, v in features.items()}
    vectors = features["image"]["vectors"].copy()
    vectors[missing] = 123.0  # garbage behind a False mask must not matter
    changed["image"]["vectors"] = vectors
    before = _fusion(strategy, features).eval()(torch.as_tensor(missing))
    after = _fusion(strategy, changed).eval()(torch.as_tensor(missing))
    assert torch.allclose(before, after, atol=1e-6)


def test_gated_weights_are_per_item_distributions(tiny_data):
    fusion = _fusion("gated", tiny_data.item_features)
    weights = fusion.modality_weights(torch.arange(6))
    assert weights.shape == (6, 2)
    assert torch.allclose(weights.sum(1), torch.ones(6), atol=1e-6)
    assert (weights > 0).all()


def test_feature_checks_name_the_problem(tiny_data):
    bad = dict(tiny_data.item_features)
    bad["text"] = {"vectors": np.zeros((3, 4), np.float32), "mask": np.ones(3, bool)}
    with pytest.raises(ValueError, match=r"fused_item_features\['text'\]\['vectors'\].*shape"):
        check_item_features(bad, tiny_data.n_items)
    with pytest.raises(ValueError, match="__order__"):
        check_item_features({"__order__": ["audio"]}, tiny_data.n_items)


def test_no_modalities_is_a_clear_error():
    with pytest.raises(ValueError, match="use_content: false"):
        build_fusion(FusionConfig(strategy="concat"), {}, [], DIM)
