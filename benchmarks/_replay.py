"""Temporal replay (``benchmarks/refresh.py``): train on the start of the timeline, then absorb
it one increment at a time.

Before each increment is applied, every model is tested on it (the slice that comes next):

* ``incremental``: the previous step's model, warm-started and fine-tuned a bounded number of
  epochs on the data with the new batch (:func:`crossrec.refresh.steps.fine_tune`);
* ``full_retrain``: a model trained from scratch on the same data (the finetune config, early
  stopping as usual);
* ``never``: the base model as it was: its own users, items and graph; it cannot rank users or
  items that arrived later (their scores tie, in the seeded random order).
* ``fold_in``: the base model's weights, extended to the current data without any training
  (new items from content, new users from their history): what warm start alone gives.

Two groups of users are tested on each slice, and pooled (``all``):

* ``known``: users the current data knows; their truth is their slice pairs on items the current
  data knows, every already known interaction masked (the protocol of the first replays);
* ``new``: users the current data does not know (strong generalisation,
  ``_newusers.py``): the earliest ``new_user_history_share`` of their slice
  interactions (on known items, time order) are their history, the rest their truth. Every
  method folds them in from that history the way a refresh folds in a new user
  (:func:`crossrec.models.warm.warm_start`, ``new_users: history``: the history joins the
  data and graph, the user's ID vector starts at the mean of their items' vectors); ``never``
  folds them into the base model on the base data (history items it never saw are left out;
  a user with none ties everywhere). Users with fewer than 2 usable interactions and rows on
  unknown items are counted in the frame (``users_untestable``, ``rows_unknown_item``).

Wall time per step counts what each method runs: inputs (fused features, graphs, matrices)
plus training (not the new users' fold-in, which is scoring).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from _newusers import split_new_users, with_history
from _timeline import split_timeline

from crossrec.data.increments import DatasetTables, Increment, IncrementRules, apply_increment
from crossrec.data.matrices import interactions_to_csr
from crossrec.graphs.config import FuseConfig
from crossrec.models.config import FinetuneConfig
from crossrec.models.inputs import TrainingData
from crossrec.models.mixed import epochs_trained
from crossrec.refresh.config import RefreshConfig
from crossrec.refresh.state import training_data
from crossrec.refresh.steps import (
    PaddedModel,
    align_item_features,
    fine_tune,
    new_rows_matrix,
    score_per_user,
)

log = logging.getLogger(__name__)

METHODS = ("incremental", "full_retrain", "fold_in", "never")


@dataclass
class ReplaySettings:
    base_share: float = 0.8
    step_share: float = 0.05
    n_steps: int = 4
    seed: int = 0
    ks: tuple[int, ...] = (20,)
    #: False skips the full retrains (the expensive part) when comparing refresh variants
    full_retrain: bool = True
    #: extra incremental variants: (method name, overrides of the ``refresh`` config), or
    #: (method name, ``history`` | ``random``): the new users' init
    variants: tuple[tuple[str, dict | str], ...] = ()
    #: share of a new user's slice interactions (earliest first) they are folded in from; the
    #: rest is their truth (``_newusers.py``)
    new_user_history_share: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.new_user_history_share < 1.0:  # fail before any training
            raise ValueError(
                f"new_user_history_share: {self.new_user_history_share} is not in (0, 1)"
            )


@dataclass
class ReplayResult:
    #: one row per (step, method, group: known / new / all users): mean metrics on the next
    #: slice, users tested / in the slice / untestable, rows on unknown items, wall time, epochs
    frame: pd.DataFrame
    #: one row per (step, method, tested user; group known / new): that user's metrics
    per_user: pd.DataFrame


def variant_config(refresh: RefreshConfig, spec: dict | str) -> RefreshConfig:
    """``refresh`` with a variant's overrides (a bare string sets ``new_users``), validated."""
    overrides = {"new_users": spec} if isinstance(spec, str) else dict(spec)
    return RefreshConfig.model_validate({**refresh.model_dump(), **overrides})


def training_inputs(
    tables: DatasetTables,
    item_features: dict,
    source_ids: pd.Series,
    fuse: FuseConfig,
    finetune: FinetuneConfig,
) -> TrainingData:
    """Fused features, graphs and matrices of ``tables`` (features looked up by item id), as a
    refresh builds them."""
    features = align_item_features(item_features, source_ids, tables.items["item_id"])
    return training_data(tables, features, fuse, finetune)


