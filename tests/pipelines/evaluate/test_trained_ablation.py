"""evaluate.trained_ablation: the model's configuration retrained without content and without
each modality, paired against the model, in its own report section."""

from __future__ import annotations

import pandas as pd
import pytest

from crossrec.evaluation.experiments import trained_ablation_variants, without_modality
from crossrec.pipelines.evaluate import nodes

from .test_nodes import PARAMS, _artifacts


def test_variants_follow_the_scope_and_what_the_model_has():
    config = {"model": {"use_content": True}}
    assert trained_ablation_variants(config, ["text", "image"], "none") == []
    assert trained_ablation_variants(config, ["text", "image"], "content") == [
        ("trained w/o content", None)
    ]
    assert trained_ablation_variants(config, ["text", "image"], "modalities") == [
        ("trained w/o content", None),
        ("trained w/o text", "text"),
        ("trained w/o image", "image"),
    ]
    # one modality: without it is without content
    assert trained_ablation_variants(config, ["text"], "modalities") == [
        ("trained w/o content", None)
    ]
    assert trained_ablation_variants({"model": {"use_content": False}}, ["text"], "content") == []
    no_ids = {"model": {"use_content": True, "use_id_embedding": False}}
    assert trained_ablation_variants(no_ids, ["text"], "content") == []


def test_without_modality_removes_input_graph_and_named_graph_entry():
    features = {
        "text": {"vectors": 1},
        "image": {"vectors": 2},
        "audio": {"vectors": 3},
        "__order__": ["text", "image", "audio"],
    }
    graphs = {"text": "gt", "image": "gi", "audio": "ga"}
    config = {
        "model": {"propagation": {"item_graph_layers": 2, "item_graph_modalities": ["image"]}},
        "loss": {"content_weight": 0.1},
    }
    f, g, c = without_modality(features, graphs, config, "image")
    assert f["__order__"] == ["text", "audio"] and "image" not in f
    assert set(g) == {"text", "audio"}
    # the only graph it named is gone: no item graph at all, rather than every graph
    assert c["model"]["propagation"]["item_graph_layers"] == 0
    f, g, c = without_modality(features, graphs, config, None)
    assert f is features and g is graphs
    assert c["model"]["use_content"] is False and c["model"]["content_bias"] is False
    assert c["model"]["propagation"]["item_graph_layers"] == 0
    assert c["loss"]["content_weight"] == 0.0
    assert config["model"]["propagation"]["item_graph_layers"] == 2  # not mutated


@pytest.fixture(scope="module")
def trained_ablation(evaluate_inputs, tiny_trained_model) -> dict:
    """Every training job recorded (in-process: workers 1), then the node's output."""
    from crossrec.evaluation import experiments

    calls = []
    real = experiments.train_variant

    def recording(data, config, seed, where):
        modalities = [m for m in data.item_features if not m.startswith("__")]
        calls.append((config, sorted(modalities), sorted(data.modality_graphs), seed))
        return real(data, config, seed, where)

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(experiments, "train_variant", recording)
    params = PARAMS | {"ablation": False, "trained_ablation": "modalities", "workers": 1}
    split, artifacts = evaluate_inputs["split"], _artifacts(evaluate_inputs)
    try:
        model = nodes.evaluate_trained_model(tiny_trained_model, split, PARAMS, 2026, **artifacts)
        calls.clear()  # the model's own extra seed
        out = nodes.evaluate_modality_ablation(model, split, params, **artifacts)
    finally:
        monkeypatch.undo()
    return {"model": model, "out": out, "calls": calls, "params": params}


def test_each_variant_is_retrained_for_every_seed_without_its_content(trained_ablation):
    """The default model is the mix of the content model and its ID-only twin: the twin is
    the model without content (evaluated, not trained again); every modality is retrained."""
    out, calls = trained_ablation["out"], trained_ablation["calls"]
    assert set(out) == {
        "crossrec trained w/o content",
        "crossrec trained w/o text",
        "crossrec trained w/o image",
    }
    seeds = PARAMS["seeds"]
    assert all(len(e["runs"]) == len(seeds) and e["trained_ablation"] for e in out.values())
    assert len(calls) == 2 * len(seeds)
    assert all(c[0]["model"]["use_content"] for c in calls)
    assert out["crossrec trained w/o content"]["train_s"] == 0.0
    by_inputs = {(tuple(c[1]), tuple(c[2])) for c in calls}
    assert by_inputs == {(("image",), ("image",)), (("text",), ("text",))}


def test_the_mix_reports_its_twin_without_any_training(evaluate_inputs, trained_ablation):
    """trained_ablation none (the default): a mix still reports what content is worth, from
    the twin it holds, and trains nothing for it."""
    from crossrec.evaluation import experiments
    from crossrec.models.mixed import MIX_KEY

    model = trained_ablation["model"]
    assert all(MIX_KEY in bundle for bundle in model["bundles"])
    split, artifacts = evaluate_inputs["split"], _artifacts(evaluate_inputs)
    params = PARAMS | {"ablation": False, "trained_ablation": "none", "workers": 1}
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(experiments, "train_variant", lambda *a: pytest.fail("trained"))
    try:
        out = nodes.evaluate_modality_ablation(model, split, params, **artifacts)
    finally:
        monkeypatch.undo()
    assert list(out) == ["crossrec trained w/o content"]
    evaluation = nodes._evaluation(split, params, artifacts)
    runs = out["crossrec trained w/o content"]["runs"]
    for bundle, got in zip(model["bundles"], runs, strict=True):
        twin = bundle[MIX_KEY]["twin"]
        data = evaluation.artifacts.training_data(twin["config"])
        expected = evaluation.run(experiments.model_score_fn(twin, data, "cpu"))
        recall = "recall@10"
        assert (got["test"]["metrics"][recall] == expected["test"]["metrics"][recall]).all()


def test_content_worth_is_paired_and_has_its_own_report_section(trained_ablation):
    model, out, params = (trained_ablation[k] for k in ("model", "out", "params"))
    metrics, significance, timings = nodes.summarize_evaluation(model, {}, out, {}, {}, params)
    tests = significance["content_worth"]
    assert {t["model_b"] for t in tests} == set(out)
    assert {t["metric"] for t in tests} == set(PARAMS["significance_metrics"])
    assert all(t["model_a"] == "crossrec" and 0.0 <= t["wilcoxon_p"] <= 1.0 for t in tests)
    assert significance["tests"] == []  # no baseline: the variants are not baselines
    assert timings["__nodes__"]["evaluate_modality_ablation"]["jobs"] == 2 * len(PARAMS["seeds"])
    history = pd.DataFrame({"epoch": [0], "train_loss": [0.7], "val_recall@20": [0.1]})
    info = {"name": "synthetic", "n_users": 60, "n_items": 48, "n_interactions": 710}
    report, *_ = nodes.write_report(metrics, significance, timings, history, info, params)
    head, section = report.split("## What content is worth (trained without it)")
    assert "trained w/o" not in head.split("## Wall time")[0]  # not in the main tables
    assert "| crossrec trained w/o image |" in section and "Wilcoxon p" in section
