"""The answers the API gives, as plain dicts: one function per endpoint, over a ServingModel.
Ids in, ids out; errors are UnknownIdError (404) and BadRequestError (422)."""

from __future__ import annotations

import numpy as np

from crossrec.serving.catalogue import BadRequestError
from crossrec.serving.explain import (
    answer_start,
    history_contributors,
    item_vector_parts,
    llm_prompt,
    llm_sentence,
    score_parts,
    template_sentence,
)
from crossrec.serving.foldin import fold_in
from crossrec.serving.newitem import new_item_vector, raw_vectors
from crossrec.serving.words import (
    attribute_model,
    attribute_words_of,
    check_words,
    ranked,
    words_model,
)


def item_card(serving, item_idx: int, score: float | None = None) -> dict:
    """What a client shows for an item: id, title, attributes, whether it has a poster."""
    return serving.catalogue.card(item_idx, score)


def _cards(serving, scores: np.ndarray, items: np.ndarray) -> list[dict]:
    return [
        item_card(serving, int(i), float(s)) for s, i in zip(scores, items, strict=True) if i >= 0
    ]


def _needs_model(serving, what: str) -> None:
    if serving.model is None:
        raise BadRequestError("model", f"this catalogue has vectors but no model: {what} needs one")


def model_card(serving) -> dict:
    art, cat = serving.artifacts, serving.catalogue
    return {
        "dataset": art.dataset_info.get("name"),
        "model_version": serving.version,
        "model_fingerprint": serving.fingerprint,
        "n_users": cat.n_users,
        "n_items": cat.n_items,
        "modalities": list(serving.model.modalities) if serving.model is not None else [],
        "index": cat.index.kind,
        "index_recall": getattr(cat.index, "recall", None),
        "index_choice": getattr(cat.index, "choice", None),
        "config": art.trained_model["config"],
        "content_mix": serving.model.describe() if getattr(serving.model, "mixed", False) else None,
        "test_metrics": serving.test_metrics(),
        "text_columns": art.dataset_info.get("text_columns") or [],
    }


def recommend_user(serving, user_id: str, k: int, exclude_seen: bool, filters: dict) -> dict:
    cat = serving.catalogue
    user = cat.user(user_id)
    scores, items = cat.recommend_user(user, k, exclude_seen, filters)
    return {
        "user_id": str(cat.user_ids[user]),
        "model_version": serving.version,
        "items": _cards(serving, scores, items),
    }


def recommend_liked(serving, liked_ids: list[str], k: int, filters: dict) -> dict:
    cat = serving.catalogue
    if not liked_ids:
        raise BadRequestError("liked", "liked must name at least one item id")
    liked = np.array([cat.item(i) for i in liked_ids], dtype=np.int64)
    vector = fold_in(cat.item_vectors, liked, serving.config.fold_in, cat.bias_column)
    scores, items = cat.user_lists(vector[None], k, [liked], cat.filter_mask(filters))
    return {
        "liked": [str(cat.item_ids[i]) for i in liked],
        "fold_in": serving.config.fold_in.method,
        "model_version": serving.version,
        "items": _cards(serving, scores[0], items[0]),
    }


def similar(serving, item_id: str, k: int, modality: str | None) -> dict:
    item = serving.catalogue.item(item_id)
    scores, items = serving.catalogue.similar(item, k, modality)
    return {
        "item": item_card(serving, item),
        "space": modality or "model",
        "model_version": serving.version,
        "items": _cards(serving, scores, items),
    }


def explain(serving, user_id: str, item_id: str, use_llm: bool = False) -> dict:
    cat = serving.catalogue
    user, item = cat.user(user_id), cat.item(item_id)
    _needs_model(serving, "an explanation")
    with serving.lock:
        if "parts" not in serving.cache:
            serving.cache["parts"] = item_vector_parts(serving.model)
        names, parts = serving.cache["parts"]
        part_users = serving.part_user_vectors
    contributions, total = score_parts(part_users[user], parts[:, item], serving.cosine)
    if getattr(serving.model, "mixed", False):  # the content model's parts, as the mix weighs them
        weight, twin, centring = serving.model.explanation_terms(user, item)
        contributions = np.concatenate([weight * contributions, [twin, centring]])
        names = [*names, "id_twin", "centring"]
        total = float(contributions.sum())
    score = float(cat.user_vectors[user] @ cat.item_vectors[item])
    history = serving.data.train[user].indices
    contributors = history_contributors(cat.similarity_vectors, history, item, 5)
    because = [item_card(serving, h)["title"] for h, _ in contributors]
    weights = None
    if hasattr(serving.model.fusion, "modality_weights"):
        import torch

        with torch.no_grad():
            w = serving.model.modality_weights(torch.tensor([item]))
        if w is not None:
            weights = {
                m: round(float(x), 4) for m, x in zip(serving.model.modalities, w[0], strict=True)
            }
    part_dict = {n: round(float(c), 6) for n, c in zip(names, contributions, strict=True)}
    title = item_card(serving, item)["title"]
    user_id = str(cat.user_ids[user])
    sentence = template_sentence(title, user_id, part_dict, weights, because)
    out = {
        "user_id": user_id,
        "item": item_card(serving, item, score),
        "score": score,
        "parts": part_dict,
        "parts_sum": total,
        "history": [{**item_card(serving, h), "similarity": round(s, 4)} for h, s in contributors],
        "modality_weights": weights,
        "sentence": sentence,
        "sentence_by": "template",
        "model_version": serving.version,
    }
    if use_llm:
        prompt = llm_prompt(title, part_dict, because)
        with serving.lock:
            out["sentence"] = llm_sentence(
                prompt, serving.config.explain_llm, serving.cache, answer_start(title, because)
            )
        out["sentence_by"] = serving.config.explain_llm
        out["prompt"] = prompt
    return out


