"""The explanation model's prompt keeps the recommended item and the user's history apart, and
the catalogue's filters and ids follow one rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from crossrec.serving.catalogue import BadRequestError, Catalogue, UnknownIdError
from crossrec.serving.config import RecommendConfig
from crossrec.serving.explain import (
    PROMPT_SECTIONS,
    answer_start,
    history_contributors,
    llm_prompt,
)

PARTS = {"collaborative": 0.4, "text": 0.2, "image": -0.1}


def _sections(prompt: str) -> dict[str, list[str]]:
    """Each labelled section's "- " lines."""
    out, current = {}, None
    for line in prompt.splitlines():
        label = next((s for s in PROMPT_SECTIONS if line.startswith(s)), None)
        if label is not None:
            current = out.setdefault(label, [])
        elif current is not None and line.startswith("- "):
            current.append(line[2:])
        elif not line.strip():
            current = None
    return out


def test_the_prompt_names_the_item_and_the_history_in_separate_sections():
    prompt = llm_prompt("Groundhog Day", PARTS, ["Heat", "Alien"])
    sections = _sections(prompt)
    recommended, why, history = PROMPT_SECTIONS
    assert list(sections) == list(PROMPT_SECTIONS)
    assert sections[recommended] == ["Groundhog Day"]
    assert sections[history] == ["Heat", "Alien"]
    assert sections[why] and "Never say the user liked the recommended item" in prompt
    assert (
        answer_start("Groundhog Day", ["Heat"])
        == "You may enjoy Groundhog Day because you liked Heat"
    )
    assert answer_start("Heat", ["heat", "Alien"]).endswith("you liked Alien")
    assert answer_start("Heat", []) == "You may enjoy Heat because"


def test_the_recommended_item_is_never_in_the_history_section():
    prompt = llm_prompt("Groundhog Day", PARTS, ["groundhog day ", "Heat", "Groundhog Day"])
    history = _sections(prompt)[PROMPT_SECTIONS[2]]
    assert history == ["Heat"]
    swapped = llm_prompt("Heat", PARTS, ["Groundhog Day"])  # a swap shows in the sections
    assert _sections(swapped)[PROMPT_SECTIONS[0]] == ["Heat"]
    assert _sections(swapped)[PROMPT_SECTIONS[2]] == ["Groundhog Day"]


def test_history_contributors_exclude_the_explained_item():
    vectors = np.eye(4, dtype=np.float32) + 0.1
    contributors = history_contributors(vectors, np.array([0, 1, 2]), 1, 5)
    assert 1 not in [i for i, _ in contributors] and len(contributors) == 2
    assert history_contributors(vectors, np.array([2]), 2, 5) == []


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    items = pd.DataFrame(
        {
            "item_idx": range(5),
            "item_id": ["1", "11", "117", "2", "21"],
            "title": ["Heat", "Alien", "Up", "Heat 2", "Big"],
            "genres": ["Crime", "Horror|Sci-Fi", "Comedy", "Crime|Drama", "Comedy|Drama"],
        }
    )
    rng = np.random.default_rng(0)
    return Catalogue(
        user_vectors=rng.normal(size=(2, 4)),
        item_vectors=rng.normal(size=(5, 4)),
        user_ids=np.array(["u1", "u2"]),
        item_ids=items["item_id"].to_numpy(),
        seen=sp.csr_matrix((2, 5), dtype=np.float32),
        items=items,
        config=RecommendConfig(),
    )


def _kept(catalogue: Catalogue, filters) -> list[str]:
    return list(catalogue.item_ids[catalogue.filter_mask(filters)])


def test_filters_or_within_an_attribute_and_across_attributes(catalogue):
    assert _kept(catalogue, {"genres": "comedy"}) == ["117", "21"]
    assert _kept(catalogue, {"genres": ["Comedy", "Horror"]}) == ["11", "117", "21"]
    assert _kept(catalogue, {"genres": ["Comedy", "Crime"], "title": "heat"}) == ["1", "2"]


def test_an_item_id_filter_matches_whole_ids(catalogue):
    assert _kept(catalogue, {"item_id": "1"}) == ["1"]
    assert _kept(catalogue, {"item_id": [" 2 ", "11"]}) == ["11", "2"]
    with pytest.raises(BadRequestError, match="unknown item attribute"):
        catalogue.filter_mask({"colour": "blue"})


def test_ids_are_trimmed_and_unknown_ids_clipped(catalogue):
    assert catalogue.item(" 117\t") == 2 and catalogue.user("\nu2 ") == 1
    with pytest.raises(UnknownIdError) as err:
        catalogue.item("x" * 10_000)
    assert len(str(err.value)) < 200
