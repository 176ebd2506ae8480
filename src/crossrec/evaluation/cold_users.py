"""Users without history (the cold-user holdout): lists from who they are, never from their
hidden history. Ranked over every item (nothing of theirs is known to mask), on the same test
users for every method:

* ``mostpop`` — train popularity;
* ``group_popularity`` — popularity among train users who share all their attributes (same
  sex, age band and occupation on movielens), shrunk towards overall popularity by a weight
  chosen on the valid cold users: the strong, honest baseline;
* ``attributes_tower`` — the attributes written as words ("age 20s, sex f, occupation
  engineer"), encoded and mapped into the trained model's item space by a query tower trained
  on warm users' (attribute words, train item) pairs;
* ``attributes`` — tower and group popularity blended with weights chosen on valid cold users;
* ``attributes_regression`` — a multinomial logistic regression over every item: an item bias
  (popularity) plus attribute x item weights (one-hot sex, age band, occupation, optionally
  their pairs), L2, pairs and target weighting chosen on the valid cold users
  (:func:`crossrec.words.attributes.fit_attribute_regression`); its largest L2 (infinite) is
  MostPop, so validation can fall back to it. It does not depend on the model's seed.

Every choice reads the valid cold users only; the test cold users are scored once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.data.users import attribute_columns, user_tokens, user_words
from crossrec.evaluation.protocol import EvalSplit
from crossrec.evaluation.significance import paired_test
from crossrec.evaluation.words import RequestSet, per_request_metrics, seed_std
from crossrec.words.attributes import (
    AttributeRegression,
    attribute_tower,
    encode_distinct,
    fit_attribute_regression,
    group_popularity,
    group_scores,
)
from crossrec.words.blend import choose_weights, mix, standardize
from crossrec.words.config import WordsConfig

logger = logging.getLogger(__name__)

VARIANTS = (
    "mostpop", "group_popularity", "attributes_tower", "attributes", "attributes_regression"
)
COMPARISONS = (
    ("attributes_regression", "mostpop"),
    ("attributes_regression", "group_popularity"),
    ("attributes", "mostpop"),
    ("attributes", "group_popularity"),
    ("attributes_tower", "mostpop"),
    ("group_popularity", "mostpop"),
)
#: shrinkage weights of overall popularity tried on the valid cold users
SHRINKAGE = (0.1, 0.3, 1.0, 3.0, 10.0)
#: attribute x item regressions tried on the valid cold users: (kind, crosses, weighting) and
#: the L2 weights of each kind, largest first (inf = no attribute weight: popularity)
REGRESSIONS = tuple(
    (kind, crosses, weighting)
    for kind in ("softmax", "ridge")
    for crosses in (False, True)
    for weighting in ("interaction", "user")
)
L2_GRID = {
    "softmax": (float("inf"), 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5),
    "ridge": (float("inf"), 10.0, 1.0, 0.1, 0.01, 0.001),
}


def cold_request_set(matrix: sp.csr_matrix, words: list[str]) -> RequestSet:
    """One request per cold user of ``matrix`` (their whole held-out history is relevant)."""
    users = np.flatnonzero(np.diff(matrix.indptr) > 0)
    return RequestSet(
        users=users,
        texts=[words[u] for u in users],
        targets=[matrix[u].indices for u in users],
        exclude=sp.csr_matrix((len(users), matrix.shape[1]), dtype=np.float32),
    )


def mean_recall(scores: np.ndarray, requests: RequestSet, split: EvalSplit, k: int) -> float:
    """Mean Recall@k of ``scores`` over ``requests`` (every item ranked, nothing masked)."""
    if not len(requests):
        return 0.0
    return float(
        per_request_metrics(scores, requests, split, exclude=False, k=k)[f"recall@{k}"].mean()
    )


def choose_shrinkage(split: EvalSplit, words: list[str], valid: RequestSet, k: int) -> float:
    """The group popularity shrinkage with the best valid Recall@k (the smallest on ties)."""
    best_shrink, best = SHRINKAGE[0], -1.0
    for shrink in SHRINKAGE:
        value = mean_recall(
            group_scores(group_popularity(split.train, words, shrink), valid.texts), valid, split, k
        )
        if value > best + 1e-12:
            best_shrink, best = shrink, value
    return best_shrink


def choose_regression(
    split: EvalSplit, tokens: list[list[str]], valid: RequestSet, k: int, kinds=("softmax",)
) -> tuple[AttributeRegression, list[dict]]:
    """The attribute x item regression (:data:`REGRESSIONS` of ``kinds`` x :data:`L2_GRID`)
    with the best valid Recall@k; on ties the larger L2 (the simpler model) wins. Returns it
    and every point's valid value."""
    best, best_value, tried = None, -1.0, []
    for kind, crosses, weighting in REGRESSIONS:
        if kind not in kinds:
            continue
        model = None
        for l2 in L2_GRID[kind]:  # largest first: each fit starts from the previous one
            model = fit_attribute_regression(
                tokens, split.train, kind=kind, l2=l2, crosses=crosses, weighting=weighting,
                start=model,
            )
            value = mean_recall(model.scores([tokens[u] for u in valid.users]), valid, split, k)
            tried.append(
                {
                    "kind": kind,
                    "crosses": crosses,
                    "weighting": weighting,
                    "l2": l2,
                    f"valid_recall@{k}": value,
                }
            )
            if value > best_value + 1e-12:
                best, best_value = model, value
    return best, tried


