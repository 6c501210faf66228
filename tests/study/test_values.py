"""Values in the tidy tables: numbers finite, ids of one documented pattern (docs/data.md)."""

from __future__ import annotations

import pandas as pd
import pytest

from alliance.study import StudyDataError, load, save
from alliance.study.validation import ID_PATTERN, check_dosing_sessions, check_participants

from .builders import small_study


def write_participants(tmp_path, rows: str):
    save(small_study(), tmp_path)
    path = tmp_path / "participants.csv"
    path.write_text("participant_id,arm,age\n" + rows, encoding="utf-8")
    return path


@pytest.mark.parametrize("age", ["inf", "-Infinity", "1e309", "nan"])
def test_a_covariate_that_is_not_a_finite_number_is_refused(tmp_path, age):
    path = write_participants(tmp_path, f"P01,immediate,41\nP02,delayed,{age}\n")
    with pytest.raises(StudyDataError) as caught:
        load(tmp_path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.row, problem.column, problem.value) == (str(path), 3, "age", age)
    assert problem.reason == "is not a finite number"


def test_in_memory_covariates_with_missing_values_are_accepted():
    study = small_study()
    participants = study.participants.assign(age=[41.0, float("nan")])
    assert check_participants(study.protocol, participants) == []
    (problem,) = check_participants(study.protocol, participants.assign(age=[41.0, float("inf")]))
    assert (problem.row, problem.column) == (3, "age")


@pytest.mark.parametrize("amount", ["1e309", "inf", "nan"])
def test_a_dose_amount_that_is_not_finite_is_refused(amount):
    study = small_study()
    dosing = pd.DataFrame({"participant_id": ["P01"], "session": ["1"], "amount": [amount], "unit": ["mg"]},
                          dtype="string")
    (problem,) = check_dosing_sessions(study.protocol, dosing, ["P01", "P02"])
    assert (problem.file, problem.row, problem.column) == ("dosing_sessions.csv", 2, "amount")
    assert problem.allowed == "a number ≥ 0 and < 10,000"


@pytest.mark.parametrize("participant_id", ["P/01", "P\x0001", "P 01", "P\t01", "-P01", "P" * 65, "../etc"])
def test_a_participant_id_outside_the_pattern_is_refused(tmp_path, participant_id):
    path = write_participants(tmp_path, f'"{participant_id}",immediate,41\nP02,delayed,40\n')
    with pytest.raises(StudyDataError) as caught:
        load(tmp_path)
    problem = next(p for p in caught.value.problems if p.file == str(path))
    assert (problem.row, problem.column, problem.value) == (2, "participant_id", participant_id)
    assert "at most 64 characters" in problem.allowed


@pytest.mark.parametrize("participant_id", ["P01", "P00001", "p-1.a_b", "0042", "P" * 64])
def test_the_ids_tests_and_the_synthetic_trial_use_fit_the_pattern(participant_id):
    assert ID_PATTERN.fullmatch(participant_id)


def test_unlisted_ids_in_dosing_are_checked_when_no_participants_are_given():
    study = small_study()
    dosing = pd.DataFrame({"participant_id": ["P/01"], "session": ["1"]}, dtype="string")
    (problem,) = check_dosing_sessions(study.protocol, dosing, None)
    assert (problem.row, problem.column, problem.value) == (2, "participant_id", "P/01")


@pytest.mark.parametrize(("age", "refused"), [("130", False), ("0", False), ("131", True), ("530", True),
                                              ("-1", True), ("unknown", False)])
def test_an_age_outside_0_to_130_years_is_refused(tmp_path, age, refused):
    path = write_participants(tmp_path, f"P01,immediate,41\nP02,delayed,{age}\n")
    if not refused:
        assert load(tmp_path).participants["age"].tolist()[1] in (int(age) if age.isdigit() else age,)
        return
    with pytest.raises(StudyDataError) as caught:
        load(tmp_path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.row, problem.column, problem.value, problem.reason) == (
        str(path), 3, "age", age, "is not an age")


@pytest.mark.parametrize(("amount", "refused"), [("9999.9", False), ("10000", True), ("25000", True)])
def test_a_dose_of_10000_or_more_is_refused(amount, refused):
    study = small_study()
    dosing = study.dosing_sessions.astype({"amount": object})
    dosing.loc[1, "amount"] = amount
    problems = check_dosing_sessions(study.protocol, dosing, ["P01", "P02"])
    assert bool(problems) == refused
    if refused:
        assert problems[0].reason == "is not a dose amount" and "< 10,000" in problems[0].allowed


def test_control_characters_are_refused_in_free_text_and_ids_in_facilitator_lists():
    study = small_study()
    participants = study.participants.copy()
    participants.loc[0, "site"] = "site\x00A"
    participants.loc[1, "facilitator_ids"] = "F2;F/3"
    problems = {(p.row, p.column): p for p in check_participants(study.protocol, participants)}
    assert problems[(2, "site")].value == "site\\x00A" and problems[(2, "site")].reason == "holds a control character"
    assert problems[(3, "facilitator_ids")].reason == "holds a facilitator id that is not valid"
    participants.loc[0, "site"] = "two\tparts\nand lines"  # tabs and line breaks are text
    participants.loc[1, "facilitator_ids"] = "F2; F3"
    assert check_participants(study.protocol, participants) == []
