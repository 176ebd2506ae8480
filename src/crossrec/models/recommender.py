"""The recommender ``nn.Module``: item tower, user tower and graph propagation.

Item ego embedding = fused content (+ item-ID embedding). User ego embedding = history encoder
over the ego embeddings of the user's recent items (+ user-ID embedding). With
``propagation.kind = lightgcn`` the ego embeddings are smoothed LightGCN-style over the
normalised train user-item graph (mean over layers), and items also get their ego embedding
propagated over the averaged frozen modality kNN graphs (FREEDOM). With
``propagation.content_path = channel`` the content stays out of the ego and is propagated as
its own normalised channel (LGMRec's local modality graph, ``content_channel_vectors``).
Score = dot product (cosine when trained with a cosine softmax); with VBPR's item biases
(``model.id_bias`` / ``content_bias``) the final vectors carry one more column, 1 for users and
the item's bias for items, so the bias is part of every dot product. Cold items have no train
edges and their (untrained) ID embedding is masked to zero, so they score from their content
and their modality-graph neighbours alone.

Feature vectors and histories are non-persistent buffers (``load_recommender`` rebuilds them
from data). The sparse graphs are plain attributes that ``_apply`` moves with the module: DDP
cannot broadcast sparse CSR buffers, and every rank builds identical graphs from the same data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from crossrec.models.config import ModelConfig, check_content_options
from crossrec.models.gate import ContentGate, item_degrees
from crossrec.models.graph_ops import (
    GraphMatmul,
    edge_sampling_weights,
    graph_and_transpose,
    item_graph_tensors,
    mean_item_graph,
    propagate_mean,
    pruned_user_item_graph,
    rebuilt_item_graphs,
    scipy_to_torch_sparse,
    user_mean_matrix,
)
from crossrec.models.item_towers import build_fusion
from crossrec.models.item_towers.modality import check_item_features
from crossrec.models.towers import build_user_tower, history_matrix

log = logging.getLogger(__name__)


@dataclass
class Embeddings:
    """Everything a step needs: final (propagated) and ego embeddings of all nodes."""

    users: torch.Tensor
    items: torch.Tensor
    users_ego: torch.Tensor
    items_ego: torch.Tensor


class Recommender(nn.Module):
    """Two-tower multimodal recommender with optional LightGCN / item-graph propagation."""

    def __init__(
        self,
        config: ModelConfig,
        n_users: int,
        n_items: int,
        train: sp.csr_matrix,
        item_features: dict | None = None,
        modality_graphs: dict[str, sp.spmatrix] | None = None,
        user_item_graph: sp.spmatrix | None = None,
        train_recency: sp.csr_matrix | None = None,
        item_texts: list[str] | None = None,
        cosine: bool = False,
    ):
        super().__init__()
        self.config = config
        self.n_users, self.n_items = n_users, n_items
        self.cosine = cosine
        dim = config.embedding_dim
        tower = config.user_tower
        item_features = item_features or {}
        self.modalities = check_item_features(item_features, n_items) if item_features else []
        if not config.use_id_embedding and not config.use_content:
            raise ValueError("model: use_id_embedding and use_content cannot both be false")
        if not config.use_id_embedding and tower.kind == "none":
            raise ValueError("model: without ID embeddings the user tower needs a history encoder")

        self.fusion: nn.Module | None = None
        if config.use_content:
            self.fusion = build_fusion(
                config.fusion, item_features, self.modalities, dim, config.dropout, item_texts
            )
        self.late_content = bool(getattr(self.fusion, "late", False))
        #: LGMRec's local modality channel: content propagated on its own (see embeddings)
        self.content_channel = self.fusion is not None and config.propagation.content_path == (
            "channel"
        )
        check_content_options(config, cosine, self.fusion is not None, self.late_content)
        #: VBPR's separate ID / content halves (model.content_space); None = one shared space
        self.register_buffer("id_mask", None, persistent=False)
        self.register_buffer("content_mask", None, persistent=False)
        if (
            config.content_space == "separate"
            and config.use_id_embedding
            and self.fusion is not None
        ):
            self.id_mask = torch.zeros(1, dim)
            self.id_mask[:, : dim - dim // 2] = 1.0
            self.content_mask = 1.0 - self.id_mask
        #: VBPR's item biases (an extra score column; see ``with_bias_column``)
        self.id_bias = nn.Embedding(n_items, 1) if config.id_bias else None
        self.content_bias = nn.Linear(dim, 1, bias=False) if config.content_bias else None
        for head in (self.id_bias, self.content_bias):
            if head is not None:
                nn.init.zeros_(head.weight)
        self.user_id = nn.Embedding(n_users, dim) if config.use_id_embedding else None
        self.item_id = nn.Embedding(n_items, dim) if config.use_id_embedding else None
        for table in (self.user_id, self.item_id):
            if table is not None:
                nn.init.normal_(table.weight, std=config.init_std)
        if config.use_id_embedding:
            # an ID never seen in training keeps its random init: cold items / users score from
            # content (and graph neighbours) alone instead of from that noise
            train_csr = sp.csr_matrix(train)
            seen_items = train_csr.getnnz(axis=0) > 0
            seen_users = train_csr.getnnz(axis=1) > 0
            for name, seen in (("item_id_seen", seen_items), ("user_id_seen", seen_users)):
                mask = torch.as_tensor(seen, dtype=torch.float32).unsqueeze(1)
                self.register_buffer(name, mask, persistent=False)
        self.dropout = nn.Dropout(config.dropout)
        #: per-item content weight by train degree (model.content_gate); None = all content
        self.content_gate = self._build_gate(config, train)

        self.history_encoder = None
        if tower.kind != "none":
            self.history_encoder = build_user_tower(
                tower.kind, dim, tower.history_length, tower.heads, tower.layers, config.dropout
            )
            history = history_matrix(train, tower.history_length, train_recency)
            self.register_buffer("history", torch.as_tensor(history), persistent=False)

        prop = config.propagation
        self.ui_graph = self.ui_graph_t = self.ii_graph = self.ii_graph_t = None
        self.register_buffer("ii_order", None, persistent=False)
        self.register_buffer("ii_inverse", None, persistent=False)
        self.ui_layers = prop.layers if prop.kind == "lightgcn" else 0
        self.ii_layers = prop.item_graph_layers if prop.kind == "lightgcn" else 0
        if self.ui_layers:
            if user_item_graph is None:
                raise ValueError("propagation.kind lightgcn needs the user_item_graph")
            size = n_users + n_items
            if user_item_graph.shape != (size, size):
                raise ValueError(
                    f"user_item_graph: expected shape ({size}, {size}) for {n_users} users + "
                    f"{n_items} items, got {user_item_graph.shape}"
                )
            self.ui_graph, self.ui_graph_t = graph_and_transpose(user_item_graph)
            if prop.edge_dropout > 0:
                self._init_edge_pruning(train)
        self.user_mean = self.user_mean_t = None
        if self.content_channel:
            mean = user_mean_matrix(train)
            self.user_mean = scipy_to_torch_sparse(mean)
            self.user_mean_t = scipy_to_torch_sparse(mean.T)
        names = prop.item_graph_modalities
        if names is None:
            names = sorted(modality_graphs or {})
        if self.ii_layers and names:
            if prop.item_graph_k is not None:
                k = prop.item_graph_k
                modality_graphs = rebuilt_item_graphs(item_features, names, k, train)
            self.ii_graph, self.ii_graph_t, self.ii_order, self.ii_inverse = item_graph_tensors(
                mean_item_graph(modality_graphs or {}, names, n_items)
            )
        else:
            self.ii_layers = 0
        self._step_content: torch.Tensor | None = None
        self._ego_content: torch.Tensor | None = None
        self._cache: Embeddings | None = None
        self._late_cache: torch.Tensor | None = None
        #: who users are, added to their final vectors (crossrec.models.user_attributes)
        self.user_attributes: nn.Module | None = None
        self._score_cache: torch.Tensor | None = None

    def _build_gate(self, config: ModelConfig, train: sp.spmatrix) -> ContentGate | None:
        if config.content_gate.kind == "none" or self.fusion is None:
            return None
        if self.late_content or not config.use_id_embedding:
            raise ValueError(
                "model.content_gate weighs content against the item's ID embedding: it needs "
                "use_id_embedding: true and early content (concat, gated or attention fusion)"
            )
        return ContentGate(config.content_gate, item_degrees(train))

    def gate(self, target: str) -> torch.Tensor | float:
        """(n_items, 1) content weights for ``target`` (content / item_graph), else 1."""
        if self.content_gate is None or target not in self.config.content_gate.targets:
            return 1.0
        return self.content_gate()

    @property
    def output_gate(self) -> bool:
        """Whether the ego's content is gated after propagation (content_gate.stage output)."""
        return (
            self.content_gate is not None
            and not self.content_channel
            and self.config.content_gate.stage == "output"
            and "content" in self.config.content_gate.targets
        )

    def id_rows(self) -> torch.Tensor:
        """(n_items, d) ID embeddings as they enter the item ego: zero for items without train
        edges, and only the ID half of the vector under ``content_space: separate``."""
        ids = self.item_id.weight * self.item_id_seen
        return ids * self.id_mask if self.id_mask is not None else ids

    def project_content(self) -> torch.Tensor:
        """(n_items, d) projected content of every item: only the content half of the vector
        under ``content_space: separate``."""
        content = self.fusion(None)
        return content * self.content_mask if self.content_mask is not None else content

    def penalised_item_rows(self, items_ego: torch.Tensor) -> torch.Tensor:
        """The part of the item ego embeddings the L2 term covers: all of it, or the ID half
        under ``content_space: separate`` (VBPR does not penalise its content projection)."""
        return items_ego * self.id_mask if self.id_mask is not None else items_ego

    @property
    def has_bias_column(self) -> bool:
        """Whether final vectors carry VBPR's bias column (users 1, items their bias)."""
        return self.id_bias is not None or self.content_bias is not None

    def item_bias(self) -> torch.Tensor:
        """(n_items,) VBPR bias of every item: ID bias (train items) + content bias."""
        bias = torch.zeros(self.n_items, device=self._device())
        if self.id_bias is not None:
            bias = bias + (self.id_bias.weight * self.item_id_seen).squeeze(1)
        if self.content_bias is not None:
            bias = bias + self.content_bias(self.content_table()).squeeze(1)
        return bias

    def with_bias_column(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(users | 1, items | bias): every dot product of final vectors (training, full
        ranking, serving, explanations) then includes the item bias with no code of its own."""
        if not self.has_bias_column:
            return users, items
        users = torch.cat([users, users.new_ones(len(users), 1)], dim=1)
        items = torch.cat([items, self.item_bias().unsqueeze(1).to(items.dtype)], dim=1)
        return users, items

    def _init_edge_pruning(self, train: sp.spmatrix) -> None:
        """Train edges and their FREEDOM sampling weights (:func:`edge_sampling_weights`)."""
        edges = edge_sampling_weights(train, self.n_users, self.n_items)
        for name, value in zip(("edge_users", "edge_items", "edge_weight"), edges, strict=True):
            self.register_buffer(name, value, persistent=False)

    def pruned_graph(self) -> torch.Tensor:
        """The user-item graph over a degree-sensitive sample of the train edges (FREEDOM)."""
        keep_share = 1.0 - self.config.propagation.edge_dropout
        return pruned_user_item_graph(
            self.edge_users,
            self.edge_items,
            self.edge_weight,
            keep_share,
            self.n_users,
            self.n_items,
        )

    # ---------------------------------------------------------------- embeddings
    def item_ego(self) -> torch.Tensor:
        """(n_items, d) input embedding of every item."""
        parts = []
        if self.item_id is not None:
            ids = self.id_rows()
            if self.training and self.config.id_dropout > 0 and self.fusion is not None:
                keep = torch.rand(self.n_items, 1, device=ids.device) >= self.config.id_dropout
                ids = ids * keep
            parts.append(ids)
        if self.fusion is not None and not self.late_content:
            content = self.project_content()
            self._step_content = content if self.training else None  # reused by content_table
            if not self.content_channel:
                added = self.dropout(content)
                self._ego_content = added  # what output_gate scales after propagation
                parts.append(added if self.output_gate else added * self.gate("content"))
        if not parts:  # late (LLM) content only: graph part starts from zeros
            return torch.zeros(self.n_items, self.config.embedding_dim, device=self._device())
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    def user_ego(self, items_ego: torch.Tensor) -> torch.Tensor:
        """(n_users, d) input embedding of every user."""
        out = self.user_id.weight * self.user_id_seen if self.user_id is not None else None
        if self.history_encoder is not None:
            table = torch.cat([items_ego, items_ego.new_zeros(1, items_ego.shape[1])])
            encoded = self.dropout(self.history_encoder(table, self.history))
            out = encoded if out is None else out + encoded
        return out

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def smooth_items(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over item-graph layers of ``x``, item order in and out (a large graph is stored
        in a locality order: ``graph_ops.item_graph_tensors``)."""
        if self.ii_order is not None:
            x = x[self.ii_order]
        out = propagate_mean(self.ii_graph, self.ii_graph_t, x, self.ii_layers)
        return out if self.ii_order is None else out[self.ii_inverse]

    def embeddings(self) -> Embeddings:
        """Final and ego embeddings of every user and item (one full-graph pass)."""
        if self._cache is not None and not self.training:
            return self._cache
        items_ego = self.item_ego()
        users_ego = self.user_ego(items_ego)
        users, items = users_ego, items_ego
        graph, graph_t = self.ui_graph, self.ui_graph_t
        if self.ui_layers:
            if self.training and self.config.propagation.edge_dropout > 0:
                graph = graph_t = self.pruned_graph()
            nodes = torch.cat([users_ego, items_ego])
            if self.output_gate:  # the content alone as extra columns: one propagation pass
                content = torch.cat([users_ego.new_zeros(users_ego.shape), self._ego_content])
                nodes = torch.cat([nodes, content], dim=1)
            both = propagate_mean(graph, graph_t, nodes, self.ui_layers)
            users, items = both[: self.n_users], both[self.n_users :]
        elif self.output_gate:
            items = torch.cat([items, self._ego_content], dim=1)
        if self.output_gate:
            dim = users_ego.shape[1]
            items, content = items[:, :dim], items[:, dim:]
            users = users[:, :dim]
            items = items - (1.0 - self.gate("content")) * content
        if self.content_channel:
            channel_users, channel_items = self.content_channel_vectors(graph, graph_t)
            users, items = users + channel_users, items + channel_items * self.gate("content")
        if self.ii_layers:
            source = items_ego
            if self.config.propagation.item_graph_input == "id" and self.item_id is not None:
                source = self.id_rows()
            items = items + self.smooth_items(source) * self.gate("item_graph")
        if self.user_attributes is not None:
            users = self.user_attributes(users)
        users, items = self.with_bias_column(users, items)
        out = Embeddings(users, items, users_ego, items_ego)
        if not self.training and not torch.is_grad_enabled():
            self._cache = out
        return out

    def content_channel_vectors(
        self, graph: torch.Tensor | None, graph_t: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """LGMRec's local modality graph embedding: (users, items) unit vectors of the content
        propagated on its own over the user-item graph.

        Items start from their projected content, users from the mean content of their train
        items (no free user parameters: the user side cannot overfit the content). The layer
        mean keeps layer 0, so an item without train edges (cold) keeps its own content. The
        per-node L2 normalisation bounds what the content can add to the ID channel.
        """
        content = self.dropout(self.content_table())
        users = GraphMatmul.apply(self.user_mean, self.user_mean_t, content)
        both = torch.cat([users, content])
        if self.ui_layers:
            both = propagate_mean(graph, graph_t, both, self.ui_layers)
        both = F.normalize(both.float(), dim=-1)
        return both[: self.n_users], both[self.n_users :]

    def item_vectors(self, emb: Embeddings, item_idx: torch.Tensor) -> torch.Tensor:
        """Final vectors of some items (adds late LLM content for the items asked for)."""
        # index_select: its backward (index_add) is several times faster on CPU than that of
        # advanced indexing (index_put with accumulate), and this gathers batch x negatives rows
        vectors = emb.items.index_select(0, item_idx.reshape(-1)).view(*item_idx.shape, -1)
        if self.late_content:
            vectors = vectors + self.dropout(self.fusion(item_idx.reshape(-1))).view_as(vectors)
        return vectors

    def all_item_vectors(self, emb: Embeddings) -> torch.Tensor:
        if not self.late_content:
            return emb.items
        if self._late_cache is None or self.training or torch.is_grad_enabled():
            late = self.fusion.encode_all(self.n_items, emb.items.device)
            if not self.training and not torch.is_grad_enabled():
                self._late_cache = late
            return emb.items + late
        return emb.items + self._late_cache

    # ---------------------------------------------------------------- scoring
    def score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        """(b, n_items) scores of the given users against every item."""
        emb = self.embeddings()
        users = emb.users[user_idx]
        items = self._scoring_items(emb)
        # float32 scores even under bf16 autocast: low-precision scores would tie and blur ranks
        with torch.autocast(device_type=users.device.type, enabled=False):
            users = users.float()
            if self.cosine:
                users = F.normalize(users, dim=-1)
            return users @ items.T

    def _scoring_items(self, emb: Embeddings) -> torch.Tensor:
        """Every item's float32 scoring vector (normalised for a cosine model); at inference kept
        until the cache is cleared, so scoring a large catalogue in many chunks of users builds
        it once instead of once per chunk."""
        inference = not self.training and not torch.is_grad_enabled()
        if inference and self._score_cache is not None:
            return self._score_cache
        items = self.all_item_vectors(emb)
        with torch.autocast(device_type=items.device.type, enabled=False):
            items = items.float()
            if self.cosine:
                items = F.normalize(items, dim=-1)
        if inference:
            self._score_cache = items
        return items

    def scoring_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(every user's, every item's) float32 vectors whose dot product is ``score_users``
        (normalised for a cosine model): what serving and the words protocol score with."""
        with torch.no_grad():
            emb = self.embeddings()
            users, items = emb.users.float(), self.all_item_vectors(emb).float()
            if self.cosine:
                users, items = F.normalize(users, dim=-1), F.normalize(items, dim=-1)
        return users, items

    def content_table(self) -> torch.Tensor | None:
        """(n_items, d) projected content of every item (no IDs, no graphs); None without
        early content. One pass over the catalogue: cheaper than projecting the batch's
        (batch x negatives) rows, which repeat items."""
        if self.fusion is None or self.late_content:
            return None
        if self.training and self._step_content is not None:
            return self._step_content  # this step's item_ego already projected the catalogue
        return self.project_content()

    def modality_weights(self, item_idx: torch.Tensor) -> torch.Tensor | None:
        """(b, n_modalities) per-item modality weights (gated fusion), else None."""
        if self.fusion is None or not hasattr(self.fusion, "modality_weights"):
            return None
        return self.fusion.modality_weights(item_idx)

    def llm_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the LLM encoder (own learning rate)."""
        if not self.late_content:
            return []
        encoder = self.fusion.encoder
        params = (
            encoder.llm_parameters() if hasattr(encoder, "llm_parameters") else encoder.parameters()
        )
        return [p for p in params if p.requires_grad]

    def content_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the early content projection (fusion and VBPR's content
        bias): the ``content`` group of ``optim.content_lr_scale``. None under the llm
        strategy, whose encoder has its own ``optim.llm_lr`` and whose head trains at ``lr``."""
        if self.late_content:
            return []
        llm = {id(p) for p in self.llm_parameters()}
        heads = [m for m in (self.fusion, self.content_bias) if m is not None]
        return [p for m in heads for p in m.parameters() if p.requires_grad and id(p) not in llm]

    GRAPHS = ("ui_graph", "ui_graph_t", "ii_graph", "ii_graph_t", "user_mean", "user_mean_t")

    def _apply(self, fn, recurse: bool = True):
        """Move/cast the sparse graphs with the module, as buffers would be (see module doc).

        A symmetric graph is its own transpose (one tensor under both names): moved once.
        """
        super()._apply(fn, recurse)
        moved: dict[int, torch.Tensor] = {}
        for name in self.GRAPHS:
            graph = getattr(self, name)
            if graph is not None:
                if id(graph) not in moved:
                    moved[id(graph)] = fn(graph)
                setattr(self, name, moved[id(graph)])
        self.clear_cache()
        return self

    def clear_cache(self) -> None:
        self._cache = None
        self._step_content = None
        self._late_cache = None
        self._score_cache = None

    def train(self, mode: bool = True) -> Recommender:
        self.clear_cache()
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self.clear_cache()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
