"""Every enabled baseline on the trained model's split, slices and ranking code: which runs each
needs (its seeds, and its grid when ``evaluate.selection`` searches it), the choice of a grid
point on the validation slice, then its seeds with that point.

Training runs go to ``evaluate.workers`` processes in two waves: every grid point and every
seed of the baselines without a grid, then the seeds of the searched baselines.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from crossrec.evaluation.config import BASELINES, WHERE, BaselineConfig
from crossrec.evaluation.model_runs import log_test_recall
from crossrec.evaluation.protocol import EvalSplit, evaluate_scorer, ranking_slices

if TYPE_CHECKING:
    from crossrec.evaluation.runner import Evaluation

logger = logging.getLogger(__name__)


def build_standalone(kind: type, spec: BaselineConfig, split: EvalSplit, seed: int):
    """A baseline that is not a finetune configuration (MostPop, ItemKNN, EASE, MF-BPR) as a
    ScoreFn: the job function of those kinds. ``kind`` is the registered class itself (pickled by
    reference: a worker imports its module, which also registers a kind defined outside
    crossrec)."""
    return kind.from_spec(spec, split, seed)


@dataclass(eq=False)
class BaselinePlan:
    """One baseline's runs: its seeds, and its grid jobs (with their TrainingData) when
    selection searches it; ``spec`` becomes the chosen point once selection has run."""

    name: str
    spec: BaselineConfig
    seeds: list[int]
    selection_seed: int | None = None
    grid_jobs: list = field(default_factory=list)
    selection: dict | None = None
    reuse: Any = None


def trained_baseline_skipped(evaluation: Evaluation, name: str, spec: BaselineConfig) -> bool:
    """True (with a warning) when none of the baseline's modalities is in this dataset."""
    from crossrec.evaluation.experiments import select_modalities, uses_content

    fused = evaluation.artifacts.fused_item_features
    features = select_modalities(fused, spec.modalities)
    content = uses_content(evaluation.cfg.baseline_defaults, spec.overrides)
    if features.get("__order__") or (spec.modalities is None and not content):
        return False
    available = [m for m in fused if not m.startswith("__")]
    logger.warning(
        "baseline %s skipped: none of its modalities %s in this dataset (has %s)",
        name,
        spec.modalities or "(all: it trains on content)",
        available,
    )
    return True


def baseline_job(
    evaluation: Evaluation, name: str, spec: BaselineConfig, seed: int, trained_model: dict
):
    """(job training ``spec`` with ``seed``, TrainingData to score its bundle with, or None
    when the job's artefact is the scorer itself)."""
    from crossrec.evaluation.jobs import Job

    label = f"{name} seed {seed}"
    kind = BASELINES.get(spec.kind)
    if not getattr(kind, "trained", False):
        return Job(label, build_standalone, (kind, spec, evaluation.split, seed)), None
    from crossrec.evaluation.experiments import (
        baseline_config,
        select_modalities,
        train_variant,
    )

    features = select_modalities(evaluation.artifacts.fused_item_features, spec.modalities)
    config = baseline_config(
        trained_model["config"], evaluation.cfg.baseline_defaults, spec.overrides
    )
    data = evaluation.artifacts.training_data(config, features=features)
    where = f"{WHERE}.baselines.{name}"
    return Job(label, train_variant, (data, config, seed, where)), data


def scorer_of(evaluation: Evaluation, artefact, data):
    """A ScoreFn from a job's artefact: a finetune bundle is loaded on ``data``."""
    if data is None:
        return artefact
    from crossrec.evaluation.experiments import model_score_fn

    return model_score_fn(artefact, data, evaluation.device)


def plan_baselines(evaluation: Evaluation, trained_model: dict) -> list[BaselinePlan]:
    """Every enabled baseline that can run here, with its seeds and its grid jobs."""
    from crossrec.evaluation.selection import apply_point, is_searched

    cfg = evaluation.cfg
    plans = []
    for name, spec in cfg.baselines.items():
        if not spec.enabled:
            continue
        kind = BASELINES.get(spec.kind)
        if getattr(kind, "trained", False) and trained_baseline_skipped(evaluation, name, spec):
            continue
        seeds = list(spec.seeds or cfg.seeds)
        if getattr(kind, "deterministic", False):
            seeds = seeds[:1]  # deterministic scorers: one run
        plan = BaselinePlan(name, spec, seeds)
        if is_searched(spec, cfg.selection):
            seed = cfg.selection.seed
            plan.selection_seed = seeds[0] if seed is None else seed
            for point in spec.grid.points():
                job, data = baseline_job(
                    evaluation, name, apply_point(spec, point), plan.selection_seed, trained_model
                )
                label = f"{name} grid {point} seed {plan.selection_seed}"
                plan.grid_jobs.append((replace(job, label=label), data))
        plans.append(plan)
    return plans


