"""Evaluate nodes: the trained model (several seeds), baselines on the same split and code path,
modality ablation, metrics.json, significance, report and plots.

Heavy libraries (torch, lightning) are imported inside the functions so that the pipeline
registry stays fast.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crossrec.config import parse_params
from crossrec.evaluation import report as rep
from crossrec.evaluation.protocol import (
    EvalSplit,
    aggregate_seeds,
    build_split,
    evaluate_scorer,
    history_buckets,
    per_user_seed_mean,
    ranking_slices,
)
from crossrec.pipelines.evaluate.schema import BaselineConfig, EvaluateConfig

logger = logging.getLogger(__name__)

WHERE = "conf/base/parameters_evaluate.yml: evaluate"


def _config(params: dict | EvaluateConfig) -> EvaluateConfig:
    return parse_params(EvaluateConfig, params, where=WHERE)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _progress(iterable, desc: str):
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False)


def prepare_evaluation(
    interactions: pd.DataFrame, items: pd.DataFrame, dataset_info: dict, params: dict
) -> EvalSplit:
    """Split matrices and item/user facts shared by every model evaluated."""
    cfg = _config(params)  # fail on a bad parameters file before any training
    split = build_split(
        interactions,
        items,
        int(dataset_info["n_users"]),
        int(dataset_info["n_items"]),
        tie_break_seed=cfg.tie_break_seed if cfg.tie_break == "random" else None,
    )
    logger.info(
        "evaluation split: %d users x %d items; train %d, valid %d, test %d; %d cold items",
        split.n_users,
        split.n_items,
        split.train.nnz,
        split.valid.nnz,
        split.test.nnz,
        int(split.is_cold.sum()),
    )
    return split


@dataclass
class Upstream:
    """The artifacts every trained variant is rebuilt from (as finetune built its data)."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    dataset_info: dict
    fused_item_features: dict
    modality_graphs: dict
    user_item_graph: Any
    item_texts: list[str] | None

    def training_data(self, config: dict, features: dict | None = None, graphs=None):
        """finetune's own TrainingData builder, so evaluation sees exactly what training saw."""
        from crossrec.pipelines.finetune.nodes import build_training_data

        return build_training_data(
            self.interactions,
            self.items,
            self.dataset_info,
            self.fused_item_features if features is None else features,
            self.modality_graphs if graphs is None else graphs,
            self.user_item_graph,
            config,
            self.item_texts,
        )


def _content(features: dict) -> np.ndarray | None:
    from crossrec.evaluation.beyond import content_vectors

    return content_vectors(features) if features else None


def _run(score_fn, split: EvalSplit, cfg: EvaluateConfig, content, slices=None) -> dict:
    buckets = (
        history_buckets(split.history_length, cfg.history_quantiles)
        if cfg.history_quantiles
        else None
    )
    return evaluate_scorer(
        score_fn,
        split,
        ranking_slices(split, slices or cfg.slices),
        cfg.ks,
        cfg.k,
        content,
        user_buckets=buckets,
        device=_device(cfg.device),
        chunk_users=cfg.chunk_users,
    )


def evaluate_trained_model(
    trained_model: dict,
    split: EvalSplit,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    dataset_info: dict,
    fused_item_features: dict,
    modality_graphs: dict,
    user_item_graph: Any,
    item_texts: list[str] | None,
    params: dict,
    seed: int,
) -> dict:
    """The trained model on every slice, for every seed in ``evaluate.seeds``.

    The ``trained_model`` artifact is used for the seed it was trained with; other seeds
    retrain the same configuration (``trained_model["config"]``) from scratch.
    """
    from crossrec.evaluation.experiments import bundle_seed, model_score_fn, train_variant

    cfg = _config(params)
    up = Upstream(
        interactions,
        items,
        dataset_info,
        fused_item_features,
        modality_graphs,
        user_item_graph,
        item_texts,
    )
    config = dict(trained_model["config"])
    data = up.training_data(config)
    content = _content(fused_item_features)
    trained_seed = bundle_seed(trained_model, seed)
    if trained_seed not in cfg.seeds:
        logger.warning(
            "trained_model was trained with seed %d, not in evaluate.seeds %s: all seeds retrained",
            trained_seed,
            cfg.seeds,
        )
    runs, bundles, train_s, eval_s = [], [], 0.0, 0.0
    for s in _progress(cfg.seeds, f"{cfg.model_name} seeds"):
        start = time.perf_counter()
        if s == trained_seed:
            bundle = trained_model
        else:
            bundle = train_variant(
                data, config, s, where=f"{cfg.model_name} (trained_model config)"
            )
        train_s += time.perf_counter() - start
        start = time.perf_counter()
        runs.append(_run(model_score_fn(bundle, data, _device(cfg.device)), split, cfg, content))
        eval_s += time.perf_counter() - start
        bundles.append(bundle)
    test = aggregate_seeds(runs).get("test", {})
    logger.info(
        "%s: test recall@20 %s (retraining %.1fs, eval %.1fs)",
        cfg.model_name,
        rep.fmt(test.get("recall@20")),
        train_s,
        eval_s,
    )
    return {
        "name": cfg.model_name,
        "runs": runs,
        "seeds": list(cfg.seeds),
        "train_s": train_s,
        "eval_s": eval_s,
        "bundles": bundles,
    }


