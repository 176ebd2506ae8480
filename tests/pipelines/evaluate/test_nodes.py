"""The evaluate nodes end to end on the synthetic dataset with tiny trainings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crossrec.config import ConfigError
from crossrec.models.inputs import TRAINING_ARTIFACTS
from crossrec.pipelines.evaluate import nodes

TINY_TRAINER = {
    "max_epochs": 2,
    "patience": 1,
    "accelerator": "cpu",
    "devices": 1,
    "log_every_n_steps": 1,
}

PARAMS = {
    "ks": [5, 10],
    "k": 10,
    "seeds": [7, 8],
    "device": "cpu",
    "significance_metrics": ["recall@10", "ndcg@10"],
    "baseline_defaults": {"trainer": TINY_TRAINER},
    "baselines": {
        "MostPop": {"kind": "most_popular"},
        "ItemKNN": {"kind": "item_knn", "neighbours": 20, "shrink": 1.0},
        "MF-BPR": {
            "kind": "finetune",
            "overrides": {
                "model": {
                    "use_content": False,
                    "user_tower": {"kind": "none"},
                    "propagation": {"kind": "none", "item_graph_layers": 0},
                }
            },
        },
        "VBPR": {
            "kind": "finetune",
            "modalities": ["image"],
            "overrides": {
                "model": {
                    "user_tower": {"kind": "none"},
                    "propagation": {"kind": "none", "item_graph_layers": 0},
                }
            },
        },
        "AudioOnly": {"kind": "finetune", "modalities": ["audio"]},
    },
}


def _artifacts(inputs: dict) -> dict:
    """The training artifacts the evaluate nodes take by name (item_texts: only the llm fusion
    strategy needs them)."""
    return {name: inputs.get(name) for name in TRAINING_ARTIFACTS}


@pytest.fixture(scope="module")
def evaluated(evaluate_inputs, tiny_trained_model) -> dict:
    split, artifacts = evaluate_inputs["split"], _artifacts(evaluate_inputs)
    model = nodes.evaluate_trained_model(tiny_trained_model, split, PARAMS, 2026, **artifacts)
    baselines = nodes.evaluate_baselines(tiny_trained_model, split, PARAMS, **artifacts)
    ablation = nodes.evaluate_modality_ablation(model, split, PARAMS, **artifacts)
    metrics, significance, timings = nodes.summarize_evaluation(
        model, baselines, ablation, {}, {}, PARAMS
    )
    return {
        "per_user": nodes.per_user_table(model, baselines, ablation),
        "model": model,
        "metrics": metrics,
        "significance": significance,
        "timings": timings,
        "bundle": tiny_trained_model,
    }


def test_metrics_json_structure(evaluated) -> None:
    metrics = evaluated["metrics"]
    json.dumps(metrics)  # plain JSON types only
    assert set(metrics) == {
        "crossrec",
        "MostPop",
        "ItemKNN",
        "MF-BPR",
        "VBPR",
        "crossrec w/o text",
        "crossrec w/o image",
        "crossrec trained w/o content",  # the mix's own twin, evaluated without training
    }  # AudioOnly skipped
    test = metrics["crossrec"]["test"]
    for name in ("recall", "ndcg", "precision", "mrr", "hit", "map"):
        for k in (5, 10):
            stat = test[f"{name}@{k}"]
            assert set(stat) == {"mean", "std"} and 0.0 <= stat["mean"] <= 1.0
    assert {"coverage@10", "novelty@10", "arp@10", "ild@10"} <= set(test)
    assert {"valid", "test", "users_short", "users_medium", "users_long"} <= set(
        metrics["crossrec"]
    )
    # the synthetic split has no cold holdout: no cold slice, and warm would equal test
    assert not {"test_cold", "test_warm"} & set(metrics["crossrec"])
    # two seeds for the trained model (std over seeds), one run for deterministic baselines
    assert evaluated["timings"]["crossrec"]["seeds"] == 2
    assert evaluated["timings"]["MostPop"]["seeds"] == 1
    chosen = evaluated["timings"]["crossrec"]["content_mix"]  # the mix's point per seed
    assert len(chosen) == 2 and all(set(c) == {"tau", "slope", "scale", "slots"} for c in chosen)
    assert metrics["MostPop"]["test"]["recall@10"]["std"] == 0.0


def test_per_user_table_reproduces_the_metrics(evaluated) -> None:
    """Averaging the per-user table over users, then over seeds, gives metrics.json's means."""
    table = evaluated["per_user"]
    assert list(table.columns[:4]) == ["model", "seed", "slice", "user_idx"]
    assert set(table["model"]) == set(evaluated["metrics"])
    assert sorted(table.loc[table["model"] == "crossrec", "seed"].unique()) == [7, 8]
    assert not table.duplicated(["model", "seed", "slice", "user_idx"]).any()
    for model in ("crossrec", "MostPop", "crossrec w/o text"):
        rows = table[(table["model"] == model) & (table["slice"] == "test")]
        mean = rows.groupby("seed")["ndcg@10"].mean().mean()
        expected = evaluated["metrics"][model]["test"]["ndcg@10"]["mean"]
        assert mean == pytest.approx(expected, abs=1e-9)


