"""Fusion strategies over frozen modality vectors: concat, gated, attention.

The input is fuse's ``fused_item_features`` (``{modality: {"vectors", "mask", ...},
"__order__": [...]}``). Vectors are frozen buffers (not saved in the state dict: they come from
the data again at load time); each modality gets a trainable projection to ``dim`` and a learned
"missing" vector used wherever its mask is False.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from crossrec.models.config import FusionConfig
from crossrec.models.registries import FUSION_STRATEGIES


def modality_order(item_features: dict) -> list[str]:
    """Modalities in fuse's order (``__order__``), else sorted names."""
    order = item_features.get("__order__")
    names = [k for k in item_features if not k.startswith("__")]
    if order is None:
        return sorted(names)
    missing = [m for m in order if m not in item_features]
    if missing:
        raise ValueError(f"fused_item_features: __order__ names modalities {missing} it lacks")
    return list(order)


def check_item_features(item_features: dict, n_items: int) -> list[str]:
    """Validate shapes/masks of fused_item_features; returns the modality order."""
    names = modality_order(item_features)
    for name in names:
        entry = item_features[name]
        if not isinstance(entry, dict) or "vectors" not in entry or "mask" not in entry:
            raise ValueError(
                f"fused_item_features[{name!r}]: expected a dict with 'vectors' and 'mask'"
            )
        vectors = np.asarray(entry["vectors"])
        mask = np.asarray(entry["mask"])
        if vectors.ndim != 2 or vectors.shape[0] != n_items:
            raise ValueError(
                f"fused_item_features[{name!r}]['vectors']: expected shape ({n_items}, d), "
                f"got {vectors.shape}"
            )
        if mask.shape != (n_items,):
            raise ValueError(
                f"fused_item_features[{name!r}]['mask']: expected shape ({n_items},), "
                f"got {mask.shape}"
            )
        if not np.isfinite(vectors).all():
            raise ValueError(f"fused_item_features[{name!r}]['vectors'] has NaN or inf values")
    return names


class ModalityProjector(nn.Module):
    """Frozen per-modality vectors -> (n, M, dim) tokens, with learned missing vectors."""

    def __init__(self, item_features: dict, modalities: Sequence[str], dim: int):
        super().__init__()
        self.modalities = list(modalities)
        self.projections = nn.ModuleList()
        for i, name in enumerate(self.modalities):
            vectors = torch.as_tensor(np.asarray(item_features[name]["vectors"], np.float32))
            mask = torch.as_tensor(np.asarray(item_features[name]["mask"], bool))
            self.register_buffer(f"vectors_{i}", vectors, persistent=False)
            self.register_buffer(f"mask_{i}", mask, persistent=False)
            self.projections.append(nn.Linear(vectors.shape[1], dim))
        self.missing = nn.Parameter(torch.randn(len(self.modalities), dim) * 0.02)

    def forward(self, item_idx: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens of the given items (all items when ``item_idx`` is None): (n, M, dim)."""
        tokens = []
        for i, projection in enumerate(self.projections):
            vectors = getattr(self, f"vectors_{i}")
            mask = getattr(self, f"mask_{i}")
            if item_idx is not None:
                vectors, mask = vectors[item_idx], mask[item_idx]
            projected = projection(vectors)
            tokens.append(torch.where(mask.unsqueeze(-1), projected, self.missing[i]))
        return torch.stack(tokens, dim=1)


class ModalityFusion(nn.Module):
    """Base of the strategies over frozen modality vectors, built as
    ``cls(item_features, modalities, dim)``; they fuse the whole catalogue up front (the
    recommender adds ``late`` strategies per batch after propagation instead)."""

    late = False

    @classmethod
    def build(cls, config: FusionConfig, item_features: dict, modalities, dim, dropout, texts):
        """Registry entry point: every strategy is built from the same arguments."""
        _require_modalities(modalities, config.strategy)
        return cls(item_features, modalities, dim)

    def modality_weights(self, item_idx: torch.Tensor) -> torch.Tensor | None:
        return None

    def forward(self, item_idx: torch.Tensor | None = None) -> torch.Tensor:
        return self.fuse_tokens(self.tokens(item_idx))

    def fuse_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(n, M, dim) modality tokens -> (n, dim) content vectors.

        Separate from ``forward`` so serving can fuse tokens of items the model never saw
        (uploaded media) or with some modalities replaced by their "missing" vector
        (per-modality explanations)."""
        raise NotImplementedError


@FUSION_STRATEGIES.register("concat")
class ConcatFusion(ModalityFusion):
    """Per-modality projection, concatenation, then a linear map back to ``dim``."""

    def __init__(self, item_features: dict, modalities: Sequence[str], dim: int):
        super().__init__()
        self.tokens = ModalityProjector(item_features, modalities, dim)
        self.mix = nn.Linear(len(modalities) * dim, dim)

    def fuse_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.mix(torch.relu(tokens).flatten(1)) if tokens.shape[1] > 1 else tokens[:, 0]


@FUSION_STRATEGIES.register("gated")
class GatedFusion(ModalityFusion):
    """Learned per-item softmax gates over modalities; the gates say which modality drove it."""

    def __init__(self, item_features: dict, modalities: Sequence[str], dim: int):
        super().__init__()
        self.tokens = ModalityProjector(item_features, modalities, dim)
        self.gate = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1))

    def _weights(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.gate(tokens).squeeze(-1), dim=1)

    def fuse_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return (self._weights(tokens).unsqueeze(-1) * tokens).sum(dim=1)

    def modality_weights(self, item_idx: torch.Tensor) -> torch.Tensor:
        """(b, n_modalities) gate weights, rows sum to 1."""
        return self._weights(self.tokens(item_idx))


@FUSION_STRATEGIES.register("attention")
class AttentionFusion(ModalityFusion):
    """Modality tokens (plus a summary token) through a small transformer encoder."""

    @classmethod
    def build(cls, config: FusionConfig, item_features: dict, modalities, dim, dropout, texts):
        _require_modalities(modalities, config.strategy)
        return cls(
            item_features, modalities, dim, config.attention_heads, config.attention_layers, dropout
        )

    def __init__(
        self,
        item_features: dict,
        modalities: Sequence[str],
        dim: int,
        heads: int,
        layers: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        heads = math.gcd(dim, heads) or 1
        self.tokens = ModalityProjector(item_features, modalities, dim)
        self.modality_embedding = nn.Parameter(torch.randn(len(modalities), dim) * 0.02)
        self.summary = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def fuse_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.modality_embedding
        tokens = torch.cat([self.summary.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return self.encoder(tokens)[:, 0]


def _require_modalities(modalities: Sequence[str], strategy: str) -> None:
    if not modalities:
        raise ValueError(
            f"fusion strategy {strategy!r}: fused_item_features has no modality; "
            "set model.use_content: false for an ID model"
        )
