"""Baselines by name (:data:`crossrec.evaluation.config.BASELINES`), as score functions for
:func:`crossrec.metrics.ranking.evaluate_ranking`.

They see only the TRAIN matrix (and the validation split for early stopping), return dense
(batch, n_items) float32 scores, and go through the exact masking / tie-breaking / metric code
the trained models use. MF-BPR is its own standard trainer (``bpr``,
:mod:`crossrec.evaluation.mf_bpr`); the learnt graph and content baselines (LightGCN,
content-only, VBPR-style) are configurations of ``crossrec.models.train_recommender``: the
``finetune`` kind, with overrides in ``conf/base/parameters_evaluate.yml``.

A new baseline is one registered class with ``from_spec(spec, split, seed)`` and a
``deterministic`` flag, plus its entry under ``evaluate.baselines`` in YAML.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from crossrec.evaluation.config import BASELINES


def item_popularity(train: sp.csr_matrix) -> np.ndarray:
    """Number of training users per item (binary interactions)."""
    binary = sp.csr_matrix(train, dtype=np.float32)
    binary.data[:] = 1.0
    return np.asarray(binary.sum(axis=0)).ravel()


@BASELINES.register("most_popular")
class MostPopular:
    """Every user gets the training popularity order (ties: the evaluation's tie order)."""

    deterministic = True

    @classmethod
    def from_spec(cls, spec, split, seed: int) -> MostPopular:
        return cls(split.train)

    def __init__(self, train: sp.csr_matrix):
        self.scores = torch.as_tensor(item_popularity(train), dtype=torch.float32)

    def __call__(self, users: torch.Tensor) -> torch.Tensor:
        scores = self.scores.to(users.device)
        return scores.unsqueeze(0).expand(len(users), -1)


@BASELINES.register("random")
class RandomScorer:
    """Uniform random scores, fixed per (seed, user): the floor every model must clear."""

    deterministic = False

    @classmethod
    def from_spec(cls, spec, split, seed: int) -> RandomScorer:
        return cls(split.n_items, seed=seed)

    def __init__(self, n_items: int, seed: int = 0):
        self.n_items = n_items
        self.seed = seed

    def __call__(self, users: torch.Tensor) -> torch.Tensor:
        rows = []
        for user in users.tolist():
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(user))
            rows.append(torch.rand(self.n_items, generator=gen))
        return torch.stack(rows).to(users.device) if rows else torch.empty(0, self.n_items)


def item_cosine_neighbours(train: sp.csr_matrix, neighbours: int, shrink: float) -> sp.csr_matrix:
    """Item-item cosine similarity over user vectors, keeping each item's top ``neighbours``.

    ``sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink)`` (Sarwar et al.; shrinkage as in
    Dacrema et al.'s reproducibility study), self-similarity removed. Row i holds the
    neighbours of item i, so ``history @ S`` sums the similarity of each candidate to the
    user's items.
    """
    binary = sp.csr_matrix(train, dtype=np.float32)
    binary.data[:] = 1.0
    co = (binary.T @ binary).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    norms = np.sqrt(np.asarray(binary.sum(axis=0)).ravel())
    co = co.tocoo()
    values = co.data / (norms[co.row] * norms[co.col] + shrink)
    sim = sp.csr_matrix((values.astype(np.float32), (co.row, co.col)), shape=co.shape)
    return _keep_top_per_row(sim, neighbours)


