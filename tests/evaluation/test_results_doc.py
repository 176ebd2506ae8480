"""docs/results.md is written from run outputs: same outputs, same file; figures come from them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crossrec.evaluation import results_doc
from crossrec.run_record import command_line, machine, write_record


def stat(mean: float, std: float = 0.0) -> dict[str, float]:
    return {"mean": mean, "std": std}


def slices(recall: float, ndcg: float, cold: float | None = None) -> dict:
    out = {
        "test": {"recall@20": stat(recall, 0.002), "ndcg@20": stat(ndcg), "coverage@20": stat(0.4)},
        "test_warm": {"recall@20": stat(recall + 0.08), "ndcg@20": stat(ndcg + 0.03)},
    }
    if cold is not None:
        out["test_cold"] = {"recall@20": stat(cold), "ndcg@20": stat(cold / 2)}
    return out


def write_outputs(folder: Path, with_record: bool = True) -> None:
    """The files evaluate and ingest write, with the shapes they have."""
    folder.mkdir(parents=True)
    metrics = {
        "crossrec": slices(0.3196, 0.3047, cold=0.6862),
        "EASE": slices(0.3173, 0.3027, cold=0.3732),
        "MostPop": slices(0.1401, 0.1314, cold=0.3732),
        "crossrec w/o text": slices(0.3093, 0.2924, cold=0.6643),
    }
    tests = [
        {"slice": "test", "metric": m, "model_a": "crossrec", "model_b": b, "n_users": 896,
         "mean_a": a_mean, "mean_b": b_mean, "mean_diff": a_mean - b_mean, "wilcoxon_p": p}
        for m, b, a_mean, b_mean, p in [
            ("recall@20", "EASE", 0.3196, 0.3173, 0.33),
            ("ndcg@20", "EASE", 0.3047, 0.3027, 0.15),
            ("recall@20", "MostPop", 0.3196, 0.1401, 1e-90),
        ]
    ]
    timings = {
        "crossrec": {"train_s": 436.1},
        "EASE": {
            "train_s": 0.0,
            "selection": {
                "grid_size": 6,
                "chosen": {"l2": 250.0},
                "grid_edge": "EASE: the chosen point is at the edge of its grid (l2 250.0 ...)",
            },
        },
        "LightGCN": {"train_s": 160.4},
        "__nodes__": {"evaluate_baselines": {"wall_s": 439.7}},
    }
    summary = {
        "users": 943, "items": 1663, "interactions": 99815, "split_strategy": "random+cold_items",
        "cold_items": 83, "splits": {"test": {"users": 928}},
    }
    for name, value in [
        ("metrics.json", metrics),
        ("significance.json", {"best_baseline": "EASE", "tests": tests}),
        ("evaluation_timings.json", timings),
        ("data_summary.json", summary),
    ]:
        (folder / name).write_text(json.dumps(value))
    if with_record:
        run = {"pipeline_names": ["__default__"], "env": "local", "runtime_params": {}}
        write_record(
            folder / "runs",
            {"started": "2026-12-01T10:00:00Z", "wall_s": 750.6, "ok": True,
             "pipelines": ["__default__"], "command": command_line(run),
             "machine": {"cores": 2, "memory_gib": 23.5, "gpu": None},
             "commit": "0123456789abcdef", "changed": False},
        )


@pytest.fixture()
def reporting(tmp_path: Path) -> Path:
    write_outputs(tmp_path / "reporting" / "movielens100k_multimodal")
    return tmp_path / "reporting"


def test_the_document_holds_the_runs_figures_and_names_the_run(reporting: Path):
    text = results_doc.render(reporting, ["movielens100k_multimodal"])
    run = "Run: `kedro run`, 2026-12-01, 2 cores, 23.5 GiB, no GPU, commit 0123456789, 13 min"
    assert run in text
    row = "| **crossrec** | 0.3196 ± 0.0020 | 0.3047 | 0.3996 | 0.3347 | 0.6862 | 0.3431 | 0.4000 |"
    assert row in text
    assert "| EASE | 0.3173 ± 0.0020 |" in text
    # the strongest baseline on test is EASE (not MostPop), with its p-value
    assert "| test | EASE | 896 | +0.0023 (p = 0.33) | +0.0020 (p = 0.15) |" in text
    assert "| EASE | 6 | l2 250.0 |" in text
    assert "- EASE: the chosen point is at the edge of its grid" in text
    assert "LightGCN: the values of `conf/base/parameters_evaluate.yml`" in text
    assert "943 users × 1,663 items, 99,815 interactions" in text


def test_same_outputs_give_the_same_file(reporting: Path, tmp_path: Path):
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    results_doc.main(["--reporting", str(reporting), "--out", str(first), "--readme", "none"])
    results_doc.main(["--reporting", str(reporting), "--out", str(second), "--readme", "none"])
    assert first.read_text() == second.read_text()
    assert "## movielens100k_multimodal" in first.read_text()


def test_readme_block_is_replaced_between_its_markers_only(reporting: Path, tmp_path: Path):
    readme = tmp_path / "README.md"
    start = results_doc.README_START.format(dataset="movielens100k_multimodal")
    end = results_doc.README_END.format(dataset="movielens100k_multimodal")
    readme.write_text(f"# intro\n\n{start}\nstale table\n{end}\n\n## after\n")
    results_doc.main(
        ["--reporting", str(reporting), "--out", str(tmp_path / "r.md"), "--readme", str(readme)]
    )
    text = readme.read_text()
    assert "stale table" not in text and text.startswith("# intro") and text.endswith("## after\n")
    block = text[text.index(start) : text.index(end)]
    assert "| **crossrec** | 0.3196 ± 0.0020 |" in block
    assert "w/o text" not in block  # ablation rows stay in docs/results.md


def test_a_run_without_record_says_so_with_the_file_time(tmp_path: Path):
    folder = tmp_path / "reporting" / "lastfm2k_multimodal"
    write_outputs(folder, with_record=False)
    os.utime(folder / "metrics.json", (1_764_000_000, 1_764_000_000))
    line = results_doc.run_line(folder)
    assert line.startswith("Run: not recorded (metrics.json written 2025-11-24 16:00 UTC")


def test_failed_runs_and_runs_without_evaluate_are_not_named(reporting: Path):
    runs = reporting / "movielens100k_multimodal" / "runs"
    for started, ok, pipelines in [
        ("2026-12-02T10:00:00Z", False, ["__default__"]),
        ("2026-12-03T10:00:00Z", True, ["recommend"]),
    ]:
        write_record(runs, {"started": started, "ok": ok, "pipelines": pipelines,
                            "command": "kedro run", "machine": machine()})
    assert results_doc.latest_run(runs)["started"] == "2026-12-01T10:00:00Z"


def test_no_outputs_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SystemExit, match="no metrics.json for nope under"):
        results_doc.main(["--reporting", str(tmp_path), "--datasets", "nope"])


def test_command_line_reproduces_kedro_run_parameters():
    run = {
        "pipeline_names": ["finetune", "evaluate"],
        "env": "tuned",
        "tags": ["train"],
        "runtime_params": {
            "dataset": "lastfm2k_multimodal",
            "seed": 1,
            "evaluate": {"words": {"enabled": False}},
        },
    }
    assert command_line(run) == (
        "kedro run --pipelines finetune,evaluate --env tuned --tags train "
        "--params dataset=lastfm2k_multimodal,evaluate.words.enabled=false,seed=1"
    )
