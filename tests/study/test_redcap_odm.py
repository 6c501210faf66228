"""REDCap's project XML (CDISC ODM) read as the CSV export would give it, checked on real exports.

The REDCapR test projects hold, for one REDCap project each, the flat CSV records (data.csv),
the data dictionary (dictionary.csv) and the project XML (project.xml) of the same server. The
XML's records must equal the CSV's cell for cell; where the two files really differ, the
difference is named here and asserted exactly, so that a new one fails.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.study.errors import StudyDataError
from alliance.study.formats.redcap import choices, odm, read_dictionary, read_export
from alliance.study.formats.redcap.odm import is_odm, read_project_xml
from alliance.study.formats.redcap.schema import DICTIONARY_COLUMNS, EVENT, REPEAT_INSTANCE, REPEAT_INSTRUMENT

DATA = Path(__file__).parent / "data" / "redcap"
PROJECTS = sorted(p.name for p in DATA.glob("redcapr-*") if (p / "project.xml").is_file() and (p / "data.csv").is_file())
FIELD, FORM, TYPE = DICTIONARY_COLUMNS[0], DICTIONARY_COLUMNS[1], DICTIONARY_COLUMNS[3]

# Every real difference between a project's data.csv and its project.xml.
#   rows_only_csv / columns_only_csv / columns_only_xml: rows (record, event) and columns one file lacks;
#   cells: column → number of cells that differ (after line breaks are made spaces, below).
KNOWN = {
    # The CSV holds four records' rows in arm 2's event that the XML, exported later, no longer has
    # (the project is REDCapR's test of deleting arms).
    "redcapr-arm-multiple-delete": {"rows_only_csv": {("102", "event_1_arm_2"), ("103", "event_1_arm_2"),
                                                      ("105", "event_1_arm_2"), ("120", "event_1_arm_2")}},
    # data.csv was written by R: sex (codes 0 / 1) became FALSE / TRUE and the file-upload field
    # "[document]"; the XML names each uploaded file, carries the data access group (the CSV was
    # exported without it) and a field, interpreter_needed, added to the project after the CSV.
    "redcapr-simple": {"columns_only_xml": {"redcap_data_access_group", "interpreter_needed"},
                       "cells": {"sex": 5, "mugshot": 5}},
    # The survey was answered again between the two exports; ODM has no survey identifier.
    "redcapr-survey": {"columns_only_csv": {"redcap_survey_identifier"},
                       "cells": {"prescreening_survey_timestamp": 2}},
}


def _spaces(frame: pd.DataFrame) -> pd.DataFrame:
    # XML attribute-value normalisation (XML 1.0 §3.3.3) reads a line break in Value="…" as a space,
    # and R wrote some of the CSV's line breaks as runs of spaces: compare text with each run of
    # white space as one space.
    return frame.fillna("").astype(str).apply(lambda column: column.str.replace(r"\s+", " ", regex=True).str.strip())


def _keys(records: pd.DataFrame, record_id: str) -> list[str]:
    return [k for k in (record_id, EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE) if k in records.columns]


def _compare(project: str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    xml = read_project_xml(DATA / project / "project.xml")
    csv = read_export(DATA / project, source="csv")
    record_id = csv.dictionary[FIELD].iloc[0]
    assert xml.record_id == record_id
    keys = _keys(csv.records, record_id)
    assert _keys(xml.records, record_id) == keys
    found: dict = {}
    only_csv = [c for c in csv.records.columns if c not in xml.records.columns]
    only_xml = [c for c in xml.records.columns if c not in csv.records.columns]
    if only_csv:
        found["columns_only_csv"] = set(only_csv)
    if only_xml:
        found["columns_only_xml"] = set(only_xml)
    common = [c for c in csv.records.columns if c in xml.records.columns]
    # The columns the two share come in the same order.
    assert [c for c in xml.records.columns if c in common] == common
    a = _spaces(xml.records[common]).set_index(keys).sort_index()
    b = _spaces(csv.records[common]).set_index(keys).sort_index()
    rows_only_csv = set(b.index.difference(a.index))
    rows_only_xml = set(a.index.difference(b.index))
    if rows_only_csv:
        found["rows_only_csv"] = rows_only_csv
    if rows_only_xml:
        found["rows_only_xml"] = rows_only_xml
    both = a.index.intersection(b.index)
    differ = a.loc[both] != b.loc[both]
    cells = {c: int(n) for c, n in differ.sum().items() if n}
    if cells:
        found["cells"] = cells
    return found, a.loc[both], b.loc[both]


@pytest.mark.parametrize("project", PROJECTS)
def test_the_xml_records_are_the_csv_records_but_for_the_named_differences(project):
    found, _, _ = _compare(project)
    assert found == KNOWN.get(project, {})


def test_the_named_differences_are_what_they_say():
    _, xml, csv = _compare("redcapr-simple")
    # R's logical for REDCap's codes 0 / 1.
    assert (csv["sex"].map({"FALSE": "0", "TRUE": "1"}) == xml["sex"]).all()
    assert set(csv["mugshot"]) == {"[document]"}
    assert list(xml["mugshot"]) == [f"mugshot-{n}.jpg" for n in range(1, 6)]
    # Line breaks: the CSV's address has one, the XML the space XML makes of it.
    raw_csv = read_export(DATA / "redcapr-simple", source="csv").records
    raw_xml = read_project_xml(DATA / "redcapr-simple" / "project.xml").records
    assert raw_csv["address"].iloc[0] == "14 Rose Cottage St.\nKenning UK, 323232"
    assert raw_xml["address"].iloc[0] == "14 Rose Cottage St. Kenning UK, 323232"


@pytest.mark.parametrize("project", PROJECTS)
def test_the_xml_dictionary_is_the_csv_dictionary(project):
    xml = read_project_xml(DATA / project / "project.xml").dictionary
    csv = read_dictionary(DATA / project / "dictionary.csv")
    assert list(xml.columns) == list(DICTIONARY_COLUMNS)
    extra = {"redcapr-simple": ["interpreter_needed"]}.get(project, [])  # added after dictionary.csv
    assert [f for f in xml[FIELD] if f not in extra] == list(csv[FIELD])
    xml = xml[~xml[FIELD].isin(extra)].reset_index(drop=True)
    assert list(xml[FORM]) == list(csv[FORM])
    assert list(xml[TYPE]) == list(csv[TYPE])
    assert [choices(xml, f) for f in xml[FIELD]] == [choices(csv, f) for f in csv[FIELD]]
    validation = DICTIONARY_COLUMNS[7]
    assert list(xml[validation]) == list(csv[validation])
    assert list(xml[DICTIONARY_COLUMNS[4]].str.strip()) == list(csv[DICTIONARY_COLUMNS[4]].str.strip())


def test_a_checkbox_is_one_dictionary_row_and_one_column_per_choice():
    export = read_project_xml(DATA / "redcapr-checkboxes-1" / "project.xml")
    row = export.dictionary[export.dictionary[FIELD] == "check_two"]
    assert list(row[TYPE]) == ["checkbox"]
    assert choices(export.dictionary, "check_two") == {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}
    assert [c for c in export.records.columns if c.startswith("check_two")] == [f"check_two___{c}" for c in "abcde"]


def test_events_arms_and_designations_are_the_api_exports():
    export = read_project_xml(DATA / "redcapr-longitudinal" / "project.xml")
    events = pd.read_csv(DATA / "redcapr-longitudinal" / "event.csv", dtype=str)
    arms = pd.read_csv(DATA / "redcapr-longitudinal" / "arm.csv", dtype=str)
    assert list(export.events["unique_event_name"]) == list(events["unique_event_name"])
    assert list(export.events["event_name"]) == list(events["event_name"])
    assert list(export.events["arm_num"]) == [int(a) for a in events["arm_num"]]
    assert export.events["arm_num"].dtype == np.int64
    # The XML has what event.csv lacks: each event's day offset (redcap:DayOffset).
    assert list(export.events["day_offset"][:6]) == [0.0, 1.0, 3.0, 8.0, 10.0, 30.0]
    assert list(export.arms["name"]) == list(arms["name"]) == ["Drug A", "Drug B"]
    designated = export.form_events[export.form_events["unique_event_name"] == "enrollment_arm_1"]
    assert list(designated["form"]) == ["demographics", "contact_info", "baseline_data"]
    assert set(designated["arm_num"]) == {1}
    # Every row's event is one of the project's.
    assert set(export.records[EVENT]) <= set(export.events["unique_event_name"])


def test_a_classic_project_has_no_events_and_its_repeating_forms_no_event():
    export = read_project_xml(DATA / "redcapr-vignette-repeating" / "project.xml")
    assert export.events is None and export.arms is None and export.form_events is None
    assert EVENT not in export.records.columns
    assert export.repeating.to_dict("list") == {"event_name": ["", "", ""],
                                                "form_name": ["blood_pressure", "laboratory", "image"],
                                                "custom_form_label": ["[sbp] / [dbp]", "[lab] @ [conc]", ""]}
    instances = export.records[export.records[REPEAT_INSTRUMENT] == "blood_pressure"]
    assert list(instances[REPEAT_INSTANCE][:3]) == ["1", "2", "3"]
    assert list(instances["sbp"][:3]) == ["1.1", "1.2", "1.3"]


def test_each_row_is_located_at_the_form_element_it_starts_at():
    path = DATA / "redcapr-longitudinal" / "project.xml"
    export = read_project_xml(path)
    text = path.read_text(encoding="utf-8").splitlines()
    assert len(export.record_lines) == len(export.records)
    assert all("<FormData" in text[line - 1] for line in export.record_lines)
    assert np.all(np.diff(export.record_lines) > 0)


def test_pycap_long_project_metadata_with_a_repeating_instrument():
    export = read_project_xml(DATA / "pycap" / "test_long_project.xml")
    assert export.record_id == "study_id"
    assert export.dictionary[FIELD].iloc[0] == "study_id"
    assert export.repeating.to_dict("list") == {"event_name": ["enrollment_arm_1"], "form_name": ["baseline_data"],
                                                "custom_form_label": [""]}
    assert len(export.events) == 16 and list(export.arms["arm_num"]) == [1, 2]
    assert set(export.dictionary[TYPE]) <= {"text", "notes", "dropdown", "radio", "checkbox", "yesno", "file",
                                            "calc", "slider"}
    assert "select" not in set(export.dictionary[TYPE])  # ODM's word, written as the dictionary's
    assert {REPEAT_INSTRUMENT, REPEAT_INSTANCE, EVENT} <= set(export.records.columns)
    repeated = export.records[export.records[REPEAT_INSTRUMENT].notna()]
    assert set(repeated[REPEAT_INSTRUMENT]) == {"baseline_data"}
    assert set(repeated[EVENT]) == {"enrollment_arm_1"}


def test_read_export_reads_a_directory_of_only_the_xml(tmp_path):
    shutil.copy(DATA / "redcapr-dag" / "project.xml", tmp_path / "dag export.xml")
    assert is_odm(tmp_path / "dag export.xml")
    export = read_export(tmp_path)
    assert export.files.records == str(tmp_path / "dag export.xml")
    assert list(export.records["redcap_data_access_group"]) == ["daga", "daga", "dagb"]
    assert export.to_dict()["records"] == 3


def test_csv_and_xml_side_by_side_are_ambiguous_unless_the_source_is_given():
    with pytest.raises(StudyDataError) as error:
        read_export(DATA / "redcapr-dag")
    problem = error.value.problems[0]
    assert problem.file.endswith("project.xml") and "data.csv" in problem.reason
    assert "source=" in problem.allowed
    assert read_export(DATA / "redcapr-dag", source="xml").files.records.endswith("project.xml")
    assert read_export(DATA / "redcapr-dag", source="csv").files.records.endswith("data.csv")


# --------------------------------------------------------------------------------------------
# Bounded, defused parsing
# --------------------------------------------------------------------------------------------

_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"><Study>&lol3;</Study></ODM>
"""


