"""Human-readable outputs of the evaluation: markdown tables, the report and its figures."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from crossrec.evaluation.before_after import before_after_section
from crossrec.evaluation.popularity import by_popularity_section
from crossrec.evaluation.report_plots import (
    plot_ablation,
    plot_metric_at_k,
    plot_slices,
    plot_training_curves,
)
from crossrec.evaluation.report_sample import sample_section
from crossrec.evaluation.report_tables import fmt, markdown_table
from crossrec.evaluation.report_words import (
    COLD_USERS_KEY,
    WORDS_KEY,
    cold_users_section,
    words_section,
)

logger = logging.getLogger(__name__)

#: evaluation_timings.json's entry for the training nodes (wall time, workers); the others are
#: models
NODES_KEY = "__nodes__"

MetricsTable = dict[str, dict[str, dict[str, dict[str, float]]]]  # model -> slice -> metric -> stat


def metric_table(metrics: MetricsTable, slice_name: str, columns: Sequence[str]) -> str:
    """Models as rows, the given metrics of one slice as columns (mean ± std over seeds)."""
    rows = [
        [model, *(fmt(per_slice.get(slice_name, {}).get(c)) for c in columns)]
        for model, per_slice in metrics.items()
        if slice_name in per_slice
    ]
    return markdown_table(["model", *columns], rows)


def slice_table(metrics: MetricsTable, metric: str, slices: Sequence[str]) -> str:
    """Models as rows, one metric across slices as columns."""
    rows = [
        [model, *(fmt(per_slice.get(s, {}).get(metric)) for s in slices)]
        for model, per_slice in metrics.items()
    ]
    return markdown_table(["model", *slices], rows)


def significance_table(tests: Sequence[dict], alpha: float) -> str:
    rows = []
    for t in tests:
        significant = t["wilcoxon_p"] < alpha and t["mean_diff"] > 0
        rows.append(
            [
                t["slice"],
                t["metric"],
                t["model_a"],
                t["model_b"],
                str(t["n_users"]),
                f"{t['mean_a']:.4f}",
                f"{t['mean_b']:.4f}",
                f"{t['mean_diff']:+.4f}",
                f"{t['wilcoxon_p']:.2e}",
                f"{t['ttest_p']:.2e}",
                "yes" if significant else "no",
            ]
        )
    header = [
        "slice",
        "metric",
        "A",
        "B",
        "users",
        "A mean",
        "B mean",
        "A − B",
        "Wilcoxon p",
        "paired t p",
        f"A > B at α={alpha}",
    ]
    return markdown_table(header, rows)


def _training_time(timing: dict) -> str:
    """Training seconds spent in evaluate; a reused finetune artifact is said, not shown as 0."""
    if timing.get("inference_only"):
        return "– (inference-time ablation)"
    reused = int(timing.get("reused_seeds", 0))
    if reused and reused == timing["seeds"]:
        return "reused (finetune)"
    if reused:
        return f"{timing['train_s']} (+{reused} reused from finetune)"
    return str(timing["train_s"])


def model_timings(timings: dict) -> dict:
    """evaluation_timings.json's per-model entries (without the nodes' entry)."""
    return {name: timing for name, timing in timings.items() if name != NODES_KEY}


def nodes_note(timings: dict) -> list[str]:
    """One line per training node: its wall time and the worker processes it trained on."""
    lines = []
    for node, entry in timings.get(NODES_KEY, {}).items():
        if entry.get("jobs"):
            lines.append(
                f"`{node}`: {entry['jobs']} training runs on {entry['workers']} worker "
                f"process(es) (evaluate.workers), {entry['wall_s']} s wall time."
            )
    if any(entry.get("workers", 1) > 1 for entry in timings.get(NODES_KEY, {}).values()):
        lines.append(
            "Training (s) sums each model's runs; runs on several workers overlap, so the "
            "sum can exceed the wall time."
        )
    return [" ".join(lines), ""] if lines else []


def selection_section(timings: dict) -> list[str]:
    """The configuration each searched baseline chose on validation, from how many."""
    rows = []
    timings = model_timings(timings)
    for name, timing in timings.items():
        sel = timing.get("selection")
        if not sel:
            continue
        best = max(t["valid"] for t in sel["trials"])
        chosen = ", ".join(f"{k} {v}" for k, v in sel["chosen"].items())
        rows.append([name, sel["grid_size"], chosen, f"{best:.4f}", sel["seed"], sel["select_s"]])
    if not rows:
        return []
    metric = next(t["selection"]["metric"] for t in timings.values() if t.get("selection"))
    edges = [t["selection"].get("grid_edge") for t in timings.values() if t.get("selection")]
    return [
        "## Baseline configurations (chosen on validation)",
        "",
        f"Each searched baseline trained every point of its grid with one seed and kept the "
        f"best by {metric}; its seeds and the test slices ran with that configuration only "
        "(evaluate.selection, evaluate.baselines.<name>.grid).",
        "",
        markdown_table(
            ["baseline", "grid size", "chosen", metric, "selection seed", "selection (s)"],
            rows,
        ),
        "",
        *(f"- {edge}" for edge in edges if edge),
        "",
    ]


def mix_section(timings: dict, seeds: list[int]) -> list[str]:
    """The point of the twin / content model mix each seed chose on validation
    (``model.content_mix``): how far the warm items lean on content, and the tail's places."""
    choices = next((t["content_mix"] for t in timings.values() if t.get("content_mix")), None)
    if not choices:
        return []
    rows = [
        [seed, c["tau"], c["slope"], c["scale"], c["slots"]]
        for seed, c in zip(seeds, choices, strict=False)
    ]
    return [
        "## The mix of the content model and its ID-only twin (chosen on validation)",
        "",
        "Warm items are ranked by a mix of both models' scores whose twin share grows with "
        "the item's train interactions (tau: the degree at which it is half; inf: the content "
        "model alone), and `slots` of each list's first places go to the content model's best "
        "rarely seen items; cold items are the content model's (model.content_mix, "
        "docs/content-gate.md).",
        "",
        markdown_table(["seed", "tau", "slope", "twin scale", "tail slots"], rows),
        "",
    ]


