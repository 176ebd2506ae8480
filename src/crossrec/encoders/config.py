"""Schema of ``conf/base/parameters_featurize_modalities.yml: featurize_modalities``.

Modalities are switched on by what the data has (``enabled: auto`` reads ``dataset_info``:
``text_columns``, ``has_images``, ``has_audio``, ``attribute_columns``, ``precomputed``), so
one parameters file serves every dataset; ``true`` insists (and fails clearly when the data
lacks it), ``false`` skips.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from crossrec.config import StrictConfig, parse_params, where
from crossrec.encoders.text import DEFAULT_PROMPT

WHERE = where("featurize_modalities")
Enabled = Literal["auto", True, False]


class TextConfig(StrictConfig):
    enabled: Enabled = "auto"
    model: str = "smollm2-135m-instruct"
    pooling: Literal["mean", "last", "prompt"] = "mean"
    prompt: str = DEFAULT_PROMPT
    #: Tried in order; the first whose fields are all text columns of the dataset is used.
    #: None fit -> "<Column>: <value>" for every text column (a single column: its value).
    templates: list[str] = Field(
        default_factory=lambda: ["{title}. Genres: {genres}. {overview}", "{title}. {overview}"]
    )
    max_tokens: int = Field(128, ge=8)
    batch_size: int = Field(32, ge=1)
    normalize: bool = False


class ImageConfig(StrictConfig):
    enabled: Enabled = "auto"
    model: str = "efficientnet-lite0"
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0)


class AudioConfig(StrictConfig):
    enabled: Enabled = "auto"
    kind: Literal["mel", "whisper"] = "mel"
    model: str = "whisper-tiny"
    sample_rate: int = Field(16000, ge=1000)
    max_seconds: float = Field(30.0, gt=0)
    n_mels: int = Field(64, ge=8)
    n_mfcc: int = Field(20, ge=2)
    batch_size: int = Field(16, ge=1)
    num_workers: int = Field(2, ge=0)


class AttributesConfig(StrictConfig):
    """Structured columns (``dataset_info.attribute_columns``) encoded without a model
    (``crossrec.encoders.attributes``)."""

    enabled: Enabled = "auto"
    #: a categorical value becomes a dimension when at least this many items have it
    min_count: int = Field(2, ge=1)
    #: Gaussian bumps per numeric column, at quantiles of its values
    numeric_bins: int = Field(16, ge=2)


class PrecomputedConfig(StrictConfig):
    """Which dataset-shipped matrices become modalities (glob patterns on their names)."""

    include: list[str] = Field(default_factory=lambda: ["*"])
    exclude: list[str] = Field(default_factory=list)


class ItemShardConfig(StrictConfig):
    """This machine's share of the catalogue: items ``[index * n // count, (index + 1) * n //
    count)`` by position. A run with ``count`` > 1 fills the embedding cache only (docs/scale.md,
    "Past one machine")."""

    index: int = Field(0, ge=0)
    count: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _index_below_count(self) -> ItemShardConfig:
        if self.index >= self.count:
            raise ValueError(f"index {self.index} must be below count {self.count}")
        return self


class FeaturizeConfig(StrictConfig):
    device: str = "auto"
    bf16: bool = True
    shard_size: int = Field(512, ge=1)
    items: ItemShardConfig = Field(default_factory=ItemShardConfig)
    text: TextConfig = Field(default_factory=TextConfig)
    image: ImageConfig = Field(default_factory=ImageConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    attributes: AttributesConfig = Field(default_factory=AttributesConfig)
    precomputed: PrecomputedConfig = Field(default_factory=PrecomputedConfig)


def parse_featurize_params(params: dict[str, Any] | FeaturizeConfig) -> FeaturizeConfig:
    return parse_params(FeaturizeConfig, params, where=WHERE)


def is_enabled(setting: Enabled, available: bool, what: str) -> bool:
    """Resolve ``auto``; ``true`` on data without the modality is a configuration error."""
    if setting == "auto":
        return available
    if setting and not available:
        raise ValueError(
            f"{WHERE}: {what}.enabled is true but the dataset has no {what} input "
            "(dataset_info says so)"
        )
    return bool(setting)