def _simple_scorer(spec: BaselineConfig, split: EvalSplit, seed: int):
    from crossrec.evaluation.baselines import ItemKNN, MostPopular, RandomScorer

    if spec.kind == "most_popular":
        return MostPopular(split.train)
    if spec.kind == "item_knn":
        return ItemKNN(split.train, neighbours=spec.neighbours, shrink=spec.shrink)
    return RandomScorer(split.n_items, seed=seed)


def evaluate_baselines(
    trained_model: dict,
    split: EvalSplit,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    dataset_info: dict,
    fused_item_features: dict,
    modality_graphs: dict,
    user_item_graph: Any,
    item_texts: list[str] | None,
    params: dict,
) -> dict:
    """Every baseline on the same split, slices and ranking code as the trained model.

    ``finetune`` baselines are the trained model's own finetune config with
    ``baseline_defaults`` and then the baseline's ``overrides`` merged in.
    """
    from crossrec.evaluation.experiments import (
        deep_merge,
        model_score_fn,
        select_modalities,
        train_variant,
    )

    cfg = _config(params)
    up = Upstream(
        interactions,
        items,
        dataset_info,
        fused_item_features,
        modality_graphs,
        user_item_graph,
        item_texts,
    )
    content = _content(fused_item_features)
    device = _device(cfg.device)
    out: dict[str, dict] = {}
    enabled = [(name, spec) for name, spec in cfg.baselines.items() if spec.enabled]
    for name, spec in _progress(enabled, "baselines"):
        runs, train_s, eval_s = [], 0.0, 0.0
        seeds = list(spec.seeds or cfg.seeds)
        if spec.kind == "finetune":
            features = select_modalities(fused_item_features, spec.modalities)
            if spec.modalities is not None and not features["__order__"]:
                logger.warning(
                    "baseline %s skipped: none of its modalities %s in this dataset (has %s)",
                    name,
                    spec.modalities,
                    [m for m in fused_item_features if not m.startswith("__")],
                )
                continue
            base = deep_merge(dict(trained_model["config"]), cfg.baseline_defaults)
            config = deep_merge(base, spec.overrides)
            data = up.training_data(config, features=features)
        elif spec.kind != "random":
            seeds = seeds[:1]  # deterministic scorers: one run
        for s in seeds:
            start = time.perf_counter()
            if spec.kind == "finetune":
                bundle = train_variant(data, config, s, where=f"{WHERE}.baselines.{name}")
                scorer = model_score_fn(bundle, data, device)
            else:
                scorer = _simple_scorer(spec, split, s)
            train_s += time.perf_counter() - start
            start = time.perf_counter()
            runs.append(_run(scorer, split, cfg, content))
            eval_s += time.perf_counter() - start
        out[name] = {"runs": runs, "seeds": seeds, "train_s": train_s, "eval_s": eval_s}
        test = aggregate_seeds(runs).get("test", {})
        logger.info(
            "baseline %s: test recall@20 %s (train %.1fs, eval %.1fs)",
            name,
            rep.fmt(test.get("recall@20")),
            train_s,
            eval_s,
        )
    return out


def evaluate_modality_ablation(
    model_runs: dict,
    split: EvalSplit,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    dataset_info: dict,
    fused_item_features: dict,
    modality_graphs: dict,
    user_item_graph: Any,
    item_texts: list[str] | None,
    params: dict,
) -> dict:
    """The trained model (every seed) with one modality removed at inference time."""
    from crossrec.evaluation.experiments import ablate_modality, model_score_fn

    cfg = _config(params)
    if not cfg.ablation:
        return {}
    bundles = model_runs["bundles"]
    modalities = list(bundles[0].get("modalities") or [])
    if not modalities or not bundles[0]["config"].get("model", {}).get("use_content", True):
        logger.info("modality ablation skipped: the model uses no content modalities")
        return {}
    up = Upstream(
        interactions,
        items,
        dataset_info,
        fused_item_features,
        modality_graphs,
        user_item_graph,
        item_texts,
    )
    device = _device(cfg.device)
    content = _content(fused_item_features)
    slices = [s for s in cfg.slices if s != "valid"]
    out = {}
    for modality in _progress(modalities, "modality ablation"):
        runs, start = [], time.perf_counter()
        for bundle in bundles:
            features, graphs = ablate_modality(
                fused_item_features, modality_graphs, modality, bundle["config"]
            )
            data = up.training_data(bundle["config"], features=features, graphs=graphs)
            runs.append(_run(model_score_fn(bundle, data, device), split, cfg, content, slices))
        out[f"{cfg.model_name} w/o {modality}"] = {
            "runs": runs,
            "seeds": list(cfg.seeds),
            "train_s": 0.0,
            "eval_s": time.perf_counter() - start,
        }
    return out


