"""GAD-7: scored against the published key and bands (Spitzer et al. 2006), with the documented
missing-item rule (at most 1 of 7 missing, prorated).

Every expected number is worked by hand from the key in a comment; none is copied from the engine.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.instruments import ScoringError, get, score

ID = "gad7"
ITEMS = [f"{ID}_{n}" for n in range(1, 8)]


def frame(*rows: list) -> pd.DataFrame:
    """Rows given in published item order (7 values each); None = missing answer."""
    return pd.DataFrame([dict(zip(ITEMS, row, strict=True)) for row in rows])


def test_definition_matches_published_key():
    d = get(ID)
    assert [i.id for i in d.items] == ITEMS
    assert all(i.min == 0 and i.max == 3 and i.step == 1 for i in d.items)
    assert d.scale("total").range == (0, 21)  # 7 x 3
    assert d.licence.wording_included is True
    assert all(i.text for i in d.items)
    # the correct lowest answer is "Not at all" (not the misprinted "Not at all sure")
    assert d.items[0].anchors[0] == "Not at all"
    assert not d.flags


def test_hand_worked_total():
    row = [2, 1, 3, 1, 0, 2, 1]
    out = score(ID, frame(row))
    # total = 2 + 1 + 3 + 1 + 0 + 2 + 1 = 10
    assert out.loc[0, "total"] == 10
    assert out.loc[0, "total_band"] == "moderate"  # 10 <= 10 < 15


def test_all_items_at_maximum_give_21():
    out = score(ID, frame([3] * 7))
    assert out.loc[0, "total"] == 21  # 7 x 3
    assert out.loc[0, "total_band"] == "severe"


def test_no_reverse_keyed_items_and_every_item_raises_the_total():
    assert not any(item.reverse for item in get(ID).items)
    for j in range(7):
        row = [0] * 7
        row[j] = 3
        # six items at 0 and one at 3: total 3
        assert score(ID, frame([0] * 7, row))["total"].tolist() == [0, 3]


def test_one_missing_item_is_prorated():
    row = [1, 2, None, 3, 0, 1, 2]
    out = score(ID, frame(row))
    # answered sum = 1+2+3+0+1+2 = 9 over 6 items; 9 x 7 / 6 = 63/6 = 10.5
    assert out.loc[0, "total"] == pytest.approx(10.5)
    assert out.loc[0, "total_band"] == "moderate"  # 10 <= 10.5 < 15


def test_two_missing_items_give_a_missing_total():
    row = [1, 2, None, 3, None, 1, 2]
    out = score(ID, frame(row, [None] * 7))
    # 2 of 7 missing > max_missing 1 -> NaN (never the 9 that treating blanks as 0 would give)
    assert math.isnan(out.loc[0, "total"])
    assert math.isnan(out.loc[1, "total"])
    assert pd.isna(out.loc[0, "total_band"])


def test_out_of_range_answer_names_row_column_value_and_range():
    bad = [0] * 7
    bad[6] = 4
    with pytest.raises(ScoringError) as err:
        score(ID, frame([0] * 7, bad))
    message = str(err.value)
    assert "row 2" in message
    assert "'gad7_7'" in message
    assert "value 4" in message
    assert "0–3" in message
    problem = err.value.problems[0]
    assert (problem.row, problem.column, problem.value) == (2, "gad7_7", 4)


def test_first_row_number_can_be_a_csv_line_number():
    bad = [0] * 7
    bad[0] = 9
    with pytest.raises(ScoringError, match=r"answers\.csv, row 2, column 'gad7_1': value 9"):
        score(ID, frame(bad), source="answers.csv", first_row=2)


def test_non_numeric_answer_is_refused():
    bad = [0] * 7
    bad[3] = "often"
    with pytest.raises(ScoringError) as err:
        score(ID, frame(bad))
    message = str(err.value)
    assert "'gad7_4'" in message and "'often'" in message and "not a number" in message


def test_boolean_answer_is_refused():
    data = frame([0] * 7)
    data["gad7_2"] = True
    with pytest.raises(ScoringError, match="gad7_2"):
        score(ID, data)


def _with_total(total: int) -> list[int]:
    row, left = [], total
    for _ in range(7):
        take = min(3, left)
        row.append(take)
        left -= take
    assert left == 0
    return row


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"), (4, "minimal"),       # 0-4
        (5, "mild"), (9, "mild"),             # 5-9
        (10, "moderate"), (14, "moderate"),   # 10-14
        (15, "severe"), (21, "severe"),       # 15-21
    ],
)
def test_band_edges(total, band):
    out = score(ID, frame(_with_total(total)))
    assert out.loc[0, "total"] == total
    assert out.loc[0, "total_band"] == band


answers = st.lists(st.integers(0, 3), min_size=7, max_size=7)


@settings(max_examples=60, deadline=None)
@given(row=answers)
def test_complete_total_is_the_item_sum_within_range(row):
    total = score(ID, frame(row)).loc[0, "total"]
    assert total == sum(row)
    assert 0 <= total <= 21


@settings(max_examples=60, deadline=None)
@given(row=st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=7, max_size=7))
def test_prorated_total_within_range_and_missing_beyond_one(row):
    total = score(ID, frame(row)).loc[0, "total"]
    answered = [a for a in row if a is not None]
    if len(answered) < 6:
        assert math.isnan(total)
    else:
        assert total == pytest.approx(sum(answered) * 7 / len(answered))
        assert 0 <= total <= 21


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=7, max_size=7),
                     min_size=1, max_size=5))
def test_scoring_is_row_independent(rows):
    together = score(ID, frame(*rows))
    one_by_one = pd.concat([score(ID, frame(r)) for r in rows], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
