"""The ingest pipeline: wiring, catalog/params files, node behaviour end to end."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from crossrec.data.config import IngestConfig
from crossrec.data.errors import DatasetNotFoundError, DataValidationError
from crossrec.data.summary import format_summary
from crossrec.data.synthetic import make_synthetic_dataset, synthetic_ingest_params
from crossrec.pipelines.ingest import create_pipeline
from crossrec.pipelines.ingest.nodes import ingest_in_memory, load_raw_dataset

CONF = Path(__file__).resolve().parents[3] / "conf" / "base"
ARTIFACTS = [
    "interactions",
    "items",
    "users",
    "dataset_info",
    "precomputed_features",
    "media_report",
    "data_summary",
    "word_requests",
]


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_catalog_declares_every_artifact_per_dataset():
    catalog = yaml.safe_load((CONF / "catalog_ingest.yml").read_text())
    outputs = create_pipeline().all_outputs()
    assert set(ARTIFACTS) <= outputs
    for name in ARTIFACTS:
        path = catalog[name]["filepath"]
        assert "${_dataset}" in path  # conf/base/catalog.yml: the run's dataset
    for name in ("media_report", "data_summary"):
        assert catalog[name]["filepath"].startswith("data/08_reporting/")
    # the in-memory hand-offs between nodes are matched by the ingest_{stage} pattern
    assert {o for o in outputs if o not in ARTIFACTS} <= {
        "ingest_raw",
        "ingest_clean",
        "ingest_filtered",
        "ingest_checked",
        "ingest_indexed_interactions",
        "ingest_indexed_items",
        "ingest_meta",
        "ingest_split_items",
        "ingest_indexed_users",
    }


def test_parameters_file_is_valid():
    params = yaml.safe_load((CONF / "parameters_ingest.yml").read_text())["ingest"]
    params["raw_root"] = "data/01_raw"  # an OmegaConf interpolation in the file
    config = IngestConfig.model_validate(params)
    assert {"movielens100k_multimodal", "lastfm2k_multimodal"} <= set(config.datasets)
    assert config.resolve("lastfm2k_multimodal").adapter == "mmrec"


def test_missing_dataset_folder_explains_how_to_provide_it(tmp_path):
    params = synthetic_ingest_params(tmp_path / "absent")
    with pytest.raises(DatasetNotFoundError) as err:
        load_raw_dataset(params, "absent")
    message = str(err.value)
    assert "'absent' not found" in message and str(tmp_path / "absent") in message
    assert "CROSSREC_DATA_DIR" in message and "data/01_raw/absent/" in message


def test_undeclared_dataset_lists_the_declared_ones(tmp_path):
    with pytest.raises(KeyError, match=r"Unknown dataset 'nope'.*\['synthetic'\]"):
        load_raw_dataset(synthetic_ingest_params(tmp_path / "synthetic"), "nope")


def test_kedro_runner_matches_in_memory(synthetic_dataset_dir):
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    class Kept(MemoryDataset):
        """Keeps its data after the run (the runner releases intermediate datasets)."""

        def _release(self) -> None:
            pass

    params = synthetic_ingest_params(synthetic_dataset_dir)
    name = synthetic_dataset_dir.name
    catalog = DataCatalog(datasets={n: Kept() for n in ARTIFACTS})
    catalog["params:ingest"] = params
    catalog["params:dataset"] = name
    catalog["params:seed"] = 11
    SequentialRunner().run(create_pipeline(), catalog)
    expected = ingest_in_memory(params, name, seed=11)
    pd.testing.assert_frame_equal(catalog.load("interactions"), expected["interactions"])
    pd.testing.assert_frame_equal(catalog.load("items"), expected["items"])
    assert catalog.load("dataset_info") == expected["dataset_info"]
    assert catalog.load("data_summary") == expected["data_summary"]


def test_rerun_gives_byte_identical_tables(synthetic_dataset_dir, synthetic_ingested):
    params = synthetic_ingest_params(synthetic_dataset_dir)
    again = ingest_in_memory(params, synthetic_dataset_dir.name, seed=0)
    for name in ("interactions", "items", "users"):
        assert _parquet_bytes(again[name]) == _parquet_bytes(synthetic_ingested[name])
    other = ingest_in_memory(params, synthetic_dataset_dir.name, seed=1)
    assert not other["interactions"]["split"].equals(synthetic_ingested["interactions"]["split"])


def test_contract_of_synthetic_outputs(synthetic_ingested):
    inter = synthetic_ingested["interactions"]
    keys = inter[["user_idx", "timestamp", "item_idx"]].to_numpy()
    assert (np.lexsort(keys.T[::-1]) == np.arange(len(inter))).all()  # sorted as documented
    assert not inter.duplicated(["user_idx", "item_idx"]).any()
    info = synthetic_ingested["dataset_info"]
    assert set(info) == {
        "name",
        "n_users",
        "n_items",
        "n_interactions",
        "text_columns",
        "attribute_columns",
        "has_images",
        "has_audio",
        "has_timestamps",
        "precomputed",
        "split_strategy",
        "published_split_altered",
        "n_cold_users",
    }
    assert info["published_split_altered"] is False
    assert info["attribute_columns"] == {}  # the synthetic adapter declares none
    summary = synthetic_ingested["data_summary"]
    assert summary["interactions"] == sum(s["interactions"] for s in summary["splits"].values())
    assert summary["modality_coverage"]["image"] == 1.0
    assert max(len(line) for line in format_summary(summary).splitlines()) <= 36


def test_implicit_rule_kcore_and_cold_items(synthetic_dataset_dir):
    params = synthetic_ingest_params(
        synthetic_dataset_dir,
        implicit={"min_rating": 4},
        kcore={"user_min": 5, "item_min": 5},
        split={"strategy": "random", "cold_items": {"share": 0.2}},
    )
    out = ingest_in_memory(params, synthetic_dataset_dir.name, seed=0)
    inter, items = out["interactions"], out["items"]
    assert (inter["rating"] >= 4).all()
    assert inter.groupby("user_idx").size().min() >= 5
    assert inter.groupby("item_idx").size().min() >= 5
    cold = items.loc[items["is_cold"], "item_idx"]
    assert len(cold) == round(0.2 * len(items))
    assert not inter[inter["item_idx"].isin(cold)]["split"].eq("train").any()
    assert out["dataset_info"]["split_strategy"] == "random+cold_items"
    assert out["data_summary"]["cold_items"] == len(cold)


def test_leave_last_out_on_synthetic(synthetic_dataset_dir):
    params = synthetic_ingest_params(synthetic_dataset_dir, split={"strategy": "leave_last_out"})
    inter = ingest_in_memory(params, synthetic_dataset_dir.name, seed=0)["interactions"]
    last = inter.groupby("user_idx").tail(1)  # rows are sorted by time within a user
    assert (last["split"] == "test").all()


def _broken_copy(tmp_path, seed=1) -> Path:
    return make_synthetic_dataset(
        tmp_path / "syn", n_users=12, n_items=12, seed=seed, with_audio=False
    )


def test_duplicate_interactions_policy(tmp_path, caplog):
    folder = _broken_copy(tmp_path)
    lines = (folder / "interactions.csv").read_text().splitlines()
    (folder / "interactions.csv").write_text("\n".join([*lines, lines[3]]) + "\n")
    params = synthetic_ingest_params(folder)
    out = ingest_in_memory(params, "syn", seed=0)
    assert out["dataset_info"]["n_interactions"] == len(lines) - 1
    assert "dropped 1 duplicate" in caplog.text
    strict = synthetic_ingest_params(folder, validation={"duplicate_interactions": "error"})
    with pytest.raises(
        DataValidationError,
        match=rf"interactions\.csv, row {len(lines)}: "
        r"duplicate interaction",
    ):
        ingest_in_memory(strict, "syn", seed=0)


def test_interaction_with_unknown_item(tmp_path):
    folder = _broken_copy(tmp_path)
    with open(folder / "interactions.csv", "a") as fh:
        fh.write("user000,ghost,5,1600000000\n")
    with pytest.raises(
        DataValidationError,
        match=r"interactions\.csv, row \d+, column 'item': "
        r"item 'ghost' is not in the item table",
    ):
        ingest_in_memory(synthetic_ingest_params(folder), "syn", seed=0)


def test_broken_media_reported_or_fatal(tmp_path):
    folder = _broken_copy(tmp_path)
    (folder / "images" / "item003.png").write_bytes(b"\x89PNG garbage")
    out = ingest_in_memory(
        synthetic_ingest_params(folder, media={"max_bad_share": 0.1}), "syn", seed=0
    )
    report = out["media_report"]
    assert [(r["item_id"], r["modality"]) for r in report] == [("item003", "image")]
    row = out["items"].set_index("item_id").loc["item003"]
    assert row["image_path"] is None and row["title"]  # keeps its text
    (folder / "images" / "item004.png").unlink()
    with pytest.raises(DataValidationError, match=r"items\.csv, column 'image_path': 2 of 12 "
                                                  r"image files \(16\.7%\) are unusable"):
        ingest_in_memory(synthetic_ingest_params(folder, media={"max_bad_share": 0.1}), "syn",
                         seed=0)


def test_truncated_wav_is_reported_not_encoded_as_a_short_clip(tmp_path):
    folder = make_synthetic_dataset(tmp_path / "syn", n_users=12, n_items=12, seed=1,
                                    with_images=False)
    wav = folder / "audio" / "item005.wav"
    data = wav.read_bytes()
    assert len(data) == 44 + 2 * 4000  # 0.5 s of 16-bit mono at 8 kHz
    wav.write_bytes(data[: 44 + 2 * 100])  # the header still says 4000 frames
    out = ingest_in_memory(synthetic_ingest_params(folder, media={"max_bad_share": 0.1}), "syn",
                           seed=0)
    assert out["media_report"] == [{
        "stage": "ingest", "item_id": "item005", "modality": "audio", "path": str(wav),
        "reason": "truncated: header says 4000 frames, file holds 100"}]
    assert out["items"].set_index("item_id").loc["item005", "audio_path"] is None
    with pytest.raises(DataValidationError, match=r"1 of 12 audio files \(8\.3%\).*\n"
                                                  r"  \[ingest\] item item005: .*truncated"):
        ingest_in_memory(synthetic_ingest_params(folder), "syn", seed=0)


def _point_images_outside(folder: Path) -> tuple[Path, Path]:
    """item002 -> ../<other dataset>/x.png, item003 -> an absolute path to it (both exist)."""
    other = folder.parent / "other_dataset"
    other.mkdir()
    foreign = other / "x.png"
    foreign.write_bytes((folder / "images" / "item001.png").read_bytes())
    items = pd.read_csv(folder / "items.csv", dtype=str, keep_default_na=False)
    items.loc[items["item"] == "item002", "image_path"] = "../other_dataset/x.png"
    items.loc[items["item"] == "item003", "image_path"] = str(foreign)
    items.to_csv(folder / "items.csv", index=False)
    return foreign, folder.resolve()


def test_media_outside_the_dataset_folder_is_reported_unless_allowed(tmp_path):
    folder = _broken_copy(tmp_path)
    foreign, root = _point_images_outside(folder)
    lenient = {"max_bad_share": 0.2}
    out = ingest_in_memory(synthetic_ingest_params(folder, media=lenient), "syn", seed=0)
    reason = f"outside the dataset folder {root}"
    assert [(r["item_id"], r["path"], r["reason"]) for r in out["media_report"]] == [
        ("item002", str(foreign.resolve()), reason), ("item003", str(foreign.resolve()), reason)]
    items = out["items"].set_index("item_id")
    assert items.loc["item002", "image_path"] is None and items.loc["item003", "title"]
    # counts against the one budget: 2 of 12 > 5%
    with pytest.raises(DataValidationError, match=r"2 of 12 image files .*outside the dataset"):
        ingest_in_memory(synthetic_ingest_params(folder), "syn", seed=0)
    # confined even when files are not opened
    unopened = ingest_in_memory(
        synthetic_ingest_params(folder, media={**lenient, "check": False}), "syn", seed=0)
    assert [r["item_id"] for r in unopened["media_report"]] == ["item002", "item003"]
    allowed = ingest_in_memory(
        synthetic_ingest_params(folder, media={"allow_outside_dataset": True}), "syn", seed=0)
    assert allowed["media_report"] == []
    assert allowed["items"].set_index("item_id").loc["item003", "image_path"] == str(foreign)


def test_media_defaults_match_the_yaml():
    from crossrec.data.config import MediaConfig

    params = yaml.safe_load((CONF / "parameters_ingest.yml").read_text())["ingest"]
    assert params["media"] == MediaConfig().model_dump()


def test_real_movielens_end_to_end(shared_data_dir):
    params = yaml.safe_load((CONF / "parameters_ingest.yml").read_text())["ingest"]
    params["raw_root"] = str(shared_data_dir)
    out = ingest_in_memory(params, "movielens100k_multimodal", seed=2026)
    info, inter = out["dataset_info"], out["interactions"]
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (943, 1663, 99_815)
    # movielens also holds 5% of its users out whole (their lists come from who they are)
    assert info["split_strategy"] == "random+cold_items+cold_users"
    assert info["n_cold_users"] == 47
    assert info["has_images"] and not info["has_audio"]
    assert out["media_report"] == []
    # the default cold-start holdout: 5% of the items, none of their rows in train
    cold = out["items"].loc[out["items"]["is_cold"], "item_idx"]
    assert len(cold) == 83
    is_cold_row = inter["item_idx"].isin(cold)
    assert set(inter.loc[is_cold_row, "split"]) == {"valid", "test"}
    trained = set(inter.loc[inter["split"] == "train", "user_idx"])
    cold_user_row = ~inter["user_idx"].isin(trained)
    assert inter.loc[cold_user_row, "user_idx"].nunique() == 47  # held out whole
    shares = inter.loc[~is_cold_row & ~cold_user_row, "split"].value_counts(normalize=True)
    assert abs(shares["train"] - 0.8) < 0.01 and abs(shares["test"] - 0.1) < 0.01
    assert out["data_summary"]["splits"]["test"]["users_without_train"] <= 47
    assert out["items"]["image_path"].map(lambda p: Path(p).is_file()).all()


def test_real_lastfm_published_split_reproduced_exactly(shared_data_dir, caplog):
    """By default the published split is the split: no cold holdout is drawn from it."""
    caplog.set_level(logging.INFO, logger="crossrec.data.splits")
    params = yaml.safe_load((CONF / "parameters_ingest.yml").read_text())["ingest"]
    params["raw_root"] = str(shared_data_dir)
    assert params["split"]["cold_items"]["share"] > 0  # the global default asks for a holdout
    out = ingest_in_memory(params, "lastfm2k_multimodal", seed=2026)
    info = out["dataset_info"]
    assert info["split_strategy"] == "published" and info["published_split_altered"] is False
    assert out["data_summary"]["published_split_altered"] is False
    assert not out["items"]["is_cold"].any()
    assert "not applied to it" in caplog.text
    # row by row, the label of every interaction is its x_label in lfm2k.inter
    raw = pd.read_csv(shared_data_dir / "lastfm2k_multimodal" / "lfm2k.inter", sep="\t")
    published = raw.assign(
        split=raw["x_label"].map({0: "train", 1: "valid", 2: "test"}),
        user_id=raw["userID"].astype(str),
        item_id=raw["itemID"].astype(str),
    )
    ours = (
        out["interactions"]
        .merge(out["users"], on="user_idx")
        .merge(out["items"][["item_idx", "item_id"]], on="item_idx")
    )
    both = ours.merge(published, on=["user_id", "item_id"], suffixes=("", "_pub"))
    assert len(both) == len(ours) == len(raw) == 56_345
    assert (both["split"] == both["split_pub"]).all()
    counts = out["interactions"]["split"].value_counts()
    assert (counts["train"], counts["valid"], counts["test"]) == (44_327, 4_799, 7_219)
    # the shipped MiniLM matrix encodes tag text with held-out users' words: not read
    assert sorted(out["precomputed_features"]) == ["audio_vggish", "audio_whisper"]
    assert out["precomputed_features"]["audio_whisper"].shape == (1425, 512)


def test_real_lastfm_cold_holdout_on_published_split_is_explicit(shared_data_dir, caplog):
    params = yaml.safe_load((CONF / "parameters_ingest.yml").read_text())["ingest"]
    params["raw_root"] = str(shared_data_dir)
    published = ingest_in_memory(params, "lastfm2k_multimodal", seed=2026)
    params["datasets"]["lastfm2k_multimodal"]["split"] = {
        "cold_items": {"apply_to_published": True}
    }
    out = ingest_in_memory(params, "lastfm2k_multimodal", seed=2026)
    info = out["dataset_info"]
    assert info["split_strategy"] == "published+cold_items"
    assert info["published_split_altered"] is True
    assert out["data_summary"]["published_split_altered"] is True
    assert "ALTERED" in format_summary(out["data_summary"])
    warnings = [
        r
        for r in caplog.records
        if r.levelname == "WARNING" and "ALTERS the published split" in r.getMessage()
    ]
    assert len(warnings) == 1
    cold_items = out["items"].loc[out["items"]["is_cold"], "item_idx"]
    assert len(cold_items) == round(0.05 * 1425)
    key = ["user_idx", "item_idx"]
    both = out["interactions"].merge(published["interactions"], on=key, suffixes=("", "_pub"))
    assert len(both) == 56_345
    cold = both["item_idx"].isin(cold_items)
    assert (both.loc[~cold, "split"] == both.loc[~cold, "split_pub"]).all()
    assert set(both.loc[cold, "split"]) == {"valid", "test"}


def _catalogue_with_missing_rows(tmp_path, drop=("item003", "item007")) -> Path:
    """The retail case: every item has an image, some lack a metadata row."""
    folder = _broken_copy(tmp_path)
    items = pd.read_csv(folder / "items.csv")
    items[~items["item"].isin(drop)].to_csv(folder / "items.csv", index=False)
    return folder


def _with_pattern(folder: Path, **overrides):
    params = synthetic_ingest_params(folder, **overrides)
    options = params["datasets"][folder.name]["options"]
    options.update(image_column=None, audio_column=None, image_pattern="images/{item_id}.png")
    return params


def test_unknown_items_keep_adds_them_with_pattern_media(tmp_path, caplog):
    folder = _catalogue_with_missing_rows(tmp_path)
    with pytest.raises(DataValidationError, match="item 'item00[37]' is not in the item table"):
        ingest_in_memory(_with_pattern(folder), "syn", seed=0)  # the default stays `error`
    dropped = ingest_in_memory(
        _with_pattern(folder, validation={"unknown_items": "drop"}), "syn", seed=0
    )
    out = ingest_in_memory(
        _with_pattern(folder, validation={"unknown_items": "keep"}), "syn", seed=0
    )
    items = out["items"].set_index("item_id")
    assert len(items) == 12 and len(dropped["items"]) == 10
    assert out["dataset_info"]["n_interactions"] > dropped["dataset_info"]["n_interactions"]
    for kept in ("item003", "item007"):
        assert items.loc[kept, "title"] == "" and items.loc[kept, "description"] == ""
        assert items.loc[kept, "image_path"] == str(folder / "images" / f"{kept}.png")
    assert out["media_report"] == []  # the pattern found real, decodable images
    assert "kept 2 interacted items that have no row in the item table" in caplog.text


def test_errors_name_the_users_columns(tmp_path):
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "transactions.csv").write_text("customer_id,article_id\nc1,0101\nc2,0102\n")
    (folder / "articles.csv").write_text("article_id,name\n0101,Shirt\n")
    params = {
        "raw_root": str(tmp_path),
        "datasets": {
            "shop": {
                "adapter": "generic",
                "options": {
                    "interactions_file": "transactions.csv",
                    "items_file": "articles.csv",
                    "user_column": "customer_id",
                    "item_column": "article_id",
                    "item_id_column": "article_id",
                    "text_columns": ["name"],
                },
            }
        },
    }
    with pytest.raises(DataValidationError) as err:
        ingest_in_memory(params, "shop", seed=0)
    message = str(err.value)
    assert message.startswith(
        f"{folder / 'transactions.csv'}, row 2, column 'article_id': "
        "item '0102' is not in the item table"
    )
    assert "'item'" not in message and "item_id" not in message


def test_header_only_interactions_fail_at_read_time_not_in_kcore(tmp_path):
    folder = _broken_copy(tmp_path)
    (folder / "interactions.csv").write_text("user,item,rating,timestamp\n")
    with pytest.raises(DataValidationError, match=r"interactions\.csv: no data rows"):
        load_raw_dataset(synthetic_ingest_params(folder), "syn")
