"""ORS: four 0-10 visual-analogue items summed (Miller et al. 2003), with the adult clinical
cut-off of 25 as bands. Wording is proprietary and not included.

Every expected number is worked by hand from the key in a comment; none is copied from the engine.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.instruments import ScoringError, get, score

ID = "ors"
ITEMS = [f"{ID}_{n}" for n in range(1, 5)]
CLINICAL, NON_CLINICAL = "clinical range (below 25)", "non-clinical range (25 or above)"


def frame(*rows: list) -> pd.DataFrame:
    """Rows given in published item order (4 values each, cm); None = missing answer."""
    return pd.DataFrame([dict(zip(ITEMS, row, strict=True)) for row in rows])


def test_definition_matches_published_key():
    d = get(ID)
    assert [i.id for i in d.items] == ITEMS
    assert all(i.min == 0 and i.max == 10 and i.step is None for i in d.items)
    assert d.scale("total").range == (0, 40)  # 4 x 10
    assert d.licence.wording_included is False
    assert not any(i.text for i in d.items)


def test_hand_worked_total():
    row = [5.3, 6.1, 4.8, 7.0]
    out = score(ID, frame(row))
    # total = 5.3 + 6.1 + 4.8 + 7.0 = 23.2, below the adult cut-off of 25
    assert out.loc[0, "total"] == pytest.approx(23.2)
    assert out.loc[0, "total_band"] == CLINICAL


def test_no_reverse_keyed_items_and_every_item_raises_the_total():
    assert not any(item.reverse for item in get(ID).items)
    for j in range(4):
        row = [6.0] * 4
        row[j] = 6.4
        # three items at 6 and one at 6.4: 18 + 6.4 = 24.4, 0.4 more than 4 x 6 = 24
        assert score(ID, frame([6.0] * 4, row))["total"].tolist() == pytest.approx([24, 24.4])


def test_any_missing_line_makes_the_total_missing():
    out = score(ID, frame([7, 6, 5, 8], [None, 6, 5, 8]))
    assert out.loc[0, "total"] == 26  # at the limit (nothing missing): 7 + 6 + 5 + 8 = 26
    # max_missing 0: one unmarked line -> NaN (never 19 as if the line were 0)
    assert math.isnan(out.loc[1, "total"])
    assert pd.isna(out.loc[1, "total_band"])


def test_out_of_range_answer_names_row_column_value_and_range():
    with pytest.raises(ScoringError) as err:
        score(ID, frame([5, 5, 5, 5], [5, 5, 11, 5]))
    message = str(err.value)
    assert "row 2" in message
    assert "'ors_3'" in message
    assert "value 11" in message
    assert "any number from 0 to 10" in message
    problem = err.value.problems[0]
    assert (problem.row, problem.column, problem.value) == (2, "ors_3", 11)


def test_non_numeric_answer_is_refused():
    with pytest.raises(ScoringError) as err:
        score(ID, frame(["fine", 5, 5, 5]))
    message = str(err.value)
    assert "'ors_1'" in message and "'fine'" in message and "not a number" in message


@pytest.mark.parametrize(
    ("row", "total", "band"),
    [
        ([0, 0, 0, 0], 0, CLINICAL),              # lower edge of the clinical band
        ([6, 6, 6, 6.9], 24.9, CLINICAL),          # 6 + 6 + 6 + 6.9 = 24.9, just below 25
        ([6, 6, 6, 6], 24, CLINICAL),              # 4 x 6 = 24, one point below 25
        ([7, 6, 6, 6], 25, NON_CLINICAL),          # 7 + 6 + 6 + 6 = 25, lower edge
        ([10, 10, 10, 10], 40, NON_CLINICAL),
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
