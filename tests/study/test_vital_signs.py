"""vital_signs.csv: every rule refused with file, row, column, value and what is allowed; kept by save, load, Parquet."""

from __future__ import annotations

import pandas as pd
import pytest

from alliance.protocol import default_protocol
from alliance.simulate import simulate_trial
from alliance.study import StudyDataError, load, save
from alliance.study.validation import Locator
from alliance.study.vital_signs import check_vital_signs, normalize_vital_signs

GOOD = {"participant_id": "P01", "session": "1", "measured_at": "2024-03-01T10:30", "minutes_after_dose": "-30",
        "systolic_bp": "128", "diastolic_bp": "82", "heart_rate": "71"}


def problems(*rows, ids=("P01", "P02")):
    frame = pd.DataFrame([{**GOOD, **row} for row in rows], dtype="string")
    return check_vital_signs(default_protocol(), frame, list(ids), Locator("vital_signs.csv"))


def only(found):
    assert len(found) == 1, [p.describe() for p in found]
    return found[0]


def test_a_good_table_has_no_problem():
    assert problems({}, {"measured_at": "2024-03-01T12:30:00+01:00", "minutes_after_dose": None, "heart_rate": None},
                    {"participant_id": "P02", "session": "2", "minutes_after_dose": "-240", "systolic_bp": None,
                     "diastolic_bp": None}) == []


def test_an_unknown_participant_and_a_session_the_protocol_does_not_dose():
    problem = only(problems({"participant_id": "P99"}))
    assert (problem.file, problem.row, problem.column, problem.value) == ("vital_signs.csv", 2, "participant_id", "P99")
    problem = only(problems({"session": "3"}))
    assert (problem.column, problem.value, problem.allowed) == ("session", "3", "1, 2")
    assert problem.reason == "is not a dosing session of protocol levin2024"


@pytest.mark.parametrize("value", ["2024-03-01", "01/03/2024 10:30", "2024-02-30T10:00", "10:30", None])
def test_measured_at_is_an_iso_date_time(value):
    problem = only(problems({"measured_at": value}))
    assert (problem.column, problem.value) == ("measured_at", value)
    assert problem.allowed.startswith("an ISO-8601 date-time")


@pytest.mark.parametrize(("column", "low", "high"), [("systolic_bp", 50, 300), ("diastolic_bp", 20, 200),
                                                     ("heart_rate", 20, 250)])
def test_plausibility_ranges_are_inclusive(column, low, high):
    inside = {"systolic_bp": "250"} if column == "diastolic_bp" else {}
    edge_low = {column: str(low), **({"diastolic_bp": "30"} if column == "systolic_bp" else {})}
    assert problems({column: str(high), **inside}) == []
    assert problems(edge_low) == []
    for value in (str(low - 1), str(high + 1), "1200", "120/80"):
        problem = only(problems({column: value, **({"systolic_bp": "300"} if column == "diastolic_bp" else {})}))
        assert (problem.column, problem.value) == (column, value)
        assert problem.allowed.startswith(f"a number {low}-{high}")


def test_diastolic_below_systolic():
    problem = only(problems({"systolic_bp": "120", "diastolic_bp": "120"}))
    assert (problem.column, problem.value, problem.reason) == ("diastolic_bp", "120",
                                                               "is not below the reading's systolic pressure")
    assert problems({"systolic_bp": "120", "diastolic_bp": "119"}) == []


def test_at_least_one_measure_per_row():
    problem = only(problems({"systolic_bp": None, "diastolic_bp": "", "heart_rate": None}))
    assert problem.reason == "is empty, and so are the row's other measures"
    assert problems({"systolic_bp": None, "diastolic_bp": None}) == []


@pytest.mark.parametrize("minutes", ["-241", "1.5", "soon"])
def test_minutes_after_dose_is_a_whole_number_from_minus_240(minutes):
    problem = only(problems({"minutes_after_dose": minutes}))
    assert (problem.column, problem.value, problem.reason) == ("minutes_after_dose", minutes,
                                                               "is not minutes after the dose")


def test_a_reading_twice_names_the_first_row():
    problem = only(problems({}, {"measured_at": "2024-03-01 10:30:00"}))
    assert (problem.row, problem.column) == (3, "measured_at")
    assert problem.reason == "appears twice for participant 'P01' in session 1 (also on row 2)"


def test_missing_and_unknown_columns():
    frame = pd.DataFrame([{k: v for k, v in GOOD.items() if k != "session"} | {"spo2": "98"}], dtype="string")
    assert {p.reason for p in check_vital_signs(default_protocol(), frame, ["P01"])} == {
        "required columns are missing", "are not columns of the vital signs table"}
    frame = pd.DataFrame([{k: GOOD[k] for k in ("participant_id", "session", "measured_at")}], dtype="string")
    problem = only(check_vital_signs(default_protocol(), frame, ["P01"]))
    assert problem.column == "systolic_bp, diastolic_bp, heart_rate"


def test_normalized_types():
    out = normalize_vital_signs(pd.DataFrame([GOOD, {**GOOD, "heart_rate": None}], dtype="string"))
    assert [str(out[c].dtype) for c in out.columns] == ["string", "Int64", "string", "Int64", "float64", "float64",
                                                        "float64"]


def _study(n=4):
    study = simulate_trial(default_protocol(), n=n, seed=1)
    first, second = study.participant_ids[:2]
    study.vital_signs = normalize_vital_signs(pd.DataFrame(
        [{**GOOD, "participant_id": first}, {**GOOD, "participant_id": first, "measured_at": "2024-03-01T12:30",
                                             "minutes_after_dose": "90", "heart_rate": None},
         {**GOOD, "participant_id": second, "session": "2", "systolic_bp": "181.5", "minutes_after_dose": None}],
        dtype="string"))
    return study


def test_a_study_folder_round_trips_and_load_names_the_line(tmp_path):
    study = _study()
    study.validate()
    save(study, tmp_path / "s")
    again = load(tmp_path / "s")
    pd.testing.assert_frame_equal(again.vital_signs, study.vital_signs)
    path = tmp_path / "s" / "vital_signs.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",181.5,", ",18.5,"), encoding="utf-8")
    with pytest.raises(StudyDataError) as caught:
        load(tmp_path / "s")
    assert "vital_signs.csv, row 4, column 'systolic_bp': value '18.5' is out of the plausible range" in str(caught.value)


def test_parquet_keeps_the_readings(tmp_path):
    from alliance.study.formats.parquet import read_parquet, write_parquet

    study = _study()
    write_parquet(study, tmp_path / "p")
    again = read_parquet(tmp_path / "p")
    pd.testing.assert_frame_equal(again.vital_signs, study.vital_signs)
    assert again.concomitant_medications is None


def test_an_in_memory_study_is_validated_with_its_readings():
    study = _study()
    study.vital_signs = normalize_vital_signs(pd.DataFrame([{**GOOD, "participant_id": "nobody"}], dtype="string"))
    with pytest.raises(StudyDataError, match="vital_signs.csv, row 2, column 'participant_id'"):
        study.validate()