def attribute_runs(
    split: EvalSplit, tokens: list[list[str]], words: list[str], k: int
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """Per test cold user Recall / NDCG@k of MostPop, group popularity and the attribute x
    item regressions (softmax, ridge), each chosen on the valid cold users; and what was
    chosen."""
    valid = cold_request_set(split.cold_valid, words)
    test = cold_request_set(split.cold_test, words)
    shrink = choose_shrinkage(split, words, valid, k)
    test_tokens = [tokens[u] for u in test.users]
    scores = {
        "mostpop": np.repeat(split.popularity.astype(np.float32)[None], len(test), axis=0),
        "group_popularity": group_scores(group_popularity(split.train, words, shrink), test.texts),
    }
    chosen: dict[str, Any] = {"group_shrinkage": shrink}
    for kind in ("softmax", "ridge"):
        model, _ = choose_regression(split, tokens, valid, k, kinds=(kind,))
        scores[f"attributes_{kind}"] = model.scores(test_tokens)
        chosen[kind] = {"l2": model.l2, "crosses": model.crosses, "weighting": model.weighting}
    runs = {
        name: per_request_metrics(s, test, split, exclude=False, k=k) for name, s in scores.items()
    }
    return runs, chosen


def evaluate_cold_users(
    split: EvalSplit,
    users: pd.DataFrame,
    model_vectors_per_seed: list[tuple[np.ndarray, np.ndarray]],
    seeds: list[int],
    config: WordsConfig,
) -> dict[str, Any]:
    """The ``cold_users`` block, or ``{}`` without cold test users or user attributes."""
    from crossrec.words.encoder import words_encoder
    from crossrec.words.tower import tower_scores

    if split.cold_test is None or split.cold_test.nnz == 0:
        return {}
    categorical, numeric = attribute_columns(users)
    if not categorical and not numeric:
        logger.info("cold users: the users have no attributes to recommend from; skipped")
        return {}
    start = time.perf_counter()
    words = user_words(users, split.n_users)
    valid = cold_request_set(split.cold_valid, words)
    test = cold_request_set(split.cold_test, words)
    k = config.k
    best_shrink = choose_shrinkage(split, words, valid, k)
    groups = group_popularity(split.train, words, best_shrink)
    tokens = user_tokens(users, split.n_users)
    regression, _ = choose_regression(split, tokens, valid, k) if len(valid) else (None, [])
    if regression is None:  # no valid cold users to choose with: plain popularity
        regression = fit_attribute_regression(tokens, split.train, l2=float("inf"))
    regression_scores = regression.scores([tokens[u] for u in test.users])
    encoder = words_encoder(config.encoder, config.max_tokens, config.device)
    encoded = encode_distinct(encoder, words)
    runs, weights = [], []
    for (_, items), seed in zip(model_vectors_per_seed, seeds, strict=True):
        tower = attribute_tower(encoded, words, split.train, items, config.tower, seed)
        signals = {}
        for name, requests in (("valid", valid), ("test", test)):
            vectors = np.stack([encoded[t] for t in requests.texts]) if len(requests) else None
            signals[name] = (
                [
                    standardize(tower_scores(tower, vectors, items)),
                    standardize(group_scores(groups, requests.texts)),
                ]
                if vectors is not None
                else None
            )
        chosen = (0.5, 0.5)
        if signals["valid"] is not None:
            chosen, _ = choose_weights(signals["valid"], valid.targets, k, config.blend_step)
        weights.append({"tower": chosen[0], "group_popularity": chosen[1]})
        scores = {
            "mostpop": np.repeat(split.popularity.astype(np.float32)[None], len(test), axis=0),
            "group_popularity": group_scores(groups, test.texts),
            "attributes_tower": signals["test"][0],
            "attributes": mix(signals["test"], chosen),
            "attributes_regression": regression_scores,
        }
        runs.append(
            {
                name: per_request_metrics(s, test, split, exclude=False, k=k)
                for name, s in scores.items()
            }
        )
    block: dict[str, Any] = {
        "users": {"valid": len(valid), "test": len(test)},
        "described_by": categorical + numeric,
        "group_shrinkage": best_shrink,
        "regression": {
            "kind": regression.kind,
            "l2": regression.l2 if np.isfinite(regression.l2) else None,  # None: MostPop
            "crosses": regression.crosses,
            "weighting": regression.weighting,
        },
        "weights": weights,
        "seeds": list(seeds),
        "k": k,
    }
    metric_names = sorted(runs[0]["mostpop"])
    per_user = {}
    for variant in VARIANTS:
        values = {m: np.stack([r[variant][m] for r in runs]) for m in metric_names}
        per_user[variant] = {m: v.mean(axis=0) for m, v in values.items()}
        block[variant] = {m: float(v.mean()) for m, v in values.items()}
        block[variant].update({f"{m}_std": seed_std(v) for m, v in values.items()})
    block["significance"] = {
        f"{a} vs {b}": {
            m: paired_test(per_user[a][m], per_user[b][m], m).as_dict() for m in metric_names
        }
        for a, b in COMPARISONS
    }
    block["timings"] = {"total_s": time.perf_counter() - start}
    logger.info(
        "cold users (%d test): recall@%d mostpop %.4f, group popularity %.4f, attributes %.4f",
        len(test),
        k,
        block["mostpop"][f"recall@{k}"],
        block["group_popularity"][f"recall@{k}"],
        block["attributes"][f"recall@{k}"],
    )
    return block
