"""Schema of ``conf/base/parameters_refresh.yml: refresh``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from crossrec.config import StrictConfig, parse_params, where

WHERE = where("refresh")


class IncrementsConfig(StrictConfig):
    """Where increments live and the rules of :mod:`crossrec.data.increments`."""

    #: folder under <raw root>/<dataset>/ holding one sub-folder per increment
    folder: str = "increments"
    duplicates: Literal["error", "skip"] = "error"
    older_than_seen: Literal["error", "accept"] = "error"
    #: share of each increment's interactions labelled ``valid`` (seeded per increment)
    valid_share: float = Field(0.1, ge=0.0, lt=1.0)


class RefreshConfig(StrictConfig):
    """The whole ``refresh:`` block."""

    increments: IncrementsConfig = Field(default_factory=IncrementsConfig)
    #: a new user's ID vector: mean of their items' vectors (history) or a random init
    new_users: Literal["history", "random"] = "history"
    #: fine-tuning epochs from the warm start (bounded: a refresh is not a retrain); the
    #: epoch best on validation is kept
    epochs: int = Field(5, ge=1)
    #: stop once validation has not improved for this many epochs (None: run all ``epochs``)
    patience: int | None = Field(None, ge=1)
    #: validation rows that pick the best epoch (and stop early): ``all`` (the whole valid
    #: split) or ``new`` (only the new increments' valid rows: the recent data to follow)
    validate_on: Literal["all", "new"] = "all"
    #: learning rate of the fine-tuning; None = the trained model's own
    lr: float | None = Field(None, gt=0)
    #: checkpoints and logs of the fine-tuning ({dataset} is filled in)
    run_dir: str = "data/06_models/{dataset}/refresh"
    #: cut-offs of the refresh report
    ks: list[int] = Field(default_factory=lambda: [20])


def parse_refresh_params(params: dict[str, Any] | RefreshConfig) -> RefreshConfig:
    return parse_params(RefreshConfig, params, WHERE)
