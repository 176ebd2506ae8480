"""``LightningDataModule`` over the train split: (user, positive, sampled negatives) batches.

Negatives: the batch's other positives (in-batch, handled by the loss) plus ``num_negatives``
items per example drawn uniformly or by popularity (count ** alpha), re-drawn when they hit one
of the user's train items (a few rounds; large catalogues rarely collide). Seeded per worker.
With ``shared_negatives`` one set of ``num_negatives`` items serves the whole batch (what the
LLM strategy uses: a step then encodes at most batch + num_negatives distinct items), and a
``neg_valid`` mask drops the pairs where a shared negative is one of the user's train items.

Batches are index arrays (:class:`EpochBatches`: one shuffled permutation per epoch, sliced), so
loading an epoch costs no Python per pair; above ``data.max_steps_per_epoch`` steps the batch
grows (:func:`epoch_batch_size`), since every step pays a pass over the whole graph.
"""

from __future__ import annotations

import logging
import math

import lightning.pytorch as pl
import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset

from crossrec.models.config import DataConfig

log = logging.getLogger(__name__)


class PairDataset(Dataset):
    """Index dataset over the train (user, item) pairs; the collator does the gathering."""

    def __init__(self, n_pairs: int):
        self.n_pairs = n_pairs

    def __len__(self) -> int:
        return self.n_pairs

    def __getitem__(self, index: int) -> int:
        return index

    def __getitems__(self, indices):
        """A whole batch at once (DataLoader's batched fetch): the indices as they are."""
        return indices


class EpochBatches(torch.utils.data.Sampler):
    """Shuffled batches of pair indices, each one int64 tensor sliced from one permutation.

    Draws exactly what ``DataLoader(shuffle=True, generator=g)`` draws from ``g`` (a
    permutation per epoch, then a second one that RandomSampler takes and discards once
    exhausted), so the batches, and training, are the same as with that loader; it only skips
    the Python int per pair that RandomSampler and BatchSampler hand over.
    """

    def __init__(self, n_pairs: int, batch_size: int, generator: torch.Generator):
        super().__init__()
        self.n_pairs, self.batch_size, self.generator = n_pairs, batch_size, generator

    def __len__(self) -> int:
        return math.ceil(self.n_pairs / self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.n_pairs, generator=self.generator)
        full = self.n_pairs - self.n_pairs % self.batch_size
        for start in range(0, full, self.batch_size):
            yield order[start : start + self.batch_size]
        torch.randperm(self.n_pairs, generator=self.generator)  # RandomSampler's second draw
        if full < self.n_pairs:
            yield order[full:]


def epoch_batch_size(n_pairs: int, config: DataConfig) -> int:
    """``data.batch_size``, grown to ``ceil(n_pairs / max_steps_per_epoch)`` when an epoch of
    ``batch_size`` batches would take more steps than that."""
    if config.max_steps_per_epoch is None:
        return config.batch_size
    return max(config.batch_size, math.ceil(n_pairs / config.max_steps_per_epoch))


