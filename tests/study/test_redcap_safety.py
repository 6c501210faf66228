"""REDCap: the safety tables (adverse events, vital signs, concomitant medications) and the dosing-day record.

Each table is a repeating form on the arm's first event, one instance per row; a round trip keeps
every table, and a REDCap cell the table's own checks refuse is named by the records file's line,
the REDCap field and the record.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from alliance.protocol import default_protocol
from alliance.simulate import simulate_trial
from alliance.study import Study, StudyDataError, sort_responses
from alliance.study.formats import read_study, write_study
from alliance.study.formats.redcap import (
    ADVERSE_EVENT_FIELDS,
    DICTIONARY_COLUMNS,
    DOSING_FIELDS,
    MEDICATION_FIELDS,
    VITAL_SIGN_FIELDS,
    read_redcap,
    redcap_from_study,
    write_redcap,
)

KEYS = {"dosing_sessions": ["participant_id", "session"], "adverse_events": ["ae_id"],
        "vital_signs": ["participant_id", "session", "measured_at"],
        "concomitant_medications": ["participant_id", "name", "start"]}


def safety_study() -> Study:
    """The demo's synthetic trial (adverse events, vital signs), with medications, a serious event with two
    ICH E2A criteria and a dosing-day record added."""
    study = simulate_trial(default_protocol(), n=6, seed=3)
    events = study.adverse_events.copy()
    first = events.index[0]
    events.loc[first, ["severity", "serious", "seriousness", "outcome", "action"]] = [
        3, True, "life_threatening;hospitalisation", "recovering", "session_interrupted"]
    events.loc[events.index[1], "code"] = "10019211"
    medications = pd.DataFrame([
        {"participant_id": "P001", "name": "Sertraline", "dose": "50 mg daily", "start": "2017-01-01",
         "stop": "2017-06-01", "indication": "depression"},
        {"participant_id": "P003", "name": "Ibuprofen", "dose": None, "start": "2018-09-01", "stop": None,
         "indication": None},
        {"participant_id": "P001", "name": "Sertraline", "dose": "25 mg", "start": "2017-08-01", "stop": None,
         "indication": " taper, then stop"}])
    dosing = study.dosing_sessions.copy()
    n = len(dosing)
    dosing["started_at"] = ["09:30"] * (n - 1) + [None]
    dosing["ended_at"] = ["16:45"] * (n - 2) + [f"{dosing['date'].iloc[n - 2]}T23:10", None]
    dosing["present"] = ["F1;F2;monitor:M1"] + ["F1"] * (n - 1)
    dosing["rescue_medication"] = ["lorazepam 1 mg 14:20"] + [None] * (n - 1)
    dosing["setting_notes"] = ["Room A, blinds down;\nquiet corridor "] + [None] * (n - 1)
    dosing["music_notes"] = ["=Hopkins playlist, 2nd half quieter"] + [None] * (n - 1)
    study = Study(study.protocol, study.participants, study.responses, dosing, adverse_events=events,
                  vital_signs=study.vital_signs, concomitant_medications=medications)
    study.validate()
    return study


def same(a: Study, b: Study) -> None:
    ids = a.participant_ids
    pd.testing.assert_frame_equal(sort_responses(a.responses, a.protocol, ids),
                                  sort_responses(b.responses, b.protocol, ids))
    pd.testing.assert_frame_equal(a.participants, b.participants)
    for table, key in KEYS.items():
        mine, theirs = getattr(a, table), getattr(b, table)
        assert (mine is None) == (theirs is None), table
        if mine is not None:
            # rows come back grouped by participant (a record's instances): compared in key order
            pd.testing.assert_frame_equal(mine.sort_values(key).reset_index(drop=True),
                                          theirs.sort_values(key).reset_index(drop=True), obj=table)


def read(directory):
    return read_redcap(directory / "data_dictionary.csv", directory / "records.csv", directory / "mapping.yaml")


def edit_records(directory, change):
    """Change the records file (``change`` edits the frame in place, or returns a new one)."""
    records = pd.read_csv(directory / "records.csv", dtype=str, keep_default_na=False)
    changed = change(records)
    records = changed if isinstance(changed, pd.DataFrame) else records
    records.to_csv(directory / "records.csv", index=False)
    return records


def line_of(records: pd.DataFrame, row: int) -> int:
    """The records file's line of a row: the header is line 1, and a note with a line break takes two."""
    breaks = sum(str(cell).count("\n") for cell in records.iloc[:row].to_numpy().ravel())
    return row + 2 + breaks


def problems_of(directory) -> list:
    with pytest.raises(StudyDataError) as caught:
        read(directory)
    return list(caught.value.problems)


