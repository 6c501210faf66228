"""REDCap: import a data dictionary + records export + mapping; export a project; round trips."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from alliance.protocol import default_protocol
from alliance.study import Study, StudyDataError, sort_responses
from alliance.study.formats import read_study, write_study
from alliance.study.formats.redcap import (
    DICTIONARY_COLUMNS,
    read_redcap,
    redcap_from_study,
    study_from_redcap,
    write_redcap,
)

from .builders import administration, responses, small_study
from .strategies import studies

# ---------------------------------------------------------------------------------------------
# Our own export, read back
# ---------------------------------------------------------------------------------------------


def test_export_is_a_redcap_project():
    project = redcap_from_study(small_study())
    d = project.dictionary
    assert tuple(d.columns) == DICTIONARY_COLUMNS and len(DICTIONARY_COLUMNS) == 18
    assert d.iloc[0][DICTIONARY_COLUMNS[0]] == "record_id" and d.iloc[0]["Form Name"] == "participant"
    field = d.set_index("Variable / Field Name")
    assert field.at["wai_sr_1", "Field Type"] == "radio"
    assert field.at["wai_sr_1", "Choices, Calculations, OR Slider Labels"] == (
        "1, Seldom | 2, Sometimes | 3, Fairly often | 4, Very often | 5, Always")
    assert field.at["grid_hamd17_1", "Form Name"] == "grid_hamd17"
    assert field.at["mrn", "Identifier?"] == "y" and field.at["site", "Identifier?"] == ""
    assert field.at["age", "Text Validation Type OR Show Slider Number"] == "integer"
    # insight was answered 70.5: a slider records whole numbers only, so it is a number field
    assert field.at["insight_1", "Field Type"] == "text"
    assert (field.at["insight_1", "Text Validation Min"], field.at["insight_1", "Text Validation Max"]) == ("0", "100")
    assert "record_id" not in set(d["Variable / Field Name"].iloc[1:])
    assert not any(name.endswith("_complete") for name in d["Variable / Field Name"])

    r = project.records
    assert list(r.columns[:4]) == ["record_id", "redcap_event_name", "redcap_repeat_instrument",
                                   "redcap_repeat_instance"]
    own = r[r["redcap_repeat_instrument"].isna()]
    # unique event names as REDCap derives them from the labels (18 characters of "Final preparation
    # session" → "final_preparation", "1 week after session 2" → "1_week_after_sessi")
    assert own["redcap_event_name"].tolist()[:6] == ["baseline_arm_1", "final_preparation_arm_1",
                                                     "dosing_session_1_arm_1", "dosing_session_2_arm_1",
                                                     "1_week_after_sessi_arm_1", "baseline_arm_2"]
    # dosing sessions: instances of the repeating form `dosing` right after the first event's row
    first_rows = r[r["record_id"] == "P01"]
    assert first_rows["redcap_event_name"].tolist()[:3] == ["baseline_arm_1"] * 3
    assert first_rows["redcap_repeat_instrument"].tolist()[1:3] == ["dosing", "dosing"]
    assert first_rows["redcap_repeat_instance"].tolist()[1:3] == ["1", "2"]
    assert field.at["dosing_date", "Form Name"] == "dosing"
    assert project.repeating.to_dict("records")[0] == {
        "event_name": "baseline_arm_1", "form_name": "dosing", "custom_form_label": "Session [dosing_session]"}
    p01_prep = r[(r["record_id"] == "P01") & (r["redcap_event_name"] == "final_preparation_arm_1")].iloc[0]
    assert p01_prep["wai_sr_1"] == "4" and p01_prep["wai_sr_complete"] == "2"
    assert pd.isna(p01_prep["grid_hamd17_complete"]) and pd.isna(p01_prep["site"])
    # each form's _complete column follows its fields
    columns = list(r.columns)
    assert columns.index("wai_sr_complete") == columns.index("wai_sr_12") + 1
    assert set(project.events["unique_event_name"]) >= {"final_preparation_arm_1", "12_months_after_se_arm_2"}
    assert set(project.events["event_name"]) >= {"Final preparation session", "12 months after session 2"}
    assert {"arm_num", "unique_event_name", "form"} == set(project.form_events.columns)


def test_event_day_offsets_count_from_each_arms_first_event():
    # REDCap's days offset is days from the arm's first event. Levin protocol (levin2024.yaml):
    # session1 = treatment start + 21, prep = session1 - 1, post_session1 = session1 + 1,
    # session2 = session1 + 12, week1/week4 = session2 + 7/28, months = session2 + 91/182/365;
    # baseline (enrolment) is day 0; the delayed arm's treatment starts 56 days after enrolment.
    study = small_study()
    project = redcap_from_study(study)
    timepoint_of = {t.label: t.id for t in study.protocol.timepoints}
    offsets = {(row.arm_num, timepoint_of[row.event_name]): row.day_offset for row in project.events.itertuples()}
    immediate = {"baseline": 0, "prep": 20, "session1": 21, "post_session1": 22, "session2": 33, "week1": 40,
                 "week4": 61, "month3": 124, "month6": 215, "month12": 398}
    for event, day in immediate.items():
        assert offsets[(1, event)] == day, event
        assert offsets[(2, event)] == (day if event == "baseline" else day + 56), event


def test_slider_for_whole_number_visual_analogue_answers():
    study = small_study()
    study.responses.loc[study.responses["value"] == 70.5, "value"] = 70.0
    field = redcap_from_study(study).dictionary.set_index("Variable / Field Name")
    assert field.at["insight_1", "Field Type"] == "slider"
    assert field.at["insight_1", "Choices, Calculations, OR Slider Labels"] == "0 (none) |  | 100 (extreme)"
    assert field.at["insight_1", "Text Validation Type OR Show Slider Number"] == "number"


def _same(a: Study, b: Study):
    ids = a.participant_ids
    pd.testing.assert_frame_equal(sort_responses(a.responses, a.protocol, ids),
                                  sort_responses(b.responses, b.protocol, ids))
    pd.testing.assert_frame_equal(a.participants, b.participants)
    assert (a.dosing_sessions is None) == (b.dosing_sessions is None)
    if a.dosing_sessions is not None:
        key = ["participant_id", "session"]
        pd.testing.assert_frame_equal(a.dosing_sessions.sort_values(key).reset_index(drop=True),
                                      b.dosing_sessions.sort_values(key).reset_index(drop=True))


def test_redcap_export_import_export_gives_identical_records(tmp_path):
    study = small_study()
    first = write_redcap(study, tmp_path / "a")
    again = read_redcap(tmp_path / "a" / "data_dictionary.csv", tmp_path / "a" / "records.csv",
                        tmp_path / "a" / "mapping.yaml")
    _same(study, again)
    second = write_redcap(again, tmp_path / "b")
    pd.testing.assert_frame_equal(first.records, second.records)
    pd.testing.assert_frame_equal(first.dictionary, second.dictionary)
    for name in ("data_dictionary.csv", "records.csv", "events.csv", "instrument_event_mapping.csv", "mapping.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_round_trip_keeps_dosing_sessions_and_enrolment_dates(tmp_path):
    # Finding 3 of issue 11: re-importing an unmodified REDCap export lost every dosing session.
    study = small_study()
    study.participants["enrolled_on"] = ["2024-01-01", None]
    study = Study(study.protocol, study.participants, study.responses, study.dosing_sessions)
    write_redcap(study, tmp_path)
    field = pd.read_csv(tmp_path / "data_dictionary.csv", dtype=str).set_index("Variable / Field Name")
    assert field.at["enrolled_on", "Text Validation Type OR Show Slider Number"] == "date_ymd"
    again = read_redcap(tmp_path / "data_dictionary.csv", tmp_path / "records.csv", tmp_path / "mapping.yaml")
    assert len(again.dosing_sessions) == 2 and again.participants["enrolled_on"].tolist()[0] == "2024-01-01"
    _same(study, again)
    # a mapping without dosing_fields: the dosing_* fields and enrolled_on map by their names
    mapping = yaml.safe_load((tmp_path / "mapping.yaml").read_text())
    del mapping["dosing_fields"]
    mapping["participant_fields"].pop("enrolled_on")
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping))
    _same(study, read_redcap(tmp_path / "data_dictionary.csv", tmp_path / "records.csv", tmp_path / "mapping.yaml"))


def test_a_bad_dosing_instance_is_named_by_records_line(tmp_path):
    write_redcap(small_study(), tmp_path)
    records = pd.read_csv(tmp_path / "records.csv", dtype=str, keep_default_na=False)
    line = int(records.index[records["redcap_repeat_instance"] == "2"][0])
    records.loc[line, "dosing_amount"] = "-5"
    records.to_csv(tmp_path / "records.csv", index=False)
    with pytest.raises(StudyDataError) as error:
        read_redcap(tmp_path / "data_dictionary.csv", tmp_path / "records.csv", tmp_path / "mapping.yaml")
    (problem,) = error.value.problems
    assert (problem.file, problem.row, problem.column, problem.value) == (
        str(tmp_path / "records.csv"), line + 2, "dosing_amount", "-5")


def test_format_dispatch(tmp_path):
    study = small_study()
    write_study(study, tmp_path, "redcap")
    _same(study, read_study(tmp_path, "redcap"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(study=studies(dosing=True))
def test_random_studies_survive_a_redcap_round_trip(study):
    with tempfile.TemporaryDirectory() as directory:
        first = write_redcap(study, directory)
        again = read_redcap(Path(directory) / "data_dictionary.csv", Path(directory) / "records.csv",
                            Path(directory) / "mapping.yaml")
    _same(study, again)
    pd.testing.assert_frame_equal(first.records, redcap_from_study(again).records)


# ---------------------------------------------------------------------------------------------
# A project built elsewhere: other field names, other codes, repeating instruments, checkboxes
# ---------------------------------------------------------------------------------------------

def _dictionary_row(name, form, field_type, label, choices="", identifier=""):
    row = dict.fromkeys(DICTIONARY_COLUMNS, "")
    row.update({"Variable / Field Name": name, "Form Name": form, "Field Type": field_type, "Field Label": label,
                "Choices, Calculations, OR Slider Labels": choices, "Identifier?": identifier})
    return row


def _foreign_project(tmp_path, records_change=None, mapping_change=None):
    rows = [
        _dictionary_row("record_id", "enrolment", "text", "Record ID"),
        _dictionary_row("group", "enrolment", "radio", "Group", "1, Immediate | 2, Delayed"),
        _dictionary_row("site", "enrolment", "text", "Site"),
        _dictionary_row("dob", "enrolment", "text", "Date of birth", identifier="y"),
        _dictionary_row("consent_date", "enrolment", "text", "Consent date"),
    ]
    rows += [_dictionary_row(f"wai_q{i}", "wai", "radio", f"WAI {i}",
                             "0, Seldom | 1, Sometimes | 2, Fairly often | 3, Very often | 4, Always")
             for i in range(1, 13)]
    rows.append(_dictionary_row("wai_date", "wai", "text", "Date"))
    rows += [_dictionary_row(f"hamd_{i}", "hamd", "radio", f"HAMD {i}", "1, a | 2, b | 3, c | 4, d | 5, e")
             for i in range(1, 17)]
    rows.append(_dictionary_row("hamd_17", "hamd", "checkbox", "HAMD 17 (legacy checkbox)", "0, a | 1, b | 2, c"))
    dictionary = pd.DataFrame(rows, columns=list(DICTIONARY_COLUMNS))

    def record(record_id, event, **values):
        return {"record_id": record_id, "redcap_event_name": event, **values}

    hamd = {f"hamd_{i}": "2" for i in range(1, 17)}                 # code 2 → GRID-HAMD 1
    ticked = {"hamd_17___0": "0", "hamd_17___1": "1", "hamd_17___2": "0"}
    wai = {f"wai_q{i}": "3" for i in range(1, 13)}                  # code 3 → WAI-SR 4
    records = [
        record("R1", "screening_arm_1", group="1", site="A", dob="1980-01-01", consent_date="2024-01-01",
               enrolment_complete="2", **hamd, **ticked, hamd_complete="2"),
        record("R1", "treatment_arm_1", redcap_repeat_instrument="wai", redcap_repeat_instance="1",
               wai_date="2024-01-22", **wai, wai_complete="2"),
        record("R1", "treatment_arm_1", redcap_repeat_instrument="wai", redcap_repeat_instance="2",
               **{**wai, "wai_q1": "4"}, wai_complete="2"),
        record("R1", "fu_week4_arm_1", **{**hamd, "hamd_1": "1"}, hamd_17___0="1", hamd_17___1="0",
               hamd_17___2="0", hamd_complete="1"),
        record("R2", "screening_arm_2", group="2", site="B", enrolment_complete="2", **hamd, hamd_complete="2"),
    ]
    columns = (["record_id", "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance",
                "group", "site", "dob", "consent_date", "enrolment_complete"]
               + [f"wai_q{i}" for i in range(1, 13)] + ["wai_date", "wai_complete"]
               + [f"hamd_{i}" for i in range(1, 17)] + ["hamd_17___0", "hamd_17___1", "hamd_17___2", "hamd_complete"])
    records = pd.DataFrame(records, columns=columns)
    if records_change:
        records = records_change(records)
    mapping = {
        "events": {"screening": "baseline", "fu_week4": "week4"},
        "repeating": {"wai": {1: "prep", 2: "post_session1"}},
        "forms": {"hamd": {"recode": {1: 0, 2: 1, 3: 2, 4: 3, 5: 4}}},
        "fields": {**{f"wai_q{i}": {"item": f"wai_sr_{i}", "shift": 1} for i in range(1, 13)},
                   **{f"hamd_{i}": f"grid_hamd17_{i}" for i in range(1, 18)},
                   "hamd_17": {"item": "grid_hamd17_17", "shift": 0}},
        "participant_fields": {"group": {"column": "arm", "recode": {1: "immediate", 2: "delayed"}},
                               "site": "site", "dob": "date_of_birth"},
        "administration_fields": {"wai_date": {"instrument": "wai_sr", "column": "administered_at"}},
        "ignore": ["consent_*"],
    }
    if mapping_change:
        mapping_change(mapping)
    dictionary.to_csv(tmp_path / "dictionary.csv", index=False)
    records.to_csv(tmp_path / "records.csv", index=False)
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping), encoding="utf-8")
    return tmp_path / "dictionary.csv", tmp_path / "records.csv", tmp_path / "mapping.yaml"


def test_import_foreign_project(tmp_path):
    study = read_redcap(*_foreign_project(tmp_path))
    p = study.participants
    assert p["participant_id"].tolist() == ["R1", "R2"] and p["arm"].tolist() == ["immediate", "delayed"]
    assert p["site"].tolist() == ["A", "B"] and p["date_of_birth"].tolist() == ["1980-01-01", pd.NA]
    got = {(r.participant_id, r.timepoint, r.item): r.value for r in study.responses.itertuples()}
    assert got[("R1", "prep", "wai_sr_1")] == 4                 # code 3 + 1
    assert got[("R1", "post_session1", "wai_sr_1")] == 5        # code 4 + 1
    assert got[("R1", "baseline", "grid_hamd17_1")] == 1        # code 2 recoded to 1
    assert got[("R1", "baseline", "grid_hamd17_17")] == 1       # box 1 ticked, no recoding (shift 0)
    assert got[("R1", "week4", "grid_hamd17_1")] == 0
    assert got[("R1", "week4", "grid_hamd17_17")] == 0
    assert ("R2", "baseline", "grid_hamd17_17") not in got      # no box ticked: unanswered
    wai_dates = study.responses.loc[study.responses["instrument"] == "wai_sr"].groupby("timepoint")["administered_at"]
    assert wai_dates.first()["prep"] == "2024-01-22" and pd.isna(wai_dates.first()["post_session1"])
    measures = study.measures(wide=True)
    assert measures.at["R1", "wai_sr.total@prep"] == 48
    assert measures.at["R1", "grid_hamd17.total@baseline"] == 17
    assert measures.at["R1", "grid_hamd17.total@week4"] == 15 * 1 + 0 + 0   # item 1 code 1 → 0, item 17 → 0


def _error(tmp_path, records_change=None, mapping_change=None) -> StudyDataError:
    with pytest.raises(StudyDataError) as caught:
        read_redcap(*_foreign_project(tmp_path, records_change, mapping_change))
    return caught.value


def test_event_with_no_mapping(tmp_path):
    def change(records):
        records.loc[3, "redcap_event_name"] = "unscheduled_arm_1"
        return records
    error = _error(tmp_path, change)
    (problem,) = error.problems
    assert problem.file == str(tmp_path / "records.csv")
    assert (problem.row, problem.column, problem.value) == (5, "redcap_event_name", "unscheduled_arm_1")
    assert problem.reason == "is a REDCap event with no mapping to a timepoint"
    assert "screening" in problem.allowed and "fu_week4" in problem.allowed and "mapping.yaml" in problem.allowed
    assert "records.csv, row 5, column 'redcap_event_name': value 'unscheduled_arm_1'" in str(error)


def test_repeat_instance_with_no_mapping(tmp_path):
    def change(records):
        records.loc[2, "redcap_repeat_instance"] = "3"
        return records
    (problem,) = _error(tmp_path, change).problems
    # The instance is named, not its event: repeating: wai lists instances 1 and 2 only.
    assert (problem.row, problem.column, problem.value) == (4, "redcap_repeat_instance", "3")
    assert problem.reason == ("is instance 3 of the repeating instrument 'wai' (event treatment_arm_1), which "
                              f"repeating: wai in {tmp_path / 'mapping.yaml'} does not list")
    assert problem.allowed.startswith("instances 1, 2")


def test_field_not_in_the_dictionary(tmp_path):
    error = _error(tmp_path, lambda r: r.assign(mood_vas="50"))
    (problem,) = error.problems
    assert (problem.row, problem.column) == (1, "mood_vas")
    assert problem.reason == f"is not a field of the data dictionary {tmp_path / 'dictionary.csv'}"
    assert "fields of" in problem.allowed


def test_field_with_no_mapping(tmp_path):
    def unmap(mapping):
        del mapping["fields"]["wai_q3"]
    (problem,) = _error(tmp_path, mapping_change=unmap).problems
    assert (problem.row, problem.column) == (1, "wai_q3")
    assert problem.reason == "REDCap field of form 'wai' has no mapping"
    assert "ignore:" in problem.allowed


def test_code_the_recoding_does_not_cover(tmp_path):
    def change(records):
        records.loc[0, "hamd_4"] = "9"
        return records
    (problem,) = _error(tmp_path, change).problems
    assert (problem.row, problem.column, problem.value) == (2, "hamd_4", "9")
    assert problem.allowed == "codes 1, 2, 3, 4, 5"


def test_out_of_range_after_recoding_names_the_redcap_field(tmp_path):
    def change(records):
        records.loc[1, "wai_q2"] = "5"            # + 1 = 6, above the WAI-SR maximum of 5
        records.loc[0, "hamd_4"] = "5"            # → 4, but GRID-HAMD item 4 goes to 2 only
        return records
    problems = {p.column: p for p in _error(tmp_path, change).problems}
    assert (problems["wai_q2"].row, problems["wai_q2"].value, problems["wai_q2"].reason) == (3, "6", "is out of range (record 'R1', wai instance 1)")
    assert problems["wai_q2"].allowed.startswith("whole numbers 1–5")
    assert problems["hamd_4"].row == 2 and problems["hamd_4"].allowed.startswith("whole numbers 0–2")


def test_checkbox_with_two_boxes_ticked(tmp_path):
    def change(records):
        records.loc[0, "hamd_17___2"] = "1"
        return records
    (problem,) = _error(tmp_path, change).problems
    assert (problem.row, problem.column, problem.reason) == (2, "hamd_17", "has more than one box ticked")


def test_record_without_an_arm(tmp_path):
    def change(records):
        records.loc[4, "group"] = None
        records.loc[4, "redcap_event_name"] = "screening"
        return records
    (problem,) = _error(tmp_path, change).problems
    assert (problem.row, problem.column) == (6, "group")
    assert "has no arm" in problem.reason


def test_bad_mapping_names_file_and_key(tmp_path):
    def change(mapping):
        mapping["events"]["fu_week4"] = "week_4"
        mapping["fields"]["wai_q1"] = {"item": "wai_sr_13"}
        mapping["colour"] = "red"
    error = _error(tmp_path, mapping_change=change)
    got = {p.column: p for p in error.problems}
    assert got["events.fu_week4"].value == "week_4" and "week4" in got["events.fu_week4"].allowed
    assert got["fields.wai_q1.item"].value == "wai_sr_13"
    assert "colour" in got
    assert all(p.file == str(tmp_path / "mapping.yaml") for p in error.problems)
    assert "mapping.yaml, key 'events.fu_week4'" in str(error)


def test_given_participants_table_is_used(tmp_path):
    files = _foreign_project(tmp_path)
    participants = pd.DataFrame({"participant_id": ["R1", "R2"], "arm": ["delayed", "immediate"]})
    mapping = yaml.safe_load(files[2].read_text())
    del mapping["participant_fields"]
    mapping["ignore"] += ["group", "site", "dob"]
    study = study_from_redcap(pd.read_csv(files[0], dtype="string"), pd.read_csv(files[1], dtype="string"),
                              mapping, default_protocol(), participants)
    assert study.participants["arm"].tolist() == ["delayed", "immediate"]


def test_default_mapping_needs_no_file(tmp_path):
    data = responses(administration("P01", "prep", "wai_sr", 3), administration("P01", "week4", "grid_hamd17", 2))
    data.loc[data["instrument"] == "grid_hamd17", "value"] = 1.0
    study = Study(default_protocol(), pd.DataFrame({"participant_id": ["P01"], "arm": ["delayed"]}), data)
    project = write_redcap(study, tmp_path)
    (tmp_path / "mapping.yaml").unlink()
    # a project built by hand with events named like the timepoints (REDCap derives
    # prep_arm_2 from an event labelled "prep")
    records = pd.read_csv(tmp_path / "records.csv", dtype=str, keep_default_na=False)
    records["redcap_event_name"] = records["redcap_event_name"].map(
        {"baseline_arm_2": "baseline_arm_2", "final_preparation_arm_2": "prep_arm_2", "4_weeks_after_sess_arm_2": "week4_arm_2"})
    records.to_csv(tmp_path / "records.csv", index=False)
    again = read_redcap(tmp_path / "data_dictionary.csv", tmp_path / "records.csv")   # events named like timepoints
    assert again.participants["arm"].tolist() == ["delayed"]                           # arm 2 = the second arm
    _same(study, again)
    assert records["redcap_event_name"].tolist() == ["baseline_arm_2", "prep_arm_2", "week4_arm_2"]
    assert project.records["redcap_event_name"].tolist() == ["baseline_arm_2", "final_preparation_arm_2",
                                                             "4_weeks_after_sess_arm_2"]


def test_a_mapping_file_is_read_with_the_bounded_yaml_reader(tmp_path):
    write_redcap(small_study(), tmp_path)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9))
    (tmp_path / "mapping.yaml").write_text(bomb)
    with pytest.raises(StudyDataError) as refused:
        read_redcap(tmp_path / "data_dictionary.csv", tmp_path / "records.csv", tmp_path / "mapping.yaml")
    (problem,) = refused.value.problems
    assert problem.file == str(tmp_path / "mapping.yaml") and "aliases are expanded" in problem.reason
    (tmp_path / "mapping.yaml").write_bytes("events: {prep: prép}\n".encode("latin-1"))
    with pytest.raises(StudyDataError, match="is not UTF-8"):
        read_redcap(tmp_path / "data_dictionary.csv", tmp_path / "records.csv", tmp_path / "mapping.yaml")


def test_records_lines_count_blank_lines(tmp_path):
    write_redcap(small_study(), tmp_path)
    lines = (tmp_path / "records.csv").read_text().splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if line.startswith("P01,final_preparation_arm_1"))
    header = lines[0].rstrip("\n").split(",")
    cells = lines[target].rstrip("\n").split(",")
    cells[header.index("wai_sr_1")] = "9"
    lines[target] = ",".join(cells) + "\n"
    lines.insert(1, "\n")
    (tmp_path / "records.csv").write_text("".join(lines))
    with pytest.raises(StudyDataError) as refused:
        read_redcap(tmp_path / "data_dictionary.csv", tmp_path / "records.csv", tmp_path / "mapping.yaml")
    (problem,) = refused.value.problems
    assert (problem.row, problem.column, problem.value) == (target + 2, "wai_sr_1", "9")
