"""Recommender + bundle: scoring shapes, propagation, cold items, state, load round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossrec.models.bundle import build_recommender, load_recommender, make_bundle
from crossrec.models.config import FinetuneConfig


def _config(**model) -> FinetuneConfig:
    base = {"embedding_dim": 16, "user_tower": {"kind": "mean", "history_length": 5}}
    base.update(model)
    return FinetuneConfig.model_validate({"model": base})


def test_scores_shape_and_graph_buffers_not_saved(tiny_data):
    torch.manual_seed(0)
    model = build_recommender(tiny_data, _config()).eval()
    scores = model.score_users(torch.tensor([0, 3, 5]))
    assert scores.shape == (3, tiny_data.n_items)
    assert torch.isfinite(scores).all()
    keys = set(model.state_dict())
    assert {"user_id.weight", "item_id.weight"} <= keys
    assert not any(k.startswith(("ui_graph", "ii_graph", "history")) for k in keys)


def test_propagation_mixes_neighbours(tiny_data):
    """With LightGCN a user's score depends on their train items' embeddings."""
    torch.manual_seed(0)
    model = build_recommender(tiny_data, _config(user_tower={"kind": "none"})).eval()
    before = model.score_users(torch.tensor([0])).clone()
    item = int(tiny_data.train[0].indices[0])
    with torch.no_grad():
        model.item_id.weight[item] += 1.0
    model.clear_cache()
    after = model.score_users(torch.tensor([0]))
    other_items = np.setdiff1d(np.arange(tiny_data.n_items), [item])
    assert not torch.allclose(before[0, other_items], after[0, other_items])


def test_cold_item_scores_from_content(tiny_data):
    """Content-only items: two items with identical features score identically for every user."""
    features = {
        k: (dict(v) if isinstance(v, dict) else v) for k, v in tiny_data.item_features.items()
    }
    for name in ("text", "image"):
        vectors = features[name]["vectors"].copy()
        vectors[1] = vectors[0]
        features[name]["vectors"] = vectors
        mask = features[name]["mask"].copy()
        mask[1] = mask[0]
        features[name]["mask"] = mask
    data = type(tiny_data)(**{**tiny_data.__dict__, "item_features": features})
    config = _config(use_id_embedding=False, propagation={"kind": "none"})
    model = build_recommender(data, config).eval()
    scores = model.score_users(torch.arange(data.n_users))
    assert torch.allclose(scores[:, 0], scores[:, 1], atol=1e-6)


def test_bundle_round_trip_gives_same_scores(tiny_data):
    torch.manual_seed(0)
    config = _config(fusion={"strategy": "gated"})
    model = build_recommender(tiny_data, config).eval()
    bundle = make_bundle(model, config, history=[{"epoch": 0, "val/recall@20": 0.5}])
    assert set(bundle) == {
        "config",
        "state_dict",
        "n_users",
        "n_items",
        "modalities",
        "history",
        "resumed_from",
    }
    assert bundle["resumed_from"] is None
    assert bundle["modalities"] == ["text", "image"]
    loaded = load_recommender(bundle, tiny_data)
    assert not loaded.training
    users = torch.arange(5)
    assert torch.allclose(model.score_users(users), loaded.score_users(users), atol=1e-6)
    weights = loaded.modality_weights(torch.tensor([0, 1]))
    assert weights.shape == (2, 2)


def test_bundle_mismatch_is_a_clear_error(tiny_data):
    config = _config()
    bundle = make_bundle(build_recommender(tiny_data, config), config, history=[])
    bundle["n_items"] += 1
    with pytest.raises(ValueError, match="items"):
        load_recommender(bundle, tiny_data)


def test_modality_weights_none_without_gates(tiny_data):
    model = build_recommender(tiny_data, _config()).eval()
    assert model.modality_weights(torch.tensor([0])) is None


def test_impossible_model_is_rejected(tiny_data):
    with pytest.raises(ValueError, match="cannot both be false"):
        build_recommender(tiny_data, _config(use_id_embedding=False, use_content=False))
    with pytest.raises(ValueError, match="item_graph_modalities"):
        build_recommender(tiny_data, _config(propagation={"item_graph_modalities": ["audio"]}))


def test_items_and_users_without_training_data_have_no_id_embedding(tiny_data):
    """An ID never trained is only noise: its embedding is masked to zero in the ego vectors."""
    import scipy.sparse as sp

    train = tiny_data.train.tolil()
    train[:, 5] = 0  # item 5: no training interactions (a cold item)
    train[7, :] = 0  # user 7: no training history
    train = sp.csr_matrix(train)
    train.eliminate_zeros()
    data = type(tiny_data)(**{**tiny_data.__dict__, "train": train})
    config = _config(use_content=False, user_tower={"kind": "none"}, propagation={"kind": "none"})
    model = build_recommender(data, config).eval()
    with torch.no_grad():
        items, users = model.item_ego(), model.user_ego(model.item_ego())
    assert torch.count_nonzero(items[5]) == 0 and torch.count_nonzero(users[7]) == 0
    assert torch.count_nonzero(items[4]) > 0 and torch.count_nonzero(users[6]) > 0


def test_id_dropout_zeroes_item_ids_only_while_training(tiny_data):
    torch.manual_seed(0)
    model = build_recommender(tiny_data, _config(id_dropout=0.5))
    content = model.fusion(None).detach()
    model.train()
    dropped = (model.item_ego().detach() - content).abs().sum(dim=1) == 0
    assert 0.2 < dropped.float().mean() < 0.8  # about half of the items lost their ID part
    model.eval()
    with torch.no_grad():
        kept = (model.item_ego() - model.fusion(None)).abs().sum(dim=1) == 0
    assert not kept.any()


@pytest.mark.parametrize("symmetric", [True, False])
def test_graph_matmul_matches_dense_values_and_gradients(symmetric):
    """The CSR propagation with its pre-built transpose equals dense autograd, both ways."""
    import scipy.sparse as sp

    from crossrec.models.graph_ops import GraphMatmul, graph_and_transpose

    rng = np.random.default_rng(0)
    adj = sp.random(30, 30, density=0.15, random_state=1, dtype=np.float32)
    if symmetric:
        adj = adj + adj.T
    graph, graph_t = graph_and_transpose(adj)
    assert (graph is graph_t) == symmetric
    x = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32, requires_grad=True)
    weights = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32)
    out = GraphMatmul.apply(graph, graph_t, GraphMatmul.apply(graph, graph_t, x))
    (out * weights).sum().backward()
    dense = torch.tensor(adj.toarray())
    x_ref = x.detach().clone().requires_grad_(True)
    ref = dense @ (dense @ x_ref)
    (ref * weights).sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-5)


def test_ego_penalty_equals_the_gathered_sum(tiny_data):
    """Counting occurrences gives exactly the L2 of the gathered batch rows (repeats included)."""
    from crossrec.models.module import RecommenderModule

    torch.manual_seed(0)
    model = build_recommender(tiny_data, _config())
    emb = model.embeddings()
    users = torch.tensor([0, 3, 3, 5])
    pos = torch.tensor([1, 1, 7, 2])
    neg = torch.tensor([[4, 4, 9], [1, 0, 2], [9, 9, 9], [3, 5, 6]])
    gathered = (
        emb.users_ego[users].pow(2).sum()
        + emb.items_ego[pos].pow(2).sum()
        + emb.items_ego[neg].pow(2).sum() / neg.shape[1]
    ) / (2 * len(users))
    penalty = RecommenderModule._ego_penalty(emb.users_ego, emb.items_ego, users, pos, neg)
    torch.testing.assert_close(penalty, gathered, rtol=1e-5, atol=1e-7)


def _dense(graph: torch.Tensor) -> np.ndarray:
    return graph.to_dense().numpy()


def test_edge_pruning_keeps_a_renormalised_share_of_train_edges(tiny_data):
    """FREEDOM pruning: (1 - p) of the train edges, symmetric, D^-1/2 A D^-1/2 of what is kept;
    evaluation uses the full graph."""
    torch.manual_seed(0)
    config = _config(user_tower={"kind": "none"}, propagation={"edge_dropout": 0.5})
    model = build_recommender(tiny_data, config)
    n_users, n_edges = tiny_data.n_users, len(model.edge_weight)
    assert n_edges == tiny_data.train.nnz
    graph = _dense(model.pruned_graph())
    np.testing.assert_allclose(graph, graph.T)
    kept = graph[:n_users, n_users:] > 0
    assert kept.sum() == int(n_edges * 0.5)
    assert not (kept & (tiny_data.train.toarray() == 0)).any()  # only train edges survive
    deg_u, deg_i = kept.sum(axis=1), kept.sum(axis=0)
    rows, cols = np.nonzero(kept)
    expected = 1.0 / np.sqrt(deg_u[rows] * deg_i[cols])
    np.testing.assert_allclose(graph[:n_users, n_users:][rows, cols], expected, rtol=1e-5)
    model.eval()  # inference: every train edge
    full = model.ui_graph.to_dense().numpy()[:n_users, n_users:] > 0
    assert full.sum() == n_edges


def test_edge_pruning_drops_edges_between_popular_nodes_first():
    """Edge (u, i) survives with probability ~ 1 / sqrt(deg u * deg i)."""
    import scipy.sparse as sp

    from crossrec.graphs.knn import normalized_user_item_graph
    from crossrec.models.config import ModelConfig
    from crossrec.models.recommender import Recommender

    # user 0 and item 0 are hubs (everyone links to item 0, user 0 to every item); the other
    # users each add one niche edge
    n_users, n_items = 30, 30
    rows = [0] * n_items + list(range(1, n_users)) + list(range(1, n_users))
    cols = list(range(n_items)) + [0] * (n_users - 1) + list(range(1, n_items))
    train = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
    train.data[:] = 1.0
    config = ModelConfig.model_validate(
        {"use_content": False, "propagation": {"edge_dropout": 0.5, "item_graph_layers": 0}}
    )
    graph = normalized_user_item_graph(*train.nonzero(), n_users, n_items)
    model = Recommender(config, n_users, n_items, train, user_item_graph=graph)
    torch.manual_seed(0)
    hub, niche = 0, 0
    for _ in range(20):
        kept = _dense(model.pruned_graph())[:n_users, n_users:] > 0
        hub += kept[0, 0]
        niche += kept[1:, 1:].diagonal().sum() / (n_users - 1)
    assert hub / 20 < niche / 20


def _embeddings_without_tower(tiny_data, propagation: dict):
    """(eval model, its embeddings, its masked item-ID table) of a model without user tower."""
    torch.manual_seed(0)
    config = _config(user_tower={"kind": "none"}, propagation=propagation)
    model = build_recommender(tiny_data, config).eval()
    with torch.no_grad():
        return model, model.embeddings(), model.item_id.weight * model.item_id_seen


def test_item_graph_over_ids_ignores_content(tiny_data):
    """item_graph_input id: the item-graph branch smooths ID embeddings only (FREEDOM)."""
    model, emb, ids = _embeddings_without_tower(
        tiny_data, {"layers": 0, "item_graph_layers": 1, "item_graph_input": "id"}
    )
    with torch.no_grad():
        graph = model.ii_graph.to_dense()
        expected = emb.items_ego + (ids + graph @ ids) / 2
    torch.testing.assert_close(emb.items, expected, rtol=1e-5, atol=1e-6)


def test_item_graph_k_rebuilds_the_modality_graphs_from_the_fused_vectors(tiny_data):
    """item_graph_k: the item graph is the mean of kNN graphs rebuilt at that k (fuse's
    construction, binary weights) instead of the graphs fuse built; null keeps fuse's."""
    from crossrec.graphs.knn import knn_graph

    propagation = {"layers": 0, "item_graph_layers": 1, "item_graph_input": "id"}
    kept, _, _ = _embeddings_without_tower(tiny_data, propagation)
    fuse_mean = sum(tiny_data.modality_graphs[n].toarray() for n in ("image", "text")) / 2
    np.testing.assert_allclose(kept.ii_graph.to_dense().numpy(), fuse_mean, rtol=1e-6)

    # at the fixture's own k (5) the rebuilt graph is the one it built independently
    same_k, _, _ = _embeddings_without_tower(tiny_data, {**propagation, "item_graph_k": 5})
    np.testing.assert_allclose(same_k.ii_graph.to_dense().numpy(), fuse_mean, rtol=1e-5, atol=1e-7)
    rebuilt, _, _ = _embeddings_without_tower(tiny_data, {**propagation, "item_graph_k": 2})
    features = tiny_data.item_features
    expected = (
        sum(
            knn_graph(features[n]["vectors"], features[n]["mask"], 2).toarray()
            for n in ("image", "text")
        )
        / 2
    )
    np.testing.assert_allclose(rebuilt.ii_graph.to_dense().numpy(), expected, rtol=1e-6)
    assert not np.allclose(expected, fuse_mean)  # k 2 is not the fixture's k
    # each item keeps ~2 neighbours per modality: far fewer edges than the fixture's graphs
    assert (expected > 0).sum() < (fuse_mean > 0).sum()