class NegativeSampler:
    """Draws negatives for a batch of users, avoiding their train items."""

    def __init__(self, train: sp.csr_matrix, config: DataConfig, seed: int):
        self.n_users, self.n_items = train.shape
        coo = train.tocoo()
        self.keys = np.unique(coo.row.astype(np.int64) * self.n_items + coo.col)
        self.kind = config.sampler
        self.num = config.num_negatives if config.sampler != "none" else 0
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.cdf = None
        if self.kind == "popularity":
            counts = np.asarray(train.sum(axis=0)).ravel().astype(np.float64)
            weights = (counts + 1.0) ** config.popularity_alpha
            self.cdf = np.cumsum(weights / weights.sum())

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def _draw(self, size: int) -> np.ndarray:
        if self.cdf is None:
            return self.rng.integers(0, self.n_items, size=size)
        picks = np.searchsorted(self.cdf, self.rng.random(size), side="right")
        return np.minimum(picks, self.n_items - 1)

    def _is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == keys if len(self.keys) else np.zeros(len(keys), bool)

    def sample(self, users: np.ndarray) -> np.ndarray:
        """(len(users), num) negative item indices."""
        if self.num == 0:
            return np.empty((len(users), 0), dtype=np.int64)
        rep_users = np.repeat(users, self.num)
        items = self._draw(len(rep_users))
        for _ in range(5):
            bad = np.flatnonzero(self._is_positive(rep_users, items))
            if not len(bad):
                break
            items[bad] = self._draw(len(bad))
        return items.reshape(len(users), self.num)

    def sample_shared(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``num`` negatives drawn once and shared by every example of the batch (so a step
        encodes each of them once), and which (example, negative) pairs are not the user's
        train items."""
        items = np.unique(self._draw(self.num)) if self.num else np.empty(0, dtype=np.int64)
        neg = np.broadcast_to(items, (len(users), len(items)))
        hit = self._is_positive(np.repeat(users, len(items)), neg.reshape(-1))
        return np.ascontiguousarray(neg), ~hit.reshape(neg.shape)


class PairCollator:
    """list of pair indices -> dict of LongTensors users (b,), pos (b,), neg (b, k)."""

    def __init__(
        self, users: np.ndarray, items: np.ndarray, sampler: NegativeSampler, shared: bool = False
    ):
        self.users, self.items, self.sampler = users, items, sampler
        self.shared = shared
        self._worker_seeded = False

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        info = torch.utils.data.get_worker_info()
        if info is not None and not self._worker_seeded:
            self.sampler.reseed(self.sampler.seed + 1000 * (info.id + 1) + info.seed % 1000)
            self._worker_seeded = True
        idx = np.asarray(indices, dtype=np.int64)
        users, pos = self.users[idx], self.items[idx]
        if self.shared:
            neg, valid = self.sampler.sample_shared(users)
            return {
                "users": torch.as_tensor(users),
                "pos": torch.as_tensor(pos),
                "neg": torch.as_tensor(neg),
                "neg_valid": torch.as_tensor(valid),
            }
        neg = self.sampler.sample(users)
        return {
            "users": torch.as_tensor(users),
            "pos": torch.as_tensor(pos),
            "neg": torch.as_tensor(neg),
        }


class InteractionDataModule(pl.LightningDataModule):
    """Train batches of positives + negatives; one placeholder validation batch.

    Validation is a full ranking done by the LightningModule itself (it needs the whole model,
    not batches), so ``val_dataloader`` yields a single token batch to trigger it each epoch.
    """

    def __init__(self, train: sp.csr_matrix, config: DataConfig, seed: int):
        super().__init__()
        coo = sp.csr_matrix(train).tocoo()
        if coo.nnz == 0:
            raise ValueError("the train split has no interactions")
        self.users = coo.row.astype(np.int64)
        self.items = coo.col.astype(np.int64)
        self.config = config
        self.seed = seed
        self.sampler = NegativeSampler(sp.csr_matrix(train), config, seed)
        self.batch_size = epoch_batch_size(len(self.users), config)
        self.distributed = False
        if self.batch_size != config.batch_size:
            log.info(
                "%d train pairs: batches of %d instead of %d so an epoch is %d steps "
                "(data.max_steps_per_epoch)",
                len(self.users),
                self.batch_size,
                config.batch_size,
                math.ceil(len(self.users) / self.batch_size),
            )

    def setup(self, stage: str) -> None:
        """Under DDP every rank draws its own negatives (same seed would repeat them)."""
        rank = int(self.trainer.global_rank) if self.trainer is not None else 0
        self.distributed = self.trainer is not None and int(self.trainer.world_size) > 1
        if rank:
            self.sampler.seed = self.seed + 7919 * rank
            self.sampler.reseed(self.sampler.seed)

    def train_dataloader(self) -> DataLoader:
        """Batches from :class:`EpochBatches`; under DDP the plain shuffled loader, which
        Lightning splits between the ranks with its DistributedSampler."""
        generator = torch.Generator().manual_seed(self.seed)
        dataset = PairDataset(len(self.users))
        if self.distributed:
            batching = {"batch_size": self.batch_size, "shuffle": True}
        else:
            batching = {"batch_sampler": EpochBatches(len(dataset), self.batch_size, generator)}
        return DataLoader(
            dataset,
            **batching,
            generator=generator,
            collate_fn=PairCollator(
                self.users, self.items, self.sampler, self.config.shared_negatives
            ),
            num_workers=self.config.num_workers,
            persistent_workers=self.config.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(PairDataset(1), batch_size=1)