def next_slice(tables: DatasetTables, inc: Increment) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(truth, exclude): the slice's pairs among known users / items, and every known pair."""
    return slice_matrices(tables, inc.interactions)


def slice_matrices(
    tables: DatasetTables, frame: pd.DataFrame
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(truth, exclude): ``frame``'s (user_id, item_id) pairs among the users / items ``tables``
    knows, less every pair ``tables`` holds; and those held pairs (never ranked)."""
    info = tables.dataset_info
    n_users, n_items = int(info["n_users"]), int(info["n_items"])
    users = pd.Series(tables.users["user_idx"].to_numpy(), index=tables.users["user_id"].to_numpy())
    items = pd.Series(tables.items["item_idx"].to_numpy(), index=tables.items["item_id"].to_numpy())
    known = (
        frame["user_id"].isin(users.index).to_numpy()
        & frame["item_id"].isin(items.index).to_numpy()
    )
    frame = frame[known]
    truth = interactions_to_csr(
        users.loc[frame["user_id"].to_numpy()].to_numpy(),
        items.loc[frame["item_id"].to_numpy()].to_numpy(),
        n_users,
        n_items,
    )
    seen = tables.interactions
    exclude = interactions_to_csr(
        seen["user_idx"].to_numpy(), seen["item_idx"].to_numpy(), n_users, n_items
    )
    truth = truth - truth.multiply(exclude)
    truth.eliminate_zeros()
    return sp.csr_matrix(truth), exclude


def known_user_unknown_items(tables: DatasetTables, inc: Increment) -> int:
    """Rows of ``inc`` by users ``tables`` knows on items it does not (excluded from truth)."""
    frame = inc.interactions
    return int(
        (
            frame["user_id"].isin(tables.users["user_id"]).to_numpy()
            & ~frame["item_id"].isin(tables.items["item_id"]).to_numpy()
        ).sum()
    )


class UserMapped:
    """``model`` scored for users of another index space: ``index[u]`` is user ``u``'s row in
    ``model`` (a row past ``model.n_users`` ties everywhere through :class:`PaddedModel`)."""

    def __init__(self, model, index: np.ndarray):
        self.model, self.index = model, np.asarray(index, dtype=np.int64)

    def score_users(self, users):
        import torch

        return self.model.score_users(torch.as_tensor(self.index[np.asarray(users)]))


def user_index(source: DatasetTables, target: DatasetTables) -> np.ndarray:
    """Each ``source`` user's row in ``target`` (``target``'s user count where it has none)."""
    rows = pd.Series(target.users["user_idx"].to_numpy(), index=target.users["user_id"].to_numpy())
    ids = source.users.sort_values("user_idx")["user_id"]
    return rows.reindex(ids.to_numpy()).fillna(len(target.users)).to_numpy(np.int64)


def _scores(model, truth, exclude, ks, seed) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-user metrics of ``model``; no users (and no model needed) without any truth."""
    if truth.nnz == 0:
        from crossrec.metrics.ranking import METRIC_NAMES

        return np.zeros(0, np.int64), {f"{m}@{k}": np.zeros(0) for m in METRIC_NAMES for k in ks}
    return score_per_user(model, truth, exclude, ks, seed)


