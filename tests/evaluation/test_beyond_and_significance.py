"""Beyond-accuracy measures and the paired significance test on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.evaluation.significance import paired_test
from crossrec.metrics.beyond import (
    average_popularity,
    catalogue_coverage,
    content_vectors,
    intra_list_diversity,
    novelty,
)


def test_coverage_ignores_empty_slots() -> None:
    lists = np.array([[0, 1, -1], [1, 2, -1]])
    assert catalogue_coverage(lists, n_items=6, k=3) == pytest.approx(3 / 6)
    assert catalogue_coverage(lists, n_items=6, k=1) == pytest.approx(2 / 6)


def test_novelty_and_popularity() -> None:
    popularity = np.array([3.0, 1.0, 0.0])  # 3 users in training
    lists = np.array([[0, 2], [1, -1]])
    nov = novelty(lists, popularity, n_users=3, k=2)
    assert nov[0] == pytest.approx((-np.log2(4 / 4) - np.log2(1 / 4)) / 2)
    assert nov[1] == pytest.approx(-np.log2(2 / 4))
    arp = average_popularity(lists, popularity, k=2)
    assert arp.tolist() == pytest.approx([(1.0 + 0.0) / 2, 1 / 3])


def test_content_vectors_and_intra_list_diversity() -> None:
    features = {
        "text": {
            "vectors": np.array([[1, 0], [0, 2], [3, 0]], dtype=np.float32),
            "mask": np.array([True, True, True]),
        },
        "image": {
            "vectors": np.zeros((3, 1), dtype=np.float32),
            "mask": np.array([False, False, False]),
        },
        "__order__": ["text", "image"],
    }
    vectors = content_vectors(features)
    assert vectors.shape == (3, 3)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    lists = np.array([[0, 2, -1], [0, 1, -1], [1, -1, -1]])
    ild = intra_list_diversity(lists, vectors, k=3)
    # items 0 and 2 point the same way (distance 0); 0 and 1 are orthogonal (distance 1)
    assert ild.tolist() == pytest.approx([0.0, 1.0, 0.0])


def test_paired_test_detects_a_consistent_gain_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(200)
    better = paired_test(base + 0.05 + rng.normal(0, 0.01, 200), base, "recall@20")
    assert better.mean_diff == pytest.approx(0.05, abs=0.005)
    assert better.wilcoxon_p < 1e-10 and better.ttest_p < 1e-10
    noise = paired_test(base + rng.normal(0, 0.05, 200), base)
    assert noise.wilcoxon_p > 0.01
    same = paired_test(base, base)
    assert same.wilcoxon_p == 1.0 and same.ttest_p == 1.0


def test_paired_test_needs_aligned_inputs() -> None:
    with pytest.raises(ValueError, match="aligned"):
        paired_test(np.zeros(3), np.zeros(4))
