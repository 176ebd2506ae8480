"""evaluate.sample_users (a seeded user sample per slice, with 95% intervals) and
evaluate.score_batch_bytes (users scored per chunk) on a small power-law split."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from crossrec.config import parse_params
from crossrec.evaluation.config import EvaluateConfig
from crossrec.evaluation.protocol import (
    aggregate_seeds,
    build_split,
    eligible_users,
    evaluate_scorer,
    ranking_slices,
    sample_slices,
)
from crossrec.evaluation.report_sample import sample_section
from crossrec.evaluation.runner import Evaluation
from crossrec.metrics.ranking import auto_chunk_size

SLICES = ["valid", "test", "test_warm", "test_cold"]
N_USERS, N_ITEMS = 400, 150


@pytest.fixture(scope="module")
def split():
    """400 users x 150 items, Zipf item popularity, 12 cold items; per user 3-24 items split
    train / valid / test by position."""
    rng = np.random.default_rng(3)
    popularity = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
    popularity /= popularity.sum()
    cold = np.zeros(N_ITEMS, dtype=bool)
    cold[rng.choice(N_ITEMS, 12, replace=False)] = True
    rows = []
    for user in range(N_USERS):
        n = int(rng.integers(3, 25))
        picks = rng.choice(N_ITEMS, size=n, replace=False, p=popularity)
        warm = [i for i in picks if not cold[i]]
        for pos, item in enumerate(warm):
            part = "train" if pos < len(warm) - 2 else ("valid" if pos == len(warm) - 2 else "test")
            rows.append((user, int(item), part))
        rows += [(user, int(i), "test") for i in picks if cold[i]]
    inter = pd.DataFrame(rows, columns=["user_idx", "item_idx", "split"])
    inter["timestamp"] = np.arange(len(inter))
    items = pd.DataFrame({"item_idx": range(N_ITEMS), "is_cold": cold})
    return build_split(inter, items, N_USERS, N_ITEMS, tie_break_seed=0)


def _scorer(seed: int):
    """Dot products of seeded random user / item vectors plus a popularity term."""
    gen = torch.Generator().manual_seed(seed)
    users, items = torch.randn(N_USERS, 8, generator=gen), torch.randn(N_ITEMS, 8, generator=gen)
    items[:, 0] += torch.linspace(2.0, 0.0, N_ITEMS)
    users[:, 0] = users[:, 0].abs()
    return lambda u: users[u] @ items.T


def _evaluation(split, **params) -> Evaluation:
    cfg = parse_params(EvaluateConfig, {"slices": SLICES, **params}, where="evaluate")
    return Evaluation(cfg, split, SimpleNamespace(fused_item_features={}))


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name]["users"], b[name]["users"])
        for metric, values in a[name]["metrics"].items():
            assert np.array_equal(values, b[name]["metrics"][metric]), (name, metric)
        assert a[name]["scalars"] == b[name]["scalars"]


def test_sample_is_seeded_and_shared_by_every_model(split) -> None:
    first = _evaluation(split, sample_users={"size": 60, "seed": 1})
    again = _evaluation(split, sample_users={"size": 60, "seed": 1})
    other = _evaluation(split, sample_users={"size": 60, "seed": 2})
    runs = [first.run(_scorer(0)), first.run(_scorer(1)), again.run(_scorer(2))]
    moved = other.run(_scorer(0))
    unsampled = {piece.name: piece for piece in ranking_slices(split, SLICES)}
    for piece in first.slices:
        eligible = eligible_users(unsampled[piece.name])
        assert np.array_equal(piece.eligible, eligible)
        users = runs[0][piece.name]["users"]
        assert len(users) == min(60, len(eligible)) and set(users) <= set(eligible)
        assert runs[0][piece.name]["population"] == len(eligible)
        for run in runs[1:]:  # another model, another Evaluation: the same users
            assert np.array_equal(run[piece.name]["users"], users)
        if len(eligible) > 60:  # another seed, another sample
            assert not np.array_equal(moved[piece.name]["users"], users)
    # the history buckets split the sampled test users
    buckets = [runs[0][n]["users"] for n in ("users_short", "users_medium", "users_long")]
    assert np.array_equal(np.sort(np.concatenate(buckets)), runs[0]["test"]["users"])
    # the samples of test and test_warm are drawn in one user order: they overlap
    overlap = np.intersect1d(runs[0]["test"]["users"], runs[0]["test_warm"]["users"])
    assert len(overlap) >= 50


def test_no_sample_is_the_full_protocol(split) -> None:
    default = _evaluation(split)
    assert default.cfg.sample_users.size is None
    full = evaluate_scorer(
        _scorer(0), split, ranking_slices(split, SLICES), default.cfg.ks, 20, None,
        user_buckets=default.buckets, popularity_buckets=5,
    )  # fmt: skip
    result = default.run(_scorer(0))
    _same(result, full)
    for piece in ranking_slices(split, SLICES):  # who a slice evaluates, found without ranking
        assert np.array_equal(eligible_users(piece), full[piece.name]["users"])
    assert all("population" not in entry for entry in result.values())
    table = aggregate_seeds([result])
    assert "ci95" not in table["test"]["recall@20"]
    # a sample as large as a slice evaluates everyone: the same values, an interval of width 0
    everyone = _evaluation(split, sample_users={"size": N_USERS}).run(_scorer(0))
    for name in full:
        for metric, values in full[name]["metrics"].items():
            assert np.array_equal(everyone[name]["metrics"][metric], values)
    stat = aggregate_seeds([everyone])["test"]["recall@20"]
    assert stat["ci95"] == [stat["mean"], stat["mean"]]
    assert stat["users"] == stat["population"] == len(full["test"]["users"])


def test_interval_covers_the_full_value(split) -> None:
    """Over 40 sample seeds the 95% interval holds the all-users value about 95% of the time."""
    full = aggregate_seeds([_evaluation(split).run(_scorer(0))])["test"]["recall@20"]["mean"]
    inside, widths = 0, []
    for seed in range(40):
        runs = _evaluation(split, sample_users={"size": 80, "seed": seed}).run(_scorer(0))
        stat = aggregate_seeds([runs])["test"]["recall@20"]
        low, high = stat["ci95"]
        assert low <= stat["mean"] <= high and stat["users"] == 80
        inside += low <= full <= high
        widths.append(high - low)
    assert inside >= 34
    assert 0.0 < np.mean(widths) < 0.3


def test_interval_over_seeds_uses_the_per_user_seed_mean(split) -> None:
    evaluation = _evaluation(split, sample_users={"size": 50, "seed": 0})
    runs = [evaluation.run(_scorer(s)) for s in (0, 1, 2)]
    stat = aggregate_seeds(runs)["valid"]["ndcg@20"]
    per_user = np.mean([r["valid"]["metrics"]["ndcg@20"] for r in runs], axis=0)
    n, population = len(per_user), stat["population"]
    half = (
        1.959964 * per_user.std(ddof=1) / np.sqrt(n) * np.sqrt((population - n) / (population - 1))
    )
    assert stat["mean"] == pytest.approx(per_user.mean())
    assert stat["ci95"] == pytest.approx([per_user.mean() - half, per_user.mean() + half])
    cfg = evaluation.cfg
    text = "\n".join(sample_section({"crossrec": aggregate_seeds(runs)}, cfg, ["valid", "test"]))
    assert "at most 50 of its users" in text and f"valid 50 of {population}" in text
    ndcg = aggregate_seeds(runs)["valid"][f"ndcg@{cfg.k}"]
    assert f"{ndcg['mean']:.4f} [{ndcg['ci95'][0]:.4f}, {ndcg['ci95'][1]:.4f}]" in text
    assert sample_section({"crossrec": aggregate_seeds(runs)}, _evaluation(split).cfg, []) == []


def test_batch_size_does_not_change_results(split) -> None:
    reference = _evaluation(split).run(_scorer(1))
    for chunk in (1, 7, 64):
        _same(_evaluation(split, chunk_users=chunk).run(_scorer(1)), reference)
    small = _evaluation(split, score_batch_bytes=2**20)
    assert small.chunk_users() == auto_chunk_size(N_ITEMS, 2**20) < N_USERS
    _same(small.run(_scorer(1)), reference)
    sampled = _evaluation(split, sample_users={"size": 30}, chunk_users=4)
    _same(sampled.run(_scorer(1)), _evaluation(split, sample_users={"size": 30}).run(_scorer(1)))


def test_sample_users_keys_are_validated() -> None:
    with pytest.raises(ValueError, match="sise"):
        parse_params(EvaluateConfig, {"sample_users": {"sise": 3}}, where="evaluate")
    with pytest.raises(ValueError, match="size"):
        parse_params(EvaluateConfig, {"sample_users": {"size": 0}}, where="evaluate")
    assert sample_slices([], 10, None, 0) == []
