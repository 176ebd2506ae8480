"""Recall by item popularity: buckets of equal held-out share, hits per bucket, the report."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from crossrec.evaluation.popularity import (
    bucket_labels,
    by_popularity_block,
    by_popularity_section,
    popularity_hits,
)


def _truth() -> sp.csr_matrix:
    # 4 users, 6 items; held-out pairs: items 0,1 (rare), 4,5 (popular)
    rows, cols = [0, 1, 2, 3], [0, 1, 4, 5]
    return sp.csr_matrix((np.ones(4), (rows, cols)), shape=(4, 6))


POPULARITY = np.array([1, 2, 10, 20, 50, 60], dtype=float)


def test_hits_are_counted_in_their_items_popularity_bucket():
    ranked = np.array([[0, 2], [2, 3], [4, 0], [5, 1]])  # users 0, 2, 3 hit; user 1 misses
    out = popularity_hits(ranked, np.arange(4), _truth(), None, POPULARITY, 2, 2)
    assert out["held_out"] == [2, 2] and out["hits"] == [1, 2]
    assert len(out["edges"]) == 1 and 2 < out["edges"][0] <= 50
    # candidates: the popular items do not compete, their pairs do not count
    cold = np.array([True, True, True, True, False, False])
    out = popularity_hits(ranked, np.arange(4), _truth(), cold, POPULARITY, 2, 2)
    assert sum(out["held_out"]) == 2 and sum(out["hits"]) == 1


def test_block_averages_seeds_and_section_compares_with_the_no_content_twin():
    entry = {"edges": [10.0], "held_out": [2, 2], "hits": [1, 2]}
    worse = {"edges": [10.0], "held_out": [2, 2], "hits": [0, 2]}
    runs = {
        "crossrec": [{"test": {"popularity": entry}}, {"test": {"popularity": entry}}],
        "crossrec trained w/o content": [{"test": {"popularity": worse}}],
        "MostPop": [{"test": {"popularity": {**worse, "edges": [3.0]}}}],  # other split: left out
    }
    block = by_popularity_block(runs, "test", 20)
    assert block["buckets"] == bucket_labels([10.0]) == ["0-9", "10-max"]
    assert block["shares"] == [0.5, 0.5]
    assert block["recall"] == {"crossrec": [0.5, 1.0], "crossrec trained w/o content": [0.0, 1.0]}
    metrics = {"crossrec": {"test": {"coverage@20": {"mean": 0.4}, "arp@20": {"mean": 0.2}}}}
    text = "\n".join(by_popularity_section(block, metrics, "crossrec"))
    assert "| crossrec | 0.5000 | 1.0000 (+0.0%) | 0.400 | 0.200 |" in text
    assert by_popularity_section({}, metrics, "crossrec") == []