def _all_models(model_runs: dict, baseline_runs: dict, ablation_runs: dict) -> dict:
    return {model_runs["name"]: model_runs} | baseline_runs | ablation_runs


def per_user_table(model_runs: dict, baseline_runs: dict, ablation_runs: dict) -> pd.DataFrame:
    """Long table of every per-user result: one row per (model, seed, slice, user), one column
    per metric. Paired tests against models run elsewhere (benchmarks/vs_cornac.py) and any
    further slicing start from it instead of re-running evaluation."""
    frames = []
    for name, entry in _all_models(model_runs, baseline_runs, ablation_runs).items():
        for seed, run in zip(entry["seeds"], entry["runs"], strict=True):
            for slice_name, result in run.items():
                frame = pd.DataFrame(
                    {m: np.asarray(v, dtype=np.float64) for m, v in result["metrics"].items()}
                )
                frame.insert(0, "user_idx", np.asarray(result["users"], dtype=np.int64))
                frame.insert(0, "slice", slice_name)
                frame.insert(0, "seed", int(seed))
                frame.insert(0, "model", name)
                frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["model", "seed", "slice", "user_idx"])
    return pd.concat(frames, ignore_index=True)


def summarize_evaluation(
    model_runs: dict, baseline_runs: dict, ablation_runs: dict, params: dict
) -> tuple[dict, dict, dict]:
    """metrics.json (model -> slice -> metric -> {mean, std}), significance tests, timings."""
    from crossrec.evaluation.significance import paired_test

    cfg = _config(params)
    everything = _all_models(model_runs, baseline_runs, ablation_runs)
    metrics = {name: aggregate_seeds(entry["runs"]) for name, entry in everything.items()}
    primary = cfg.significance_metrics[0] if cfg.significance_metrics else f"recall@{cfg.k}"
    candidates = {
        name: metrics[name].get("test", {}).get(primary, {}).get("mean", -1.0)
        for name in baseline_runs
    }
    best = max(candidates, key=candidates.get) if candidates else None
    model_entry = model_runs
    tests = []
    for baseline in baseline_runs:
        for slice_name in cfg.significance_slices:
            if (
                slice_name not in model_entry["runs"][0]
                or slice_name not in baseline_runs[baseline]["runs"][0]
            ):
                continue
            for metric in cfg.significance_metrics:
                users_a, a = per_user_seed_mean(model_entry["runs"], slice_name, metric)
                users_b, b = per_user_seed_mean(baseline_runs[baseline]["runs"], slice_name, metric)
                if not np.array_equal(users_a, users_b):
                    raise ValueError(
                        f"slice {slice_name}: {cfg.model_name} and {baseline} were "
                        "evaluated on different users"
                    )
                result = paired_test(a, b, metric).as_dict()
                tests.append(
                    result
                    | {
                        "slice": slice_name,
                        "model_a": cfg.model_name,
                        "model_b": baseline,
                        "best_baseline": baseline == best,
                    }
                )
    significance = {
        "best_baseline": best,
        "selected_by": f"test {primary}",
        "alpha": cfg.alpha,
        "seeds": list(cfg.seeds),
        "tests": tests,
    }
    timings = {
        name: {
            "train_s": round(entry["train_s"], 2),
            "eval_s": round(entry["eval_s"], 2),
            "seeds": len(entry["runs"]),
        }
        for name, entry in everything.items()
    }
    return metrics, significance, timings