def test_a_round_trip_keeps_the_safety_tables_and_the_dosing_day(tmp_path):
    study = safety_study()
    first = write_redcap(study, tmp_path / "a")
    again = read(tmp_path / "a")
    same(study, again)
    write_redcap(again, tmp_path / "b")
    for name in ("data_dictionary.csv", "records.csv", "repeating_instruments.csv", "instrument_event_mapping.csv",
                 "mapping.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # the repeating forms on each arm's first event
    repeating = first.repeating.to_dict("records")
    assert {(r["event_name"], r["form_name"]) for r in repeating} == {
        (f"baseline_arm_{n}", form) for n in (1, 2)
        for form in ("dosing", "adverse_events", "vital_signs", "concomitant_medications")}
    designated = first.form_events[first.form_events["unique_event_name"] == "baseline_arm_1"]["form"].tolist()
    assert designated[-4:] == ["dosing", "adverse_events", "vital_signs", "concomitant_medications"]


def test_the_mapping_names_every_field_and_the_default_names_map_without_it(tmp_path):
    study = safety_study()
    write_redcap(study, tmp_path)
    mapping = yaml.safe_load((tmp_path / "mapping.yaml").read_text())
    assert mapping["adverse_event_fields"] == ADVERSE_EVENT_FIELDS
    assert mapping["vital_sign_fields"] == VITAL_SIGN_FIELDS
    assert mapping["medication_fields"] == MEDICATION_FIELDS
    assert mapping["dosing_fields"] == DOSING_FIELDS
    for section in ("adverse_event_fields", "vital_sign_fields", "medication_fields", "dosing_fields"):
        del mapping[section]
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping))
    same(study, read(tmp_path))


def test_the_data_dictionary_of_the_safety_forms():
    project = redcap_from_study(safety_study())
    field = project.dictionary.set_index("Variable / Field Name")
    forms = ("dosing", "adverse_events", "vital_signs", "concomitant_medications")
    names = project.dictionary.loc[project.dictionary["Form Name"].isin(forms), "Variable / Field Name"]
    assert len(names) == 11 + 12 + 6 + 5
    assert names.str.fullmatch(r"[a-z][a-z0-9_]{0,25}").all(), names[~names.str.fullmatch(r"[a-z][a-z0-9_]{0,25}")]

    def cell(name, column):
        return field.at[name, column]

    assert cell("ae_severity", "Field Type") == "radio"
    assert cell("ae_severity", "Choices, Calculations, OR Slider Labels") == (
        "1, 1 Mild | 2, 2 Moderate | 3, 3 Severe | 4, 4 Life-threatening | 5, 5 Death")
    assert (cell("ae_serious", "Field Type"), cell("ae_expected", "Field Type")) == ("yesno", "yesno")
    assert cell("ae_seriousness", "Field Type") == "checkbox"
    codes = re.findall(r"(?:^| \| )([a-z_]+),", cell("ae_seriousness", "Choices, Calculations, OR Slider Labels"))
    assert codes == ["death", "life_threatening", "hospitalisation", "disability", "congenital_anomaly",
                     "important_medical_event"]
    assert cell("ae_relatedness", "Field Type") == "radio"
    assert (cell("ae_action", "Field Type"), cell("ae_outcome", "Field Type")) == ("dropdown", "dropdown")
    assert cell("ae_relatedness", "Choices, Calculations, OR Slider Labels").startswith("not_related, Not related | ")
    validation = "Text Validation Type OR Show Slider Number"
    assert (cell("ae_onset", validation), cell("medication_start", validation)) == ("date_ymd", "date_ymd")
    # the demo writes 2018-01-30T09:00, which REDCap's datetime_ymd (2018-01-30 09:00) refuses: kept as text
    assert cell("vital_measured_at", validation) == "" and "ISO-8601" in cell("vital_measured_at", "Field Note")
    assert (cell("vital_systolic_bp", "Text Validation Min"), cell("vital_systolic_bp", "Text Validation Max")) == (
        "50", "300")
    assert cell("vital_minutes_after_dose", "Text Validation Min") == "-240"
    # the dosing-day record: times of day (one end is a date-time: no validation), notes as REDCap notes
    assert cell("dosing_started_at", validation) == "time"
    assert cell("dosing_ended_at", validation) == "" and "HH:MM" in cell("dosing_ended_at", "Field Note")
    assert (cell("dosing_setting_notes", "Field Type"), cell("dosing_music_notes", "Field Type")) == ("notes", "notes")
    assert cell("ae_term", "Form Name") == "adverse_events" and cell("medication_name", "Form Name") == \
        "concomitant_medications"


