"""model.content_mix: the no-content twin's and the content model's scores mixed by item
popularity, as one dot product of concatenated vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from crossrec.metrics.ranking import rank_and_evaluate
from crossrec.models.bundle import build_recommender
from crossrec.models.config import ContentMixConfig, FinetuneConfig
from crossrec.models.content_mix import (
    MixChoice,
    MixedScorer,
    choose_mix,
    grid,
    mix_scorer,
    mixed_vectors,
    tail_pairs,
    twin_weights,
)
from crossrec.models.gate import item_degrees

from .conftest import user_item_graph

COLD = [0, 5]


def _with_cold_items(data, items=COLD):
    keep = np.ones(data.n_items, dtype=np.float32)
    keep[items] = 0.0
    train = sp.csr_matrix(data.train @ sp.diags(keep))
    train.eliminate_zeros()
    return type(data)(
        **{**data.__dict__, "train": train, "user_item_graph": user_item_graph(train)}
    )


@pytest.fixture(scope="module")
def models(tiny_data):
    """(data with two cold items, twin's vectors, content model's vectors): the tiny data's
    model with content and its twin without (untrained: any vectors do for the algebra)."""
    data = _with_cold_items(tiny_data)
    out = []
    for model in (
        {"use_content": False, "propagation": {"item_graph_layers": 0}},
        {"use_content": True},
    ):
        torch.manual_seed(0)
        config = FinetuneConfig.model_validate({"model": {"embedding_dim": 16, **model}})
        out.append(build_recommender(data, config).eval().scoring_vectors())
    return data, out[0], out[1]


def _z(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    scores = (users.double() @ items.double().T).numpy()
    mean, std = scores.mean(axis=1, keepdims=True), scores.std(axis=1, keepdims=True)
    return torch.as_tensor((scores - mean) / std)


def test_twin_weight_rises_with_degree_and_cold_items_get_none():
    degree = np.array([0, 1, 10, 100, 1000], dtype=np.float32)
    g = twin_weights(degree, tau=10.0, slope=1.0)
    assert g[0] == 0.0  # cold: the content model's score only
    assert np.all(np.diff(g[1:]) > 0) and g[2] == pytest.approx(0.5)
    assert twin_weights(degree, 0.0, 1.0).tolist() == [0, 1, 1, 1, 1]  # twin for warm items
    assert twin_weights(degree, math.inf, 1.0).tolist() == [0] * 5  # content only
    steep = twin_weights(degree, 10.0, 2.0)
    assert steep[1] < g[1] and steep[3] > g[3]


@pytest.mark.parametrize("standardise", ["user", "global", "none"])
def test_the_concatenated_dot_product_is_the_mixed_score(models, standardise):
    data, twin, content = models
    degree = item_degrees(data.train)
    choice = MixChoice(tau=5.0, slope=2.0, scale=0.7)
    users, items = mixed_vectors(twin, content, degree, choice, standardise)
    g = torch.as_tensor(twin_weights(degree, 5.0, 2.0), dtype=torch.float64)
    if standardise == "user":
        z_twin, z_content = _z(*twin), _z(*content)
    elif standardise == "none":
        z_twin = twin[0].double() @ twin[1].double().T
        z_content = content[0].double() @ content[1].double().T
    else:  # centred per user, one scale per model: the per-user z-scores up to one factor
        raw_twin, raw_content = (u.double() @ v.double().T for u, v in (twin, content))
        z_twin = raw_twin - raw_twin.mean(dim=1, keepdim=True)
        z_content = raw_content - raw_content.mean(dim=1, keepdim=True)
        z_twin = z_twin / z_twin.pow(2).mean().sqrt()
        z_content = z_content / z_content.pow(2).mean().sqrt()
    expected = 0.7 * g * z_twin + (1.0 - g) * z_content
    mixed = MixedScorer(users, items).score_users(torch.arange(data.n_users)).double()
    assert users.shape[1] == items.shape[1] == twin[0].shape[1] + content[0].shape[1]
    assert torch.allclose(mixed, expected, atol=1e-4 * expected.abs().max().item())


def test_cold_items_get_the_content_score_only(models):
    data, twin, content = models
    degree = item_degrees(data.train)
    assert degree[COLD].tolist() == [0, 0] and (np.delete(degree, COLD) > 0).all()
    for choice in (MixChoice(0.0, 1.0, 2.0), MixChoice(50.0, 1.0, 0.5)):
        users, items = mixed_vectors(twin, content, degree, choice, "user")
        cold = (users @ items.T)[:, COLD].double()
        assert torch.allclose(cold, _z(*content)[:, COLD], atol=1e-4)
        # another twin changes the warm items' scores, never the cold ones'
        other = (twin[0] + torch.randn_like(twin[0]), twin[1] + torch.randn_like(twin[1]))
        users2, items2 = mixed_vectors(other, content, degree, choice, "user")
        assert torch.allclose((users2 @ items2.T)[:, COLD], cold.float(), atol=1e-4)


def test_a_twin_weight_of_one_reproduces_the_twins_ranking(models):
    data, twin, content = models
    degree = item_degrees(data.train)
    users, items = mixed_vectors(twin, content, degree, MixChoice(0.0, 1.0, 1.0), "user")
    warm = degree > 0
    truth, exclude = data.valid, data.train
    twin_scorer, mixed = MixedScorer(*twin), MixedScorer(users, items)
    runs = [
        rank_and_evaluate(scorer, truth, exclude, [10], candidates=warm)
        for scorer in (twin_scorer, mixed)
    ]
    assert np.array_equal(runs[0][2], runs[1][2])  # the same ranked lists
    assert np.array_equal(runs[0][1]["recall@10"], runs[1][1]["recall@10"])


def _factor_data(seed: int = 0):
    """Users and items with true factors; each user's 3 best unseen items held out for
    validation, 3 others for test; 10 train items each."""
    rng = np.random.default_rng(seed)
    n_users, n_items, dim = 60, 90, 8
    u, v = rng.normal(size=(n_users, dim)), rng.normal(size=(n_items, dim))
    order = np.argsort(-(u @ v.T), axis=1)

    def rows(cols):
        r = np.repeat(np.arange(n_users), cols.shape[1])
        return sp.csr_matrix((np.ones(r.size), (r, cols.ravel())), shape=(n_users, n_items))

    train, valid, test = rows(order[:, 3:13]), rows(order[:, :3]), rows(order[:, 13:16])
    return u, v, train, valid, test


def test_validation_picks_the_informative_model_and_never_reads_test():
    u, v, train, valid, test = _factor_data()
    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    good = (torch.tensor(u, dtype=torch.float32), torch.tensor(v, dtype=torch.float32))
    noise = (torch.randn(u.shape[0], 8), torch.randn(v.shape[0], 8))
    degree = item_degrees(train + sp.csr_matrix(rng.random((60, 90)) < 0.05))
    warm = degree > 0
    config = ContentMixConfig(kind="popularity", k=5, choose="overall", slots=[0])

    def twin_share(choice: MixChoice) -> float:
        """The twin's weight against the content model's, averaged over the warm items."""
        g = twin_weights(degree, choice.tau, choice.slope)[warm].astype(np.float64)
        return float(np.mean(choice.scale * g / (choice.scale * g + (1 - g))))

    # pure-noise content: the warm items go to the twin
    choice, table = choose_mix(good, noise, degree, config, valid, train)
    assert twin_share(choice) > 0.8, choice
    assert len(table) == len(grid(config)) and table[-1][0].tau == math.inf
    # pure-noise twin: the content model (nearly) alone
    choice, _ = choose_mix(noise, good, degree, config, valid, train)
    assert twin_share(choice) < 0.2, choice
    # the choice reads the validation pairs it is given: the test pairs in their place give
    # other validation values (and the caller never hands them over: tests/models/
    # test_content_mix_benchmark.py)
    _, on_valid = choose_mix(good, noise, degree, config, valid, train)
    _, on_test = choose_mix(good, noise, degree, config, test, train + valid)
    assert [p.value for p in on_valid] != [p.value for p in on_test]


def test_grid_drops_duplicate_points_and_always_tries_content_alone():
    config = ContentMixConfig(kind="popularity", taus=[0.0, 20.0], slopes=[1.0, 3.0], slots=[0])
    points = grid(config)
    assert [(p.tau, p.slope) for p in points].count((0.0, 1.0)) == 3  # one per scale
    assert (0.0, 3.0) not in [(p.tau, p.slope) for p in points]
    assert points[-1] == MixChoice(math.inf, 1.0, 1.0)


def test_config_is_validated():
    with pytest.raises(ValueError, match="taus"):
        ContentMixConfig(kind="popularity", taus=[-1.0])
    with pytest.raises(ValueError, match="taus"):
        ContentMixConfig(kind="popularity", taus=[float("inf")])
    with pytest.raises(ValueError, match="choose"):
        ContentMixConfig(choose="best")


def test_tail_pairs_are_the_least_popular_share_of_the_held_out_pairs():
    truth = sp.csr_matrix(np.array([[1, 1, 0, 1], [0, 1, 1, 1]], dtype=np.float32))
    degree = np.array([1, 5, 2, 9])
    tail = tail_pairs(truth, degree, 0.5)  # 6 pairs; degrees 1, 5, 9, 5, 2, 9: cut at 5
    assert tail.toarray().tolist() == [[1, 1, 0, 0], [0, 1, 1, 0]]
    assert tail_pairs(truth, degree, 0.1).toarray().tolist() == [[1, 0, 0, 0], [0, 0, 0, 0]]
    assert (tail_pairs(truth, degree, 1.0) != truth).nnz == 0


def _head_and_tail_models():
    """(twin, content model, train degrees, train, valid) on factor data: the twin knows the
    popular items exactly and the others badly, the content model all items roughly."""
    u, v, train, valid, _ = _factor_data(0)
    torch.manual_seed(0)
    degree = item_degrees(train)
    popular = torch.tensor(degree >= np.median(degree)).unsqueeze(1)
    true_v = torch.tensor(v, dtype=torch.float32)
    twin = (
        torch.tensor(u, dtype=torch.float32),
        torch.where(popular, true_v, true_v + torch.randn_like(true_v)),
    )
    content = (torch.tensor(u, dtype=torch.float32), true_v + 0.5 * torch.randn_like(true_v))
    return twin, content, degree, train, valid


def test_a_tolerance_trades_overall_validation_for_the_tail():
    """Points within the tolerance of the best overall value are equals; the tail decides."""
    twin, content, degree, train, valid = _head_and_tail_models()
    strict = ContentMixConfig(kind="popularity", k=5, choose="overall", slots=[0])
    loose = ContentMixConfig(kind="popularity", k=5, choose="overall", slots=[0], tolerance=0.05)
    best, points = choose_mix(twin, content, degree, strict, valid, train)
    assert all(p.tail is None for p in points)
    chosen, points = choose_mix(twin, content, degree, loose, valid, train)
    top = max(p.value for p in points)
    eligible = [p for p in points if p.tail is not None]
    assert {p.choice for p in eligible} == {p.choice for p in points if p.value >= 0.95 * top}
    pick = next(p for p in points if p.choice == chosen)
    assert pick.value >= 0.95 * top and pick.tail == max(p.tail for p in eligible)
    # here the best overall point is not the best on the tail: the tolerance moves the choice
    assert chosen != best and pick.tail > next(p.tail for p in points if p.choice == best)


def test_tail_slots_take_the_last_places_that_hold_no_head_item():
    """A list of 4 from base scores 8..1 (items 0..7), items 0 and 3 the head, 5-7 the tail:
    two slots go to the content model's two best tail items (6, then 7), in the places of the
    last non-head items (2, then 1); below the first 4 the base order goes on."""
    from crossrec.models.content_mix import slotted_scores

    base = torch.arange(8, 0, -1, dtype=torch.float32).unsqueeze(0)
    content = torch.tensor([[9.0, 9.0, 9.0, 9.0, 9.0, 1.0, 3.0, 2.0]])
    tail = torch.tensor([False] * 5 + [True] * 3)
    head = torch.tensor([True, False, False, True, False, False, False, False])

    def ranking(scores):
        return torch.argsort(scores[0], descending=True, stable=True).tolist()

    assert ranking(slotted_scores(base, content, tail, head, 2, 4)) == [0, 3, 6, 7, 1, 2, 4, 5]
    assert torch.equal(slotted_scores(base, content, tail, head, 0, 4), base)
    # an excluded tail item is never placed; an all-head list gives up its last places
    excluded = base.clone()
    excluded[0, 6] = -torch.inf
    scores = slotted_scores(excluded, content, tail, head, 2, 4)
    assert ranking(scores)[:4] == [0, 3, 7, 5] and torch.isneginf(scores[0, 6])
    all_head = torch.tensor([True] * 4 + [False] * 4)
    assert ranking(slotted_scores(base, content, tail, all_head, 2, 4))[:4] == [0, 1, 6, 7]
    # a tail item already in the list keeps its place and takes no slot
    listed_tail = torch.tensor([False, True] + [False] * 3 + [True] * 3)
    assert ranking(slotted_scores(base, content, listed_tail, head, 1, 4))[:4] == [0, 1, 3, 6]


def test_popular_items_hold_the_share_of_train_interactions():
    from crossrec.models.content_mix import popular_items

    degree = np.array([0, 1, 1, 2, 2, 4, 10])  # 20 train pairs
    # least popular: 1+1+2+2 = 30% < 40%, the item of degree 4 crosses 40% and is kept
    assert popular_items(degree, 0.4, most=False).tolist() == [0, 1, 1, 1, 1, 1, 0]
    assert popular_items(degree, 0.2, most=True).tolist() == [0, 0, 0, 0, 0, 0, 1]
    assert not popular_items(np.zeros(3), 0.5, most=True).any()  # no warm item


def test_the_targets_rule_picks_the_best_tail_among_points_that_keep_overall_and_head():
    """``choose: targets``: the twin (tau 0, no slot) is the reference; the allowed points lose
    at most ``margin`` overall and ``head_loss`` on the head pairs against it on validation,
    and the chosen one is the best of them on the tail pairs. A slotted choice is a scorer that
    must be bound to a slice's exclusions before it ranks."""
    from crossrec.models.content_mix import SlottedScorer, bound, mix_scorer, popular_items

    twin, content, degree, train, valid = _head_and_tail_models()
    config = ContentMixConfig(
        kind="popularity", k=5, slots=[0, 1, 2], choose="targets", margin=0.02, head_loss=0.05
    )
    chosen, points = choose_mix(twin, content, degree, config, valid, train)
    assert {p.choice.slots for p in points} == {0, 1, 2}
    reference = next(p for p in points if p.choice == MixChoice(0.0, 1.0, 0.5, 0))
    allowed = [
        p
        for p in points
        if p.value >= 0.98 * reference.value and p.head >= 0.95 * reference.head
    ]
    pick = next(p for p in points if p.choice == chosen)
    assert pick in allowed and pick.tail == max(p.tail for p in allowed)
    assert pick.tail > reference.tail  # the content model's tail knowledge is used
    scorer = mix_scorer(twin, content, degree, MixChoice(0.0, 1.0, 1.0, 2), config)
    assert isinstance(scorer, SlottedScorer)
    with pytest.raises(RuntimeError, match="for_slice"):
        scorer.score_users(torch.arange(3))
    scores = bound(scorer, train).score_users(torch.arange(60))
    lists = torch.argsort(scores, dim=1, descending=True)
    tail_items = set(np.flatnonzero(popular_items(degree, config.tail_share, most=False)))
    assert all(len(set(row[:5].tolist()) & tail_items) >= 2 for row in lists)


