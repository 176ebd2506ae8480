"""docs/architecture.md "How to add an adapter", executed: the JSON-lines adapter below is
registered exactly as the docs show, named in an ``ingest`` block and run through ingest."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crossrec.config import StrictConfig, parse_params
from crossrec.data.adapters.base import build_interactions, empty_media, register
from crossrec.data.raw import RawData

# -------------------------------------------------------------- docs: "How to add an adapter"


class JsonlOptions(StrictConfig):
    file: str = "interactions.jsonl"


@register("jsonl")
def read_jsonl(name, folder, options):
    """One JSON object per line: {"user": .., "item": .., "ts": ..}; items = the interacted ids."""
    where = f"conf/base/parameters_ingest.yml: ingest.datasets.{name}.options"
    opts = parse_params(JsonlOptions, dict(options), where)
    path = folder / opts.file
    frame = pd.read_json(path, lines=True, dtype=False)
    interactions = build_interactions(frame, path, user="user", item="item", timestamp="ts")
    ids = interactions["item_id"].drop_duplicates().to_numpy()
    items = pd.DataFrame(
        {"item_id": ids, "image_path": empty_media(len(ids)), "audio_path": empty_media(len(ids))}
    )
    return RawData(
        name,
        interactions,
        items,
        text_columns=[],
        files={"interactions": str(path)},
        has_timestamps=True,
        id_columns={"user": "user", "item": "item"},
    )


# ---------------------------------------------------------------------------------- the tests
def _jsonl_dataset(synthetic_dataset_dir: Path, root: Path) -> Path:
    folder = root / "shop"
    folder.mkdir()
    table = pd.read_csv(synthetic_dataset_dir / "interactions.csv")
    table = table.rename(columns={"timestamp": "ts"})[["user", "item", "ts"]]
    table.to_json(folder / "interactions.jsonl", orient="records", lines=True)
    return folder


def test_registered_adapter_ingests_by_name(synthetic_dataset_dir, tmp_path) -> None:
    from crossrec.data.synthetic import synthetic_ingest_params
    from crossrec.pipelines.ingest.nodes import ingest_in_memory

    folder = _jsonl_dataset(synthetic_dataset_dir, tmp_path)
    params = synthetic_ingest_params(folder)
    params["datasets"] = {"shop": {"adapter": "jsonl", "options": {"file": "interactions.jsonl"}}}
    out = ingest_in_memory(params, "shop", seed=0)
    generic = ingest_in_memory(
        synthetic_ingest_params(synthetic_dataset_dir), synthetic_dataset_dir.name, seed=0
    )
    assert out["dataset_info"]["n_interactions"] == generic["dataset_info"]["n_interactions"]
    assert out["dataset_info"]["has_timestamps"] and not out["dataset_info"]["has_images"]
    assert set(out["interactions"]["split"]) == {"train", "valid", "test"}


def test_adapter_options_are_strict(synthetic_dataset_dir, tmp_path) -> None:
    folder = _jsonl_dataset(synthetic_dataset_dir, tmp_path)
    with pytest.raises(ValueError, match="fiel"):
        read_jsonl("shop", folder, {"fiel": "interactions.jsonl"})
