"""The ``llm`` fusion strategy: the LLM item encoder (``llm_encoder``) projected to the model's
dimension. Too costly to run over the whole catalogue every step, so the recommender adds its
output after graph propagation ("late" content) and only for the items a batch needs."""

from __future__ import annotations

import torch
from torch import nn

from crossrec.models.config import FusionConfig
from crossrec.models.registries import FUSION_STRATEGIES


@FUSION_STRATEGIES.register("llm")
class LLMFusion(nn.Module):
    """Text + soft tokens for image/audio through a causal LLM, then a linear map to ``dim``."""

    late = True

    def __init__(
        self, item_texts: list[str] | None, item_features: dict, config: FusionConfig, dim: int
    ):
        super().__init__()
        from crossrec.models.item_towers.llm_encoder import build_llm_item_encoder

        if item_texts is None:
            raise ValueError("fusion strategy 'llm' needs item texts (TrainingData.item_texts)")
        self.encoder = build_llm_item_encoder(item_texts, item_features, config.llm)
        self.projection = nn.Linear(int(self.encoder.out_dim), dim)
        self.chunk_size = config.llm_chunk_size

    @classmethod
    def build(cls, config: FusionConfig, item_features: dict, modalities, dim, dropout, texts):
        return cls(texts, item_features, config, dim)

    def forward(self, item_idx: torch.Tensor) -> torch.Tensor:
        return self.projection(self.encoder(item_idx).float())

    def encode_all(self, n_items: int, device: torch.device) -> torch.Tensor:
        """Whole catalogue for scoring: without gradients in eval + inference mode, in batches of
        similar text length (only the top layers run when the trunk is cached)."""
        if not torch.is_grad_enabled():
            return self.projection(self.encoder.encode_all(self.chunk_size).to(device).float())
        parts = [
            self(torch.arange(s, min(s + self.chunk_size, n_items), device=device))
            for s in range(0, n_items, self.chunk_size)
        ]
        return torch.cat(parts)

    def modality_weights(self, item_idx: torch.Tensor) -> torch.Tensor | None:
        return None
