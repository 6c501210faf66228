"""WAI-SR: scored against the published key (Hatcher & Gillaspy 2006): 12 items rated 1-5,
total = sum of all 12 (12-60), goal = items 4, 6, 8, 11; task = items 1, 2, 10, 12;
bond = items 3, 5, 7, 9 (each a sum, 4-20); no reverse-keyed items. Missing-item rule (our
documented choice): subscales prorated with at most 1 of 4 missing, total with at most 2 of 12.

Every expected number is worked by hand from the key in a comment; none is copied from the engine.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.instruments import ScoringError, get, score

ID = "wai_sr"
ITEMS = [f"{ID}_{n}" for n in range(1, 13)]
GOAL = [4, 6, 8, 11]
TASK = [1, 2, 10, 12]
BOND = [3, 5, 7, 9]
SUBSCALES = {"goal": GOAL, "task": TASK, "bond": BOND}


def frame(*rows: list) -> pd.DataFrame:
    """Rows given in published item order (12 values each); None = missing answer."""
    return pd.DataFrame([dict(zip(ITEMS, row, strict=True)) for row in rows])


# Item:       1  2  3  4  5  6  7  8  9 10 11 12
EXAMPLE = [4, 3, 5, 2, 4, 3, 5, 1, 4, 2, 3, 5]


def test_definition_matches_published_key():
    d = get(ID)
    assert [i.id for i in d.items] == ITEMS
    assert all(i.min == 1 and i.max == 5 and i.step == 1 for i in d.items)
    assert d.scale("total").items == tuple(ITEMS)
    for name, numbers in SUBSCALES.items():
        assert d.scale(name).items == tuple(f"{ID}_{n}" for n in numbers)
        assert d.scale(name).method == "sum"
        assert d.scale(name).range == (4, 20)  # 4 items x 1 .. 4 items x 5
    assert d.scale("total").range == (12, 60)  # 12 x 1 .. 12 x 5
    # the three subscales partition the 12 items
    assert sorted(GOAL + TASK + BOND) == list(range(1, 13))
    # copyrighted wording (Horvath; Hatcher & Gillaspy): no text, generic frequency labels only
    assert d.licence.wording_included is False
    assert all(i.text is None for i in d.items)
    assert d.items[0].anchors == {1: "Seldom", 2: "Sometimes", 3: "Fairly often", 4: "Very often", 5: "Always"}
    assert not d.criteria and not d.flags
    assert not any(s.bands for s in d.scales)  # no published severity bands


def test_hand_worked_scales():
    out = score(ID, frame(EXAMPLE))
    # goal = items 4, 6, 8, 11 = 2 + 3 + 1 + 3 = 9
    assert out.loc[0, "goal"] == 9
    # task = items 1, 2, 10, 12 = 4 + 3 + 2 + 5 = 14
    assert out.loc[0, "task"] == 14
    # bond = items 3, 5, 7, 9 = 5 + 4 + 5 + 4 = 18
    assert out.loc[0, "bond"] == 18
    # total = 4+3+5+2+4+3+5+1+4+2+3+5 = 41 (= 9 + 14 + 18)
    assert out.loc[0, "total"] == 41
    assert list(out.columns) == ["total", "goal", "task", "bond"]


def test_minimum_and_maximum():
    out = score(ID, frame([1] * 12, [5] * 12))
    assert out["total"].tolist() == [12, 60]  # 12 x 1, 12 x 5
    for name in SUBSCALES:
        assert out[name].tolist() == [4, 20]  # 4 x 1, 4 x 5


@pytest.mark.parametrize("n", range(1, 13))
def test_each_item_counts_in_its_own_subscale_only(n):
    row = [1] * 12
    row[n - 1] = 5
    out = score(ID, frame(row))
    # eleven items at 1 and one at 5: total = 11 + 5 = 16
    assert out.loc[0, "total"] == 16
    for name, numbers in SUBSCALES.items():
        # the subscale holding item n: 3 x 1 + 5 = 8; the other two: 4 x 1 = 4
        assert out.loc[0, name] == (8 if n in numbers else 4)


def test_no_reverse_keyed_items_and_raising_any_item_raises_the_score():
    assert not any(item.reverse for item in get(ID).items)
    for j in range(12):
        row = [3] * 12
        row[j] = 4
        # total goes from 12 x 3 = 36 to 36 + 1 = 37; the item's subscale from 12 to 13
        out = score(ID, frame([3] * 12, row))
        assert out["total"].tolist() == [36, 37]
        name = next(s for s, numbers in SUBSCALES.items() if j + 1 in numbers)
        assert out[name].tolist() == [12, 13]


def test_missing_items_at_the_limit_are_prorated():
    one = list(EXAMPLE)
    one[8 - 1] = None            # item 8 (goal) missing
    two = list(one)
    two[1 - 1] = None            # and item 1 (task) missing
    out = score(ID, frame(one, two))
    # one missing: goal = items 4, 6, 11 = 2 + 3 + 3 = 8 over 3 items -> 8 x 4 / 3 = 10.666...
    assert out.loc[0, "goal"] == pytest.approx(32 / 3)
    # total: answered sum = 41 - 1 = 40 over 11 items -> 40 x 12 / 11 = 43.6363...
    assert out.loc[0, "total"] == pytest.approx(480 / 11)
    assert out.loc[0, "task"] == 14 and out.loc[0, "bond"] == 18  # untouched
    # two missing (items 8 and 1): task = items 2, 10, 12 = 3 + 2 + 5 = 10 -> 10 x 4 / 3 = 13.333...
    assert out.loc[1, "task"] == pytest.approx(40 / 3)
    assert out.loc[1, "goal"] == pytest.approx(32 / 3)
    # total: answered sum = 41 - 1 - 4 = 36 over 10 items -> 36 x 12 / 10 = 43.2
    assert out.loc[1, "total"] == pytest.approx(43.2)


def test_missing_items_beyond_the_limit_give_missing_scores():
    three = list(EXAMPLE)
    for n in (1, 2, 8):          # items 1 and 2 (task) and 8 (goal)
        three[n - 1] = None
    same_subscale = list(EXAMPLE)
    for n in (4, 6):             # two goal items
        same_subscale[n - 1] = None
    out = score(ID, frame(three, same_subscale, [None] * 12))
    # 3 of 12 missing > 2 -> total missing; task has 2 of 4 missing > 1 -> missing (never 0)
    assert math.isnan(out.loc[0, "total"])
    assert math.isnan(out.loc[0, "task"])
    assert out.loc[0, "goal"] == pytest.approx(32 / 3)  # items 4, 6, 11 = 8 -> 8 x 4 / 3
    assert out.loc[0, "bond"] == 18
    # two goal items missing: goal missing, total still scored:
    # answered sum = 41 - 2 - 3 = 36 over 10 items -> 36 x 12 / 10 = 43.2
    assert math.isnan(out.loc[1, "goal"])
    assert out.loc[1, "total"] == pytest.approx(43.2)
    # nothing answered: every scale missing
    assert out.loc[2].isna().all()


@pytest.mark.parametrize("value", [0, 6, -1])
def test_out_of_range_answer_names_row_column_value_and_range(value):
    bad = list(EXAMPLE)
    bad[3 - 1] = value
    with pytest.raises(ScoringError) as err:
        score(ID, frame(EXAMPLE, bad))
    message = str(err.value)
    assert "row 2" in message
    assert "'wai_sr_3'" in message
    assert f"value {value}" in message
    assert "1–5" in message  # 0 is not an answer on the WAI-SR's 1-5 scale
    problem = err.value.problems[0]
    assert (problem.row, problem.column, problem.value) == (2, "wai_sr_3", value)


def test_non_numeric_answer_is_refused():
    bad = list(EXAMPLE)
    bad[0] = "always"
    with pytest.raises(ScoringError) as err:
        score(ID, frame(bad))
    message = str(err.value)
    assert "row 1" in message and "'wai_sr_1'" in message and "'always'" in message
    assert "not a number" in message


def test_answer_between_scale_points_is_refused():
    bad = list(EXAMPLE)
    bad[11] = 3.5
    with pytest.raises(ScoringError, match=r"wai_sr_12.*3\.5.*not an allowed answer"):
        score(ID, frame(bad))


def test_column_that_looks_like_an_item_is_refused():
    data = frame(EXAMPLE)
    data["wai_sr_13"] = 3
    with pytest.raises(ScoringError, match="wai_sr_13"):
        score(ID, data)


answers = st.lists(st.integers(1, 5), min_size=12, max_size=12)


@settings(max_examples=60, deadline=None)
@given(row=answers)
def test_complete_scores_are_sums_within_range(row):
    out = score(ID, frame(row)).loc[0]
    assert out["total"] == sum(row)
    assert 12 <= out["total"] <= 60
    for name, numbers in SUBSCALES.items():
        assert out[name] == sum(row[n - 1] for n in numbers)
        assert 4 <= out[name] <= 20
    # complete answers: the subscales add up to the total
    assert out["goal"] + out["task"] + out["bond"] == out["total"]


@settings(max_examples=60, deadline=None)
@given(row=st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=12, max_size=12))
def test_missing_rule_holds_for_any_pattern(row):
    out = score(ID, frame(row)).loc[0]
    answered = [a for a in row if a is not None]
    if len(answered) < 10:
        assert math.isnan(out["total"])
    else:
        assert out["total"] == pytest.approx(sum(answered) * 12 / len(answered))
        assert 12 <= out["total"] <= 60
    for name, numbers in SUBSCALES.items():
        got = [row[n - 1] for n in numbers if row[n - 1] is not None]
        if len(got) < 3:
            assert math.isnan(out[name])
        else:
            assert out[name] == pytest.approx(sum(got) * 4 / len(got))


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=12, max_size=12),
                     min_size=1, max_size=5))
def test_scoring_is_row_independent(rows):
    together = score(ID, frame(*rows))
    one_by_one = pd.concat([score(ID, frame(r)) for r in rows], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
