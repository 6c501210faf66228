"""Deviations found in the core (issue 12, item 2), each kind at its edges, and the time model.

Dates are worked out by hand from levin2024.yaml: an immediate-arm participant enrolled on
2026-10-01 starts treatment that day; session 1 is planned 21 days later (2026-10-22, window 7
before, 14 after); the final preparation session ("prep", pre-dose) the day before session 1,
window 3 days before and 0 after: 2026-10-18 to 2026-10-21 while session 1 is on time.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from alliance.monitoring.deviations import AdministrationTime, find_deviations, participant_deviations
from alliance.monitoring.schedule import timeline
from alliance.protocol import ProtocolError, default_protocol, parse_protocol

ENROLLED = date(2026, 10, 1)


def kinds(prep_at: str | None, session1: str | None = "2026-10-22", baseline_at: str | None = "2026-10-02",
          protocol=None, enrolled=ENROLLED) -> dict[str, list[str]]:
    administrations = [AdministrationTime("baseline", "grid_hamd17", baseline_at),
                       AdministrationTime("prep", "wai_sr", prep_at)]
    found = participant_deviations(protocol or default_protocol(), "P1", "immediate", enrolled, administrations,
                                   {1: session1} if session1 else {})
    out: dict[str, list[str]] = {}
    for d in found:
        out.setdefault(d.timepoint, []).append(d.kind)
    return out


def test_the_issue_case_a_prep_score_after_the_first_dose_is_after_dosing():
    # Dosing session 1 on 2026-11-10, then prep WAI-SR and baseline GRID-HAMD on 2026-12-01.
    found = kinds("2026-12-01", session1="2026-11-10", baseline_at="2026-12-01")
    assert "after_dosing" in found["prep"] and "after_dosing" in found["baseline"]
    (prep,) = [d for d in participant_deviations(default_protocol(), "P1", "immediate", ENROLLED,
                                                 [AdministrationTime("prep", "wai_sr", "2026-12-01")],
                                                 {1: "2026-11-10"}) if d.kind == "after_dosing"]
    assert prep.reason == "a pre-dose assessment given on 2026-12-01, after Dosing session 1 on 2026-11-10"
    # session 1 given on 11-10 moves prep (anchored to it) to 11-09, window 11-06 to 11-09
    assert (prep.window_open, prep.window_close) == (date(2026, 11, 6), date(2026, 11, 9))


@pytest.mark.parametrize(("prep_at", "after_dosing"), [
    ("2026-10-21", False),                # the day before the dose
    ("2026-10-22", False),                # the dose day, no times: the order is not known
    ("2026-10-22T08:00:00", False),       # the dose day, before the dose (09:00)
    ("2026-10-22T09:30:00", True),        # after the dose
    ("2026-10-23", True),                 # the day after
])
def test_after_dosing_at_its_edges(prep_at, after_dosing):
    session1 = "2026-10-22T09:00:00" if "T" in prep_at else "2026-10-22"
    assert ("after_dosing" in kinds(prep_at, session1=session1).get("prep", [])) == after_dosing


@pytest.mark.parametrize(("prep_at", "outside"), [
    ("2026-10-17", True), ("2026-10-18", False), ("2026-10-21", False), ("2026-10-22", True)])
def test_out_of_window_at_its_edges(prep_at, outside):
    assert ("out_of_window" in kinds(prep_at).get("prep", [])) == outside


@pytest.mark.parametrize(("baseline_at", "prep_at", "out_of_order"), [
    ("2026-10-19", "2026-10-19", False),  # the same day
    ("2026-10-19", "2026-10-18", True),   # the later timepoint a day earlier
    ("2026-10-18", "2026-10-19", False),
])
def test_out_of_order_at_its_edges(baseline_at, prep_at, out_of_order):
    found = kinds(prep_at, baseline_at=baseline_at)
    assert ("out_of_order" in found.get("prep", [])) == out_of_order
    assert "out_of_order" not in found.get("baseline", [])  # the later timepoint is the one reported


def test_undated_only_when_the_protocol_requires_dates():
    assert "undated" not in kinds(None).get("prep", [])
    raw = default_protocol().to_dict()
    raw["deviations"] = {"require_dates": True}
    strict = parse_protocol(raw)
    assert strict.deviations.require_dates and strict.deviations.action("after_dosing") == "exclude"
    assert kinds(None, protocol=strict)["prep"] == ["undated"]


def test_without_an_enrolment_date_only_dosing_anchored_windows_are_known():
    found = participant_deviations(default_protocol(), "P1", "immediate", None,
                                   [AdministrationTime("baseline", "grid_hamd17", "2020-01-01"),
                                    AdministrationTime("prep", "wai_sr", "2026-10-10")], {1: "2026-10-22"})
    assert [(d.timepoint, d.kind) for d in found] == [("prep", "out_of_window")]


def test_find_deviations_reads_the_tidy_tables_and_ignores_participants_without_data():
    participants = pd.DataFrame({"participant_id": ["P1", "P2", "P3"], "arm": ["immediate", "delayed", "immediate"],
                                 "enrolled_on": ["2026-10-01", None, "2026-10-01"]})
    responses = pd.DataFrame({"participant_id": ["P1", "P1", "P2"], "timepoint": ["prep", "prep", "prep"],
                              "instrument": ["wai_sr"] * 3, "item": ["wai_sr_1", "wai_sr_2", "wai_sr_1"],
                              "value": [3.0, 4.0, 2.0], "administered_at": ["2026-12-01", "2026-12-01", "2026-10-01"]})
    dosing = pd.DataFrame({"participant_id": ["P1"], "session": [1], "date": ["2026-11-10"]})
    found = find_deviations(default_protocol(), participants, responses, dosing)
    assert [(d.participant_id, d.kind) for d in found] == [("P1", "after_dosing"), ("P1", "out_of_window")]
    assert found[0].to_dict("exclude")["action"] == "excluded"


def test_the_planned_date_never_changes_when_data_arrive():
    protocol = default_protocol()
    today = date(2026, 12, 5)
    before = timeline(protocol, "immediate", ENROLLED, today)
    after = timeline(protocol, "immediate", ENROLLED, today, done={"prep": date(2026, 12, 1), "baseline": date(2026, 12, 1)},
                     deviations={"prep": ["after dosing"]})
    assert [r["planned"] for r in before] == [r["planned"] for r in after]
    rows = {r["timepoint"]: r for r in after}
    assert rows["prep"]["status"] == "deviation" and rows["prep"]["deviations"] == ["after dosing"]
    assert rows["baseline"]["status"] == "done"
    # a dosing session given late moves what is anchored to it, not its own planned date
    late = {r["timepoint"]: r for r in timeline(protocol, "immediate", ENROLLED, today,
                                                actual={"session1": date(2026, 11, 10)})}
    assert late["session1"]["planned"] == date(2026, 10, 22) and late["prep"]["planned"] == date(2026, 11, 9)


@pytest.mark.parametrize(("timepoint", "phase", "reason"), [
    ("week1", "pre_dose", "ordered after the first dosing session"),
    ("prep", "post_dose", "ordered before the first dosing session"),
    ("prep", "dosing", "does not fit a timepoint of kind 'preparation'"),
    ("session1", "pre_dose", "does not fit a timepoint of kind 'dosing'"),
    ("prep", "before", "is not a phase"),
])
def test_a_phase_that_contradicts_the_timepoints_place_is_refused(timepoint, phase, reason):
    raw = default_protocol().to_dict()
    next(t for t in raw["timepoints"] if t["id"] == timepoint)["phase"] = phase
    with pytest.raises(ProtocolError) as refused:
        parse_protocol(raw, origin="p.yaml")
    (problem,) = refused.value.problems
    assert problem.column.endswith(f"({timepoint}).phase") and reason in problem.reason


def test_phases_are_derived_when_not_declared_and_a_bad_action_is_refused():
    raw = default_protocol().to_dict()
    for t in raw["timepoints"]:
        t.pop("phase", None)
    assert parse_protocol(raw).phases == default_protocol().phases
    raw["deviations"] = {"actions": {"after_dosing": "keep"}}
    with pytest.raises(ProtocolError, match="deviations.actions.after_dosing"):
        parse_protocol(raw)
