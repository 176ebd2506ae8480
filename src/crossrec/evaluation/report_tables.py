"""Markdown cells and tables shared by report.md, its sections and docs/results.md."""

from __future__ import annotations

from collections.abc import Sequence


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