def test_a_billion_laughs_is_refused(tmp_path):
    path = tmp_path / "project.xml"
    path.write_text(_LAUGHS)
    with pytest.raises(StudyDataError, match="document type or entities") as error:
        read_project_xml(path)
    assert error.value.problems[0].file == str(path)
    assert not is_odm(path)


def test_an_external_entity_is_refused(tmp_path):
    path = tmp_path / "project.xml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE ODM SYSTEM "file:///etc/passwd">\n'
                    '<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"/>\n')
    with pytest.raises(StudyDataError, match="document type or entities"):
        read_project_xml(path)


def test_an_oversize_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "project.xml"
    shutil.copy(DATA / "redcapr-dag" / "project.xml", path)
    monkeypatch.setattr(odm, "MAX_XML_BYTES", 1000)
    with pytest.raises(StudyDataError) as error:
        read_project_xml(path)
    problem = error.value.problems[0]
    assert "larger than a study file can be" in problem.reason and "1,000 bytes" in problem.allowed


def test_xml_that_is_not_odm_is_refused_naming_its_root(tmp_path):
    path = tmp_path / "page.xml"
    path.write_text('<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>\n')
    with pytest.raises(StudyDataError) as error:
        read_project_xml(path)
    assert "<html> in namespace http://www.w3.org/1999/xhtml" in error.value.problems[0].reason
    assert not is_odm(path)


def test_a_file_that_is_not_xml_is_refused_with_its_line(tmp_path):
    path = tmp_path / "project.xml"
    shutil.copy(DATA / "redcapr-dag" / "data.csv", path)
    with pytest.raises(StudyDataError) as error:
        read_project_xml(path)
    problem = error.value.problems[0]
    assert problem.reason.startswith("is not well-formed XML") and problem.row == 1


def test_odm_without_metadata_is_refused(tmp_path):
    path = tmp_path / "project.xml"
    text = (DATA / "redcapr-dag" / "project.xml").read_text(encoding="utf-8")
    path.write_text(re.sub(r"<MetaDataVersion.*</MetaDataVersion>", "", text, flags=re.DOTALL), encoding="utf-8")
    with pytest.raises(StudyDataError, match="without a MetaDataVersion"):
        read_project_xml(path)
