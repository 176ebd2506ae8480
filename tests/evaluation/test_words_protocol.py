"""The words protocol on the synthetic dataset (its words.csv tags name each item's class):
with the packaged MiniLM encoder, frozen and fine-tuned on a few pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec.data.ingest import ingest_in_memory
from crossrec.data.synthetic import CLASSES, make_synthetic_dataset, synthetic_ingest_params
from crossrec.encoders.config import parse_featurize_params
from crossrec.encoders.modalities import item_texts
from crossrec.evaluation.protocol import build_split
from crossrec.evaluation.report_words import words_section
from crossrec.evaluation.words import VARIANTS, evaluate_words, request_set
from crossrec.words.config import WordsConfig
from crossrec.words.requests import training_pairs


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = make_synthetic_dataset(
        tmp_path_factory.mktemp("words") / "syn",
        n_users=80,
        n_items=48,
        seed=3,
        with_images=False,
        with_audio=False,
    )
    params = synthetic_ingest_params(folder, split={"cold_items": {"share": 0.2}})
    out = ingest_in_memory(params, "syn", seed=0)
    info = out["dataset_info"]
    split = build_split(out["interactions"], out["items"], info["n_users"], info["n_items"], 0)
    texts = item_texts(out["items"], info, parse_featurize_params({}))
    return out, split, texts, folder


def _class_vectors(out, folder, seed: int):
    """A stand-in trained model: users point at the classes they consumed in train, items at
    their class (plus noise): the history knows the user's 1-2 classes, not which one now."""
    rng = np.random.default_rng(seed)
    raw = pd.read_csv(folder / "items.csv")
    klass = out["items"]["item_id"].map(raw.set_index("item")["content_class"]).to_numpy()
    items = np.eye(len(CLASSES))[klass] + 0.05 * rng.normal(size=(len(klass), len(CLASSES)))
    train = out["interactions"].query("split == 'train'")
    users = np.zeros((out["dataset_info"]["n_users"], len(CLASSES)))
    np.add.at(users, (train["user_idx"].to_numpy(), klass[train["item_idx"].to_numpy()]), 1.0)
    return users.astype(np.float32), items.astype(np.float32)


def test_requests_keep_held_out_words_out_of_training(synthetic):
    out, split, _, _ = synthetic
    requests = out["word_requests"]
    assert set(requests["split"]) == {"train", "valid", "test"}
    words, items = training_pairs(requests)
    kept = requests[requests["split"] == "train"]
    assert words == kept["text"].tolist() and items.tolist() == kept["item_idx"].tolist()
    pairs = set(zip(requests["user_idx"], requests["item_idx"], strict=True))
    assert len(pairs) == len(requests)  # one request per (user, item): one split each
    test = request_set(requests, split, "test")
    # every target is a test item of its user, never one of their train / valid items
    for user, targets, known in zip(test.users, test.targets, test.exclude, strict=True):
        assert set(targets) <= set(split.test[user].indices)
        assert not set(targets) & set(known.indices)


def test_words_and_history_beat_history_alone_on_planted_words(synthetic, tmp_path):
    out, split, texts, folder = synthetic
    config = WordsConfig(
        tower={"hidden": 32, "epochs": 30, "batch_size": 64, "lr": 0.01},
        finetune={"epochs": 1, "batch_size": 16, "max_pairs": 64},
        blend_step=0.25,
    )
    vectors = [_class_vectors(out, folder, seed) for seed in (0, 1)]
    block = evaluate_words(out["word_requests"], split, texts, vectors, [0, 1], config, tmp_path)
    assert set(VARIANTS) <= set(block)
    assert (tmp_path / "config.json").is_file()  # the fine-tuned encoder, kept there
    r = {name: block[name]["recall@20"] for name in VARIANTS}
    assert r["words_history_frozen"] > r["history_only"]
    assert r["words_only_no_history"] > r["mostpop_no_history"]
    test = block["significance"]["words_history_frozen vs history_only"]["recall@20"]
    assert test["mean_diff"] > 0 and test["n_users"] == block["requests"]["test"]
    assert all(abs(sum(w.values()) - 1) < 1e-9 for run in block["weights"] for w in run.values())
    table = "\n".join(words_section(block))
    assert "## Words" in table and "words + history (fine-tuned encoder)" in table
    # requests that ask for cold-start items are reported on their own
    cold = block["cold_item_requests"]
    assert 0 < cold["requests"] < block["requests"]["test"]
    assert cold["dense_frozen"]["recall@20"] > 0
    assert "ask for cold-start items" in table


def test_no_words_no_block(synthetic):
    out, split, texts, _ = synthetic
    empty = out["word_requests"].iloc[:0]
    assert evaluate_words(empty, split, texts, [], [], WordsConfig()) == {}
    only_train = out["word_requests"].query("split == 'train'")
    assert evaluate_words(only_train, split, texts, [], [], WordsConfig()) == {}


def test_cold_users_from_attributes_beat_popularity(tmp_path):
    """Users held out whole are recommended from who they are (their region follows their
    favourite class): the attributes beat MostPop, and the block says so with its tests."""
    from crossrec.evaluation.cold_users import evaluate_cold_users

    folder = make_synthetic_dataset(
        tmp_path / "syn", n_users=120, n_items=48, seed=5, with_images=False, with_audio=False
    )
    out = ingest_in_memory(
        synthetic_ingest_params(folder, split={"cold_users": {"share": 0.25}}), "syn", seed=0
    )
    info = out["dataset_info"]
    split = build_split(out["interactions"], out["items"], info["n_users"], info["n_items"], 0)
    assert split.cold_users.sum() == 30 and split.cold_test.nnz > 0
    # the cold users are in no other slice
    assert not np.diff(split.test.indptr)[split.cold_users].any()
    assert not np.diff(split.valid.indptr)[split.cold_users].any()
    config = WordsConfig(tower={"hidden": 32, "epochs": 15, "lr": 0.01}, blend_step=0.25)
    vectors = [_class_vectors(out, folder, seed) for seed in (0, 1)]
    block = evaluate_cold_users(split, out["users"], vectors, [0, 1], config)
    assert block["users"]["test"] + block["users"]["valid"] == 30
    assert block["described_by"] == ["region", "age"]
    names = ("mostpop", "attributes", "group_popularity", "attributes_regression")
    r = {name: block[name]["recall@20"] for name in names}
    assert r["attributes"] > r["mostpop"] and r["group_popularity"] > r["mostpop"]
    assert r["attributes_regression"] > r["mostpop"]
    assert block["regression"]["l2"] is not None  # validation chose attribute weights
    assert "attributes vs mostpop" in block["significance"]
    assert "attributes_regression vs group_popularity" in block["significance"]
    from crossrec.evaluation.report_words import cold_users_section

    section = "\n".join(cold_users_section(block))
    assert "## Users without history" in section and "region, age" in section
    assert "softmax regression over items" in section and "Softmax regression: L2" in section
