"""The steps of a refresh, as pure library functions (the Kedro nodes only call these).

A refresh: apply the new increments to the ingested tables (indices stable, new ones appended),
encode only the new items (the content-addressed embedding cache serves every known one),
rebuild the fused features and graphs, warm-start from the latest model, fine-tune a bounded
number of epochs and evaluate the model before and after.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.data.increment_files import list_increments, read_increment
from crossrec.data.increments import DatasetTables, IncrementRules, apply_increment
from crossrec.data.matrices import interactions_to_csr
from crossrec.models.config import FinetuneConfig, complete_stored_config
from crossrec.models.inputs import TrainingData
from crossrec.refresh.config import RefreshConfig

log = logging.getLogger(__name__)


def rules_of(cfg: RefreshConfig, min_rating: float | None) -> IncrementRules:
    inc = cfg.increments
    return IncrementRules(inc.duplicates, inc.older_than_seen, inc.valid_share, min_rating)


def pending_increments(dataset_folder: Path, folder: str, applied: list[str]) -> list[Path]:
    """Increment folders not yet applied, in name order; none fails with what was looked at."""
    root = Path(dataset_folder) / folder
    found = list_increments(Path(dataset_folder), folder)
    pending = [p for p in found if p.name not in set(applied)]
    if not pending:
        raise FileNotFoundError(
            f"refresh: no new increment in {root} (found {[p.name for p in found]}, already "
            f"applied {applied}); add a folder <name>/interactions.csv there "
            "(format: crossrec.data.increments)"
        )
    return pending


def apply_pending(
    tables: DatasetTables,
    folders: list[Path],
    rules: IncrementRules,
    seed: int,
    media_root: Path,
    max_bad_share: float,
    precomputed: dict[str, int] | None = None,
) -> tuple[DatasetTables, list[dict]]:
    """Every pending increment in order; the first bad one fails before anything is returned.

    ``precomputed``: the model's precomputed features (name -> dim) whose vectors new items
    must carry (:func:`crossrec.refresh.state.precomputed_dims`)."""
    reports = []
    info = tables.dataset_info
    for folder in folders:
        inc = read_increment(
            folder, list(info.get("text_columns", [])), bool(info["has_timestamps"]), precomputed
        )
        tables, report = apply_increment(tables, inc, rules, seed, media_root, max_bad_share)
        reports.append(report)
    return tables, reports


def adds_nothing(reports: list[dict]) -> bool:
    """Whether the applied increments added no interaction, user or item (every row skipped):
    fine-tuning would then only re-fit the same data and publish a copy as a new version."""
    return all(
        not (r.get("interactions") or r.get("new_users") or r.get("new_items")) for r in reports
    )


def nothing_new_message(reports: list[dict]) -> str:
    """Which increments were read and why their rows were skipped."""
    parts = [
        f"{r.get('name')}: {r.get('rows_read', 0)} rows read, "
        f"{r.get('skipped_duplicates', 0)} already known, "
        f"{r.get('skipped_below_min_rating', 0)} below implicit.min_rating"
        for r in reports
    ]
    return (
        "refresh: the increments add nothing new (" + "; ".join(parts) + "): no fine-tuning, "
        "no new refreshed_model version; the latest model stays the one served"
    )


def align_item_features(item_features: dict, source_ids: pd.Series, target_ids: pd.Series) -> dict:
    """Rows of ``item_features`` (aligned to ``source_ids``) re-aligned to ``target_ids``."""
    position = pd.Series(np.arange(len(source_ids)), index=source_ids.to_numpy())
    missing = ~target_ids.isin(position.index).to_numpy()
    if missing.any():
        raise ValueError(f"item_features: no vectors for items {target_ids[missing].tolist()[:5]}")
    rows = position.loc[target_ids.to_numpy()].to_numpy()
    out = {}
    for name, entry in item_features.items():
        if name.startswith("__"):
            out[name] = entry
            continue
        out[name] = {
            **entry,
            "vectors": np.asarray(entry["vectors"])[rows],
            "mask": np.asarray(entry["mask"])[rows],
        }
    return out


def refresh_finetune_config(bundle: dict, cfg: RefreshConfig, seed: int) -> FinetuneConfig:
    """The previous model's config with the refresh's bounded epochs (and learning rate)."""
    config = FinetuneConfig.model_validate(complete_stored_config(bundle["config"]))
    config.trainer.max_epochs = cfg.epochs
    config.trainer.min_epochs = 0
    config.trainer.patience = cfg.patience or max(config.trainer.patience, cfg.epochs)
    config.trainer.resume = False
    if config.trainer.seed is None:
        config.trainer.seed = int(seed)
    if cfg.lr is not None:
        config.optim.lr = cfg.lr
    return config


def monitored_data(data: TrainingData, cfg: RefreshConfig, new_rows: sp.csr_matrix | None):
    """``data`` with the validation rows that pick the refresh's best epoch.

    ``validate_on: new`` keeps the valid rows among ``new_rows`` (what the increments added);
    with none there (an increment too small to hold any) the whole valid split is used, logged.
    """
    if cfg.validate_on == "all":
        return data
    if new_rows is None:
        raise ValueError("refresh.validate_on: new needs the increments' rows (new_rows)")
    recent = sp.csr_matrix(data.valid.multiply(new_rows > 0), dtype=data.valid.dtype)
    recent.eliminate_zeros()
    if recent.nnz == 0:
        log.warning("refresh: the increments hold no valid rows; validating on all valid rows")
        return data
    log.info("refresh: validating on the increments' %d valid rows", recent.nnz)
    return replace(data, valid=recent)


def fine_tune(
    data: TrainingData,
    bundle: dict,
    cfg: RefreshConfig,
    run_dir: Path,
    seed: int,
    enable_progress_bar: bool = True,
    new_rows: sp.csr_matrix | None = None,
):
    """Warm start from ``bundle`` and fine-tune at most ``cfg.epochs`` epochs -> TrainingResult.

    ``new_rows``: the (user, item) pairs the increments added (:func:`new_rows_matrix`), needed
    by ``validate_on: new``.
    """
    from crossrec.models.training import train_recommender
    from crossrec.models.warm import warm_state

    config = refresh_finetune_config(bundle, cfg, seed)
    state = warm_state(bundle, data, cfg.new_users)
    return train_recommender(
        monitored_data(data, cfg, new_rows),
        config,
        run_dir=run_dir,
        initial_state=state,
        enable_progress_bar=enable_progress_bar,
    )


def new_rows_matrix(before: DatasetTables, after: DatasetTables) -> sp.csr_matrix:
    """(n_users, n_items) binary matrix of the interactions the increments added."""
    old = before.interactions[["user_idx", "item_idx"]]
    merged = after.interactions.merge(old, on=["user_idx", "item_idx"], how="left", indicator=True)
    added = merged[merged["_merge"] == "left_only"]
    n_users, n_items = int(after.dataset_info["n_users"]), int(after.dataset_info["n_items"])
    return interactions_to_csr(
        added["user_idx"].to_numpy(), added["item_idx"].to_numpy(), n_users, n_items
    )


class PaddedModel:
    """A model over the first users / items of a grown catalogue: later items never rank
    (-inf), later users tie everywhere (scored 0)."""

    def __init__(self, model, n_users: int, n_items: int):
        self.model, self.n_users, self.n_items = model, n_users, n_items

    def score_users(self, users):
        import torch

        out = torch.zeros(len(users), self.n_items)
        out[:, self.model.n_items :] = float("-inf")
        known = users < self.model.n_users
        if known.any():
            out[known, : self.model.n_items] = self.model.score_users(users[known])
        return out


def score_per_user(
    model, truth: sp.csr_matrix, exclude: sp.csr_matrix, ks: list[int], seed: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(users, per-user full-ranking metrics) of ``model`` (ties in one seeded random order)."""
    import torch

    from crossrec.metrics.ranking import evaluate_ranking, tie_break_order

    def score(users: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.score_users(users)

    return evaluate_ranking(
        score, truth, exclude, ks=ks, tie_order=tie_break_order(truth.shape[1], seed)
    )


def score_metrics(
    model, truth: sp.csr_matrix, exclude: sp.csr_matrix, ks: list[int], seed: int
) -> dict[str, float]:
    """Mean full-ranking metrics of ``model`` (ties in one seeded random order)."""
    from crossrec.metrics.ranking import mean_metrics

    users, per_user = score_per_user(model, truth, exclude, ks, seed)
    return {**mean_metrics(per_user), "users": int(len(users))}


def run_refresh(
    start: dict,
    tables: DatasetTables,
    item_features: dict,
    item_texts: list[str],
    fuse,
    cfg: RefreshConfig,
    seed: int,
    run_dir: Path,
) -> tuple[dict, dict]:
    """Warm start + fine-tune on the grown data, evaluated before and after -> (bundle, report).

    ``before``: the previous model as it was (its own data and graph: users and items it never
    saw cannot be ranked), scored on the new batch (what serving gave until now) and on the
    grown valid split; ``after``: the refreshed model on the grown valid split.
    """
    import time

    from crossrec.models.bundle import load_recommender
    from crossrec.models.mixed import epochs_trained
    from crossrec.refresh.state import tables_of, training_data

    began = time.perf_counter()
    bundle = start["bundle"]
    data = training_data(tables, item_features, fuse, bundle["config"], item_texts or None)
    old = tables_of(start)
    # the previous model as serving had it: its own data and graph, blind to the new batch
    old_texts = start.get("item_texts") or None
    old_data = training_data(old, start["item_features"], fuse, bundle["config"], old_texts)
    previous = PaddedModel(load_recommender(bundle, old_data), data.n_users, data.n_items)
    seen = interactions_to_csr(
        old.interactions["user_idx"].to_numpy(),
        old.interactions["item_idx"].to_numpy(),
        data.n_users,
        data.n_items,
    )
    new_rows = new_rows_matrix(old, tables)
    before = {
        "new_batch": score_metrics(previous, new_rows, seen, cfg.ks, seed),
        "valid": score_metrics(previous, data.valid, data.train, cfg.ks, seed),
    }
    result = fine_tune(data, bundle, cfg, run_dir, seed, new_rows=new_rows)
    after = {
        "valid": score_metrics(
            load_recommender(result.bundle, data), data.valid, data.train, cfg.ks, seed
        )
    }
    report = {
        "before": before,
        "after": after,
        **epochs_trained(result.history),
        "n_users": data.n_users,
        "n_items": data.n_items,
        "new_users": data.n_users - int(bundle["n_users"]),
        "new_items": data.n_items - int(bundle["n_items"]),
        "history": result.history.to_dict("records"),
        "wall_s": round(time.perf_counter() - began, 2),
    }
    log.info(
        "refresh: valid recall@%d %.4f -> %.4f",
        cfg.ks[0],
        before["valid"][f"recall@{cfg.ks[0]}"],
        after["valid"][f"recall@{cfg.ks[0]}"],
    )
    return result.bundle, report