def test_trained_model_reused_for_its_seed(evaluated) -> None:
    bundles = evaluated["model"]["bundles"]
    assert bundles[0] is evaluated["bundle"]  # seed 7 = the trained_model
    assert bundles[1] is not evaluated["bundle"]
    assert bundles[1]["config"]["trainer"]["seed"] == 8


def test_significance_against_every_baseline(evaluated) -> None:
    sig = evaluated["significance"]
    assert sig["best_baseline"] in {"MostPop", "ItemKNN", "MF-BPR", "VBPR"}
    best = [t for t in sig["tests"] if t["best_baseline"]]
    assert {t["metric"] for t in best} == {"recall@10", "ndcg@10"}
    for t in sig["tests"]:
        assert 0.0 <= t["wilcoxon_p"] <= 1.0 and t["slice"] == "test"
        assert t["n_users"] == len(evaluated["model"]["runs"][0]["test"]["users"])


def test_ablation_changes_scores(evaluated) -> None:
    metrics = evaluated["metrics"]
    full = metrics["crossrec"]["test"]["ndcg@10"]["mean"]
    without = [metrics[f"crossrec w/o {m}"]["test"]["ndcg@10"]["mean"] for m in ("text", "image")]
    assert any(abs(full - w) > 1e-9 for w in without)


def test_report_and_figures(evaluated, tmp_path) -> None:
    history = pd.DataFrame({"epoch": [0, 1], "train_loss": [0.7, 0.6], "val_recall@20": [0.1, 0.2]})
    info = {"name": "synthetic", "n_users": 60, "n_items": 48, "n_interactions": 710}
    report, *figures = nodes.write_report(
        evaluated["metrics"], evaluated["significance"], evaluated["timings"], history, info, PARAMS
    )
    assert "## Test accuracy" in report and "| crossrec |" in report
    assert "Wilcoxon p" in report and "crossrec w/o image" in report
    # recall by item popularity: every trained model, not the inference-time ablations
    block = evaluated["significance"]["by_popularity"]
    assert block["slice"] == "test" and {"crossrec", "MostPop"} <= set(block["recall"])
    assert "crossrec w/o image" not in block["recall"]
    assert "## Where the hits are: by item popularity" in report
    # the default model is the mix: the point each seed chose, and its twin by popularity
    mix = report.split("## The mix of the content model and its ID-only twin")[1]
    assert "| seed | tau | slope | twin scale | tail slots |" in mix
    assert "crossrec trained w/o content" in block["recall"]
    assert len(figures) == 4
    for i, fig in enumerate(figures):
        fig.savefig(tmp_path / f"{i}.png")
        assert (tmp_path / f"{i}.png").stat().st_size > 1000


def test_bad_parameters_name_the_file() -> None:
    with pytest.raises(ConfigError, match="parameters_evaluate.yml"):
        nodes.prepare_evaluation(pd.DataFrame(), pd.DataFrame(), {}, {"ks": [10], "k": 20})
    with pytest.raises(ConfigError, match="baselines.X.kind"):
        nodes.prepare_evaluation(
            pd.DataFrame(), pd.DataFrame(), {}, {"baselines": {"X": {"kind": "nope"}}}
        )


def test_prepare_evaluation_matrices(evaluate_inputs) -> None:
    inp = evaluate_inputs
    split = nodes.prepare_evaluation(inp["interactions"], inp["items"], inp["dataset_info"], {})
    counts = inp["interactions"]["split"].value_counts()
    assert split.train.nnz == counts["train"] and split.test.nnz == counts["test"]
    assert np.array_equal(split.history_length, np.diff(split.train.indptr))


def test_baseline_seeds_and_enabled(evaluate_inputs, tiny_trained_model) -> None:
    params = PARAMS | {
        "baselines": {
            "MostPop": {"kind": "most_popular", "enabled": False},
            "Random": {"kind": "random", "seeds": [1, 2, 3]},
            "ItemKNN": {"kind": "item_knn", "seeds": [1, 2]},  # deterministic: runs once
        }
    }
    split, artifacts = evaluate_inputs["split"], _artifacts(evaluate_inputs)
    out = nodes.evaluate_baselines(tiny_trained_model, split, params, **artifacts)
    assert set(out) == {"Random", "ItemKNN"}
    assert out["Random"]["seeds"] == [1, 2, 3] and len(out["Random"]["runs"]) == 3
    assert len(out["ItemKNN"]["runs"]) == 1
    recall = [r["test"]["metrics"]["recall@10"].mean() for r in out["Random"]["runs"]]
    assert len(set(recall)) > 1  # different seeds, different random lists


