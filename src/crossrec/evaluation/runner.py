"""The evaluation runner: one split, one ranking code path and the artifacts the model was
trained from, shared by every model evaluated in a run.

:class:`Evaluation` scores any scorer on every slice; the trained model's seeds
(:mod:`~crossrec.evaluation.model_runs`), the baselines (:mod:`~crossrec.evaluation.baseline_plan`)
and the modality ablation (:mod:`~crossrec.evaluation.ablation`) run through it, and
:mod:`~crossrec.evaluation.summary` turns their results into metrics, significance and timings.
The evaluate pipeline's nodes each make one call here; benchmarks and notebooks can do the same
without Kedro.
"""

from __future__ import annotations

import logging

import pandas as pd

from crossrec.evaluation import ablation, baseline_plan
from crossrec.evaluation import model_runs as model_seeds
from crossrec.evaluation.config import EvaluateConfig
from crossrec.evaluation.protocol import (
    EvalSplit,
    build_split,
    evaluate_scorer,
    history_buckets,
    ranking_slices,
    sample_slices,
)
from crossrec.models.inputs import TrainingArtifacts

logger = logging.getLogger(__name__)


def prepare_split(
    interactions: pd.DataFrame, items: pd.DataFrame, dataset_info: dict, cfg: EvaluateConfig
) -> EvalSplit:
    """Split matrices and item/user facts shared by every model evaluated."""
    split = build_split(
        interactions,
        items,
        int(dataset_info["n_users"]),
        int(dataset_info["n_items"]),
        tie_break_seed=cfg.tie_break_seed if cfg.tie_break == "random" else None,
    )
    logger.info(
        "evaluation split: %d users x %d items; train %d, valid %d, test %d; %d cold items",
        split.n_users,
        split.n_items,
        split.train.nnz,
        split.valid.nnz,
        split.test.nnz,
        int(split.is_cold.sum()),
    )
    if not split.is_cold.any() and {"test_warm", "test_cold"} & set(cfg.slices):
        logger.info(
            "no cold-start items in this split (ingest split.cold_items.share = 0): "
            "test_warm / test_cold are not reported"
        )
    if max(cfg.ks) >= split.n_items:
        logger.warning(
            "evaluate.ks goes up to %d but the catalogue has only %d items: @%d metrics rank "
            "(almost) every item and say little",
            max(cfg.ks),
            split.n_items,
            max(cfg.ks),
        )
    return split


def job_threads(trained_model: dict) -> int:
    """torch threads of one training run: the trained model's ``trainer.cpu_threads`` (which
    every baseline inherits), resolved as training resolves it; torch's default = every core."""
    from crossrec.models.config import TrainerConfig
    from crossrec.models.training import resolve_cpu_threads, usable_cpu_cores

    trainer = (trained_model.get("config") or {}).get("trainer") or {}
    value = trainer.get("cpu_threads", TrainerConfig().cpu_threads)
    return resolve_cpu_threads(value) or usable_cpu_cores()


