"""The pure parts of the API's guard and error answers (no server)."""

from __future__ import annotations

import json
import math

import pytest

from crossrec.api.app import failure_reason, parse_filters
from crossrec.api.errors import safe_errors, shown_input
from crossrec.api.guard import cookie, same_secret, session_token
from crossrec.serving.catalogue import BadRequestError


def test_error_inputs_are_bounded_and_serialisable():
    errors = [
        {"loc": ("body", "k"), "msg": "finite", "type": "finite_number", "input": math.nan},
        {"loc": ("body", "liked"), "msg": "too long", "type": "too_long", "input": ["1"] * 10**5},
        {"loc": ("body", "x" * 10**4), "msg": "m", "type": "t", "input": "y" * 10**5},
    ]
    shown = safe_errors(errors)
    text = json.dumps(shown, allow_nan=False)
    assert len(text) < 1_000
    assert shown[0]["input"] == "nan" and "input" not in shown[1]
    assert len(shown[2]["input"]) <= 100 and len(shown[2]["loc"][1]) <= 100
    assert len(safe_errors(errors * 10)) == 11  # ten shown, the rest counted


@pytest.mark.parametrize(
    "value, shown", [(None, None), (True, True), (3, 3), (1.5, 1.5), (math.inf, "inf")]
)
def test_short_scalars_are_shown_as_they_are(value, shown):
    assert shown_input(value) == shown


def test_filters_group_by_attribute_and_trim():
    assert parse_filters(["genres:Comedy", " genres : Drama ", "year:1999"]) == {
        "genres": ["Comedy", "Drama"],
        "year": ["1999"],
    }
    for bad in ["genres", ":x", "genres:", "genres:  "]:
        with pytest.raises(BadRequestError):
            parse_filters([bad])


def test_session_cookie_is_derived_from_the_key_and_compared_in_constant_time():
    token = session_token("k1")
    assert token != "k1" and token != session_token("k2") and len(token) == 64
    header = b"a=1; crossrec_session=" + token.encode() + b"; b=2"
    assert same_secret(cookie(header, "crossrec_session"), token)
    assert not same_secret(cookie(b"a=1", "crossrec_session"), token)


def test_a_failure_is_told_by_its_innermost_cause():
    try:
        try:
            raise EOFError("Ran out of input")
        except EOFError as err:
            raise RuntimeError("Failed while loading data from dataset X") from err
    except RuntimeError as outer:
        assert failure_reason(outer) == "EOFError: Ran out of input"
