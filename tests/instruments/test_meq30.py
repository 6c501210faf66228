"""MEQ30: scored against the published key (MacLean et al. 2012 factors; stand-alone numbering of
Barrett, Johnson & Griffiths 2015): 30 items rated 0-5, every scale the mean of its items and also
a percent of the maximum (mean / 5 x 100).

  mystical       items 4, 5, 6, 9, 14, 15, 16, 18, 20, 21, 23, 24, 25, 26, 28
  positive_mood  items 2, 8, 12, 17, 27, 30
  transcendence  items 1, 7, 11, 13, 19, 22
  ineffability   items 3, 10, 29

Complete mystical experience (Barrett et al. 2015): >= 60% of maximum on each of the four factors.
Missing-item rule (our documented choice): at most 20% of a scale's items missing (rounded down).

Every expected number is worked by hand from the key in a comment; none is copied from the engine.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.instruments import ScoringError, get, score

ID = "meq30"
ITEMS = [f"{ID}_{n}" for n in range(1, 31)]
KEY = {
    "mystical": [4, 5, 6, 9, 14, 15, 16, 18, 20, 21, 23, 24, 25, 26, 28],
    "positive_mood": [2, 8, 12, 17, 27, 30],
    "transcendence": [1, 7, 11, 13, 19, 22],
    "ineffability": [3, 10, 29],
}
MAX_MISSING = {"total": 6, "mystical": 3, "positive_mood": 1, "transcendence": 1, "ineffability": 0}


def frame(*rows: list) -> pd.DataFrame:
    """Rows given in published item order (30 values each); None = missing answer."""
    return pd.DataFrame([dict(zip(ITEMS, row, strict=True)) for row in rows])


def build(values: dict[str, list]) -> list:
    """A 30-item row from per-factor answers listed in the factor's item order (see KEY)."""
    row = [None] * 30
    for factor, answers in values.items():
        for n, a in zip(KEY[factor], answers, strict=True):
            row[n - 1] = a
    return row


EXAMPLE_VALUES = {
    "transcendence": [4, 3, 5, 2, 4, 3],                           # items 1, 7, 11, 13, 19, 22
    "positive_mood": [5, 4, 4, 3, 5, 3],                           # items 2, 8, 12, 17, 27, 30
    "ineffability": [3, 4, 2],                                     # items 3, 10, 29
    "mystical": [3, 2, 4, 3, 5, 1, 2, 3, 4, 3, 2, 4, 3, 5, 1],     # items 4, 5, ..., 28
}
EXAMPLE = build(EXAMPLE_VALUES)


def test_definition_matches_published_key():
    d = get(ID)
    assert [i.id for i in d.items] == ITEMS
    assert all(i.min == 0 and i.max == 5 and i.step == 1 for i in d.items)
    for factor, numbers in KEY.items():
        scale = d.scale(factor)
        assert scale.items == tuple(f"{ID}_{n}" for n in numbers)
        assert scale.method == "mean" and scale.range == (0, 5) and scale.percent_of_max
    assert d.scale("total").items == tuple(ITEMS)
    # the four factors partition the 30 items: 15 + 6 + 6 + 3 = 30
    assert sorted(n for numbers in KEY.values() for n in numbers) == list(range(1, 31))
    assert d.licence.wording_included is False
    assert all(i.text is None for i in d.items)
    assert [s.id for s in d.scales] == ["total", "mystical", "positive_mood", "transcendence", "ineffability"]
    assert {s.id: s.missing.max_missing for s in d.scales} == MAX_MISSING


def test_hand_worked_scales_and_percent_of_maximum():
    out = score(ID, frame(EXAMPLE))
    # transcendence = items 1, 7, 11, 13, 19, 22 = (4+3+5+2+4+3)/6 = 21/6 = 3.5 -> 3.5/5 = 70%
    assert out.loc[0, "transcendence"] == pytest.approx(3.5)
    assert out.loc[0, "transcendence_pct"] == pytest.approx(70)
    # positive mood = items 2, 8, 12, 17, 27, 30 = (5+4+4+3+5+3)/6 = 24/6 = 4.0 -> 80%
    assert out.loc[0, "positive_mood"] == pytest.approx(4.0)
    assert out.loc[0, "positive_mood_pct"] == pytest.approx(80)
    # ineffability = items 3, 10, 29 = (3+4+2)/3 = 9/3 = 3.0 -> 60%
    assert out.loc[0, "ineffability"] == pytest.approx(3.0)
    assert out.loc[0, "ineffability_pct"] == pytest.approx(60)
    # mystical = (3+2+4+3+5+1+2+3+4+3+2+4+3+5+1)/15 = 45/15 = 3.0 -> 60%
    assert out.loc[0, "mystical"] == pytest.approx(3.0)
    assert out.loc[0, "mystical_pct"] == pytest.approx(60)
    # total = (21 + 24 + 9 + 45)/30 = 99/30 = 3.3 -> 3.3/5 = 66%
    assert out.loc[0, "total"] == pytest.approx(3.3)
    assert out.loc[0, "total_pct"] == pytest.approx(66)
    # every factor >= 60% (mystical and ineffability exactly at the edge) -> complete
    assert bool(out.loc[0, "complete"]) is True


