"""report.md's "Sampled users" section: how many users each slice evaluated when
``evaluate.sample_users.size`` is set, and each model's 95% confidence intervals."""

from __future__ import annotations

from collections.abc import Sequence

from crossrec.evaluation.report_tables import markdown_table


def _interval(stat: dict | None) -> str:
    if not stat or "ci95" not in stat:
        return "–"
    low, high = stat["ci95"]
    return f"{stat['mean']:.4f} [{low:.4f}, {high:.4f}]"


def sample_section(metrics: dict, cfg, slices: Sequence[str]) -> list[str]:
    """Users evaluated per slice (sample / all) and ``recall@k`` / ``ndcg@k`` with their 95%
    intervals per model and slice; nothing when every user was evaluated."""
    sample = cfg.sample_users
    if sample.size is None:
        return []
    columns = [f"recall@{cfg.k}", f"ndcg@{cfg.k}"]
    counts, rows = [], []
    for slice_name in slices:
        stat = next(
            (per[slice_name][columns[0]] for per in metrics.values() if slice_name in per), None
        )
        if stat and "population" in stat:
            counts.append(f"{slice_name} {stat['users']} of {stat['population']}")
    for model, per_slice in metrics.items():
        for slice_name in slices:
            if slice_name in per_slice:
                rows.append(
                    [model, slice_name, *(_interval(per_slice[slice_name].get(c)) for c in columns)]
                )
    return [
        "## Sampled users",
        "",
        f"Each slice evaluates a seeded sample of at most {sample.size} of its users "
        f"(`evaluate.sample_users`, seed {sample.seed}), the same users for every model; "
        f"users evaluated: {', '.join(counts) or '–'}. Intervals: 95%, normal approximation "
        "over the per-user values (averaged over seeds) with the finite-population correction, "
        "i.e. where the value over every user of the slice lies for these trained models; the "
        "± of the other tables is the spread over seeds.",
        "",
        markdown_table(["model", "slice", *columns], rows),
        "",
    ]
