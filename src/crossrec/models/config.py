"""Schema of ``conf/base/parameters_finetune.yml: finetune`` (and of Optuna's overrides of it).

Every knob of the recommender and of the Lightning run lives here, validated at the edge so a
misspelt key fails with its dotted path instead of deep inside training.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from crossrec.config import StrictConfig, deep_merge
from crossrec.models.registries import FUSION_STRATEGIES, LOSSES, USER_TOWERS


class LLMFusionConfig(StrictConfig):
    """Settings of the LLM item encoder (a sub-block of the finetune model config)."""

    model: str = Field("smollm2-135m-instruct", description="zoo name, HF id or local folder")
    mode: Literal["frozen", "lora", "partial", "full"] = "frozen"
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = Field(16.0, gt=0)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    top_n_layers: int = Field(
        2,
        ge=1,
        description="the top decoder layers that run every step: trained in partial mode, "
        "carry the LoRA adapters in lora mode (with trunk_cache)",
    )
    trunk_cache: bool = Field(
        True,
        description="frozen/lora/partial: run the layers below top_n_layers once per item text "
        "and cache their output (soft tokens enter at the first top layer); false: the whole "
        "LLM runs every step, soft tokens at the input, LoRA on every layer",
    )
    trunk_cache_dir: str | None = Field(
        "data/04_feature/llm_trunk_cache",
        description="disk cache of the trunk's hidden states (relative to the working "
        "directory); None = kept in memory only",
    )
    trunk_batch_size: int = Field(32, ge=1, description="items per batch when the trunk runs")
    n_soft_tokens: int | dict[str, int] = Field(
        1, description="soft tokens per modality: one int for all, or {modality: n}"
    )
    soft_token_modalities: list[str] | None = Field(
        None,
        description="modalities fed as soft tokens; None = every modality except text_modalities",
    )
    text_modalities: list[str] = Field(
        default_factory=lambda: ["text", "text_*"],
        description="glob patterns of modalities the LLM reads as text: no soft tokens for them "
        "when soft_token_modalities is None",
    )
    #: 32 tokens: title, year, genres and the plot's first sentence on movielens (mean 86 tokens
    #: uncut); each step's cost grows linearly with it (benchmarks/llm_finetune.py)
    max_text_tokens: int = Field(32, ge=1)
    pooling: Literal["last", "mean"] = "mean"
    gradient_checkpointing: bool = False
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    out_dim: int | None = Field(
        None, ge=1, description="linear head to this size; None = LLM hidden size"
    )
    save_frozen_weights: bool = Field(
        False,
        description="keep frozen LLM weights in state_dict (large); off: reload from the folder",
    )


class FusionConfig(StrictConfig):
    """How the per-modality item vectors become one content vector."""

    strategy: FUSION_STRATEGIES.name_field() = "concat"  # type: ignore[valid-type]
    #: attention strategy: transformer over modality tokens
    attention_heads: int = Field(2, ge=1)
    attention_layers: int = Field(1, ge=1)
    #: the LLM item encoder of the ``llm`` strategy (crossrec.models.item_towers.llm_encoder)
    llm: LLMFusionConfig = Field(default_factory=LLMFusionConfig)
    #: items per chunk when the LLM encodes the whole catalogue for scoring
    llm_chunk_size: int = Field(64, ge=1)


class UserTowerConfig(StrictConfig):
    """Encoder of a user's training history (most recent items first)."""

    kind: USER_TOWERS.name_field("none") = "none"  # type: ignore[valid-type]
    history_length: int = Field(50, ge=1)
    heads: int = Field(2, ge=1)
    layers: int = Field(1, ge=1)


