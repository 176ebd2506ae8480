"""Schema of ``conf/base/parameters_fuse.yml: fuse`` (validated at the pipeline edge)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from crossrec.config import StrictConfig, parse_params, where

WHERE = where("fuse")


class KnnConfig(StrictConfig):
    k: int = Field(10, ge=1)
    k_per_modality: dict[str, int] = Field(default_factory=dict)
    weighting: Literal["binary", "cosine"] = "binary"
    chunk_rows: int | None = Field(None, ge=1, description="rows scored at once; None = ~128 MiB")
    device: str = Field("auto", description="auto = CUDA when present, else CPU; or cpu / cuda:N")


class FuseConfig(StrictConfig):
    modalities: list[str] | None = None
    knn: KnnConfig = Field(default_factory=KnnConfig)


def parse_fuse_params(params: dict[str, Any] | FuseConfig) -> FuseConfig:
    return parse_params(FuseConfig, params, where=WHERE)
