"""Item towers: an item's content (its per-modality vectors, and its text) -> one content
vector per item, by a fusion strategy of the modality vectors or an LLM item encoder.

Strategies are registered in :data:`crossrec.models.registries.FUSION_STRATEGIES` by name
(``concat``, ``gated``, ``attention`` in ``modality.py``; ``llm`` in ``llm.py``). Each class has
``build(config, item_features, modalities, dim, dropout, item_texts)`` and a ``late`` flag
(True: the recommender adds its output per batch after graph propagation).
"""

from __future__ import annotations

from collections.abc import Sequence

from crossrec.models.config import FusionConfig
from crossrec.models.registries import FUSION_STRATEGIES


def build_fusion(
    config: FusionConfig,
    item_features: dict,
    modalities: Sequence[str],
    dim: int,
    dropout: float = 0.0,
    item_texts: list[str] | None = None,
):
    """The fusion module named by ``config.strategy``."""
    strategy = FUSION_STRATEGIES.get(config.strategy)
    return strategy.build(config, item_features, list(modalities), dim, dropout, item_texts)
