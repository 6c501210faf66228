"""EBI: scored against the published key (Roseman et al. 2019): six items on a 0-100 visual
analogue scale, one factor, score = mean of the six items (0-100); no reverse-keyed items.
Missing-item rule (our documented choice): at most 1 of 6 missing, mean of the answered items.

Every expected number is worked by hand in a comment; none is copied from the engine.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.instruments import ScoringError, get, score

ID = "ebi"
ITEMS = [f"{ID}_{n}" for n in range(1, 7)]
EXAMPLE = [80, 55.5, 60, 72, 40, 90.5]


def frame(*rows: list) -> pd.DataFrame:
    """Rows given in published item order (6 values each); None = missing answer."""
    return pd.DataFrame([dict(zip(ITEMS, row, strict=True)) for row in rows])


def test_definition_matches_published_key():
    d = get(ID)
    assert [i.id for i in d.items] == ITEMS
    # visual analogue scale: any value 0-100 (step None)
    assert all(i.min == 0 and i.max == 100 and i.step is None for i in d.items)
    s = d.scale("score")
    assert s.method == "mean" and s.items == tuple(ITEMS) and s.range == (0, 100)
    assert s.missing.max_missing == 1
    # licence not confirmed as open: no wording
    assert d.licence.wording_included is False
    assert all(i.text is None for i in d.items)
    assert not d.criteria and not d.flags and not s.bands


def test_hand_worked_score():
    out = score(ID, frame(EXAMPLE, [0] * 6, [100] * 6))
    # (80 + 55.5 + 60 + 72 + 40 + 90.5) / 6 = 398 / 6 = 66.333...
    assert out.loc[0, "score"] == pytest.approx(398 / 6)
    assert out.loc[1, "score"] == 0      # lowest possible
    assert out.loc[2, "score"] == 100    # highest possible
    assert list(out.columns) == ["score"]


def test_decimal_positions_on_the_line_are_accepted():
    out = score(ID, frame([12.25, 0.5, 99.75, 50, 33.3, 66.7]))
    # (12.25 + 0.5 + 99.75 + 50 + 33.3 + 66.7) / 6 = 262.5 / 6 = 43.75
    assert out.loc[0, "score"] == pytest.approx(43.75)


def test_no_reverse_keyed_items_and_raising_any_item_raises_the_score():
    assert not any(item.reverse for item in get(ID).items)
    for j in range(6):
        row = [50] * 6
        row[j] = 56
        # 300 / 6 = 50 -> (300 + 6) / 6 = 51
        assert score(ID, frame([50] * 6, row))["score"].tolist() == [50, 51]


def test_missing_item_at_the_limit_is_the_mean_of_the_answered():
    row = list(EXAMPLE)
    row[4] = None  # item 5 (40) missing
    out = score(ID, frame(row))
    # (80 + 55.5 + 60 + 72 + 90.5) / 5 = 358 / 5 = 71.6
    assert out.loc[0, "score"] == pytest.approx(71.6)


def test_missing_items_beyond_the_limit_give_a_missing_score():
    row = list(EXAMPLE)
    row[4] = None
    row[0] = None  # 2 of 6 missing > 1
    out = score(ID, frame(row, [None] * 6))
    assert math.isnan(out.loc[0, "score"])   # never the 0 that blanks-as-zero would give
    assert math.isnan(out.loc[1, "score"])


@pytest.mark.parametrize("value", [100.5, -1, 250])
def test_out_of_range_answer_names_row_column_value_and_range(value):
    bad = list(EXAMPLE)
    bad[1] = value
    with pytest.raises(ScoringError) as err:
        score(ID, frame(EXAMPLE, bad))
    message = str(err.value)
    assert "row 2" in message and "'ebi_2'" in message and f"value {value!r}" in message
    assert "any number from 0 to 100" in message
    problem = err.value.problems[0]
    assert (problem.row, problem.column, problem.value) == (2, "ebi_2", value)


def test_non_numeric_answer_is_refused():
    bad = list(EXAMPLE)
    bad[5] = "a lot"
    with pytest.raises(ScoringError) as err:
        score(ID, frame(bad))
    message = str(err.value)
    assert "'ebi_6'" in message and "'a lot'" in message and "not a number" in message


vas = st.floats(min_value=0, max_value=100, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(row=st.lists(vas, min_size=6, max_size=6))
def test_complete_score_is_the_mean_within_range(row):
    value = score(ID, frame(row)).loc[0, "score"]
    assert value == pytest.approx(sum(row) / 6, abs=1e-9)
    assert -1e-9 <= value <= 100 + 1e-9


@settings(max_examples=60, deadline=None)
@given(row=st.lists(st.one_of(st.none(), vas), min_size=6, max_size=6))
def test_missing_rule_holds_for_any_pattern(row):
    value = score(ID, frame(row)).loc[0, "score"]
    answered = [a for a in row if a is not None]
    if len(answered) < 5:
        assert math.isnan(value)
    else:
        assert value == pytest.approx(sum(answered) / len(answered), abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(st.none(), vas), min_size=6, max_size=6), min_size=1, max_size=5))
def test_scoring_is_row_independent(rows):
    together = score(ID, frame(*rows))
    one_by_one = pd.concat([score(ID, frame(r)) for r in rows], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