def test_each_item_counts_in_its_own_factor_only():
    for factor, numbers in KEY.items():
        for n in numbers:
            row = [0] * 30
            row[n - 1] = 5
            out = score(ID, frame(row)).loc[0]
            # one item at 5, the rest 0: its factor mean = 5 / (items in factor), others 0;
            # total = 5 / 30
            assert out[factor] == pytest.approx(5 / len(numbers))
            assert out["total"] == pytest.approx(5 / 30)
            for other in KEY:
                if other != factor:
                    assert out[other] == 0


def test_no_reverse_keyed_items_and_raising_any_item_raises_the_score():
    assert not any(item.reverse for item in get(ID).items)
    for j in range(30):
        row = [2] * 30
        row[j] = 3
        # total goes from 60/30 = 2.0 to 61/30 = 2.0333...
        assert score(ID, frame(row)).loc[0, "total"] == pytest.approx(61 / 30)


def test_complete_at_the_60_percent_edges():
    at_edge = build({f: [3] * len(n) for f, n in KEY.items()})          # every item 3 = 60%
    # one factor just below: mystical with one item 2 -> (14 x 3 + 2)/15 = 44/15 = 2.9333 = 58.67%
    mystical_below = build({**{f: [3] * len(n) for f, n in KEY.items()},
                            "mystical": [2] + [3] * 14})
    # ineffability (3 items) just below: (3+3+2)/3 = 8/3 = 2.667 = 53.33%
    ineffable_below = build({**{f: [3] * len(n) for f, n in KEY.items()}, "ineffability": [3, 3, 2]})
    # positive mood just below: (5 x 3 + 2)/6 = 17/6 = 2.833 = 56.67%
    mood_below = build({**{f: [3] * len(n) for f, n in KEY.items()}, "positive_mood": [3, 3, 3, 3, 3, 2]})
    # transcendence just below: (5 x 3 + 2)/6 = 56.67%
    time_below = build({**{f: [3] * len(n) for f, n in KEY.items()}, "transcendence": [2, 3, 3, 3, 3, 3]})
    # all at maximum
    top = [5] * 30
    out = score(ID, frame(at_edge, mystical_below, ineffable_below, mood_below, time_below, top))
    assert out.loc[0, "mystical_pct"] == pytest.approx(60)
    assert out.loc[1, "mystical_pct"] == pytest.approx(44 / 15 / 5 * 100)
    assert out["complete"].tolist() == [True, False, False, False, False, True]


def test_complete_is_missing_when_a_factor_is_missing():
    row = list(EXAMPLE)
    row[10 - 1] = None  # ineffability item 10; ineffability allows no missing item
    out = score(ID, frame(row))
    assert math.isnan(out.loc[0, "ineffability"])
    assert pd.isna(out.loc[0, "complete"])
    # the other factors are still scored: mystical 45/15 = 3.0, total (99 - 4)/29 = 95/29
    assert out.loc[0, "mystical"] == pytest.approx(3.0)
    assert out.loc[0, "total"] == pytest.approx(95 / 29)


def test_complete_is_false_not_missing_when_a_scored_factor_fails():
    # a factor below 60% decides the criterion even if all four are present: mystical 0
    row = build({**{f: [5] * len(n) for f, n in KEY.items()}, "mystical": [0] * 15})
    assert bool(score(ID, frame(row)).loc[0, "complete"]) is False