class PropagationConfig(StrictConfig):
    """Graph propagation of the ego embeddings (LightGCN / FREEDOM)."""

    kind: Literal["none", "lightgcn"] = "lightgcn"
    #: LightGCN layers over the normalised user-item graph
    layers: int = Field(3, ge=0)
    #: propagation layers over the (averaged) frozen modality item-item kNN graphs; 0 = unused
    item_graph_layers: int = Field(2, ge=0)
    #: which modality graphs to average; None = all of them
    item_graph_modalities: list[str] | None = None
    #: what the item graph smooths: ``ego`` (ID + content) or ``id`` (ID embeddings, FREEDOM)
    item_graph_input: Literal["ego", "id"] = "id"
    #: where the fused content enters: ``ego`` (summed into the item ego embedding before
    #: propagation) or ``channel`` (LGMRec's local modality graph: the ego is the ID alone; the
    #: content is propagated on its own over the user-item graph, users starting from the mean
    #: content of their train items, L2-normalised per node and added to the final vectors)
    content_path: Literal["ego", "channel"] = "ego"
    #: FREEDOM's degree-sensitive edge pruning: share of train user-item edges dropped at each
    #: training step, edge (u, i) kept with probability ~ 1 / sqrt(deg u * deg i); the kept
    #: graph is re-normalised. Inference uses every edge. 0 = off
    edge_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    #: neighbours per item of the modality kNN graphs: null = the graphs fuse built
    #: (``fuse.knn``); an int rebuilds them from the fused vectors at that k (FREEDOM's binary
    #: weights), so ``tune`` can choose k per dataset on validation
    item_graph_k: int | None = Field(None, ge=1)


class ContentGateConfig(StrictConfig):
    """How much of an item's content reaches its vector, by what the IDs know of the item.

    Content helps items with few train interactions and costs the well-known ones, whose ID
    embeddings already rank them (docs/content-gate.md). The gate scales each item's content
    by ``g(deg)``, ``deg`` its train interactions: ``degree`` is the fixed schedule
    ``1 / (1 + (deg / tau) ** slope)`` (slope 1: ``tau / (tau + deg)``, the weight a prior of
    ``tau`` pseudo-interactions keeps against ``deg`` observed ones), ``learned`` the same
    curve as ``sigmoid(s * (c - log deg))`` with ``c`` and ``s > 0`` trained (initialised at
    ``log tau`` and ``slope``). Items without train interactions (cold) keep all their content
    (g = 1).
    """

    kind: Literal["none", "degree", "learned"] = "none"
    #: train interactions at which an item gets half its content (the learned gate's start)
    tau: float = Field(50.0, gt=0)
    #: steepness in log degree: above 1 the rarely seen items keep more and the well-known
    #: ones less of their content than the shrinkage schedule (slope 1) gives them
    slope: float = Field(1.0, gt=0)
    #: what is gated: ``content`` (the projected content in the item ego, or the item side of
    #: the content channel) and ``item_graph`` (what the modality kNN graph adds to the item)
    targets: list[Literal["content", "item_graph"]] = Field(
        default_factory=lambda: ["content", "item_graph"], min_length=1
    )
    #: where the content is gated: ``input`` (the item ego, before the user-item graph: users
    #: then see the gated content of their items too) or ``output`` (the ego keeps all content,
    #: so users learn the content taste of every item they consumed; only the item's final
    #: vector has its propagated content part scaled, one more propagation of the content).
    #: The content channel (``propagation.content_path: channel``) is always gated at its output.
    stage: Literal["input", "output"] = "input"


class ContentMixConfig(StrictConfig):
    """The ID-only twin's and the content model's scores mixed by item popularity
    (``crossrec.models.content_mix``, docs/content-gate.md).

    ``popularity``: two models are trained, this one and its twin without content; an item's
    score is ``scale * g(deg) * z_twin + (1 - g(deg)) * z_content``, ``z`` each model's score
    standardised, ``g(deg) = deg ** slope / (deg ** slope + tau ** slope)`` the twin's weight
    (0 for cold items: content only). ``tau``, ``slope``, ``scale`` and the tail ``slots`` are
    chosen on the validation split from the grids below (``crossrec.models.mixed`` trains both
    models and keeps them in one bundle). ``none``: the content model alone.
    """

    kind: Literal["none", "popularity"] = "popularity"
    #: crossover degrees searched: the train interactions at which an item's score is half the
    #: twin's; 0 = the twin for every warm item. The content model alone (g = 0 for every item)
    #: is always a candidate too, so the choice can fall back on either model
    taus: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [0.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 1000.0],
        min_length=1,
    )
    #: steepness of the curve in log degree
    slopes: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [0.5, 1.0, 2.0], min_length=1
    )
    #: the twin's scale against the content model's (``a / b``)
    scales: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [0.5, 1.0, 2.0], min_length=1
    )
    #: how each model's scores are put on one scale: ``user`` (z-score per user over the
    #: catalogue), ``global`` (centred per user, one scale per model), ``none`` (raw scores)
    standardise: Literal["user", "global", "none"] = "user"
    #: what the validation choice maximises (metric@k on the validation split)
    metric: Literal["recall", "ndcg"] = "recall"
    k: int = Field(20, ge=1)
    #: relative shortfall from the best validation value that still counts as as good: among
    #: those points the one best on the tail pairs wins (0: the best overall). The trade the
    #: user accepts on the head-dominated overall metric for the least popular items
    tolerance: float = Field(0.0, ge=0, lt=1)
    #: the tail: this share of the validation pairs, those of the least popular items; the
    #: tail items a slot goes to: the least popular items holding this share of train pairs
    tail_share: float = Field(0.4, gt=0, le=1)
    #: places of the first k given to the content model's best tail items, searched on
    #: validation (0: none); a slot never displaces a head item while another can go
    slots: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: [0, 1, 2], min_length=1
    )
    #: the head: the most popular items holding this share of train pairs (of validation pairs
    #: for the targets rule)
    head_share: float = Field(0.2, gt=0, le=1)
    #: overall: the best validation metric (with tolerance, the tail among near-best points);
    #: targets: the best on the tail among the points that lose at most margin overall and
    #: head_loss on the head against the twin
    choose: Literal["overall", "targets"] = "targets"
    margin: float = Field(0.005, ge=0, lt=1)
    head_loss: float = Field(0.01, ge=0, lt=1)
    #: share of the validation users kept out of both models' early stopping, the choice made
    #: on them alone (0: both on every validation user)
    choice_share: float = Field(0.0, ge=0, lt=1)
    #: the choice ranks the whole catalogue once per grid point for every validation user it
    #: reads: above this many users it reads a seeded sample of them (null: all)
    max_choice_users: int | None = Field(10_000, ge=1)


