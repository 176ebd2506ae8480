"""Data summary of an ingested dataset: counts, density, modality coverage, split sizes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _nonempty(values: pd.Series) -> np.ndarray:
    return (values.notna() & (values.astype(str).str.strip() != "")).to_numpy()


def nonzero_rows(matrix: np.ndarray, block: int = 65536) -> np.ndarray:
    """Rows with a non-zero value, a block of rows at a time (no full-size bool copy)."""
    return np.concatenate(
        [np.any(matrix[s : s + block] != 0, axis=1) for s in range(0, len(matrix), block)]
        or [np.zeros(0, dtype=bool)]
    )


def summarize(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    dataset_info: dict[str, Any],
    media_report: list[dict],
    precomputed: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """A JSON-able summary; coverage is the share of items with usable input per modality."""
    n_users = int(dataset_info["n_users"])
    n_items = int(dataset_info["n_items"])
    n_inter = len(interactions)
    coverage: dict[str, float] = {}
    text_cols = list(dataset_info.get("text_columns", []))
    if text_cols:
        any_text = np.zeros(len(items), dtype=bool)
        for column in text_cols:
            has = _nonempty(items[column])
            coverage[f"text:{column}"] = float(has.mean()) if len(items) else 0.0
            any_text |= has
        coverage["text"] = float(any_text.mean()) if len(items) else 0.0
    reported = {entry.get("modality") for entry in media_report}
    for column, modality in (("image_path", "image"), ("audio_path", "audio")):
        # a dataset without any file of a kind (e.g. one of precomputed vectors) has no such
        # modality: "0.0%" would read as a failed featurization
        if items[column].notna().any() or modality in reported:
            coverage[modality] = float(items[column].notna().mean()) if len(items) else 0.0
    for name, matrix in sorted((precomputed or {}).items()):
        # shipped matrices often mark a missing input with an all-zero row
        nonzero = nonzero_rows(matrix)
        coverage[f"{name} (pre)"] = float(nonzero.mean()) if len(matrix) else 0.0

    splits: dict[str, dict[str, int]] = {}
    split = interactions["split"].to_numpy()
    users = interactions["user_idx"].to_numpy()
    items_idx = interactions["item_idx"].to_numpy()
    train = split == "train"
    train_users, train_items = np.unique(users[train]), np.unique(items_idx[train])
    for name in ("train", "valid", "test"):
        rows = train if name == "train" else split == name
        part_users, part_items = np.unique(users[rows]), np.unique(items_idx[rows])
        entry = {
            "interactions": int(rows.sum()),
            "users": len(part_users),
            "items": len(part_items),
        }
        if name != "train":
            entry["users_without_train"] = int((~np.isin(part_users, train_users)).sum())
            entry["items_without_train"] = int((~np.isin(part_items, train_items)).sum())
        splits[name] = entry
    per_user = pd.Series(np.bincount(users)) if n_inter else pd.Series([], dtype=np.int64)
    per_user = per_user[per_user > 0]
    per_item = pd.Series(np.bincount(items_idx)) if n_inter else pd.Series([], dtype=np.int64)
    per_item = per_item[per_item > 0]
    return {
        "name": dataset_info["name"],
        "users": n_users,
        "items": n_items,
        "interactions": n_inter,
        "density": float(n_inter / (n_users * n_items)) if n_users and n_items else 0.0,
        "interactions_per_user": {
            "min": int(per_user.min()),
            "median": float(per_user.median()),
            "max": int(per_user.max()),
        }
        if n_inter
        else {},
        "interactions_per_item": {
            "min": int(per_item.min()),
            "median": float(per_item.median()),
            "max": int(per_item.max()),
        }
        if n_inter
        else {},
        "has_timestamps": bool(dataset_info.get("has_timestamps", False)),
        "modality_coverage": coverage,
        "split_strategy": dataset_info.get("split_strategy"),
        "published_split_altered": bool(dataset_info.get("published_split_altered", False)),
        "splits": splits,
        "cold_items": int(items["is_cold"].sum()) if "is_cold" in items.columns else 0,
        "unusable_media": len(media_report),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """A readable table, at most 36 columns wide so that the log handler (Rich, 80 columns when
    not on a terminal) does not wrap it."""
    row = "{:<22}{:>14}".format
    lines = [
        f"Data summary: {summary['name']}",
        "-" * 36,
        row("users", f"{summary['users']:,}"),
        row("items", f"{summary['items']:,}"),
        row("interactions", f"{summary['interactions']:,}"),
        row("density", f"{summary['density']:.4%}"),
        row("timestamps", "yes" if summary["has_timestamps"] else "no"),
        row("split strategy", str(summary["split_strategy"])),
        *([row("published split", "ALTERED")] if summary.get("published_split_altered") else []),
        row("cold-start items", f"{summary['cold_items']:,}"),
        row("unusable media", f"{summary['unusable_media']:,}"),
        "coverage (share of items):",
    ]
    for name, share in summary["modality_coverage"].items():
        label = name.replace(" (pre)", " (vec)")  # precomputed vectors
        lines.append(row(f"  {label}"[:22], f"{share:.1%}"))
    if not summary["modality_coverage"]:
        lines.append(row("  none", "IDs only"))
    table = "{:<6}{:>9}{:>7}{:>7}{:>7}".format
    lines.append(table("split", "rows", "users", "items", "cold u"))
    for name, entry in summary["splits"].items():
        lines.append(
            table(
                name,
                f"{entry['interactions']:,}",
                f"{entry['users']:,}",
                f"{entry['items']:,}",
                str(entry.get("users_without_train", "-")),
            )
        )
    lines.append("(cold u: users without train rows)")
    lines.append("-" * 36)
    return "\n".join(lines)
