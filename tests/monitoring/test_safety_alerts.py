"""Alerts about the safety record: serious adverse events, vital signs at their thresholds, washouts to the day.

The thresholds are those of the default protocol (no ``safety:`` section: warning 160/100 mmHg and
heart rate 120 bpm, urgent 180/120 mmHg, each raised at or above, ``alliance.protocol.safety``);
the washout rule is a test protocol's (Sertraline, 14 days).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from alliance.monitoring.alerts import (
    KEY_LENGTH,
    RULE_TYPES,
    AlertInputs,
    evaluate_alerts,
    inputs_needed,
    record_keys,
    rule_statuses,
    serious_adverse_event_alerts,
    split_historical,
    vital_sign_alerts,
    washout_alerts,
)
from alliance.protocol import default_protocol, parse_protocol
from alliance.study.adverse_events import normalize_adverse_events

PROTOCOL = default_protocol()
CONFIG = PROTOCOL.alerts
SAE = CONFIG.rule("serious_adverse_event")
VITAL = CONFIG.rule("vital_sign")
WASHOUT = CONFIG.rule("washout")
WITH_WASHOUT = parse_protocol({**PROTOCOL.to_dict(), "safety": {"washout": [
    {"medications": ["Sertraline", "fluoxetine"], "days": 14, "source": "site SOP 7"}]}})


def events(*rows) -> pd.DataFrame:
    base = {"participant_id": "P1", "ae_id": "AE-1", "term": "Headache", "onset": "2024-03-02", "resolved_on": None,
            "severity": "1", "serious": "no", "seriousness": None, "relatedness": None, "expected": None,
            "action": None, "outcome": None, "code": None}
    return pd.DataFrame([{**base, **row} for row in rows], dtype="string")


def readings(*rows) -> pd.DataFrame:
    base = {"participant_id": "P1", "session": 1, "measured_at": "2024-03-15T10:00", "systolic_bp": 120.0,
            "diastolic_bp": 80.0, "heart_rate": 70.0}
    return pd.DataFrame([{**base, **row} for row in rows])


def medications(*rows) -> pd.DataFrame:
    base = {"participant_id": "P1", "name": "Sertraline", "dose": "50 mg", "start": "2023-06-01", "stop": None}
    return pd.DataFrame([{**base, **row} for row in rows])


DOSED = pd.DataFrame({"participant_id": ["P1", "P1"], "session": [1, 2], "date": ["2024-03-15", "2024-03-27"]})


# -- serious adverse events ------------------------------------------------------------------------

def test_a_serious_event_raises_one_urgent_alert_and_a_non_serious_one_none():
    table = events({"ae_id": "AE-1", "severity": "3"},   # grade 3 but not serious: no alert
                   {"ae_id": "AE-2", "term": "Chest pain, admitted overnight", "severity": "3", "serious": "yes",
                    "seriousness": "hospitalisation", "relatedness": "possible", "expected": "no",
                    "onset": "2024-03-16"})
    (alert,) = serious_adverse_event_alerts(SAE, PROTOCOL, table)
    assert (alert.rule, alert.type, alert.participant_id, alert.timepoint, alert.measure) == (
        "serious_adverse_event", "serious_adverse_event", "P1", "ae:AE-2", "adverse event AE-2")
    assert (alert.severity, alert.value, alert.dated) == ("urgent", 3.0, date(2024, 3, 16))
    assert alert.reason == ("Serious adverse event AE-2: Chest pain, admitted overnight, CTCAE grade 3 (severe), "
                            "onset 2024-03-16; seriousness: hospitalisation; relatedness: possible; unexpected")
    assert "ICH E2A" in alert.action and "7 calendar days" in alert.action
    assert "suicide" not in alert.action   # the crisis text is for suicidality, not for an SAE


def test_two_serious_events_of_one_participant_are_two_alerts_each_with_its_own_key():
    table = events({"ae_id": "AE-7", "serious": "yes", "seriousness": "life_threatening;hospitalisation",
                    "severity": "4", "onset": "2024-04-02"},
                   {"ae_id": "AE-3", "serious": "yes", "seriousness": "death", "severity": "5", "outcome": "fatal",
                    "onset": "2024-03-20T14:00"})
    found = evaluate_alerts(CONFIG, PROTOCOL, adverse_events=table)
    # Ordered by onset; the key is the event's, so both are stored (one per rule, participant, key).
    assert [a.key for a in found] == [("serious_adverse_event", "P1", "ae:AE-3"),
                                      ("serious_adverse_event", "P1", "ae:AE-7")]
    assert found[0].reason.endswith("CTCAE grade 5 (death), onset 2024-03-20T14:00; seriousness: death")
    assert "seriousness: life-threatening, hospitalisation" in found[1].reason
    assert found[0].dated == date(2024, 3, 20)


def test_the_normalised_table_with_booleans_and_grades_raises_the_same_alert():
    text = events({"ae_id": "AE-2", "serious": "yes", "seriousness": "disability", "severity": "2",
                   "expected": "yes"})
    typed = normalize_adverse_events(text)
    assert typed["serious"].dtype == "boolean"   # what the analysis reads; the alert must not care
    assert [a.to_dict() for a in serious_adverse_event_alerts(SAE, PROTOCOL, typed)] == [
        a.to_dict() for a in serious_adverse_event_alerts(SAE, PROTOCOL, text)]
    (alert,) = serious_adverse_event_alerts(SAE, PROTOCOL, typed)
    assert alert.reason.endswith("CTCAE grade 2 (moderate), onset 2024-03-02; seriousness: disability; expected")


def test_an_old_serious_event_is_historical_by_its_onset():
    (alert,) = serious_adverse_event_alerts(SAE, PROTOCOL, events({"serious": "yes", "seriousness": "death",
                                                                   "severity": "5", "onset": "2024-03-02"}))
    # Onset 2024-03-02: current on 2024-04-01 (30 days), historical on 2024-04-02 (31 days).
    assert [len(part) for part in split_historical([alert], date(2024, 4, 1), 30)] == [1, 0]
    assert [len(part) for part in split_historical([alert], date(2024, 4, 2), 30)] == [0, 1]


# -- vital signs -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("measure", "at", "severity"), [
    ("systolic_bp", 160.0, "warning"), ("systolic_bp", 159.0, None),
    ("systolic_bp", 180.0, "urgent"), ("systolic_bp", 179.0, "warning"),
    ("diastolic_bp", 100.0, "warning"), ("diastolic_bp", 99.0, None),
    ("diastolic_bp", 120.0, "urgent"), ("diastolic_bp", 119.0, "warning"),
    ("heart_rate", 120.0, "warning"), ("heart_rate", 119.0, None),
])
def test_a_reading_at_a_threshold_raises_it_and_one_below_does_not(measure, at, severity):
    # A systolic of 150 (below its warning threshold) keeps a diastolic of up to 120 below it.
    found = vital_sign_alerts(VITAL, PROTOCOL, readings({"systolic_bp": 150.0, measure: at}))
    assert [(a.severity, a.measure, a.value) for a in found] == (
        [(severity, f"{measure} at session 1", at)] if severity else [])


def test_one_alert_per_reading_with_the_worst_severity_naming_every_measure_reached():
    table = readings({"measured_at": "2024-03-15T10:00"},
                     {"measured_at": "2024-03-15T11:00", "systolic_bp": 185.0, "diastolic_bp": 105.0})
    (alert,) = evaluate_alerts(CONFIG, PROTOCOL, vital_signs=table)
    assert alert.key == ("vital_sign", "P1", "vitals:1:2024-03-15T11:00:urgent")
    assert (alert.severity, alert.value, alert.dated) == ("urgent", 185.0, date(2024, 3, 15))
    assert alert.measure == "systolic_bp, diastolic_bp at session 1"
    assert alert.reason == ("Reading of 2024-03-15T11:00 at dosing session 1: systolic blood pressure 185 mmHg at or "
                            "above the urgent threshold of 180; diastolic blood pressure 105 mmHg at or above the "
                            "warning threshold of 100")
    assert alert.action.startswith("Repeat the reading now and call the study physician")


def test_the_severity_is_the_thresholds_and_a_corrected_reading_gets_a_key_of_its_own():
    warning = vital_sign_alerts(VITAL, PROTOCOL, readings({"systolic_bp": 165.0}))
    urgent = vital_sign_alerts(VITAL, PROTOCOL, readings({"systolic_bp": 185.0}))
    assert VITAL.severity == "urgent" and [a.severity for a in warning] == ["warning"]
    # The same reading corrected from 165 to 185 (a typo): its urgent alert is not the warning's.
    assert warning[0].timepoint != urgent[0].timepoint
    assert {warning[0].timepoint, urgent[0].timepoint} == record_keys(
        "vital_signs", {"session": 1, "measured_at": "2024-03-15T10:00"})


def test_a_protocols_own_thresholds_are_used():
    own = parse_protocol({**PROTOCOL.to_dict(), "safety": {"vital_signs": {
        "warning": {"heart_rate": 100}, "urgent": {"heart_rate": 130}, "source": "site SOP 3"}}})
    assert [a.severity for a in vital_sign_alerts(VITAL, own, readings({"heart_rate": 100.0}))] == ["warning"]
    # Only heart rate is watched by this protocol: a systolic 200 raises nothing here.
    assert vital_sign_alerts(VITAL, own, readings({"systolic_bp": 200.0})) == []


# -- washout ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("stop", "days_before"), [
    ("2024-03-01", None),   # 14 days before the first dose of 2024-03-15: the washout is kept
    ("2024-03-02", 13),     # 13 days: one day short
    ("2024-03-14", 1),
])
def test_a_washout_is_counted_to_the_day(stop, days_before):
    found = washout_alerts(WASHOUT, WITH_WASHOUT, medications({"stop": stop}), DOSED)
    assert [a.value for a in found] == ([float(days_before)] if days_before is not None else [])
    if found:
        (alert,) = found
        assert (alert.timepoint, alert.severity, alert.dated) == ("washout:Sertraline:2023-06-01", "warning",
                                                                  date(2024, 3, 15))
        assert alert.reason == (f"Sertraline stopped {days_before} days before the first dose (2024-03-15); the "
                                "protocol asks 14 (washout rule: site SOP 7)")


def test_a_medication_taken_on_the_day_of_the_first_dose_is_ongoing_and_one_started_after_is_not_checked():
    found = washout_alerts(WASHOUT, WITH_WASHOUT, medications(
        {"stop": None}, {"name": "FLUOXETINE", "start": "2024-03-15", "stop": "2024-03-15"},
        {"name": "Fluoxetine", "start": "2024-03-16"}, {"name": "Ibuprofen"}), DOSED)
    assert [(a.timepoint, a.value) for a in found] == [("washout:Sertraline:2023-06-01", None),
                                                       ("washout:FLUOXETINE:2024-03-15", None)]
    assert found[1].reason.startswith("FLUOXETINE taken on the day of the first dose (2024-03-15)")


def test_no_washout_alert_before_the_first_dose_or_without_a_washout_rule():
    assert washout_alerts(WASHOUT, WITH_WASHOUT, medications({}), DOSED.iloc[0:0]) == []
    assert washout_alerts(WASHOUT, PROTOCOL, medications({}), DOSED) == []   # the default protocol names none
    statuses = {s.rule_id: s for s in rule_statuses(CONFIG, PROTOCOL)}
    assert not statuses["washout"].active and "names no washout rule" in statuses["washout"].reason
    assert {s.rule_id: s for s in rule_statuses(WITH_WASHOUT.alerts, WITH_WASHOUT)}["washout"].active


# -- keys, inputs, statuses ------------------------------------------------------------------------

def test_long_names_make_short_distinct_keys_that_record_keys_finds():
    first, second = "a" * 150 + " one", "a" * 150 + " two"
    found = washout_alerts(WASHOUT, parse_protocol({**PROTOCOL.to_dict(), "safety": {"washout": [
        {"medications": [first, second], "days": 14, "source": "SOP"}]}}),
        medications({"name": first}, {"name": second}), DOSED)
    keys = [a.timepoint for a in found]
    assert len(set(keys)) == 2 and all(len(k) <= KEY_LENGTH for k in keys)
    assert keys[0] in record_keys("concomitant_medications", {"name": first, "start": "2023-06-01"})
    long_id = "AE-" + "9" * 120
    (alert,) = serious_adverse_event_alerts(SAE, PROTOCOL, events({"ae_id": long_id, "serious": "yes",
                                                                   "seriousness": "death", "severity": "5"}))
    assert len(alert.timepoint) <= KEY_LENGTH and record_keys("adverse_events", {"ae_id": long_id}) == {
        alert.timepoint}


def test_each_safety_rule_declares_the_tables_it_reads_and_raises_nothing_without_them():
    assert RULE_TYPES["serious_adverse_event"].inputs(SAE) == AlertInputs(adverse_events=True)
    assert RULE_TYPES["vital_sign"].inputs(VITAL) == AlertInputs(vital_signs=True)
    assert RULE_TYPES["washout"].inputs(WASHOUT) == AlertInputs(medications=True, dosing_sessions=True)
    needed = inputs_needed(CONFIG.rules)
    assert needed.adverse_events and needed.vital_signs and needed.medications and needed.dosing_sessions
    # Without dosing sessions the washout rule has half its data: it raises nothing (not an error).
    assert evaluate_alerts(WITH_WASHOUT.alerts, WITH_WASHOUT, medications=medications({})) == []
    assert [a.rule for a in evaluate_alerts(WITH_WASHOUT.alerts, WITH_WASHOUT, medications=medications({}),
                                            dosing_sessions=DOSED)] == ["washout"]
    # Only an SAE is the investigators' business as well as the facilitators'.
    assert [name for name, kind in RULE_TYPES.items() if kind.to_investigators] == ["serious_adverse_event"]
    assert not any(RULE_TYPES[t].time_dependent for t in ("serious_adverse_event", "vital_sign", "washout"))


def test_the_safety_rules_are_active_and_say_what_they_watch():
    statuses = {s.rule_id: s for s in rule_statuses(CONFIG, PROTOCOL)}
    assert statuses["serious_adverse_event"].active and statuses["serious_adverse_event"].severity == "urgent"
    vital = statuses["vital_sign"]
    assert vital.active and vital.reason == (
        "dosing-day readings at or above the protocol's thresholds (urgent at systolic blood pressure 180 mmHg, "
        "diastolic blood pressure 120 mmHg; warning at systolic blood pressure 160 mmHg, diastolic blood pressure "
        "100 mmHg, heart rate 120 bpm); each alert has the severity of the threshold reached")
