"""Text encoder on tiny inputs: templates, pooling, batching by length, the packaged LLM."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.encoders.text import choose_template, render_texts, template_fields


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_template_choice_follows_available_columns():
    templates = ["{title}. Genres: {genres}. {overview}", "{title}. {overview}"]
    assert template_fields(templates[0]) == ["title", "genres", "overview"]
    assert choose_template(templates, ["title", "overview", "genres", "year"]) == templates[0]
    assert choose_template(templates, ["title", "overview"]) == templates[1]
    assert choose_template(templates, ["text"]) is None


def test_render_texts_template_auto_and_empty():
    rows = [
        {"title": "Heat (1995)", "genres": "Crime", "overview": "A thief... and a cop."},
        {"title": "Nameless", "genres": "", "overview": None},
        {"title": "", "genres": "", "overview": float("nan")},
    ]
    out = render_texts(
        rows, ["title", "genres", "overview"], "{title}. Genres: {genres}. {overview}"
    )
    assert out[0] == "Heat (1995). Genres: Crime. A thief... and a cop."
    assert out[1] == "Nameless."  # segments whose fields are all empty are dropped
    assert out[2] == ""  # no text at all: the item gets mask False, not an encoded blank
    auto = render_texts(rows[:1], ["title", "genres"], None)
    assert auto == ["Title: Heat (1995). Genres: Crime"]
    assert render_texts([{"text": "rock, 80s"}], ["text"], None) == ["rock, 80s"]


def test_minilm_mean_pooling_is_semantic_and_order_free(minilm):
    texts = [
        "A space opera about rebels fighting an evil galactic empire with starships.",
        "Science fiction war among the stars: spaceships, rebels and an empire.",
        "A recipe for lemon cake with butter and sugar.",
        "Cake",
    ]
    vectors = minilm.encode(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert _cos(vectors[0], vectors[1]) > _cos(vectors[0], vectors[2]) + 0.2
    # length-grouped batches give the same vectors as one text at a time
    single = np.concatenate([minilm.encode([t]) for t in texts])
    np.testing.assert_allclose(vectors, single, atol=1e-4)
    # grouping sorted by length: the longest texts share a batch
    ids = minilm._token_ids(texts)
    first_batch = minilm.batches(ids)[0]
    assert set(first_batch) == {0, 1, 2, 3} or len(ids[first_batch[0]]) >= len(ids[first_batch[-1]])


def test_minilm_truncates_to_max_tokens(minilm):
    long_text = "word " * 500
    assert max(len(i) for i in minilm._token_ids([long_text])) == minilm.max_tokens
    assert np.isfinite(minilm.encode([long_text])).all()


def test_prompt_pooling_keeps_the_prompt_end_when_truncating(zoo_dir):
    from crossrec.encoders.text import TextEncoder

    enc = TextEncoder(
        "minilm-l6", pooling="prompt", prompt="Item: {text} Summary:", max_tokens=32, device="cpu"
    )
    ids = enc._token_ids(["very long text " * 100, "short"])
    assert all(len(i) <= 32 for i in ids)
    tail = enc.tokenizer.decode(ids[0][-4:], skip_special_tokens=True)
    assert "summary" in tail.lower()
    vectors = enc.encode(["very long text " * 100, "short"])
    assert vectors.shape == (2, 384) and not np.allclose(vectors[0], vectors[1])
    with pytest.raises(ValueError, match="text"):
        TextEncoder("minilm-l6", pooling="prompt", prompt="no placeholder", device="cpu")


def test_settings_fingerprint_changes_with_pooling(minilm, zoo_dir):
    from crossrec.encoders.cache import fingerprint
    from crossrec.encoders.text import TextEncoder

    last = TextEncoder("minilm-l6", pooling="last", device="cpu", max_tokens=64)
    assert fingerprint(last.settings()) != fingerprint(minilm.settings())
    assert last.settings()["weights"] == minilm.settings()["weights"]


@pytest.mark.slow
def test_smollm2_encodes_items_sensibly(zoo_dir):
    from crossrec.encoders.text import TextEncoder

    enc = TextEncoder(
        "smollm2-135m-instruct", pooling="mean", batch_size=4, device="cpu", max_tokens=48
    )
    assert enc.dim == 576
    texts = [
        "Star Wars. Genres: Action, Sci-Fi. Rebels fight the Empire in space.",
        "Star Trek. Genres: Action, Sci-Fi. A starship crew explores the galaxy.",
        "Sense and Sensibility. Genres: Drama, Romance. Two sisters seek love in England.",
    ]
    mean = enc.encode(texts)
    assert np.isfinite(mean).all() and mean.shape == (3, 576)
    centred = mean - mean.mean(0)
    assert _cos(centred[0], centred[1]) > _cos(centred[0], centred[2])
    enc.pooling = "last"
    last = enc.encode(texts)
    assert not np.allclose(last, mean)
