"""The trained model over every evaluation seed: the artifact for the seed it was trained with,
the same configuration retrained (in ``evaluate.workers`` processes) for the others."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from crossrec.evaluation.protocol import aggregate_seeds
from crossrec.evaluation.report_tables import fmt

if TYPE_CHECKING:
    from crossrec.evaluation.runner import Evaluation

logger = logging.getLogger(__name__)


def log_test_recall(label: str, runs: list[dict], timing: str = "") -> None:
    """One line per evaluated model: its mean test recall@20 over seeds, and what it cost."""
    recall = fmt(aggregate_seeds(runs).get("test", {}).get("recall@20"))
    logger.info("%s: test recall@20 %s%s", label, recall, f" ({timing})" if timing else "")


def model_runs(evaluation: Evaluation, trained_model: dict, default_seed: int) -> dict:
    """Per-user results of the trained model for every seed in ``evaluate.seeds``, with the
    bundles (the ablation and the words protocol reuse them) and the time spent."""
    from crossrec.evaluation.experiments import bundle_seed, model_score_fn, train_variant
    from crossrec.evaluation.jobs import Job
    from crossrec.models.config import complete_stored_config

    node_start = time.perf_counter()
    cfg = evaluation.cfg
    config = complete_stored_config(trained_model["config"])
    data = evaluation.artifacts.training_data(config)
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
    with evaluation.pool(trained_model, len(jobs), f"{cfg.model_name} seeds") as pool:
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
        runs.append(evaluation.run(model_score_fn(bundle, data, evaluation.device)))
        eval_s += time.perf_counter() - start
        bundles.append(bundle)
    log_test_recall(cfg.model_name, runs, f"retraining {train_s:.1f}s, eval {eval_s:.1f}s")
    return {
        "name": cfg.model_name,
        "runs": runs,
        "seeds": list(cfg.seeds),
        "train_s": train_s,
        "eval_s": eval_s,
        "bundles": bundles,
        # a mix (model.content_mix): the point each seed chose on validation
        **mix_choices(bundles),
        # the artifact's own training time is finetune's, not spent here
        "reused_seeds": reused,
        "node": evaluation.node_record(pool, len(jobs), time.perf_counter() - node_start),
    }


def mix_choices(bundles: list[dict]) -> dict:
    """``{"content_mix": [chosen point per seed]}`` when the model is a mix, else ``{}``."""
    from crossrec.models.mixed import MIX_KEY, json_point

    if not bundles or not all(MIX_KEY in bundle for bundle in bundles):
        return {}
    return {"content_mix": [json_point(bundle[MIX_KEY]["choice"]) for bundle in bundles]}
