"""The dosing-day record in dosing_sessions.csv: each rule refused at its edge; kept by save, load, Parquet; de-identified."""

from __future__ import annotations

import pandas as pd
import pytest

from alliance.protocol import default_protocol
from alliance.study import Study, StudyDataError, load, save
from alliance.study.deidentify import shift_dates
from alliance.study.formats.parquet import read_parquet, write_parquet
from alliance.study.validation import (
    DOSING_COLUMNS,
    DOSING_DAY_COLUMNS,
    Locator,
    check_dosing_sessions,
    present_entries,
)

from .builders import small_study

GOOD = {"participant_id": "P01", "session": "1", "date": "2024-03-01", "compound": "psilocybin", "amount": "25",
        "unit": "mg", "started_at": "09:30", "ended_at": "2024-03-01T16:45", "present": "F1;F2;monitor:M1",
        "rescue_medication": None, "setting_notes": "Living-room style room", "music_notes": "Hopkins playlist"}


def problems(*rows):
    frame = pd.DataFrame([{**GOOD, **row} for row in rows], dtype="string")
    return check_dosing_sessions(default_protocol(), frame, ["P01", "P02"], Locator("dosing_sessions.csv"))


def only(found):
    assert len(found) == 1, [p.describe() for p in found]
    return found[0]


def test_the_column_names():
    assert DOSING_DAY_COLUMNS == ("started_at", "ended_at", "present", "rescue_medication", "setting_notes",
                                  "music_notes")
    assert DOSING_COLUMNS[:6] == ("participant_id", "session", "date", "compound", "amount", "unit")


def test_a_good_record_has_no_problem():
    assert problems({}, {"session": "2", "date": "2024-03-13", "started_at": "2024-03-13 09:15:00+01:00",
                         "ended_at": "17:00", "present": "F1; physician:D-7;;", "rescue_medication":
                         "lorazepam 1 mg 14:20", "setting_notes": "line one\nline two\twith a tab"},
                    {"participant_id": "P02", **dict.fromkeys(DOSING_DAY_COLUMNS)}) == []


def test_every_column_is_optional():
    frame = pd.DataFrame([{k: GOOD[k] for k in ("participant_id", "session", "present")}], dtype="string")
    assert check_dosing_sessions(default_protocol(), frame, ["P01"]) == []


@pytest.mark.parametrize("value", ["9:30", "24:00", "09:60", "2024-03-01", "2024-02-30T10:00", "half past nine",
                                   "09:30\t"])
def test_a_time_that_is_not_a_time(value):
    problem = only(problems({"started_at": value}))
    assert (problem.file, problem.row, problem.column, problem.value) == ("dosing_sessions.csv", 2, "started_at",
                                                                          value.strip(" "))
    assert problem.reason == "is not a date-time or a time of day"
    assert problem.allowed.startswith("an ISO-8601 date-time") and "HH:MM" in problem.allowed


def test_the_edges_of_a_time_of_day():
    assert problems({"started_at": "00:00", "ended_at": "23:59"}) == []
    assert problems({"started_at": "00:00:00", "ended_at": "23:59:59"}) == []
    assert problems({"started_at": " 09:30 "}) == []  # spaces around a time are not part of it


def test_a_time_of_day_needs_the_rows_date():
    found = problems({"date": None, "started_at": "09:30", "ended_at": "2024-03-01T16:45"})
    problem = only(found)
    assert (problem.column, problem.value, problem.reason) == (
        "started_at", "09:30", "is a time of day, and the row has no date to put it on")
    # without a date, date-times are fine
    assert problems({"date": None, "started_at": "2024-03-01T09:30"}) == []


def test_a_start_on_another_day_than_the_session():
    problem = only(problems({"started_at": "2024-03-02T09:30", "ended_at": "2024-03-02T10:00"}))
    assert (problem.column, problem.value, problem.reason) == ("started_at", "2024-03-02T09:30",
                                                               "is not on the session's date")
    assert problem.allowed == "a time on 2024-03-01 (the row's date)"
    # the date as written counts, not the UTC instant: 23:30 at -05:00 is the next day in UTC
    assert problems({"started_at": "2024-03-01T23:30:00-05:00", "ended_at": "2024-03-02T01:00:00-05:00"}) == []


def test_the_end_is_after_the_start():
    problem = only(problems({"started_at": "09:30", "ended_at": "09:30"}))  # equal: not after
    assert (problem.row, problem.column, problem.value, problem.reason) == (2, "ended_at", "09:30",
                                                                            "is not after started_at")
    assert problem.allowed.startswith("a time after 09:30")
    assert problems({"started_at": "09:30", "ended_at": "09:31"}) == []
    # past midnight as a time of day is before the start: the end is written as a date-time
    assert only(problems({"started_at": "20:00", "ended_at": "02:30"})).reason == "is not after started_at"
    assert problems({"started_at": "20:00", "ended_at": "2024-03-02T02:30"}) == []
    # instants: 09:30 at +01:00 is 08:30 UTC, after 08:00 UTC is not
    assert only(problems({"started_at": "2024-03-01T09:30+01:00", "ended_at": "2024-03-01T08:00Z"})).column == \
        "ended_at"


def test_a_session_longer_than_a_day():
    assert problems({"started_at": "09:30", "ended_at": "2024-03-02T09:30"}) == []  # 24 h exactly
    problem = only(problems({"started_at": "09:30", "ended_at": "2024-03-02T09:31"}))
    assert (problem.column, problem.value, problem.reason) == ("ended_at", "2024-03-02T09:31",
                                                               "is more than 24 hours after started_at")
    assert problem.allowed == "a time after 09:30 and at most 24 hours later"


