"""Psychological insight: the single end-of-session rating of the Davis et al. 2021 trial analysed
by Levin et al. 2024. One item, 0-100 (the range the study brief specifies; the published abstracts
do not state it), any value on the line; score = the rating; an unanswered item gives no score.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.instruments import ScoringError, get, score

ID = "insight"


def frame(*values) -> pd.DataFrame:
    return pd.DataFrame({"insight_1": list(values)})


def test_definition():
    d = get(ID)
    assert [i.id for i in d.items] == ["insight_1"]
    item = d.items[0]
    assert (item.min, item.max, item.step) == (0, 100, None)
    assert d.scale("score").range == (0, 100)
    assert d.scale("score").missing.max_missing == 0
    assert d.licence.wording_included is False and item.text is None
    assert not d.criteria and not d.flags and not d.scale("score").bands


def test_score_is_the_rating():
    out = score(ID, frame(0, 37, 62.5, 100))
    # one item: the score is the answer itself
    assert out["score"].tolist() == [0, 37, 62.5, 100]


def test_no_reverse_keying_and_a_higher_rating_is_a_higher_score():
    assert get(ID).items[0].reverse is False
    out = score(ID, frame(49, 50, 51))
    assert out["score"].is_monotonic_increasing and out["score"].tolist() == [49, 50, 51]


def test_unanswered_item_gives_a_missing_score():
    out = score(ID, frame(None, 80))
    assert math.isnan(out.loc[0, "score"])   # never 0
    assert out.loc[1, "score"] == 80


@pytest.mark.parametrize("value", [-0.5, 100.1, 101])
def test_out_of_range_answer_names_row_column_value_and_range(value):
    with pytest.raises(ScoringError) as err:
        score(ID, frame(50, value))
    message = str(err.value)
    assert "row 2" in message and "'insight_1'" in message and f"value {value!r}" in message
    assert "any number from 0 to 100" in message


def test_non_numeric_answer_is_refused():
    with pytest.raises(ScoringError, match=r"row 1, column 'insight_1': value 'high' is not a number"):
        score(ID, frame("high"))


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.floats(0, 100, allow_nan=False)), min_size=1, max_size=8))
def test_score_equals_answer_and_rows_are_independent(values):
    together = score(ID, frame(*values))
    for k, v in enumerate(values):
        if v is None:
            assert math.isnan(together.loc[k, "score"])
        else:
            assert together.loc[k, "score"] == pytest.approx(v) and 0 <= together.loc[k, "score"] <= 100
    one_by_one = pd.concat([score(ID, frame(v)) for v in values], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
