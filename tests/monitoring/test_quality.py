"""Data-quality rules (alliance.monitoring.quality): each built-in rule at its edge, custom rules, order.

Every rule is tried on a case that fires and on the neighbouring case that does not. The studies are
built by hand in the default (Levin 2024) protocol: WAI-SR answers 3 (total 36, far from its 12-60
ends), GRID-HAMD answers 1 on every item (total 17: the entry criterion of the protocol's own rule,
not below it, and not 0 or 52), so that only the rule under test fires.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from alliance import instruments as bank
from alliance.monitoring import quality
from alliance.monitoring.quality import COLUMNS, RULES, check_quality, straight_lined
from alliance.protocol import default_protocol, parse_protocol
from alliance.study import Study

ENROLLED = "2026-01-05"


def _participant(pid: str = "P1", **columns) -> dict:
    return {"participant_id": pid, "arm": "immediate", "enrolled_on": ENROLLED, "facilitator_ids": "F1;F2",
            "age": 40, **columns}


def _form(pid: str, timepoint: str, instrument: str, answers=None, missing=(), when: str | None = None) -> list:
    """Rows of one administration: every item answered ``answers`` (a number or a list), ``missing`` left out."""
    inst = bank.get(instrument)
    values = answers if isinstance(answers, list) else [answers] * len(inst.items)
    return [(pid, timepoint, instrument, item.id, float(value), None, when)
            for item, value in zip(inst.items, values, strict=True) if item.id not in missing]


def _study(participants: list[dict], rows: list, dosing: list | None = None, protocol=None) -> Study:
    responses = pd.DataFrame(rows, columns=["participant_id", "timepoint", "instrument", "item", "value", "rater",
                                            "administered_at"])
    frame = None if dosing is None else pd.DataFrame(dosing, columns=["participant_id", "session", "date",
                                                                       "compound", "amount", "unit"])
    return Study(protocol or default_protocol(), pd.DataFrame(participants), responses, frame)


def _rules(study: Study) -> list[tuple[str, str]]:
    return [(f.rule, f.participant_id) for f in check_quality(study).findings]


def _clean_forms(pid: str = "P1") -> list:
    return _form(pid, "baseline", "grid_hamd17", 1) + _form(pid, "prep", "wai_sr", 3)


def test_a_clean_study_has_no_findings():
    report = check_quality(_study([_participant()], _clean_forms()))
    assert report.findings == ()
    assert report.rules[:len(RULES)] == tuple(RULES) and report.rules[-1] == "baseline_below_entry"
    assert set(report.counts.values()) == {0} and not report.has_errors


# -- missing required values -----------------------------------------------------------------------

@pytest.mark.parametrize(("arm", "fires"), [(None, True), ("", True), ("immediate", False)])
def test_missing_arm(arm, fires):
    # Study() does not validate: the contract would refuse the missing arm on load.
    assert (("missing_arm", "P1") in _rules(_study([_participant(arm=arm)], _clean_forms()))) is fires


@pytest.mark.parametrize(("enrolled", "fires"), [(None, True), (ENROLLED, False)])
def test_missing_enrolment_date(enrolled, fires):
    assert (("missing_enrolment_date", "P1") in _rules(_study([_participant(enrolled_on=enrolled)],
                                                              _clean_forms()))) is fires


def test_missing_enrolment_date_when_the_column_is_left_out():
    person = _participant()
    del person["enrolled_on"]
    assert _rules(_study([person], _clean_forms())) == [("missing_enrolment_date", "P1")]


@pytest.mark.parametrize(("facilitators", "fires"), [(None, True), (";", True), ("F1", False)])
def test_missing_facilitator(facilitators, fires):
    assert (("missing_facilitator", "P1") in _rules(_study([_participant(facilitator_ids=facilitators)],
                                                           _clean_forms()))) is fires


# -- forms ------------------------------------------------------------------------------------------

def test_unanswered_items_still_scored():
    # WAI-SR: the total allows 2 missing items, each subscale 1 (wai_sr.yaml). wai_sr_1 (task) and
    # wai_sr_3 (bond): one per subscale, so every scale is still scored.
    study = _study([_participant()], _form("P1", "baseline", "grid_hamd17", 1)
                   + _form("P1", "prep", "wai_sr", 3, missing=("wai_sr_1", "wai_sr_3")))
    (finding,) = check_quality(study).findings
    assert (finding.rule, finding.severity, finding.timepoint, finding.instrument, finding.field, finding.value) == (
        "unanswered_items", "warning", "prep", "wai_sr", "wai_sr_1, wai_sr_3", "10 of 12 answered")
    assert "2 of 12 items unanswered" in finding.message


def test_incomplete_form_when_a_scale_cannot_be_scored():
    # wai_sr_1 and wai_sr_2 are both task items: 2 missing where the task subscale allows 1.
    study = _study([_participant()], _form("P1", "baseline", "grid_hamd17", 1)
                   + _form("P1", "prep", "wai_sr", 3, missing=("wai_sr_1", "wai_sr_2")))
    (finding,) = check_quality(study).findings
    assert (finding.rule, finding.severity, finding.field) == ("incomplete_form", "error", "wai_sr_1, wai_sr_2")
    assert "allows at most 1 item missing" in finding.message and "Task" in finding.message


@pytest.mark.parametrize(("missing", "rule"), [((), None), (("grid_hamd17_9",), "incomplete_form")])
def test_incomplete_clinician_rating(missing, rule):
    # GRID-HAMD: no item may be missing (grid_hamd17.yaml), so one unrated item leaves no total.
    study = _study([_participant()], _form("P1", "baseline", "grid_hamd17", 1, missing=missing)
                   + _form("P1", "prep", "wai_sr", 3))
    assert [f.rule for f in check_quality(study).findings] == ([rule] if rule else [])
    if rule:
        assert "needs every item answered" in check_quality(study).findings[0].message


@pytest.mark.parametrize(("answers", "rule"), [
    (0, "score_at_floor"),                          # 17 × 0 = 0, the lowest of 0-52
    ([1] + [0] * 16, None),                         # 1: one point above the floor
    ([4, 4, 4, 2, 2, 2, 4, 4, 4, 4, 4, 2, 2, 2, 4, 2, 2], "score_at_ceiling"),   # 9 × 4 + 8 × 2 = 52
    ([3, 4, 4, 2, 2, 2, 4, 4, 4, 4, 4, 2, 2, 2, 4, 2, 2], None),   # 51, one below the ceiling
])
def test_scores_at_the_floor_and_the_ceiling(answers, rule):
    # at week 1 (the protocol's own rule is about baseline only). Items 4-6, 12-14, 16, 17 are 0-2,
    # the other 9 are 0-4: ceiling 9 × 4 + 8 × 2 = 52.
    study = _study([_participant()], _clean_forms() + _form("P1", "week1", "grid_hamd17", answers))
    found = [(f.rule, f.severity, f.timepoint, f.field, f.value) for f in check_quality(study).findings]
    expected = {"score_at_floor": "0", "score_at_ceiling": "52"}
    assert found == ([(rule, "info", "week1", "total", expected[rule])] if rule else [])


def _reversed_wai_sr():
    """WAI-SR with items 1-3 reverse-keyed (no bank instrument has reverse-keyed items)."""
    wai = bank.get("wai_sr")
    items = tuple(dataclasses.replace(item, reverse=item.number <= 3) for item in wai.items)
    return dataclasses.replace(wai, items=items)


@pytest.mark.parametrize(("answers", "lined"), [
    ([5] * 12, True),              # the same answer, reverse-keyed items included
    ([5] * 11 + [4], False),       # one answer differs
    ([3] * 12, False),             # the midpoint of 1-5: the same reversed, a consistent neutral answer
    ([5] * 11 + [np.nan], False),  # not every item answered
])
def test_straight_lining_needs_reverse_keyed_items(answers, lined):
    values = np.array([answers], dtype=float)
    assert straight_lined(_reversed_wai_sr(), values).tolist() == [lined]
    # the bank's WAI-SR has no reverse-keyed item: identical answers are not inconsistent there
    assert straight_lined(bank.get("wai_sr"), values).tolist() == [False]


def test_straight_lining_is_found_by_check_quality(monkeypatch):
    reversed_wai = _reversed_wai_sr()
    monkeypatch.setattr(quality.bank, "get", lambda i: reversed_wai if i == "wai_sr" else bank._bank()[i])
    study = _study([_participant()], _form("P1", "baseline", "grid_hamd17", 1) + _form("P1", "prep", "wai_sr", 4))
    (finding,) = check_quality(study).findings
    assert (finding.rule, finding.severity, finding.value) == ("straight_lining", "warning", "4")
    assert "wai_sr_1, wai_sr_2, wai_sr_3 are worded the other way round" in finding.message


# -- covariates at the edge ---------------------------------------------------------------------------

@pytest.mark.parametrize(("age", "fires"), [(17, True), (18, False), (100, False), (101, True), ("n/a", False)])
def test_age_at_the_edge(age, fires):
    findings = check_quality(_study([_participant(age=age)], _clean_forms())).findings
    assert [f.rule for f in findings] == (["age_at_edge"] if fires else [])
    if fires:
        assert findings[0].value == str(age) and "0–130" in findings[0].message


@pytest.mark.parametrize(("amount", "fires"), [(0, True), (0.5, False), (999, False), (1000, True)])
def test_dose_at_the_edge(amount, fires):
    dosing = [("P1", 1, "2026-01-27", "psilocybin", amount, "mg/70kg")]
    findings = check_quality(_study([_participant()], _clean_forms(), dosing)).findings
    assert [(f.rule, f.timepoint, f.field) for f in findings] == ([("dose_at_edge", "session1", "amount")]
                                                                  if fires else [])
    if fires:
        assert "the protocol plans 20 mg/70kg psilocybin (session 1)" in findings[0].message


# -- off schedule (find_deviations) -------------------------------------------------------------------

@pytest.mark.parametrize(("day", "fires"), [("2026-01-19", False), ("2026-01-20", True)])
def test_out_of_window(day, fires):
    # baseline: enrolment + 0 days, window [0, 14] → 2026-01-05 to 2026-01-19 (levin2024.yaml)
    study = _study([_participant()], _form("P1", "baseline", "grid_hamd17", 1, when=day) + _form("P1", "prep", "wai_sr", 3))
    findings = check_quality(study).findings
    assert [f.rule for f in findings] == (["out_of_window"] if fires else [])
    if fires:
        (finding,) = findings
        assert (finding.severity, finding.value, finding.dated) == ("warning", "2026-01-20", True)
        assert "2026-01-20" in finding.message and "the analysis keeps it" in finding.message
        hidden = finding.deidentified()
        assert hidden.value is None and "2026" not in hidden.message
        assert hidden.message.startswith("given 1 day after its window closed")


@pytest.mark.parametrize(("day", "fires"), [("2026-01-26", False), ("2026-01-28", True)])
def test_after_dosing(day, fires):
    dosing = [("P1", 1, "2026-01-27", "psilocybin", 20, "mg/70kg")]
    study = _study([_participant()], _form("P1", "baseline", "grid_hamd17", 1)
                   + _form("P1", "prep", "wai_sr", 3, when=day), dosing)
    rules = [(f.rule, f.severity) for f in check_quality(study).findings]
    assert (("after_dosing", "error") in rules) is fires
    if fires:
        finding = next(f for f in check_quality(study).findings if f.rule == "after_dosing")
        assert "the analysis excludes it" in finding.message
        assert "2026" not in finding.deidentified().message


def test_deviations_are_the_ones_find_deviations_gives(monkeypatch):
    calls = []

    def fake(protocol, participants, responses, dosing):
        calls.append(len(responses))
        return []

    monkeypatch.setattr(quality, "find_deviations", fake)
    study = _study([_participant()], _form("P1", "baseline", "grid_hamd17", 1, when="2027-01-01")
                   + _form("P1", "prep", "wai_sr", 3))
    assert check_quality(study).findings == () and calls == [29]


# -- the protocol's rules --------------------------------------------------------------------------------

@pytest.mark.parametrize(("answers", "fires"), [([1] * 16 + [0], True), (1, False)])
def test_the_default_protocols_entry_criterion(answers, fires):
    # 16 × 1 + 0 = 16 < 17 fires; 17 × 1 = 17 does not
    study = _study([_participant()], _form("P1", "baseline", "grid_hamd17", answers) + _form("P1", "prep", "wai_sr", 3))
    findings = check_quality(study).findings
    assert [(f.rule, f.severity, f.timepoint, f.instrument, f.field) for f in findings] == (
        [("baseline_below_entry", "error", "baseline", "grid_hamd17", "total")] if fires else [])
    if fires:
        assert findings[0].value == "16" and "Found 16" in findings[0].message
        assert "grid_hamd17.total@baseline < 17" in findings[0].message


def _protocol_with(*rules):
    raw = default_protocol().to_dict()
    raw["quality"] = {"rules": list(rules)}
    return parse_protocol(raw)


def test_a_measure_rule_without_a_timepoint_checks_every_timepoint_and_missing():
    protocol = _protocol_with({"id": "low_alliance_score", "measure": "wai_sr.total", "comparison": "<=",
                               "value": 36, "severity": "warning", "message": "low alliance"},
                              {"id": "no_baseline", "measure": "grid_hamd17.total@baseline",
                               "comparison": "missing", "severity": "error", "message": "no baseline rating"})
    rows = _form("P1", "prep", "wai_sr", 3) + _form("P1", "week1", "wai_sr", 4)   # totals 36 and 48
    findings = check_quality(_study([_participant()], rows, protocol=protocol)).findings
    assert [(f.rule, f.timepoint, f.value) for f in findings] == [
        ("no_baseline", "baseline", None), ("low_alliance_score", "prep", "36")]
    assert findings[0].message == ("no baseline rating. No value; the rule flags grid_hamd17.total@baseline "
                                   "missing.")


def test_a_column_rule_and_a_column_the_study_does_not_have():
    protocol = _protocol_with({"id": "young", "column": "age", "comparison": "<", "value": 21,
                               "message": "younger than the trial enrols"},
                              {"id": "weight", "column": "weight_kg", "comparison": ">", "value": 150,
                               "message": "check the weight"})
    people = [_participant("P1", age=20), _participant("P2", age=21), _participant("P3", age="unknown")]
    report = check_quality(_study(people, _clean_forms("P1") + _clean_forms("P2") + _clean_forms("P3"),
                                  protocol=protocol))
    assert [(f.rule, f.participant_id, f.severity) for f in report.findings] == [("young", "P1", "warning")]
    assert report.not_checked == (
        "young: 1 value(s) of column 'age' are not numbers and were not compared",
        "weight: the participants table has no column 'weight_kg', so the rule was not checked")


# -- the report -------------------------------------------------------------------------------------------

def test_findings_sorted_by_severity_participant_and_timepoint():
    people = [_participant("P2", facilitator_ids=None), _participant("P1", age=17)]
    rows = (_form("P2", "baseline", "grid_hamd17", 1, missing=("grid_hamd17_2",)) + _form("P2", "prep", "wai_sr", 3)
            + _form("P1", "baseline", "grid_hamd17", 1) + _form("P1", "prep", "wai_sr", 3, missing=("wai_sr_5",))
            + _form("P1", "week1", "grid_hamd17", 0))
    report = check_quality(_study(people, rows))
    assert [(f.severity, f.participant_id, f.timepoint, f.rule) for f in report.findings] == [
        ("error", "P2", "baseline", "incomplete_form"),
        ("warning", "P2", None, "missing_facilitator"),     # participants table order: P2 before P1
        ("warning", "P1", None, "age_at_edge"),
        ("warning", "P1", "prep", "unanswered_items"),
        ("info", "P1", "week1", "score_at_floor"),
    ]
    assert report.has_errors and report.severity_counts == {"error": 1, "warning": 3, "info": 1}
    assert report.counts["missing_facilitator"] == 1 and report.counts["out_of_window"] == 0
    assert [f.rule for f in report.filtered(severity="warning", rule="age_at_edge").findings] == ["age_at_edge"]
    frame = report.to_frame()
    assert tuple(frame.columns) == COLUMNS and len(frame) == 5
    plain = report.to_dict()
    assert plain["findings"][0]["rule"] == "incomplete_form" and plain["severity_counts"]["error"] == 1


def test_every_rule_cites_its_source():
    for info in RULES.values():
        assert info.severity in ("error", "warning", "info") and info.title and info.source