def test_present_entries_are_parsed_as_written():
    assert present_entries("F1; F2;monitor:M1;;other: X.9") == [
        ("facilitator", "F1"), ("facilitator", "F2"), ("monitor", "M1"), ("other", "X.9")]


@pytest.mark.parametrize(("value", "reason"), [
    ("F1;chef:X1", "names the role 'chef', not one of facilitator, monitor, physician, other"),
    ("F1;Monitor:M1", "names the role 'Monitor', not one of facilitator, monitor, physician, other"),
    ("F1;monitor:", "names the role 'monitor' without an id"),
    ("F 1", "names 'F 1', which is not a valid staff id"),
    ("F1;monitor:a/b", "names 'a/b', which is not a valid staff id"),
    ("F1;" + "M" * 65, f"names {'M' * 65!r}, which is not a valid staff id"),
    ("F1;monitor:F1", "names 'F1' twice"),
])
def test_a_present_entry_that_is_refused(value, reason):
    problem = only(problems({"present": value}))
    assert (problem.column, problem.value, problem.reason) == ("present", value, reason)
    assert problem.allowed.startswith("ids separated by ';', each ID (a facilitator) or role:ID")


def test_the_longest_staff_id_and_cell():
    assert problems({"present": "facilitator:" + "F" * 64}) == []
    cell = ";".join(f"F{n:03d}" for n in range(100)) + "9"  # 100 × 4 characters + 99 separators + 1 = 500
    assert len(cell) == 500 and problems({"present": cell}) == []
    problem = only(problems({"present": cell + ";"}))
    assert (problem.column, problem.reason) == ("present", "is 501 characters long")


@pytest.mark.parametrize("column", ["rescue_medication", "setting_notes", "music_notes"])
def test_notes_are_bounded_free_text(column):
    assert problems({column: "x" * 2000}) == []
    problem = only(problems({column: "y" * 2001}))
    assert (problem.column, problem.reason, problem.allowed) == (
        column, "is 2,001 characters long", "free text of at most 2,000 characters")
    assert problem.value == "y" * 60 + "…"  # the message shows the beginning
    problem = only(problems({column: "music\x00box"}))
    assert (problem.column, problem.value, problem.reason) == (column, "music\\x00box", "holds a control character")


def test_the_existing_checks_and_messages_are_kept():
    found = problems({"session": "3", "unit": "mg/m2", "amount": "-1"})
    assert {(p.column, p.reason) for p in found} == {
        ("session", "is not a dosing session of protocol levin2024"), ("unit", "is not a dose unit"),
        ("amount", "is not a dose amount")}
    frame = pd.DataFrame([{**GOOD, "room": "A"}], dtype="string")
    (problem,) = check_dosing_sessions(default_protocol(), frame, ["P01"])
    assert (problem.column, problem.reason) == ("room", "are not columns of the dosing sessions table")
    assert problem.allowed == ", ".join(DOSING_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Kept by save / load and Parquet; de-identified
# ---------------------------------------------------------------------------------------------

def _study_with_a_record() -> Study:
    study = small_study()
    dosing = study.dosing_sessions.assign(
        started_at=["09:30", "2024-02-04T09:15:00+01:00"], ended_at=["16:45", "2024-02-04T17:05:00+01:00"],
        present=["F1;F2;monitor:M1", "F1;physician:D7"],
        rescue_medication=[None, "lorazepam 1 mg 14:20, then water"],
        setting_notes=['Room "A", blinds down\nsecond line', "=a note a spreadsheet would run"],
        music_notes=["Hopkins playlist, 2nd half quieter", None])
    return Study(study.protocol, study.participants, study.responses, dosing)


def test_save_and_load_keep_the_record(tmp_path):
    study = _study_with_a_record()
    study.validate()
    save(study, tmp_path / "s")
    again = load(tmp_path / "s")
    pd.testing.assert_frame_equal(again.dosing_sessions, study.dosing_sessions)
    assert list(again.dosing_sessions.columns) == list(DOSING_COLUMNS)
    save(again, tmp_path / "t")
    assert (tmp_path / "s" / "dosing_sessions.csv").read_bytes() == (tmp_path / "t" / "dosing_sessions.csv").read_bytes()


def test_load_names_the_file_row_and_column(tmp_path):
    save(_study_with_a_record(), tmp_path)
    text = (tmp_path / "dosing_sessions.csv").read_text(encoding="utf-8")
    (tmp_path / "dosing_sessions.csv").write_text(text.replace(",16:45,", ",09:00,"), encoding="utf-8")
    with pytest.raises(StudyDataError) as caught:
        load(tmp_path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.row, problem.column, problem.value) == (
        str(tmp_path / "dosing_sessions.csv"), 2, "ended_at", "09:00")


def test_parquet_keeps_the_record(tmp_path):
    study = _study_with_a_record()
    write_parquet(study, tmp_path)
    pd.testing.assert_frame_equal(read_parquet(tmp_path).dosing_sessions, study.dosing_sessions)


def test_deidentification_drops_the_notes_and_shifts_the_times():
    study = _study_with_a_record()
    assert set(study.deidentified().dosing_sessions.columns) == set(DOSING_COLUMNS) - {
        "rescue_medication", "setting_notes", "music_notes"}
    shifted = shift_dates(study, {"P01": 10, "P02": -3}).dosing_sessions
    assert shifted["date"].tolist() == ["2024-02-02", "2024-02-14"]
    assert shifted["started_at"].tolist() == ["09:30", "2024-02-14T09:15:00+01:00"]  # a time of day stays
    assert shifted["ended_at"].tolist() == ["16:45", "2024-02-14T17:05:00+01:00"]
    assert shifted["present"].tolist() == ["F1;F2;monitor:M1", "F1;physician:D7"]
    Study(study.protocol, study.participants.drop(columns="mrn"), study.responses, shifted).validate()
