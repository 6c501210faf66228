"""adverse_events.csv: every rule refused with file, row, column, value and what is allowed."""

from __future__ import annotations

import pandas as pd
import pytest

from alliance.protocol import default_protocol
from alliance.simulate import simulate_trial
from alliance.study import StudyDataError, load, save
from alliance.study.adverse_events import check_adverse_events, normalize_adverse_events
from alliance.study.validation import Locator

GOOD = {"participant_id": "P01", "ae_id": "AE-001", "term": "Headache", "onset": "2024-03-01",
        "resolved_on": "2024-03-02", "severity": "2", "serious": "no", "seriousness": "",
        "relatedness": "probable", "expected": "yes", "action": "none", "outcome": "recovered", "code": "10019211"}


def problems(*rows, ids=("P01", "P02")):
    frame = pd.DataFrame([{**GOOD, **row} for row in rows], dtype="string")
    return check_adverse_events(frame, list(ids), Locator("adverse_events.csv"))


def only(found):
    assert len(found) == 1, [p.describe() for p in found]
    return found[0]


def test_a_good_table_has_no_problem():
    assert problems({}, {"ae_id": "AE-002", "participant_id": "P02", "resolved_on": None}) == []


def test_an_unknown_participant():
    problem = only(problems({"participant_id": "P99"}))
    assert (problem.file, problem.row, problem.column, problem.value) == ("adverse_events.csv", 2, "participant_id", "P99")
    assert problem.reason == "is not listed in participants.csv"


def test_resolved_before_onset():
    problem = only(problems({"onset": "2024-03-05", "resolved_on": "2024-03-04"}))
    assert (problem.column, problem.value, problem.reason) == ("resolved_on", "2024-03-04", "is before the event's onset")
    assert "on or after the onset (2024-03-05)" in problem.allowed
    assert problems({"onset": "2024-03-05T14:00", "resolved_on": "2024-03-05"}) == []  # same day


@pytest.mark.parametrize("grade", ["0", "6", "2.5", "severe"])
def test_a_grade_out_of_range(grade):
    problem = only(problems({"severity": grade}))
    assert (problem.column, problem.value, problem.reason) == ("severity", grade, "is not a CTCAE grade")
    assert problem.allowed.startswith("a CTCAE grade 1-5")


def test_serious_without_a_criterion_and_a_criterion_without_serious():
    problem = only(problems({"serious": "yes", "seriousness": ""}))
    assert (problem.column, problem.reason) == ("seriousness", "is empty for a serious event (serious = yes)")
    problem = only(problems({"serious": "no", "seriousness": "hospitalisation"}))
    assert (problem.column, problem.value) == ("serious", "no")
    assert problems({"serious": "yes", "seriousness": "hospitalisation;important_medical_event", "severity": "3"}) == []


def test_an_unknown_criterion_relatedness_action_and_outcome():
    problem = only(problems({"serious": "yes", "seriousness": "hospitalization"}))
    assert "'hospitalization', not a seriousness criterion of ICH E2A" in problem.reason
    found = problems({"relatedness": "maybe", "action": "stopped", "outcome": "ok"})
    assert {(p.column, p.value) for p in found} == {("relatedness", "maybe"), ("action", "stopped"), ("outcome", "ok")}


def test_death_needs_grade_5_fatal_serious_and_the_criterion():
    assert problems({"severity": "5", "outcome": "fatal", "serious": "yes", "seriousness": "death"}) == []
    found = problems({"severity": "5", "outcome": "recovered", "serious": "yes", "seriousness": "death"})
    assert [(p.column, p.reason) for p in found] == [("outcome", "does not match severity 5")]
    found = problems({"severity": "3", "outcome": "fatal", "serious": "yes", "seriousness": "death"})
    assert [(p.column, p.reason) for p in found] == [("severity", "does not match the outcome fatal")]
    found = problems({"severity": "5", "outcome": "fatal", "serious": "no"})
    assert [(p.column, p.reason) for p in found] == [("serious", "is no for a fatal event")]


def test_a_repeated_id_and_required_cells():
    found = problems({}, {"participant_id": "P02"})
    assert [(p.row, p.column, p.reason) for p in found] == [(3, "ae_id", "appears twice (also on row 2)")]
    found = problems({"term": None, "onset": None, "serious": None})
    assert {(p.column, p.reason) for p in found} >= {("term", "is empty"), ("onset", "is empty"), ("serious", "is empty")}


def test_missing_and_unknown_columns():
    frame = pd.DataFrame([{k: v for k, v in GOOD.items() if k != "severity"} | {"grade": "2"}], dtype="string")
    found = check_adverse_events(frame, ["P01"])
    assert {p.reason for p in found} == {"required columns are missing", "are not columns of the adverse events table"}


def test_normalized_types():
    out = normalize_adverse_events(pd.DataFrame([GOOD], dtype="string"))
    assert str(out["severity"].dtype) == "Int64" and str(out["serious"].dtype) == "boolean"
    assert out.loc[0, "serious"] is False or not out.loc[0, "serious"]


def test_a_study_folder_round_trips_and_load_names_the_line(tmp_path):
    study = simulate_trial(default_protocol(), n=6, seed=1)
    pid = study.participant_ids[0]
    study.adverse_events = normalize_adverse_events(pd.DataFrame([{**GOOD, "participant_id": pid}], dtype="string"))
    save(study, tmp_path / "s")
    again = load(tmp_path / "s")
    assert again.adverse_events is not None and again.adverse_events.loc[0, "ae_id"] == "AE-001"
    text = (tmp_path / "s" / "adverse_events.csv").read_text(encoding="utf-8")
    (tmp_path / "s" / "adverse_events.csv").write_text(text.replace(",2,no,", ",7,no,"), encoding="utf-8")
    with pytest.raises(StudyDataError) as caught:
        load(tmp_path / "s")
    assert "adverse_events.csv, row 2, column 'severity': value '7' is not a CTCAE grade" in str(caught.value)


def test_parquet_keeps_the_events(tmp_path):
    from alliance.study.formats.parquet import read_parquet, write_parquet

    study = simulate_trial(default_protocol(), n=6, seed=1)
    study.adverse_events = normalize_adverse_events(pd.DataFrame(
        [{**GOOD, "participant_id": study.participant_ids[0], "serious": "yes", "seriousness": "hospitalisation",
          "severity": "3"}], dtype="string"))
    write_parquet(study, tmp_path / "p")
    again = read_parquet(tmp_path / "p")
    assert again.adverse_events.to_dict("records") == study.adverse_events.to_dict("records")
