"""Whether a baseline's chosen grid point sits at the edge of its grid.

A best value at the smallest or largest value a grid offers for a numeric key says the grid
may have stopped short of the baseline's best (EASE chose its lowest l2; ItemKNN's shrink grid
ended at 10 where a sparse catalogue wanted 100 or more), so the comparison may be against a
weaker baseline than it could be. The report should say so, or the grid be extended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def grid_values(points: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Each key's distinct values over the grid's points, sorted (numeric keys only)."""
    values: dict[str, set[Any]] = {}
    for point in points:
        for key, value in point.items():
            if _numeric(value):
                values.setdefault(key, set()).add(value)
    return {key: sorted(found) for key, found in values.items()}


def grid_edges(points: Sequence[Mapping[str, Any]], chosen: Mapping[str, Any]) -> dict[str, str]:
    """``{key: "lowest" | "highest"}`` for each numeric key of ``chosen`` at an end of the values
    the grid ``points`` offer for it. Keys with a single value are not searched, and a lowest
    value of 0 (a shrink, a weight) has nothing below it: no edge."""
    edges = {}
    for key, values in grid_values(points).items():
        if len(values) < 2 or key not in chosen:
            continue
        if chosen[key] == values[0] and values[0] != 0:
            edges[key] = "lowest"
        elif chosen[key] == values[-1]:
            edges[key] = "highest"
    return edges


def grid_edge_note(
    name: str, points: Sequence[Mapping[str, Any]], chosen: Mapping[str, Any]
) -> str:
    """One sentence for the report ("" when the chosen point is inside its grid)."""
    edges = grid_edges(points, chosen)
    if not edges:
        return ""
    values = grid_values(points)
    parts = [f"{key} {chosen[key]} is the {end} of {values[key]}" for key, end in edges.items()]
    return (
        f"{name}: the chosen point is at the edge of its grid ({'; '.join(parts)}); its best "
        "may lie beyond it: extend the grid that way"
    )
