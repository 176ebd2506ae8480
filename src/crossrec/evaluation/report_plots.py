"""The report's figures (matplotlib's object-oriented API: no pyplot state, safe in threads)."""

from __future__ import annotations

from collections.abc import Sequence

MetricsTable = dict[str, dict[str, dict[str, dict[str, float]]]]  # model -> slice -> metric -> stat


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
