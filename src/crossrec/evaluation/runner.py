"""The evaluation runner: the trained model over its seeds, every baseline and the modality
ablation, on one split and one ranking code path; then metrics, significance and timings.

The evaluate pipeline's nodes each make one call here; benchmarks and notebooks can do the same
without Kedro.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from crossrec.evaluation.config import BASELINES, BaselineConfig, EvaluateConfig
from crossrec.evaluation.protocol import (
    EvalSplit,
    aggregate_seeds,
    build_split,
    evaluate_scorer,
    history_buckets,
    per_user_seed_mean,
    ranking_slices,
)
from crossrec.evaluation.report import NODES_KEY, fmt

logger = logging.getLogger(__name__)

WHERE = "conf/base/parameters_evaluate.yml: evaluate"


def _progress(iterable, desc: str):
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False)


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


@dataclass
class Upstream:
    """The artifacts every trained variant is rebuilt from (as finetune built its data)."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    dataset_info: dict
    fused_item_features: dict
    modality_graphs: dict
    user_item_graph: Any
    item_texts: list[str] | None

    def training_data(self, config: dict, features: dict | None = None, graphs=None):
        """The library's one TrainingData builder, so evaluation sees what training saw."""
        from crossrec.models.inputs import build_training_data

        return build_training_data(
            self.interactions,
            self.items,
            self.dataset_info,
            self.fused_item_features if features is None else features,
            self.modality_graphs if graphs is None else graphs,
            self.user_item_graph,
            config,
            self.item_texts,
        )


def build_standalone(kind: type, spec: BaselineConfig, split: EvalSplit, seed: int):
    """A baseline that is not a finetune configuration (MostPop, ItemKNN, EASE, MF-BPR) as a
    ScoreFn: the job function of those kinds. ``kind`` is the registered class itself (pickled by
    reference: a worker imports its module, which also registers a kind defined outside
    crossrec)."""
    return kind.from_spec(spec, split, seed)


def job_threads(trained_model: dict) -> int:
    """torch threads of one training run: the trained model's ``trainer.cpu_threads`` (which
    every baseline inherits), resolved as training resolves it; torch's default = every core."""
    from crossrec.models.config import TrainerConfig
    from crossrec.models.training import resolve_cpu_threads, usable_cpu_cores

    trainer = (trained_model.get("config") or {}).get("trainer") or {}
    value = trainer.get("cpu_threads", TrainerConfig().cpu_threads)
    return resolve_cpu_threads(value) or usable_cpu_cores()


@dataclass(eq=False)
class _BaselinePlan:
    """One baseline's runs: its seeds, and its grid jobs (with their TrainingData) when
    selection searches it; ``spec`` becomes the chosen point once selection has run."""

    name: str
    spec: BaselineConfig
    seeds: list[int]
    selection_seed: int | None = None
    grid_jobs: list = field(default_factory=list)
    selection: dict | None = None
    reuse: Any = None