def test_report_states_what_ran_and_only_the_slices_it_has(evaluated) -> None:
    """No cold holdout: no warm/cold protocol sentence; a reused artifact is not '0.0 s'; an
    altered published split is a warning in the report."""
    history = pd.DataFrame({"epoch": [0], "train_loss": [0.7], "val_recall@20": [0.1]})
    info = {"name": "synthetic", "n_users": 60, "n_items": 48, "n_interactions": 710}
    metrics, significance = evaluated["metrics"], evaluated["significance"]
    timings = dict(evaluated["timings"])
    timings["crossrec"] = {"train_s": 0.0, "eval_s": 1.0, "seeds": 1, "reused_seeds": 1}
    report, *_ = nodes.write_report(metrics, significance, timings, history, info, PARAMS)
    assert "test_cold" not in report and "cold-start items compete" not in report
    assert "| crossrec | reused (finetune) |" in report
    assert "| crossrec w/o image | – (inference-time ablation) |" in report
    assert "published split was altered" not in report
    altered = info | {"published_split_altered": True, "split_strategy": "published+cold_items"}
    report, *_ = nodes.write_report(metrics, significance, timings, history, altered, PARAMS)
    assert "**Warning:** the dataset's published split was altered" in report
    assert "How collaborative is each modality" not in report  # fuse wrote no lift


def test_report_shows_fuses_modality_lift(evaluated) -> None:
    history = pd.DataFrame({"epoch": [0], "train_loss": [0.7], "val_recall@20": [0.1]})
    info = {"name": "synthetic", "n_users": 60, "n_items": 48, "n_interactions": 710}
    lift = {
        "text": {"edges": 480, "lift": 1.2427},
        "image": {"edges": 470, "lift": None},
    }
    report, *_ = nodes.write_report(
        evaluated["metrics"],
        evaluated["significance"],
        evaluated["timings"],
        history,
        info,
        PARAMS,
        None,
        None,
        lift,
    )
    assert "## How collaborative is each modality" in report
    assert "| text | 480 | 1.24 |" in report and "| image | 470 | - |" in report


def test_missing_cold_slices_are_said_once(evaluate_inputs, caplog) -> None:
    """No cold holdout: one INFO line for the whole evaluation, not one per model and slice."""
    import logging

    from crossrec.evaluation.protocol import ranking_slices

    inp = evaluate_inputs
    with caplog.at_level(logging.INFO):
        split = nodes.prepare_evaluation(inp["interactions"], inp["items"], inp["dataset_info"], {})
        for _ in range(3):
            names = [s.name for s in ranking_slices(split, ["valid", "test", "test_warm"])]
    assert names == ["valid", "test"]
    assert caplog.text.count("test_warm / test_cold are not reported") == 1


def test_report_shows_before_vs_after_only_for_an_llm_model(evaluated, tmp_path) -> None:
    from crossrec.datasets.atomic import OptionalJSONDataset

    history = pd.DataFrame({"epoch": [0], "train_loss": [0.7], "val_recall@20": [0.1]})
    info = {"name": "synthetic", "n_users": 60, "n_items": 48, "n_interactions": 710}
    row = {
        "model": "llm strategy, LoRA top 2 layers (after)",
        "kind": "finetuned",
        "metrics": {"test/recall@20": {"mean": 0.25, "std": 0.0}},
        "epoch_s": 12.5,
        "epochs": 3,
        "trainable_params": 61440,
        "seeds": 1,
    }
    results = {"rows": [row], "protocol": "one seed", "command": "python benchmarks/x.py"}
    args = (evaluated["metrics"], evaluated["significance"], evaluated["timings"], history, info)
    llm_model = {"config": {"model": {"fusion": {"strategy": "llm"}}}}
    report, *_ = nodes.write_report(*args, PARAMS, llm_model, results)
    assert "## Before vs after fine-tuning" in report
    assert "| llm strategy, LoRA top 2 layers (after) | 0.2500 |" in report
    assert "| 12.5 | 3 | 61,440 | 1 |" in report and "`python benchmarks/x.py`" in report
    concat = {"config": {"model": {"fusion": {"strategy": "concat"}}}}
    report, *_ = nodes.write_report(*args, PARAMS, concat, results)
    assert "Before vs after" not in report
    # the catalog's dataset: a missing file loads as None (the report then has no such section)
    missing = OptionalJSONDataset(filepath=str(tmp_path / "llm_before_after.json"))
    assert missing.load() is None
    missing.save(results)
    assert missing.load()["rows"][0]["trainable_params"] == 61440
