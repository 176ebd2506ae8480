"""evaluate.workers: the evaluation's training runs in worker processes give the results of the
in-process path, report what they cost, and name the run that failed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossrec.config import parse_params
from crossrec.evaluation.config import EvaluateConfig
from crossrec.evaluation.jobs import JobError
from crossrec.evaluation.report import NODES_KEY, build_report
from crossrec.evaluation.runner import Evaluation
from crossrec.evaluation.summary import summarize
from crossrec.models.inputs import TrainingArtifacts

WHERE = "conf/base/parameters_evaluate.yml: evaluate"

TINY_TRAINER = {"max_epochs": 2, "patience": 1, "accelerator": "cpu", "devices": 1}

LIGHTGCN = {
    "kind": "finetune",
    "overrides": {
        "model": {
            "embedding_dim": 16,
            "use_content": False,
            "user_tower": {"kind": "none"},
            "propagation": {"kind": "lightgcn", "layers": 2, "item_graph_layers": 0},
        },
        "loss": {"kind": "bpr"},
    },
}

PARAMS = {
    "ks": [5, 10],
    "k": 10,
    "seeds": [7, 8, 9],  # 7 is the tiny model's own seed: two retrained seeds
    "device": "cpu",
    "slices": ["valid", "test"],
    "history_quantiles": [],
    "ablation": False,
    "significance_metrics": ["recall@10"],
    "baseline_defaults": {"trainer": TINY_TRAINER},
    "baselines": {
        "LightGCN": LIGHTGCN | {"seeds": [7, 8]},
        "MF-BPR": {
            "kind": "bpr",
            "bpr": {"dim": 8, "max_epochs": 10, "eval_every": 5},
            "grid": {"lr": [0.05, 0.01]},  # two points, then the chosen one's second seed
            "seeds": [7, 8],
        },
    },
}


def _evaluation(inputs: dict, workers: int | str, **changes) -> Evaluation:
    cfg = parse_params(EvaluateConfig, PARAMS | {"workers": workers} | changes, where=WHERE)
    tables = [inputs[k] for k in ("interactions", "items", "dataset_info")]
    graphs = [inputs[k] for k in ("fused_item_features", "modality_graphs", "user_item_graph")]
    return Evaluation(cfg, inputs["split"], TrainingArtifacts(*tables, *graphs, None))


def _per_user(runs: list[dict]) -> list[tuple]:
    return [
        (slice_name, metric, np.asarray(values))
        for run in runs
        for slice_name, result in run.items()
        for metric, values in result["metrics"].items()
    ]


def _assert_same_runs(a: list[dict], b: list[dict]) -> None:
    left, right = _per_user(a), _per_user(b)
    assert [x[:2] for x in left] == [x[:2] for x in right]
    for (slice_name, metric, x), (_, _, y) in zip(left, right, strict=True):
        assert np.array_equal(x, y), (slice_name, metric)


@pytest.fixture(scope="module")
def both(evaluate_inputs, tiny_trained_model) -> dict:
    """The same evaluation in process (workers 1) and on two worker processes."""
    out = {}
    for workers in (1, 2):
        evaluation = _evaluation(evaluate_inputs, workers)
        model = evaluation.model_runs(tiny_trained_model, 7)
        baselines = evaluation.baseline_runs(tiny_trained_model)
        out[workers] = (evaluation.cfg, model, baselines)
    return out


def test_two_workers_give_the_in_process_results(both) -> None:
    (_, model_1, base_1), (_, model_2, base_2) = both[1], both[2]
    assert model_2["node"]["workers"] == 2 and model_1["node"]["workers"] == 1
    _assert_same_runs(model_1["runs"], model_2["runs"])
    for bundle_1, bundle_2 in zip(model_1["bundles"], model_2["bundles"], strict=True):
        state_1, state_2 = bundle_1["state_dict"], bundle_2["state_dict"]
        assert state_1.keys() == state_2.keys()
        assert all(torch.equal(state_1[key], state_2[key]) for key in state_1)
    assert base_1.keys() == base_2.keys() == {"LightGCN", "MF-BPR"}
    for name in base_1:
        assert len(base_1[name]["runs"]) == 2
        _assert_same_runs(base_1[name]["runs"], base_2[name]["runs"])
    trials = [base[("MF-BPR")]["selection"]["trials"] for base in (base_1, base_2)]
    assert trials[0] == trials[1]
    # 2 grid points + LightGCN's 2 seeds, then MF-BPR's seed the grid did not already run
    assert base_2["LightGCN"]["node"] == base_2["MF-BPR"]["node"]
    assert base_2["LightGCN"]["node"]["jobs"] == 5
    assert base_2["LightGCN"]["node"]["workers"] == 2


def test_timings_sum_the_jobs_and_record_the_nodes(both, evaluate_inputs) -> None:
    import pandas as pd

    cfg, model, baselines = both[2]
    _, _, timings = summarize(cfg, model, baselines, {})
    nodes = timings[NODES_KEY]
    assert nodes["evaluate_trained_model"]["workers"] == 2
    assert nodes["evaluate_trained_model"]["jobs"] == 2
    assert nodes["evaluate_baselines"]["jobs"] == 5
    assert all(entry["wall_s"] > 0 for entry in nodes.values())
    assert timings["LightGCN"]["train_s"] > 0 and timings["crossrec"]["reused_seeds"] == 1
    metrics, significance, _ = summarize(cfg, model, baselines, {})
    report, *figures = build_report(
        metrics, significance, timings, pd.DataFrame(), evaluate_inputs["dataset_info"], cfg
    )
    for figure in figures:
        import matplotlib.pyplot as plt

        plt.close(figure)
    assert "`evaluate_baselines`: 5 training runs on 2 worker process(es)" in report
    assert f"| {NODES_KEY} |" not in report


def test_a_failing_run_is_named_in_the_parent(evaluate_inputs, tiny_trained_model) -> None:
    # a valid schema that the model builder rejects: the error is raised inside the training run
    no_input = {"model": {"use_id_embedding": False, "use_content": False}}
    broken = LIGHTGCN | {"overrides": no_input}
    for workers in (2, 1):
        evaluation = _evaluation(
            evaluate_inputs, workers, baselines={"Broken": broken | {"seeds": [7, 8]}}
        )
        with pytest.raises(JobError, match=r"Broken seed [78] failed") as error:
            evaluation.baseline_runs(tiny_trained_model)
        assert "ValueError: model: use_id_embedding and use_content cannot" in str(error.value)
