"""The scale benchmark's synthetic data (benchmarks/_scale_data.py) and its report
(benchmarks/scale.py) on a tiny size: power-law shape, clustered vectors the generic adapter
ingests, and the table / growth exponents."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _scale_data import dataset_options, generate, spec_for, top_share

from crossrec.data.ingest import ingest_in_memory

from .conftest import load_benchmark


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw") / "scale_tiny"
    spec = spec_for(2000)
    info = generate(spec, folder)
    return spec, folder, info


def test_popularity_and_activity_are_heavy_tailed(tiny):
    spec, folder, info = tiny
    frame = pd.read_csv(folder / "interactions.csv", dtype=str)
    assert len(frame) == info["rows_written"]
    assert 0.6 * spec.n_interactions <= len(frame) <= spec.n_interactions
    assert not frame.duplicated(["user", "item"]).any()
    # uniform popularity would give the top 1% of items about 1% of the interactions
    assert top_share(frame["item"].value_counts().to_numpy(), 0.01) > 0.05
    per_user = frame.groupby("user").size()
    assert per_user.max() > 3 * per_user.median()
    assert frame["user"].nunique() == spec.n_users


def test_vectors_are_clustered_and_row_aligned(tiny):
    spec, folder, _ = tiny
    items = pd.read_csv(folder / "items.csv", dtype=str)
    for name, dim in spec.dims.items():
        vectors = np.load(folder / f"{name}.npy")
        assert vectors.shape == (len(items), dim) and vectors.dtype == np.float32
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        same = items["category"].to_numpy()[:, None] == items["category"].to_numpy()[None]
        cos = unit @ unit.T
        off = ~np.eye(len(items), dtype=bool)
        assert cos[same & off].mean() > cos[~same].mean() + 0.3


def test_users_prefer_their_cluster(tiny):
    _, folder, _ = tiny
    frame = pd.read_csv(folder / "interactions.csv", dtype=str)
    category = pd.read_csv(folder / "items.csv", dtype=str).set_index("item")["category"]
    frame["category"] = category.reindex(frame["item"]).to_numpy()
    top = frame.groupby("user")["category"].agg(lambda c: c.value_counts().iloc[0] / len(c))
    assert top.mean() > 0.4


def test_generic_adapter_ingests_the_files(tiny):
    spec, folder, info = tiny
    ingest = {"raw_root": str(folder.parent), "datasets": {folder.name: dataset_options(spec)}}
    out = ingest_in_memory(ingest, folder.name, seed=0)
    assert len(out["interactions"]) == info["rows_written"]
    n_items = out["dataset_info"]["n_items"]
    assert out["dataset_info"]["precomputed"] == sorted(spec.dims)
    for name, dim in spec.dims.items():
        assert out["precomputed_features"][name].shape == (n_items, dim)
    # the rows follow the items: the vector of item i is row i of the .npy of items.csv
    raw = np.load(folder / "image.npy")
    row = pd.read_csv(folder / "items.csv", dtype=str).reset_index().set_index("item")["index"]
    ids = out["items"]["item_id"].to_numpy()
    assert np.array_equal(out["precomputed_features"]["image"], raw[row.reindex(ids).to_numpy()])


def run(dataset, n, walls, status=None):
    stages = {
        stage: {"status": (status or {}).get(stage, "ok"), "wall_s": w, "peak_rss_gb": 0.5}
        for stage, w in walls.items()
    }
    return {
        "dataset": dataset,
        "synthetic": True,
        "nominal_interactions": n,
        "n_interactions": n,
        "stages": stages,
    }


def test_report_table_and_exponents():
    scale = load_benchmark("scale")
    runs = [
        run("a", 1000, {"ingest": 1.0, "fuse": 2.0}),
        run("b", 10000, {"ingest": 10.0, "fuse": 200.0}),
        run("c", 100000, {"ingest": 50.0, "fuse": 1500.0}, {"fuse": "stopped after 1500 s"}),
    ]
    report = scale.format_report(runs, ["ingest", "fuse"])
    lines = report.splitlines()
    assert lines[0].split()[:2] == ["stage", "a"]
    assert "10.0 s / 0.50 GB" in lines[1] and ">1500 s (stopped)" in lines[2]
    assert "fuse                   2.00" in report  # 2 -> 200 s over 10x: exponent 2
    # fuse was stopped at c: its exponent is a lower bound, log(7.5) / log(10) > ingest's 0.70
    bound = f">={math.log(7.5) / math.log(10):.2f}"
    assert lines[-1] == f"max exponent: {bound} (fuse)"
    assert lines[-2].split() == ["fuse", bound]
    assert lines[-3].split() == ["ingest", f"{math.log(5) / math.log(10):.2f}"]


def test_sizes_and_dataset_names():
    scale = load_benchmark("scale")
    assert scale.parse_sizes("1e5,1e6") == [100_000, 1_000_000]
    assert scale.size_name(10_000_000) == "scale_1e7"
    assert scale.size_name(2000) == "scale_2000"
    assert scale.dotted(["fuse.knn.k=5", "evaluate.ablation=false"]) == {
        "fuse": {"knn": {"k": 5}},
        "evaluate": {"ablation": False},
    }


def test_markdown_table_has_one_row_per_stage():
    scale = load_benchmark("scale")
    runs = [run("a", 1000, {"ingest": 1.0}), run("b", 10000, {"ingest": 3.0})]
    runs[1]["stages"]["fuse"] = {"status": "not run (ingest did not finish)"}
    lines = scale.markdown_table(runs, ["ingest", "fuse"]).splitlines()
    assert lines[0] == "| stage | a (1,000) | b (10,000) |"
    assert lines[2] == "| ingest | 1.0 s / 0.50 GB | 3.0 s / 0.50 GB |"
    assert lines[3] == "| fuse | - | - |"


def test_earlier_runs_join_the_table_and_this_run_replaces_a_stage():
    scale = load_benchmark("scale")
    earlier = [run("b", 10000, {"ingest": 9.0, "fuse": 20.0}), run("a", 1000, {"ingest": 1.0})]
    real = {**run("movielens", 0, {"ingest": 3.0}), "synthetic": False}
    now = [run("c", 100000, {"ingest": 90.0}), run("b", 10000, {"ingest": 10.0})]
    merged = scale.merged_runs(now, [*earlier, real])
    assert [r["dataset"] for r in merged] == ["a", "b", "c", "movielens"]
    # b: this run's ingest, the earlier fuse
    assert {s: v["wall_s"] for s, v in merged[1]["stages"].items()} == {
        "ingest": 10.0,
        "fuse": 20.0,
    }
    assert scale.format_report(merged, ["ingest"]).splitlines()[-1] == "max exponent: 0.95 (ingest)"
