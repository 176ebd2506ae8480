"""Projected time per epoch, logged before an expensive (LLM) run starts.

An LLM-strategy epoch costs steps x (top layers over each step's distinct items) plus one
validation pass over the catalogue. Timing one real step and one chunk of the catalogue before
``fit`` tells the user in seconds what the run will cost, instead of finding out an hour later.
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
    module, datamodule, limit_train_batches: int | float = 1.0, device: torch.device | None = None
) -> EpochProjection:
    """Time one training step (forward + backward, no update) and the late content of one
    validation chunk; the sampler's random state is restored, so training is unchanged."""
    model = module.model
    device = device or torch.device("cpu")
    sampler = datamodule.sampler
    rng = copy.deepcopy(sampler.rng)
    loader = datamodule.train_dataloader()
    batch = {k: v.to(device) for k, v in next(iter(loader)).items()}
    sampler.rng = rng
    module.to(device).train()
    start = time.perf_counter()
    module.batch_loss(batch).backward()
    step_s = time.perf_counter() - start
    module.zero_grad(set_to_none=True)
    distinct = int(torch.unique(torch.cat([batch["pos"], batch["neg"].reshape(-1)])).numel())
    validation_s = 0.0
    fusion = model.fusion
    if getattr(model, "late_content", False) and hasattr(fusion, "chunk_size"):
        chunk = min(fusion.chunk_size, model.n_items)
        model.eval()
        with torch.no_grad():
            start = time.perf_counter()
            fusion(torch.arange(chunk, device=device))
            validation_s = (time.perf_counter() - start) * math.ceil(model.n_items / chunk)
        model.train()
    steps = steps_per_epoch(len(loader), limit_train_batches)
    return EpochProjection(steps, step_s, validation_s, distinct)


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