def new_item(serving, fields: dict, image: str | None, audio: str | None, k: int) -> dict:
    _needs_model(serving, "a new item")
    raw = raw_vectors(serving, fields, image, audio)
    vector = new_item_vector(serving, raw)
    cat = serving.catalogue
    scores, items = cat.top_items(vector[None], k)
    reached = cat.reached_users(vector, k)
    ranked = cat.rank_among_users(vector, k)
    return {
        "inputs": sorted(raw),
        "model_version": serving.version,
        "nearest_items": _cards(serving, scores[0], items[0]),
        "reached_users": [
            {"user_id": str(cat.user_ids[u]), "score": round(s, 6), "margin": round(m, 6)}
            for u, s, m in reached
        ],
        "reach_k": serving.config.reach_k,
        "best_ranked_users": None
        if ranked is None
        else [
            {"user_id": str(cat.user_ids[u]), "score": round(s, 6), "rank": r} for u, s, r in ranked
        ],
    }


def _word_cards(serving, scores, items: np.ndarray) -> list[dict]:
    """Cards with each score split into what the words and the history gave."""
    cards = []
    for i in items:
        card = {
            **item_card(serving, int(i), float(scores.total[i])),
            "from_words": round(float(scores.words[i]), 6),
            "from_history": round(float(scores.history[i]), 6),
        }
        if scores.attributes is not None:
            card["from_attributes"] = round(float(scores.attributes[i]), 6)
        cards.append(card)
    return cards


def _words_answer(serving, model, text: str, scores, k: int, history: bool = True) -> dict:
    """The answer to a request in words, with the weights it was mixed with."""
    weights = (
        dict(zip(("history", "tower", "dense"), model.weights, strict=True))
        if history
        else dict(zip(("tower", "dense"), model.weights_no_history, strict=True))
    )
    return {
        "query": text,
        "weights": weights,
        "weights_from": model.weights_from,
        "model_version": serving.version,
        "items": _word_cards(serving, scores, ranked(scores.total, k)),
    }


def _excluded(serving, seen: np.ndarray, filters: dict) -> np.ndarray:
    cat = serving.catalogue
    exclude = np.zeros(cat.n_items, dtype=bool)
    exclude[seen] = True
    allowed = cat.filter_mask(filters)
    if allowed is not None:
        exclude |= ~allowed
    return exclude


def recommend_user_words(
    serving, user_id: str, query: str, k: int, exclude_seen: bool, filters: dict
) -> dict:
    """A known user's history and their words, combined (weights chosen on validation)."""
    cat = serving.catalogue
    user = cat.user(user_id)
    text = check_words(query, serving.config.words.max_chars)
    model = words_model(serving)
    seen = cat.seen_items(user) if exclude_seen else np.zeros(0, np.int64)
    history = cat.user_vectors[user] @ cat.item_vectors.T
    scores = model.score(text, history, _excluded(serving, seen, filters))
    return {"user_id": str(cat.user_ids[user]), **_words_answer(serving, model, text, scores, k)}


def recommend_words(
    serving,
    query: str | None,
    liked_ids: list[str],
    k: int,
    filters: dict,
    attributes: dict | None = None,
) -> dict:
    """A new user: words only, or words plus a few liked items (folded in as a history);
    without liked items, ``attributes`` (who they are) count half of the score."""
    cat = serving.catalogue
    text = check_words(query, serving.config.words.max_chars, field="query")
    described = attribute_words_of(serving, attributes) if attributes else None
    model = words_model(serving)
    liked = np.array([cat.item(i) for i in liked_ids], dtype=np.int64)
    history = None
    if len(liked):
        vector = fold_in(cat.item_vectors, liked, serving.config.fold_in, cat.bias_column)
        history = vector @ cat.item_vectors.T
    exclude = _excluded(serving, liked, filters)
    scores = model.score(text, history, exclude)
    answer = {"liked": [str(cat.item_ids[i]) for i in liked]}
    if described is not None:  # who a user is counts only while there is no history
        answer["attributes_used"] = history is None
    if described is not None and history is None:
        scores.words = 0.5 * scores.words
        scores.attributes = 0.5 * attribute_model(serving).score(described, exclude)
        scores.total = scores.words + scores.attributes
        answer["attributes_as_words"] = described
    return {**answer, **_words_answer(serving, model, text, scores, k, history is not None)}


def recommend_attributes(serving, attributes: dict, k: int, filters: dict) -> dict:
    """A new user described only by who they are (the dataset's user attributes)."""
    described = attribute_words_of(serving, attributes)
    exclude = _excluded(serving, np.zeros(0, np.int64), filters)
    total = attribute_model(serving).score(described, exclude)
    return {
        "attributes_as_words": described,
        "model_version": serving.version,
        "items": [item_card(serving, int(i), float(total[i])) for i in ranked(total, k)],
    }


def search(serving, query: str, k: int, filters: dict) -> dict:
    """Words only, no user: the catalogue ranked for what the words ask."""
    text = check_words(query, serving.config.words.max_chars)
    model = words_model(serving)
    scores = model.score(text, None, _excluded(serving, np.zeros(0, np.int64), filters))
    return _words_answer(serving, model, text, scores, k, history=False)