def _keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row (ties: lower column index)."""
    rows, cols, vals = [], [], []
    for i in range(matrix.shape[0]):
        start, end = matrix.indptr[i], matrix.indptr[i + 1]
        row_cols, row_vals = matrix.indices[start:end], matrix.data[start:end]
        if len(row_vals) > k:
            order = np.lexsort((row_cols, -row_vals))[:k]
            row_cols, row_vals = row_cols[order], row_vals[order]
        rows.append(np.full(len(row_cols), i))
        cols.append(row_cols)
        vals.append(row_vals)
    if not rows:
        return sp.csr_matrix(matrix.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape
    )


@BASELINES.register("item_knn")
class ItemKNN:
    """Item-based kNN as RecBole's ItemKNN: score(u, j) = sum of sim(i, j) over the user's train
    items i that are among the ``neighbours`` most similar items of the candidate j.

    The same normalisation, shrink, per-candidate pruning and sum as RecBole's (a test compares
    the scores). Pruning per candidate (not per history item) gives every candidate the same
    number of neighbours to be supported by. On a sparse catalogue the shrink decides the
    ranking: cosine gives two niche items that one user shares 1/sqrt(2), a popular item that
    many of the user's items support 1/sqrt(n_i n_j) each, so without a shrink of about 100 or
    more the lists fill with the deep tail (the evaluate grid reaches 1000).
    """

    deterministic = True

    @classmethod
    def from_spec(cls, spec, split, seed: int) -> ItemKNN:
        return cls(split.train, neighbours=spec.neighbours, shrink=spec.shrink)

    def __init__(self, train: sp.csr_matrix, neighbours: int = 100, shrink: float = 10.0):
        self.train = sp.csr_matrix(train, dtype=np.float32)
        self.train.data[:] = 1.0
        # column j holds the neighbours of candidate j (the matrix is row-pruned, so transpose)
        self.similarity = item_cosine_neighbours(self.train, neighbours, shrink).T.tocsr()

    def __call__(self, users: torch.Tensor) -> torch.Tensor:
        block = self.train[users.cpu().numpy()] @ self.similarity
        return torch.as_tensor(block.toarray(), dtype=torch.float32, device=users.device)


#: largest memory EASE's dense item-item matrices may take (about 24k items)
EASE_MAX_GIB = 12


def ease_weights(train: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE's item-item weights (Steck, WWW 2019): ``B = argmin ||X - XB||² + l2 ||B||²`` with
    ``diag(B) = 0``, in closed form ``B = I - P / diag(P)``, ``P = (XᵀX + l2 I)⁻¹``.

    Dense (n_items²): an item-item linear model is only practical up to a few tens of
    thousands of items, which is RecBole's EASE too. An item without training users gets a
    zero column (it is never recommended by the ID signal alone).
    """
    n_items = train.shape[1]
    needed_gib = 3 * n_items**2 * 8 / 2**30  # the Gram matrix, its inverse, the weights
    if needed_gib > EASE_MAX_GIB:
        raise ValueError(
            f"EASE needs dense {n_items:,} x {n_items:,} matrices (about {needed_gib:.0f} GiB, "
            f"more than {EASE_MAX_GIB} GiB): leave it out on this catalogue with "
            "evaluate.baselines.EASE.enabled: false"
        )
    binary = sp.csr_matrix(train, dtype=np.float64)
    binary.data[:] = 1.0
    return ease_from_gram((binary.T @ binary).toarray(), l2)


def ease_from_gram(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE's closed form on a given (n_items, n_items) Gram matrix, which it overwrites (no
    copy of a dense n_items² matrix): a caller may add side information to ``XᵀX`` first, as
    collective EASE does (benchmarks/collective_ease.py)."""
    gram[np.diag_indices_from(gram)] += l2
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)[np.newaxis, :]
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


@BASELINES.register("ease")
class EASE:
    """EASE (Steck 2019; RecBole's ``EASE``): score(u, ·) = x_u B, a linear item-item model
    fitted in closed form on the train matrix; ``l2`` is its only hyperparameter (RecBole's
    ``reg_weight``). Deterministic: one run, no seeds."""

    deterministic = True

    @classmethod
    def from_spec(cls, spec, split, seed: int) -> EASE:
        return cls(split.train, l2=spec.l2)

    def __init__(self, train: sp.csr_matrix, l2: float = 250.0):
        self.train = sp.csr_matrix(train, dtype=np.float32)
        self.train.data[:] = 1.0
        self.weights = torch.as_tensor(ease_weights(self.train, l2))

    def __call__(self, users: torch.Tensor) -> torch.Tensor:
        history = torch.as_tensor(self.train[users.cpu().numpy()].toarray())
        return (history @ self.weights).to(users.device)


@BASELINES.register("bpr")
class MFBPR:
    """MF-BPR in its standard formulation (SGD, item bias, L2 on sampled rows, sampling with
    replacement; :mod:`crossrec.evaluation.mf_bpr`), early-stopped on validation Recall@20
    with the evaluation's tie order."""

    deterministic = False

    @classmethod
    def from_spec(cls, spec, split, seed: int):
        from crossrec.evaluation.mf_bpr import train_mf_bpr, validation_recall

        validate = validation_recall(split.valid, split.train, tie_order=split.tie_order)
        return train_mf_bpr(split.train, spec.bpr, seed, validate if split.valid.nnz else None)


@BASELINES.register("finetune")
class TrainedVariant:
    """Marker: the recommender itself trained with ``overrides`` of the trained model's config
    (MF-BPR, LightGCN, VBPR-style, ContentOnly); the evaluation runner trains it per seed."""

    trained = True
    deterministic = False
