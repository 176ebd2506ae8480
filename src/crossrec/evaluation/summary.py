"""From every model's per-user results to what evaluate writes: metrics.json (means and stds
over seeds), the paired significance tests, the timings and the long per-user table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crossrec.evaluation.config import EvaluateConfig
from crossrec.evaluation.protocol import aggregate_seeds, per_user_seed_mean
from crossrec.evaluation.report import NODES_KEY


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


def paired_tests(
    cfg: EvaluateConfig,
    model_runs: dict,
    baseline_runs: dict,
    best,
    slices: list[str] | None = None,
) -> list:
    """The model against each of ``baseline_runs`` on the same users, per slice and metric."""
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
        "tests": paired_tests(cfg, model_runs, baseline_runs, best),
        # what content is worth: the model against itself retrained without content / a
        # modality (evaluate.trained_ablation), on every test slice
        "content_worth": paired_tests(
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
        | ({"content_mix": entry["content_mix"]} if "content_mix" in entry else {})
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
