"""Projected time per epoch, logged before an expensive (LLM) run starts.

An LLM-strategy epoch costs steps x (top layers over each step's distinct items) plus one
validation pass over the catalogue. Timing a sample of one real batch's items and one chunk of
the catalogue before ``fit`` tells the user in seconds what the run will cost, instead of
finding out an hour later. Only the LLM content is timed: the rest of a step (embeddings,
propagation) is small next to it.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass
class EpochProjection:
    steps: int
    step_s: float
    validation_s: float
    distinct_items: int  # items encoded by the timed step

    @property
    def epoch_s(self) -> float:
        return self.steps * self.step_s + self.validation_s


def steps_per_epoch(n_batches: int, limit: int | float) -> int:
    """Batches Lightning runs per epoch under ``limit_train_batches``."""
    if isinstance(limit, float) and limit <= 1.0:
        return max(1, int(n_batches * limit)) if n_batches else 0
    return min(n_batches, int(limit))


def project_epoch(
    module,
    datamodule,
    limit_train_batches: int | float = 1.0,
    device: torch.device | None = None,
    sample_items: int = 64,
) -> EpochProjection:
    """Time the LLM part of one real batch on ``sample_items`` of its distinct items (forward +
    backward, scaled to all of them: the cost is linear in the items encoded) and one
    validation chunk, for a few seconds instead of a whole step. The sampler's random state is
    restored and no weight changes, so training is unchanged."""
    model = module.model
    device = device or torch.device("cpu")
    sampler = datamodule.sampler
    rng = copy.deepcopy(sampler.rng)
    loader = datamodule.train_dataloader()
    batch = next(iter(loader))
    sampler.rng = rng
    distinct = torch.unique(torch.cat([batch["pos"], batch["neg"].reshape(-1)]))
    sample = distinct[torch.randperm(len(distinct))[:sample_items]].to(device)
    fusion = model.fusion
    module.to(device).train()
    start = time.perf_counter()
    fusion(sample).float().pow(2).mean().backward()
    step_s = (time.perf_counter() - start) * len(distinct) / max(len(sample), 1)
    module.zero_grad(set_to_none=True)
    chunk = min(getattr(fusion, "chunk_size", 64), model.n_items)
    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        fusion(torch.arange(chunk, device=device))
        validation_s = (time.perf_counter() - start) * math.ceil(model.n_items / chunk)
    model.train()
    steps = steps_per_epoch(len(loader), limit_train_batches)
    return EpochProjection(steps, step_s, validation_s, int(len(distinct)))


def log_projection(projection: EpochProjection, every_n_epochs: int = 1) -> None:
    log.info(
        "projected time per epoch: %d steps x %.1fs (%d distinct items in the timed step) "
        "+ validation %.0fs every %d epoch(s) = about %.1f min",
        projection.steps,
        projection.step_s,
        projection.distinct_items,
        projection.validation_s,
        every_n_epochs,
        (projection.steps * projection.step_s + projection.validation_s / every_n_epochs) / 60,
    )
