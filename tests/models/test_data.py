"""Negative sampling and batches of the DataModule."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from crossrec.models.config import DataConfig
from crossrec.models.data import InteractionDataModule, NegativeSampler


def _train(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((30, 40)) < 0.2).astype(np.float32)
    dense[:, 0] = 1.0  # item 0 is everyone's: most popular
    return sp.csr_matrix(dense)


def test_uniform_negatives_avoid_positives_and_are_seeded():
    train = _train()
    config = DataConfig(sampler="uniform", num_negatives=4)
    users = np.repeat(np.arange(30), 20)
    neg = NegativeSampler(train, config, seed=1).sample(users)
    assert neg.shape == (600, 4)
    assert not np.asarray(train[np.repeat(users, 4), neg.ravel()]).any()
    again = NegativeSampler(train, config, seed=1).sample(users)
    assert np.array_equal(neg, again)


def test_popularity_sampler_prefers_popular_items():
    dense = np.zeros((50, 20), np.float32)
    dense[:40, 1] = 1.0  # item 1 popular, but users 40.. have not seen it
    dense[np.arange(50), 2 + np.arange(50) % 18] = 1.0
    train = sp.csr_matrix(dense)
    users = np.repeat(np.arange(40, 50), 200)
    pop = NegativeSampler(train, DataConfig(sampler="popularity", popularity_alpha=1.0), 0)
    uni = NegativeSampler(train, DataConfig(sampler="uniform"), 0)
    share_pop = (pop.sample(users) == 1).mean()
    share_uni = (uni.sample(users) == 1).mean()
    assert share_pop > 3 * share_uni


def test_batches_cover_every_train_pair_once_per_epoch():
    train = _train()
    dm = InteractionDataModule(train, DataConfig(batch_size=16, num_negatives=2), seed=0)
    pairs = []
    for batch in dm.train_dataloader():
        assert batch["neg"].shape == (len(batch["users"]), 2)
        pairs += list(zip(batch["users"].tolist(), batch["pos"].tolist(), strict=True))
    coo = train.tocoo()
    assert sorted(pairs) == sorted(zip(coo.row.tolist(), coo.col.tolist(), strict=True))
    assert len(list(dm.val_dataloader())) == 1


def test_sampler_none_gives_no_negatives():
    neg = NegativeSampler(_train(), DataConfig(sampler="none"), 0).sample(np.arange(5))
    assert neg.shape == (5, 0)
