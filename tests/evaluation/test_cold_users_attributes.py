"""Users held out whole, recommended from who they are (crossrec.evaluation.cold_users): the
attribute regressions on the synthetic dataset, whose users' region follows their favourite
class, and the guarantee that a held-out user's history never reaches any fit."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.data.ingest import ingest_in_memory
from crossrec.data.synthetic import make_synthetic_dataset, synthetic_ingest_params
from crossrec.data.users import user_tokens, user_words
from crossrec.evaluation.cold_users import attribute_runs, choose_regression, cold_request_set
from crossrec.evaluation.protocol import build_split
from crossrec.words.attributes import fit_attribute_regression


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = make_synthetic_dataset(
        tmp_path_factory.mktemp("cold") / "syn",
        n_users=160,
        n_items=48,
        seed=5,
        with_images=False,
        with_audio=False,
    )
    out = ingest_in_memory(
        synthetic_ingest_params(folder, split={"cold_users": {"share": 0.25}}), "syn", seed=0
    )
    info = out["dataset_info"]
    split = build_split(out["interactions"], out["items"], info["n_users"], info["n_items"], 0)
    return out, split


def test_attribute_regressions_beat_popularity(synthetic):
    out, split = synthetic
    n_users = split.n_users
    tokens, words = user_tokens(out["users"], n_users), user_words(out["users"], n_users)
    runs, chosen = attribute_runs(split, tokens, words, k=20)
    recall = {name: float(values["recall@20"].mean()) for name, values in runs.items()}
    assert recall["attributes_softmax"] > recall["mostpop"] + 0.05
    assert recall["attributes_ridge"] > recall["mostpop"]
    assert np.isfinite(chosen["softmax"]["l2"])  # valid chose attribute weights
    assert len(runs["mostpop"]["recall@20"]) == len(cold_request_set(split.cold_test, words))


def test_hidden_history_never_reaches_the_fit(synthetic):
    """Moving every held-out row of the cold users to other items changes nothing that was
    fitted: not the train matrix, not the regression's weights."""
    out, split = synthetic
    info = out["dataset_info"]
    cold = np.flatnonzero(split.cold_users)
    assert len(cold) and not np.diff(split.train.indptr)[cold].any()
    changed = out["interactions"].copy()
    rows = changed["user_idx"].isin(cold).to_numpy()
    assert set(changed.loc[rows, "split"]) <= {"valid", "test"}
    changed.loc[rows, "item_idx"] = (changed.loc[rows, "item_idx"] + 7) % info["n_items"]
    other = build_split(changed, out["items"], info["n_users"], info["n_items"], 0)
    assert (other.train != split.train).nnz == 0
    assert (other.cold_test != split.cold_test).nnz > 0
    tokens = user_tokens(out["users"], split.n_users)
    a = fit_attribute_regression(tokens, split.train, l2=1e-3, crosses=True)
    b = fit_attribute_regression(tokens, other.train, l2=1e-3, crosses=True)
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
    # selection reads the valid cold users only: changing the test ones changes no choice
    words = user_words(out["users"], split.n_users)
    valid = cold_request_set(split.cold_valid, words)
    other_valid = other.cold_valid
    keep = split.cold_valid
    other.cold_valid = keep  # the valid cold users as they were, test cold users moved
    first, tried = choose_regression(split, tokens, valid, 20)
    second, tried_again = choose_regression(other, tokens, valid, 20)
    assert tried == tried_again and first.l2 == second.l2
    assert (other_valid != keep).nnz > 0
