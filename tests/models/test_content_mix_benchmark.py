"""warm_ablation's mix variant: two trained models, the choice made on the validation slice
only, the test slices scored with it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from crossrec.evaluation.protocol import Slice
from crossrec.models.bundle import build_recommender, make_bundle
from crossrec.models.config import FinetuneConfig
from tests.benchmarks.conftest import load_benchmark


@pytest.fixture(scope="module")
def warm_mix():
    return load_benchmark("_warm_mix")


class _Trained:
    """Stands in for warm_ablation's cache: an untrained tiny model per config, recorded."""

    def __init__(self, data):
        self.data, self.asked, self.stopped_on = data, [], []

    def get(self, arts, config, seed, dropped=(), stop_rows=None):
        self.asked.append(config)
        self.stopped_on.append(stop_rows)
        torch.manual_seed(seed + len(self.asked))
        parsed = FinetuneConfig.model_validate(config)
        model = build_recommender(self.data, parsed).eval()
        return make_bundle(model, parsed, history=[{"epoch": 0}]), self.data, 2.0


def _random_pairs(seed: int, n_users: int, n_items: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < 0.1).astype(np.float32))


SLOTTED = {"kind": "popularity", "k": 5, "slots": [0, 1, 2], "choose": "targets"}


@pytest.mark.parametrize("mix", [{"kind": "popularity", "k": 5}, SLOTTED], ids=["mix", "slots"])
def test_mix_trains_both_models_and_chooses_on_validation_only(warm_mix, tiny_data, mix):
    from crossrec.models.content_mix import bound

    config = {"model": {"embedding_dim": 16, "content_mix": mix}}
    valid = Slice("valid", tiny_data.valid, tiny_data.train)
    split = SimpleNamespace(tie_order=None)
    records = []
    for test_seed in (0, 1):
        test = Slice("test", _random_pairs(test_seed, 40, 48), tiny_data.train + tiny_data.valid)
        trained = _Trained(tiny_data)
        scorer, bundle, seconds, record = warm_mix.mixed_score_fn(
            trained, {}, config, 7, [valid, test], split
        )
        records.append(record)
        twin, content = trained.asked
        assert twin["model"]["use_content"] is False
        assert twin["model"]["propagation"]["item_graph_layers"] == 0
        assert content["model"]["content_mix"]["kind"] == "none"
        assert seconds == 4.0  # both trainings
        assert bound(scorer, test.exclude)(torch.tensor([0, 1])).shape == (2, 48)
    # other test pairs, the same validation: the same choice and the same validation values
    assert records[0] == records[1]
    # other validation pairs change the validation values
    trained = _Trained(tiny_data)
    other = Slice("valid", _random_pairs(5, 40, 48), tiny_data.train)
    _, _, _, record = warm_mix.mixed_score_fn(trained, {}, config, 7, [other, test], split)
    assert record["mix_grid"] != records[0]["mix_grid"]


def test_a_choice_share_keeps_its_users_out_of_both_models_early_stopping(warm_mix, tiny_data):
    """``choice_share``: both models are trained stopping on the other validation users only,
    and the choice reads the held-back users' pairs alone."""
    from crossrec.models.content_mix import split_validation_users

    mix = {**SLOTTED, "choice_share": 0.5}
    config = {"model": {"embedding_dim": 16, "content_mix": mix}}
    valid = Slice("valid", tiny_data.valid, tiny_data.train)
    test = Slice("test", _random_pairs(0, 40, 48), tiny_data.train + tiny_data.valid)
    trained = _Trained(tiny_data)
    warm_mix.mixed_score_fn(trained, {}, config, 7, [valid, test], SimpleNamespace(tie_order=None))
    stop, choice = split_validation_users(tiny_data.valid, 0.5, 7)
    assert all((rows != stop).nnz == 0 for rows in trained.stopped_on)  # both models
    stop_users = set(np.flatnonzero(np.diff(stop.indptr)))
    choice_users = set(np.flatnonzero(np.diff(choice.indptr)))
    assert stop_users and choice_users and not stop_users & choice_users
    assert (stop + choice != sp.csr_matrix(tiny_data.valid)).nnz == 0  # every pair, once
    assert abs(len(choice_users) - len(stop_users)) <= 1