class Evaluation:
    """One evaluation run: the config, the split and the artifacts every trained variant is
    rebuilt from (as finetune built its data), shared by every model evaluated in it."""

    def __init__(self, cfg: EvaluateConfig, split: EvalSplit, artifacts: TrainingArtifacts):
        from crossrec.device import resolve_device

        self.cfg = cfg
        self.split = split
        self.artifacts = artifacts
        self.device = str(resolve_device(cfg.device))
        sample = cfg.sample_users
        self.slices = sample_slices(
            ranking_slices(split, cfg.slices), split.n_users, sample.size, sample.seed
        )
        self.buckets = (
            history_buckets(split.history_length, cfg.history_quantiles)
            if cfg.history_quantiles
            else None
        )
        features = artifacts.fused_item_features
        self.content = None
        if features:
            from crossrec.metrics.beyond import content_vectors

            self.content = content_vectors(features)

    def chunk_users(self) -> int:
        """Users scored at once: ``evaluate.chunk_users``, else as many as one chunk of every
        item fits in ``evaluate.score_batch_bytes``."""
        from crossrec.metrics.ranking import auto_chunk_size

        return self.cfg.chunk_users or auto_chunk_size(
            self.split.n_items, self.cfg.score_batch_bytes
        )

    def run(self, score_fn, skip: tuple[str, ...] = ()) -> dict:
        """Per-user metrics of one scorer on every slice (except ``skip``)."""
        return evaluate_scorer(
            score_fn,
            self.split,
            [s for s in self.slices if s.name not in skip],
            self.cfg.ks,
            self.cfg.k,
            self.content,
            user_buckets=self.buckets,
            device=self.device,
            chunk_users=self.chunk_users(),
            popularity_buckets=self.cfg.popularity_buckets,
        )

    def pool(self, trained_model: dict, n_jobs: int, desc: str):
        """A :class:`~crossrec.evaluation.jobs.JobPool` sized by ``evaluate.workers``."""
        from crossrec.evaluation.jobs import JobPool, resolve_workers

        threads = job_threads(trained_model)
        on_gpu = self.device.startswith("cuda")
        workers = resolve_workers(self.cfg.workers, n_jobs, threads, on_gpu)
        return JobPool(workers, threads, desc, total=n_jobs)

    @staticmethod
    def node_record(pool, jobs: int, wall_s: float) -> dict:
        return {"wall_s": round(wall_s, 2), "workers": pool.workers, "jobs": jobs}

    def model_runs(self, trained_model: dict, default_seed: int) -> dict:
        """The trained model for every seed (:func:`crossrec.evaluation.model_runs.model_runs`)."""
        return model_seeds.model_runs(self, trained_model, default_seed)

    def baseline_runs(self, trained_model: dict) -> dict:
        """Every enabled baseline (:func:`crossrec.evaluation.baseline_plan.baseline_runs`)."""
        return baseline_plan.baseline_runs(self, trained_model)

    def ablation_runs(self, model_runs: dict) -> dict:
        """The modality ablation (:func:`crossrec.evaluation.ablation.ablation_runs`)."""
        return ablation.ablation_runs(self, model_runs)


def seed_vectors(artifacts: TrainingArtifacts, model_runs: dict) -> list:
    """(user vectors, item vectors) of the model for every evaluated seed."""
    from crossrec.evaluation.words import model_vectors
    from crossrec.models.config import complete_stored_config

    bundles = model_runs["bundles"]
    data = artifacts.training_data(complete_stored_config(bundles[0]["config"]))
    return [model_vectors(bundle, data) for bundle in bundles]


def words_runs(
    cfg: EvaluateConfig,
    split: EvalSplit,
    artifacts: TrainingArtifacts,
    model_runs: dict,
    word_requests: pd.DataFrame | None,
) -> dict:
    """The ``words`` block (``crossrec.evaluation.words``) over every seed of the model."""
    from crossrec.evaluation.words import evaluate_words

    if word_requests is None or word_requests.empty or not cfg.words.enabled:
        return {}
    return evaluate_words(
        word_requests,
        split,
        artifacts.item_texts,
        seed_vectors(artifacts, model_runs),
        list(model_runs["seeds"]),
        cfg.words,
    )


def cold_user_runs(
    cfg: EvaluateConfig, split: EvalSplit, artifacts: TrainingArtifacts, model_runs: dict, users
) -> dict:
    """The ``cold_users`` block (``crossrec.evaluation.cold_users``): users without history,
    recommended from their attributes; ``{}`` when there are none."""
    from crossrec.evaluation.cold_users import evaluate_cold_users

    if split.cold_test is None or split.cold_test.nnz == 0 or not cfg.words.enabled:
        return {}
    return evaluate_cold_users(
        split, users, seed_vectors(artifacts, model_runs), list(model_runs["seeds"]), cfg.words
    )