def test_missing_items_at_the_limit_are_the_mean_of_the_answered():
    row = list(EXAMPLE)
    row[2 - 1] = None    # positive mood item 2 (value 5): 1 of 6 missing = the limit
    row[1 - 1] = None    # transcendence item 1 (value 4): 1 of 6 missing = the limit
    for n in (4, 5, 6):  # mystical items 4, 5, 6 (values 3, 2, 4): 3 of 15 = the limit
        row[n - 1] = None
    out = score(ID, frame(row)).loc[0]
    # positive mood = (4+4+3+5+3)/5 = 19/5 = 3.8
    assert out["positive_mood"] == pytest.approx(3.8)
    # transcendence = (3+5+2+4+3)/5 = 17/5 = 3.4
    assert out["transcendence"] == pytest.approx(3.4)
    # mystical = (45 - 3 - 2 - 4)/12 = 36/12 = 3.0
    assert out["mystical"] == pytest.approx(3.0)
    # total: 5 items missing (<= 6): (99 - 5 - 4 - 3 - 2 - 4)/25 = 81/25 = 3.24
    assert out["total"] == pytest.approx(81 / 25)


def test_missing_items_beyond_the_limit_give_missing_scores():
    row = list(EXAMPLE)
    for n in (2, 8):                 # 2 of 6 positive-mood items
        row[n - 1] = None
    for n in (4, 5, 6, 9):           # 4 of 15 mystical items
        row[n - 1] = None
    row[1 - 1] = None                # 1 transcendence item: 7 of 30 missing in all
    out = score(ID, frame(row, [None] * 30)).loc[0]
    assert math.isnan(out["positive_mood"])
    assert math.isnan(out["mystical"])
    assert math.isnan(out["total"])           # 7 > 6
    assert math.isnan(out["total_pct"])
    assert pd.isna(out["complete"])
    # transcendence (1 of 6 missing) is still scored: (3+5+2+4+3)/5 = 3.4
    assert out["transcendence"] == pytest.approx(3.4)
    everything_missing = score(ID, frame([None] * 30)).loc[0]
    assert everything_missing.drop("complete").isna().all() and pd.isna(everything_missing["complete"])


def test_out_of_range_answer_names_row_column_value_and_range():
    bad = list(EXAMPLE)
    bad[17 - 1] = 6
    with pytest.raises(ScoringError) as err:
        score(ID, frame(EXAMPLE, EXAMPLE, bad))
    message = str(err.value)
    assert "row 3" in message and "'meq30_17'" in message and "value 6" in message
    assert "0–5" in message
    problem = err.value.problems[0]
    assert (problem.row, problem.column, problem.value) == (3, "meq30_17", 6)


def test_non_numeric_and_off_scale_answers_are_refused():
    bad = list(EXAMPLE)
    bad[0] = "strong"
    bad[1] = 2.5
    with pytest.raises(ScoringError) as err:
        score(ID, frame(bad))
    message = str(err.value)
    assert "'meq30_1'" in message and "'strong'" in message and "not a number" in message
    assert "'meq30_2'" in message and "2.5" in message and "not an allowed answer" in message


answers = st.lists(st.integers(0, 5), min_size=30, max_size=30)


@settings(max_examples=60, deadline=None)
@given(row=answers)
def test_complete_response_within_range_and_criterion_matches_definition(row):
    out = score(ID, frame(row)).loc[0]
    assert out["total"] == pytest.approx(sum(row) / 30)
    for scale in ["total", *KEY]:
        assert 0 <= out[scale] <= 5
        assert out[f"{scale}_pct"] == pytest.approx(out[scale] / 5 * 100)
    means = {f: sum(row[n - 1] for n in numbers) / len(numbers) for f, numbers in KEY.items()}
    for factor, mean in means.items():
        assert out[factor] == pytest.approx(mean)
    # 60% of the 0-5 maximum is a factor mean of 3.0
    assert bool(out["complete"]) is all(m >= 3.0 - 1e-12 for m in means.values())


@settings(max_examples=60, deadline=None)
@given(row=st.lists(st.one_of(st.none(), st.integers(0, 5)), min_size=30, max_size=30))
def test_missing_rule_holds_for_any_pattern(row):
    out = score(ID, frame(row)).loc[0]
    groups = {"total": list(range(1, 31)), **KEY}
    for scale, numbers in groups.items():
        got = [row[n - 1] for n in numbers if row[n - 1] is not None]
        if len(numbers) - len(got) > MAX_MISSING[scale]:
            assert math.isnan(out[scale])
        else:
            assert out[scale] == pytest.approx(sum(got) / len(got))


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(st.none(), st.integers(0, 5)), min_size=30, max_size=30),
                     min_size=1, max_size=5))
def test_scoring_is_row_independent(rows):
    together = score(ID, frame(*rows))
    one_by_one = pd.concat([score(ID, frame(r)) for r in rows], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