def test_item_graph_k_must_be_positive():
    with pytest.raises(ValueError, match="item_graph_k"):
        _config(propagation={"item_graph_k": 0})


def test_content_loss_trains_the_content_path(tiny_data):
    """content_weight > 0 adds a ranking loss on the projected content alone."""
    from crossrec.models.module import RecommenderModule

    torch.manual_seed(0)
    batch = {
        "users": torch.tensor([0, 1, 2]),
        "pos": torch.tensor([1, 2, 3]),
        "neg": torch.tensor([[4, 5], [6, 7], [8, 9]]),
    }
    losses = []
    for weight in (0.0, 1.0):
        config = FinetuneConfig.model_validate(
            {
                "model": {"embedding_dim": 16, "user_tower": {"kind": "none"}},
                "loss": {"content_weight": weight},
            }
        )
        torch.manual_seed(0)
        model = build_recommender(tiny_data, config)
        module = RecommenderModule(model, config, tiny_data.train, tiny_data.valid)
        losses.append(module.batch_loss(batch))
    assert losses[1] > losses[0]  # a BPR term is positive
    config = FinetuneConfig.model_validate(
        {"model": {"embedding_dim": 16, "user_tower": {"kind": "none"}}}
    )
    torch.manual_seed(0)
    model = build_recommender(tiny_data, config)
    emb = model.embeddings()
    u = emb.users[batch["users"]]
    p = model.fusion(batch["pos"])
    n = model.fusion(batch["neg"].reshape(-1)).view(3, 2, -1)
    from crossrec.models.losses import bpr_loss

    expected = bpr_loss((u * p).sum(-1), torch.einsum("bd,bkd->bk", u, n), torch.ones(3, 2) > 0)
    torch.testing.assert_close(losses[1] - losses[0], expected, rtol=1e-4, atol=1e-6)


