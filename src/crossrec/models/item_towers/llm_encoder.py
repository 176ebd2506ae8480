"""The ``llm`` fusion strategy: one causal LLM reads an item's image/audio vectors and its text.

Each non-text modality vector is projected into the LLM's input-embedding space as
``n_soft_tokens`` "soft tokens" placed BEFORE the item's text tokens; the LLM (a transformers
decoder backbone loaded from a local folder, e.g. SmolLM2 through ``crossrec.encoders.zoo``)
encodes the sequence and the hidden states are pooled (last token or mean) into the item
vector. Items whose modality is missing (mask False) get a learned "missing" soft token.

Fine-tuning modes (``LLMFusionConfig.mode``):

* ``frozen`` — no LLM weight trains; the soft-token projectors learn to "speak" to the LLM.
* ``lora`` — ``peft`` LoRA adapters on the attention projections train jointly (<5% of weights).
* ``partial`` — the top ``top_n_layers`` decoder layers (and the final norm) train.
* ``full`` — everything trains.

With ``trunk_cache`` (every mode but ``full``) the layers below the top ``top_n_layers`` run
once per item text and are cached (``crossrec.models.item_towers.llm_trunk``): LoRA adapters sit on
the top layers only and the soft tokens enter at the first top layer. Without it the whole LLM
runs every step with the soft tokens at the input (LoRA on every layer).

Texts are tokenised once at build time; a batch is trimmed to its longest text and repeated
items are encoded once. ``llm_parameters()`` / :func:`llm_parameter_groups` let the trainer give
the LLM its own learning rate. By default the state dict leaves out frozen pretrained weights
(they are reloaded from the model folder when the encoder is rebuilt), which keeps model
bundles and checkpoints small.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crossrec.models.config import LLMFusionConfig
from crossrec.models.item_towers.llm_trunk import (
    TrunkCache,
    base_model,
    load_or_compute_trunk,
    run_layers,
    trunk_forward,
    trunk_settings,
)

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------- helpers


def resolve_model_dir(name: str) -> Path:
    """A local model folder: ``name`` itself when it is one, else the offline zoo's answer."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    try:
        from crossrec.encoders.zoo import resolve_model
    except ImportError as err:  # pragma: no cover - only before the zoo exists
        raise ValueError(
            f"LLM fusion: model {name!r} is not a folder and the zoo is unavailable ({err})"
        ) from None
    return Path(resolve_model(name))


def soft_token_modalities(item_features: dict, config: LLMFusionConfig) -> list[str]:
    """The modalities fed as soft tokens, in ``__order__`` order."""
    order = item_features.get("__order__") or [k for k in item_features if not k.startswith("__")]
    if config.soft_token_modalities is None:
        return [m for m in order if not any(fnmatch(m, p) for p in config.text_modalities)]
    unknown = [m for m in config.soft_token_modalities if m not in item_features]
    if unknown:
        raise ValueError(
            f"LLM fusion: soft_token_modalities {unknown} are not in item_features "
            f"(available: {[m for m in order]})"
        )
    return list(config.soft_token_modalities)


def _n_soft(config: LLMFusionConfig, modality: str) -> int:
    if isinstance(config.n_soft_tokens, int):
        n = config.n_soft_tokens
    else:
        n = config.n_soft_tokens.get(modality, 1)
    if n < 1:
        raise ValueError(f"LLM fusion: n_soft_tokens for {modality!r} must be >= 1, got {n}")
    return n


def decoder_layers(backbone: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a decoder backbone (``.layers`` or the longest ModuleList)."""
    layers = getattr(backbone, "layers", None)
    if isinstance(layers, nn.ModuleList):
        return layers
    lists = [m for m in backbone.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ValueError(f"LLM fusion: cannot find decoder layers in {type(backbone).__name__}")
    return max(lists, key=len)


def tokenize_texts(
    tokenizer: Any, texts: Sequence[str], max_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``(input_ids, attention_mask)`` of all texts; empty texts get one eos token."""
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"LLM fusion: item_texts must be strings; items {bad[:5]} are not")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    enc = tokenizer(
        list(texts), truncation=True, max_length=max_tokens, padding="longest", return_tensors="pt"
    )
    ids, mask = enc["input_ids"].long(), enc["attention_mask"].long()
    if tokenizer.padding_side == "left":  # we need real tokens first: soft tokens precede them
        order = torch.argsort(1 - mask, dim=1, stable=True)
        ids, mask = torch.gather(ids, 1, order), torch.gather(mask, 1, order)
    empty = mask.sum(dim=1) == 0
    if empty.any():
        filler = (
            tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
        )
        ids[empty, 0] = filler
        mask[empty, 0] = 1
    return ids, mask