def write_report(
    metrics: dict,
    significance: dict,
    timings: dict,
    training_history: pd.DataFrame,
    dataset_info: dict,
    params: dict,
):
    """report.md and the figures; logs the test table so a run ends with the numbers."""
    cfg = _config(params)
    k = cfg.k
    main_cols = (
        [f"recall@{x}" for x in cfg.ks]
        + [f"ndcg@{x}" for x in cfg.ks]
        + [f"precision@{k}", f"mrr@{k}", f"hit@{k}", f"map@{k}"]
    )
    beyond_cols = [f"coverage@{k}", f"novelty@{k}", f"arp@{k}", f"ild@{k}"]
    order = [*cfg.slices, "users_short", "users_medium", "users_long"]
    present = {s for per in metrics.values() for s in per}
    slices_present = [s for s in order if s in present] + sorted(present - set(order))
    test_table = rep.metric_table(metrics, "test", main_cols)
    ablations = [m for m in metrics if m.startswith(f"{cfg.model_name} w/o ")]
    sig_rows = [t for t in significance["tests"] if t["best_baseline"]]
    other_rows = [t for t in significance["tests"] if not t["best_baseline"]]
    parts = [
        f"# Evaluation report: {dataset_info.get('name', '')}",
        "",
        f"{dataset_info.get('n_users')} users × {dataset_info.get('n_items')} items, "
        f"{dataset_info.get('n_interactions')} interactions, "
        f"split `{dataset_info.get('split_strategy')}`. "
        f"Seeds {cfg.seeds} (mean ± sample std over seeds; deterministic baselines run once).",
        "",
        "Protocol: full ranking over all items; the user's train items (and valid items for "
        "test) are masked; users without held-out items are left out; "
        + (
            f"tied scores ranked in one seeded random item order (seed {cfg.tie_break_seed}), "
            "the same for every model. "
            if cfg.tie_break == "random"
            else "ties broken by item index. "
        )
        + "`test_warm` / `test_cold`: only warm / cold-start items compete and count. "
        "`users_*`: test users bucketed by training-history length "
        f"(quantiles {cfg.history_quantiles}).",
        "",
        "## Test accuracy",
        "",
        test_table,
        "",
        "## Beyond accuracy (test)",
        "",
        f"coverage = share of the catalogue in some top-{k}; novelty = mean −log2 popularity; "
        f"arp = mean relative training popularity of recommended items; ild = intra-list "
        f"content diversity (1 − cosine).",
        "",
        rep.metric_table(metrics, "test", beyond_cols),
        "",
        f"## Slices (recall@{k})",
        "",
        rep.slice_table(metrics, f"recall@{k}", slices_present),
        "",
        f"## Slices (ndcg@{k})",
        "",
        rep.slice_table(metrics, f"ndcg@{k}", slices_present),
        "",
        "## Significance",
        "",
        f"Best baseline by {significance['selected_by']}: **{significance['best_baseline']}**. "
        "Paired over users (per-user values averaged over seeds), two-sided.",
        "",
        rep.significance_table(sig_rows, cfg.alpha) if sig_rows else "(no baseline)",
        "",
    ]
    if other_rows:
        parts += [
            "Against the other baselines:",
            "",
            rep.significance_table(other_rows, cfg.alpha),
            "",
        ]
    if ablations:
        parts += [
            "## Modality ablation (inference-time, missing vectors)",
            "",
            rep.slice_table(
                {m: metrics[m] for m in [cfg.model_name, *ablations]},
                f"recall@{k}",
                [s for s in slices_present if s != "valid"],
            ),
            "",
        ]
    parts += [
        "## Wall time",
        "",
        rep.markdown_table(
            ["model", "training (s)", "evaluation (s)", "runs"],
            [[m, t["train_s"], t["eval_s"], t["seeds"]] for m, t in timings.items()],
        ),
        "",
    ]
    report_md = "\n".join(parts)
    logger.info("evaluation (test, mean ± std over seeds):\n%s", test_table)
    logger.info(
        "slices (recall@%d):\n%s",
        k,
        rep.slice_table(
            {m: v for m, v in metrics.items() if m not in ablations},
            f"recall@{k}",
            [s for s in slices_present if s != "valid"],
        ),
    )
    if sig_rows:
        logger.info(
            "significance vs %s:\n%s",
            significance["best_baseline"],
            rep.significance_table(sig_rows, cfg.alpha),
        )
    bar_slices = [
        s
        for s in slices_present
        if s in ("test", "test_warm", "test_cold") or s.startswith("users_")
    ]
    figures = (
        rep.plot_metric_at_k(
            {m: v for m, v in metrics.items() if m not in ablations}, "test", cfg.ks
        ),
        rep.plot_slices(
            {m: v for m, v in metrics.items() if m not in ablations}, bar_slices, f"recall@{k}"
        ),
        rep.plot_ablation(metrics, cfg.model_name, ablations, "test", (f"recall@{k}", f"ndcg@{k}")),
        rep.plot_training_curves(training_history),
    )
    return (report_md, *figures)