def test_content_table_reuses_the_step_projection_while_training(tiny_data):
    """The content loss reuses the catalogue projection of this step's item_ego (one pass)."""
    torch.manual_seed(0)
    model = build_recommender(tiny_data, _config(user_tower={"kind": "none"})).train()
    model.embeddings()
    assert model.content_table() is model._step_content
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.content_table(), model.fusion(None))


def test_content_channel_is_a_separate_normalised_propagation(tiny_data):
    """content_path channel (LGMRec's local modality graph): the ego is the ID alone, and the
    content is propagated on its own (users start from their items' mean content), normalised
    per node and added to the ID channel's final vectors."""
    from crossrec.models.graph_ops import user_mean_matrix

    model, emb, ids = _embeddings_without_tower(
        tiny_data, {"layers": 2, "item_graph_layers": 0, "content_path": "channel"}
    )
    with torch.no_grad():
        users = model.user_id.weight * model.user_id_seen
        graph = model.ui_graph.to_dense()

        def lightgcn(x):
            layers = [x, graph @ x, graph @ (graph @ x)]
            return torch.stack(layers).mean(0)

        content = model.fusion(None)
        mean = torch.as_tensor(user_mean_matrix(tiny_data.train).toarray())
        channel = torch.nn.functional.normalize(lightgcn(torch.cat([mean @ content, content])))
        expected = lightgcn(torch.cat([users, ids])) + channel
    torch.testing.assert_close(emb.items_ego, ids)  # no content in the ego
    torch.testing.assert_close(emb.users, expected[: tiny_data.n_users], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(emb.items, expected[tiny_data.n_users :], rtol=1e-4, atol=1e-5)
    # a user's channel is their items' mean content, propagated: not a free parameter
    assert not any("channel" in name for name in model.state_dict())


def test_content_channel_trains_the_content_projection(tiny_data):
    """The ranking loss reaches the fusion through the channel alone (content not in the ego)."""
    from crossrec.models.module import RecommenderModule

    config = FinetuneConfig.model_validate(
        {
            "model": {
                "embedding_dim": 16,
                "user_tower": {"kind": "none"},
                "propagation": {"content_path": "channel"},
            }
        }
    )
    torch.manual_seed(0)
    model = build_recommender(tiny_data, config).train()
    module = RecommenderModule(model, config, tiny_data.train, tiny_data.valid)
    batch = {
        "users": torch.tensor([0, 1, 2]),
        "pos": torch.tensor([1, 2, 3]),
        "neg": torch.tensor([[4, 5], [6, 7], [8, 9]]),
    }
    module.batch_loss(batch).backward()
    grads = [p.grad for p in model.fusion.parameters() if p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)


def test_content_channel_rejects_late_llm_content(tiny_data, monkeypatch):
    """The channel needs the whole catalogue's content up front; the llm strategy adds it late."""
    import crossrec.models.recommender as recommender

    class LateFusion(torch.nn.Module):
        late = True

    monkeypatch.setattr(recommender, "build_fusion", lambda *args, **kwargs: LateFusion())
    config = _config(user_tower={"kind": "none"}, propagation={"content_path": "channel"})
    with pytest.raises(ValueError, match="content_path channel needs early content"):
        build_recommender(tiny_data, config)


def test_user_mean_matrix_rows():
    """Each user's row averages their (deduplicated) train items; users without items stay 0."""
    import scipy.sparse as sp

    from crossrec.models.graph_ops import user_mean_matrix

    train = sp.csr_matrix(np.array([[1, 0, 3], [0, 0, 0], [0, 2, 0]], dtype=np.float32))
    dense = user_mean_matrix(train).toarray()
    np.testing.assert_allclose(dense, [[0.5, 0, 0.5], [0, 0, 0], [0, 1, 0]])


def _with_biases(tiny_data, **model):
    """A model with VBPR's ID and content biases, both set away from their zero init; item 5
    has no train interactions (a cold item)."""
    import scipy.sparse as sp

    train = tiny_data.train.tolil()
    train[:, 5] = 0
    train = sp.csr_matrix(train)
    train.eliminate_zeros()
    data = type(tiny_data)(**{**tiny_data.__dict__, "train": train})
    torch.manual_seed(0)
    config = _config(user_tower={"kind": "none"}, id_bias=True, content_bias=True, **model)
    built = build_recommender(data, config)
    with torch.no_grad():
        built.id_bias.weight.normal_()
        built.content_bias.weight.normal_()
    return built.eval()


@pytest.mark.parametrize("propagation", [{"kind": "none"}, {"kind": "lightgcn"}])
def test_item_biases_are_added_to_every_score(tiny_data, propagation):
    """score = user . item + ID bias (train items only) + a linear score of the content."""
    model = _with_biases(tiny_data, propagation=propagation)
    with torch.no_grad():
        scores = model.score_users(torch.arange(tiny_data.n_users))
        emb = model.embeddings()
        dim = model.config.embedding_dim
        assert emb.users.shape[1] == emb.items.shape[1] == dim + 1
        assert torch.equal(emb.users[:, dim], torch.ones(tiny_data.n_users))
        seen = model.item_id_seen.squeeze(1)
        bias = model.id_bias.weight.squeeze(1) * seen + model.content_bias(
            model.fusion(None)
        ).squeeze(1)
        expected = emb.users[:, :dim] @ emb.items[:, :dim].T + bias[None]
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)
    cold = [5]
    with torch.no_grad():  # an item without train edges is biased by its content alone
        content_only = model.content_bias(model.fusion(None)).squeeze(1)
    torch.testing.assert_close(emb.items[cold, dim], content_only[cold])