# --------------------------------------------------------------------------------------- module


class SoftTokenProjector(nn.Module):
    """Vector -> ``n`` tokens in the LLM embedding space, scaled like real token embeddings."""

    def __init__(self, in_dim: int, hidden: int, n_tokens: int, embed_rms: float) -> None:
        super().__init__()
        self.n_tokens, self.hidden = n_tokens, hidden
        self.proj = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, n_tokens * hidden)
        )
        self.gain = nn.Parameter(torch.ones(hidden))
        self.missing = nn.Parameter(torch.randn(n_tokens, hidden) * embed_rms)
        self.register_buffer("embed_rms", torch.tensor(float(embed_rms)), persistent=False)

    def forward(self, vectors: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(vectors).view(-1, self.n_tokens, self.hidden)
        tokens = tokens * torch.rsqrt(tokens.pow(2).mean(dim=-1, keepdim=True) + 1e-6)
        tokens = tokens * self.embed_rms * self.gain
        return torch.where(present[:, None, None], tokens, self.missing.to(tokens.dtype)[None])


class LLMItemEncoder(nn.Module):
    """``forward(item_idx) -> (b, out_dim)`` item vectors from soft tokens + text through an LLM."""

    def __init__(
        self,
        backbone: nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        features: dict[str, tuple[np.ndarray, np.ndarray]],
        config: LLMFusionConfig,
        trunk: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        embeddings = backbone.get_input_embeddings()
        hidden = embeddings.weight.shape[1]
        embed_rms = float(embeddings.weight.detach().float().pow(2).mean().sqrt())
        layers = decoder_layers(backbone)
        #: layers below the top ones whose output is cached (None: the whole LLM runs)
        self.n_trunk = None if trunk is None else len(layers) - config.top_n_layers
        if trunk is not None:  # soft tokens enter at the first top layer: scale them like it
            embed_rms = typical_token_rms(trunk, attention_mask)
        self.hidden_size = hidden
        self.modalities = list(features)
        # Per-item inputs live outside the module's buffers: they never enter the state dict and
        # DDP does not broadcast them every step; they follow the weights' device on first use.
        self._item_data: dict[str, torch.Tensor] = {
            "input_ids": input_ids,
            "text_mask": attention_mask,
        }
        if trunk is not None:
            self._item_data["trunk"] = trunk
        self.projectors = nn.ModuleDict()
        for name, (vectors, mask) in features.items():
            self._item_data[f"vectors/{name}"] = torch.as_tensor(vectors, dtype=torch.float32)
            self._item_data[f"present/{name}"] = torch.as_tensor(mask, dtype=torch.bool)
            self.projectors[name] = SoftTokenProjector(
                vectors.shape[1], hidden, _n_soft(config, name), embed_rms
            )
        self.head = nn.Linear(hidden, config.out_dim) if config.out_dim else nn.Identity()
        self.out_dim = config.out_dim or hidden
        self.n_items = int(input_ids.shape[0])
        self._frozen_names = {
            f"backbone.{n}" for n, p in backbone.named_parameters() if not p.requires_grad
        }
        if not config.save_frozen_weights:
            self.register_state_dict_post_hook(_drop_frozen_weights)
            self.register_load_state_dict_post_hook(_ignore_missing_frozen_weights)

    # -- parameters ---------------------------------------------------------------------------
    def llm_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable LLM weights (LoRA adapters / top layers / all): give these their own lr."""
        return (p for p in self.backbone.parameters() if p.requires_grad)

    def fusion_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable weights outside the LLM: soft-token projectors, missing tokens, head."""
        ids = {id(p) for p in self.backbone.parameters()}
        return (p for p in self.parameters() if p.requires_grad and id(p) not in ids)

    def trainable_share(self) -> float:
        """Share of the LLM's parameters that train (LoRA adapters count as LLM parameters)."""
        params = list(self.backbone.parameters())
        return sum(p.numel() for p in params if p.requires_grad) / max(
            1, sum(p.numel() for p in params)
        )

    # -- forward ------------------------------------------------------------------------------
    def item_data(self) -> dict[str, torch.Tensor]:
        """Token ids, text masks, modality vectors and presence masks, on the weights' device."""
        device = self.backbone.get_input_embeddings().weight.device
        if self._item_data["input_ids"].device != device:
            self._item_data = {k: v.to(device) for k, v in self._item_data.items()}
        return self._item_data

    def forward(self, item_idx: torch.Tensor) -> torch.Tensor:
        item_idx = item_idx.to(self.item_data()["input_ids"].device).long()
        unique, inverse = torch.unique(item_idx, return_inverse=True)
        return self._encode(unique)[inverse]

    def _encode(self, items: torch.Tensor, cached: bool = True) -> torch.Tensor:
        """Vectors of distinct ``items``; ``cached=False`` recomputes the trunk (tests, checks)."""
        data = self.item_data()
        text_mask = data["text_mask"][items]
        length = int(text_mask.sum(dim=1).max())
        ids, text_mask = data["input_ids"][items, :length], text_mask[:, :length]
        embed = self.backbone.get_input_embeddings()
        layers = decoder_layers(self.backbone)
        if self.n_trunk is None:
            text_embeds = embed(ids)
        elif cached:
            text_embeds = data["trunk"][items, :length].to(embed.weight.dtype)
        else:
            text_embeds = trunk_forward(self.backbone, layers[: self.n_trunk], ids, text_mask)
        soft = [
            self.projectors[m](data[f"vectors/{m}"][items], data[f"present/{m}"][items])
            for m in self.modalities
        ]
        soft_embeds = [s.to(text_embeds.dtype) for s in soft]
        n_soft = sum(s.shape[1] for s in soft_embeds)
        inputs = torch.cat([*soft_embeds, text_embeds], dim=1)
        mask = torch.cat([text_mask.new_ones(len(items), n_soft), text_mask], dim=1)
        if self.n_trunk is None:
            hidden = self.backbone(
                inputs_embeds=inputs, attention_mask=mask, use_cache=False
            ).last_hidden_state
        else:
            hidden = run_layers(self.backbone, layers[self.n_trunk :], inputs, mask)
            hidden = base_model(self.backbone).norm(hidden)
        if self.config.pooling == "last":
            last = n_soft + text_mask.sum(dim=1) - 1
            pooled = hidden[torch.arange(len(items), device=hidden.device), last]
        else:
            weights = mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1)
        return self.head(pooled.float())

    def encode_all(self, batch_size: int = 128) -> torch.Tensor:
        """Every item's vector ``(n_items, out_dim)``: eval mode, inference mode, batches of
        similar text length (evaluation / caching). Through the top layers only when the trunk
        is cached."""
        was_training = self.training
        self.eval()
        try:
            lengths = self.item_data()["text_mask"].sum(dim=1)
            order = torch.argsort(lengths, descending=True, stable=True)
            with torch.inference_mode():
                parts = [self._encode(chunk) for chunk in order.split(batch_size)]
                out = torch.empty(self.n_items, parts[0].shape[1], device=parts[0].device)
                out[order] = torch.cat(parts)
            return out.clone()  # a normal tensor: usable outside inference mode
        finally:
            self.train(was_training)


def typical_token_rms(trunk: torch.Tensor, mask: torch.Tensor) -> float:
    """Median RMS of the real tokens' trunk outputs: the scale soft tokens enter at (a median,
    as a few "attention sink" tokens of LLMs carry hidden states 10-100x larger)."""
    real = trunk[:, : mask.shape[1]][mask[:, : trunk.shape[1]].bool()].float()
    return float(real.pow(2).mean(dim=-1).sqrt().median())


def _drop_frozen_weights(
    module: LLMItemEncoder, state_dict: dict, prefix: str, local_metadata: Any
) -> None:
    for name in module._frozen_names:
        state_dict.pop(prefix + name, None)


def _ignore_missing_frozen_weights(module: LLMItemEncoder, incompatible_keys: Any) -> None:
    missing = incompatible_keys.missing_keys
    frozen = [
        k for k in missing if any(k == n or k.endswith("." + n) for n in module._frozen_names)
    ]
    for key in frozen:
        missing.remove(key)


def llm_parameter_groups(
    model: nn.Module, lr: float, llm_lr: float, weight_decay: float = 0.0
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: LLM weights of every :class:`LLMItemEncoder` inside ``model``
    at ``llm_lr``, all other trainable weights at ``lr``. Empty groups are left out."""
    llm_ids = {
        id(p) for m in model.modules() if isinstance(m, LLMItemEncoder) for p in m.llm_parameters()
    }
    llm = [p for p in model.parameters() if p.requires_grad and id(p) in llm_ids]
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in llm_ids]
    groups = [
        {"params": rest, "lr": lr, "weight_decay": weight_decay, "name": "fusion"},
        {"params": llm, "lr": llm_lr, "weight_decay": weight_decay, "name": "llm"},
    ]
    return [g for g in groups if g["params"]]


# --------------------------------------------------------------------------------------- build


def _apply_mode(backbone: nn.Module, config: LLMFusionConfig) -> nn.Module:
    """Freeze / unfreeze / wrap with LoRA according to ``config.mode``."""
    if config.mode == "full":
        backbone.requires_grad_(True)
        return backbone
    backbone.requires_grad_(False)
    if config.mode == "lora":
        from peft import LoraConfig, get_peft_model

        names = {n.rsplit(".", 1)[-1] for n, _ in backbone.named_modules()}
        unknown = [t for t in config.target_modules if t not in names]
        if unknown:
            raise ValueError(
                f"LLM fusion: LoRA target_modules {unknown} not found in {type(backbone).__name__}"
            )
        top_only = {}
        if uses_trunk(config):  # adapters only where layers run every step: the top ones
            n_layers = len(decoder_layers(backbone))
            _check_top_n(config, n_layers)
            top_only = {
                "layers_to_transform": list(range(n_layers - config.top_n_layers, n_layers)),
                "layers_pattern": "layers",
            }
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.target_modules),
            bias="none",
            **top_only,
        )
        with warnings.catch_warnings():  # peft still asks transformers' deprecated alias
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
            return get_peft_model(backbone, lora)
    if config.mode == "partial":
        layers = decoder_layers(backbone)
        _check_top_n(config, len(layers))
        for layer in layers[len(layers) - config.top_n_layers :]:
            layer.requires_grad_(True)
        norm = getattr(backbone, "norm", None)
        if isinstance(norm, nn.Module):
            norm.requires_grad_(True)
    return backbone


def uses_trunk(config: LLMFusionConfig) -> bool:
    """Whether the bottom layers are frozen and cached (every mode but ``full``)."""
    return config.trunk_cache and config.mode != "full"


def _check_top_n(config: LLMFusionConfig, n_layers: int) -> None:
    if config.top_n_layers > n_layers:
        raise ValueError(
            f"LLM fusion: top_n_layers={config.top_n_layers} but the model has {n_layers} layers"
        )


def load_backbone(model_dir: Path, config: LLMFusionConfig) -> tuple[nn.Module, Any]:
    """The decoder backbone (no LM head) and its tokenizer from a local folder."""
    from transformers import AutoModel, AutoTokenizer

    dtype = getattr(torch, config.dtype)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    backbone = AutoModel.from_pretrained(model_dir, dtype=dtype)
    return backbone, tokenizer


def _trunk(
    backbone: nn.Module,
    model_dir: Path,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    config: LLMFusionConfig,
) -> torch.Tensor:
    """The trunk's output for every item, from the disk cache where possible."""
    layers = decoder_layers(backbone)
    n_trunk = len(layers) - config.top_n_layers
    cache = None
    if config.trunk_cache_dir is not None:
        settings = trunk_settings(model_dir, n_trunk, config.dtype)
        cache = TrunkCache(config.trunk_cache_dir, settings)
    return load_or_compute_trunk(
        backbone, layers[:n_trunk], input_ids, attention_mask, cache, config.trunk_batch_size
    )


def precompute_trunk(
    item_texts: list[str], config: LLMFusionConfig | dict, device: str | torch.device
) -> None:
    """Fill the disk trunk cache for ``item_texts`` with the LLM on ``device`` (a GPU).

    Why: :func:`build_llm_item_encoder` runs the trunk where the model is loaded, on the CPU,
    before a trainer moves the model to its device; once every item text is in the cache the
    build computes nothing.
    """
    from crossrec.config import parse_params

    config = parse_params(LLMFusionConfig, config, where="finetune model config: llm")
    if not uses_trunk(config) or config.trunk_cache_dir is None:
        raise ValueError(
            "precompute_trunk: needs llm.trunk_cache true, a mode other than full and a "
            f"trunk_cache_dir (got mode={config.mode!r}, trunk_cache={config.trunk_cache}, "
            f"trunk_cache_dir={config.trunk_cache_dir!r})"
        )
    model_dir = resolve_model_dir(config.model)
    backbone, tokenizer = load_backbone(model_dir, config)
    _check_top_n(config, len(decoder_layers(backbone)))
    input_ids, attention_mask = tokenize_texts(tokenizer, item_texts, config.max_text_tokens)
    _trunk(backbone.to(device).eval(), model_dir, input_ids, attention_mask, config)


def build_llm_item_encoder(
    item_texts: list[str], item_features: dict, config: LLMFusionConfig | dict
) -> LLMItemEncoder:
    """Build the LLM item encoder for ``item_texts`` (aligned to ``item_idx``) and the fused
    ``item_features`` (``{modality: {"vectors", "mask"}, "__order__": [...]}``)."""
    from crossrec.config import parse_params

    config = parse_params(LLMFusionConfig, config, where="finetune model config: llm")
    modalities = soft_token_modalities(item_features, config)
    n_items = len(item_texts)
    features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in modalities:
        entry = item_features[name]
        vectors = np.asarray(entry["vectors"], dtype=np.float32)
        mask = np.asarray(entry.get("mask", np.ones(len(vectors), dtype=bool)), dtype=bool)
        if vectors.ndim != 2 or vectors.shape[0] != n_items or mask.shape != (n_items,):
            raise ValueError(
                f"LLM fusion: item_features[{name!r}] has vectors {vectors.shape}, "
                f"mask {mask.shape}; expected ({n_items}, d) / ({n_items},) "
                f"to match the {n_items} item texts"
            )
        features[name] = (vectors, mask)

    model_dir = resolve_model_dir(config.model)
    backbone, tokenizer = load_backbone(model_dir, config)
    if config.gradient_checkpointing:
        if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5.x name
            backbone.activation_checkpointing_enable(
                activation_checkpointing_kwargs={"use_reentrant": False}
            )
        else:
            backbone.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
    backbone = _apply_mode(backbone, config)
    input_ids, attention_mask = tokenize_texts(tokenizer, item_texts, config.max_text_tokens)
    trunk = None
    if uses_trunk(config):
        trunk = _trunk(backbone.eval(), model_dir, input_ids, attention_mask, config)
    # from_pretrained returns eval mode; nn.Modules start in train mode (LoRA dropout and
    # gradient checkpointing only act in training), and Lightning keeps whatever mode it finds.
    encoder = LLMItemEncoder(backbone, input_ids, attention_mask, features, config, trunk)
    encoder = encoder.train()
    logger.info(
        "LLM item encoder: %s (%s mode), %d items, soft tokens from %s, %d text tokens max, "
        "%.2f%% of LLM weights trainable, %s",
        model_dir.name,
        config.mode,
        n_items,
        modalities or "no modality",
        input_ids.shape[1],
        100 * encoder.trainable_share(),
        "whole LLM every step"
        if encoder.n_trunk is None
        else f"{encoder.n_trunk} cached trunk layers + top {config.top_n_layers} every step",
    )
    return encoder
