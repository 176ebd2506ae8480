"""Attribute x item regressions (crossrec.words.attributes): a planted group preference is
learnt above popularity; without attribute weights (L2 -> inf) they rank as popularity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.data.users import attribute_tokens, user_tokens
from crossrec.words.attributes import expand_tokens, fit_attribute_regression

N_ITEMS = 40
POPULAR = np.arange(0, 20)  # what most users (sex m) pick
NICHE = np.arange(20, 40)  # what women in their 20s pick


def planted(n_users: int = 300, seed: int = 0):
    """Users with sex / age band / occupation; 20s women pick the niche half of the catalogue,
    everyone else the popular half (with a popularity slope inside each half)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["m", "f"], size=n_users, p=[0.7, 0.3])
    age = rng.choice([15, 25, 35, 45], size=n_users)
    occupation = rng.choice(["student", "engineer", "artist"], size=n_users)
    users = pd.DataFrame(
        {
            "user_idx": np.arange(n_users),
            "user_id": [str(u) for u in range(n_users)],
            "sex": sex,
            "occupation": occupation,
            "age": age.astype(float),
        }
    )
    prefers_niche = (sex == "f") & (age == 25)
    slope = np.exp(-np.arange(20) / 6.0)
    rows, cols = [], []
    for u in range(n_users):
        pool = NICHE if prefers_niche[u] else POPULAR
        picks = rng.choice(pool, size=8, replace=False, p=slope / slope.sum())
        rows += [u] * len(picks)
        cols += list(picks)
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, N_ITEMS))
    return users, matrix, prefers_niche


def test_tokens_band_numbers_and_skip_empty_values():
    table = pd.DataFrame({"sex": ["F", ""], "occupation": ["engineer", None], "age": [24.0, None]})
    assert attribute_tokens(table, ["sex", "occupation"], ["age"]) == [
        ["age=20s", "sex=f", "occupation=engineer"],
        [],
    ]
    assert expand_tokens(["sex=f", "age=20s"], crosses=True) == [
        "age=20s",
        "sex=f",
        "age=20s&sex=f",
    ]


def test_planted_group_preference_beats_popularity():
    users, matrix, niche = planted()
    tokens = user_tokens(users, len(users))
    cold = np.flatnonzero(niche)[:10]  # held out whole: no train rows
    train = sp.csr_matrix(
        sp.diags(np.isin(np.arange(len(users)), cold, invert=True).astype(float)) @ matrix
    )
    popularity = np.asarray(train.sum(axis=0)).ravel()
    assert set(np.argsort(-popularity)[:10]) <= set(POPULAR)  # popularity knows no niche
    for kind, l2 in (("softmax", 1e-4), ("ridge", 0.01)):
        for crosses in (False, True):
            model = fit_attribute_regression(tokens, train, kind=kind, l2=l2, crosses=crosses)
            scores = model.scores([tokens[u] for u in cold])
            top = np.argsort(-scores, axis=1)[:, :8]
            hits = np.mean(
                [len(set(t) & set(matrix[u].indices)) / 8 for u, t in zip(cold, top, strict=True)]
            )
            pop_top = np.argsort(-popularity)[:8]
            pop_hits = np.mean([len(set(pop_top) & set(matrix[u].indices)) / 8 for u in cold])
            assert pop_hits == 0.0
            assert hits > 0.25, (kind, crosses, hits)  # popularity: 0
            # and it still ranks the popular half first for a man in his 30s
            man = model.scores([["sex=m", "age=30s", "occupation=engineer"]])[0]
            assert set(np.argsort(-man)[:10]) <= set(POPULAR)


def test_large_l2_ranks_as_popularity():
    users, matrix, _ = planted(seed=1)
    tokens = user_tokens(users, len(users))
    popularity = np.asarray(matrix.sum(axis=0)).ravel()
    order = np.argsort(-popularity, kind="stable")
    distinct = np.r_[True, np.diff(popularity[order]) != 0]  # compare ranks of untied items
    for l2 in (1e4, float("inf")):
        model = fit_attribute_regression(tokens, matrix, kind="softmax", l2=l2)
        assert np.abs(model.weights).max() < 1e-3
        for row in model.scores(tokens[:5]):
            ranks = np.argsort(np.argsort(-row, kind="stable"))
            assert np.all(np.diff(ranks[order][distinct]) > 0)
    ridge = fit_attribute_regression(tokens, matrix, kind="ridge", l2=float("inf"))
    assert np.allclose(ridge.scores([tokens[0]])[0], popularity / len(users), atol=1e-6)


def test_values_only_held_out_users_have_get_no_weight():
    users, matrix, niche = planted(seed=2)
    tokens = user_tokens(users, len(users))
    train = sp.csr_matrix(sp.diags((~niche).astype(float)) @ matrix)
    model = fit_attribute_regression(tokens, train, kind="softmax", l2=1e-3, crosses=True)
    # no woman in her 20s has train rows: the pair has no column, its parts do
    assert "age=20s&sex=f" not in model.vocabulary
    assert {"age=20s", "sex=f"} <= set(model.vocabulary)
    woman = model.scores([["sex=f", "age=20s"]])[0]
    parts = (
        model.bias
        + model.weights[model.vocabulary["age=20s"]]
        + model.weights[model.vocabulary["sex=f"]]
    )
    assert np.allclose(woman, parts, atol=1e-5)