def test_item_biases_are_trained_and_the_id_bias_is_regularised(tiny_data):
    from crossrec.models.module import RecommenderModule

    config = FinetuneConfig.model_validate(
        {
            "model": {
                "embedding_dim": 16,
                "user_tower": {"kind": "none"},
                "id_bias": True,
                "content_bias": True,
            },
            "loss": {"content_weight": 0.1},
        }
    )
    torch.manual_seed(0)
    model = build_recommender(tiny_data, config)
    module = RecommenderModule(model, config, tiny_data.train, tiny_data.valid)
    batch = {
        "users": torch.tensor([0, 1, 2]),
        "pos": torch.tensor([1, 2, 3]),
        "neg": torch.tensor([[4, 5], [6, 7], [8, 9]]),
    }
    module.batch_loss(batch).backward()  # the content loss still ranks on d columns
    assert model.id_bias.weight.grad[[1, 2, 3]].abs().sum() > 0
    assert model.content_bias.weight.grad.abs().sum() > 0
    emb = model.embeddings()
    bias = torch.arange(tiny_data.n_items, dtype=torch.float32)
    users, pos, neg = batch["users"], batch["pos"], batch["neg"]
    without = RecommenderModule._ego_penalty(emb.users_ego, emb.items_ego, users, pos, neg)
    with_bias = RecommenderModule._ego_penalty(emb.users_ego, emb.items_ego, users, pos, neg, bias)
    extra = (bias[pos].pow(2).sum() + bias[neg].pow(2).sum() / neg.shape[1]) / (2 * len(users))
    torch.testing.assert_close(with_bias - without, extra, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("model", "loss", "message"),
    [
        ({"id_bias": True}, {"kind": "softmax", "cosine": True}, "loss.cosine"),
        ({"content_bias": True, "use_content": False}, {}, "content_bias needs early content"),
        (
            {"id_bias": True, "use_id_embedding": False, "user_tower": {"kind": "mean"}},
            {},
            "id_bias needs model.use_id_embedding",
        ),
    ],
)
def test_impossible_biases_are_rejected_by_name(tiny_data, model, loss, message):
    config = FinetuneConfig.model_validate({"model": {"embedding_dim": 16, **model}, "loss": loss})
    with pytest.raises(ValueError, match=message):
        build_recommender(tiny_data, config)


