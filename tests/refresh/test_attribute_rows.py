"""Refresh: a new item's attributes are encoded with the vocabularies the model's items were."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crossrec.encoders.attributes import encode_attributes, fit_attribute_spec
from crossrec.refresh.state import attribute_rows, extend_item_features

COLUMNS = {"genres": {"kind": "categorical", "separator": ", "}, "year": {"kind": "numeric"}}


def test_new_items_share_the_model_items_attribute_space():
    old = pd.DataFrame(
        {
            "item_id": ["1", "2", "3"],
            "genres": ["Comedy", "Drama", "Comedy, Drama"],
            "year": ["1990", "2000", "1995"],
        }
    )
    spec = fit_attribute_spec(old, COLUMNS, min_count=1, bins=4)
    vectors, mask = encode_attributes(old, spec)
    features = {
        "attributes": {"vectors": vectors, "mask": mask, "source": "attributes", "spec": spec}
    }
    new = pd.DataFrame({"item_id": ["4", "5"], "genres": ["Drama", "Horror"], "year": ["2000", ""]})
    rows = attribute_rows(features, new)
    np.testing.assert_allclose(rows["attributes"]["vectors"][0], vectors[1], rtol=1e-6)
    assert rows["attributes"]["mask"].tolist() == [True, False]
    grown = extend_item_features(features, rows, 2)
    assert grown["attributes"]["vectors"].shape == (5, vectors.shape[1])
    assert grown["attributes"]["spec"] == spec
    assert attribute_rows({"text": features["attributes"]}, new) == {}
