"""docs/architecture.md "How to add a baseline", executed: the class below is registered exactly
as the docs show, named in an ``evaluate`` block and run by the evaluation runner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossrec.config import ConfigError, parse_params
from crossrec.evaluation.config import BASELINES, EvaluateConfig
from crossrec.evaluation.protocol import aggregate_seeds, build_split
from crossrec.evaluation.runner import Evaluation
from crossrec.models.inputs import TrainingArtifacts

# ------------------------------------------------------------- docs: "How to add a baseline"


@BASELINES.register("least_popular")
class LeastPopular:
    """Least popular items first: a popularity-bias floor any model should clear."""

    #: True: the same scores for every seed, so it is evaluated once
    deterministic = True

    @classmethod
    def from_spec(cls, spec, split, seed):
        return cls(split.train)

    def __init__(self, train):
        self.scores = -torch.as_tensor(np.asarray(train.sum(axis=0)).ravel(), dtype=torch.float32)

    def __call__(self, users):  # (b,) user indices -> (b, n_items) scores
        return self.scores.to(users.device).expand(len(users), -1)


# ---------------------------------------------------------------------------------- the tests
EVALUATE = {  # as in conf/base/parameters_evaluate.yml, cut to what this test needs
    "seeds": [0, 1],
    "slices": ["test"],
    "history_quantiles": [],
    "ablation": False,
    "device": "cpu",
    # in process: LeastPop's class lives in this test module, which pytest imports with
    # --import-mode=importlib, so a spawned worker could not import it by name
    "workers": 1,
    "baselines": {
        "LeastPop": {"kind": "least_popular"},
        "MostPop": {"kind": "most_popular"},
    },
}


def test_registered_baseline_runs_by_name(synthetic_ingested) -> None:
    cfg = parse_params(EvaluateConfig, EVALUATE, where="evaluate")
    ingested = synthetic_ingested
    info = ingested["dataset_info"]
    split = build_split(
        ingested["interactions"], ingested["items"], info["n_users"], info["n_items"], 0
    )
    artifacts = TrainingArtifacts(ingested["interactions"], ingested["items"], info, {}, {}, None)
    runs = Evaluation(cfg, split, artifacts).baseline_runs(trained_model={})
    assert runs["LeastPop"]["seeds"] == [0]  # deterministic: one run, not one per seed
    least = aggregate_seeds(runs["LeastPop"]["runs"])["test"]["recall@20"]["mean"]
    most = aggregate_seeds(runs["MostPop"]["runs"])["test"]["recall@20"]["mean"]
    assert least < most, (least, most)


def test_misspelt_baseline_kind_suggests_the_registered_one() -> None:
    params = {**EVALUATE, "baselines": {"LeastPop": {"kind": "least_populr"}}}
    with pytest.raises(ConfigError) as err:
        parse_params(EvaluateConfig, params, where="evaluate")
    assert "did you mean 'least_popular'" in str(err.value), str(err.value)