def test_a_date_time_column_in_redcaps_own_form_gets_its_validation():
    study = safety_study()
    vitals = study.vital_signs.assign(measured_at=study.vital_signs["measured_at"].str.replace("T", " "))
    study = Study(study.protocol, study.participants, study.responses, study.dosing_sessions,
                  adverse_events=study.adverse_events, vital_signs=vitals)
    field = redcap_from_study(study).dictionary.set_index("Variable / Field Name")
    assert field.at["vital_measured_at", "Text Validation Type OR Show Slider Number"] == "datetime_ymd"


def test_a_seriousness_criterion_is_a_checkbox_both_ways(tmp_path):
    study = safety_study()
    write_redcap(study, tmp_path)
    records = pd.read_csv(tmp_path / "records.csv", dtype=str, keep_default_na=False)
    serious_id = study.adverse_events["ae_id"].iloc[0]
    row = records.index[records["ae_id"] == serious_id][0]
    ticked = {c.split("___")[1]: records.at[row, c] for c in records.columns if c.startswith("ae_seriousness___")}
    assert ticked == {"death": "0", "life_threatening": "1", "hospitalisation": "1", "disability": "0",
                      "congenital_anomaly": "0", "important_medical_event": "0"}
    # a non-serious event: every box unticked, and no criterion read back
    other = records.index[(records["ae_id"] != "") & (records["ae_id"] != serious_id)][0]
    assert {records.at[other, f"ae_seriousness___{code}"] for code in ticked} == {"0"}
    # tick one more box in REDCap: read back in ICH E2A order
    edit_records(tmp_path, lambda r: r.__setitem__("ae_seriousness___important_medical_event",
                                                   r["ae_seriousness___important_medical_event"].where(
                                                       r.index != row, "1")))
    events = read(tmp_path).adverse_events.set_index("ae_id")
    assert events.at[serious_id, "seriousness"] == "life_threatening;hospitalisation;important_medical_event"
    assert pd.isna(events.at[records.at[other, "ae_id"], "seriousness"])


def test_a_grade_6_is_refused_naming_the_record_and_field(tmp_path):
    write_redcap(safety_study(), tmp_path)
    records = pd.read_csv(tmp_path / "records.csv", dtype=str, keep_default_na=False)
    row = records.index[records["redcap_repeat_instrument"] == "adverse_events"][1]
    edit_records(tmp_path, lambda r: r.__setitem__("ae_severity", r["ae_severity"].where(r.index != row, "6")))
    (problem,) = problems_of(tmp_path)
    record, instance = records.at[row, "record_id"], records.at[row, "redcap_repeat_instance"]
    assert (problem.file, problem.row, problem.column, problem.value) == (
        str(tmp_path / "records.csv"), line_of(records, row), "ae_severity", "6")
    assert problem.reason == f"is not a CTCAE grade (record {record!r}, adverse_events instance {instance})"
    assert problem.allowed.startswith("a CTCAE grade 1-5")


def test_a_yes_no_code_and_a_vital_sign_are_checked_as_in_the_csv_files(tmp_path):
    write_redcap(safety_study(), tmp_path)
    records = pd.read_csv(tmp_path / "records.csv", dtype=str, keep_default_na=False)
    event_row = records.index[records["redcap_repeat_instrument"] == "adverse_events"][2]
    vital_row = records.index[records["redcap_repeat_instrument"] == "vital_signs"][0]

    def change(r):
        r.loc[event_row, "ae_serious"] = "2"
        r.loc[vital_row, "vital_systolic_bp"] = "1200"
    edit_records(tmp_path, change)
    found = {(p.row, p.column): p for p in problems_of(tmp_path)}
    event_line, vital_line = line_of(records, event_row), line_of(records, vital_row)
    assert vital_line == vital_row + 3  # after the dosing instance whose setting note has a line break
    assert set(found) == {(event_line, "ae_serious"), (vital_line, "vital_systolic_bp")}
    assert found[(event_line, "ae_serious")].value == "2"
    assert found[(event_line, "ae_serious")].reason.startswith("is not yes or no (record ")
    assert found[(vital_line, "vital_systolic_bp")].reason.startswith("is out of the plausible range (record ")


