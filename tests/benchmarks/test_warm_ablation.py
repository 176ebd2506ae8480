"""benchmarks/warm_ablation.py's NAME@parameters.yml variants: a tune study's exported block is
trained as overrides of the defaults, without the provenance record (not a setting)."""

from __future__ import annotations

import pytest
import yaml

from tests.benchmarks.conftest import load_benchmark


@pytest.fixture(scope="module")
def warm_ablation():
    return load_benchmark("warm_ablation")


def test_file_variant_is_the_finetune_block_without_tuned_for(warm_ablation, tmp_path):
    tuned = tmp_path / "parameters_finetune.yml"
    record = {"dataset": "d", "study": "s", "trial": 3, "metric": "val/recall@20", "value": 0.3}
    block = {"optim": {"lr": 0.002}, "loss": {"kind": "softmax"}, "tuned_for": record}
    tuned.write_text(yaml.safe_dump({"finetune": block}))
    assert warm_ablation.file_overrides(tuned) == {
        "optim": {"lr": 0.002},
        "loss": {"kind": "softmax"},
    }


def test_file_variant_errors_name_the_file(warm_ablation, tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        warm_ablation.file_overrides(tmp_path / "missing.yml")
    other = tmp_path / "parameters_tune.yml"
    other.write_text(yaml.safe_dump({"tune": {"n_trials": 3}}))
    with pytest.raises(SystemExit, match=r"parameters_tune\.yml: expected a finetune: block"):
        warm_ablation.file_overrides(other)


def _slice(truth_rows, n_items, candidates=None):
    import numpy as np
    import scipy.sparse as sp

    from crossrec.evaluation.protocol import Slice

    rows = [u for u, items in enumerate(truth_rows) for _ in items]
    cols = [i for items in truth_rows for i in items]
    truth = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(truth_rows), n_items))
    return Slice("test_warm", truth, sp.csr_matrix(truth.shape), candidates)


def test_item_hits_count_each_items_held_out_pairs_found_in_the_top_k(warm_ablation):
    """By hand: scores rank items 4,3,2,1,0 for everyone; top 2 = {4, 3}."""
    from types import SimpleNamespace

    import numpy as np
    import torch

    piece = _slice([[1, 3], [3, 4], [0], [4]], n_items=5)
    scores = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]])

    def score_fn(users):
        return scores.expand(len(users), -1)

    hits = warm_ablation.item_hits(score_fn, piece, SimpleNamespace(tie_order=None), 2)
    assert hits.tolist() == [0, 0, 0, 2, 2]
    # an item outside the slice's candidates is not a held-out pair of it
    only = np.array([True, True, True, False, True])
    piece = _slice([[1, 3], [3, 4], [0], [4]], n_items=5, candidates=only)
    hits = warm_ablation.item_hits(score_fn, piece, SimpleNamespace(tie_order=None), 2)
    assert hits.tolist() == [0, 0, 0, 0, 2]
    assert warm_ablation.held_out(piece).sum(axis=0).tolist() == [[1, 1, 0, 0, 2]]


def test_popularity_buckets_split_the_held_out_pairs_into_equal_shares(warm_ablation):
    import numpy as np
    import scipy.sparse as sp

    popularity = np.array([1.0, 2.0, 5.0, 50.0])
    # 2 held-out pairs per item: each item is a quarter of the pairs
    truth = sp.csr_matrix(np.array([[1, 1, 1, 1], [1, 1, 1, 1]], dtype=np.float32))
    bucket, edges = warm_ablation.popularity_buckets(popularity, truth, 2)
    assert bucket.tolist() == [0, 0, 1, 1]
    assert len(edges) == 1 and 2.0 <= edges[0] <= 5.0


def test_variants_split_on_commas_outside_brackets(warm_ablation):
    specs = "no_content,default+model.propagation.item_graph_modalities=[text,image];optim.lr=0.01"
    assert warm_ablation.split_variants(specs) == [
        "no_content",
        "default+model.propagation.item_graph_modalities=[text,image];optim.lr=0.01",
    ]
    overrides = warm_ablation.parse_overrides(
        warm_ablation.split_variants(specs)[1].partition("+")[2].split(";")
    )
    assert overrides["model"]["propagation"]["item_graph_modalities"] == ["text", "image"]


def test_gate_variants_are_valid_finetune_configs(warm_ablation):
    from crossrec.config import deep_merge
    from crossrec.models.config import FinetuneConfig

    for name in ("gate", "gate_learned", "gate_graph", "gate_output", "gate_output_steep"):
        overrides = warm_ablation.VARIANTS[name][1]
        config = FinetuneConfig.model_validate(deep_merge({}, overrides))
        assert config.model.content_gate.kind != "none"


def test_content_trade_keeps_the_share_of_todays_tail_gain():
    import numpy as np

    trade = load_benchmark("content_trade")

    class Split:
        is_cold = np.array([False] * 4)
        popularity = np.array([1.0, 2.0, 30.0, 40.0])
        test = np.eye(4)[[0, 1, 2, 3]]

    import scipy.sparse as sp

    Split.test = sp.csr_matrix(Split.test)

    def runs(hits):
        return [{"item_hits@20": hits, "seed": 1}]

    results = {"twin": runs([0, 0, 1, 1]), "today": runs([1, 1, 0, 1]), "half": runs([1, 0, 1, 1])}
    lines = trade.popularity_table(results, ["twin", "today", "half"], "twin", "today", Split, 4)
    assert lines[-1].endswith("| 50% |") and lines[-2].endswith("| 100% |")