class Evaluation:
    """One evaluation run: the config, the split and the upstream artifacts, shared by every
    model evaluated in it."""

    def __init__(self, cfg: EvaluateConfig, split: EvalSplit, upstream: Upstream):
        from crossrec.device import resolve_device

        self.cfg = cfg
        self.split = split
        self.upstream = upstream
        self.device = str(resolve_device(cfg.device))
        self.slices = ranking_slices(split, cfg.slices)
        self.buckets = (
            history_buckets(split.history_length, cfg.history_quantiles)
            if cfg.history_quantiles
            else None
        )
        features = upstream.fused_item_features
        self.content = None
        if features:
            from crossrec.metrics.beyond import content_vectors

            self.content = content_vectors(features)

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
            chunk_users=self.cfg.chunk_users,
            popularity_buckets=self.cfg.popularity_buckets,
        )

    # ------------------------------------------------------------------ training jobs
    def _pool(self, trained_model: dict, n_jobs: int, desc: str):
        """A :class:`~crossrec.evaluation.jobs.JobPool` sized by ``evaluate.workers``."""
        from crossrec.evaluation.jobs import JobPool, resolve_workers

        threads = job_threads(trained_model)
        on_gpu = self.device.startswith("cuda")
        workers = resolve_workers(self.cfg.workers, n_jobs, threads, on_gpu)
        return JobPool(workers, threads, desc, total=n_jobs)

    @staticmethod
    def _node_record(pool, jobs: int, wall_s: float) -> dict:
        return {"wall_s": round(wall_s, 2), "workers": pool.workers, "jobs": jobs}

    # ------------------------------------------------------------------ the trained model
    def model_runs(self, trained_model: dict, default_seed: int) -> dict:
        """The trained model for every seed in ``seeds``: the artifact for the seed it was
        trained with, the same configuration retrained for the others (in parallel,
        ``evaluate.workers``)."""
        from crossrec.evaluation.experiments import bundle_seed, model_score_fn, train_variant
        from crossrec.evaluation.jobs import Job
        from crossrec.models.config import complete_stored_config

        node_start = time.perf_counter()
        cfg = self.cfg
        config = complete_stored_config(trained_model["config"])
        data = self.upstream.training_data(config)
        trained_seed = bundle_seed(trained_model, default_seed)
        if trained_seed not in cfg.seeds:
            logger.warning(
                "trained_model was trained with seed %d, not in evaluate.seeds %s: "
                "every seed is retrained",
                trained_seed,
                cfg.seeds,
            )
        where = f"{cfg.model_name} (trained_model config)"
        jobs = [
            Job(f"{cfg.model_name} seed {seed}", train_variant, (data, config, seed, where))
            for seed in cfg.seeds
            if seed != trained_seed
        ]
        with self._pool(trained_model, len(jobs), f"{cfg.model_name} seeds") as pool:
            trained = iter(pool.run(jobs))
        runs, bundles, train_s, eval_s = [], [], 0.0, 0.0
        reused = 0
        for seed in cfg.seeds:
            if seed == trained_seed:
                bundle, reused = trained_model, reused + 1
            else:
                bundle, seconds = next(trained)
                train_s += seconds
            start = time.perf_counter()
            runs.append(self.run(model_score_fn(bundle, data, self.device)))
            eval_s += time.perf_counter() - start
            bundles.append(bundle)
        test = aggregate_seeds(runs).get("test", {})
        logger.info(
            "%s: test recall@20 %s (retraining %.1fs, eval %.1fs)",
            cfg.model_name,
            fmt(test.get("recall@20")),
            train_s,
            eval_s,
        )
        return {
            "name": cfg.model_name,
            "runs": runs,
            "seeds": list(cfg.seeds),
            "train_s": train_s,
            "eval_s": eval_s,
            "bundles": bundles,
            # the artifact's own training time is finetune's, not spent here
            "reused_seeds": reused,
            "node": self._node_record(pool, len(jobs), time.perf_counter() - node_start),
        }

    # ------------------------------------------------------------------ baselines
    def _trained_baseline_skipped(self, name: str, spec: BaselineConfig) -> bool:
        """True (with a warning) when none of the baseline's modalities is in this dataset."""
        from crossrec.evaluation.experiments import select_modalities

        features = select_modalities(self.upstream.fused_item_features, spec.modalities)
        if spec.modalities is None or features["__order__"]:
            return False
        available = [m for m in self.upstream.fused_item_features if not m.startswith("__")]
        logger.warning(
            "baseline %s skipped: none of its modalities %s in this dataset (has %s)",
            name,
            spec.modalities,
            available,
        )
        return True

    def _baseline_job(self, name: str, spec: BaselineConfig, seed: int, trained_model: dict):
        """(job training ``spec`` with ``seed``, TrainingData to score its bundle with, or None
        when the job's artefact is the scorer itself)."""
        from crossrec.evaluation.jobs import Job

        label = f"{name} seed {seed}"
        kind = BASELINES.get(spec.kind)
        if not getattr(kind, "trained", False):
            return Job(label, build_standalone, (kind, spec, self.split, seed)), None
        from crossrec.evaluation.experiments import (
            baseline_config,
            select_modalities,
            train_variant,
        )

        features = select_modalities(self.upstream.fused_item_features, spec.modalities)
        config = baseline_config(
            trained_model["config"], self.cfg.baseline_defaults, spec.overrides
        )
        data = self.upstream.training_data(config, features=features)
        where = f"{WHERE}.baselines.{name}"
        return Job(label, train_variant, (data, config, seed, where)), data

    def _scorer(self, artefact, data):
        """A ScoreFn from a job's artefact: a finetune bundle is loaded on ``data``."""
        if data is None:
            return artefact
        from crossrec.evaluation.experiments import model_score_fn

        return model_score_fn(artefact, data, self.device)

    def _plan(self, trained_model: dict) -> list[_BaselinePlan]:
        """Every enabled baseline that can run here, with its seeds and its grid jobs."""
        from crossrec.evaluation.selection import apply_point, is_searched

        plans = []
        for name, spec in self.cfg.baselines.items():
            if not spec.enabled:
                continue
            kind = BASELINES.get(spec.kind)
            if getattr(kind, "trained", False) and self._trained_baseline_skipped(name, spec):
                continue
            seeds = list(spec.seeds or self.cfg.seeds)
            if getattr(kind, "deterministic", False):
                seeds = seeds[:1]  # deterministic scorers: one run
            plan = _BaselinePlan(name, spec, seeds)
            if is_searched(spec, self.cfg.selection):
                seed = self.cfg.selection.seed
                plan.selection_seed = seeds[0] if seed is None else seed
                for point in spec.grid.points():
                    job, data = self._baseline_job(
                        name, apply_point(spec, point), plan.selection_seed, trained_model
                    )
                    label = f"{name} grid {point} seed {plan.selection_seed}"
                    plan.grid_jobs.append((replace(job, label=label), data))
            plans.append(plan)
        return plans

    def _select(self, plan: _BaselinePlan, trained: list[tuple[Any, float]]) -> None:
        """Score the plan's trained grid points on the validation slice only and keep the best:
        ``plan.spec`` becomes the chosen point, ``plan.selection`` its record."""
        from crossrec.evaluation.selection import apply_point, select

        sel = self.cfg.selection
        valid = [s for s in self.slices if s.name == "valid"] or ranking_slices(
            self.split, ["valid"]
        )
        ks = sorted({*self.cfg.ks, int(sel.metric.partition("@")[2])})
        start = time.perf_counter()

        def score(index: int, candidate: BaselineConfig):
            artefact, _ = trained[index]
            scorer = self._scorer(artefact, plan.grid_jobs[index][1])
            result = evaluate_scorer(
                scorer, self.split, valid, ks, self.cfg.k, None, device=self.device
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
        }
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

    def baseline_runs(self, trained_model: dict) -> dict:
        """Every enabled baseline on the same split, slices and ranking code as the model.

        ``finetune`` baselines are the finetune schema defaults (the trained model's
        ``trainer`` block only) with ``baseline_defaults`` and the baseline's ``overrides``
        merged in (:func:`crossrec.evaluation.experiments.baseline_config`). A baseline that
        ``evaluate.selection`` covers first picks its configuration from its ``grid`` on the
        validation split (:mod:`crossrec.evaluation.selection`); its seeds then run with it.
        Training runs go to ``evaluate.workers`` processes in two waves: every grid point and
        every seed of the baselines without a grid, then the seeds of the searched baselines.
        """
        node_start = time.perf_counter()
        plans = self._plan(trained_model)
        first = []  # (plan, seed or None for a grid point, job, data)
        for plan in plans:
            first += [(plan, None, job, data) for job, data in plan.grid_jobs]
            if not plan.grid_jobs:
                first += [
                    (plan, seed, *self._baseline_job(plan.name, plan.spec, seed, trained_model))
                    for seed in plan.seeds
                ]
        later = sum(
            len([s for s in p.seeds if s != p.selection_seed]) for p in plans if p.grid_jobs
        )
        n_jobs = len(first) + later
        with self._pool(trained_model, n_jobs, "baselines") as pool:
            done = pool.run([job for *_, job, _ in first])
            for plan in plans:
                if plan.grid_jobs:
                    self._select(
                        plan, [r for r, f in zip(done, first, strict=True) if f[0] is plan]
                    )
            second = [
                (plan, seed, *self._baseline_job(plan.name, plan.spec, seed, trained_model))
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
        out: dict[str, dict] = {}
        for plan in plans:
            runs, train_s, eval_s = [], 0.0, 0.0
            for seed in plan.seeds:
                if (id(plan), seed) in trained:
                    (artefact, seconds), data = trained[(id(plan), seed)]
                    scorer, train_s = self._scorer(artefact, data), train_s + seconds
                else:
                    scorer = plan.reuse
                start = time.perf_counter()
                runs.append(self.run(scorer))
                eval_s += time.perf_counter() - start
            out[plan.name] = {
                "runs": runs,
                "seeds": plan.seeds,
                "train_s": train_s,
                "eval_s": eval_s,
            }
            if plan.selection is not None:
                out[plan.name]["selection"] = plan.selection
            test = aggregate_seeds(runs).get("test", {})
            logger.info(
                "baseline %s: test recall@20 %s (train %.1fs, eval %.1fs)",
                plan.name,
                fmt(test.get("recall@20")),
                train_s,
                eval_s,
            )
        node = self._node_record(pool, len(first) + len(second), time.perf_counter() - node_start)
        for entry in out.values():
            entry["node"] = node
        return out

    # ------------------------------------------------------------------ ablation
    def ablation_runs(self, model_runs: dict) -> dict:
        """The trained model (every seed) with one modality removed at inference time
        (``evaluate.ablation``), then retrained without content or without each modality
        (``evaluate.trained_ablation``)."""
        out = self._inference_ablation(model_runs) if self.cfg.ablation else {}
        if self.cfg.trained_ablation != "none":
            out |= self._trained_ablation(model_runs)
        return out

    def _trained_ablation(self, model_runs: dict) -> dict:
        """The model's own configuration retrained without content / without each modality,
        every seed (``evaluate.workers`` processes): what content is worth, trained both ways."""
        from crossrec.evaluation.experiments import (
            model_score_fn,
            train_variant,
            trained_ablation_variants,
            without_modality,
        )
        from crossrec.evaluation.jobs import Job
        from crossrec.models.config import complete_stored_config

        node_start = time.perf_counter()
        bundles, seeds = model_runs["bundles"], list(model_runs["seeds"])
        config = complete_stored_config(bundles[0]["config"])
        modalities = list(bundles[0].get("modalities") or [])
        variants = trained_ablation_variants(config, modalities, self.cfg.trained_ablation)
        if not variants:
            logger.info("trained ablation skipped: the model uses no content modalities")
            return {}
        up, name = self.upstream, self.cfg.model_name
        planned = []  # (label, data, job) per variant and seed
        for label, modality in variants:
            features, graphs, variant = without_modality(
                up.fused_item_features, up.modality_graphs, config, modality
            )
            data = up.training_data(variant, features=features, graphs=graphs)
            where = f"{WHERE}.trained_ablation ({name} {label})"
            planned += [
                (
                    label,
                    data,
                    Job(f"{name} {label} seed {seed}", train_variant, (data, variant, seed, where)),
                )
                for seed in seeds
            ]
        with self._pool(bundles[0], len(planned), "trained ablation") as pool:
            done = pool.run([job for *_, job in planned])
        node = self._node_record(pool, len(planned), time.perf_counter() - node_start)
        out: dict[str, dict] = {}
        for (label, data, _), (bundle, seconds) in zip(planned, done, strict=True):
            entry = out.setdefault(
                f"{name} {label}",
                {"runs": [], "seeds": seeds, "train_s": 0.0, "eval_s": 0.0},
            )
            start = time.perf_counter()
            entry["runs"].append(self.run(model_score_fn(bundle, data, self.device)))
            entry["eval_s"] += time.perf_counter() - start
            entry["train_s"] += seconds
        for label, entry in out.items():
            entry |= {"trained_ablation": True, "node": node}
            test = aggregate_seeds(entry["runs"]).get("test", {})
            logger.info("%s: test recall@20 %s", label, fmt(test.get("recall@20")))
        return out

    def _inference_ablation(self, model_runs: dict) -> dict:
        """The trained model (every seed) with one modality removed at inference time."""
        from crossrec.evaluation.experiments import ablate_modality, model_score_fn

        bundles = model_runs["bundles"]
        modalities = list(bundles[0].get("modalities") or [])
        if not modalities or not bundles[0]["config"].get("model", {}).get("use_content", True):
            logger.info("modality ablation skipped: the model uses no content modalities")
            return {}
        up = self.upstream
        out = {}
        for modality in _progress(modalities, "modality ablation"):
            runs, start = [], time.perf_counter()
            for bundle in bundles:
                features, graphs = ablate_modality(
                    up.fused_item_features, up.modality_graphs, modality, bundle["config"]
                )
                data = up.training_data(bundle["config"], features=features, graphs=graphs)
                runs.append(self.run(model_score_fn(bundle, data, self.device), skip=("valid",)))
            out[f"{self.cfg.model_name} w/o {modality}"] = {
                "runs": runs,
                "seeds": list(model_runs["seeds"]),
                "train_s": 0.0,
                "eval_s": time.perf_counter() - start,
                "inference_only": True,
            }
        return out


# ---------------------------------------------------------------------- summaries


def all_models(model_runs: dict, baseline_runs: dict, ablation_runs: dict) -> dict:
    return {model_runs["name"]: model_runs} | baseline_runs | ablation_runs


def per_user_table(model_runs: dict, baseline_runs: dict, ablation_runs: dict) -> pd.DataFrame:
    """Long table of every per-user result: one row per (model, seed, slice, user), one column
    per metric. Paired tests against models run elsewhere (benchmarks/vs_cornac.py) and any
    further slicing start from it instead of re-running evaluation."""
    frames = []
    for name, entry in all_models(model_runs, baseline_runs, ablation_runs).items():
        for seed, run in zip(entry["seeds"], entry["runs"], strict=True):
            for slice_name, result in run.items():
                frame = pd.DataFrame(
                    {m: np.asarray(v, dtype=np.float64) for m, v in result["metrics"].items()}
                )
                frame.insert(0, "user_idx", np.asarray(result["users"], dtype=np.int64))
                frame.insert(0, "slice", slice_name)
                frame.insert(0, "seed", int(seed))
                frame.insert(0, "model", name)
                frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["model", "seed", "slice", "user_idx"])
    return pd.concat(frames, ignore_index=True)


