"""Schema of ``conf/base/parameters_fuse.yml: fuse`` (validated at the pipeline edge)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from crossrec.config import StrictConfig, parse_params, where

WHERE = where("fuse")


class ApproximateKnnConfig(StrictConfig):
    """faiss index of ``search: approximate`` (crossrec.graphs.ann.AnnSettings)."""

    index: Literal["hnsw", "ivf"] = "hnsw"
    hnsw_m: int = Field(16, ge=2, le=256, description="links per node")
    hnsw_ef_construction: int = Field(80, ge=1, description="candidates when inserting")
    hnsw_ef_search: int = Field(64, ge=1, description="candidates when querying")
    ivf_nlist: int | None = Field(None, ge=1, description="cells; None = 4 sqrt(n_items)")
    ivf_nprobe: int = Field(16, ge=1, description="cells scanned per query")
    batch_rows: int = Field(16384, ge=1, description="items added / queried at once")
    recall_sample: int = Field(1000, ge=0, description="items whose recall@k is measured")
    recall_target: float = Field(
        0.9, ge=0, le=1, description="sampled recall@k the search widens to reach; 0 = never"
    )
    max_widenings: int = Field(3, ge=0, description="doublings of efSearch / nprobe at most")
    seed: int = Field(0, ge=0, description="recall sample and IVF k-means")


class KnnConfig(StrictConfig):
    k: int = Field(10, ge=1)
    k_per_modality: dict[str, int] = Field(default_factory=dict)
    weighting: Literal["binary", "cosine"] = "binary"
    chunk_rows: int | None = Field(None, ge=1, description="rows scored at once; None = ~128 MiB")
    device: str = Field("auto", description="auto = CUDA when present, else CPU; or cpu / cuda:N")
    search: Literal["auto", "exact", "approximate"] = "auto"
    approximate_above: int = Field(50_000, ge=0, description="usable items; auto above it")
    approximate: ApproximateKnnConfig = Field(default_factory=ApproximateKnnConfig)
    ties: Literal["popular", "index"] = Field(
        "popular",
        description="equally similar neighbours: more train interactions first, or lower index",
    )


class FuseConfig(StrictConfig):
    modalities: list[str] | None = None
    knn: KnnConfig = Field(default_factory=KnnConfig)


def parse_fuse_params(params: dict[str, Any] | FuseConfig) -> FuseConfig:
    return parse_params(FuseConfig, params, where=WHERE)
