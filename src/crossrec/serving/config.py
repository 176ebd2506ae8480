"""Schema of the ``recommend`` parameters block (conf/base/parameters_recommend.yml), shared by
the recommend pipeline and ``crossrec serve``. Defaults equal the YAML."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crossrec.config import StrictConfig, parse_params, where
from crossrec.words.config import TowerConfig

WHERE = where("recommend")

#: the catalog artifacts a served model is rebuilt from (crossrec.serving.model.Artifacts);
#: the last two are optional (the llm strategy needs item_texts; metrics feed the model card)
ARTIFACTS = (
    "trained_model",
    "interactions",
    "items",
    "users",
    "dataset_info",
    "fused_item_features",
    "modality_graphs",
    "user_item_graph",
    "item_texts",
    "word_requests",
    "metrics",
)
OPTIONAL_ARTIFACTS = ("item_texts", "word_requests", "metrics")


class AnnConfig(StrictConfig):
    #: catalogues with at least this many items are searched with the ANN index, smaller ones
    #: exactly (exact top-K over 1M items x 64 dims took ~60-95 ms per query here)
    min_items: int = Field(100_000, ge=1)
    #: ivf: faiss IVF-Flat (fast to build); hnsw: faiss HNSW graph (slow to build on few cores);
    #: auto: IVF when it reaches recall_target at nprobe, else whichever of IVF and HNSW answers
    #: the recall sample faster at the target
    kind: Literal["auto", "ivf", "hnsw"] = "auto"
    #: IVF cells (None = 4 * sqrt(n_items), at most 4096) and cells searched per query
    ivf_lists: int | None = Field(None, ge=1)
    nprobe: int = Field(16, ge=1)
    #: faiss HNSW graph degree and search breadth (higher = better recall, slower)
    hnsw_m: int = Field(16, ge=4)
    ef_construction: int = Field(40, ge=8)
    ef_search: int = Field(128, ge=8)
    #: at build time, nprobe / efSearch double while the index's recall@recall_k against exact
    #: search, on a seeded sample of recall_queries users, is below recall_target (at most
    #: max_widenings times; 0 = measure nothing)
    recall_target: float = Field(0.95, ge=0, le=1)
    recall_queries: int = Field(1000, ge=1)
    recall_k: int = Field(20, ge=1)
    max_widenings: int = Field(4, ge=0)


class FoldInConfig(StrictConfig):
    #: solve: fit the user vector to the liked items (softmax likelihood + L2, a few LBFGS
    #: steps, started at their mean); mean: the mean of the liked items' vectors
    method: Literal["solve", "mean"] = "solve"
    steps: int = Field(20, ge=1)
    l2: float = Field(0.1, ge=0)
    max_liked: int = Field(500, ge=1)


class UploadConfig(StrictConfig):
    #: largest accepted file per upload field
    max_bytes: int = Field(10_000_000, ge=1)
    #: decoded image size limit (a small file can decode to a huge image: decompression bomb)
    max_image_pixels: int = Field(40_000_000, ge=1)
    max_text_chars: int = Field(5000, ge=1)


class ServeWordsConfig(StrictConfig):
    """Requests in words (``q=`` / ``query``): the encoder, the tower fitted on first use."""

    #: encodes the words and the item text (zoo name or folder, e.g. a fine-tuned encoder)
    encoder: str = "minilm-l6"
    max_tokens: int = Field(128, ge=8)
    #: longest request text accepted
    max_chars: int = Field(500, ge=1)
    tower: TowerConfig = Field(default_factory=TowerConfig)
    blend_step: float = Field(0.1, gt=0.0, le=0.5)
    seed: int = 0
    #: fit the words model when the server loads a model, in the background
    fit_on_start: bool = True


class RecommendConfig(StrictConfig):
    #: recommendations per user written by the recommend pipeline
    top_k: int = Field(20, ge=1)
    #: similar items per item (by the model's item vectors and by each modality)
    similar_k: int = Field(10, ge=1)
    #: users scored per chunk (None = from the evaluation code's 256 MiB budget)
    chunk_users: int | None = Field(None, ge=1)
    #: largest k a request may ask for
    max_k: int = Field(100, ge=1)
    #: a new item "reaches" a user when it would enter that user's top reach_k
    reach_k: int = Field(20, ge=1)
    ann: AnnConfig = Field(default_factory=AnnConfig)
    fold_in: FoldInConfig = Field(default_factory=FoldInConfig)
    upload: UploadConfig = Field(default_factory=UploadConfig)
    #: text model for explanations written on request (zoo name or folder)
    explain_llm: str = "smollm2-135m-instruct"
    words: ServeWordsConfig = Field(default_factory=ServeWordsConfig)


def parse_recommend_config(params: dict | RecommendConfig | None) -> RecommendConfig:
    if isinstance(params, RecommendConfig):
        return params
    return parse_params(RecommendConfig, dict(params or {}), where=WHERE)