def content_worth_section(
    metrics: dict, significance: dict, cfg, trained: list[str], slices: list[str]
) -> list[str]:
    """The model against itself retrained without content / each modality
    (``evaluate.trained_ablation``): does content pay on warm items of this dataset?"""
    if not trained:
        return []
    k = cfg.k
    shown = [s for s in slices if s in ("test", "test_warm", "test_cold")]
    subset = {m: metrics[m] for m in [cfg.model_name, *trained]}
    breadth = "test_warm" if "test_warm" in shown else "test"
    tests = significance.get("content_worth", [])
    return [
        "## What content is worth (trained without it)",
        "",
        f"{cfg.model_name}'s own configuration retrained without content (no fusion, no "
        "modality item graph, no content loss) or without one modality (no input, no kNN "
        "graph), every seed (evaluate.trained_ablation; a mix's model without content is its "
        "own ID-only twin, not trained again). A = the model, B = the variant: a positive "
        "difference is what the content (or the modality) adds. Paired over users, per-user "
        "values averaged over seeds.",
        "",
        f"Recall@{k}:",
        "",
        slice_table(subset, f"recall@{k}", shown),
        "",
        f"NDCG@{k}:",
        "",
        slice_table(subset, f"ndcg@{k}", shown),
        "",
        f"Breadth on {breadth}:",
        "",
        metric_table(subset, breadth, [f"coverage@{k}", f"arp@{k}"]),
        "",
        significance_table(tests, cfg.alpha) if tests else "(no paired test)",
        "",
    ]


def _split_warning(dataset_info: dict) -> list[str]:
    """A published split that a cold-item holdout changed is stated where results are read."""
    if not dataset_info.get("published_split_altered"):
        return []
    return [
        "**Warning:** the dataset's published split was altered by a cold-item holdout "
        f"(`{dataset_info.get('split_strategy')}`); compare with published results only on "
        "an untouched split.",
        "",
    ]


def modality_lift_section(report: dict | None) -> list[str]:
    """report.md lines: how often each modality graph's neighbours share train users (fuse's
    ``modality_graph_report``), empty without it."""
    if not report:
        return []
    rows = [
        [name, entry["edges"], "-" if entry["lift"] is None else f"{entry['lift']:.2f}"]
        for name, entry in report.items()
    ]
    return [
        "## How collaborative is each modality",
        "",
        "Lift: the mean train co-occurrence cosine of each modality kNN graph's edges over the "
        "same mean across random pairs of distinct items (`modality_graphs.json`, written by "
        "fuse; 1 = the content links items no more often co-consumed than chance). Content "
        "near 1 carries little of what the IDs learn from interactions: expect it to help "
        "cold items more than warm ones.",
        "",
        markdown_table(["modality", "graph edges", "lift"], rows),
        "",
    ]


