"""QIDS-SR16: scored against the published key (Rush et al. 2003): nine domains, each the highest
of its items, summed; bands from ids-qids.org.

Every expected number is worked by hand from the key in a comment; none is copied from the engine.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.instruments import ScoringError, get, score

ID = "qids_sr16"
ITEMS = [f"{ID}_{n}" for n in range(1, 17)]
# Published domains (Rush et al. 2003), by item number.
DOMAINS = [(1, 2, 3, 4), (5,), (6, 7, 8, 9), (10,), (11,), (12,), (13,), (14,), (15, 16)]


def frame(*rows: list) -> pd.DataFrame:
    """Rows given in published item order (16 values each); None = missing answer."""
    return pd.DataFrame([dict(zip(ITEMS, row, strict=True)) for row in rows])


def hand_total(row: list) -> int:
    """The published key, written out independently of the YAML file."""
    return sum(max(row[n - 1] for n in domain) for domain in DOMAINS)


def test_definition_matches_published_key():
    d = get(ID)
    total = d.scale("total")
    assert total.method == "max_of_groups"
    groups = [tuple(int(i.rsplit("_", 1)[1]) for i in g.items) for g in total.groups]
    assert groups == DOMAINS
    assert total.range == (0, 27)  # 9 domains x 3 = 27
    assert all(i.min == 0 and i.max == 3 and i.step == 1 for i in d.items)


def test_hand_worked_total():
    #       sleep 1-4     sad  appetite/weight 6-9  conc self suic int energy psychomotor 15-16
    row = [1, 2, 0, 0,    2,   0, 1, 0, 3,          1,   2,   0,   1,  2,     1, 2]
    out = score(ID, frame(row))
    # sleep = max(1,2,0,0) = 2; sad mood = 2; appetite/weight = max(0,1,0,3) = 3;
    # concentration = 1; self-view = 2; suicidal ideation = 0; interest = 1; energy = 2;
    # psychomotor = max(1,2) = 2
    # total = 2 + 2 + 3 + 1 + 2 + 0 + 1 + 2 + 2 = 15
    assert out.loc[0, "total"] == 15
    assert out.loc[0, "total_band"] == "moderate"  # 11 <= 15 < 16
    assert bool(out.loc[0, "suicidality"]) is False  # item 12 = 0


def test_all_items_at_maximum_give_27():
    out = score(ID, frame([3] * 16))
    # 9 domains x 3 = 27 (not 16 x 3 = 48: each domain counts once)
    assert out.loc[0, "total"] == 27
    assert out.loc[0, "total_band"] == "very severe"


def test_no_reverse_keyed_items_and_raising_an_item_never_lowers_the_total():
    assert not any(item.reverse for item in get(ID).items)
    base = [0] * 16
    for j in range(16):
        row = list(base)
        row[j] = 2
        # all other items 0, so this item is its domain's maximum: total = 0 + 2 = 2
        assert score(ID, frame(base, row))["total"].tolist() == [0, 2]


def test_raising_an_item_below_its_domain_maximum_leaves_the_total():
    row = [3, 1, 0, 0] + [0] * 12  # sleep = max(3,1,0,0) = 3, all else 0: total 3
    raised = [3, 2, 0, 0] + [0] * 12  # sleep = max(3,2,0,0) = 3: total still 3
    assert score(ID, frame(row, raised))["total"].tolist() == [3, 3]


def test_missing_items_within_a_domain_use_the_answered_ones():
    # The form asks for only one of the appetite items (6/7) and one of the weight items (8/9);
    # sleep answered only on item 1.
    row = [2, None, None, None, 1, None, 2, 1, None, 1, 1, 1, 1, 1, 0, 1]
    out = score(ID, frame(row))
    # sleep = max(2) = 2; sad = 1; appetite/weight = max(2, 1) = 2; conc 1; self 1; suic 1;
    # interest 1; energy 1; psychomotor = max(0,1) = 1
    # total = 2 + 1 + 2 + 1 + 1 + 1 + 1 + 1 + 1 = 11
    assert out.loc[0, "total"] == 11
    assert out.loc[0, "total_band"] == "moderate"


def test_a_wholly_missing_domain_makes_the_total_missing():
    # at the limit: every domain has at least one answer -> scored (total 9 x 1 = 9)
    at_limit = [1, None, None, None, 1, 1, None, None, None, 1, 1, 1, 1, 1, None, 1]
    # beyond it: the whole sleep domain (items 1-4) is blank -> missing, never scored as 0
    beyond = [None, None, None, None, 1, 1, None, None, None, 1, 1, 1, 1, 1, 1, 1]
    single_item_domain_blank = [1, 1, 1, 1, None, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]  # item 5
    out = score(ID, frame(at_limit, beyond, single_item_domain_blank))
    assert out.loc[0, "total"] == 9
    assert math.isnan(out.loc[1, "total"])
    assert math.isnan(out.loc[2, "total"])
    assert pd.isna(out.loc[1, "total_band"])


def test_out_of_range_answer_names_row_column_value_and_range():
    bad = [0] * 16
    bad[11] = 4
    with pytest.raises(ScoringError) as err:
        score(ID, frame([0] * 16, [0] * 16, bad))
    message = str(err.value)
    assert "row 3" in message
    assert "'qids_sr16_12'" in message
    assert "value 4" in message
    assert "0–3" in message
    assert (err.value.problems[0].row, err.value.problems[0].value) == (3, 4)


def test_negative_answer_is_refused():
    bad = [0] * 16
    bad[0] = -1
    with pytest.raises(ScoringError, match=r"row 1, column 'qids_sr16_1': value -1 is out of range"):
        score(ID, frame(bad))


def test_non_numeric_answer_is_refused():
    bad = [0] * 16
    bad[4] = "sad"
    with pytest.raises(ScoringError) as err:
        score(ID, frame(bad))
    assert "'qids_sr16_5'" in str(err.value) and "not a number" in str(err.value)


def test_unknown_item_column_is_refused():
    data = frame([0] * 16)
    data["qids_sr16_17"] = 1
    with pytest.raises(ScoringError, match="qids_sr16_17"):
        score(ID, data)


def _with_total(total: int) -> list[int]:
    """Single-item domains first (items 5, 10-14), then the grouped ones, each up to 3."""
    row, left = [0] * 16, total
    for n in (5, 10, 11, 12, 13, 14, 1, 6, 15):
        take = min(3, left)
        row[n - 1] = take
        left -= take
    assert left == 0
    return row


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "none"), (5, "none"),            # 0-5
        (6, "mild"), (10, "mild"),           # 6-10
        (11, "moderate"), (15, "moderate"),  # 11-15
        (16, "severe"), (20, "severe"),      # 16-20
        (21, "very severe"), (27, "very severe"),  # 21-27
    ],
)
def test_band_edges(total, band):
    row = _with_total(total)
    assert hand_total(row) == total
    out = score(ID, frame(row))
    assert out.loc[0, "total"] == total
    assert out.loc[0, "total_band"] == band


@pytest.mark.parametrize(("item12", "flag"), [(0, False), (1, True), (3, True)])
def test_suicidality_flag_edges(item12, flag):
    row = [0] * 16
    row[11] = item12
    assert bool(score(ID, frame(row)).loc[0, "suicidality"]) is flag


def test_suicidality_flag_missing_when_item_12_unanswered():
    row = [0] * 16
    row[11] = None
    out = score(ID, frame(row))
    assert pd.isna(out.loc[0, "suicidality"])
    assert math.isnan(out.loc[0, "total"])  # item 12 is a one-item domain


answers = st.lists(st.integers(0, 3), min_size=16, max_size=16)


@settings(max_examples=60, deadline=None)
@given(row=answers)
def test_complete_total_follows_the_key_within_range(row):
    total = score(ID, frame(row)).loc[0, "total"]
    assert total == hand_total(row)
    assert 0 <= total <= 27


@settings(max_examples=60, deadline=None)
@given(row=answers, j=st.integers(0, 15))
def test_raising_any_item_never_lowers_the_total(row, j):
    raised = list(row)
    raised[j] = min(3, raised[j] + 1)
    totals = score(ID, frame(row, raised))["total"].tolist()
    assert totals[1] >= totals[0]


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=16, max_size=16),
                     min_size=1, max_size=5))
def test_scoring_is_row_independent(rows):
    together = score(ID, frame(*rows))
    one_by_one = pd.concat([score(ID, frame(r)) for r in rows], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
