"""Per-baseline selection on validation (crossrec.evaluation.selection) and the MF-BPR kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossrec.config import ConfigError, parse_params
from crossrec.evaluation import baseline_plan
from crossrec.evaluation.baselines import MostPopular
from crossrec.evaluation.config import BaselineConfig, EvaluateConfig, MFBPRConfig
from crossrec.evaluation.mf_bpr import train_mf_bpr, validation_recall
from crossrec.evaluation.protocol import build_split
from crossrec.evaluation.report import selection_section
from crossrec.evaluation.runner import Evaluation
from crossrec.evaluation.selection import apply_point, is_searched
from crossrec.metrics.ranking import evaluate_ranking, mean_metrics
from crossrec.models.inputs import TrainingArtifacts

WHERE = "conf/base/parameters_evaluate.yml: evaluate"


@pytest.fixture(scope="module")
def split(synthetic_ingested):
    info = synthetic_ingested["dataset_info"]
    return build_split(
        synthetic_ingested["interactions"],
        synthetic_ingested["items"],
        info["n_users"],
        info["n_items"],
        tie_break_seed=0,
    )


@pytest.fixture(scope="module")
def artifacts(synthetic_ingested) -> TrainingArtifacts:
    """ingest's tables only: the baselines here need no content, graphs or texts."""
    tables = (synthetic_ingested[k] for k in ("interactions", "items", "dataset_info"))
    return TrainingArtifacts(*tables, {}, {}, None, None)


def _oracle(truth):
    """Scores = the held-out matrix of one split: perfect there, unrelated elsewhere."""
    dense = torch.as_tensor(truth.toarray(), dtype=torch.float32)
    return lambda users: dense[users.cpu()]


def test_selection_picks_the_configuration_by_validation_not_test(
    artifacts, split, monkeypatch
) -> None:
    """neighbours=1 is perfect on validation, neighbours=2 perfect on test: validation wins,
    and the test slices are scored for the chosen configuration only."""
    cfg = parse_params(
        EvaluateConfig,
        {
            "seeds": [0, 1],
            "slices": ["valid", "test"],
            "history_quantiles": [],
            "workers": 1,
            "baselines": {
                "knn": {"kind": "item_knn", "grid": {"neighbours": [2, 1], "shrink": [0.0]}}
            },
        },
        where=WHERE,
    )
    built = []

    def scorer(kind, spec, split_, seed):
        built.append(spec.neighbours)
        return _oracle(split.valid if spec.neighbours == 1 else split.test)

    monkeypatch.setattr(baseline_plan, "build_standalone", scorer)  # in process: workers 1
    out = Evaluation(cfg, split, artifacts).baseline_runs({"config": {}})["knn"]
    selection = out["selection"]
    assert selection["chosen"] == {"neighbours": 1, "shrink": 0.0}
    assert selection["grid_size"] == 2
    valid_values = [t["valid"] for t in selection["trials"]]
    assert valid_values[1] == pytest.approx(1.0) and valid_values[0] < 0.9
    # item_knn is deterministic: one run, the selection's scorer reused (no third build)
    assert built == [2, 1]
    test_recall = float(np.mean(out["runs"][0]["test"]["metrics"]["recall@20"]))
    assert test_recall < 0.9  # the test oracle (test recall 1.0) was not picked
    report = "\n".join(selection_section({"knn": {"selection": selection}}))
    assert "| knn | 2 | neighbours 1, shrink 0.0 | 1.0000 | 0 |" in report
    # the chosen neighbours are the grid's lowest: the record and the report say so
    assert "neighbours 1 is the lowest of [1, 2]" in selection["grid_edge"]
    assert f"- {selection['grid_edge']}" in report


def test_bad_grid_key_is_rejected_with_its_name() -> None:
    bad = {"baselines": {"MF-BPR": {"kind": "bpr", "grid": {"lrr": [0.01]}}}}
    with pytest.raises(ConfigError, match=r"baselines\.MF-BPR\.grid\.lrr.*did you mean 'lr'"):
        parse_params(EvaluateConfig, bad, where=WHERE)
    wrong_kind = {"baselines": {"MF-BPR": {"kind": "bpr", "grid": {"shrink": [1.0]}}}}
    with pytest.raises(ConfigError, match=r"\['shrink'\] cannot be searched for kind 'bpr'"):
        parse_params(EvaluateConfig, wrong_kind, where=WHERE)
    with pytest.raises(ConfigError, match=r"grid\.lr"):
        parse_params(
            EvaluateConfig,
            {"baselines": {"B": {"kind": "bpr", "grid": {"lr": [-1.0]}}}},
            where=WHERE,
        )


