"""Every instrument of the bank against its worked examples in ``vectors/<instrument>.yaml``.

Each vectors file holds the published key's facts (``definition``), item answers with the scores
they must give (``examples``, each with the hand-worked arithmetic in ``why``), answers that must be
refused (``errors``) and, for instruments with outcome rules, response/remission examples; the
schema is in ``vectors/README.md``. Every file is run by the tests below, with ids
``<instrument>-<example name>``; a bank instrument without a file, or a file naming an instrument
the bank does not have, fails.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from alliance.instruments import ScoringError, get, list_instruments, remission, response, score
from tests.instruments.conftest import (
    VECTORS,
    VECTORS_DIRECTORY,
    assert_expected,
    assert_value,
    frame,
    item_ids,
    scale_numbers,
)

IDS = sorted(VECTORS)

TOP_KEYS = {"instrument", "source", "definition", "examples", "errors", "each_item", "outcome_examples"}
DEFINITION_KEYS = {"rater", "items", "item_range", "item_max", "reverse_keyed", "wording_included",
                   "item_text", "instructions", "anchors", "anchors_include", "scales", "partitions",
                   "criteria", "flags", "outcomes"}
SCALE_KEYS = {"method", "items", "groups", "range", "max_missing", "prorate", "group_requires",
              "percent_of_max", "bands"}
EXAMPLE_KEYS = {"name", "why", "answers", "expect", "columns"}
ERROR_KEYS = {"name", "why", "rows", "extra_columns", "source", "first_row", "message_contains",
              "message_matches", "first_problem", "problem_columns"}
EACH_ITEM_KEYS = {"name", "why", "base", "raised", "expect_base", "expect_raised", "expect_raised_others"}
OUTCOME_KEYS = {
    "response": {"name", "why", "baseline", "current", "expect"},
    "remission": {"name", "why", "score", "expect"},
    "from_answers": {"name", "why", "baseline", "current", "expect"},
}


def _cases(section: str) -> list:
    return [
        pytest.param(instrument_id, case, id=f"{instrument_id}-{case['name']}")
        for instrument_id in IDS
        for case in VECTORS[instrument_id].get(section) or []
    ]


def _outcome_cases(rule: str) -> list:
    return [
        pytest.param(instrument_id, case, id=f"{instrument_id}-{case['name']}")
        for instrument_id in IDS
        for case in (VECTORS[instrument_id].get("outcome_examples") or {}).get(rule) or []
    ]


# --- the vectors files themselves --------------------------------------------------------------


def test_every_instrument_of_the_bank_has_a_vectors_file():
    bank = {instrument.id for instrument in list_instruments()}
    without = sorted(bank - set(VECTORS))
    assert not without, f"no {VECTORS_DIRECTORY.name}/<id>.yaml for the bank's instruments {without}"


@pytest.mark.parametrize("instrument_id", IDS)
def test_vectors_file_names_an_instrument_of_the_bank(instrument_id):
    bank = {instrument.id for instrument in list_instruments()}
    named = VECTORS[instrument_id].get("instrument")
    assert named == instrument_id, f"{instrument_id}.yaml names instrument {named!r}, not its file name"
    assert named in bank, f"{instrument_id}.yaml: the bank has no instrument {named!r} ({sorted(bank)})"


@pytest.mark.parametrize("instrument_id", IDS)
def test_vectors_file_is_well_formed(instrument_id):
    vectors = VECTORS[instrument_id]
    where = f"{instrument_id}.yaml"
    assert set(vectors) <= TOP_KEYS, f"{where}: unknown keys {sorted(set(vectors) - TOP_KEYS)}"
    assert isinstance(vectors.get("source"), str) and vectors["source"].strip(), f"{where}: no source"
    facts = vectors["definition"]
    assert set(facts) <= DEFINITION_KEYS, f"{where}: unknown definition keys {sorted(set(facts) - DEFINITION_KEYS)}"
    n_items = len(item_ids(vectors))
    for scale_id, scale in facts["scales"].items():
        assert set(scale) <= SCALE_KEYS, f"{where}: scale {scale_id}: unknown keys {sorted(set(scale) - SCALE_KEYS)}"
        assert ("items" in scale) != ("groups" in scale), f"{where}: scale {scale_id}: give items or groups"
        assert set(scale_numbers(vectors, scale_id)) <= set(range(1, n_items + 1)), f"{where}: scale {scale_id}"
    assert vectors.get("examples"), f"{where}: no examples"
    names = []
    sections = [("examples", EXAMPLE_KEYS), ("errors", ERROR_KEYS), ("each_item", EACH_ITEM_KEYS)]
    for section, keys in sections:
        for case in vectors.get(section) or []:
            assert set(case) <= keys, f"{where}: {case.get('name')}: unknown keys {sorted(set(case) - keys)}"
            names.append(case["name"])
    for rule, cases in (vectors.get("outcome_examples") or {}).items():
        assert rule in OUTCOME_KEYS, f"{where}: unknown outcome_examples rule {rule!r}"
        for case in cases:
            assert set(case) <= OUTCOME_KEYS[rule], f"{where}: {case.get('name')}: unknown keys"
            names.append(case["name"])
    assert len(names) == len(set(names)), f"{where}: repeated names {sorted(n for n in names if names.count(n) > 1)}"
    everything = [case for section, _ in sections for case in vectors.get(section) or []]
    everything += [case for cases in (vectors.get("outcome_examples") or {}).values() for case in cases]
    for case in everything:
        assert isinstance(case.get("why"), str) and case["why"].strip(), f"{where}: {case['name']}: no why"
    for case in vectors["examples"]:
        assert len(case["answers"]) == n_items, f"{where}: {case['name']}: {len(case['answers'])} answers"
        assert case["expect"], f"{where}: {case['name']}: nothing expected"
    for case in vectors.get("errors") or []:
        assert all(len(row) == n_items for row in case["rows"]), f"{where}: {case['name']}: row length"
        checks = {"message_contains", "message_matches", "first_problem", "problem_columns"}
        assert checks & set(case), f"{where}: {case['name']}: nothing to check"


# --- the definition against the published key --------------------------------------------------


@pytest.mark.parametrize("instrument_id", IDS)
def test_definition_matches_the_published_key(instrument_id):
    vectors = VECTORS[instrument_id]
    facts = vectors["definition"]
    d = get(instrument_id)
    items = item_ids(vectors)

    assert d.rater == facts["rater"]
    assert [i.id for i in d.items] == items
    for key, want in facts["item_range"].items():
        assert all(getattr(i, key) == want for i in d.items), f"item {key}: {[getattr(i, key) for i in d.items]}"
    if "item_max" in facts:
        assert {i.number: i.max for i in d.items} == facts["item_max"]
    assert [i.id for i in d.items if i.reverse] == facts["reverse_keyed"]
    assert d.licence.wording_included is facts["wording_included"]
    if facts["item_text"]:
        assert all(i.text for i in d.items)
    else:
        assert all(i.text is None for i in d.items)
    assert (d.instructions is not None) is facts["instructions"]
    for item_id, anchors in (facts.get("anchors") or {}).items():
        assert d.item(item_id).anchors == anchors
    for item_id, anchors in (facts.get("anchors_include") or {}).items():
        assert {k: d.item(item_id).anchors.get(k) for k in anchors} == anchors

    assert [s.id for s in d.scales] == list(facts["scales"])
    for scale_id, want in facts["scales"].items():
        s = d.scale(scale_id)
        what = f"scale {scale_id}"
        assert s.method == want["method"], what
        assert s.items == tuple(items[n - 1] for n in scale_numbers(vectors, scale_id)), what
        if "groups" in want:
            assert [[items.index(i) + 1 for i in g.items] for g in s.groups] == want["groups"], what
        assert s.range == tuple(want["range"]), what
        assert s.missing.max_missing == want["max_missing"], what
        if "prorate" in want:
            assert s.missing.prorate is want["prorate"], what
        if "group_requires" in want:
            assert s.missing.group_requires == want["group_requires"], what
        assert s.percent_of_max is want["percent_of_max"], what
        assert [[b.min, b.label] for b in s.bands] == want["bands"], what
    for whole, parts in (facts.get("partitions") or {}).items():
        numbers = sorted(n for part in parts for n in scale_numbers(vectors, part))
        assert numbers == sorted(scale_numbers(vectors, whole)), f"{parts} do not partition {whole}"

    assert {c.id: [{k: v for k, v in (("scale", cond.scale), ("percent_at_least", cond.percent_at_least),
                                      ("at_least", cond.at_least)) if v is not None}
                   for cond in c.all_of]
            for c in d.criteria} == {cid: c["all_of"] for cid, c in facts["criteria"].items()}
    assert {f.id: ({"scale": f.scale} if f.scale is not None else {"item": items.index(f.item) + 1})
            | {"at_least": f.at_least} for f in d.flags} == facts["flags"]
    assert {name: {k: v for k, v in (("scale", rule.scale),
                                     ("reduction_from_baseline_percent", rule.reduction_from_baseline_percent),
                                     ("at_most", rule.at_most)) if v is not None}
            for name, rule in d.outcomes.items()} == facts["outcomes"]


# --- worked examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(("instrument_id", "case"), _cases("examples"))
def test_worked_example(instrument_id, case):
    out = score(instrument_id, frame(VECTORS[instrument_id], [case["answers"]]))
    if "columns" in case:
        assert list(out.columns) == case["columns"]
    assert_expected(out.iloc[0], case["expect"], f"{case['name']} ({case['why']})")


@pytest.mark.parametrize("instrument_id", IDS)
def test_worked_examples_scored_together(instrument_id):
    # the same expected values when every example is one row of a single data frame
    cases = VECTORS[instrument_id]["examples"]
    out = score(instrument_id, frame(VECTORS[instrument_id], [case["answers"] for case in cases]))
    for k, case in enumerate(cases):
        assert_expected(out.iloc[k], case["expect"], f"row {k + 1}, {case['name']}")


@pytest.mark.parametrize(("instrument_id", "case"), _cases("errors"))
def test_refused_answers(instrument_id, case):
    data = frame(VECTORS[instrument_id], case["rows"], case.get("extra_columns"))
    options = {key: case[key] for key in ("source", "first_row") if key in case}
    with pytest.raises(ScoringError) as err:
        score(instrument_id, data, **options)
    message = str(err.value)
    for part in case.get("message_contains") or []:
        assert part in message, f"{part!r} not in the message:\n{message}"
    if "message_matches" in case:
        assert re.search(case["message_matches"], message), f"{case['message_matches']!r} does not match:\n{message}"
    for field, want in (case.get("first_problem") or {}).items():
        assert getattr(err.value.problems[0], field) == want, f"problems[0].{field}: {err.value.problems[0]}"
    if "problem_columns" in case:
        assert {p.column for p in err.value.problems} == set(case["problem_columns"])


# --- response and remission --------------------------------------------------------------------


def _series(*values) -> pd.Series:
    return pd.Series([np.nan if v is None else v for v in values], dtype=float)


@pytest.mark.parametrize(("instrument_id", "case"), _outcome_cases("response"))
def test_response_example(instrument_id, case):
    got = response(_series(case["baseline"]), _series(case["current"]), instrument_id)
    assert_value(got.iloc[0], case["expect"], "response", case["name"])


@pytest.mark.parametrize(("instrument_id", "case"), _outcome_cases("remission"))
def test_remission_example(instrument_id, case):
    got = remission(_series(case["score"]), instrument_id)
    assert_value(got.iloc[0], case["expect"], "remission", case["name"])


@pytest.mark.parametrize("instrument_id", [i for i in IDS if VECTORS[i].get("outcome_examples")])
def test_outcome_examples_on_many_rows_at_once(instrument_id):
    examples = VECTORS[instrument_id]["outcome_examples"]
    if examples.get("response"):
        cases = examples["response"]
        got = response(_series(*[c["baseline"] for c in cases]), _series(*[c["current"] for c in cases]),
                       instrument_id)
        for k, case in enumerate(cases):
            assert_value(got.iloc[k], case["expect"], "response", case["name"])
    if examples.get("remission"):
        cases = examples["remission"]
        got = remission(_series(*[c["score"] for c in cases]), instrument_id)
        for k, case in enumerate(cases):
            assert_value(got.iloc[k], case["expect"], "remission", case["name"])


@pytest.mark.parametrize(("instrument_id", "case"), _outcome_cases("from_answers"))
def test_outcome_from_scored_answers(instrument_id, case):
    vectors = VECTORS[instrument_id]
    scale = {rule["scale"] for rule in vectors["definition"]["outcomes"].values()}
    assert len(scale) == 1, "from_answers examples need one outcome scale"
    column = scale.pop()
    baseline = score(instrument_id, frame(vectors, [case["baseline"]]))[column]
    current = score(instrument_id, frame(vectors, [case["current"]]))[column]
    got = {"response": response(baseline, current, instrument_id).iloc[0],
           "remission": remission(current, instrument_id).iloc[0]}
    for rule, want in case["expect"].items():
        assert_value(got[rule], want, rule, case["name"])