def _paired_tests(
    cfg: EvaluateConfig,
    model_runs: dict,
    baseline_runs: dict,
    best,
    slices: list[str] | None = None,
) -> list:
    from crossrec.evaluation.significance import paired_test

    tests = []
    for baseline, entry in baseline_runs.items():
        for slice_name in cfg.significance_slices if slices is None else slices:
            if slice_name not in model_runs["runs"][0] or slice_name not in entry["runs"][0]:
                continue
            for metric in cfg.significance_metrics:
                users_a, a = per_user_seed_mean(model_runs["runs"], slice_name, metric)
                users_b, b = per_user_seed_mean(entry["runs"], slice_name, metric)
                if not np.array_equal(users_a, users_b):
                    raise ValueError(
                        f"slice {slice_name}: {cfg.model_name} and {baseline} were "
                        "evaluated on different users"
                    )
                tests.append(
                    paired_test(a, b, metric).as_dict()
                    | {
                        "slice": slice_name,
                        "model_a": cfg.model_name,
                        "model_b": baseline,
                        "best_baseline": baseline == best,
                    }
                )
    return tests


def _seed_vectors(upstream: Upstream, model_runs: dict) -> list:
    """(user vectors, item vectors) of the model for every evaluated seed."""
    from crossrec.evaluation.words import model_vectors
    from crossrec.models.config import complete_stored_config

    bundles = model_runs["bundles"]
    data = upstream.training_data(complete_stored_config(bundles[0]["config"]))
    return [model_vectors(bundle, data) for bundle in bundles]


