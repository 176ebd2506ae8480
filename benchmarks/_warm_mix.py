"""``warm_ablation.py``'s ``mix`` variant: the no-content twin's and the content model's scores
mixed by item popularity (``model.content_mix``, ``crossrec.models.content_mix``).

Both models come from warm_ablation's cache of trained bundles, so ``no_content``, ``default``
and ``mix`` in one run train two models per seed. The mix's tau / slope / scale are chosen on
the validation slice only; the test slices are scored afterwards with the chosen point.
"""

from __future__ import annotations


def component_configs(config: dict) -> tuple[dict, dict]:
    """(content model's, twin's) configs, as ``train_recommender`` trains a mix's two models
    (:func:`crossrec.models.mixed.part_configs`)."""
    from crossrec.models.config import FinetuneConfig
    from crossrec.models.mixed import part_configs

    twin, content = part_configs(FinetuneConfig.model_validate(config))
    return content.model_dump(mode="json"), twin.model_dump(mode="json")


def mixed_score_fn(trained, arts: dict, config: dict, seed: int, slices, split, dropped=()):
    """(scorer, the content model's bundle, seconds both trainings took, a record of the
    validation choice) for one seed."""
    from crossrec.models.bundle import load_recommender
    from crossrec.models.config import ContentMixConfig
    from crossrec.models.content_mix import choose_mix, mix_scorer, split_validation_users
    from crossrec.models.gate import item_degrees

    mix = ContentMixConfig.model_validate(config["model"]["content_mix"])
    content_config, twin_config = component_configs(config)
    valid = next(piece for piece in slices if piece.name == "valid")
    choice_truth, stop_rows = valid.truth, None
    if mix.choice_share > 0:  # the models stop on some validation users, the choice uses the rest
        stop_rows, choice_truth = split_validation_users(valid.truth, mix.choice_share, seed)
    vectors, seconds, epochs = [], 0.0, []
    for part in (twin_config, content_config):
        bundle, data, train_s = trained.get(arts, part, seed, dropped, stop_rows)
        vectors.append(load_recommender(bundle, data).scoring_vectors())
        seconds += train_s
        epochs.append(len(bundle.get("history") or []))
    degree = item_degrees(data.train)
    choice, table = choose_mix(
        vectors[0], vectors[1], degree, mix, choice_truth, valid.exclude, split.tie_order
    )
    scorer = mix_scorer(vectors[0], vectors[1], degree, choice, mix)
    record = {
        "mix": choice.as_dict(),
        "mix_grid": [
            [p.choice.tau, p.choice.slope, p.choice.scale, p.choice.slots, p.value, p.tail, p.head]
            for p in table
        ],
        "twin_epochs": epochs[0],
    }
    return scorer, bundle, seconds, record
