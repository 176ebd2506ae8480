"""The vector-shape benchmark (benchmarks/vector_shape.py): its LID estimate recovers a known
intrinsic dimension, and the scale benchmark's ``noise_rank`` lowers it."""

from __future__ import annotations

import numpy as np
import pytest
from _scale_data import generate, spec_for

from .conftest import load_benchmark

shape = load_benchmark("vector_shape")


def _subspace_points(n: int, rank: int, dims: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(rank, dims))
    return (rng.normal(size=(n, rank)) @ basis + 5 * rng.normal(size=dims)).astype(np.float32)


@pytest.mark.parametrize("rank", [3, 8])
def test_lid_recovers_the_dimension_of_a_subspace(rank):
    x = shape.distinct_unit_rows(_subspace_points(4000, rank, 64))
    found = shape.local_shape(x, k=20, queries=400)
    assert 0.7 * rank <= found["lid"] <= 1.3 * rank
    assert found["items"] == 4000 and found["dims"] == 64


def test_full_rank_noise_is_higher_dimensional_and_lower_contrast():
    low = shape.local_shape(shape.distinct_unit_rows(_subspace_points(4000, 4, 64)), queries=300)
    full = shape.local_shape(shape.distinct_unit_rows(_subspace_points(4000, 64, 64)), queries=300)
    assert full["lid"] > 3 * low["lid"]
    assert full["contrast"] < low["contrast"]


def test_repeated_and_zero_vectors_count_once():
    x = np.array([[1, 0], [2, 0], [0, 0], [0, 3], [1, 1]], dtype=np.float32)
    rows = shape.distinct_unit_rows(x)
    assert len(rows) == 3
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1, rtol=1e-6)


def test_noise_rank_lowers_the_scale_datas_lid_and_keeps_its_interactions(tmp_path):
    spec_full, spec_low = spec_for(20000), spec_for(20000, noise_rank=4)
    generate(spec_full, tmp_path / "full")
    generate(spec_low, tmp_path / "low")
    for name in ("interactions.csv", "items.csv"):
        assert (tmp_path / "full" / name).read_bytes() == (tmp_path / "low" / name).read_bytes()
    for modality in spec_full.dims:
        full, low = (np.load(tmp_path / d / f"{modality}.npy") for d in ("full", "low"))
        # the same expected noise energy: the clusters stay as far apart
        ratio = np.linalg.norm(low, axis=1).mean() / np.linalg.norm(full, axis=1).mean()
        assert 0.9 < ratio < 1.1
        lid_full = shape.local_shape(shape.distinct_unit_rows(full), queries=300)["lid"]
        lid_low = shape.local_shape(shape.distinct_unit_rows(low), queries=300)["lid"]
        assert lid_low < 0.5 * lid_full
