"""Requests in words for a served model: the words model is fitted on first use (tower on the
train pairs, weights on the valid requests, a few seconds to a minute) and kept with the
model, so a reload fits it anew for the new model."""

from __future__ import annotations

import logging
import threading

import numpy as np

from crossrec.serving.catalogue import BadRequestError

logger = logging.getLogger(__name__)


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

    def fit():
        from crossrec.words.model import fit_words_model

        config, cat = serving.config.words, serving.catalogue
        return fit_words_model(
            _encoder(serving),
            serving.artifacts.word_requests,
            list(texts),
            cat.user_vectors,
            cat.item_vectors,
            serving.data.train,
            config.tower,
            config.blend_step,
            seed=config.seed,
        )

    return _fitted(serving, "words", fit)


def _fitted(serving, key: str, fit):
    """``serving.cache[key]``, fitted once under the words lock (never the explain lock)."""
    with serving.words_lock:
        if key not in serving.cache:
            serving.cache[key] = fit()
        return serving.cache[key]


def _encoder(serving):
    """The words encoder, loaded once for the words and the attribute models (under the lock)."""
    if "encoder" not in serving.cache:
        from crossrec.words.encoder import words_encoder

        config = serving.config.words
        serving.cache["encoder"] = words_encoder(config.encoder, config.max_tokens)
    return serving.cache["encoder"]


def ranked(total: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best finite scores, best first (ties by item index)."""
    finite = np.flatnonzero(np.isfinite(total))
    order = finite[np.lexsort((finite, -total[finite]))]
    return order[:k]


def attribute_words_of(serving, attributes: dict) -> str:
    """A new user's attributes as words, checked against the dataset's user attributes."""
    import pandas as pd

    from crossrec.data.users import attribute_columns, attribute_words

    categorical, numeric = attribute_columns(serving.artifacts.users)
    known = categorical + numeric
    if not known:
        raise BadRequestError(
            "attributes", "this dataset has no user attributes (ingest.datasets.<name>.users)"
        )
    unknown = sorted(set(attributes) - set(known))
    if unknown:
        raise BadRequestError("attributes", f"unknown user attributes {unknown}; one of {known}")
    row = {c: attributes.get(c, "") for c in categorical}
    for column in numeric:
        value = attributes.get(column)
        try:
            row[column] = float(value) if value not in (None, "") else float("nan")
        except (TypeError, ValueError):
            raise BadRequestError("attributes", f"attributes.{column} must be a number") from None
    words = attribute_words(pd.DataFrame([row]), categorical, numeric)[0]
    if not words:
        raise BadRequestError("attributes", "attributes must give at least one value")
    return words


def attribute_model(serving):
    """The served model's :class:`crossrec.words.attributes.AttributeModel` (fitted once)."""

    def fit():
        from crossrec.data.users import user_words
        from crossrec.words.attributes import fit_attribute_model

        config, cat = serving.config.words, serving.catalogue
        return fit_attribute_model(
            _encoder(serving),
            user_words(serving.artifacts.users, cat.n_users),
            serving.data.train,
            cat.item_vectors,
            config.tower,
            seed=config.seed,
        )

    return _fitted(serving, "attributes", fit)


def fit_in_background(serving) -> threading.Thread | None:
    """Fit the words model in a thread when the served data holds requests in words (so the
    first request in words does not wait for the whole fit); a request that comes first waits
    on the same lock. None when there is nothing to fit."""
    requests = serving.artifacts.word_requests
    texts = serving.artifacts.item_texts
    if not serving.config.words.fit_on_start or requests is None or requests.empty:
        return None
    if not texts or not any(texts):
        return None

    def fit() -> None:
        try:
            words_model(serving)
        except Exception:  # a failed fit is retried by the first request, which reports it
            logger.exception("fitting the words model in the background failed")

    thread = threading.Thread(target=fit, name="words-model-fit", daemon=True)
    thread.start()
    return thread