def test_separate_space_gives_ids_and_content_their_own_halves(tiny_data):
    """VBPR's layout: item = [ID factors | projected content], user = [ID | content
    preferences]; a cold item scores from the content half alone."""
    model = _with_biases(tiny_data, content_space="separate", propagation={"kind": "none"})
    half = model.config.embedding_dim // 2
    with torch.no_grad():
        emb = model.embeddings()
        ids = model.item_id.weight * model.item_id_seen
        content = model.fusion(None)
        torch.testing.assert_close(emb.items_ego[:, :half], ids[:, :half])
        torch.testing.assert_close(emb.items_ego[:, half:], content[:, half:])
        assert torch.all(emb.items_ego[5, :half] == 0)  # item 5 has no train edges
        scores = model.score_users(torch.arange(tiny_data.n_users))
        bias = model.item_bias()
        cold = emb.users[:, half:-1] @ content[5, half:] + bias[5]
    torch.testing.assert_close(scores[:, 5], cold, rtol=1e-5, atol=1e-5)


def test_separate_space_leaves_the_content_projection_unpenalised(tiny_data):
    """The L2 term covers the ID half only: changing the content projection leaves it as is."""
    from crossrec.models.module import RecommenderModule

    config = FinetuneConfig.model_validate(
        {
            "model": {
                "embedding_dim": 16,
                "user_tower": {"kind": "none"},
                "content_space": "separate",
            },
            "loss": {"reg_weight": 1.0, "content_weight": 0.0},
        }
    )
    torch.manual_seed(0)
    model = build_recommender(tiny_data, config)
    users, pos, neg = (
        torch.tensor([0, 1, 2]),
        torch.tensor([1, 2, 3]),
        torch.tensor([[4], [6], [8]]),
    )

    def penalty() -> torch.Tensor:
        emb = model.embeddings()
        items = model.penalised_item_rows(emb.items_ego)
        return RecommenderModule._ego_penalty(emb.users_ego, items, users, pos, neg)

    before = penalty()
    with torch.no_grad():
        for parameter in model.fusion.parameters():
            parameter.mul_(3.0)
    torch.testing.assert_close(penalty(), before)
    shared = build_recommender(
        tiny_data,
        config.model_copy(
            update={"model": config.model.model_copy(update={"content_space": "shared"})}
        ),
    )
    emb = shared.embeddings()
    assert torch.equal(shared.penalised_item_rows(emb.items_ego), emb.items_ego)


def test_separate_space_rejects_content_added_to_the_final_vectors(tiny_data):
    config = _config(
        user_tower={"kind": "none"},
        content_space="separate",
        propagation={"content_path": "channel"},
    )
    with pytest.raises(ValueError, match="content_space separate needs content in the item ego"):
        build_recommender(tiny_data, config)
