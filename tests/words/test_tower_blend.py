"""The query tower maps words into a recommender's item space; the blend mixes standardised
signals with weights chosen on validation."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.data.synthetic import CLASSES, bag_of_words
from crossrec.words.blend import choose_weights, hit_rate, mix, simplex_grid, standardize
from crossrec.words.config import TowerConfig
from crossrec.words.tower import tower_scores, train_query_tower


def _planted(seed: int = 0, n_items: int = 40, dim: int = 16):
    """Items in 4 classes with clustered 'model' vectors (not derived from words), and word
    pairs naming each item's class."""
    rng = np.random.default_rng(seed)
    item_class = np.arange(n_items) % len(CLASSES)
    centres = rng.normal(size=(len(CLASSES), dim))
    item_vectors = centres[item_class] + 0.3 * rng.normal(size=(n_items, dim))
    texts, targets = [], []
    for _ in range(600):
        item = int(rng.integers(n_items))
        words = rng.choice(CLASSES[item_class[item]]["words"], 2, replace=False)
        texts.append(" ".join(words))
        targets.append(item)
    return item_class, item_vectors.astype(np.float32), texts, np.array(targets)


def test_words_naming_a_planted_category_retrieve_its_items():
    item_class, item_vectors, texts, targets = _planted()
    encode = lambda t: bag_of_words(t, dim=64, normalise=True)  # noqa: E731
    config = TowerConfig(hidden=32, epochs=30, batch_size=64, lr=0.01)
    tower = train_query_tower(encode(texts), targets, item_vectors, config, seed=0)
    # unseen word combinations of each class
    queries = ["coral tide", "fern trail", "mirage oasis", "neon skyline"]
    scores = tower_scores(tower, encode(queries), item_vectors)
    for c, row in enumerate(scores):
        top = np.argsort(-row)[:10]
        assert (item_class[top] == c).mean() >= 0.9, (queries[c], item_class[top])


def test_tower_training_is_seeded():
    _, item_vectors, texts, targets = _planted()
    words = bag_of_words(texts, dim=64, normalise=True)
    config = TowerConfig(hidden=0, epochs=2)
    a = tower_scores(train_query_tower(words, targets, item_vectors, config, 3), words[:5],
                     item_vectors)
    b = tower_scores(train_query_tower(words, targets, item_vectors, config, 3), words[:5],
                     item_vectors)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="training pairs"):
        train_query_tower(words[:0], targets[:0], item_vectors, config, 0)


def test_standardize_masks_and_scales_each_row():
    scores = np.array([[1.0, 2.0, 3.0, 100.0], [5.0, 5.0, 5.0, 5.0]], dtype=np.float32)
    exclude = np.array([[False, False, False, True], [False] * 4])
    z = standardize(scores, exclude)
    assert z[0, 3] == -np.inf  # excluded, and not part of the row's statistics
    np.testing.assert_allclose(z[0, :3], [-1.2247449, 0.0, 1.2247449], rtol=1e-5)
    np.testing.assert_array_equal(z[1], 0.0)  # a constant row does not divide by zero


def test_simplex_grid_and_mix():
    grid = simplex_grid(3, 0.5)
    assert sorted(grid) == sorted(
        [(0, 0, 1), (0, 0.5, 0.5), (0, 1, 0), (0.5, 0, 0.5), (0.5, 0.5, 0), (1, 0, 0)]
    )
    a, b = np.array([[1.0, -np.inf]]), np.array([[2.0, 3.0]])
    np.testing.assert_array_equal(mix([a, b], (0.0, 1.0)), b)  # weight 0 ignores the -inf
    assert mix([a, b], (0.5, 0.5))[0, 1] == -np.inf


def test_weights_chosen_on_validation_follow_the_informative_signal():
    rng = np.random.default_rng(0)
    targets = [np.array([int(t)]) for t in rng.integers(0, 50, size=200)]
    informative = rng.normal(size=(200, 50)).astype(np.float32)
    for row, t in enumerate(targets):
        informative[row, t] += 3.0
    noise = rng.normal(size=(200, 50)).astype(np.float32)
    weights, value = choose_weights([standardize(noise), standardize(informative)], targets, 5,
                                    0.25)
    assert weights[1] > weights[0]
    assert value == hit_rate(mix([standardize(noise), standardize(informative)], weights),
                             targets, 5)
    assert value > 0.8


def test_words_model_parts_add_up_and_excluded_items_stay_out():
    """A weight of 0 on the history must not turn excluded items into NaN."""
    from crossrec.words.model import WordsModel

    item_class, item_vectors, texts, targets = _planted()

    class Encoder:
        def encode(self, batch):
            return bag_of_words(list(batch), dim=64, normalise=True)

    encoder = Encoder()
    item_dense = encoder.encode([" ".join(CLASSES[c]["words"]) for c in item_class])
    tower = train_query_tower(encoder.encode(texts), targets, item_vectors,
                              TowerConfig(hidden=0, epochs=2), 0)
    exclude = np.zeros(len(item_class), dtype=bool)
    exclude[:5] = True
    history = np.linspace(0, 1, len(item_class)).astype(np.float32)
    for weights in ((0.0, 0.5, 0.5), (0.4, 0.3, 0.3), (1.0, 0.0, 0.0)):
        model = WordsModel(encoder, tower, item_vectors, item_dense, weights, (0.5, 0.5), "test")
        scores = model.score("coral tide", history, exclude)
        assert not np.isnan(scores.total).any()
        assert np.isneginf(scores.total[:5]).all() and np.isfinite(scores.total[5:]).all()
        np.testing.assert_allclose(scores.total[5:], scores.history[5:] + scores.words[5:],
                                   rtol=1e-6)


def test_without_word_requests_words_are_matched_by_the_encoder_at_fixed_weights():
    """A dataset with item text but no words to learn from still answers words: dense match
    only, the default mix, and it says so."""
    import scipy.sparse as sp

    from crossrec.words.model import DEFAULT_WEIGHTS, fit_words_model

    item_class, item_vectors, _, _ = _planted()

    class Encoder:
        def encode(self, batch):
            return bag_of_words(list(batch), dim=64, normalise=True)

    texts = [" ".join(CLASSES[c]["words"]) for c in item_class]
    users = np.ones((3, item_vectors.shape[1]), dtype=np.float32)
    model = fit_words_model(Encoder(), None, texts, users, item_vectors,
                            sp.csr_matrix((3, len(texts))), TowerConfig(epochs=1))
    assert model.tower is None and model.weights == DEFAULT_WEIGHTS
    assert model.weights_from == "default"
    scores = model.score("cactus dune", None, None)
    top = np.argsort(-scores.total)[:5]
    assert (item_class[top] == 2).all()  # the desert class