def build_report(
    metrics: dict,
    significance: dict,
    timings: dict,
    training_history,
    dataset_info: dict,
    cfg,
    before_after: dict | None = None,
    modality_lift: dict | None = None,
):
    """report.md and the figures; logs the test table so a run ends with the numbers.

    ``cfg`` is the evaluate config (:class:`crossrec.evaluation.config.EvaluateConfig`);
    ``before_after``: results of ``benchmarks/llm_before_after.py``, shown for LLM models;
    ``modality_lift``: fuse's ``modality_graph_report`` (None when an older fuse wrote none).
    """
    k = cfg.k
    words, cold_users = metrics.get(WORDS_KEY), metrics.get(COLD_USERS_KEY)
    metrics = {m: v for m, v in metrics.items() if m not in (WORDS_KEY, COLD_USERS_KEY)}
    main_cols = (
        [f"recall@{x}" for x in cfg.ks]
        + [f"ndcg@{x}" for x in cfg.ks]
        + [f"precision@{k}", f"mrr@{k}", f"hit@{k}", f"map@{k}"]
    )
    beyond_cols = [f"coverage@{k}", f"novelty@{k}", f"arp@{k}", f"ild@{k}"]
    order = [*cfg.slices, "users_short", "users_medium", "users_long"]
    present = {s for per in metrics.values() for s in per}
    slices_present = [s for s in order if s in present] + sorted(present - set(order))
    ablations = [m for m in metrics if m.startswith(f"{cfg.model_name} w/o ")]
    trained = [m for m in metrics if m.startswith(f"{cfg.model_name} trained w/o ")]
    all_metrics, metrics = metrics, {m: v for m, v in metrics.items() if m not in trained}
    test_table = metric_table(metrics, "test", main_cols)
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
        + (
            "`test_warm` / `test_cold`: only warm / cold-start items compete and count. "
            if "test_cold" in present
            else ""
        )
        + (
            "`users_*`: test users bucketed by training-history length "
            f"(quantiles {cfg.history_quantiles})."
            if any(s.startswith("users_") for s in present)
            else ""
        ),
        "",
        *_split_warning(dataset_info),
        "## Test accuracy",
        "",
        test_table,
        "",
        *sample_section(metrics, cfg, [s for s in slices_present if not s.startswith("users_")]),
        "## Beyond accuracy (test)",
        "",
        f"coverage = share of the catalogue in some top-{k}; novelty = mean −log2 popularity; "
        f"arp = mean relative training popularity of recommended items; ild = intra-list "
        f"content diversity (1 − cosine).",
        "",
        metric_table(metrics, "test", beyond_cols),
        "",
        f"## Slices (recall@{k})",
        "",
        slice_table(metrics, f"recall@{k}", slices_present),
        "",
        f"## Slices (ndcg@{k})",
        "",
        slice_table(metrics, f"ndcg@{k}", slices_present),
        "",
        "## Significance",
        "",
        f"Best baseline by {significance['selected_by']}: **{significance['best_baseline']}**. "
        "Paired over users (per-user values averaged over seeds), two-sided.",
        "",
        significance_table(sig_rows, cfg.alpha) if sig_rows else "(no baseline)",
        "",
    ]
    if other_rows:
        parts += [
            "Against the other baselines:",
            "",
            significance_table(other_rows, cfg.alpha),
            "",
        ]
    if ablations:
        parts += [
            "## Modality ablation (inference-time, missing vectors)",
            "",
            slice_table(
                {m: metrics[m] for m in [cfg.model_name, *ablations]},
                f"recall@{k}",
                [s for s in slices_present if s != "valid"],
            ),
            "",
        ]
    parts += words_section(words)
    parts += cold_users_section(cold_users)
    parts += mix_section(timings, list(cfg.seeds))
    parts += content_worth_section(all_metrics, significance, cfg, trained, slices_present)
    parts += by_popularity_section(
        significance.get("by_popularity") or {}, all_metrics, cfg.model_name
    )
    parts += modality_lift_section(modality_lift)
    parts += before_after_section(before_after)
    parts += selection_section(timings)
    parts += [
        "## Wall time",
        "",
        markdown_table(
            ["model", "training (s)", "evaluation (s)", "runs"],
            [
                [m, _training_time(t), t["eval_s"], t["seeds"]]
                for m, t in model_timings(timings).items()
            ],
        ),
        "",
        *nodes_note(timings),
    ]
    report_md = "\n".join(parts)
    logger.info("evaluation (test, mean ± std over seeds):\n%s", test_table)
    logger.info(
        "slices (recall@%d):\n%s",
        k,
        slice_table(
            {m: v for m, v in metrics.items() if m not in ablations},
            f"recall@{k}",
            [s for s in slices_present if s != "valid"],
        ),
    )
    if words:
        logger.info("words (test requests):\n%s", "\n".join(words_section(words)[2:]))
    if sig_rows:
        logger.info(
            "significance vs %s:\n%s",
            significance["best_baseline"],
            significance_table(sig_rows, cfg.alpha),
        )
    bar_slices = [
        s
        for s in slices_present
        if s in ("test", "test_warm", "test_cold") or s.startswith("users_")
    ]
    figures = (
        plot_metric_at_k({m: v for m, v in metrics.items() if m not in ablations}, "test", cfg.ks),
        plot_slices(
            {m: v for m, v in metrics.items() if m not in ablations}, bar_slices, f"recall@{k}"
        ),
        plot_ablation(metrics, cfg.model_name, ablations, "test", (f"recall@{k}", f"ndcg@{k}")),
        plot_training_curves(training_history),
    )
    return (report_md, *figures)
