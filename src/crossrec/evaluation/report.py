"""Human-readable outputs of the evaluation: markdown tables, the report and its figures."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from crossrec.evaluation.before_after import before_after_section
from crossrec.evaluation.popularity import by_popularity_section

logger = logging.getLogger(__name__)

#: evaluation_timings.json's entry for the training nodes (wall time, workers); the others are
#: models
NODES_KEY = "__nodes__"

MetricsTable = dict[str, dict[str, dict[str, dict[str, float]]]]  # model -> slice -> metric -> stat


def fmt(stat: dict[str, float] | None, std: bool = True) -> str:
    if not stat:
        return "–"
    if std and stat.get("std", 0.0) > 0:
        return f"{stat['mean']:.4f} ± {stat['std']:.4f}"
    return f"{stat['mean']:.4f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


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


def _figure(width: float = 7.0, height: float = 4.0):
    # the object-oriented API: no pyplot state, safe in Kedro's threads
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_metric_at_k(
    metrics: MetricsTable, slice_name: str, ks: Sequence[int], names=("recall", "ndcg")
):
    fig = _figure(10, 4)
    axes = fig.subplots(1, len(names))
    for ax, name in zip(axes, names, strict=True):
        for model, per_slice in metrics.items():
            stats = per_slice.get(slice_name, {})
            points = [(k, stats[f"{name}@{k}"]) for k in ks if f"{name}@{k}" in stats]
            if not points:
                continue
            xs = [k for k, _ in points]
            ax.errorbar(
                xs,
                [s["mean"] for _, s in points],
                yerr=[s["std"] for _, s in points],
                marker="o",
                capsize=3,
                label=model,
            )
        ax.set_xlabel("K")
        ax.set_ylabel(f"{name}@K ({slice_name})")
        ax.set_xticks(list(ks))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{slice_name}: metric@K (mean ± std over seeds)")
    return fig


def plot_slices(metrics: MetricsTable, slices: Sequence[str], metric: str):
    """Grouped bars: one group per slice (warm vs cold, user buckets), one bar per model."""
    fig = _figure(10, 4)
    ax = fig.subplots()
    models = list(metrics)
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        stats = [metrics[model].get(s, {}).get(metric) for s in slices]
        ax.bar(
            [j + i * width for j in range(len(slices))],
            [s["mean"] if s else 0 for s in stats],
            width,
            yerr=[s["std"] if s else 0 for s in stats],
            capsize=2,
            label=model,
        )
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(slices))], list(slices))
    ax.set_ylabel(metric)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"{metric} by slice (mean ± std over seeds)")
    return fig


def plot_ablation(
    metrics: MetricsTable,
    model: str,
    ablations: Sequence[str],
    slice_name: str,
    names=("recall@20", "ndcg@20"),
):
    fig = _figure(8, 4)
    ax = fig.subplots()
    labels = [model, *ablations]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        stats = [metrics.get(label, {}).get(slice_name, {}).get(name) for label in labels]
        ax.bar(
            [j + i * width for j in range(len(labels))],
            [s["mean"] if s else 0 for s in stats],
            width,
            yerr=[s["std"] if s else 0 for s in stats],
            capsize=2,
            label=name,
        )
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))], labels, rotation=15)
    ax.legend()
    ax.set_title(f"Modality ablation at inference ({slice_name})")
    return fig


def plot_training_curves(history) -> object:
    """train loss and validation metrics per epoch from ``training_history``."""
    fig = _figure(10, 4)
    left, right = fig.subplots(1, 2)
    if history is not None and len(history) and "epoch" in history:
        for column in [c for c in history.columns if "loss" in c]:
            left.plot(history["epoch"], history[column], marker=".", label=column)
        for column in [c for c in history.columns if c.startswith("val") and "loss" not in c]:
            if any(tag in column for tag in ("recall", "ndcg")):
                right.plot(history["epoch"], history[column], marker=".", label=column)
    for ax, title in ((left, "loss"), (right, "validation")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


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
        "graph), every seed (evaluate.trained_ablation). A = the model, B = the variant: a "
        "positive difference is what the content (or the modality) adds. Paired over users, "
        "per-user values averaged over seeds.",
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


WORDS_KEY = "words"

#: what each row of the Words table does with the request
WORDS_ROWS = {
    "history_only": "history only (the trained model, words ignored)",
    "bm25": "words only, lexical (BM25 over the item text)",
    "dense_frozen": "words only, dense (frozen encoder)",
    "tower_frozen": "words only, query tower (frozen encoder)",
    "words_history_frozen": "words + history (frozen encoder)",
    "dense_finetuned": "words only, dense (fine-tuned encoder)",
    "words_history_finetuned": "words + history (fine-tuned encoder)",
    "mostpop_no_history": "no history: MostPop",
    "words_only_no_history": "no history: words only",
}


def _block_tables(block: dict, labels: dict[str, str], first: str) -> tuple[str, str]:
    """(mean ± std table of the block's rows, table of its paired tests) at the block's k."""
    k = block.get("k", 20)
    metrics = (f"recall@{k}", f"ndcg@{k}")
    rows = [
        [label, *(f"{block[name][m]:.4f} ± {block[name][m + '_std']:.4f}" for m in metrics)]
        for name, label in labels.items()
        if name in block
    ]
    tests = [
        [pair, *(f"{t[m]['mean_diff']:+.4f} (p = {t[m]['wilcoxon_p']:.2g})" for m in metrics)]
        for pair, t in block.get("significance", {}).items()
    ]
    return (
        markdown_table([first, *metrics], rows),
        markdown_table(["comparison", *(f"Δ {m}" for m in metrics)], tests),
    )


def words_section(words: dict | None) -> list[str]:
    """The "Words" table: requests in words on the test requests, mean ± std over seeds."""
    if not words:
        return []
    k = words.get("k", 20)
    table, tests = _block_tables(words, WORDS_ROWS, "requests ranked by")
    requests = words.get("requests", {})
    cold = words.get("cold_item_requests")
    cold_lines = []
    if cold:
        cold_rows = [
            [label, *(f"{cold[name][m]:.4f}" for m in (f"recall@{k}", f"ndcg@{k}"))]
            for name, label in WORDS_ROWS.items()
            if name in cold
        ]
        cold_lines = [
            f"The {cold['requests']} test requests that ask for cold-start items (no "
            "interaction in train):",
            "",
            markdown_table(["requests ranked by", f"recall@{k}", f"ndcg@{k}"], cold_rows),
            "",
        ]
    return [
        "## Words",
        "",
        f"{requests.get('test')} test requests in words ({requests.get('valid')} valid, "
        f"{words.get('training_pairs')} training pairs; encoder `{words.get('encoder')}`): "
        "full ranking, the user's known items masked except in the no-history rows. Blend "
        "weights chosen on the valid requests.",
        "",
        table,
        "",
        "Paired Wilcoxon over test requests (values averaged over seeds):",
        "",
        tests,
        "",
        *cold_lines,
    ]


COLD_USERS_KEY = "cold_users"

COLD_USER_ROWS = {
    "mostpop": "MostPop",
    "group_popularity": "popularity in the user's attribute group",
    "attributes_tower": "attributes as words, query tower",
    "attributes": "attributes: tower + group popularity (weights from valid)",
}


def cold_users_section(block: dict | None) -> list[str]:
    """The "Users without history" table (cold-user holdout, lists from attributes)."""
    if not block:
        return []
    table, tests = _block_tables(block, COLD_USER_ROWS, "lists from")
    return [
        "## Users without history",
        "",
        f"{block['users']['test']} test users held out whole ({block['users']['valid']} valid), "
        f"recommended from {', '.join(block['described_by'])} only; every item ranked. Group "
        f"popularity shrunk towards overall popularity by {block['group_shrinkage']:g} users "
        "(chosen on valid).",
        "",
        table,
        "",
        tests,
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