@pytest.mark.parametrize("ties", ["index", "seeded order"])
def test_one_pass_over_the_grid_equals_ranking_each_point_as_its_own_scorer(ties):
    """grid_values (both models scored once per chunk of users, each point re-ranked from them)
    against validation_values of each point's scorer: equal values at every point, with tail
    slots, a tie order, repeated content vectors (ties) and a catalogue wide enough for the
    threshold top-k."""
    from crossrec.metrics.ranking import tie_break_order
    from crossrec.models.content_mix import head_pairs, validation_values
    from crossrec.models.mix_grid import grid_values

    n_users, n_items = 120, 5000
    gen = torch.Generator().manual_seed(5)
    twin = (torch.randn(n_users, 8, generator=gen), torch.randn(n_items, 8, generator=gen))
    content = (torch.randn(n_users, 8, generator=gen), torch.randn(n_items, 8, generator=gen))
    content[1][:40] = content[1][40:80]  # identical vectors: tied scores
    rng = np.random.default_rng(5)
    degree = np.floor(rng.pareto(1.2, n_items) * 3)
    train = sp.random(n_users, n_items, density=0.004, format="csr", random_state=1)
    valid = sp.random(n_users, n_items, density=0.001, format="csr", random_state=2)
    valid = (valid - valid.multiply(train > 0)).tocsr()
    train.data[:], valid.data[:] = 1.0, 1.0
    config = ContentMixConfig(taus=[0.0, 2.0, 50.0], slopes=[1.0, 2.0], scales=[0.5, 2.0])
    subsets = [tail_pairs(valid, degree, config.tail_share), head_pairs(valid, degree, 0.2)]
    order = None if ties == "index" else tie_break_order(n_items, 9)
    points = grid(config)
    assert {p.slots for p in points} == {0, 1, 2}
    fast = grid_values(twin, content, degree, points, config, valid, train, subsets, order)
    for point, values in zip(points, fast, strict=True):
        scorer = mix_scorer(twin, content, degree, point, config)
        slow = validation_values(scorer, valid, train, "recall", config.k, subsets, order)
        assert values == pytest.approx(slow, abs=1e-12), point
    assert len({tuple(v) for v in fast}) > 3  # the points rank differently