class ModelConfig(StrictConfig):
    #: 128 with lr 0.01: the point LightGCN's validated grid chose on both shared datasets,
    #: and crossrec's best measured there (docs/findings.md)
    embedding_dim: int = Field(128, ge=2)
    #: learnable user / item ID embeddings (off: items score from content alone)
    use_id_embedding: bool = True
    #: fused modality content in the item tower (off: a pure ID model)
    use_content: bool = True
    init_std: float = Field(0.1, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    #: training-time share of items whose ID embedding is zeroed each step (DropoutNet), so the
    #: content path learns to score items on its own — what cold-start items rely on
    id_dropout: float = Field(0.0, ge=0, lt=1)
    #: VBPR's item biases, one extra score column (user side fixed at 1): ``id_bias`` a learnt
    #: scalar per train item (its popularity; 0 for items without train edges), and
    #: ``content_bias`` a learnt linear score of the item's projected content, which ranks an
    #: item no one has rated yet by how well its content predicts popularity
    id_bias: bool = False
    content_bias: bool = False
    #: how an item's ID embedding and projected content combine: ``shared`` (summed in one
    #: space: a user has one preference vector for both) or ``separate`` (VBPR's layout: the
    #: first half of every vector holds ID factors, the second half the projected content, so a
    #: user has separate ID and content preferences; the L2 term then covers the ID factors
    #: only, as VBPR leaves its content projection unpenalised). With IDs or content alone
    #: there is only one space and this has no effect.
    content_space: Literal["shared", "separate"] = "shared"
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    user_tower: UserTowerConfig = Field(default_factory=UserTowerConfig)
    propagation: PropagationConfig = Field(default_factory=PropagationConfig)
    content_gate: ContentGateConfig = Field(default_factory=ContentGateConfig)
    content_mix: ContentMixConfig = Field(default_factory=ContentMixConfig)


class DataConfig(StrictConfig):
    batch_size: int = Field(4096, ge=1)
    #: other positives of the batch act as negatives
    in_batch_negatives: bool = False
    #: extra sampled negatives per positive
    sampler: Literal["none", "uniform", "popularity"] = "uniform"
    num_negatives: int = Field(16, ge=0)
    #: draw num_negatives once per batch and share them by every example (each distinct item
    #: is then encoded once per step: the LLM strategy's choice)
    shared_negatives: bool = False
    #: popularity sampler: p(item) ~ count ** alpha
    popularity_alpha: float = Field(0.75, ge=0)
    num_workers: int = Field(0, ge=0)
    #: every step propagates over the whole graph, so an epoch costs steps x (graph + catalogue):
    #: with more train pairs than batch_size x this, the batch grows to ceil(pairs / this) (the
    #: LLM strategy's batches stay as set). None = always batch_size. docs/scale.md
    max_steps_per_epoch: int | None = Field(256, ge=1)


class OptimConfig(StrictConfig):
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = Field(1e-2, gt=0)
    #: learning rate of the LLM's trainable parameters (LoRA / partial / full)
    llm_lr: float = Field(5e-5, gt=0)
    #: learning rate of the content projection (fusion and content bias) as a multiple of
    #: ``lr``. The projection is shared by every item, so it fits faster than the per-item ID
    #: rows and early stopping then ends the run before the IDs converge; a smaller rate lets
    #: both converge (docs/findings.md). 1 = one rate for everything. The
    #: llm strategy is not affected (its encoder has ``llm_lr``).
    content_lr_scale: float = Field(0.1, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    gradient_clip_val: float | None = None


class LossConfig(StrictConfig):
    kind: LOSSES.name_field() = "bpr"  # type: ignore[valid-type]
    #: softmax / InfoNCE temperature
    temperature: float = Field(0.2, gt=0)
    #: softmax: score with cosine similarity (recommended with a temperature)
    cosine: bool = False
    #: softmax: subtract log(expected count of each candidate in the sample) from its logit, so
    #: popularity-biased in-batch negatives do not push popular items down (sampled softmax)
    logq_correction: bool = True
    #: L2 penalty on the batch's ego embeddings (LightGCN style), per example
    reg_weight: float = Field(1e-3, ge=0)
    #: weight of the content loss (FREEDOM): the same ranking loss with the items' projected
    #: content alone in place of their final vectors, so the content learns to rank on its own
    content_weight: float = Field(0.1, ge=0)


class TrainerConfig(StrictConfig):
    max_epochs: int = Field(150, ge=1)
    min_epochs: int = Field(0, ge=0)
    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    #: machines in the run (Lightning's num_nodes): each starts the same command with its own
    #: NODE_RANK (or under torchrun / SLURM); more than one needs strategy ddp (docs/scale.md)
    num_nodes: int = Field(1, ge=1)
    #: auto = bf16-mixed on CUDA, 32-true elsewhere
    precision: str = "auto"
    patience: int = Field(8, ge=1)
    monitor: str = "val/recall@20"
    mode: Literal["max", "min"] = "max"
    check_val_every_n_epoch: int = Field(1, ge=1)
    #: continue from run_dir/checkpoints/last.ckpt when it exists, checked against this config
    #: (crossrec.models.resume); false moves old checkpoints to checkpoints/previous-<time>/
    resume: bool = False
    #: None = the project seed (params:seed)
    seed: int | None = None
    deterministic: bool = False
    #: torch intra-op CPU threads: auto = min(4, max(1, usable cores // 2)) (1 on a 2-core
    #: machine, where torch's default of one per core ran 2-20x slower per epoch under load);
    #: an int; None = torch's default
    cpu_threads: Literal["auto"] | Annotated[int, Field(ge=1)] | None = "auto"
    log_every_n_steps: int = Field(10, ge=1)
    #: validation cut-offs (Recall@K, NDCG@K, ...)
    val_ks: list[int] = Field(default_factory=lambda: [10, 20, 50])
    #: validation ranks at most this many validation users (a seeded sample, the same every
    #: epoch); None = every one. A full ranking per user costs the whole catalogue
    val_max_users: int | None = Field(50_000, ge=1)
    limit_train_batches: int | float = 1.0
    fast_dev_run: bool | int = False
    checkpoint_dir: str = "checkpoints"
    log_dir: str = "logs"

    @model_validator(mode="after")
    def _nodes_need_ddp(self) -> TrainerConfig:
        if self.num_nodes > 1 and self.strategy not in ("ddp", "ddp_spawn"):
            raise ValueError(
                f"num_nodes: {self.num_nodes} needs strategy: ddp (got {self.strategy!r})"
            )
        return self

    @field_validator("val_ks")
    @classmethod
    def _positive_ks(cls, ks: list[int]) -> list[int]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError("val_ks must be a non-empty list of positive integers")
        return sorted(set(ks))


class LLMTrainingConfig(StrictConfig):
    """Batch, negatives and validation settings that replace ``data`` / ``trainer``'s when the
    fusion strategy is ``llm``: a step costs one pass of the top LLM layers per distinct item,
    so the frozen path's 4096 x 16 sampled negatives would encode most of the catalogue twice
    per step. Measured in benchmarks/llm_finetune.py and the README's before/after table."""

    batch_size: int = Field(2048, ge=1)
    num_negatives: int = Field(128, ge=0)
    shared_negatives: bool = True
    in_batch_negatives: bool = True
    check_val_every_n_epoch: int = Field(1, ge=1)
    #: steps per epoch (an int) or share of the data (a float): validation (and early stopping)
    #: comes every this many steps instead of after a full pass (38 steps on movielens)
    limit_train_batches: int | float = 4


class TunedFor(StrictConfig):
    """Where a tuned ``finetune:`` block came from (written by the tune pipeline's export).

    Tuned values are chosen on one dataset's validation split; the run checks ``dataset``
    against its own so another dataset's ``--env tuned`` file is never applied silently.
    """

    dataset: str
    study: str
    trial: int
    metric: str
    value: float


class FinetuneConfig(StrictConfig):
    """The whole ``finetune:`` block."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    #: what replaces data/trainer settings when model.fusion.strategy is llm
    llm_training: LLMTrainingConfig = Field(default_factory=LLMTrainingConfig)
    #: where checkpoints and logs go, relative to the project root (pipeline only)
    run_dir: str = "data/06_models/{dataset}/lightning"
    #: set by ``kedro run --pipelines tune`` in conf/tuned (null in base: untuned defaults)
    tuned_for: TunedFor | None = None


def effective_config(config: FinetuneConfig) -> FinetuneConfig:
    """``config`` with ``llm_training`` applied over ``data`` / ``trainer`` when the strategy is
    ``llm`` (what really runs, and what the bundle records); other strategies unchanged."""
    if config.model.fusion.strategy != "llm":
        return config
    llm = config.llm_training
    data = config.data.model_copy(
        update={
            "batch_size": llm.batch_size,
            "num_negatives": llm.num_negatives,
            "shared_negatives": llm.shared_negatives,
            "in_batch_negatives": llm.in_batch_negatives,
            "max_steps_per_epoch": None,  # its steps are bounded by limit_train_batches
        }
    )
    trainer = config.trainer.model_copy(
        update={
            "check_val_every_n_epoch": llm.check_val_every_n_epoch,
            "limit_train_batches": llm.limit_train_batches,
        }
    )
    return config.model_copy(update={"data": data, "trainer": trainer})


#: keys whose schema default changed the behaviour when they were added: what a config stored
#: before them (a checkpoint's, a bundle's) ran with
LEGACY_VALUES: dict = {
    "optim": {"content_lr_scale": 1.0},
    "data": {"max_steps_per_epoch": None},
    "trainer": {"val_max_users": None},
}


def complete_stored_config(stored: dict) -> dict:
    """A finetune config stored by an older crossrec (a checkpoint's or bundle's), with the keys
    added to the schema since: each at the value that reproduces what the older code did
    (``LEGACY_VALUES``), else at the schema default (keys added with their old behaviour as
    default). A resume then does not read a new key as a changed setting, and the extra seeds
    of an older trained model train as it did."""
    base = deep_merge(FinetuneConfig().model_dump(mode="json"), LEGACY_VALUES)
    return deep_merge(base, stored)


def check_content_options(
    config: ModelConfig, cosine: bool, has_content: bool, late_content: bool
) -> None:
    """Model options that need content in the item ego (concat, gated or attention fusion):
    the llm strategy adds its content late, per item, and a cosine score normalises a bias
    column away. Fails naming the keys before any weight is built."""
    early = has_content and not late_content
    late = "the llm strategy adds its content late, per item"
    if config.propagation.content_path == "channel" and has_content and late_content:
        raise ValueError(
            "model.propagation.content_path channel needs early content (concat, gated or "
            f"attention fusion); {late}"
        )
    if config.id_bias or config.content_bias:
        if cosine:
            raise ValueError(
                "model.id_bias / model.content_bias add a score column, which a cosine score "
                "(loss.cosine) would normalise away: turn the biases or loss.cosine off"
            )
        if config.id_bias and not config.use_id_embedding:
            raise ValueError("model.id_bias needs model.use_id_embedding: true")
        if config.content_bias and not early:
            raise ValueError(
                "model.content_bias needs early content (use_content: true with concat, gated "
                f"or attention fusion); {late}"
            )
    separate = config.content_space == "separate" and config.use_id_embedding and has_content
    if separate and (late_content or config.propagation.content_path == "channel"):
        raise ValueError(
            "model.content_space separate needs content in the item ego (concat, gated or "
            "attention fusion with propagation.content_path ego); the llm strategy and the "
            "content channel add their content to the final vectors"
        )
