"""Safety findings of the dosing-day record: thresholds at their edges, washouts counted in days."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from alliance.monitoring.safety_checks import first_dose_dates, vital_sign_findings, washout_findings
from alliance.protocol import SafetySpec, VitalSignThresholds, WashoutRule

DEFAULTS = SafetySpec()
WASHOUT = SafetySpec(washout=(WashoutRule(("Sertraline", "fluoxetine"), 14, "site SOP 7"),))
FIRST_DOSE = pd.Series({"P1": "2024-03-15", "P2": dt.date(2024, 3, 15)})


def readings(*rows):
    base = {"participant_id": "P1", "session": 1, "measured_at": "2024-03-15T10:00", "systolic_bp": 120.0,
            "diastolic_bp": 80.0, "heart_rate": 70.0}
    return pd.DataFrame([{**base, **row} for row in rows])


def found(*rows, spec=DEFAULTS):
    return [(f.measure, f.value, f.threshold, f.severity) for f in vital_sign_findings(readings(*rows), spec)]


@pytest.mark.parametrize(("measure", "threshold", "severity"), [
    ("systolic_bp", 160, "warning"), ("systolic_bp", 180, "urgent"), ("diastolic_bp", 100, "warning"),
    ("diastolic_bp", 120, "urgent"), ("heart_rate", 120, "warning"),
])
def test_a_reading_exactly_at_a_threshold_raises_it_and_one_below_the_severity_under_it(measure, threshold, severity):
    other = {"systolic_bp": 190.0} if measure == "diastolic_bp" else {}  # keep diastolic below systolic
    assert (measure, threshold, threshold, severity) in found({measure: float(threshold), **other})
    below = [f for f in found({measure: threshold - 1.0, **other}) if f[0] == measure]
    expected = {"urgent": "warning", "warning": None}[severity]
    assert [f[3] for f in below] == ([expected] if expected else [])


def test_urgent_wins_one_finding_per_reading_and_measure():
    assert found({"systolic_bp": 200.0, "diastolic_bp": 130.0, "heart_rate": 150.0}) == [
        ("systolic_bp", 200.0, 180.0, "urgent"), ("diastolic_bp", 130.0, 120.0, "urgent"),
        ("heart_rate", 150.0, 120.0, "warning")]


def test_ordinary_and_missing_readings_raise_nothing():
    assert found({}, {"systolic_bp": None, "diastolic_bp": None}) == []
    frame = readings({}).drop(columns=["heart_rate"])
    assert vital_sign_findings(frame, DEFAULTS) == []


def test_a_protocol_threshold_with_decimals_and_the_finding_as_a_dict():
    spec = SafetySpec(vital_signs=VitalSignThresholds(warning={"heart_rate": 99.5}, urgent={}, source="SOP"))
    assert found({"heart_rate": 99.4}, spec=spec) == []
    (finding,) = vital_sign_findings(readings({"heart_rate": 99.5, "session": 2}), spec)
    assert finding.to_dict() == {"participant_id": "P1", "session": 2, "measured_at": "2024-03-15T10:00",
                                 "measure": "heart_rate", "value": 99.5, "threshold": 99.5, "severity": "warning",
                                 "unit": "bpm", "reason": "heart_rate 99.5 bpm at or above the warning threshold 99.5"}


def test_readings_read_as_text_are_checked_the_same():
    frame = readings({"systolic_bp": 181.0}).astype("string")
    assert [f.severity for f in vital_sign_findings(frame, DEFAULTS)] == ["urgent"]


def medications(*rows):
    base = {"participant_id": "P1", "name": "Sertraline", "dose": "50 mg", "start": "2023-06-01", "stop": None}
    return pd.DataFrame([{**base, **row} for row in rows], dtype="string")


def kinds(*rows, spec=WASHOUT, first=FIRST_DOSE):
    return [(f.participant_id, f.kind, f.days_before) for f in washout_findings(medications(*rows), first, spec)]


def test_stopped_exactly_days_before_keeps_the_washout_and_a_day_later_does_not():
    # first dose 2024-03-15: 2024-03-01 is 14 days before (15 - 1), 2024-03-02 is 13
    assert kinds({"stop": "2024-03-01"}) == []
    assert kinds({"stop": "2024-03-02"}) == [("P1", "within_washout", 13)]
    assert kinds({"stop": "2024-03-14"}) == [("P1", "within_washout", 1)]


def test_ongoing_stopped_on_the_dose_day_or_started_on_it_is_taken_at_the_first_dose():
    assert kinds({"stop": None}) == [("P1", "ongoing", None)]
    assert kinds({"stop": "2024-03-15"}) == [("P1", "ongoing", None)]
    assert kinds({"stop": "2024-04-30"}) == [("P1", "ongoing", None)]
    assert kinds({"start": "2024-03-15"}) == [("P1", "ongoing", None)]


def test_started_after_the_first_dose_is_not_a_washout_matter():
    assert kinds({"start": "2024-03-16"}) == []


def test_names_whole_and_case_insensitive_other_medications_and_undosed_participants_ignored():
    assert kinds({"name": "FLUOXETINE"}, {"name": "sertraline hydrochloride"}, {"name": "ibuprofen"}) == [
        ("P1", "ongoing", None)]
    assert kinds({"participant_id": "P3"}) == []  # no first dose date: not checked
    assert kinds({"participant_id": "P2", "stop": "2024-03-10"}) == [("P2", "within_washout", 5)]
    assert kinds({}, spec=SafetySpec()) == []  # no washout rule, no finding


def test_a_washout_finding_as_a_dict():
    (finding,) = washout_findings(medications({"stop": "2024-03-05"}), FIRST_DOSE, WASHOUT)
    assert finding.to_dict() == {
        "participant_id": "P1", "medication": "Sertraline", "start": "2023-06-01", "stop": "2024-03-05",
        "first_dose": "2024-03-15", "kind": "within_washout", "days_required": 14, "days_before": 10,
        "source": "site SOP 7",
        "reason": "Sertraline stopped 10 days before the first dose (2024-03-15); the protocol asks 14"}


def test_first_dose_dates_are_the_dates_of_session_1():
    dosing = pd.DataFrame({"participant_id": ["P1", "P1", "P2", "P3"], "session": [2, 1, 1, 1],
                           "date": ["2024-03-29", "2024-03-15", "2024-04-01T09:30", None]})
    assert first_dose_dates(dosing).to_dict() == {"P1": dt.date(2024, 3, 15), "P2": dt.date(2024, 4, 1)}
    assert first_dose_dates(None).empty
