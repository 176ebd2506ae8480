"""benchmarks/cold_users.py --recommender: crossrec trained with and without the
user-attributes modality on one holdout draw (library calls only, no Kedro)."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def finetune_config(max_epochs: int) -> dict:
    import yaml

    from crossrec.config import deep_merge

    base = yaml.safe_load((ROOT / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    trainer = {"cpu_threads": 1, "max_epochs": max_epochs, "accelerator": "cpu"}
    return deep_merge(base, {"trainer": trainer})


def fuse_artifacts(data_dir: Path, dataset: str) -> dict:
    folder = data_dir / "05_model_input" / dataset
    out = {}
    for name in ("fused_item_features", "modality_graphs"):
        with (folder / f"{name}.pkl").open("rb") as handle:
            out[name] = pickle.load(handle)
    return out


def recommender_runs(
    interactions,
    items,
    tables: dict,
    split,
    words: list[str],
    seed: int,
    max_epochs: int,
    tower: bool,
    id_dropout: float = 0.5,
    data_dir: Path = ROOT / "data",
) -> tuple[dict, dict, dict]:
    """(cold rows, warm per-user values of both models, notes) for one holdout draw: the
    model's user-item graph from this draw's train split; cold users ranked from the attribute
    part of the model trained with attributes (and, with ``tower``, by the attributes-as-words
    query tower on the model trained without)."""
    import numpy as np

    from crossrec.data.users import user_tokens
    from crossrec.evaluation.cold_users import cold_request_set
    from crossrec.evaluation.experiments import model_score_fn, train_variant
    from crossrec.evaluation.protocol import evaluate_scorer, ranking_slices
    from crossrec.evaluation.words import per_request_metrics
    from crossrec.graphs.knn import normalized_user_item_graph
    from crossrec.models.bundle import load_recommender
    from crossrec.models.inputs import build_training_data
    from crossrec.models.user_attributes import attribute_user_vectors, user_attribute_inputs

    n_users, n_items = split.n_users, split.n_items
    train_rows = interactions[interactions["split"] == "train"]
    graph = normalized_user_item_graph(
        train_rows["user_idx"].to_numpy(), train_rows["item_idx"].to_numpy(), n_users, n_items
    )
    arts = fuse_artifacts(data_dir, tables["info"]["name"])
    config = finetune_config(max_epochs)
    data = build_training_data(
        interactions,
        items,
        tables["info"],
        arts["fused_item_features"],
        arts["modality_graphs"],
        graph,
        config,
    )
    inputs = user_attribute_inputs(user_tokens(tables["users"], n_users), data.train, id_dropout)
    test = cold_request_set(split.cold_test, words)
    slices = ranking_slices(split, ["test"])
    cold, warm, notes = {}, {}, {}
    for name, attributes in (("default", None), ("user_attributes", inputs)):
        data.user_attributes = attributes
        start = time.perf_counter()
        bundle = train_variant(data, config, seed, where=f"cold_users {name}")
        notes[f"{name}_train_s"] = round(time.perf_counter() - start)
        notes[f"{name}_epochs"] = len(bundle.get("history") or [])
        run = evaluate_scorer(model_score_fn(bundle, data, "cpu"), split, slices, [20], 20, None)
        warm[name] = {m: np.asarray(run["test"]["metrics"][m]) for m in ("recall@20", "ndcg@20")}
        model = load_recommender(bundle, data)
        _, item_vectors = model.scoring_vectors()
        item_vectors = item_vectors.numpy()
        if attributes is not None:
            users = attribute_user_vectors(model, attributes.onehots[test.users].toarray())
            cold["attributes_recommender"] = per_request_metrics(
                users @ item_vectors.T, test, split, exclude=False, k=20
            )
        elif tower:
            cold["attributes_tower"] = tower_metrics(split, words, item_vectors, test, seed)
    return cold, warm, notes


def tower_metrics(split, words: list[str], item_vectors, test, seed: int) -> dict:
    """The attributes-as-words query tower (evaluate's words settings) on these item vectors."""
    import numpy as np
    import yaml

    from crossrec.evaluation.words import per_request_metrics
    from crossrec.words.attributes import attribute_tower, encode_distinct
    from crossrec.words.config import WordsConfig
    from crossrec.words.encoder import words_encoder
    from crossrec.words.tower import tower_scores

    params = yaml.safe_load((ROOT / "conf/base/parameters_evaluate.yml").read_text())
    config = WordsConfig.model_validate(params["evaluate"]["words"])
    encoder = words_encoder(config.encoder, config.max_tokens, "cpu")
    encoded = encode_distinct(encoder, words)
    model = attribute_tower(encoded, words, split.train, item_vectors, config.tower, seed)
    vectors = np.stack([encoded[t] for t in test.texts])
    scores = tower_scores(model, vectors, item_vectors)
    return per_request_metrics(scores, test, split, exclude=False, k=20)


def warm_table(warm_runs: list[dict]) -> list[str]:
    """Warm test users: the model with user attributes against the model without, pooled
    over the draws, paired per user."""
    import numpy as np

    from crossrec.evaluation.significance import paired_test

    out = [
        "",
        "Warm test users (the test slice), crossrec with vs without the user-attributes modality",
        "",
        "| model | Recall@20 | NDCG@20 | R diff | p | N diff | p |",
        "|---|---|---|---|---|---|---|",
    ]
    pooled = {
        name: {m: np.concatenate([r[name][m] for r in warm_runs]) for m in warm_runs[0][name]}
        for name in warm_runs[0]
    }
    base = pooled["default"]
    for name, values in pooled.items():
        cells = [name, f"{values['recall@20'].mean():.4f}", f"{values['ndcg@20'].mean():.4f}"]
        if name != "default":
            for metric in ("recall@20", "ndcg@20"):
                test = paired_test(values[metric], base[metric], metric)
                cells += [f"{test.mean_diff:+.4f}", f"{test.wilcoxon_p:.2g}"]
        else:
            cells += ["", "", "", ""]
        out.append("| " + " | ".join(cells) + " |")
    return out
