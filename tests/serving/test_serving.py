"""crossrec.serving without HTTP: exact scores, explanations that add up for every fusion and
propagation setting, the ANN index against exact search, fold-in and new-item vectors."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from crossrec.data.synthetic import bag_of_words
from crossrec.serving.config import AnnConfig, FoldInConfig, RecommendConfig


@pytest.fixture(scope="module")
def artifacts(synthetic_ingested):
    """Serving artifacts of the synthetic dataset with text (bag of words) + image features."""
    from crossrec.graphs.knn import knn_graph, normalized_user_item_graph
    from crossrec.serving.model import Artifacts

    info = synthetic_ingested["dataset_info"]
    items = synthetic_ingested["items"].sort_values("item_idx")
    n_users, n_items = info["n_users"], info["n_items"]
    rng = np.random.default_rng(0)
    raw = {
        "text": bag_of_words((items["title"] + " " + items["description"]).tolist(), dim=32),
        "image": rng.normal(size=(n_items, 8)).astype(np.float32),
    }
    features: dict = {}
    for name, vectors in raw.items():
        mask = np.ones(n_items, dtype=bool)
        mask[::7] = name == "text"
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        features[name] = {"vectors": vectors * mask[:, None], "mask": mask, "source": "test"}
    features["__order__"] = ["text", "image"]
    inter = synthetic_ingested["interactions"]
    train = inter[inter["split"] == "train"]
    return Artifacts(
        trained_model={},
        interactions=inter,
        items=synthetic_ingested["items"],
        users=synthetic_ingested["users"],
        dataset_info=info,
        fused_item_features=features,
        modality_graphs={m: knn_graph(features[m]["vectors"], features[m]["mask"], 5) for m in raw},
        user_item_graph=normalized_user_item_graph(
            train["user_idx"].to_numpy(), train["item_idx"].to_numpy(), n_users, n_items
        ),
    )


def _serving(artifacts, model: dict, loss: dict | None = None, seed: int = 0):
    """A ServingModel of an untrained model of that config (random weights: the identities
    below hold for any weights)."""
    from dataclasses import replace

    from crossrec.models.bundle import build_recommender, make_bundle
    from crossrec.models.config import FinetuneConfig
    from crossrec.serving.model import ServingModel

    config = FinetuneConfig.model_validate(
        {"model": {"embedding_dim": 8, **model}, "loss": loss or {}}
    )
    data = artifacts.training_data(config)
    a = artifacts
    torch.manual_seed(seed)
    bundle = make_bundle(build_recommender(data, config), config, [])
    return ServingModel.from_artifacts(replace(a, trained_model=bundle), RecommendConfig())


CONFIGS = {
    "concat-lightgcn": {"fusion": {"strategy": "concat"}},
    "gated-lightgcn": {"fusion": {"strategy": "gated"}},
    "attention-lightgcn": {"fusion": {"strategy": "attention"}},
    "gated-no-propagation": {"fusion": {"strategy": "gated"}, "propagation": {"kind": "none"}},
    "concat-separate-space": {"fusion": {"strategy": "concat"}, "content_space": "separate"},
    "concat-history-tower": {
        "fusion": {"strategy": "concat"},
        "user_tower": {"kind": "mean", "history_length": 5},
    },
}


@pytest.mark.parametrize("model", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize("cosine", [False, True], ids=["dot", "cosine"])
def test_explanation_parts_add_up_to_the_score(artifacts, model, cosine):
    from crossrec.serving import service

    loss = {"kind": "softmax", "cosine": True} if cosine else None
    serving = _serving(artifacts, model, loss)
    cat = serving.catalogue
    with torch.no_grad():
        reference = serving.model.score_users(torch.arange(cat.n_users)).numpy()
    np.testing.assert_allclose(cat.user_vectors @ cat.item_vectors.T, reference, atol=1e-5)
    for user, item in [(0, 0), (3, 7), (10, 20), (cat.n_users - 1, cat.n_items - 1)]:
        body = service.explain(serving, cat.user_ids[user], cat.item_ids[item])
        assert body["score"] == pytest.approx(float(reference[user, item]), abs=1e-5)
        assert sum(body["parts"].values()) == pytest.approx(body["score"], abs=1e-4)
        assert set(body["parts"]) == {"collaborative", "content_baseline", "text", "image"}
        if model["fusion"]["strategy"] == "gated":
            assert sum(body["modality_weights"].values()) == pytest.approx(1, abs=1e-5)
        else:
            assert body["modality_weights"] is None


@pytest.mark.parametrize("model", CONFIGS.values(), ids=CONFIGS.keys())
def test_serving_rebuilds_the_model_on_what_training_gave_it(artifacts, model):
    """build_model_data (no splits) gives the model the train matrix, recency and fuse outputs
    of build_training_data: the served vectors are the ones of the model on its training data."""
    from crossrec.models.bundle import load_recommender

    serving = _serving(artifacts, model)
    full = artifacts.training_data(serving.artifacts.trained_model["config"])
    lean = serving.data
    assert (lean.train != full.train).nnz == 0 and lean.splits is None and lean.valid.nnz == 0
    if model.get("user_tower", {}).get("kind", "none") != "none":
        assert (lean.train_recency != full.train_recency).nnz == 0
    with torch.no_grad():
        users, items = load_recommender(serving.artifacts.trained_model, full).scoring_vectors()
    np.testing.assert_array_equal(serving.catalogue.user_vectors, users.numpy())
    np.testing.assert_array_equal(serving.catalogue.item_vectors, items.numpy())


def test_a_missing_modality_contributes_nothing(artifacts):
    """Item 0 has no image (mask False): its image part is exactly zero before propagation."""
    from crossrec.serving.explain import item_vector_parts

    serving = _serving(
        artifacts, {"fusion": {"strategy": "gated"}, "propagation": {"kind": "none"}}
    )
    names, parts = item_vector_parts(serving.model)
    assert not artifacts.fused_item_features["image"]["mask"][0]
    assert np.abs(parts[names.index("image"), 0]).max() == 0


def test_new_item_vector_matches_the_catalogue_for_a_known_items_media(artifacts):
    """Without ID embedding and propagation an item is its fused content: the new-item path fed
    an existing item's modality vectors must give that item's serving vector."""
    from crossrec.serving.newitem import new_item_vector

    serving = _serving(
        artifacts,
        {
            "fusion": {"strategy": "gated"},
            "use_id_embedding": False,
            "user_tower": {"kind": "mean", "history_length": 5},
            "propagation": {"kind": "none"},
        },
    )
    features = artifacts.fused_item_features
    for item in (1, 5, 14):  # 14 = 2 * 7: no image (missing vector used on both paths)
        raw = {
            m: features[m]["vectors"][item] for m in ("text", "image") if features[m]["mask"][item]
        }
        vector = new_item_vector(serving, raw)
        np.testing.assert_allclose(vector, serving.catalogue.item_vectors[item], atol=1e-5)


def test_new_item_in_the_separate_space_is_its_content_half(artifacts):
    """content_space separate: a new item has no ID factors, so its vector is the projected
    content in the second half, as the model places a known item's content."""
    from crossrec.serving.newitem import new_item_vector

    serving = _serving(
        artifacts,
        {
            "fusion": {"strategy": "concat"},
            "content_space": "separate",
            "propagation": {"kind": "none"},
        },
    )
    features = artifacts.fused_item_features
    with torch.no_grad():
        content = serving.model.project_content().numpy()
    for item in (1, 14):  # 14: no image
        raw = {
            m: features[m]["vectors"][item] for m in ("text", "image") if features[m]["mask"][item]
        }
        vector = new_item_vector(serving, raw)
        assert np.all(vector[:4] == 0)
        np.testing.assert_allclose(vector, content[item], atol=1e-5)


