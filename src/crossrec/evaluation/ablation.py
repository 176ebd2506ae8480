"""What each modality is worth to the trained model: removed at inference time from every seed's
model (``evaluate.ablation``), and the model's configuration retrained without content or
without each modality (``evaluate.trained_ablation``)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from crossrec.evaluation.config import WHERE
from crossrec.evaluation.model_runs import log_test_recall

if TYPE_CHECKING:
    from crossrec.evaluation.runner import Evaluation

logger = logging.getLogger(__name__)


def _progress(iterable, desc: str):
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False)


def ablation_runs(evaluation: Evaluation, model_runs: dict) -> dict:
    """The inference-time ablation (when ``evaluate.ablation``), then the trained one (unless
    ``evaluate.trained_ablation`` is ``none``)."""
    cfg = evaluation.cfg
    out = inference_ablation(evaluation, model_runs) if cfg.ablation else {}
    if cfg.trained_ablation != "none":
        out |= trained_ablation(evaluation, model_runs, cfg.trained_ablation)
    elif mixed_twins(model_runs.get("bundles") or []):
        # a mix holds its model without content: what content is worth, without training
        out |= trained_ablation(evaluation, model_runs, "content")
    return out


def trained_ablation(evaluation: Evaluation, model_runs: dict, scope: str) -> dict:
    """The model's own configuration retrained without content / without each modality
    (``scope``), every seed (``evaluate.workers`` processes): what content is worth, trained
    both ways. A mix's twin is its model without content, evaluated as it is."""
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
    variants = trained_ablation_variants(config, modalities, scope)
    if not variants:
        logger.info("trained ablation skipped: the model uses no content modalities")
        return {}
    artifacts, name = evaluation.artifacts, evaluation.cfg.model_name
    planned = []  # (label, data, job) per variant and seed
    twins = mixed_twins(bundles)
    reused = []  # (label, data, bundle) per seed: a mix's twin is the model without content
    for label, modality in variants:
        features, graphs, variant = without_modality(
            artifacts.fused_item_features, artifacts.modality_graphs, config, modality
        )
        data = artifacts.training_data(variant, features=features, graphs=graphs)
        if modality is None and twins:
            reused += [(label, data, twin) for twin in twins]
            continue
        where = f"{WHERE}.trained_ablation ({name} {label})"
        planned += [
            (
                label,
                data,
                Job(f"{name} {label} seed {seed}", train_variant, (data, variant, seed, where)),
            )
            for seed in seeds
        ]
    with evaluation.pool(bundles[0], len(planned), "trained ablation") as pool:
        done = pool.run([job for *_, job in planned])
    node = evaluation.node_record(pool, len(planned), time.perf_counter() - node_start)
    out: dict[str, dict] = {}
    finished = [(label, data, bundle, 0.0) for label, data, bundle in reused]
    finished += [
        (label, data, bundle, seconds)
        for (label, data, _), (bundle, seconds) in zip(planned, done, strict=True)
    ]
    for label, data, bundle, seconds in finished:
        entry = out.setdefault(
            f"{name} {label}",
            {"runs": [], "seeds": seeds, "train_s": 0.0, "eval_s": 0.0},
        )
        start = time.perf_counter()
        entry["runs"].append(evaluation.run(model_score_fn(bundle, data, evaluation.device)))
        entry["eval_s"] += time.perf_counter() - start
        entry["train_s"] += seconds
    for label, entry in out.items():
        entry |= {"trained_ablation": True, "node": node}
        log_test_recall(label, entry["runs"])
    return out


def mixed_twins(bundles: list[dict]) -> list[dict] | None:
    """Each seed's ID-only twin when the model is a mix (``model.content_mix``) whose twin
    early-stopped on every validation pair: the same configuration, seed and data as the
    trained ablation's "without content" model, already trained."""
    from crossrec.models.mixed import MIX_KEY

    if not all(MIX_KEY in bundle for bundle in bundles):
        return None
    mix = bundles[0]["config"]["model"]["content_mix"]
    if float(mix.get("choice_share", 0.0)) > 0:
        return None
    return [bundle[MIX_KEY]["twin"] for bundle in bundles]


def inference_ablation(evaluation: Evaluation, model_runs: dict) -> dict:
    """The trained model (every seed) with one modality removed at inference time."""
    from crossrec.evaluation.experiments import ablate_modality, model_score_fn

    bundles = model_runs["bundles"]
    modalities = list(bundles[0].get("modalities") or [])
    if not modalities or not bundles[0]["config"].get("model", {}).get("use_content", True):
        logger.info("modality ablation skipped: the model uses no content modalities")
        return {}
    artifacts = evaluation.artifacts
    out = {}
    for modality in _progress(modalities, "modality ablation"):
        runs, start = [], time.perf_counter()
        for bundle in bundles:
            features, graphs = ablate_modality(
                artifacts.fused_item_features, artifacts.modality_graphs, modality, bundle["config"]
            )
            data = artifacts.training_data(bundle["config"], features=features, graphs=graphs)
            scorer = model_score_fn(bundle, data, evaluation.device)
            runs.append(evaluation.run(scorer, skip=("valid",)))
        out[f"{evaluation.cfg.model_name} w/o {modality}"] = {
            "runs": runs,
            "seeds": list(model_runs["seeds"]),
            "train_s": 0.0,
            "eval_s": time.perf_counter() - start,
            "inference_only": True,
        }
    return out
