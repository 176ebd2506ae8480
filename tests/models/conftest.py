"""Tiny hand-made data for model tests: users prefer one content cluster of items.

Built here (not from fuse) so the model tests stand on their own: the graphs follow the
architecture's contracts (symmetric-normalised kNN item graphs, D^-1/2 A D^-1/2 user-item graph).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.models.inputs import TrainingData


def sym_normalise(adj: sp.spmatrix) -> sp.csr_matrix:
    adj = sp.csr_matrix(adj, dtype=np.float32)
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    d = sp.diags(inv.astype(np.float32))
    return sp.csr_matrix(d @ adj @ d, dtype=np.float32)


def knn_item_graph(vectors: np.ndarray, mask: np.ndarray, k: int) -> sp.csr_matrix:
    x = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    sim[~mask, :] = -np.inf
    sim[:, ~mask] = -np.inf
    n = len(x)
    rows, cols = [], []
    for i in np.flatnonzero(mask):
        top = np.argsort(-sim[i])[:k]
        top = top[np.isfinite(sim[i, top])]
        rows += [i] * len(top)
        cols += list(top)
    adj = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
    return sym_normalise(((adj + adj.T) > 0).astype(np.float32))


def user_item_graph(train: sp.csr_matrix) -> sp.csr_matrix:
    n_users, n_items = train.shape
    adj = sp.bmat([[None, train], [train.T, None]], format="csr")
    adj.resize((n_users + n_items, n_users + n_items))
    return sym_normalise(adj)


def make_tiny_data(
    n_users: int = 40, n_items: int = 48, n_clusters: int = 4, per_user: int = 9, seed: int = 0
) -> TrainingData:
    """Users pick items of one cluster; text carries the cluster, image is weaker + some missing."""
    rng = np.random.default_rng(seed)
    cluster = np.arange(n_items) % n_clusters
    centres = rng.normal(size=(n_clusters, 16))
    text = (centres[cluster] + 0.3 * rng.normal(size=(n_items, 16))).astype(np.float32)
    image = (0.5 * centres[cluster][:, :8] + rng.normal(size=(n_items, 8))).astype(np.float32)
    image_mask = rng.random(n_items) > 0.2
    image[~image_mask] = 0.0
    features = {}
    for name, vec, mask in (("text", text, np.ones(n_items, bool)), ("image", image, image_mask)):
        normed = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        features[name] = {"vectors": normed.astype(np.float32), "mask": mask, "source": "tiny"}
    features["__order__"] = ["text", "image"]
    rows_t, cols_t, rows_v, cols_v = [], [], [], []
    for u in range(n_users):
        pool = np.flatnonzero(cluster == u % n_clusters)
        picks = rng.choice(pool, size=per_user, replace=False)
        rows_t += [u] * (per_user - 2)
        cols_t += list(picks[:-2])
        rows_v += [u] * 2
        cols_v += list(picks[-2:])
    shape = (n_users, n_items)
    train = sp.csr_matrix((np.ones(len(rows_t), np.float32), (rows_t, cols_t)), shape=shape)
    valid = sp.csr_matrix((np.ones(len(rows_v), np.float32), (rows_v, cols_v)), shape=shape)
    graphs = {
        name: knn_item_graph(features[name]["vectors"], features[name]["mask"], 5)
        for name in ("text", "image")
    }
    recency = train.copy()
    recency.data = np.arange(1, recency.nnz + 1, dtype=np.float32)
    return TrainingData(
        n_users=n_users,
        n_items=n_items,
        train=train,
        valid=valid,
        item_features=features,
        modality_graphs=graphs,
        user_item_graph=user_item_graph(train),
        item_texts=[f"item {i} of cluster {cluster[i]}" for i in range(n_items)],
        train_recency=recency,
    )


@pytest.fixture(scope="session")
def tiny_data() -> TrainingData:
    return make_tiny_data()


# --- tiny LLaMA fixtures (fast LLM tests) ---

WORDS = (
    "the a of and movie film song album about space love war comedy drama jazz rock pop "
    "robot city night ocean dream hero story music dance dark light"
).split()


def make_tiny_llama(folder: Path, n_layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    """Save a random LlamaForCausalLM + tokenizer that AutoModel/AutoTokenizer load."""
    from crossrec.models.item_towers.random_llm import save_random_llama

    return save_random_llama(
        folder,
        WORDS,
        seed=seed,
        vocab_size=256,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_llama4_dir(tmp_path_factory) -> Path:
    """Four layers, for the partial-mode test."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny_llama4"), n_layers=4)


@pytest.fixture()
def toy_items() -> tuple[list[str], dict]:
    """12 items: texts of varying length (one empty), image (2 missing) and audio vectors."""
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=int(n))) for n in rng.integers(1, 9, size=12)]
    texts[4] = ""
    image_mask = np.ones(12, dtype=bool)
    image_mask[[2, 7]] = False
    image = rng.normal(size=(12, 12)).astype(np.float32)
    image[~image_mask] = 0.0
    features = {
        "text": {
            "vectors": rng.normal(size=(12, 16)).astype(np.float32),
            "mask": np.ones(12, bool),
        },
        "image": {"vectors": image, "mask": image_mask},
        "audio": {
            "vectors": rng.normal(size=(12, 8)).astype(np.float32),
            "mask": np.ones(12, bool),
        },
        "__order__": ["text", "image", "audio"],
    }
    return texts, features