def words_runs(
    cfg: EvaluateConfig,
    split: EvalSplit,
    upstream: Upstream,
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
        upstream.item_texts,
        _seed_vectors(upstream, model_runs),
        list(model_runs["seeds"]),
        cfg.words,
    )


def cold_user_runs(
    cfg: EvaluateConfig, split: EvalSplit, upstream: Upstream, model_runs: dict, users
) -> dict:
    """The ``cold_users`` block (``crossrec.evaluation.cold_users``): users without history,
    recommended from their attributes; ``{}`` when there are none."""
    from crossrec.evaluation.cold_users import evaluate_cold_users

    if split.cold_test is None or split.cold_test.nnz == 0 or not cfg.words.enabled:
        return {}
    return evaluate_cold_users(
        split, users, _seed_vectors(upstream, model_runs), list(model_runs["seeds"]), cfg.words
    )


def summarize(
    cfg: EvaluateConfig,
    model_runs: dict,
    baseline_runs: dict,
    ablation_runs: dict,
    words: dict | None = None,
    cold_users: dict | None = None,
) -> tuple[dict, dict, dict]:
    """metrics.json (model -> slice -> metric -> {mean, std}; ``words``: the words protocol;
    ``cold_users``: users without history), significance tests, timings."""
    everything = all_models(model_runs, baseline_runs, ablation_runs)
    trained = {n: e for n, e in ablation_runs.items() if e.get("trained_ablation")}
    metrics = {name: aggregate_seeds(entry["runs"]) for name, entry in everything.items()}
    if words:
        metrics["words"] = words
    if cold_users:
        metrics["cold_users"] = cold_users
    primary = cfg.significance_metrics[0] if cfg.significance_metrics else f"recall@{cfg.k}"
    candidates = {
        name: metrics[name].get("test", {}).get(primary, {}).get("mean", -1.0)
        for name in baseline_runs
    }
    best = max(candidates, key=candidates.get) if candidates else None
    significance = {
        "best_baseline": best,
        "selected_by": f"test {primary}",
        "alpha": cfg.alpha,
        "seeds": list(cfg.seeds),
        "tests": _paired_tests(cfg, model_runs, baseline_runs, best),
        # what content is worth: the model against itself retrained without content / a
        # modality (evaluate.trained_ablation), on every test slice
        "content_worth": _paired_tests(
            cfg, model_runs, trained, None, ["test", "test_warm", "test_cold"]
        ),
        # recall by the held-out item's popularity: the trade content makes (head vs tail)
        "by_popularity": by_popularity(cfg, model_runs, everything, ablation_runs),
    }
    timings = {
        name: {
            "train_s": round(entry["train_s"], 2),
            "eval_s": round(entry["eval_s"], 2),
            "seeds": len(entry["runs"]),
            "reused_seeds": int(entry.get("reused_seeds", 0)),
            "inference_only": bool(entry.get("inference_only", False)),
        }
        | ({"selection": entry["selection"]} if "selection" in entry else {})
        for name, entry in everything.items()
    }
    timings[NODES_KEY] = node_timings(model_runs, baseline_runs, ablation_runs)
    return metrics, significance, timings


