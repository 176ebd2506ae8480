"""Who a user is as a modality of the recommender: the user vector is the model's own (ID
embedding, propagated over the train graph) plus a learned projection of the user's attribute
one-hots (``crossrec.data.users.user_tokens``: "sex=f", "age=20s", "occupation=engineer").

DropoutNet-style training (Volkovs et al., NeurIPS 2017): each step the model's own part of a
``id_dropout`` share of users is zeroed, so the attribute part alone must rank their train
items; a user without train rows (no ID embedding, no graph edges) is scored from the attribute
part alone. Items are untouched, and the attribute part is added after propagation, so it never
flows into item vectors.

The inputs travel with the training data (``TrainingData.user_attributes``): a model trained
with them is rebuilt with the same inputs (``crossrec.models.bundle.build_recommender``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


@dataclass
class UserAttributeInputs:
    """One-hot user attributes (``(n_users, n_features)``, a row per user_idx) and the share
    of users whose own vector is dropped per training step."""

    onehots: sp.csr_matrix
    vocabulary: dict[str, int] = field(default_factory=dict)
    id_dropout: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.id_dropout < 1.0:
            raise ValueError(
                f"user attributes: id_dropout must be in [0, 1), got {self.id_dropout}"
            )

    def rows(self, tokens: list[list[str]]) -> np.ndarray:
        """(len(tokens), n_features) one-hots of attribute tokens (unknown tokens left out):
        a new user's row."""
        out = np.zeros((len(tokens), self.onehots.shape[1]), dtype=np.float32)
        for n, row in enumerate(tokens):
            for token in row:
                if token in self.vocabulary:
                    out[n, self.vocabulary[token]] = 1.0
        return out


def user_attribute_inputs(
    tokens: list[list[str]], train: sp.spmatrix, id_dropout: float = 0.5
) -> UserAttributeInputs:
    """The inputs from every user's tokens; the vocabulary is the tokens of users with train
    rows (a value only held-out users have gets no weight it could not learn)."""
    has_train = np.diff(sp.csr_matrix(train).indptr) > 0
    known = sorted({t for u in np.flatnonzero(has_train) for t in tokens[u]})
    vocabulary = {t: n for n, t in enumerate(known)}
    inputs = UserAttributeInputs(
        sp.csr_matrix((len(tokens), len(vocabulary)), dtype=np.float32), vocabulary, id_dropout
    )
    inputs.onehots = sp.csr_matrix(inputs.rows(tokens))
    return inputs


class UserAttributes(nn.Module):
    """Adds the projected attributes to the final user vectors (see the module doc)."""

    def __init__(self, inputs: UserAttributeInputs, dim: int, init_std: float = 0.01):
        super().__init__()
        self.id_dropout = inputs.id_dropout
        self.projection = nn.Linear(inputs.onehots.shape[1], dim, bias=False)
        nn.init.normal_(self.projection.weight, std=init_std)
        onehots = torch.as_tensor(inputs.onehots.toarray(), dtype=torch.float32)
        self.register_buffer("onehots", onehots, persistent=False)

    def vectors(self, onehots: torch.Tensor) -> torch.Tensor:
        """(n, dim) attribute part of users with these one-hot rows."""
        return onehots @ self.projection.weight.T

    def forward(self, users: torch.Tensor) -> torch.Tensor:
        """(n_users, d) final user vectors (``d`` >= dim: extra columns, e.g. a bias column,
        get no attribute part)."""
        own = users
        if self.training and self.id_dropout > 0:
            keep = torch.rand(users.shape[0], 1, device=users.device) >= self.id_dropout
            own = users * keep
        part = self.vectors(self.onehots).to(users.dtype)
        if part.shape[1] < users.shape[1]:
            part = torch.cat([part, part.new_zeros(len(part), users.shape[1] - part.shape[1])], 1)
        return own + part


def attach_user_attributes(model: nn.Module, inputs: UserAttributeInputs | None) -> nn.Module:
    """Give ``model`` (a ``Recommender``) the user-attributes modality; no-op for None."""
    if inputs is None:
        return model
    if inputs.onehots.shape[0] != model.n_users:
        raise ValueError(
            f"user attributes: {inputs.onehots.shape[0]} rows for {model.n_users} users"
        )
    model.user_attributes = UserAttributes(
        inputs, model.config.embedding_dim, model.config.init_std
    ).to(next(model.parameters()).device)
    return model


def attribute_user_vectors(model: nn.Module, onehots: np.ndarray) -> np.ndarray:
    """(n, d) user vectors of users known only by these one-hot rows (cold users, a new user):
    the attribute part alone, with the model's bias column (1) when it has one; score them
    against ``model.scoring_vectors()[1]`` (normalised for a cosine model, as that is)."""
    import torch.nn.functional as F

    module = model.user_attributes
    with torch.no_grad():
        vectors = module.vectors(torch.as_tensor(onehots, dtype=torch.float32))
        if model.has_bias_column:
            vectors = torch.cat([vectors, vectors.new_ones(len(vectors), 1)], dim=1)
        if model.cosine:
            vectors = F.normalize(vectors, dim=-1)
    return vectors.numpy()
