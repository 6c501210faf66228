"""Properties of every instrument's scores that no single worked example shows.

Parametrised by instrument: the published key each property is checked against is read from the
instrument's ``vectors/<id>.yaml`` (``definition``: items, ranges, scales, missing-item rules,
criteria, flags), written out there independently of the bank's YAML, and scored here by
:func:`reference_scores`, a plain per-row reading of that key. ``test_vectors.py`` checks that the
bank's definition matches the same facts.

- complete answers score as the key says, within each scale's range (and a partition's parts add
  up to the whole);
- any pattern of missing answers follows the scale's missing-item rule (never scoring a blank as 0);
- scoring several rows at once equals scoring them one by one;
- every item in turn (``each_item`` in the vectors file): no item is reverse-keyed, each counts in
  its own scales only;
- the worked examples of ``test_vectors.py`` agree with the key as written in the vectors file;
- QIDS-SR16 only: raising an item never lowers the total (an item below its domain's maximum does
  not count).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.instruments import score
from tests.instruments.conftest import (
    ABS,
    REL,
    VECTORS,
    assert_expected,
    assert_value,
    frame,
    item_bounds,
    item_ids,
    scale_numbers,
)

IDS = sorted(VECTORS)
NAN = float("nan")


# --- the key, read from the vectors file -------------------------------------------------------


def reference_scores(vectors: dict, row: list) -> dict[str, object]:
    """Every output of one administration, computed from the key in the vectors file.

    Scale scores (NaN where the missing-item rule is not met), ``<scale>_pct``, ``<scale>_band``
    (None when missing), criteria and flags (True/False, None when missing).
    """
    facts = vectors["definition"]
    items = item_ids(vectors)
    keyed = {}
    for number, answer in enumerate(row, start=1):
        low, high, _ = item_bounds(vectors, number)
        reverse = items[number - 1] in facts["reverse_keyed"]
        keyed[number] = None if answer is None else (low + high - answer if reverse else answer)
    out: dict[str, object] = {}
    for scale_id, scale in facts["scales"].items():
        if scale["method"] == "highest_endorsed":
            # the last item (1-based position) answered at its maximum, 0 if none; too many blanks -> NaN
            numbers = scale_numbers(vectors, scale_id)
            answered = [n for n in numbers if keyed[n] is not None]
            yes = [k for k, n in enumerate(numbers, start=1)
                   if keyed[n] is not None and keyed[n] == item_bounds(vectors, n)[1]]
            missing = len(numbers) - len(answered)
            out[scale_id] = NAN if missing > scale["max_missing"] else (max(yes) if yes else 0)
            continue
        if scale["method"] == "max_of_groups":
            parts = []
            for group in scale["groups"]:
                got = [keyed[n] for n in group if keyed[n] is not None]
                valid = bool(got) if scale["group_requires"] == "any" else len(got) == len(group)
                if valid:
                    parts.append(max(got))
            units, answered, total = len(scale["groups"]), len(parts), sum(parts)
        else:
            got = [keyed[n] for n in scale_numbers(vectors, scale_id) if keyed[n] is not None]
            units, answered, total = len(scale_numbers(vectors, scale_id)), len(got), sum(got)
        if answered == 0 or units - answered > scale["max_missing"]:
            value = NAN
        elif scale["method"] == "mean":
            value = total / answered
        elif scale.get("prorate"):
            value = total * units / answered
        else:
            value = total
        out[scale_id] = value
        low, high = scale["range"]
        if scale["percent_of_max"]:
            out[f"{scale_id}_pct"] = (value - low) / (high - low) * 100
        if scale["bands"]:
            labels = [label for edge, label in scale["bands"] if not math.isnan(value) and value >= edge]
            out[f"{scale_id}_band"] = labels[-1] if labels else None
    for criterion_id, criterion in facts["criteria"].items():
        values = [(out[f"{c['scale']}_pct"], c["percent_at_least"]) if "percent_at_least" in c
                  else (out[c["scale"]], c["at_least"]) for c in criterion["all_of"]]
        unknown = any(math.isnan(v) for v, _ in values)
        out[criterion_id] = None if unknown else all(v >= threshold - 1e-9 for v, threshold in values)
    for flag_id, flag in facts["flags"].items():
        if "scale" in flag:
            value = out[flag["scale"]]
            out[flag_id] = None if math.isnan(value) else value >= flag["at_least"]
            continue
        answer = row[flag["item"] - 1]
        out[flag_id] = None if answer is None else answer >= flag["at_least"]
    return out


def _answers(vectors: dict, number: int, missing: bool) -> st.SearchStrategy:
    low, high, step = item_bounds(vectors, number)
    if step is None:
        answer = st.floats(low, high, allow_nan=False, allow_infinity=False)
    elif step == 1:
        answer = st.integers(int(low), int(high))
    else:
        answer = st.integers(0, round((high - low) / step)).map(lambda k: low + k * step)
    return st.one_of(st.none(), answer) if missing else answer


def rows(vectors: dict, missing: bool) -> st.SearchStrategy:
    """One administration in published item order; with ``missing``, any answer may be None."""
    n_items = len(item_ids(vectors))
    return st.tuples(*[_answers(vectors, n, missing) for n in range(1, n_items + 1)]).map(list)


def numeric_frame(vectors: dict, administrations: list[list]) -> pd.DataFrame:
    """Like ``frame``, but every item column float with NaN for a missing answer."""
    values = [[np.nan if answer is None else answer for answer in row] for row in administrations]
    return pd.DataFrame(values, columns=item_ids(vectors), dtype=float)


def _assert_follows_the_key(instrument_id: str, row: list, out: pd.Series) -> None:
    vectors = VECTORS[instrument_id]
    for column, want in reference_scores(vectors, row).items():
        got = out[column]
        if isinstance(want, float) and math.isnan(want):
            assert pd.isna(got), f"{column}: expected missing for {row}, got {got}"
        elif isinstance(want, float):
            assert got == pytest.approx(want, rel=REL, abs=ABS), f"{column} for {row}"
        else:
            assert_value(got, want, column, f"answers {row}")
    for scale_id, scale in vectors["definition"]["scales"].items():
        if not pd.isna(out[scale_id]):
            low, high = scale["range"]
            assert low - ABS <= out[scale_id] <= high + ABS, f"{scale_id} = {out[scale_id]} outside {scale['range']}"


# --- properties --------------------------------------------------------------------------------


@pytest.mark.parametrize("instrument_id", IDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_complete_answers_follow_the_key_within_range(instrument_id, data):
    vectors = VECTORS[instrument_id]
    row = data.draw(rows(vectors, missing=False), label="answers")
    out = score(instrument_id, frame(vectors, [row])).iloc[0]
    _assert_follows_the_key(instrument_id, row, out)
    scales = vectors["definition"]["scales"]
    for whole, parts in (vectors["definition"].get("partitions") or {}).items():
        if all(scales[s]["method"] == "sum" for s in [whole, *parts]):
            # complete answers: the parts add up to the whole
            assert sum(out[p] for p in parts) == pytest.approx(out[whole], rel=REL, abs=ABS)


@pytest.mark.parametrize("instrument_id", IDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_missing_rule_holds_for_any_pattern(instrument_id, data):
    # Several administrations at once, missing answers as NaN in float columns (as read from a CSV
    # file). Missing answers as None in object columns, one administration at a time, are checked
    # against the key by test_scoring_is_row_independent.
    vectors = VECTORS[instrument_id]
    administrations = data.draw(st.lists(rows(vectors, missing=True), min_size=1, max_size=5), label="rows")
    out = score(instrument_id, numeric_frame(vectors, administrations))
    for k, row in enumerate(administrations):
        _assert_follows_the_key(instrument_id, row, out.iloc[k])


@pytest.mark.parametrize("instrument_id", IDS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_scoring_is_row_independent(instrument_id, data):
    vectors = VECTORS[instrument_id]
    administrations = data.draw(st.lists(rows(vectors, missing=True), min_size=1, max_size=5), label="rows")
    together = score(instrument_id, frame(vectors, administrations))
    one_by_one = pd.concat([score(instrument_id, frame(vectors, [r])) for r in administrations],
                           ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
    for k, row in enumerate(administrations):
        _assert_follows_the_key(instrument_id, row, together.iloc[k])


EACH_ITEM = [
    pytest.param(instrument_id, spec, id=f"{instrument_id}-{spec['name']}")
    for instrument_id in IDS
    for spec in VECTORS[instrument_id].get("each_item") or []
]


def _scale_of(column: str) -> str:
    return column.removesuffix("_pct").removesuffix("_band")


@pytest.mark.parametrize(("instrument_id", "spec"), EACH_ITEM)
def test_each_item_in_turn(instrument_id, spec):
    vectors = VECTORS[instrument_id]
    n_items = len(item_ids(vectors))
    base = [spec["base"]] * n_items
    raised = [[spec["raised"] if k == j else spec["base"] for k in range(n_items)] for j in range(n_items)]
    out = score(instrument_id, frame(vectors, [base, *raised]))
    assert_expected(out.iloc[0], spec.get("expect_base") or {}, f"{spec['name']}, every item at {spec['base']}")
    for number in range(1, n_items + 1):
        holding = {s for s in vectors["definition"]["scales"] if number in scale_numbers(vectors, s)}
        expect = {c: w for c, w in (spec.get("expect_raised") or {}).items() if _scale_of(c) in holding}
        expect |= {c: w for c, w in (spec.get("expect_raised_others") or {}).items() if _scale_of(c) not in holding}
        assert expect, f"{spec['name']}: nothing expected when item {number} is raised"
        assert_expected(out.iloc[number], expect, f"{spec['name']}, item {number} at {spec['raised']}")


def _as_number(answer):
    if isinstance(answer, str):
        return float(answer.strip())
    return answer


@pytest.mark.parametrize("instrument_id", IDS)
def test_worked_examples_agree_with_the_key(instrument_id):
    # the expected values of vectors/<id>.yaml follow from its own key (e.g. a QIDS-SR16 band-edge
    # row really sums to its total over the nine domains), independently of the engine
    vectors = VECTORS[instrument_id]
    for case in vectors["examples"]:
        want = reference_scores(vectors, [_as_number(a) for a in case["answers"]])
        for column, expected in case["expect"].items():
            assert column in want, f"{case['name']}: the key defines no {column!r}"
            assert_value(want[column], expected, column, f"{case['name']} (by the key)")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_qids_sr16_raising_any_item_never_lowers_the_total(data):
    vectors = VECTORS["qids_sr16"]
    row = data.draw(rows(vectors, missing=False), label="answers")
    j = data.draw(st.integers(0, len(row) - 1), label="item index")
    _, high, _ = item_bounds(vectors, j + 1)
    raised = list(row)
    raised[j] = min(high, raised[j] + 1)
    totals = score("qids_sr16", frame(vectors, [row, raised]))["total"].tolist()
    assert totals[1] >= totals[0]
