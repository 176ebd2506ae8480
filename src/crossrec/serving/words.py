"""Requests in words for a served model: the words model is fitted on first use (tower on the
train pairs, weights on the valid requests, a few seconds to a minute) and kept with the
model, so a reload fits it anew for the new model."""

from __future__ import annotations

import numpy as np

from crossrec.serving.catalogue import BadRequestError


def check_words(text: str | None, max_chars: int, field: str = "q") -> str:
    """The request's words, stripped; empty or oversized text is a 422 naming the field."""
    words = (text or "").strip()
    if not words:
        raise BadRequestError(field, f"{field} must hold some words")
    if len(words) > max_chars:
        raise BadRequestError(field, f"{field}: more than {max_chars} characters")
    return words


def words_model(serving):
    """The served model's fitted :class:`crossrec.words.model.WordsModel` (fitted once)."""
    texts = serving.artifacts.item_texts
    if not texts or not any(texts):
        raise BadRequestError(
            "q",
            "this model's items have no text, so words cannot be matched with them (requests "
            "in words need a dataset with a text modality)",
        )
    with serving.lock:
        if "words" not in serving.cache:
            from crossrec.words.encoder import words_encoder
            from crossrec.words.model import fit_words_model

            config = serving.config.words
            cat = serving.catalogue
            serving.cache["words"] = fit_words_model(
                words_encoder(config.encoder, config.max_tokens),
                serving.artifacts.word_requests,
                list(texts),
                cat.user_vectors,
                cat.item_vectors,
                serving.data.train,
                config.tower,
                config.blend_step,
                seed=config.seed,
            )
        return serving.cache["words"]


def ranked(total: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best finite scores, best first (ties by item index)."""
    finite = np.flatnonzero(np.isfinite(total))
    order = finite[np.lexsort((finite, -total[finite]))]
    return order[:k]
