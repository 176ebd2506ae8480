"""Schema of ``conf/base/parameters_ingest.yml: ingest`` (validated at the pipeline edge)."""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from crossrec.config import StrictConfig, deep_merge, parse_params, where
from crossrec.data.errors import UnknownDatasetError
from crossrec.data.users import UsersConfig
from crossrec.data.words import WordsConfig

WHERE = where("ingest")


class ImplicitConfig(StrictConfig):
    """Explicit ratings -> implicit positives.

    ``min_rating: null`` (default) keeps every rating as a positive: this is the protocol of the
    MMRec papers and of our Cornac anchors (docs/../shared/notes/anchors.md), so our numbers are
    comparable with theirs. Set e.g. ``min_rating: 4`` to keep only liked items.
    """

    min_rating: float | None = None


class ValidationConfig(StrictConfig):
    """What to do with imperfect rows; every drop is logged with its count, never silent."""

    duplicate_interactions: Literal["error", "keep_first"] = "keep_first"
    unknown_items: Literal["error", "drop", "keep"] = "error"
    drop_items_without_interactions: bool = True


class MediaConfig(StrictConfig):
    """Media files are opened (PIL verify / full audio decode) on a thread pool.

    ``max_bad_share`` is the one bad-media budget of a run: featurize adds the files its
    encoders cannot decode to ingest's report and checks this share on the union.
    ``allow_outside_dataset`` false confines media paths (symlinks resolved) to the dataset
    folder, so a ``../`` or absolute path cannot pull in another dataset's file.
    """

    check: bool = True
    max_bad_share: float = Field(0.05, ge=0.0, le=1.0)
    workers: int = Field(8, ge=1)
    allow_outside_dataset: bool = False


class KCoreConfig(StrictConfig):
    """Iterated k-core: drop users / items with fewer interactions until nothing changes."""

    user_min: int = Field(0, ge=0)
    item_min: int = Field(0, ge=0)


class ColdItemsConfig(StrictConfig):
    """Cold-start holdout: ``share`` of items whose interactions all go to valid/test.

    A published split (``strategy: published``, or ``auto`` on data that ships one) is reproduced
    exactly: the holdout is applied to it only with ``apply_to_published: true``, and then the
    run logs a warning and records ``published_split_altered: true`` in dataset_info.
    """

    share: float = Field(0.05, ge=0.0, lt=1.0)
    valid_fraction: float = Field(0.5, ge=0.0, le=1.0)
    apply_to_published: bool = False


class ColdUsersConfig(StrictConfig):
    """User cold-start holdout: ``share`` of users whose whole history goes to valid / test
    (whole users: ``valid_fraction`` of them to valid, the rest to test), so lists for them can
    only come from who they are (user attributes) or what they say (words). Evaluate reports
    them apart (``cold_users``); the other slices leave them out. Like the item holdout, it is
    applied to a published split only with ``apply_to_published: true``."""

    share: float = Field(0.0, ge=0.0, lt=1.0)
    valid_fraction: float = Field(0.5, ge=0.0, le=1.0)
    apply_to_published: bool = False


class SplitConfig(StrictConfig):
    """Split strategy; ``auto`` = ``published`` when the data ships one, else ``random``."""

    strategy: Literal["auto", "random", "leave_last_out", "temporal", "published"] = "auto"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    min_user_interactions: int = Field(3, ge=1)
    cold_items: ColdItemsConfig = ColdItemsConfig()
    cold_users: ColdUsersConfig = ColdUsersConfig()

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r < 0 for r in value) or abs(sum(value) - 1.0) > 1e-6 or value[0] <= 0:
            raise ValueError("ratios must be three non-negative numbers (train>0) summing to 1")
        return value


class DatasetSpec(StrictConfig):
    """One dataset: its adapter, the adapter's options, and optional per-dataset overrides."""

    adapter: str
    options: dict[str, Any] = Field(default_factory=dict)
    implicit: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    media: dict[str, Any] | None = None
    kcore: dict[str, Any] | None = None
    split: dict[str, Any] | None = None
    download: dict[str, Any] | None = None
    #: full blocks (not overrides of a global one): checked with the rest of the parameters
    words: WordsConfig | None = None
    users: UsersConfig | None = None

    @field_validator("adapter")
    @classmethod
    def _registered(cls, name: str) -> str:
        from crossrec.data.adapters.base import ADAPTERS

        return ADAPTERS.check(name)


class IngestConfig(StrictConfig):
    raw_root: str = "data/01_raw"
    datasets: dict[str, DatasetSpec]
    implicit: ImplicitConfig = ImplicitConfig()
    validation: ValidationConfig = ValidationConfig()
    media: MediaConfig = MediaConfig()
    kcore: KCoreConfig = KCoreConfig()
    split: SplitConfig = SplitConfig()

    @model_validator(mode="after")
    def _has_datasets(self) -> IngestConfig:
        if not self.datasets:
            raise ValueError("declare at least one dataset under `datasets`")
        return self

    def resolve(self, dataset: str) -> ResolvedDataset:
        """Settings for one dataset: global blocks with the dataset's overrides merged in."""
        if dataset not in self.datasets:
            raise UnknownDatasetError(unknown_dataset_message(dataset, list(self.datasets)))
        spec = self.datasets[dataset]
        where = f"{WHERE}.datasets.{dataset}"

        def merged(block: str, schema: type[StrictConfig]) -> Any:
            base = getattr(self, block).model_dump()
            override = getattr(spec, block) or {}
            return parse_params(schema, deep_merge(base, override), f"{where}.{block}")

        return ResolvedDataset(
            name=dataset,
            adapter=spec.adapter,
            options=dict(spec.options),
            download=spec.download,
            implicit=merged("implicit", ImplicitConfig),
            validation=merged("validation", ValidationConfig),
            media=merged("media", MediaConfig),
            kcore=merged("kcore", KCoreConfig),
            split=merged("split", SplitConfig),
            words=spec.words,
            users=spec.users,
        )


def unknown_dataset_message(dataset: str, declared: list[str]) -> str:
    """Name the declared datasets and the closest one: a typo is the usual cause. The
    datasets can come from any configuration environment, so no single file is named."""
    close = difflib.get_close_matches(dataset, declared, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"Unknown dataset {dataset!r}.{hint} The ingest parameters (ingest.datasets in "
        f"parameters_ingest*.yml of conf/base, conf/local or the run's --env) declare "
        f"{sorted(declared)}. Add an entry there or pick one of these with "
        "`kedro run --params dataset=<name>`."
    )


class ResolvedDataset(StrictConfig):
    name: str
    adapter: str
    options: dict[str, Any]
    download: dict[str, Any] | None = None
    implicit: ImplicitConfig
    validation: ValidationConfig
    media: MediaConfig
    kcore: KCoreConfig
    split: SplitConfig
    words: WordsConfig | None = None
    users: UsersConfig | None = None


def parse_ingest_params(params: dict[str, Any] | IngestConfig) -> IngestConfig:
    return parse_params(IngestConfig, params, WHERE)
