"""Structured attributes as a modality: one unit-norm block per column, a fitted spec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec.encoders.attributes import (
    check_attribute_columns,
    encode_attributes,
    fit_attribute_spec,
)

COLUMNS = {
    "genres": {"kind": "categorical", "separator": ", "},
    "year": {"kind": "numeric"},
}


def _items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e"],
            "genres": ["Comedy, Drama", "Comedy", "Drama", "Western", ""],
            "year": ["1995", "1996", "1950", "", ""],
        }
    )


def test_each_column_is_one_unit_block_and_rows_are_unit():
    spec = fit_attribute_spec(_items(), COLUMNS, min_count=2, bins=4)
    assert spec["genres"]["vocabulary"] == ["Comedy", "Drama"]  # Western: one item only
    vectors, mask = encode_attributes(_items(), spec)
    assert vectors.shape == (5, 2 + len(spec["year"]["centres"]))
    assert mask.tolist() == [True, True, True, False, False]  # d: unknown genre, no year
    np.testing.assert_allclose(np.linalg.norm(vectors[mask], axis=1), 1.0, rtol=1e-6)
    genres, year = vectors[:, :2], vectors[:, 2:]
    # both columns weigh the same: each block is half of the squared norm
    np.testing.assert_allclose((genres[:3] ** 2).sum(1), 0.5, rtol=1e-5)
    np.testing.assert_allclose((year[:3] ** 2).sum(1), 0.5, rtol=1e-5)
    np.testing.assert_allclose(genres[0] / np.linalg.norm(genres[0]), [2**-0.5, 2**-0.5])


def test_close_numbers_are_close_and_far_numbers_are_not():
    spec = fit_attribute_spec(_items(), {"year": COLUMNS["year"]}, min_count=1, bins=8)
    vectors, _ = encode_attributes(_items(), spec)
    assert vectors[0] @ vectors[1] > 0.9  # 1995 vs 1996
    assert vectors[0] @ vectors[2] < 0.1  # 1995 vs 1950


def test_new_items_use_the_fitted_vocabulary():
    spec = fit_attribute_spec(_items(), COLUMNS, min_count=2, bins=4)
    new = pd.DataFrame(
        {"item_id": ["x", "y"], "genres": ["Drama, Horror", "Horror"], "year": ["1995", ""]}
    )
    vectors, mask = encode_attributes(new, spec)
    old, _ = encode_attributes(_items(), spec)
    assert mask.tolist() == [True, False]  # Horror is not in the vocabulary
    assert vectors.shape[1] == old.shape[1]
    np.testing.assert_allclose(vectors[0, :2] / np.linalg.norm(vectors[0, :2]), [0.0, 1.0])


def test_a_non_number_in_a_numeric_column_names_the_item_and_value():
    items = _items().assign(year=["1995", "unknown", "", "", ""])
    with pytest.raises(ValueError, match=r"items\['year'\].*item 'b' has 'unknown'"):
        fit_attribute_spec(items, COLUMNS, min_count=1, bins=4)


def test_attribute_columns_must_be_text_columns_of_a_known_kind():
    with pytest.raises(ValueError, match="'price' is not one of the text columns"):
        check_attribute_columns({"price": {"kind": "numeric"}}, ["title"], "dataset_info")
    with pytest.raises(ValueError, match="kind 'number'"):
        check_attribute_columns({"title": {"kind": "number"}}, ["title"], "dataset_info")
