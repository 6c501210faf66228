"""The tidy contract: load / save round trip, validation messages, scores and measures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alliance.protocol import default_protocol, measure_name, parse_measure
from alliance.study import Study, StudyDataError, load, protocol_measures, save
from alliance.study.errors import MAX_LISTED

from .builders import administration, responses, small_study


def _write(directory, participants: str, answers: str, dosing: str | None = None):
    directory.mkdir(exist_ok=True)
    (directory / "participants.csv").write_text(participants, encoding="utf-8")
    (directory / "responses.csv").write_text(answers, encoding="utf-8")
    if dosing is not None:
        (directory / "dosing_sessions.csv").write_text(dosing, encoding="utf-8")
    return directory


PARTICIPANTS = "participant_id,arm\nP01,immediate\nP02,delayed\n"
HEADER = "participant_id,timepoint,instrument,item,value\n"


def _problems(directory) -> list:
    with pytest.raises(StudyDataError) as caught:
        load(directory)
    return caught.value


# ---------------------------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------------------------

def test_save_load_round_trip_gives_identical_tables(tmp_path):
    study = small_study()
    study.validate()
    save(study, tmp_path / "s")
    again = load(tmp_path / "s")
    pd.testing.assert_frame_equal(again.responses, study.responses)
    pd.testing.assert_frame_equal(again.participants, study.participants)
    pd.testing.assert_frame_equal(again.dosing_sessions, study.dosing_sessions)
    assert again.protocol == study.protocol
    # and once more: the files written the second time are byte-identical
    save(again, tmp_path / "t")
    for name in ("participants.csv", "responses.csv", "dosing_sessions.csv", "protocol.yaml"):
        assert (tmp_path / "s" / name).read_bytes() == (tmp_path / "t" / name).read_bytes()


def test_contract_dtypes_and_number_formatting(tmp_path):
    study = small_study()
    assert list(study.responses.columns) == ["participant_id", "timepoint", "instrument", "item", "value", "rater",
                                             "administered_at"]
    assert study.responses["value"].dtype == float
    assert study.responses["rater"].dtype == "string"
    assert study.participants["age"].dtype == "Int64"
    assert study.participants["mrn"].tolist() == ["00123", "00456"]     # an identifier stays text
    save(study, tmp_path)
    lines = (tmp_path / "responses.csv").read_text().splitlines()
    assert lines[1] == "P01,baseline,grid_hamd17,grid_hamd17_1,1,R1,2024-01-02"   # 1, not 1.0
    assert any(",70.5,," in line for line in lines)


def test_protocol_yaml_is_optional(tmp_path):
    _write(tmp_path, PARTICIPANTS, HEADER + "P01,prep,wai_sr,wai_sr_1,4\n")
    study = load(tmp_path)
    assert study.protocol == default_protocol()
    assert study.responses["rater"].isna().all() and study.dosing_sessions is None


def test_covariate_that_only_looks_numeric_stays_text(tmp_path):
    _write(tmp_path, "participant_id,arm,code,dose_mg\nP01,immediate,007,1.50\nP02,delayed,12,2\n",
           HEADER + "P01,prep,wai_sr,wai_sr_1,4\n")
    study = load(tmp_path)
    assert study.participants["code"].tolist() == ["007", "12"]
    assert study.participants["dose_mg"].tolist() == ["1.50", "2"]


# ---------------------------------------------------------------------------------------------
# Every bad input names file, row, column, value and what is allowed
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("row", "column", "value", "reason", "allowed"), [
    ("P01,wk4,grid_hamd17,grid_hamd17_1,2", "timepoint", "wk4", "is not a timepoint of protocol levin2024",
     "baseline, prep, session1, post_session1, session2, week1, week4, month3, month6, month12"),
    ("P01,peak,meq30,meq30_1,2", "timepoint", "peak", "is a derived timepoint", "baseline, prep"),
    ("P01,baseline,phq,phq_1,2", "instrument", "phq", "is not an instrument in the bank", "at baseline: grid_hamd17"),
    ("P01,baseline,wai_sr,wai_sr_1,2", "instrument", "wai_sr", "is not given at timepoint 'baseline'",
     "at baseline: grid_hamd17"),
    ("P01,prep,wai_sr,wai_sr_13,2", "item", "wai_sr_13", "is not an item of wai_sr", "wai_sr_1 … wai_sr_12"),
    ("P01,prep,wai_sr,wai_sr_2,7", "value", "7", "is out of range", "whole numbers 1–5"),
    ("P01,prep,wai_sr,wai_sr_2,0", "value", "0", "is out of range", "whole numbers 1–5"),
    ("P01,prep,wai_sr,wai_sr_2,x", "value", "x", "is not a number", "whole numbers 1–5"),
    ("P01,prep,wai_sr,wai_sr_2,2.5", "value", "2.5", "is not an allowed answer", "whole numbers 1–5"),
    ("P01,session1,insight,insight_1,100.5", "value", "100.5", "is out of range", "any number from 0 to 100"),
    ("P01,prep,wai_sr,wai_sr_2,", "value", None, "is empty", "a number"),
    ("P09,prep,wai_sr,wai_sr_2,3", "participant_id", "P09", "is not listed in", "a participant_id listed in"),
    (",prep,wai_sr,wai_sr_2,3", "participant_id", None, "is empty", "a participant id"),
])
def test_bad_response_row(tmp_path, row, column, value, reason, allowed):
    # the bad row is line 3 of responses.csv (header, one good row, the bad row); the value is
    # shown as the file holds it
    _write(tmp_path, PARTICIPANTS, HEADER + "P01,prep,wai_sr,wai_sr_1,4\n" + row + "\n")
    error = _problems(tmp_path)
    (problem,) = error.problems
    assert problem.file == str(tmp_path / "responses.csv")
    assert (problem.row, problem.column, problem.value) == (3, column, value)
    assert reason in problem.reason
    assert allowed in problem.allowed
    message = str(error)
    assert f"responses.csv, row 3, column {column!r}" in message
    assert allowed in message


def test_one_administration_has_one_rater_and_one_time(tmp_path):
    # rows 2-3 are one WAI-SR administration; row 3 names another rater, row 4 starts another one
    header = "participant_id,timepoint,instrument,item,value,rater,administered_at\n"
    _write(tmp_path, PARTICIPANTS, header + "P01,prep,wai_sr,wai_sr_1,4,self,2024-01-02\n"
           "P01,prep,wai_sr,wai_sr_2,4,staff,2024-01-02\n"
           "P02,prep,wai_sr,wai_sr_1,4,self,2024-01-02\n"
           "P02,prep,wai_sr,wai_sr_2,4,self,\n")
    problems = _problems(tmp_path).problems
    assert [(p.row, p.column, p.value) for p in problems] == [(3, "rater", "staff"), (5, "administered_at", None)]
    assert "'self' as on row 2" in problems[0].allowed and "one rater" in problems[0].reason
    assert "'2024-01-02' as on row 4" in problems[1].allowed


def test_unlisted_participant_names_participants_csv(tmp_path):
    _write(tmp_path, PARTICIPANTS, HEADER + "P09,prep,wai_sr,wai_sr_1,4\n")
    (problem,) = _problems(tmp_path).problems
    assert str(tmp_path / "participants.csv") in problem.allowed


def test_duplicate_answer_names_both_rows(tmp_path):
    _write(tmp_path, PARTICIPANTS, HEADER + "P01,prep,wai_sr,wai_sr_1,4\nP01,prep,wai_sr,wai_sr_2,4\n"
           "P01,prep,wai_sr,wai_sr_1,5\n")
    (problem,) = _problems(tmp_path).problems
    assert (problem.row, problem.column, problem.value) == (4, "item", "wai_sr_1")
    assert "first on row 2" in problem.reason
    assert problem.allowed == "one answer per participant, timepoint and item"


@pytest.mark.parametrize(("participants", "row", "column", "value", "allowed"), [
    ("participant_id,arm\nP01,immediate\nP02,waitlist\n", 3, "arm", "waitlist", "immediate, delayed"),
    ("participant_id,arm\nP01,immediate\nP01,delayed\n", 3, "participant_id", "P01", "each participant once"),
    ("participant_id,arm\nP01,immediate\n,delayed\n", 3, "participant_id", None, "a participant id"),
])
def test_bad_participants(tmp_path, participants, row, column, value, allowed):
    _write(tmp_path, participants, HEADER + "P01,prep,wai_sr,wai_sr_1,4\n")
    (problem,) = _problems(tmp_path).problems
    assert problem.file == str(tmp_path / "participants.csv")
    assert (problem.row, problem.column, problem.value, problem.allowed) == (row, column, value, allowed)


def test_missing_and_unknown_columns(tmp_path):
    _write(tmp_path, "participant_id\nP01\n", "participant_id,timepoint,item,value,score\nP01,prep,wai_sr_1,4,1\n")
    error = _problems(tmp_path)
    described = [(p.file.rsplit("/", 1)[-1], p.column, p.reason) for p in error.problems]
    assert ("participants.csv", "arm", "required columns are missing") in described
    assert ("responses.csv", "instrument", "required columns are missing") in described
    assert ("responses.csv", "score", "are not columns of the responses table") in described


def test_bad_dosing_sessions(tmp_path):
    _write(tmp_path, PARTICIPANTS, HEADER + "P01,prep,wai_sr,wai_sr_1,4\n",
           "participant_id,session,date,compound,amount,unit\n"
           "P01,1,2024-01-23,psilocybin,20,mg/70kg\n"
           "P01,3,2024-02-23,psilocybin,30,mg/70kg\n"
           "P01,1,23/01/2024,psilocybin,twenty,mg/m2\n")
    problems = {(p.row, p.column): p for p in _problems(tmp_path).problems}
    assert problems[(3, "session")].allowed == "1, 2"
    assert "appears twice" in problems[(4, "session")].reason
    assert problems[(4, "date")].value == "23/01/2024" and "ISO-8601" in problems[(4, "date")].allowed
    assert problems[(4, "amount")].value == "twenty"
    assert problems[(4, "unit")].allowed == "mg, mg/kg, mg/70kg"


def test_all_problems_collected_and_message_capped(tmp_path):
    rows = "".join(f"P01,prep,wai_sr,wai_sr_{i % 12 + 1},9\n" for i in range(12)) + \
        "".join(f"P02,wk{k},grid_hamd17,grid_hamd17_1,1\n" for k in range(2, 32))
    _write(tmp_path, PARTICIPANTS, HEADER + rows)
    error = _problems(tmp_path)
    assert len(error.problems) == 42
    message = str(error)
    assert message.count("\n  ") == MAX_LISTED + 1
    assert f"… and {42 - MAX_LISTED} more problems" in message
    assert [p.row for p in error.problems] == sorted(p.row for p in error.problems)


def test_in_memory_study_validates_with_save_line_numbers():
    study = small_study()
    bad = study.responses.copy()
    bad.loc[3, "value"] = 9.0
    with pytest.raises(StudyDataError) as caught:
        Study(study.protocol, study.participants, bad).validate()
    (problem,) = caught.value.problems
    assert (problem.file, problem.row, problem.column, problem.value) == ("responses.csv", 5, "value", 9)
    assert problem.allowed.startswith("whole numbers 0–")


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(StudyDataError, match="is not a directory"):
        load(tmp_path / "nowhere")
    (tmp_path / "participants.csv").write_text(PARTICIPANTS)
    with pytest.raises(StudyDataError, match="responses.csv.*does not exist"):
        load(tmp_path)


# ---------------------------------------------------------------------------------------------
# Scores and measures: expected values worked by hand (see builders.small_study)
# ---------------------------------------------------------------------------------------------

def test_measures_long_hand_worked():
    long = small_study().measures()
    assert list(long.columns) == ["participant_id", "measure", "value"]
    got = {(p, m): v for p, m, v in long.itertuples(index=False)}
    assert got[("P01", "wai_sr.total@prep")] == 48          # 12 × 4
    assert got[("P01", "wai_sr.bond@prep")] == 16           # 4 × 4
    assert got[("P01", "wai_sr.total@week1")] == 60         # 12 × 5
    assert got[("P01", "grid_hamd17.total@baseline")] == 17  # 17 × 1
    assert got[("P02", "grid_hamd17.total@baseline")] == 0
    assert got[("P02", "wai_sr.total@prep")] == pytest.approx(33 * 12 / 11)   # prorated: 36
    assert got[("P02", "wai_sr.task@prep")] == pytest.approx(3 * 3 * 4 / 3)  # wai_sr_12 is a task item: 12
    assert got[("P01", "meq30.total@session1")] == 3         # mean of 30 × 3
    assert got[("P01", "meq30.total_pct@session1")] == 60    # 3 / 5
    assert got[("P01", "meq30.total@peak")] == 4             # max(3, 4)
    assert got[("P01", "meq30.total_pct@peak")] == 80
    assert got[("P01", "insight.score@peak")] == 70.5        # max(40, 70.5)
    assert got[("P02", "meq30.total@peak")] == 2             # only session 1 scored
    assert ("P02", "insight.score@peak") not in got          # never administered: no row
    # participants in table order, then measures in protocol order
    assert long["participant_id"].tolist() == sorted(long["participant_id"])
    names = protocol_measures(default_protocol())
    p01 = long.loc[long["participant_id"] == "P01", "measure"].tolist()
    assert p01 == sorted(p01, key=names.index)


def test_measures_wide():
    study = small_study()
    wide = study.measures(wide=True)
    assert wide.index.name == "participant_id" and wide.index.tolist() == ["P01", "P02"]
    assert tuple(wide.columns) == protocol_measures(study.protocol)
    assert wide.at["P01", "meq30.mystical@peak"] == 4
    assert math.isnan(wide.at["P02", "insight.score@peak"])
    assert math.isnan(wide.at["P01", "grid_hamd17.total@month12"])
    long = study.measures()
    assert wide.notna().sum().sum() == len(long)


def test_peak_ignores_a_session_whose_score_is_missing():
    # P01's session-2 MEQ30 has 7 unanswered items: more than the 6 the total allows, so no total;
    # the peak is session 1's 2.0. The ineffability subscale (3 items, none missing allowed) is
    # scored at session 2 only if all three are answered.
    protocol = default_protocol()
    s2 = [5] * 23 + [None] * 7
    data = responses(administration("P01", "session1", "meq30", 2), administration("P01", "session2", "meq30", s2))
    study = Study(protocol, pd.DataFrame({"participant_id": ["P01"], "arm": ["immediate"]}), data)
    got = dict(zip(study.measures()["measure"], study.measures()["value"], strict=True))
    assert "meq30.total@session2" not in got
    assert got["meq30.total@peak"] == 2


def test_scores_one_row_per_administration():
    scores = small_study().scores()
    assert list(scores.columns[:3]) == ["participant_id", "timepoint", "instrument"]
    assert len(scores) == 10
    row = scores[(scores["participant_id"] == "P01") & (scores["instrument"] == "meq30")
                 & (scores["timepoint"] == "session2")].iloc[0]
    assert row["total"] == 4 and bool(row["complete"]) is True   # 80% ≥ 60% on mystical and positive mood
    assert scores["timepoint"].tolist()[:7] == ["baseline", "prep", "session1", "session1", "session2", "session2",
                                                "week1"]


def test_measure_names():
    assert measure_name("wai_sr", "total", "prep") == "wai_sr.total@prep"
    parts = parse_measure("meq30.total_pct@peak")
    assert (parts.instrument, parts.scale, parts.timepoint) == ("meq30", "total_pct", "peak")
    assert parts.name == "meq30.total_pct@peak"
    with pytest.raises(StudyDataError, match="INSTRUMENT.SCALE@TIMEPOINT"):
        parse_measure("wai_sr total prep")
    names = protocol_measures(default_protocol())
    assert names[0] == "grid_hamd17.total@baseline"
    assert "meq30.mystical_pct@peak" in names and "ebi.score@peak" in names
    assert names.index("meq30.total@peak") > names.index("grid_hamd17.total@month12")


def test_deidentified_drops_identifier_columns():
    study = small_study()
    assert "mrn" in study.participants.columns
    assert "mrn" not in study.deidentified().participants.columns
    assert "age" in study.deidentified().participants.columns


def test_values_may_be_given_as_numbers_or_text():
    study = small_study()
    as_text = study.responses.assign(value=study.responses["value"].map(lambda v: f"{v:g}"))
    other = Study(study.protocol, study.participants, as_text)
    assert other.responses["value"].dtype == "string"
    np.testing.assert_allclose(other.measures(wide=True).to_numpy(), study.measures(wide=True).to_numpy())


def test_an_enrolment_date_with_a_control_character_is_refused_and_spaces_are_dropped(tmp_path):
    """Found by the import mutation test: a vertical tab after the last date was stripped on storage,
    so the stored study differed from the one read. Now it is refused; spaces around a date are
    dropped when reading, so what is read is what is stored."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from alliance.study import StudyDataError, load, save
    from tests.web.conftest import make_study

    save(make_study(n_participants=3, seed=11), tmp_path)
    path = tmp_path / "participants.csv"
    original = path.read_bytes()
    path.write_bytes(original.rstrip(b"\n") + b"\x0b")
    with pytest.raises(StudyDataError) as refused:
        load(tmp_path)
    (problem,) = [p for p in refused.value.problems if p.column == "enrolled_on"][:1]
    assert problem.row == 4 and "is not an enrolment date" in problem.describe()
    path.write_bytes(original.replace(b"2024-01-03", b" 2024-01-03 "))
    assert load(tmp_path).participants["enrolled_on"].iloc[2] == "2024-01-03"