def test_new_item_reaches_users_whose_lists_it_enters(artifacts):
    from crossrec.serving.newitem import new_item_vector

    serving = _serving(artifacts, {"fusion": {"strategy": "concat"}})
    cat = serving.catalogue
    vector = new_item_vector(serving, {"text": artifacts.fused_item_features["text"]["vectors"][3]})
    reached = cat.reached_users(vector, limit=cat.n_users)
    thresholds = cat.reach_thresholds()
    for user, score, margin in reached:
        assert score > thresholds[user] and margin == pytest.approx(
            score - thresholds[user], abs=1e-5
        )
    missed = set(range(cat.n_users)) - {u for u, _, _ in reached}
    assert all(cat.user_vectors[u] @ vector <= thresholds[u] + 1e-6 for u in missed)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_ann_recall_against_exact_and_exclusions(kind):
    from crossrec.serving.index import ExactIndex, build_index, recall_vs_exact
    from crossrec.serving.synthetic import synthetic_serving

    serving = synthetic_serving(20_000, n_users=200, dim=32, seed=1, index_kind="exact")
    items, users = serving.catalogue.item_vectors, serving.catalogue.user_vectors
    exact = ExactIndex(items).search(users, 20)[1]
    ann = build_index(items, AnnConfig(), force=kind)
    assert ann.kind == kind
    approx = ann.search(users, 20)[1]
    assert recall_vs_exact(approx, exact) >= 0.95
    excluded = [exact[u, :10] for u in range(len(users))]
    kept = ann.search(users, 20, excluded)[1]
    for row, drop in zip(kept, excluded, strict=True):
        assert not set(row) & set(drop) and (row >= 0).all()


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_the_index_widens_to_its_recall_target_on_the_users_it_serves(kind, caplog):
    """One probed cell of 1,024 (IVF) or efSearch 20 (HNSW, M 8) loses neighbours; given the
    user vectors, the index doubles its breadth until its sampled recall@20 reaches the
    target, and says so; with no widening allowed it warns and records what it measured."""
    from crossrec.serving.index import ExactIndex, build_index, recall_vs_exact
    from crossrec.serving.synthetic import synthetic_serving

    serving = synthetic_serving(20_000, n_users=300, dim=32, seed=3, index_kind="exact")
    items, users = serving.catalogue.item_vectors, serving.catalogue.user_vectors
    narrow = {"min_items": 1, "kind": kind, "ivf_lists": 1024, "nprobe": 1, "hnsw_m": 8}
    narrow |= {"ef_search": 8, "ef_construction": 40, "recall_queries": 100, "max_widenings": 6}
    exact = ExactIndex(items).search(users, 20)[1]
    unmeasured = build_index(items, AnnConfig(**narrow))
    before = recall_vs_exact(unmeasured.search(users, 20)[1], exact)
    assert before < 0.9 and unmeasured.recall is None
    with caplog.at_level(logging.INFO, logger="crossrec.serving.index"):
        widened = build_index(items, AnnConfig(**narrow), queries=users)
    assert widened.recall["recall@20"] >= 0.95 and widened.recall["queries"] == 100
    assert widened.breadth() != unmeasured.breadth()
    assert recall_vs_exact(widened.search(users, 20)[1], exact) >= 0.93  # all 300, not only 100
    assert any("widening" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="crossrec.serving.index"):
        stuck = build_index(items, AnnConfig(**{**narrow, "max_widenings": 0}), queries=users)
    assert stuck.recall["recall@20"] == pytest.approx(before, abs=0.08)
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_auto_keeps_ivf_when_it_reaches_the_target_else_the_faster_of_ivf_and_hnsw(caplog):
    """``kind: auto``: an IVF index that reaches the recall target at its configured nprobe is
    kept without building HNSW; one that has to widen is measured against HNSW on the same
    sample, and the index kept is the faster of those that reach the target, its choice on
    record. Without users to measure on, auto builds IVF."""
    from crossrec.serving.index import ExactIndex, build_index, recall_vs_exact
    from crossrec.serving.synthetic import synthetic_serving

    serving = synthetic_serving(20_000, n_users=300, dim=32, seed=3, index_kind="exact")
    items, users = serving.catalogue.item_vectors, serving.catalogue.user_vectors
    exact = ExactIndex(items).search(users, 20)[1]
    roomy = AnnConfig(min_items=1, kind="auto", ivf_lists=64, nprobe=32, recall_queries=100)
    with caplog.at_level(logging.INFO, logger="crossrec.serving.index"):
        kept = build_index(items, roomy, queries=users)
    assert kept.kind == "ivf" and set(kept.choice) == {"ivf", "kept"}
    assert kept.recall["recall@20"] >= 0.95 and kept.recall["nprobe"] == 32
    assert not any("hnsw" in r.getMessage() for r in caplog.records)

    narrow = {"min_items": 1, "kind": "auto", "ivf_lists": 1024, "nprobe": 1, "hnsw_m": 8}
    narrow |= {"ef_search": 8, "ef_construction": 40, "recall_queries": 100, "max_widenings": 6}
    chosen = build_index(items, AnnConfig(**narrow), queries=users)
    measured = {kind: chosen.choice[kind] for kind in ("ivf", "hnsw")}
    assert chosen.choice["kept"] == chosen.kind
    assert measured["ivf"]["nprobe"] > 1  # IVF had to widen, so HNSW was measured too
    reached = {k: m for k, m in measured.items() if m["recall@20"] >= 0.95}
    assert chosen.kind == min(reached, key=lambda k: reached[k]["ms_per_query"])
    assert chosen.recall == measured[chosen.kind] and chosen.recall["ms_per_query"] > 0
    assert recall_vs_exact(chosen.search(users, 20)[1], exact) >= 0.93

    assert build_index(items, AnnConfig(**narrow)).kind == "ivf"


