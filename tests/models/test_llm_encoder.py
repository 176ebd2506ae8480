"""LLM item encoder: soft tokens + text through a (tiny, random) LLaMA, in every training mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossrec.config import ConfigError
from crossrec.models.item_towers.llm_encoder import (
    LLMFusionConfig,
    build_llm_item_encoder,
    llm_parameter_groups,
)


def _build(model_dir, texts, features, **overrides):
    torch.manual_seed(0)
    overrides.setdefault("trunk_cache_dir", None)
    config = LLMFusionConfig(model=str(model_dir), **overrides)
    return build_llm_item_encoder(texts, features, config)


def _backward(encoder, items=(0, 1, 2, 4, 7)):
    encoder.zero_grad(set_to_none=True)
    out = encoder(torch.tensor(items))
    (out.pow(2).sum()).backward()
    return out


def _grad_names(encoder):
    return {
        n for n, p in encoder.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0
    }


def test_shapes_out_dim_and_repeated_items(tiny_llama_dir, toy_items):
    texts, features = toy_items
    encoder = _build(tiny_llama_dir, texts, features)
    assert encoder.out_dim == 32 and encoder.modalities == ["image", "audio"]
    assert all(m.training for m in encoder.modules())  # like any fresh nn.Module
    out = encoder(torch.tensor([0, 3, 3, 11]))
    assert out.shape == (4, 32) and out.dtype == torch.float32
    torch.testing.assert_close(out[1], out[2])
    headed = _build(
        tiny_llama_dir, texts, features, out_dim=10, n_soft_tokens={"image": 3, "audio": 1}
    )
    assert headed.out_dim == 10 and headed(torch.tensor([1, 2])).shape == (2, 10)
    assert headed.projectors["image"].n_tokens == 3


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_padding_does_not_change_an_items_vector(tiny_llama_dir, toy_items, pooling):
    texts, features = toy_items
    encoder = _build(tiny_llama_dir, texts, features, pooling=pooling).eval()
    lengths = encoder.item_data()["text_mask"].sum(dim=1)
    short, long = int(lengths.argmin()), int(lengths.argmax())
    assert lengths[short] < lengths[long]
    with torch.no_grad():
        alone = encoder(torch.tensor([short]))
        batched = encoder(torch.tensor([short, long]))[:1]
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        encoder.encode_all(batch_size=5)[short], alone[0], atol=1e-5, rtol=1e-5
    )


def test_soft_tokens_carry_the_modality_and_missing_items_use_the_learned_token(
    tiny_llama_dir, toy_items
):
    texts, features = toy_items
    encoder = _build(tiny_llama_dir, texts, features).eval()
    with torch.no_grad():
        before = encoder(torch.tensor([0, 2]))
        encoder.item_data()["vectors/image"][0] += 1.0  # present item: its vector matters
        encoder.item_data()["vectors/image"][2] += 1.0  # missing item: the vector is ignored
        after = encoder(torch.tensor([0, 2]))
    assert not torch.allclose(before[0], after[0])
    torch.testing.assert_close(before[1], after[1])


def test_frozen_mode_trains_only_projectors(tiny_llama_dir, toy_items):
    texts, features = toy_items
    encoder = _build(tiny_llama_dir, texts, features, mode="frozen")
    assert list(encoder.llm_parameters()) == [] and encoder.trainable_share() == 0.0
    _backward(encoder)
    names = _grad_names(encoder)
    assert names and all(n.startswith("projectors.") for n in names)
    assert {
        "projectors.image.proj.0.weight",
        "projectors.audio.proj.0.weight",
        "projectors.image.missing",
    } <= names
    assert all(p.grad is None for p in encoder.backbone.parameters())


def test_lora_mode_trains_adapters_and_projectors_not_base_weights(tiny_llama_dir, toy_items):
    texts, features = toy_items
    encoder = _build(
        tiny_llama_dir, texts, features, mode="lora", lora_r=2, lora_alpha=4, lora_dropout=0.0
    )
    assert 0 < encoder.trainable_share() < 0.05
    llm_names = {n for n, p in encoder.backbone.named_parameters() if p.requires_grad}
    assert llm_names and all("lora_" in n for n in llm_names)
    assert {n.split(".")[-4] for n in llm_names} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    # LoRA B starts at zero, so A gets no gradient on the first step; one SGD step makes both move
    _backward(encoder)
    torch.optim.SGD(encoder.parameters(), lr=0.1).step()
    _backward(encoder)
    names = _grad_names(encoder)
    assert any("lora_A" in n for n in names) and any("lora_B" in n for n in names)
    assert any(n.startswith("projectors.") for n in names)
    frozen = [p for n, p in encoder.backbone.named_parameters() if "lora_" not in n]
    assert frozen and all(p.grad is None and not p.requires_grad for p in frozen)


def test_partial_mode_trains_only_top_layers(tiny_llama4_dir, toy_items):
    texts, features = toy_items
    encoder = _build(tiny_llama4_dir, texts, features, mode="partial", top_n_layers=1)
    _backward(encoder)
    trainable = {n for n, p in encoder.backbone.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("layers.3.", "norm.")) for n in trainable)
    names = _grad_names(encoder)
    assert any(n.startswith("backbone.layers.3.") for n in names)
    assert not any(
        n.startswith(
            (
                "backbone.layers.0.",
                "backbone.layers.1.",
                "backbone.layers.2.",
                "backbone.embed_tokens",
            )
        )
        for n in names
    )
    with pytest.raises(ValueError, match="top_n_layers=5"):
        _build(tiny_llama4_dir, texts, features, mode="partial", top_n_layers=5)


def test_full_mode_trains_everything_with_gradient_checkpointing(tiny_llama_dir, toy_items):
    texts, features = toy_items
    plain = _build(tiny_llama_dir, texts, features, mode="full")
    ckpt = _build(tiny_llama_dir, texts, features, mode="full", gradient_checkpointing=True)
    assert (
        ckpt.backbone.is_activation_checkpointing and not plain.backbone.is_activation_checkpointing
    )
    saved = {}
    outputs = {}
    for key, enc in (("plain", plain), ("ckpt", ckpt)):
        count = [0]

        def pack(t, count=count):
            count[0] += 1
            return t

        enc.zero_grad(set_to_none=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            outputs[key] = enc(torch.tensor((0, 1, 2, 4, 7)))
        outputs[key].pow(2).sum().backward()
        saved[key] = count[0]
    # checkpointed layers keep only their inputs for backward and recompute the rest
    assert saved["ckpt"] < saved["plain"] / 2
    out_plain, out_ckpt = outputs["plain"], outputs["ckpt"]
    torch.testing.assert_close(out_plain, out_ckpt, atol=1e-5, rtol=1e-5)
    assert plain.trainable_share() == 1.0
    for (name, p), (_, q) in zip(plain.named_parameters(), ckpt.named_parameters(), strict=True):
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)
    assert plain.backbone.layers[0].self_attn.q_proj.weight.grad is not None


def test_parameter_groups_separate_llm_learning_rate(tiny_llama_dir, toy_items):
    texts, features = toy_items
    encoder = _build(tiny_llama_dir, texts, features, mode="lora", lora_r=2)
    model = torch.nn.ModuleDict({"item_tower": encoder, "user_tower": torch.nn.Embedding(5, 32)})
    groups = {g["name"]: g for g in llm_parameter_groups(model, lr=1e-3, llm_lr=1e-4)}
    assert groups["llm"]["lr"] == 1e-4 and groups["fusion"]["lr"] == 1e-3
    assert {id(p) for p in groups["llm"]["params"]} == {id(p) for p in encoder.llm_parameters()}
    assert any(p is model["user_tower"].weight for p in groups["fusion"]["params"])
    n_trainable = sum(1 for p in model.parameters() if p.requires_grad)
    assert len(groups["llm"]["params"]) + len(groups["fusion"]["params"]) == n_trainable
    frozen = _build(tiny_llama_dir, texts, features, mode="frozen")
    assert [g["name"] for g in llm_parameter_groups(frozen, 1e-3, 1e-4)] == ["fusion"]


def test_state_dict_leaves_out_frozen_weights_and_reloads(tiny_llama_dir, toy_items):
    texts, features = toy_items
    trained = _build(tiny_llama_dir, texts, features, mode="lora", lora_r=2)
    with torch.no_grad():
        for p in trained.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    state = trained.state_dict()
    assert all(not k.endswith("base_layer.weight") for k in state)
    assert any("lora_B" in k for k in state) and any(k.startswith("projectors.") for k in state)
    torch.manual_seed(123)
    rebuilt = build_llm_item_encoder(
        texts,
        features,
        LLMFusionConfig(model=str(tiny_llama_dir), mode="lora", lora_r=2, trunk_cache_dir=None),
    )
    rebuilt.load_state_dict(state, strict=True)
    items = torch.arange(12)
    torch.testing.assert_close(trained.eval()(items), rebuilt.eval()(items))
    with pytest.raises(RuntimeError, match="Missing key"):
        rebuilt.load_state_dict({k: v for k, v in state.items() if "lora_B" not in k}, strict=True)


def test_text_only_items_when_no_other_modality(tiny_llama_dir, toy_items):
    texts, features = toy_items
    text_only = {"text": features["text"], "__order__": ["text"]}
    encoder = _build(tiny_llama_dir, texts, text_only, pooling="last")
    assert encoder.modalities == [] and encoder(torch.tensor([4, 5])).shape == (2, 32)


def test_bad_inputs_raise_clear_errors(tiny_llama_dir, toy_items):
    texts, features = toy_items
    with pytest.raises(ValueError, match=r"item_features\[.image.\].*13 item texts"):
        _build(tiny_llama_dir, texts + ["extra"], features)
    with pytest.raises(ValueError, match="not in item_features"):
        _build(tiny_llama_dir, texts, features, soft_token_modalities=["video"])
    with pytest.raises(ValueError, match="target_modules"):
        _build(tiny_llama_dir, texts, features, mode="lora", target_modules=["query"])
    with pytest.raises(ConfigError, match="mode"):
        build_llm_item_encoder(texts, features, {"model": str(tiny_llama_dir), "mode": "qlora"})
    with pytest.raises(ValueError, match="must be strings"):
        _build(tiny_llama_dir, [*texts[:-1], None], features)
    assert np.isfinite(
        _build(tiny_llama_dir, texts, features)(torch.tensor([4])).detach().numpy()
    ).all()


def test_soft_token_modalities_skip_text_like_names():
    from crossrec.models.item_towers.llm_encoder import soft_token_modalities

    features = {"__order__": ["text_minilm", "audio_vggish", "text", "image"]}
    assert soft_token_modalities(features, LLMFusionConfig()) == ["audio_vggish", "image"]
    explicit = LLMFusionConfig(soft_token_modalities=["text_minilm"])
    assert soft_token_modalities({**features, "text_minilm": {}}, explicit) == ["text_minilm"]


@pytest.mark.slow
def test_real_smollm2_through_the_zoo_when_cached():
    """SmolLM2-135M-Instruct (converted once by featurize's zoo): LoRA share and sane vectors."""
    zoo = pytest.importorskip("crossrec.encoders.zoo")
    if not (zoo.model_cache_dir() / "smollm2-135m-instruct" / zoo.DONE_MARKER).exists():
        pytest.skip("SmolLM2 not converted in the zoo cache yet (run featurize once)")
    texts = [
        "Toy Story. Animation, comedy.",
        "Toy Story. Animation, comedy.",
        "Heat. Crime thriller.",
    ]
    rng = np.random.default_rng(0)
    features = {
        "image": {"vectors": rng.normal(size=(3, 20)).astype(np.float32), "mask": np.ones(3, bool)},
        "__order__": ["image"],
    }
    features["image"]["vectors"][1] = features["image"]["vectors"][0]
    torch.manual_seed(0)
    config = LLMFusionConfig(mode="lora", max_text_tokens=12, trunk_cache_dir=None)
    encoder = build_llm_item_encoder(texts, features, config).eval()
    assert encoder.out_dim == 576 and encoder.n_trunk == 28
    # LoRA on the top 2 of 30 layers: 2/30 of the 921,600 adapter weights of all layers
    assert 0.0003 < encoder.trainable_share() < 0.0006
    with torch.no_grad():
        out = encoder(torch.arange(3))
    torch.testing.assert_close(out[0], out[1])
    assert torch.isfinite(out).all() and not torch.allclose(out[0], out[2], atol=1e-3)
