"""Before vs after fine-tuning: the table that says whether fine-tuning the LLM helps.

``benchmarks/llm_before_after.py`` trains each variant (ID-only LightGCN, the default model on
frozen LLM features, the ``llm`` strategy frozen / LoRA / partial) on one split and evaluates it
with the evaluation runner; it saves ``llm_before_after.json`` in the dataset's reporting
folder. This module turns those results into the markdown table that the README and, when the
evaluated model is an LLM model, ``report.md`` show.
"""

from __future__ import annotations

from typing import Any

SLICES = ("test", "test_warm", "test_cold")
METRICS = ("recall@20", "ndcg@20")


def _cell(row: dict, key: str) -> str:
    value = row.get("metrics", {}).get(key)
    if value is None:
        return "–"
    mean, std = value.get("mean"), value.get("std")
    if mean is None:
        return "–"
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std else "")


def before_after_table(results: dict[str, Any]) -> str:
    """Markdown table: one row per variant, test / warm / cold Recall and NDCG@20, time per
    epoch, epochs run, trainable parameters and seeds."""
    header = ["model"]
    for slice_name in SLICES:
        header += [f"{slice_name} R@20", f"{slice_name} N@20"]
    header += ["s / epoch", "epochs", "trainable params", "seeds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in results.get("rows", []):
        cells = [row["model"]]
        cells += [_cell(row, f"{s}/{m}") for s in SLICES for m in METRICS]
        cells += [
            f"{row.get('epoch_s', float('nan')):.1f}",
            str(row.get("epochs", "–")),
            f"{row.get('trainable_params', 0):,}",
            str(row.get("seeds", 1)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def before_after_section(results: dict[str, Any] | None) -> list[str]:
    """report.md lines ("Before vs after fine-tuning"), empty without results."""
    if not results or not results.get("rows"):
        return []
    lines = [
        "## Before vs after fine-tuning",
        "",
        results.get("protocol", ""),
        "",
        before_after_table(results),
        "",
    ]
    if results.get("command"):
        lines += [f"Reproduce: `{results['command']}`", ""]
    if results.get("verdict"):
        lines += [results["verdict"], ""]
    return lines


def verdict(results: dict[str, Any], metric: str = "test/recall@20") -> str:
    """One plain sentence: does the best fine-tuned LLM variant beat the frozen ones, by how
    much (absolute and relative)?"""
    rows = {r["model"]: r for r in results.get("rows", [])}

    def score(name: str) -> float | None:
        value = rows.get(name, {}).get("metrics", {}).get(metric)
        return None if value is None else value["mean"]

    tuned = [n for n in rows if rows[n].get("kind") == "finetuned" and score(n) is not None]
    frozen = [n for n in rows if rows[n].get("kind") == "frozen" and score(n) is not None]
    if not tuned or not frozen:
        return ""
    best_tuned = max(tuned, key=score)
    best_frozen = max(frozen, key=score)
    a, b = score(best_tuned), score(best_frozen)
    change = "helps" if a > b else "does not help"
    return (
        f"In this measurement fine-tuning {change}: best fine-tuned ({best_tuned}) {metric} "
        f"{a:.4f} vs best frozen ({best_frozen}) {b:.4f}, {a - b:+.4f} "
        f"({100 * (a - b) / b:+.1f}%)."
    )
