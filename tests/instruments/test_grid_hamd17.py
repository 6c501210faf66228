"""GRID-HAMD-17: scored against the published key (Hamilton 1960; Williams et al. 2008), the
Zimmerman et al. (2013) severity bands and the Davis et al. (2021) response/remission rules.

Every expected number is worked by hand from the key in a comment; none is copied from the engine.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.instruments import ScoringError, get, remission, response, score

ID = "grid_hamd17"
ITEMS = [f"{ID}_{n}" for n in range(1, 18)]
# Published item maxima: items 4-6, 12-14, 16, 17 are 0-2, the rest 0-4 (Hamilton 1960; Guy 1976).
MAXIMA = {n: (2 if n in (4, 5, 6, 12, 13, 14, 16, 17) else 4) for n in range(1, 18)}


def frame(*rows: list) -> pd.DataFrame:
    """Rows given in published item order (17 values each); None = missing answer."""
    return pd.DataFrame([dict(zip(ITEMS, row, strict=True)) for row in rows])


def summing_to(total: int) -> list[int]:
    """Answers filling items 1, 2, 3, ... up to their maxima until they add up to ``total``."""
    row, left = [], total
    for n in range(1, 18):
        take = min(MAXIMA[n], left)
        row.append(take)
        left -= take
    assert left == 0
    return row


def test_definition_matches_published_key():
    d = get(ID)
    assert d.rater == "clinician"
    assert [i.id for i in d.items] == ITEMS
    assert {i.number: i.max for i in d.items} == MAXIMA
    assert all(i.min == 0 and i.step == 1 for i in d.items)
    # 9 items 0-4 + 8 items 0-2 = 36 + 16 = 52
    assert d.scale("total").range == (0, 52)


def test_hand_worked_total():
    row = [3, 2, 1, 2, 1, 2, 3, 1, 1, 2, 2, 1, 1, 1, 0, 0, 0]
    out = score(ID, frame(row))
    # total = 3+2+1 (items 1-3) + 2+1+2 (4-6) + 3 (7) + 1+1 (8-9) + 2+2 (10-11)
    #       + 1+1+1 (12-14) + 0+0+0 (15-17) = 6 + 5 + 3 + 2 + 4 + 3 + 0 = 23
    assert out.loc[0, "total"] == 23
    assert out.loc[0, "total_band"] == "moderate"  # 17 <= 23 < 24
    assert bool(out.loc[0, "suicidality"]) is True  # item 3 = 1 >= 1


def test_all_items_at_maximum_give_52():
    out = score(ID, frame([MAXIMA[n] for n in range(1, 18)]))
    # 9 x 4 + 8 x 2 = 36 + 16 = 52
    assert out.loc[0, "total"] == 52
    assert out.loc[0, "total_band"] == "severe"


def test_no_reverse_keyed_items_and_every_item_raises_the_total():
    assert not any(item.reverse for item in get(ID).items)
    base = [0] * 17
    for j in range(17):
        row = list(base)
        row[j] = 1
        # all zero except one item at 1: total = 0 + 1 = 1
        assert score(ID, frame(base, row))["total"].tolist() == [0, 1]


def test_missing_rule_no_item_may_be_missing():
    complete = [1] * 17  # 17 x 1 = 17
    one_missing = [1] * 16 + [None]
    out = score(ID, frame(complete, one_missing))
    assert out.loc[0, "total"] == 17
    # max_missing 0: one unrated item makes the total missing (NaN, never 16 as if it were 0)
    assert math.isnan(out.loc[1, "total"])
    assert pd.isna(out.loc[1, "total_band"])


def test_out_of_range_answer_names_row_column_value_and_range():
    ok = [0] * 17
    bad = [0] * 17
    bad[3] = 3  # item 4 (early insomnia) is scored 0-2
    with pytest.raises(ScoringError) as err:
        score(ID, frame(ok, bad))
    message = str(err.value)
    assert "row 2" in message
    assert "'grid_hamd17_4'" in message
    assert "value 3" in message
    assert "0–2" in message
    problem = err.value.problems[0]
    assert (problem.row, problem.column, problem.value) == (2, "grid_hamd17_4", 3)


def test_out_of_range_on_a_0_to_4_item():
    bad = [0] * 17
    bad[0] = 5
    with pytest.raises(ScoringError, match=r"row 1, column 'grid_hamd17_1': value 5 .*0–4"):
        score(ID, frame(bad))


def test_non_numeric_answer_is_refused():
    bad = [0] * 17
    bad[6] = "moderate"
    with pytest.raises(ScoringError) as err:
        score(ID, frame(bad))
    message = str(err.value)
    assert "'grid_hamd17_7'" in message and "'moderate'" in message and "not a number" in message


def test_fractional_answer_is_refused():
    bad = [0] * 17
    bad[0] = 2.5
    with pytest.raises(ScoringError, match="not an allowed answer"):
        score(ID, frame(bad))


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "no depression"),   # lower edge of 0-7
        (7, "no depression"),   # one below 8
        (8, "mild"),            # lower edge of 8-16
        (16, "mild"),           # one below 17
        (17, "moderate"),       # lower edge of 17-23
        (23, "moderate"),       # one below 24
        (24, "severe"),         # lower edge of >= 24
        (52, "severe"),
    ],
)
def test_band_edges(total, band):
    out = score(ID, frame(summing_to(total)))
    assert out.loc[0, "total"] == total
    assert out.loc[0, "total_band"] == band


@pytest.mark.parametrize(("item3", "flag"), [(0, False), (1, True), (4, True)])
def test_suicidality_flag_edges(item3, flag):
    row = [0] * 17
    row[2] = item3
    assert bool(score(ID, frame(row)).loc[0, "suicidality"]) is flag


def test_suicidality_flag_missing_when_item_3_unrated():
    row = [0] * 17
    row[2] = None
    assert pd.isna(score(ID, frame(row)).loc[0, "suicidality"])


def test_response_edges():
    baseline = pd.Series([20.0, 20.0, 23.0, 23.0, 0.0, np.nan, 20.0])
    current = pd.Series([10.0, 11.0, 11.0, 12.0, 0.0, 5.0, np.nan])
    got = response(baseline, current)
    # (20-10)/20 = 50%   -> response (>= 50%)
    # (20-11)/20 = 45%   -> no
    # (23-11)/23 = 52.2% -> response
    # (23-12)/23 = 47.8% -> no
    # baseline 0: no reduction defined -> missing; any missing score -> missing
    assert got.tolist()[:4] == [True, False, True, False]
    assert got.isna().tolist() == [False, False, False, False, True, True, True]


def test_remission_edges():
    got = remission(pd.Series([7.0, 8.0, 0.0, np.nan]))
    # remission = total <= 7 (Davis et al. 2021)
    assert got.tolist()[:3] == [True, False, True]
    assert pd.isna(got.iloc[3])


def test_remission_from_scored_totals():
    baseline = frame(summing_to(24))
    followup = frame(summing_to(7))
    b = score(ID, baseline)["total"]
    c = score(ID, followup)["total"]
    # 24 -> 7: reduction (24-7)/24 = 70.8% >= 50%, and 7 <= 7
    assert bool(response(b, c).iloc[0]) is True
    assert bool(remission(c).iloc[0]) is True


answers = st.tuples(*[st.integers(0, MAXIMA[n]) for n in range(1, 18)]).map(list)


@settings(max_examples=60, deadline=None)
@given(row=answers)
def test_complete_total_is_the_item_sum_within_range(row):
    total = score(ID, frame(row)).loc[0, "total"]
    assert total == sum(row)
    assert 0 <= total <= 52


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(answers, min_size=1, max_size=5))
def test_scoring_is_row_independent(rows):
    together = score(ID, frame(*rows))
    one_by_one = pd.concat([score(ID, frame(r)) for r in rows], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