def replay(
    tables: DatasetTables,
    item_features: dict,
    fuse: FuseConfig,
    finetune: FinetuneConfig,
    refresh: RefreshConfig,
    settings: ReplaySettings,
    run_root: Path,
) -> ReplayResult:
    """Every method tested on the slice after each step's data (see the module docstring)."""
    from crossrec.metrics.ranking import mean_metrics
    from crossrec.models.bundle import load_recommender
    from crossrec.models.training import train_recommender
    from crossrec.models.warm import warm_start

    rules = IncrementRules(valid_share=refresh.increments.valid_share)
    base, increments = split_timeline(
        tables, settings.base_share, settings.step_share, settings.n_steps, settings.seed, rules
    )
    source_ids = tables.items["item_id"]
    ks = list(settings.ks)

    def inputs(t: DatasetTables) -> tuple[TrainingData, float]:
        start = time.perf_counter()
        return training_inputs(
            t, item_features, source_ids, fuse, finetune
        ), time.perf_counter() - start

    def train_full(data: TrainingData, name: str) -> tuple[dict, float, int]:
        start = time.perf_counter()
        result = train_recommender(
            data, finetune, run_dir=run_root / name, enable_progress_bar=False
        )
        return result.bundle, time.perf_counter() - start, epochs_trained(result.history)["epochs"]

    base_data, prep = inputs(base)
    base_bundle, wall, epochs = train_full(base_data, "base")
    never = load_recommender(base_bundle, base_data)
    incremental = {
        "incremental": refresh,
        **{name: variant_config(refresh, spec) for name, spec in settings.variants},
    }
    trained = [*incremental, *(["full_retrain"] if settings.full_retrain else [])]
    bundles = dict.fromkeys(trained, base_bundle)
    walls = dict.fromkeys(trained, prep + wall)
    epochs_run = dict.fromkeys(trained, epochs)
    methods = [*trained, "fold_in", "never"]
    current, data = base, base_data
    rows, per_user = [], []
    for step, inc in enumerate(increments):
        truth, exclude = next_slice(current, inc)
        info = current.dataset_info
        n_users, n_items = int(info["n_users"]), int(info["n_items"])
        models = {name: load_recommender(bundles[name], data) for name in bundles}
        models["fold_in"] = warm_start(base_bundle, data, refresh.new_users)
        models["never"] = PaddedModel(never, n_users, n_items)
        split = split_new_users(current, inc, settings.new_user_history_share)
        history_name = f"{inc.name}-new-user-history"
        grown = with_history(current, split.history, history_name)
        new_truth, new_exclude = slice_matrices(grown, split.truth)
        folded = {}
        if new_truth.nnz:  # every method folds the new users in from their history
            grown_data = inputs(grown)[0]
            folded = {name: warm_start(bundles[name], grown_data, "history") for name in bundles}
            folded["fold_in"] = warm_start(base_bundle, grown_data, "history")
            before = grown if current is base else with_history(base, split.history, history_name)
            before_data = grown_data if current is base else inputs(before)[0]
            folded["never"] = UserMapped(
                PaddedModel(
                    warm_start(base_bundle, before_data, "history"),
                    len(before.users),
                    grown_data.n_items,
                ),
                user_index(grown, before),
            )
        in_slice = inc.interactions["user_id"].isin(current.users["user_id"]).to_numpy()
        counts = {
            "known": {
                "users_in_slice": int(pd.unique(inc.interactions["user_id"][in_slice]).size),
                "rows_unknown_item": known_user_unknown_items(current, inc),
            },
            "new": {
                "users_in_slice": split.users + split.untestable,
                "rows_unknown_item": split.unknown_item_rows,
            },
        }
        counts["all"] = {key: counts["known"][key] + counts["new"][key] for key in counts["known"]}
        for method in methods:
            groups = {
                "known": _scores(models[method], truth, exclude, ks, settings.seed),
                "new": _scores(folded.get(method), new_truth, new_exclude, ks, settings.seed),
            }
            groups["all"] = (
                np.concatenate([groups["known"][0], groups["new"][0]]),
                {
                    m: np.concatenate([groups["known"][1][m], groups["new"][1][m]])
                    for m in groups["known"][1]
                },
            )
            for group, (users, scores) in groups.items():
                # a group without users has no mean (NaN, not mean_metrics' 0.0)
                means = mean_metrics(scores) if len(users) else dict.fromkeys(scores, np.nan)
                metrics = {**means, "users": int(len(users))}
                if group != "all":
                    per_user.append(
                        pd.DataFrame(
                            {
                                "test_slice": step + 1,
                                "method": method,
                                "group": group,
                                "user": users,
                                **scores,
                            }
                        )
                    )
                rows.append(
                    {
                        "step": step,
                        "trained_through": step,
                        "test_slice": step + 1,
                        "method": method,
                        "group": group,
                        **metrics,
                        **counts[group],
                        "users_untestable": counts[group]["users_in_slice"] - metrics["users"],
                        "users_known": n_users,
                        "items_known": n_items,
                        "wall_s": walls.get(method, 0.0),
                        "epochs": epochs_run.get(method, 0),
                    }
                )
                log.info("step %d %s %s users: %s", step, method, group, metrics)
        if step == len(increments) - 1:
            break
        previous = current
        current, _ = apply_increment(current, inc, rules, settings.seed)
        data, prep = inputs(current)
        new_rows = new_rows_matrix(previous, current)
        for method, cfg in incremental.items():
            start = time.perf_counter()
            result = fine_tune(
                data,
                bundles[method],
                cfg,
                run_root / f"step{step + 1}-{method}",
                settings.seed,
                enable_progress_bar=False,
                new_rows=new_rows,
            )
            bundles[method] = result.bundle
            walls[method] = prep + time.perf_counter() - start
            epochs_run[method] = epochs_trained(result.history)["epochs"]
        if settings.full_retrain:
            bundles["full_retrain"], wall, epochs_run["full_retrain"] = train_full(
                data, f"step{step + 1}-full"
            )
            walls["full_retrain"] = prep + wall
    return ReplayResult(pd.DataFrame(rows), pd.concat(per_user, ignore_index=True))