def test_a_synthetic_catalogue_starts_without_words():
    """``crossrec serve --synthetic-items`` (the latency benchmark) has no words to fit."""
    from crossrec.serving.synthetic import synthetic_serving
    from crossrec.serving.words import fit_in_background

    assert fit_in_background(synthetic_serving(500, n_users=5)) is None


def test_catalogue_picks_the_index_by_size():
    from crossrec.serving.synthetic import synthetic_serving

    small = synthetic_serving(500, n_users=5, config={"ann": {"min_items": 1000}})
    large = synthetic_serving(1500, n_users=5, config={"ann": {"min_items": 1000}})
    ivf = synthetic_serving(1500, n_users=5, config={"ann": {"min_items": 1000, "kind": "ivf"}})
    hnsw = synthetic_serving(1500, n_users=5, config={"ann": {"min_items": 1000, "kind": "hnsw"}})
    kinds = [s.catalogue.index.kind for s in (small, ivf, hnsw)]
    assert kinds == ["exact", "ivf", "hnsw"]
    assert large.catalogue.index.kind in {"ivf", "hnsw"}  # auto: measured on the 5 users
    assert large.catalogue.index.choice["kept"] == large.catalogue.index.kind


@pytest.mark.parametrize("method", ["solve", "mean"])
def test_fold_in_recovers_a_users_taste(method):
    """A user's 30 best items as the liked list: the folded vector ranks the user's next best
    items far above chance (top-20 overlap with the true vector's list)."""
    from crossrec.serving.foldin import fold_in_agreement
    from crossrec.serving.synthetic import synthetic_serving

    serving = synthetic_serving(3000, n_users=40, dim=16, seed=2, index_kind="exact")
    cat = serving.catalogue
    _, ranked = cat.top_items(cat.user_vectors, 60)
    stats = fold_in_agreement(
        cat,
        np.arange(40),
        [r[:30] for r in ranked],
        [r[30:60] for r in ranked],
        FoldInConfig(method=method),
    )
    assert stats["users"] == 40
    assert stats["cosine_to_trained"] > 0.5
    assert stats["recall@20_folded"] > 0.2  # chance: 20 / 3000