def test_grid_points_reach_the_place_each_kind_reads_them() -> None:
    finetune = BaselineConfig(kind="finetune", overrides={"optim": {"lr": 0.1}})
    applied = apply_point(finetune, {"lr": 0.02, "reg": 0.5, "negatives": 4, "dim": 32})
    assert applied.overrides == {
        "optim": {"lr": 0.02},
        "loss": {"reg_weight": 0.5},
        "data": {"num_negatives": 4},
        "model": {"embedding_dim": 32},
    }
    bpr = apply_point(BaselineConfig(kind="bpr"), {"lr": 0.05, "dim": 8})
    assert (bpr.bpr.lr, bpr.bpr.dim, bpr.bpr.reg) == (0.05, 8, MFBPRConfig().reg)
    cfg = EvaluateConfig()
    grid = {"grid": {"lr": [0.01]}}
    assert is_searched(BaselineConfig(kind="bpr", **grid), cfg.selection)
    assert not is_searched(BaselineConfig(kind="finetune", **grid), cfg.selection)  # standalone
    assert not is_searched(BaselineConfig(kind="bpr"), cfg.selection)  # no grid


def test_mf_bpr_beats_most_popular_on_validation(split) -> None:
    torch.set_num_threads(1)
    params = MFBPRConfig(dim=16, lr=0.05, max_epochs=60, eval_every=5)
    validate = validation_recall(split.valid, split.train, tie_order=split.tie_order)
    model = train_mf_bpr(split.train, params, seed=0, validate=validate)
    _, per_user = evaluate_ranking(
        MostPopular(split.train), split.valid, split.train, ks=(20,), tie_order=split.tie_order
    )
    pop = mean_metrics(per_user)["recall@20"]
    assert model.best_score == pytest.approx(validate(model))  # the best parameters are kept
    assert model.best_score > pop + 0.02, (model.best_score, pop)
    assert model.history and model.best_epoch % params.eval_every == 0


def test_mf_bpr_patience_waits_until_the_factors_learn(split) -> None:
    """A popularity plateau longer than the patience does not stop training; a decline after
    learning does, and the best validated parameters are the ones kept."""
    values = iter([0.10] * 8 + [0.20, 0.30, 0.25, 0.24, 0.23, 0.22, 0.21])
    params = MFBPRConfig(dim=4, max_epochs=100, eval_every=1, patience=3)
    model = train_mf_bpr(split.train, params, seed=0, validate=lambda m: next(values))
    assert [h["epoch"] for h in model.history] == list(range(1, 14))  # 8 flat + 2 up + 3 down
    assert (model.best_epoch, model.best_score) == (10, 0.30)


def test_mf_bpr_selection_runs_end_to_end_and_is_reported(artifacts, split) -> None:
    """The bpr kind through the runner: grid searched, chosen point in the JSON timings."""
    import json

    from crossrec.evaluation.summary import summarize

    cfg = parse_params(
        EvaluateConfig,
        {
            "seeds": [0, 1],
            "slices": ["valid", "test"],
            "history_quantiles": [],
            "selection": {"metric": "ndcg@7"},  # any k, not only evaluate.ks
            "baselines": {
                "MF-BPR": {
                    "kind": "bpr",
                    "bpr": {"dim": 8, "max_epochs": 20, "eval_every": 5},
                    "grid": {"lr": [0.05, 0.0001]},
                }
            },
        },
        where=WHERE,
    )
    runs = Evaluation(cfg, split, artifacts).baseline_runs({"config": {}})
    model = {"name": "m", "runs": runs["MF-BPR"]["runs"], "seeds": [0, 1], "train_s": 0.0}
    model["eval_s"] = 0.0
    _, _, timings = summarize(cfg, model, runs, {})
    selection = json.loads(json.dumps(timings["MF-BPR"]["selection"]))
    assert selection["grid_size"] == 2 and selection["metric"] == "valid ndcg@7"
    assert selection["chosen"] == {"lr": 0.05}  # lr 1e-4 barely moves the factors in 20 epochs
    assert len(runs["MF-BPR"]["runs"]) == 2
