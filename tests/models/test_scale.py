"""Training at large sizes: index batches, the batch that grows above
data.max_steps_per_epoch, the validation user sample and the propagation's running mean."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader

from crossrec.models.config import DataConfig, FinetuneConfig, complete_stored_config
from crossrec.models.data import EpochBatches, InteractionDataModule, PairDataset, epoch_batch_size
from crossrec.models.module import sample_rows


def _train(n_users: int = 300, n_items: int = 200, seed: int = 0) -> sp.csr_matrix:
    """Zipf item popularity, 5-40 items per user."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1)
    rows, cols = [], []
    for user in range(n_users):
        n = int(rng.integers(5, 40))
        cols += list(rng.choice(n_items, n, replace=False, p=popularity / popularity.sum()))
        rows += [user] * n
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), (n_users, n_items))


def test_index_batches_are_the_shuffled_loaders_batches():
    """EpochBatches draws what DataLoader(shuffle=True) draws: the same batches every epoch."""
    for n_pairs, batch in ((1000, 64), (1024, 64), (10, 3), (5, 8)):
        plain, fast = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        stack = lambda batch: np.asarray(batch)  # noqa: E731
        before = DataLoader(
            PairDataset(n_pairs), batch_size=batch, shuffle=True, generator=plain, collate_fn=stack
        )
        after = DataLoader(
            PairDataset(n_pairs),
            batch_sampler=EpochBatches(n_pairs, batch, fast),
            generator=fast,
            collate_fn=stack,
        )
        assert len(before) == len(after)
        for _ in range(3):
            assert [b.tolist() for b in before] == [b.tolist() for b in after]


def test_batch_grows_above_max_steps_per_epoch():
    train = _train()
    pairs = train.nnz
    small = DataConfig(batch_size=64, max_steps_per_epoch=10)
    assert epoch_batch_size(pairs, small) == -(-pairs // 10) > 64
    assert epoch_batch_size(pairs, DataConfig(batch_size=64, max_steps_per_epoch=None)) == 64
    assert epoch_batch_size(pairs, DataConfig(batch_size=64, max_steps_per_epoch=10**6)) == 64
    module = InteractionDataModule(train, small, seed=0)
    batches = list(module.train_dataloader())
    assert len(batches) == 10
    users = np.concatenate([b["users"].numpy() for b in batches])
    items = np.concatenate([b["pos"].numpy() for b in batches])
    assert len(users) == pairs  # every pair once
    assert np.asarray(train[users, items]).all()
    # the shared datasets (< 10^6 train pairs at batch 4096) keep their batch
    assert epoch_batch_size(10**6, DataConfig()) == DataConfig().batch_size
    # a stored config from before the key ran without it
    stored = FinetuneConfig().model_dump(mode="json")
    del stored["data"]["max_steps_per_epoch"], stored["trainer"]["val_max_users"]
    completed = complete_stored_config(stored)
    assert completed["data"]["max_steps_per_epoch"] is None
    assert completed["trainer"]["val_max_users"] is None


def test_validation_sample_is_seeded_and_bounded():
    valid = _train(seed=1)
    assert sample_rows(valid, None) is valid
    assert sample_rows(valid, 10**6) is valid
    sample = sample_rows(valid, 50)
    kept = np.flatnonzero(np.diff(sample.indptr))
    assert len(kept) == 50
    assert (sample[kept] != valid[kept]).nnz == 0  # whole rows of the users kept
    assert np.array_equal(np.flatnonzero(np.diff(sample_rows(valid, 50).indptr)), kept)
    assert not np.array_equal(np.flatnonzero(np.diff(sample_rows(valid, 50, 1).indptr)), kept)


def test_propagation_is_the_mean_of_the_layer_outputs(tiny_data):
    from crossrec.models.bundle import build_recommender
    from crossrec.models.graph_ops import propagate_mean

    model = build_recommender(tiny_data, FinetuneConfig())
    graph = torch.as_tensor(tiny_data.user_item_graph.toarray())
    x = torch.randn(graph.shape[0], 8)
    outputs = [x]
    for _ in range(3):
        outputs.append(graph @ outputs[-1])
    expected = torch.stack(outputs).mean(0)
    got = propagate_mean(model.ui_graph, model.ui_graph_t, x, 3)
    assert torch.allclose(got, expected, atol=1e-6)