def test_recommendations_table_excludes_seen_and_is_ranked(artifacts):
    from crossrec.serving.batch import recommendations_table, similar_items_table

    serving = _serving(artifacts, {"fusion": {"strategy": "concat"}})
    table = recommendations_table(serving.catalogue, 5, serving.fingerprint, chunk_users=7)
    seen = set(
        zip(artifacts.interactions["user_idx"], artifacts.interactions["item_idx"], strict=True)
    )
    assert not any(p in seen for p in zip(table["user_idx"], table["item_idx"], strict=True))
    assert (table.groupby("user_idx")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    assert (table["model_version"] == serving.fingerprint).all()
    similar = similar_items_table(serving.catalogue, 3, serving.fingerprint)
    image = similar[similar["space"] == "image"]
    no_image = np.flatnonzero(~artifacts.fused_item_features["image"]["mask"])
    assert not set(image["item_idx"]) & set(no_image)
    assert not set(image["similar_idx"]) & set(no_image)
    assert isinstance(similar, pd.DataFrame) and len(similar)


def test_recommendations_table_from_the_ann_index(artifacts):
    """A catalogue searched through faiss writes every user's list from the index: seen items
    excluded, ranked, and nearly the exact lists."""
    from crossrec.serving.batch import recommendations_table
    from crossrec.serving.config import AnnConfig
    from crossrec.serving.index import build_index

    serving = _serving(artifacts, {"fusion": {"strategy": "concat"}})
    catalogue = serving.catalogue
    exact = recommendations_table(catalogue, 5, serving.fingerprint)
    catalogue.index = build_index(
        catalogue.item_vectors, AnnConfig(min_items=1, kind="ivf", ivf_lists=2, nprobe=2)
    )
    approx = recommendations_table(catalogue, 5, serving.fingerprint)
    assert list(approx.columns) == list(exact.columns)
    seen = set(
        zip(artifacts.interactions["user_idx"], artifacts.interactions["item_idx"], strict=True)
    )
    assert not any(p in seen for p in zip(approx["user_idx"], approx["item_idx"], strict=True))
    assert (approx.groupby("user_idx")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    key = ["user_idx", "item_idx"]
    assert len(exact.merge(approx[key], on=key)) >= 0.9 * len(exact)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_similar_items_from_a_faiss_index_above_min_items(artifacts, kind):
    """From ``recommend.ann.min_items`` usable items on, similar items come from faiss: the
    same columns and ranks, no item similar to itself or to an item without the modality, and
    nearly the exact neighbours."""
    from crossrec.serving.batch import similar_items_table
    from crossrec.serving.config import AnnConfig

    serving = _serving(artifacts, {"fusion": {"strategy": "concat"}})
    exact = similar_items_table(serving.catalogue, 5, serving.fingerprint)
    ann = AnnConfig(min_items=1, kind=kind, ivf_lists=4, nprobe=4, ef_search=64)
    approx = similar_items_table(serving.catalogue, 5, serving.fingerprint, ann)
    assert list(approx.columns) == list(exact.columns)
    assert set(approx["space"]) == set(exact["space"])
    assert (approx["item_idx"] != approx["similar_idx"]).all()
    no_image = set(np.flatnonzero(~artifacts.fused_item_features["image"]["mask"]))
    image = approx[approx["space"] == "image"]
    assert not (set(image["item_idx"]) | set(image["similar_idx"])) & no_image
    for _, group in approx.groupby(["space", "item_idx"]):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert group["score"].is_monotonic_decreasing
    key = ["space", "item_idx", "similar_idx"]
    found = exact.merge(approx[key], on=key, how="inner")
    assert len(found) >= 0.9 * len(exact)


def test_similar_items_by_modality_come_from_fuses_graph_when_it_holds_them(artifacts, caplog):
    """fuse's kNN graphs already hold each item's nearest items by modality: taken from them
    (no search) when they hold k per item and reach the recall target; otherwise searched."""
    from crossrec.graphs.knn import INFO_ATTR, knn_graph
    from crossrec.serving.batch import graph_neighbours, similar_items_table
    from crossrec.serving.config import AnnConfig

    serving = _serving(artifacts, {"fusion": {"strategy": "concat"}})
    features = artifacts.fused_item_features
    exact = similar_items_table(serving.catalogue, 5, serving.fingerprint)
    key = ["space", "item_idx", "rank"]
    modality = exact[exact["space"] != "model"].sort_values(key).reset_index(drop=True)
    graphs = {
        name: knn_graph(features[name]["vectors"], features[name]["mask"], 5, search="exact")
        for name in ("text", "image")
    }
    with caplog.at_level(logging.INFO, logger="crossrec.serving.batch"):
        reused = similar_items_table(serving.catalogue, 5, serving.fingerprint, None, graphs)
    assert "from fuse's kNN graph (exact search" in caplog.text
    got = reused[reused["space"] != "model"].sort_values(key).reset_index(drop=True)
    # the same number of neighbours per item, equally similar at every rank (equal cosines
    # may swap: bag-of-words texts repeat), mostly the very same items
    pd.testing.assert_frame_equal(got[key], modality[key])
    assert np.allclose(got["score"], modality["score"], atol=1e-5)
    assert (got["similar_idx"] == modality["similar_idx"]).mean() > 0.9
    # fewer neighbours per item than asked for: searched instead
    small = {
        name: knn_graph(features[name]["vectors"], features[name]["mask"], 3) for name in graphs
    }
    searched = similar_items_table(serving.catalogue, 5, serving.fingerprint, None, small)
    pd.testing.assert_frame_equal(searched, exact)
    # an approximate text graph missing a third of its edges: the neighbours of the
    # neighbours join the candidates, and the lists reach the target at two hops
    coo = graphs["text"].tocoo()
    kept = np.random.default_rng(1).random(coo.nnz) > 0.35
    thinned = sp.csr_matrix((coo.data[kept], (coo.row[kept], coo.col[kept])), shape=coo.shape)
    setattr(thinned, INFO_ATTR, {"search": "approximate", "k": 5})
    caplog.clear()
    target = AnnConfig(recall_target=0.9)
    with caplog.at_level(logging.INFO, logger="crossrec.serving.batch"):
        two = similar_items_table(serving.catalogue, 5, "v", target, {"text": thinned})
    assert "(text): from fuse's kNN graph (approximate search, 2 hop(s)" in caplog.text
    pairs = ["item_idx", "similar_idx"]
    text = modality[modality["space"] == "text"][pairs]
    one_hop = graph_neighbours(thinned, features["text"]["vectors"], 5)
    one_hop = pd.DataFrame({"item_idx": one_hop[0], "similar_idx": one_hop[2]})
    found = {
        name: len(text.merge(lists, on=pairs)) / len(text)
        for name, lists in (("one", one_hop), ("two", two[two["space"] == "text"][pairs]))
    }
    assert found["two"] >= 0.85 and found["two"] > found["one"], found
    # an approximate graph whose neighbours miss the recall target on the sample: searched
    rng = np.random.default_rng(0)
    n = serving.catalogue.n_items
    edges = (np.repeat(np.arange(n), 6), rng.integers(0, n, n * 6))
    noise = sp.csr_matrix((np.ones(n * 6), edges))
    setattr(noise, INFO_ATTR, {"search": "approximate", "k": 5})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="crossrec.serving.batch"):
        searched = similar_items_table(
            serving.catalogue, 5, serving.fingerprint, AnnConfig(), {"text": noise}
        )
    assert "searching" in caplog.text and "from fuse's kNN graph" not in caplog.text
    pd.testing.assert_frame_equal(searched, exact)


def test_unknown_ids_and_fields_are_named(artifacts):
    from crossrec.serving.catalogue import BadRequestError, UnknownIdError

    serving = _serving(artifacts, {"fusion": {"strategy": "concat"}})
    with pytest.raises(UnknownIdError, match="unknown user id 'ghost'"):
        serving.catalogue.user("ghost")
    with pytest.raises(BadRequestError, match="unknown modality 'audio'"):
        serving.catalogue.similar(0, 3, "audio")
    with pytest.raises(BadRequestError, match="has no image input"):
        serving.catalogue.similar(0, 3, "image")


def test_rank_among_users_is_the_items_place_in_each_list(artifacts):
    """The rank a new item would take = 1 + unseen items scoring above it, for every user."""
    from crossrec.serving.newitem import new_item_vector

    serving = _serving(artifacts, {"fusion": {"strategy": "concat"}})
    cat = serving.catalogue
    vector = new_item_vector(serving, {"text": artifacts.fused_item_features["text"]["vectors"][3]})
    ranked = cat.rank_among_users(vector, limit=cat.n_users)
    assert len(ranked) == cat.n_users
    for user, score, rank in ranked[:10]:
        scores = cat.user_vectors[user] @ cat.item_vectors.T
        scores[cat.seen_items(user)] = -np.inf
        assert rank == 1 + int((scores > score).sum())
    assert [r for _, _, r in ranked] == sorted(r for _, _, r in ranked)
    reached = {u for u, _, _ in cat.reached_users(vector, cat.n_users)}
    assert reached == {u for u, _, r in ranked if r <= serving.config.reach_k}


def test_content_channel_explanation_and_new_item(artifacts):
    """content_path channel: the parts (ID channel + content channel) add up to the score, and a
    new item (no train edges, no ID) is its own normalised content."""
    from crossrec.serving import service
    from crossrec.serving.newitem import new_item_vector

    serving = _serving(
        artifacts,
        {
            "fusion": {"strategy": "concat"},
            "propagation": {"item_graph_layers": 0, "content_path": "channel"},
        },
    )
    cat = serving.catalogue
    with torch.no_grad():
        reference = serving.model.score_users(torch.arange(cat.n_users)).numpy()
    for user, item in [(0, 0), (3, 7), (cat.n_users - 1, cat.n_items - 1)]:
        body = service.explain(serving, cat.user_ids[user], cat.item_ids[item])
        assert set(body["parts"]) == {"collaborative", "content_channel"}
        assert sum(body["parts"].values()) == pytest.approx(float(reference[user, item]), abs=1e-4)
    features = artifacts.fused_item_features
    with torch.no_grad():
        content = torch.nn.functional.normalize(serving.model.fusion(None), dim=-1).numpy()
    for item in (1, 14):  # 14: no image
        raw = {
            m: features[m]["vectors"][item] for m in ("text", "image") if features[m]["mask"][item]
        }
        np.testing.assert_allclose(new_item_vector(serving, raw), content[item], atol=1e-5)


def test_item_biases_in_explanations_new_items_and_fold_in(artifacts):
    """VBPR's biases (model.id_bias / content_bias) are the vectors' last column: the
    explanation's parts still add up to the score, with one part per bias; a new item carries
    its content's bias; a folded-in user weighs the column by 1, as trained users do."""
    from dataclasses import replace

    from crossrec.models.bundle import build_recommender, make_bundle
    from crossrec.models.config import FinetuneConfig
    from crossrec.serving import service
    from crossrec.serving.foldin import fold_in
    from crossrec.serving.model import ServingModel
    from crossrec.serving.newitem import new_item_vector

    config = FinetuneConfig.model_validate(
        {
            "model": {
                "embedding_dim": 8,
                "fusion": {"strategy": "concat"},
                "id_bias": True,
                "content_bias": True,
            }
        }
    )
    data = artifacts.training_data(config)
    torch.manual_seed(0)
    model = build_recommender(data, config)
    with torch.no_grad():
        model.id_bias.weight.normal_()
        model.content_bias.weight.normal_()
    bundle = make_bundle(model, config, [])
    serving = ServingModel.from_artifacts(
        replace(artifacts, trained_model=bundle), RecommendConfig()
    )
    cat = serving.catalogue
    assert cat.bias_column and cat.item_vectors.shape[1] == 9
    with torch.no_grad():
        reference = serving.model.score_users(torch.arange(cat.n_users)).numpy()
        content_bias = serving.model.content_bias(serving.model.fusion(None)).squeeze(1).numpy()
    for user, item in [(0, 0), (3, 7), (cat.n_users - 1, cat.n_items - 1)]:
        body = service.explain(serving, cat.user_ids[user], cat.item_ids[item])
        assert {"collaborative", "id_bias", "content_bias"} <= set(body["parts"])
        assert body["parts"]["content_bias"] == pytest.approx(float(content_bias[item]), abs=1e-5)
        assert sum(body["parts"].values()) == pytest.approx(float(reference[user, item]), abs=1e-4)
    features = artifacts.fused_item_features
    raw = {m: features[m]["vectors"][3] for m in ("text", "image") if features[m]["mask"][3]}
    vector = new_item_vector(serving, raw)
    assert vector.shape == (9,)
    assert vector[-1] == pytest.approx(float(content_bias[3]), abs=1e-5)
    liked = np.array([0, 3, 7])
    for method in ("mean", "solve"):
        folded = fold_in(cat.item_vectors, liked, FoldInConfig(method=method), cat.bias_column)
        assert folded.shape == (9,) and folded[-1] == 1.0
    mean = fold_in(cat.item_vectors, liked, FoldInConfig(method="mean"), True)
    np.testing.assert_allclose(mean[:8], cat.item_vectors[liked, :8].mean(0), rtol=1e-6)
    # item-to-item similarity ignores the bias column (a popularity score, not a direction)
    _, similar = cat.similar(3, 5)
    taste = cat.item_vectors[:, :8] / np.linalg.norm(cat.item_vectors[:, :8], axis=1)[:, None]
    cosine = taste @ taste[3]
    cosine[3] = -np.inf
    assert list(similar) == list(np.argsort(-cosine, kind="stable")[:5])


def test_a_new_items_attributes_are_encoded_with_the_models_spec():
    """The API's new item: its structured text fields give the attributes vector the catalogue's
    items got; a bad number is the client's error, naming the value."""
    from types import SimpleNamespace

    from crossrec.encoders.attributes import encode_attributes, fit_attribute_spec
    from crossrec.serving.catalogue import BadRequestError
    from crossrec.serving.newitem import attribute_vector

    items = pd.DataFrame(
        {"item_id": ["1", "2"], "genres": ["Comedy, Drama", "Drama"], "year": ["1995", "1970"]}
    )
    columns = {"genres": {"kind": "categorical", "separator": ", "}, "year": {"kind": "numeric"}}
    spec = fit_attribute_spec(items, columns, min_count=1, bins=4)
    serving = SimpleNamespace(
        artifacts=SimpleNamespace(fused_item_features={"attributes": {"spec": spec}})
    )
    vector = attribute_vector(serving, {"title": "X", "genres": "Comedy, Drama", "year": "1995"})
    np.testing.assert_allclose(vector["attributes"], encode_attributes(items, spec)[0][0])
    assert attribute_vector(serving, {"title": "X"}) == {}  # nothing known: no attributes input
    with pytest.raises(BadRequestError, match="'soon'"):
        attribute_vector(serving, {"genres": "Drama", "year": "soon"})
    no_spec = SimpleNamespace(artifacts=SimpleNamespace(fused_item_features={}))
    assert attribute_vector(no_spec, {"genres": "Drama"}) == {}