def test_an_unknown_field_in_a_safety_form_is_refused_with_its_name(tmp_path):
    write_redcap(safety_study(), tmp_path)
    dictionary = pd.read_csv(tmp_path / "data_dictionary.csv", dtype=str, keep_default_na=False)
    row = dict.fromkeys(DICTIONARY_COLUMNS, "")
    row.update({"Variable / Field Name": "ae_grade_text", "Form Name": "adverse_events", "Field Type": "text",
                "Field Label": "Grade in words"})
    pd.concat([dictionary, pd.DataFrame([row])]).to_csv(tmp_path / "data_dictionary.csv", index=False)
    edit_records(tmp_path, lambda r: r.insert(len(r.columns), "ae_grade_text",
                                              r["ae_id"].where(r["ae_id"] == "", "severe")))
    (problem,) = problems_of(tmp_path)
    assert (problem.row, problem.column) == (1, "ae_grade_text")
    assert problem.reason == "REDCap field of form 'adverse_events' has no mapping"
    assert problem.allowed.startswith("list the field in ") and "under adverse_event_fields: (a column of " \
        "adverse_events.csv: ae_id, term," in problem.allowed
    # a column that is no field of the dictionary at all
    edit_records(tmp_path, lambda r: r.rename(columns={"ae_grade_text": "ae_extra"}))
    (problem,) = problems_of(tmp_path)
    assert (problem.column, problem.reason) == ("ae_extra", f"is not a field of the data dictionary "
                                                            f"{tmp_path / 'data_dictionary.csv'}")


def test_a_foreign_project_names_and_codes_its_fields_in_the_mapping(tmp_path):
    # Another team's project: the grade field is `aegrade`, relatedness coded 1-5, the criteria 1-6.
    study = safety_study()
    write_redcap(study, tmp_path)
    dictionary = pd.read_csv(tmp_path / "data_dictionary.csv", dtype=str, keep_default_na=False)
    dictionary["Variable / Field Name"] = dictionary["Variable / Field Name"].replace("ae_severity", "aegrade")
    relatedness = ["not_related", "unlikely", "possible", "probable", "definite"]
    criteria = ["death", "life_threatening", "hospitalisation", "disability", "congenital_anomaly",
                "important_medical_event"]
    dictionary.to_csv(tmp_path / "data_dictionary.csv", index=False)

    def change(r):
        r = r.rename(columns={"ae_severity": "aegrade", **{f"ae_seriousness___{c}": f"ae_seriousness___{n}"
                                                            for n, c in enumerate(criteria, start=1)}})
        return r.assign(ae_relatedness=r["ae_relatedness"].replace(
            {c: str(n) for n, c in enumerate(relatedness, start=1)}))
    edit_records(tmp_path, change)
    mapping = yaml.safe_load((tmp_path / "mapping.yaml").read_text())
    fields = mapping["adverse_event_fields"]
    del fields["ae_severity"]
    fields["aegrade"] = "severity"
    fields["ae_relatedness"] = {"column": "relatedness", "recode": dict(enumerate(relatedness, start=1))}
    fields["ae_seriousness"] = {"column": "seriousness", "recode": dict(enumerate(criteria, start=1))}
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping))
    same(study, read(tmp_path))
    # a code the recoding does not cover is named with its field
    edit_records(tmp_path, lambda r: r.__setitem__("ae_relatedness", r["ae_relatedness"].replace("4", "9")))
    found = problems_of(tmp_path)
    assert {(p.column, p.value, p.reason) for p in found} == {
        ("ae_relatedness", "9", f"is a code the recoding in {tmp_path / 'mapping.yaml'} does not cover")}


def test_a_mapping_section_names_columns_of_its_table(tmp_path):
    write_redcap(safety_study(), tmp_path)
    mapping = yaml.safe_load((tmp_path / "mapping.yaml").read_text())
    mapping["vital_sign_fields"]["vital_heart_rate"] = "pulse"
    mapping["medication_fields"]["medication_dose"] = {"column": "dose", "units": "mg"}
    mapping["adverse_event_fields"]["ae_term_local"] = "term"
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping))
    with pytest.raises(StudyDataError) as caught:
        read(tmp_path)
    found = {(p.column, p.reason) for p in caught.value.problems}
    assert found == {("vital_sign_fields.vital_heart_rate", "is not a column of vital_signs.csv"),
                     ("medication_fields.medication_dose.units", "is not a key of a medication_fields entry"),
                     ("adverse_event_fields.ae_term_local", "is the column field ae_term maps to")}
    assert all(p.where == "key" for p in caught.value.problems)


def test_write_study_exports_the_safety_tables(tmp_path):
    study = safety_study()
    write_study(study, tmp_path, "redcap")
    same(study, read_study(tmp_path, "redcap"))


def test_a_study_without_safety_tables_has_no_safety_forms():
    study = safety_study()
    plain = Study(study.protocol, study.participants, study.responses)
    project = redcap_from_study(plain)
    assert not {"adverse_events", "vital_signs", "concomitant_medications", "dosing"} & set(
        project.dictionary["Form Name"])
    assert "redcap_repeat_instrument" not in project.records.columns and project.repeating.empty
