"""concomitant_medications.csv: every rule refused with file, row, column, value and what is allowed; kept by save, load, Parquet."""

from __future__ import annotations

import pandas as pd
import pytest

from alliance.monitoring.safety_checks import first_dose_dates, washout_findings
from alliance.protocol import SafetySpec, WashoutRule, default_protocol
from alliance.simulate import simulate_trial
from alliance.study import StudyDataError, load, save
from alliance.study.medications import check_medications, normalize_medications
from alliance.study.validation import Locator

GOOD = {"participant_id": "P01", "name": "Sertraline", "dose": "50 mg daily", "start": "2023-06-01",
        "stop": "2024-01-31", "indication": "depression"}


def problems(*rows, ids=("P01", "P02")):
    frame = pd.DataFrame([{**GOOD, **row} for row in rows], dtype="string")
    return check_medications(frame, list(ids), Locator("concomitant_medications.csv"))


def only(found):
    assert len(found) == 1, [p.describe() for p in found]
    return found[0]


def test_a_good_table_has_no_problem():
    assert problems({}, {"participant_id": "P02", "stop": None, "dose": None, "indication": None},
                    {"start": "2024-02-01", "stop": "2024-02-01"}) == []


def test_an_unknown_participant():
    problem = only(problems({"participant_id": "P99"}))
    assert (problem.file, problem.row, problem.column, problem.value) == (
        "concomitant_medications.csv", 2, "participant_id", "P99")


def test_stop_before_start():
    problem = only(problems({"start": "2024-02-01", "stop": "2024-01-31"}))
    assert (problem.column, problem.value, problem.reason) == ("stop", "2024-01-31", "is before the medication's start")
    assert problem.allowed == "a date on or after the start (2024-02-01), or empty while ongoing"


@pytest.mark.parametrize(("column", "value"), [("start", "01/06/2023"), ("start", "2023-02-30"),
                                               ("stop", "2024-01-31T10:00"), ("stop", "2204-01-31")])
def test_dates_are_iso_calendar_dates(column, value):
    problem = only(problems({column: value}))
    assert (problem.column, problem.value, problem.reason) == (column, value, "is not a date")
    assert problem.allowed.startswith("a date written YYYY-MM-DD")


def test_required_cells_and_columns():
    found = problems({"name": None, "start": ""})
    assert {(p.column, p.reason) for p in found} == {("name", "is empty"), ("start", "is empty")}
    frame = pd.DataFrame([{k: v for k, v in GOOD.items() if k != "stop"} | {"route": "oral"}], dtype="string")
    assert {p.reason for p in check_medications(frame, ["P01"])} == {
        "required columns are missing", "are not columns of the concomitant medications table"}


def test_free_text_without_control_characters():
    problem = only(problems({"dose": "50\x00mg"}))
    assert (problem.column, problem.reason) == ("dose", "holds a control character")


def _study():
    study = simulate_trial(default_protocol(), n=4, seed=1)
    first, second = study.participant_ids[:2]
    study.concomitant_medications = normalize_medications(pd.DataFrame(
        [{**GOOD, "participant_id": first, "stop": None},
         {**GOOD, "participant_id": second, "name": "=cmd()", "indication": None}], dtype="string"))
    return study


def test_a_study_folder_round_trips_and_load_names_the_line(tmp_path):
    study = _study()
    study.validate()
    save(study, tmp_path / "s")
    again = load(tmp_path / "s")
    pd.testing.assert_frame_equal(again.concomitant_medications, study.concomitant_medications)
    path = tmp_path / "s" / "concomitant_medications.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("2024-01-31", "2023-01-31"), encoding="utf-8")
    with pytest.raises(StudyDataError) as caught:
        load(tmp_path / "s")
    assert ("concomitant_medications.csv, row 3, column 'stop': value '2023-01-31' is before the medication's start"
            in str(caught.value))


def test_parquet_keeps_the_medications(tmp_path):
    from alliance.study.formats.parquet import read_parquet, write_parquet

    study = _study()
    write_parquet(study, tmp_path / "p")
    again = read_parquet(tmp_path / "p")
    pd.testing.assert_frame_equal(again.concomitant_medications, study.concomitant_medications)


def test_a_loaded_study_feeds_the_washout_check(tmp_path):
    study = _study()  # the first participant's sertraline, started before their first dose (2018), is ongoing
    study.concomitant_medications.loc[0, "start"] = "2018-01-01"
    save(study, tmp_path / "s")
    again = load(tmp_path / "s")
    spec = SafetySpec(washout=(WashoutRule(("sertraline",), 14, "site SOP"),))
    found = washout_findings(again.concomitant_medications, first_dose_dates(again.dosing_sessions), spec)
    assert [(f.participant_id, f.kind) for f in found] == [(study.participant_ids[0], "ongoing")]
