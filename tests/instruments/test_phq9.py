"""PHQ-9: scored against the published key and bands (Kroenke, Spitzer & Williams 2001), with the
item-9 safety flag and the documented missing-item rule (up to 2 of 9 missing, prorated).

Every expected number is worked by hand from the key in a comment; none is copied from the engine.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.instruments import ScoringError, get, score

ID = "phq9"
ITEMS = [f"{ID}_{n}" for n in range(1, 10)]


def frame(*rows: list) -> pd.DataFrame:
    """Rows given in published item order (9 values each); None = missing answer."""
    return pd.DataFrame([dict(zip(ITEMS, row, strict=True)) for row in rows])


def test_definition_matches_published_key():
    d = get(ID)
    assert [i.id for i in d.items] == ITEMS
    assert all(i.min == 0 and i.max == 3 and i.step == 1 for i in d.items)
    assert d.scale("total").range == (0, 27)  # 9 x 3
    # Pfizer's terms allow the wording to be reproduced and distributed
    assert d.licence.wording_included is True
    assert all(i.text for i in d.items)
    assert d.items[0].anchors == {0: "Not at all", 1: "Several days",
                                  2: "More than half the days", 3: "Nearly every day"}


def test_hand_worked_total():
    row = [2, 1, 3, 0, 2, 1, 1, 0, 1]
    out = score(ID, frame(row))
    # total = 2 + 1 + 3 + 0 + 2 + 1 + 1 + 0 + 1 = 11
    assert out.loc[0, "total"] == 11
    assert out.loc[0, "total_band"] == "moderate"  # 10 <= 11 < 15
    assert bool(out.loc[0, "suicidality"]) is True  # item 9 = 1


def test_all_items_at_maximum_give_27():
    out = score(ID, frame([3] * 9))
    assert out.loc[0, "total"] == 27  # 9 x 3
    assert out.loc[0, "total_band"] == "severe"


def test_no_reverse_keyed_items_and_every_item_raises_the_total():
    assert not any(item.reverse for item in get(ID).items)
    for j in range(9):
        row = [1] * 9
        row[j] = 2
        # eight items at 1 and one at 2: 8 + 2 = 10, one more than 9 x 1 = 9
        assert score(ID, frame([1] * 9, row))["total"].tolist() == [9, 10]


def test_missing_items_at_the_limit_are_prorated():
    one_missing = [2, 1, 3, 0, 2, None, 1, 1, 1]
    two_missing = [2, 1, 3, 0, 2, None, 1, None, 1]
    out = score(ID, frame(one_missing, two_missing))
    # one missing: answered sum = 2+1+3+0+2+1+1+1 = 11 over 8 items; 11 x 9 / 8 = 99/8 = 12.375
    assert out.loc[0, "total"] == pytest.approx(12.375)
    # two missing: answered sum = 2+1+3+0+2+1+1 = 10 over 7 items; 10 x 9 / 7 = 90/7 = 12.857142...
    assert out.loc[1, "total"] == pytest.approx(90 / 7)
    assert out.loc[1, "total_band"] == "moderate"


def test_prorated_score_is_banded_by_its_value():
    row = [1, 1, 1, 1, None, 0, 0, 0, 0]
    out = score(ID, frame(row))
    # answered sum = 4 over 8 items: 4 x 9 / 8 = 4.5, below the mild edge of 5 -> minimal
    assert out.loc[0, "total"] == pytest.approx(4.5)
    assert out.loc[0, "total_band"] == "minimal"


def test_missing_items_beyond_the_limit_give_a_missing_total():
    three_missing = [2, 1, 3, None, 2, None, 1, None, 1]
    out = score(ID, frame(three_missing, [None] * 9))
    # 3 of 9 missing > max_missing 2 -> NaN (never the 9 that treating blanks as 0 would give)
    assert math.isnan(out.loc[0, "total"])
    assert math.isnan(out.loc[1, "total"])
    assert pd.isna(out.loc[0, "total_band"])


def test_out_of_range_answer_names_row_column_value_and_range():
    bad = [0] * 9
    bad[2] = 7
    with pytest.raises(ScoringError) as err:
        score(ID, frame([0] * 9, bad))
    message = str(err.value)
    assert "row 2" in message
    assert "'phq9_3'" in message
    assert "value 7" in message
    assert "0–3" in message
    problem = err.value.problems[0]
    assert (problem.row, problem.column, problem.value) == (2, "phq9_3", 7)


def test_every_invalid_cell_is_listed():
    bad = [4, 0, 0, 0, 0, 0, 0, 0, "x"]
    with pytest.raises(ScoringError) as err:
        score(ID, frame(bad))
    assert {p.column for p in err.value.problems} == {"phq9_1", "phq9_9"}


def test_non_numeric_answer_is_refused():
    bad = [0] * 9
    bad[0] = "nearly every day"
    with pytest.raises(ScoringError) as err:
        score(ID, frame(bad))
    message = str(err.value)
    assert "'phq9_1'" in message and "'nearly every day'" in message and "not a number" in message


def test_column_that_looks_like_an_item_is_refused():
    data = frame([0] * 9)
    data["phq9_10"] = 1  # the PHQ-9 difficulty question is not a scored item
    with pytest.raises(ScoringError, match="phq9_10"):
        score(ID, data)


def _with_total(total: int) -> list[int]:
    row, left = [], total
    for _ in range(9):
        take = min(3, left)
        row.append(take)
        left -= take
    assert left == 0
    return row


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"), (4, "minimal"),                         # 0-4
        (5, "mild"), (9, "mild"),                               # 5-9
        (10, "moderate"), (14, "moderate"),                     # 10-14
        (15, "moderately severe"), (19, "moderately severe"),   # 15-19
        (20, "severe"), (27, "severe"),                         # 20-27
    ],
)
def test_band_edges(total, band):
    out = score(ID, frame(_with_total(total)))
    assert out.loc[0, "total"] == total
    assert out.loc[0, "total_band"] == band


@pytest.mark.parametrize(("item9", "flag"), [(0, False), (1, True), (2, True), (3, True)])
def test_suicidality_flag_edges(item9, flag):
    row = [0] * 8 + [item9]
    assert bool(score(ID, frame(row)).loc[0, "suicidality"]) is flag


def test_suicidality_flag_missing_when_item_9_unanswered():
    row = [1] * 8 + [None]
    out = score(ID, frame(row))
    assert pd.isna(out.loc[0, "suicidality"])
    # the total is still scored (1 missing <= 2): 8 x 9 / 8 = 9
    assert out.loc[0, "total"] == pytest.approx(9)


answers = st.lists(st.integers(0, 3), min_size=9, max_size=9)


@settings(max_examples=60, deadline=None)
@given(row=answers)
def test_complete_total_is_the_item_sum_within_range(row):
    total = score(ID, frame(row)).loc[0, "total"]
    assert total == sum(row)
    assert 0 <= total <= 27


@settings(max_examples=60, deadline=None)
@given(row=st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=9, max_size=9))
def test_prorated_total_within_range_and_missing_beyond_two(row):
    total = score(ID, frame(row)).loc[0, "total"]
    answered = [a for a in row if a is not None]
    if len(answered) < 7:
        assert math.isnan(total)
    else:
        assert total == pytest.approx(sum(answered) * 9 / len(answered))
        assert 0 <= total <= 27


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=9, max_size=9),
                     min_size=1, max_size=5))
def test_scoring_is_row_independent(rows):
    together = score(ID, frame(*rows))
    one_by_one = pd.concat([score(ID, frame(r)) for r in rows], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
