"""The user-attributes modality (crossrec.models.user_attributes): trained with dropout of the
users' own part, the attribute part alone ranks a held-out user's planted preference."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from crossrec.models.bundle import build_recommender, load_recommender
from crossrec.models.config import FinetuneConfig
from crossrec.models.training import train_recommender
from crossrec.models.user_attributes import (
    UserAttributeInputs,
    attribute_user_vectors,
    user_attribute_inputs,
)

HERE = Path(__file__).resolve().parent
N_CLUSTERS = 4


def _held_out_data(n_cold: int = 12):
    """Tiny data (users pick items of cluster u % 4) with the last ``n_cold`` users held out
    whole; every user is described by their cluster (noisily: 1 in 6 by another) and a
    token that says nothing."""
    sys.path.insert(0, str(HERE))
    from conftest import make_tiny_data, user_item_graph

    data = make_tiny_data(n_users=72, n_items=48, n_clusters=N_CLUSTERS, per_user=9, seed=2)
    cold = np.arange(data.n_users - n_cold, data.n_users)
    keep = sp.diags(np.isin(np.arange(data.n_users), cold, invert=True).astype(np.float32))
    full = (data.train + data.valid).tocsr()
    data.train = sp.csr_matrix(keep @ data.train)
    data.valid = sp.csr_matrix(keep @ data.valid)
    data.user_item_graph = user_item_graph(data.train)
    data.train_recency = None
    rng = np.random.default_rng(0)
    tokens = []
    for u in range(data.n_users):
        group = u % N_CLUSTERS if rng.random() > 1 / 6 else rng.integers(N_CLUSTERS)
        tokens.append([f"group={group}", f"noise={rng.integers(3)}"])
    return data, cold, full, tokens


def _config() -> FinetuneConfig:
    return FinetuneConfig.model_validate(
        {
            "model": {
                "embedding_dim": 16,
                "use_content": False,
                "propagation": {"kind": "lightgcn", "layers": 2, "item_graph_layers": 0},
            },
            "data": {"batch_size": 64, "num_negatives": 4},
            "optim": {"lr": 0.02},
            "trainer": {"max_epochs": 30, "patience": 30, "seed": 0, "cpu_threads": 1},
        }
    )


def _cluster_hits(scores: np.ndarray, users: np.ndarray, k: int = 12) -> float:
    """Share of each user's top k that is in their own cluster (items i % 4 == u % 4)."""
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean(top % N_CLUSTERS == (users % N_CLUSTERS)[:, None]))


def test_attribute_part_alone_ranks_a_held_out_users_preference(tmp_path):
    data, cold, full, tokens = _held_out_data()
    inputs = user_attribute_inputs(tokens, data.train, id_dropout=0.5)
    assert inputs.onehots.shape == (data.n_users, 7)
    data.user_attributes = inputs
    result = train_recommender(data, _config(), run_dir=tmp_path, enable_progress_bar=False)
    model = load_recommender(result.bundle, data)
    assert "user_attributes.projection.weight" in result.bundle["state_dict"]
    _, items = model.scoring_vectors()
    users = attribute_user_vectors(model, inputs.onehots[cold].toarray())
    hits = _cluster_hits(users @ items.numpy().T, cold)
    assert hits > 0.6, hits  # chance: 0.25; the attribute says the cluster 5 times in 6
    # a held-out user's full-model vector is the attribute part alone (nothing else is known)
    full_scores = model.score_users(torch.as_tensor(cold)).numpy()
    assert np.allclose(full_scores, users @ items.numpy().T, atol=1e-4)
    # their hidden history was never a training target: no train or valid row
    assert not np.diff(data.train.indptr)[cold].any() and not np.diff(data.valid.indptr)[cold].any()
    assert full[cold].nnz > 0


def test_without_attributes_held_out_users_get_nothing_to_rank_by():
    data, cold, _, tokens = _held_out_data()
    torch.manual_seed(0)
    plain = build_recommender(data, _config()).eval()
    assert plain.user_attributes is None
    scores = plain.score_users(torch.as_tensor(cold))
    assert torch.all(scores == 0)  # no ID (masked), no edges: a zero vector
    data.user_attributes = user_attribute_inputs(tokens, data.train)
    with_attributes = build_recommender(data, _config()).eval()
    assert not torch.all(with_attributes.score_users(torch.as_tensor(cold)) == 0)


def test_vocabulary_comes_from_users_with_train_rows():
    data, cold, _, tokens = _held_out_data()
    tokens[cold[0]] = ["group=new", "noise=0"]  # a value only a held-out user has
    inputs = user_attribute_inputs(tokens, data.train)
    assert "group=new" not in inputs.vocabulary
    assert inputs.rows([["group=new", "noise=0"]]).sum() == 1.0
    with pytest.raises(ValueError, match="id_dropout"):
        UserAttributeInputs(inputs.onehots, inputs.vocabulary, id_dropout=1.0)
