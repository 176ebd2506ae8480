"""A dataset cut along its timeline into a base and increments (temporal replay).

The base holds the first ``base_share`` of the interactions in time order; each increment the
next ``step_share``. Users and items enter when they first interact, so the replay exercises
index extension exactly as real increments do: the base is re-indexed contiguously, and every
later user / item is appended by :func:`crossrec.data.increments.apply_increment`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from crossrec.data.increments import DatasetTables, Increment, IncrementRules

MEDIA = ("image_path", "audio_path")


def timeline_cuts(
    timestamps: np.ndarray, base_share: float, step_share: float, n_steps: int
) -> list[int]:
    """Row positions (in time order) where the base and each increment end."""
    if base_share <= 0 or step_share <= 0 or base_share + n_steps * step_share > 1 + 1e-9:
        raise ValueError(
            f"timeline: base_share {base_share} + {n_steps} x step_share {step_share} must "
            "be positive and at most 1"
        )
    n = len(timestamps)
    return [int(round(n * (base_share + k * step_share))) for k in range(n_steps + 1)]


def split_timeline(
    tables: DatasetTables,
    base_share: float,
    step_share: float,
    n_steps: int,
    seed: int,
    rules: IncrementRules | None = None,
) -> tuple[DatasetTables, list[Increment]]:
    """(base tables, increments) of an ingested dataset with timestamps, ids as the original ids.

    Ingest's split labels are dropped: base rows get ``valid`` with probability
    ``rules.valid_share`` (seeded), the rest ``train``; increments are labelled when applied.
    """
    rules = rules or IncrementRules()
    info = tables.dataset_info
    if not info.get("has_timestamps"):
        raise ValueError(f"{info.get('name')}: a temporal replay needs timestamps")
    inter = tables.interactions.sort_values(["timestamp", "user_idx", "item_idx"], kind="stable")
    cuts = timeline_cuts(inter["timestamp"].to_numpy(), base_share, step_share, n_steps)
    user_ids = tables.users.set_index("user_idx")["user_id"]
    item_ids = tables.items.set_index("item_idx")["item_id"]
    base = inter.iloc[: cuts[0]]
    users = np.sort(base["user_idx"].unique())
    items = np.sort(base["item_idx"].unique())
    user_new = pd.Series(np.arange(len(users)), index=users)
    item_new = pd.Series(np.arange(len(items)), index=items)
    rng = np.random.default_rng(seed)
    base_inter = (
        pd.DataFrame(
            {
                "user_idx": user_new.loc[base["user_idx"].to_numpy()].to_numpy(np.int64),
                "item_idx": item_new.loc[base["item_idx"].to_numpy()].to_numpy(np.int64),
                "rating": base["rating"].to_numpy(np.float32),
                "timestamp": base["timestamp"].to_numpy(np.int64),
                "split": np.where(
                    rng.random(len(base)) < rules.valid_share, "valid", "train"
                ).astype(object),
            }
        )
        .sort_values(["user_idx", "timestamp", "item_idx"], kind="stable")
        .reset_index(drop=True)
    )
    base_items = (
        tables.items.set_index("item_idx").loc[items].reset_index(drop=True).assign(is_cold=False)
    )
    base_items.insert(0, "item_idx", np.arange(len(items), dtype=np.int64))
    base_users = pd.DataFrame(
        {
            "user_idx": np.arange(len(users), dtype=np.int64),
            "user_id": user_ids.loc[users].to_numpy(dtype=object),
        }
    )
    base_info = {
        **info,
        "n_users": len(users),
        "n_items": len(items),
        "n_interactions": len(base_inter),
        "split_strategy": "timeline",
        "increments": [],
    }
    seen_items = set(items.tolist())
    text_columns = list(info.get("text_columns", []))
    increments = []
    for k in range(n_steps):
        rows = inter.iloc[cuts[k] : cuts[k + 1]]
        fresh = [i for i in np.sort(rows["item_idx"].unique()) if i not in seen_items]
        seen_items.update(fresh)
        new_items = tables.items.set_index("item_idx").loc[fresh].reset_index(drop=True)
        new_items = new_items[["item_id", *text_columns, *[c for c in MEDIA if c in new_items]]]
        frame = pd.DataFrame(
            {
                "user_id": user_ids.loc[rows["user_idx"].to_numpy()].to_numpy(dtype=object),
                "item_id": item_ids.loc[rows["item_idx"].to_numpy()].to_numpy(dtype=object),
                "rating": rows["rating"].to_numpy(np.float32),
                "timestamp": rows["timestamp"].to_numpy(np.int64),
                "row": np.arange(1, len(rows) + 1, dtype=np.int64),
            }
        )
        increments.append(
            Increment(
                f"step{k + 1:02d}", frame, new_items, {"interactions": f"<timeline step {k + 1}>"}
            )
        )
    return DatasetTables(base_inter, base_items, base_users, base_info), increments


def write_increment(inc: Increment, folder: Path) -> Path:
    """Write ``inc`` in the increment format (``interactions.csv`` [+ ``items.csv``]) to
    ``folder``; media paths stay absolute."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns = ["user_id", "item_id", "timestamp", "rating"]
    inc.interactions[columns].to_csv(folder / "interactions.csv", index=False)
    if len(inc.items):
        inc.items.to_csv(folder / "items.csv", index=False)
    return folder
