"""Per-item content gate by train degree (``model.content_gate``).

An item's ID embedding is only as good as its train interactions: for a well-known item the
collaborative signal ranks it, and the content added to it (and the modality-graph neighbours
mixed into it) shifts it away from what its users did; for a rarely seen or cold item the
content is most of what the model knows. The gate scales the content per item by a weight that
falls with the item's train degree, so the mix follows what the model knows about the item.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from crossrec.models.config import ContentGateConfig


def item_degrees(train: sp.spmatrix) -> np.ndarray:
    """(n_items,) train interactions of every item (distinct users)."""
    return sp.csr_matrix(train).getnnz(axis=0).astype(np.float32)


class ContentGate(nn.Module):
    """``forward()`` -> (n_items, 1) content weights in (0, 1]; cold items get exactly 1.

    ``degree``: ``1 / (1 + (deg / tau) ** slope)``, fixed. ``learned``:
    ``sigmoid(s * (c - log deg))``, two trained scalars (``c`` the log-degree of half content,
    ``s > 0`` its steepness), started at the fixed schedule (``c = log tau``, ``s = slope`` give
    the same curve), so training can only move the crossover and the steepness, never make
    the gate rise with degree.
    """

    def __init__(self, config: ContentGateConfig, degree: np.ndarray):
        super().__init__()
        if config.kind == "none":
            raise ValueError("ContentGate with kind none: build no gate instead")
        self.kind = config.kind
        self.tau, self.slope = float(config.tau), float(config.slope)
        deg = torch.as_tensor(np.asarray(degree, dtype=np.float32)).unsqueeze(1)
        self.register_buffer("degree", deg, persistent=False)
        self.register_buffer("log_degree", deg.clamp(min=1.0).log(), persistent=False)
        self.centre = self.raw_slope = None
        if self.kind == "learned":
            self.centre = nn.Parameter(torch.tensor(math.log(self.tau)))
            # softplus(raw) = slope at the start
            self.raw_slope = nn.Parameter(torch.tensor(math.log(math.expm1(self.slope))))

    def forward(self) -> torch.Tensor:
        if self.kind == "degree":
            return 1.0 / (1.0 + (self.degree / self.tau) ** self.slope)
        slope = F.softplus(self.raw_slope)
        gate = torch.sigmoid(slope * (self.centre - self.log_degree))
        return torch.where(self.degree > 0, gate, torch.ones_like(gate))

    def extra_repr(self) -> str:
        return f"kind={self.kind}, tau={self.tau}, slope={self.slope}"
