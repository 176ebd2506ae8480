"""The query tower: encoded words -> the trained recommender's item space.

A small MLP trained with a full softmax over the catalogue on (words, item) pairs the data
holds (train split only): the item side is the recommender's own item vectors, frozen, so the
tower learns which items people who say these words choose — popularity and collaborative
neighbourhood included, which a text similarity cannot know.
"""

from __future__ import annotations

import logging

import numpy as np

from crossrec.words.config import TowerConfig

logger = logging.getLogger(__name__)


def build_tower(text_dim: int, out_dim: int, config: TowerConfig):
    """Linear (``hidden: 0``) or one hidden layer with GELU; output is unit-normalised."""
    import torch
    from torch import nn

    class QueryTower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if config.hidden:
                self.net = nn.Sequential(
                    nn.Linear(text_dim, config.hidden),
                    nn.GELU(),
                    nn.Dropout(config.dropout),
                    nn.Linear(config.hidden, out_dim),
                )
            else:
                self.net = nn.Linear(text_dim, out_dim)

        def forward(self, words: torch.Tensor) -> torch.Tensor:
            return nn.functional.normalize(self.net(words), dim=-1)

    return QueryTower()


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def train_query_tower(
    words: np.ndarray,
    targets: np.ndarray,
    item_vectors: np.ndarray,
    config: TowerConfig,
    seed: int,
):
    """Fit the tower on ``words[i] -> targets[i]`` (item indices) against every item.

    Cosine logits over ``item_vectors`` divided by ``config.temperature``; AdamW, shuffled
    mini-batches, ``config.epochs`` passes. Returns the tower in eval mode."""
    import torch

    if len(words) == 0:
        raise ValueError("the query tower needs training pairs: no train-split words found")
    generator = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    tower = build_tower(words.shape[1], item_vectors.shape[1], config)
    items = torch.from_numpy(unit_rows(item_vectors))
    x = torch.from_numpy(np.ascontiguousarray(words, dtype=np.float32))
    y = torch.from_numpy(np.array(targets, dtype=np.int64))
    optimizer = torch.optim.AdamW(
        tower.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    tower.train()
    for epoch in range(config.epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            logits = tower(x[batch]) @ items.T / config.temperature
            loss = torch.nn.functional.cross_entropy(logits, y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        if epoch == config.epochs - 1 or epoch % 10 == 0:
            logger.info("query tower epoch %d: loss %.4f", epoch, total / len(x))
    return tower.eval()


def tower_scores(tower, words: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """``(len(words), n_items)`` cosine scores of the towered words against every item."""
    import torch

    with torch.no_grad():
        queries = tower(torch.from_numpy(np.ascontiguousarray(words, dtype=np.float32)))
        return (queries @ torch.from_numpy(unit_rows(item_vectors)).T).numpy()