GROUPS = ("known", "new", "all")


def in_group(frame: pd.DataFrame, group: str) -> pd.DataFrame:
    """The rows of one user group (``all`` = known and new pooled; in a per-user frame, every
    row). Frames without a ``group`` column predate new users: all their rows are ``known``."""
    if "group" not in frame:
        return frame if group in ("known", "all") else frame.iloc[0:0]
    if group == "all" and "all" not in set(frame["group"]):
        return frame
    return frame[frame["group"] == group]


def summary_table(
    frame: pd.DataFrame, metric: str = "recall@20", group: str = "all"
) -> pd.DataFrame:
    """Steps as rows, methods as columns of ``metric`` (plus wall times of the trained ones)."""
    frame = in_group(frame, group)
    methods = list(dict.fromkeys(frame["method"]))
    table = frame.pivot(index="test_slice", columns="method", values=metric)[methods]
    walls = frame.pivot(index="test_slice", columns="method", values="wall_s")
    for method in methods:
        if method not in ("fold_in", "never"):
            table[f"{method}_wall_s"] = walls[method]
    return table


def seed_summary(
    frame: pd.DataFrame, metric: str = "recall@20", group: str = "all"
) -> pd.DataFrame:
    """Steps as rows; per method the mean of ``metric`` over seeds and its std (``_std``).

    ``frame``: :attr:`ReplayResult.frame` of several seeds, with a ``seed`` column.
    """
    frame = in_group(frame, group)
    methods = list(dict.fromkeys(frame["method"]))
    stats = frame.groupby(["test_slice", "method"])[[metric, "wall_s"]].agg(["mean", "std"])
    table = pd.DataFrame(index=sorted(frame["test_slice"].unique()))
    for method in methods:
        rows = stats.xs(method, level="method")
        table[method] = rows[(metric, "mean")]
        table[f"{method}_std"] = rows[(metric, "std")]
    for method in methods:
        if method not in ("fold_in", "never"):
            table[f"{method}_wall_s"] = stats.xs(method, level="method")[("wall_s", "mean")]
    table.index.name = "test_slice"
    return table


def group_table(frame: pd.DataFrame, metric: str = "recall@20") -> pd.DataFrame:
    """Steps as rows; tested / untestable user counts per group, then each method's ``metric``
    for known, new and all users (means over seeds when ``frame`` holds several)."""
    keys = ["test_slice", "method", "group"]
    means = frame.groupby(keys)[[metric, "users", "users_untestable"]].mean()
    methods = list(dict.fromkeys(frame["method"]))
    table = pd.DataFrame(index=sorted(frame["test_slice"].unique()))
    first = means.xs(methods[0], level="method")
    for group in GROUPS:
        table[f"tested_{group}"] = first.xs(group, level="group")["users"]
    table["untestable_new"] = first.xs("new", level="group")["users_untestable"]
    for method in methods:
        for group in GROUPS:
            table[f"{method}_{group}"] = means.xs((method, group), level=("method", "group"))[
                metric
            ]
    table.index.name = "test_slice"
    return table
