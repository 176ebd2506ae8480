"""Does a short `tune` study find a loss that only works as a family of keys?

A synthetic dataset built to need sampled softmax: users like one fine sub-genre inside a
coarse genre (plus some genre-level and popularity-driven clicks), and the validation item is
in the sub-genre. Uniform negatives are mostly other genres, which BPR separates early; the
softmax loss with a cosine score and a low temperature weighs the hard, same-genre negatives.
The content vectors carry the genre only.

Per seed it prints the two short finetune runs (the BPR defaults against the softmax family:
the dataset check) and what a study of ``--n-trials`` exports, with the shipped mechanics
(``search_groups``: the loss family is one choice) and, with ``--one-key``, with the loss keys
searched one by one and every neighbour enqueued (the mechanics before search groups)::

    PYTHONPATH=src .venv/bin/python benchmarks/tune_loss_family.py --seeds 0,1,2 --one-key
"""

from __future__ import annotations

import argparse
import copy
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import yaml

#: the BPR defaults and the softmax family (cosine score, temperature 0.2)
FAMILIES: dict[str, dict[str, Any]] = {
    "bpr": {"loss.kind": "bpr", "loss.cosine": False},
    "softmax": {"loss.kind": "softmax", "loss.cosine": True, "loss.temperature": 0.2},
}

#: a small finetune block: a few seconds per run on one CPU thread
FINETUNE: dict[str, Any] = {
    "model": {
        "embedding_dim": 32,
        "fusion": {"strategy": "concat"},
        "propagation": {"layers": 1, "item_graph_layers": 1},
    },
    "data": {"batch_size": 256, "num_negatives": 16},
    "optim": {"lr": 1e-2},
    "loss": {"kind": "bpr"},
    "trainer": {
        "max_epochs": 30,
        "patience": 5,
        "accelerator": "cpu",
        "devices": 1,
        "precision": "32-true",
        "val_ks": [20],
        "cpu_threads": 1,
        "seed": 0,
    },
}

#: the study: the shipped space's kinds of keys, at this dataset's scale
SEARCH_SPACE: dict[str, Any] = {
    "optim.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
    "loss.reg_weight": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "data.num_negatives": {"type": "int", "low": 1, "high": 32, "log": True},
    "loss.content_weight": {"type": "categorical", "choices": [0.0, 0.1, 1.0]},
    "model.content_space": {"type": "categorical", "choices": ["shared", "separate"]},
}
#: the shipped loss family (conf/base/parameters_tune.yml: tune.search_groups.loss_family)
LOSS_FAMILY: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "conf/base/parameters_tune.yml").read_text()
)["tune"]["search_groups"]["loss_family"]
#: the same loss keys searched one by one (no group)
ONE_KEY_LOSS: dict[str, Any] = {
    "loss.kind": {"type": "categorical", "choices": ["bpr", "softmax"]},
    "loss.temperature": {"type": "float", "low": 0.05, "high": 0.5, "log": True},
    "loss.cosine": {"type": "categorical", "choices": [False, True]},
}


