"""SRS 3.0: four 0-10 visual-analogue items summed (Duncan et al. 2003), with the PCOMS cut-off
of 36 (Duncan 2012) as bands. Wording is proprietary and not included.

Every expected number is worked by hand from the key in a comment; none is copied from the engine.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.instruments import ScoringError, get, score

ID = "srs"
ITEMS = [f"{ID}_{n}" for n in range(1, 5)]
CONCERN, NO_CONCERN = "alliance concern (below 36)", "no alliance concern (36 or above)"


def frame(*rows: list) -> pd.DataFrame:
    """Rows given in published item order (4 values each, cm); None = missing answer."""
    return pd.DataFrame([dict(zip(ITEMS, row, strict=True)) for row in rows])


def test_definition_matches_published_key():
    d = get(ID)
    assert [i.id for i in d.items] == ITEMS
    # visual-analogue: any value on the 10 cm line
    assert all(i.min == 0 and i.max == 10 and i.step is None for i in d.items)
    assert d.scale("total").range == (0, 40)  # 4 x 10
    assert d.licence.wording_included is False
    assert not any(i.text for i in d.items)
    assert d.instructions is None


def test_hand_worked_total():
    row = [9.2, 8.7, 9.0, 8.6]
    out = score(ID, frame(row))
    # total = 9.2 + 8.7 + 9.0 + 8.6 = 35.5, below the cut-off of 36
    assert out.loc[0, "total"] == pytest.approx(35.5)
    assert out.loc[0, "total_band"] == CONCERN


def test_extremes():
    out = score(ID, frame([0, 0, 0, 0], [10, 10, 10, 10]))
    assert out["total"].tolist() == [0, 40]  # 4 x 0, 4 x 10
    assert out["total_band"].tolist() == [CONCERN, NO_CONCERN]


def test_no_reverse_keyed_items_and_every_item_raises_the_total():
    assert not any(item.reverse for item in get(ID).items)
    for j in range(4):
        row = [5.0] * 4
        row[j] = 7.5
        # three items at 5 and one at 7.5: 15 + 7.5 = 22.5, 2.5 more than 4 x 5 = 20
        assert score(ID, frame([5.0] * 4, row))["total"].tolist() == pytest.approx([20, 22.5])


def test_any_missing_line_makes_the_total_missing():
    out = score(ID, frame([9, 9, 9, 9], [9, 9, 9, None]))
    assert out.loc[0, "total"] == 36  # at the limit (nothing missing): 4 x 9
    # max_missing 0: one unmarked line -> NaN (never 27 as if the line were 0)
    assert math.isnan(out.loc[1, "total"])
    assert pd.isna(out.loc[1, "total_band"])


def test_out_of_range_answer_names_row_column_value_and_range():
    with pytest.raises(ScoringError) as err:
        score(ID, frame([9, 9, 9, 9], [9, 10.5, 9, 9]))
    message = str(err.value)
    assert "row 2" in message
    assert "'srs_2'" in message
    assert "value 10.5" in message
    assert "any number from 0 to 10" in message
    problem = err.value.problems[0]
    assert (problem.row, problem.column, problem.value) == (2, "srs_2", 10.5)


def test_negative_answer_is_refused():
    with pytest.raises(ScoringError, match=r"row 1, column 'srs_4': value -0.1 is out of range"):
        score(ID, frame([9, 9, 9, -0.1]))


def test_non_numeric_answer_is_refused():
    with pytest.raises(ScoringError) as err:
        score(ID, frame([9, "9 cm", 9, 9]))
    message = str(err.value)
    assert "'srs_2'" in message and "'9 cm'" in message and "not a number" in message


def test_numbers_given_as_text_are_read():
    out = score(ID, frame(["9.5", "8", " 7.25 ", "10"]))
    # 9.5 + 8 + 7.25 + 10 = 34.75
    assert out.loc[0, "total"] == pytest.approx(34.75)


@pytest.mark.parametrize(
    ("row", "total", "band"),
    [
        ([0, 0, 0, 0], 0, CONCERN),             # lower edge of the concern band
        ([9, 9, 9, 8.9], 35.9, CONCERN),         # 9 + 9 + 9 + 8.9 = 35.9, just below 36
        ([9, 9, 9, 8], 35, CONCERN),             # 9 + 9 + 9 + 8 = 35, one point below 36
        ([9, 9, 9, 9], 36, NO_CONCERN),          # 4 x 9 = 36, lower edge of "no concern"
        ([10, 10, 10, 10], 40, NO_CONCERN),
    ],
)
def test_band_edges(row, total, band):
    out = score(ID, frame(row))
    assert out.loc[0, "total"] == pytest.approx(total)
    assert out.loc[0, "total_band"] == band


line = st.floats(0, 10, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(row=st.lists(line, min_size=4, max_size=4))
def test_complete_total_is_the_item_sum_within_range(row):
    total = score(ID, frame(row)).loc[0, "total"]
    assert total == pytest.approx(sum(row), abs=1e-9)
    assert 0 <= total <= 40


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(st.none(), line), min_size=4, max_size=4), min_size=1, max_size=5))
def test_scoring_is_row_independent(rows):
    together = score(ID, frame(*rows))
    one_by_one = pd.concat([score(ID, frame(r)) for r in rows], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