def select_point(evaluation: Evaluation, plan: BaselinePlan, trained: list[tuple[Any, float]]):
    """Score the plan's trained grid points on the validation slice only and keep the best:
    ``plan.spec`` becomes the chosen point, ``plan.selection`` its record."""
    from crossrec.evaluation.grid_edge import grid_edge_note
    from crossrec.evaluation.selection import apply_point, select

    cfg, split = evaluation.cfg, evaluation.split
    sel = cfg.selection
    valid = [s for s in evaluation.slices if s.name == "valid"] or ranking_slices(split, ["valid"])
    ks = sorted({*cfg.ks, int(sel.metric.partition("@")[2])})
    start = time.perf_counter()

    def score(index: int, candidate: BaselineConfig):
        artefact, _ = trained[index]
        scorer = scorer_of(evaluation, artefact, plan.grid_jobs[index][1])
        result = evaluate_scorer(
            scorer,
            split,
            valid,
            ks,
            cfg.k,
            None,
            device=evaluation.device,
            chunk_users=evaluation.chunk_users(),
        )
        return float(np.mean(result["valid"]["metrics"][sel.metric])), scorer

    best, trials, scorer = select(plan.spec, score)
    chosen = trials[best]["config"]
    train_s = sum(seconds for _, seconds in trained)
    plan.selection = {
        "metric": f"valid {sel.metric}",
        "seed": plan.selection_seed,
        "grid_size": len(trials),
        "chosen": chosen,
        "trials": trials,
        # the grid's training (summed over its runs, however many ran at once) + scoring
        "select_s": round(train_s + time.perf_counter() - start, 2),
        # a chosen value at the end of its grid: the best may lie beyond (said in the report)
        "grid_edge": grid_edge_note(plan.name, [t["config"] for t in trials], chosen),
    }
    if plan.selection["grid_edge"]:
        logger.warning(plan.selection["grid_edge"])
    logger.info(
        "baseline %s: %s chosen from %d configurations on valid %s (%.4f), %.1fs",
        plan.name,
        chosen,
        len(trials),
        sel.metric,
        trials[best]["valid"],
        plan.selection["select_s"],
    )
    plan.spec = apply_point(plan.spec, chosen)
    if plan.selection_seed in plan.seeds:
        plan.reuse = scorer  # the chosen point already ran with this seed


def baseline_runs(evaluation: Evaluation, trained_model: dict) -> dict:
    """Every enabled baseline on the same split, slices and ranking code as the model.

    ``finetune`` baselines are the finetune schema defaults (the trained model's ``trainer``
    block only) with ``baseline_defaults`` and the baseline's ``overrides`` merged in
    (:func:`crossrec.evaluation.experiments.baseline_config`). A baseline that
    ``evaluate.selection`` covers first picks its configuration from its ``grid`` on the
    validation split (:mod:`crossrec.evaluation.selection`); its seeds then run with it.
    """
    node_start = time.perf_counter()
    plans = plan_baselines(evaluation, trained_model)

    def seed_jobs(plan: BaselinePlan, seed: int) -> tuple:
        return (plan, seed, *baseline_job(evaluation, plan.name, plan.spec, seed, trained_model))

    first = []  # (plan, seed or None for a grid point, job, data)
    for plan in plans:
        first += [(plan, None, job, data) for job, data in plan.grid_jobs]
        if not plan.grid_jobs:
            first += [seed_jobs(plan, seed) for seed in plan.seeds]
    later = sum(len([s for s in p.seeds if s != p.selection_seed]) for p in plans if p.grid_jobs)
    n_jobs = len(first) + later
    with evaluation.pool(trained_model, n_jobs, "baselines") as pool:
        done = pool.run([job for *_, job, _ in first])
        for plan in plans:
            if plan.grid_jobs:
                select_point(
                    evaluation, plan, [r for r, f in zip(done, first, strict=True) if f[0] is plan]
                )
        second = [
            seed_jobs(plan, seed)
            for plan in plans
            if plan.grid_jobs
            for seed in plan.seeds
            if not (seed == plan.selection_seed and plan.reuse is not None)
        ]
        done += pool.run([job for *_, job, _ in second])
    trained = {
        (id(plan), seed): (result, data)
        for (plan, seed, _, data), result in zip(first + second, done, strict=True)
        if seed is not None
    }
    out = {plan.name: plan_result(evaluation, plan, trained) for plan in plans}
    node = evaluation.node_record(pool, len(first) + len(second), time.perf_counter() - node_start)
    for entry in out.values():
        entry["node"] = node
    return out


def plan_result(evaluation: Evaluation, plan: BaselinePlan, trained: dict) -> dict:
    """One baseline's per-user results over its seeds, scored from its trained artefacts."""
    runs, train_s, eval_s = [], 0.0, 0.0
    for seed in plan.seeds:
        if (id(plan), seed) in trained:
            (artefact, seconds), data = trained[(id(plan), seed)]
            scorer, train_s = scorer_of(evaluation, artefact, data), train_s + seconds
        else:
            scorer = plan.reuse
        start = time.perf_counter()
        runs.append(evaluation.run(scorer))
        eval_s += time.perf_counter() - start
    out = {"runs": runs, "seeds": plan.seeds, "train_s": train_s, "eval_s": eval_s}
    if plan.selection is not None:
        out["selection"] = plan.selection
    log_test_recall(f"baseline {plan.name}", runs, f"train {train_s:.1f}s, eval {eval_s:.1f}s")
    return out