def nested_taste_data(
    n_users: int = 400,
    n_genres: int = 4,
    n_sub: int = 6,
    per_sub: int = 12,
    per_user: int = 10,
    p_sub: float = 0.7,
    p_genre: float = 0.2,
    seed: int = 0,
) -> Any:
    """``TrainingData``: each user likes one sub-genre (``p_sub`` of the clicks), its genre
    (``p_genre``) and otherwise popular items; one validation item per user, in the sub-genre
    when the user has one there. Content: the genre plus noise, as one text modality."""
    from crossrec.graphs.knn import knn_graph, normalized_user_item_graph
    from crossrec.models.inputs import TrainingData

    rng = np.random.default_rng(seed)
    n_items = n_genres * n_sub * per_sub
    sub = np.arange(n_items) // per_sub
    genre = sub // n_sub
    popularity = 1.0 / (1.0 + rng.permutation(n_items)) ** 0.8
    popularity /= popularity.sum()
    centres = rng.normal(size=(n_genres, 16))
    text = (centres[genre] + 0.5 * rng.normal(size=(n_items, 16))).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    train_rows, train_cols, valid_cols = [], [], []
    for user in range(n_users):
        liked = int(rng.integers(n_sub * n_genres))
        in_sub = np.flatnonzero(sub == liked)
        in_genre = np.flatnonzero((genre == liked // n_sub) & (sub != liked))
        picks: list[int] = []
        while len(picks) < per_user:
            draw = rng.random()
            pool = in_sub if draw < p_sub else in_genre if draw < p_sub + p_genre else None
            item = int(rng.choice(pool) if pool is not None else rng.choice(n_items, p=popularity))
            if item not in picks:
                picks.append(item)
        held = [item for item in picks if sub[item] == liked] or picks
        picks.remove(held[-1])
        train_rows += [user] * len(picks)
        train_cols += picks
        valid_cols.append(held[-1])
    shape = (n_users, n_items)
    ones = np.ones(len(train_rows), np.float32)
    train = sp.csr_matrix((ones, (train_rows, train_cols)), shape=shape)
    valid = sp.csr_matrix((np.ones(n_users, np.float32), (range(n_users), valid_cols)), shape)
    mask = np.ones(n_items, bool)
    return TrainingData(
        n_users=n_users,
        n_items=n_items,
        train=train,
        valid=valid,
        item_features={
            "text": {"vectors": text, "mask": mask, "source": "genre"},
            "__order__": ["text"],
        },
        modality_graphs={"text": knn_graph(text, mask, 5)},
        user_item_graph=normalized_user_item_graph(
            np.asarray(train_rows), np.asarray(train_cols), n_users, n_items
        ),
    )


def family_scores(data: Any, finetune: dict[str, Any], run_root: Path) -> dict[str, float]:
    """Validation Recall@20 of one finetune run per loss family (the dataset check)."""
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.training import train_recommender
    from crossrec.tuning.space import apply_overrides

    scores = {}
    for name, overrides in FAMILIES.items():
        config = FinetuneConfig.model_validate(apply_overrides(finetune, overrides))
        result = train_recommender(data, config, run_dir=run_root / name, enable_progress_bar=False)
        scores[name] = float(result.best_score)
    return scores


def tune_block(url: str, n_trials: int, one_key: bool, seed: int) -> dict[str, Any]:
    """The ``tune:`` block of the study (``one_key``: loss keys one by one, no cap)."""
    space = {**SEARCH_SPACE, **(ONE_KEY_LOSS if one_key else {})}
    return {
        "study_name": "loss-family",
        "storage": {"url": url, "heartbeat_interval_s": None},
        "n_trials": n_trials,
        "sampler": {"seed": seed, "n_startup_trials": 4},
        "pruner": {"type": "median", "n_startup_trials": 4, "n_warmup_steps": 5},
        "search_space": space,
        "search_groups": {} if one_key else {"loss_family": LOSS_FAMILY},
        "neighbours_max_share": 1.0 if one_key else 0.5,
    }


def run_tune_study(
    data: Any, finetune: dict[str, Any], n_trials: int, one_key: bool, seed: int, root: Path
) -> dict[str, Any]:
    """Run the study as the tune pipeline does; returns the exported block and the trials."""
    import optuna

    from crossrec.tuning.config import parse_tune_config
    from crossrec.tuning.defaults import neighbour_trials, trial_zero
    from crossrec.tuning.objective import make_finetune_objective
    from crossrec.tuning.results import trials_table, tuned_finetune_block
    from crossrec.tuning.study import run_study

    root.mkdir(parents=True, exist_ok=True)
    tune = tune_block(f"sqlite:///{root}/optuna.db", n_trials, one_key, seed)
    config = parse_tune_config(tune, finetune)
    objective = make_finetune_objective(data, finetune, config, run_root=root, seed=seed)
    first = trial_zero(config, finetune)
    neighbours = neighbour_trials(config, first, finetune)
    run_study(objective, config, seed, first_trial=first, neighbours=neighbours)
    study = optuna.load_study(study_name=config.study_name, storage=config.storage.url)
    exported = tuned_finetune_block(study, finetune)["finetune"]
    return {"exported": exported, "value": study.best_value, "trials": trials_table(study)}


def exported_family(block: dict[str, Any], finetune: dict[str, Any]) -> str:
    """``softmax`` when the exported block trains the softmax family (kind and cosine)."""
    loss = {**finetune.get("loss", {}), **block.get("loss", {})}
    return "softmax" if loss.get("kind") == "softmax" and loss.get("cosine") else "bpr-like"


def check_seed(seed: int, n_trials: int, one_key: bool, finetune: dict[str, Any]) -> list[str]:
    """One table row per mechanics: the dataset check and what the study exported."""
    data = nested_taste_data(seed=seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scores = family_scores(data, finetune, root / "families")
        gain = scores["softmax"] / scores["bpr"] - 1
        for mode in ["groups"] + (["one-key"] if one_key else []):
            start = time.perf_counter()
            study = run_tune_study(data, finetune, n_trials, mode == "one-key", seed, root / mode)
            found = exported_family(study["exported"], finetune)
            within = study["value"] >= 0.98 * scores["softmax"]
            rows.append(
                f"| {seed} | {scores['bpr']:.4f} | {scores['softmax']:.4f} | {gain:+.1%} | "
                f"{mode} | {found} | {study['value']:.4f} | {'yes' if within else 'no'} | "
                f"{time.perf_counter() - start:.0f} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="comma-separated dataset / study seeds")
    parser.add_argument("--n-trials", type=int, default=12)
    parser.add_argument("--one-key", action="store_true", help="also run the one-key study")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    finetune = copy.deepcopy(FINETUNE)
    print(
        "| seed | BPR val R@20 | softmax family val R@20 | gain | study | exported | "
        "best val R@20 | within 2% of the family | study s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in [int(s) for s in args.seeds.split(",")]:
        for row in check_seed(seed, args.n_trials, args.one_key, finetune):
            print(row, flush=True)


if __name__ == "__main__":
    main()