def by_popularity(cfg: EvaluateConfig, model_runs: dict, everything: dict, ablation: dict):
    """``significance.json: by_popularity``: Recall@k by item popularity on the main slice
    (test_warm when there are cold items) for the model, its trained twins and the baselines
    (not the inference-time ablations, which score the same trained model)."""
    from crossrec.evaluation.popularity import by_popularity_block

    first = model_runs["runs"][0] if model_runs.get("runs") else {}
    main = "test_warm" if "test_warm" in first else "test"
    inference = {n for n, e in ablation.items() if not e.get("trained_ablation")}
    runs = {n: e["runs"] for n, e in everything.items() if n not in inference}
    return by_popularity_block(runs, main, cfg.k)


def node_timings(model_runs: dict, baseline_runs: dict, ablation_runs: dict | None = None) -> dict:
    """Wall time, worker processes and training jobs of the two training nodes: a model's
    ``train_s`` sums its jobs, which overlap when several workers ran them."""
    out = {}
    if "node" in model_runs:
        out["evaluate_trained_model"] = model_runs["node"]
    trained = next((e["node"] for e in (ablation_runs or {}).values() if "node" in e), None)
    if trained is not None:
        out["evaluate_modality_ablation"] = trained
    node = next((entry["node"] for entry in baseline_runs.values() if "node" in entry), None)
    if node is not None:
        out["evaluate_baselines"] = node
    return out
