"""Reading REDCap exports as teams export them: header styles, delimiters, label exports, the files of a directory.

Every variant is built in the test from a real export (REDCapR's test projects), with the csv
module, so that what is compared is the same data written another way.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.study.errors import StudyDataError
from alliance.study.formats.redcap import RedcapExport, read_dictionary, read_export, read_records
from alliance.study.formats.redcap.files import choices, read_arms, read_events
from alliance.study.formats.redcap.schema import DICTIONARY_COLUMNS, EVENT, REPEAT_INSTRUMENT
from alliance.study.io import read_table

DATA = Path(__file__).parent / "data" / "redcap"
LONGITUDINAL = DATA / "redcapr-longitudinal"
FIELD, FORM, TYPE, LABEL = DICTIONARY_COLUMNS[0], DICTIONARY_COLUMNS[1], DICTIONARY_COLUMNS[3], DICTIONARY_COLUMNS[4]


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.reader(handle))


def _write(path: Path, rows: list[list[str]], delimiter: str = ",", lineterminator: str = "\n",
           bom: bool = False) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
        csv.writer(handle, delimiter=delimiter, lineterminator=lineterminator).writerows(rows)
    return path


def _copy_export(source: Path, target: Path, **write) -> Path:
    target.mkdir(exist_ok=True)
    for name in ("dictionary.csv", "data.csv", "event.csv", "arm.csv"):
        if (source / name).is_file():
            _write(target / name, _rows(source / name), **write)
    return target


# --------------------------------------------------------------------------------------------
# Data dictionary
# --------------------------------------------------------------------------------------------

def test_the_api_headers_read_as_the_ui_headers():
    api = read_dictionary(DATA / "redcapr-simple" / "metadata.csv")
    ui = read_dictionary(DATA / "redcapr-simple" / "dictionary.csv")
    assert list(api.columns) == list(ui.columns) == list(DICTIONARY_COLUMNS)
    assert list(api[FIELD]) == list(ui[FIELD])
    assert list(api[FORM]) == list(ui[FORM])
    assert list(api[LABEL]) == list(ui[LABEL])
    # R's NA for an empty cell is empty, as in the UI download.
    assert not (api == "NA").any().any()
    assert api.loc[0, DICTIONARY_COLUMNS[2]] == "" and api.loc[1, DICTIONARY_COLUMNS[2]] == "Contact Information"
    # The one real difference: metadata.csv, exported later, has age as a calculated field.
    differ = api[TYPE] != ui[TYPE]
    assert list(api.loc[differ, FIELD]) == ["age"] and api.loc[differ, TYPE].item() == "calc"
    assert [choices(api, f) for f in api[FIELD]] == [choices(ui, f) for f in ui[FIELD]]


def test_a_header_of_neither_style_is_refused_naming_line_1_and_both_styles(tmp_path):
    path = _write(tmp_path / "dictionary.csv", [["field_name", "form"], ["record_id", "demographics"]])
    with pytest.raises(StudyDataError) as error:
        read_dictionary(path)
    problem = error.value.problems[0]
    assert (problem.file, problem.row) == (str(path), 1)
    assert problem.column == "form_name, field_type"
    assert "Variable / Field Name" in problem.allowed and "field_name" in problem.allowed
    assert problem.reason == "required data dictionary columns are missing"


def test_a_column_of_neither_style_is_refused(tmp_path):
    rows = _rows(DATA / "redcapr-simple" / "dictionary.csv")
    rows[0][-1] = "Notes"
    with pytest.raises(StudyDataError) as error:
        read_dictionary(_write(tmp_path / "dictionary.csv", rows))
    assert error.value.problems[0].column == "Notes"
    assert "not a column of a REDCap data dictionary" in error.value.problems[0].reason


def test_choices_are_code_label_pairs_and_yes_no_has_redcaps_codes():
    dictionary = read_dictionary(LONGITUDINAL / "dictionary.csv")
    assert choices(dictionary, "sex") == {"0": "Female", "1": "Male"}
    assert choices(dictionary, "given_birth") == {"1": "Yes", "0": "No"}
    assert choices(dictionary, "gym")["4"] == "Friday"
    assert choices(dictionary, "first_name") == {}


# --------------------------------------------------------------------------------------------
# Delimiters
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("delimiter", [";", "\t", "|", "^"])
def test_every_delimiter_reads_as_the_comma_export(tmp_path, delimiter):
    comma = read_export(LONGITUDINAL, source="csv")
    other = read_export(_copy_export(LONGITUDINAL, tmp_path / "export", delimiter=delimiter))
    pd.testing.assert_frame_equal(other.dictionary, comma.dictionary)
    pd.testing.assert_frame_equal(other.records, comma.records)
    assert np.array_equal(other.record_lines, comma.record_lines)
    pd.testing.assert_frame_equal(other.events, comma.events)
    # Given, it is used as it is.
    records, _ = read_records(tmp_path / "export" / "data.csv", comma.dictionary, delimiter=delimiter)
    pd.testing.assert_frame_equal(records, comma.records)


def test_bom_and_crlf_with_another_delimiter(tmp_path):
    rows = _rows(DATA / "redcapr-simple" / "data.csv")
    path = _write(tmp_path / "data.csv", rows, delimiter=";", lineterminator="\r\n", bom=True)
    dictionary = read_dictionary(DATA / "redcapr-simple" / "dictionary.csv")
    records, lines = read_records(path, dictionary)
    expected, expected_lines = read_records(DATA / "redcapr-simple" / "data.csv", dictionary)
    assert records.columns[0] == "record_id"
    # csv.writer keeps the cells' own line breaks (\n) and ends rows with \r\n: the cells come back.
    pd.testing.assert_frame_equal(records, expected)
    # Rows spanning lines (multi-line addresses and comments) are located at their first line.
    assert list(lines) == list(expected_lines) == [2, 4, 6, 8, 13]


def test_a_header_no_delimiter_fits_is_refused_with_what_it_looks_like(tmp_path):
    dictionary = read_dictionary(LONGITUDINAL / "dictionary.csv")
    path = _write(tmp_path / "data.csv", [["id", "visit"], ["1", "a"]], delimiter=";")
    with pytest.raises(StudyDataError) as error:
        read_records(path, dictionary)
    problem = error.value.problems[0]
    assert (problem.file, problem.row, problem.value) == (str(path), 1, "id;visit")
    assert "'study_id' first" in problem.reason
    assert "semicolon (';')" in problem.allowed and "caret ('^')" in problem.allowed


def test_a_semicolon_file_is_not_refused_for_a_missing_record_id(tmp_path):
    """Before: a ; export read as one column and failed with "the record id column is missing"."""
    path = _write(tmp_path / "data.csv", _rows(LONGITUDINAL / "data.csv"), delimiter=";")
    records, _ = read_records(path, read_dictionary(LONGITUDINAL / "dictionary.csv"))
    assert records.columns[0] == "study_id" and len(records.columns) > 100


def test_a_given_delimiter_that_does_not_split_the_header_is_refused(tmp_path):
    dictionary = read_dictionary(LONGITUDINAL / "dictionary.csv")
    with pytest.raises(StudyDataError) as error:
        read_records(LONGITUDINAL / "data.csv", dictionary, delimiter=";")
    problem = error.value.problems[0]
    assert problem.row == 1 and "semicolon (';') given" in problem.reason
    assert "comma (',')" in problem.allowed


def test_read_table_with_a_delimiter_checks_as_with_commas(tmp_path):
    short = tmp_path / "short.csv"
    short.write_text("a;b;c\n1;2;3\n\n4;5\n", encoding="utf-8")
    with pytest.raises(StudyDataError) as error:
        read_table(short, delimiter=";")
    assert [(p.row, p.reason) for p in error.value.problems] == [(4, "has 2 fields; the header has 3")]
    twice = tmp_path / "twice.csv"
    twice.write_text("a|a\n1|2\n", encoding="utf-8")
    with pytest.raises(StudyDataError, match="names a column twice"):
        read_table(twice, delimiter="|")
    open_quote = tmp_path / "open.csv"
    open_quote.write_text('a^b\n1^"2\n', encoding="utf-8")
    with pytest.raises(StudyDataError, match="never closes"):
        read_table(open_quote, delimiter="^")
    tabs = _write(tmp_path / "ok.csv", [["a", "b"], ["1", ""], [], ["x", "'=1"]], delimiter="\t")
    frame, lines = read_table(tabs, lines=True, delimiter="\t")
    assert list(lines) == [2, 4]
    assert frame["b"].isna().iloc[0] and frame["b"].iloc[1] == "=1"  # empty → <NA>; the formula mark undone


# --------------------------------------------------------------------------------------------
# Label exports
# --------------------------------------------------------------------------------------------

def _label_export(source: Path, target: Path, *, checkbox_labels: bool = False) -> Path:
    """The raw export of ``source`` as REDCap's label export writes it (rawOrLabel=label)."""
    target = _copy_export(source, target)
    dictionary = read_dictionary(source / "dictionary.csv")
    events = read_events(source / "event.csv") if (source / "event.csv").is_file() else None
    arms = read_arms(source / "arm.csv") if (source / "arm.csv").is_file() else None
    type_of = dict(zip(dictionary[FIELD], dictionary[TYPE], strict=True))
    status = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}
    rows = _rows(source / "data.csv")
    header = rows[0]
    for row in rows[1:]:
        for j, name in enumerate(header):
            value = row[j]
            if not value:
                continue
            field_name, _, code = name.rpartition("___")
            if name == EVENT and events is not None:
                event = events[events["unique_event_name"] == value].iloc[0]
                arm_name = arms.loc[arms["arm_num"] == event["arm_num"], "name"].item()
                row[j] = f"{event['event_name']} (Arm {event['arm_num']}: {arm_name})"
            elif name.endswith("_complete"):
                row[j] = status[value]
            elif type_of.get(name) in ("radio", "dropdown", "yesno", "truefalse"):
                row[j] = choices(dictionary, name)[value]
            elif type_of.get(field_name) == "checkbox":
                if checkbox_labels:
                    row[j] = choices(dictionary, field_name)[code] if value == "1" else ""
                else:
                    row[j] = {"1": "Checked", "0": "Unchecked"}[value]
    _write(target / "data.csv", rows)
    return target


def test_a_label_export_reads_as_the_raw_export(tmp_path):
    raw = read_export(LONGITUDINAL, source="csv")
    labels = read_export(_label_export(LONGITUDINAL, tmp_path / "labels"))
    written = _rows(tmp_path / "labels" / "data.csv")
    assert written[1][1] == "Enrollment (Arm 1: Drug A)" and "Female" in written[3] + written[1] + written[7]
    pd.testing.assert_frame_equal(labels.records, raw.records)


def test_exported_checkbox_labels_read_as_ones_and_zeros(tmp_path):
    raw = read_export(LONGITUDINAL, source="csv")
    labels = read_export(_label_export(LONGITUDINAL, tmp_path / "labels", checkbox_labels=True))
    # Unticked boxes are empty in the file; on the rows of the box's form they are 0 again, elsewhere empty.
    assert labels.records["gym___0"].isna().sum() == raw.records["gym___0"].isna().sum() > 0
    pd.testing.assert_frame_equal(labels.records, raw.records)


def _tiny(tmp_path: Path, values: list[list[str]], header: list[str], choices_cell: str = "1, Yes | 2, No") -> Path:
    dictionary = [list(DICTIONARY_COLUMNS),
                  ["record_id", "intake", "", "text", "Record ID"] + [""] * 13,
                  ["consent", "intake", "", "truefalse", "Consented"] + [""] * 13,
                  ["smoker", "intake", "", "yesno", "Smokes"] + [""] * 13,
                  ["mood", "intake", "", "radio", "Mood", choices_cell] + [""] * 12]
    _write(tmp_path / "data_dictionary.csv", dictionary)
    _write(tmp_path / "records.csv", [header, *values])
    return tmp_path


def test_true_false_and_yes_no_labels_are_one_and_zero(tmp_path):
    directory = _tiny(tmp_path, [["1", "True", "No", "Yes", "Complete"], ["2", "False", "Yes", "No", ""]],
                      ["record_id", "consent", "smoker", "mood", "intake_complete"])
    records = read_export(directory).records
    assert records.fillna("").to_dict("list") == {"record_id": ["1", "2"], "consent": ["1", "0"], "smoker": ["0", "1"],
                                                  "mood": ["1", "2"], "intake_complete": ["2", ""]}
    assert records["intake_complete"].isna().tolist() == [False, True]
    assert all(str(records[c].dtype) == "string" for c in records.columns)


def test_an_unknown_label_is_refused_with_the_codes_and_labels(tmp_path):
    directory = _tiny(tmp_path, [["1", "Yes"], ["2", "Maybe"]], ["record_id", "mood"])
    with pytest.raises(StudyDataError) as error:
        read_export(directory)
    problem = error.value.problems[0]
    assert (problem.row, problem.column, problem.value) == (3, "mood", "Maybe")
    assert problem.allowed == "codes with their labels: 1 (Yes), 2 (No)"
    assert "neither a code nor a label of field 'mood'" in problem.reason


def test_a_label_two_codes_share_is_refused(tmp_path):
    directory = _tiny(tmp_path, [["1", "Often"], ["2", "Never"]], ["record_id", "mood"],
                      choices_cell="1, Often | 2, Often | 3, Never")
    with pytest.raises(StudyDataError) as error:
        read_export(directory)
    problem = error.value.problems[0]
    assert (problem.row, problem.value) == (2, "Often") and "codes 1, 2" in problem.reason


def test_a_column_of_codes_is_raw_even_where_codes_are_labels(tmp_path):
    directory = _tiny(tmp_path, [["1", "2"], ["2", "1"]], ["record_id", "mood"], choices_cell="1, 2 | 2, 1")
    assert list(read_export(directory).records["mood"]) == ["2", "1"]


def test_event_labels_without_the_events_file_are_refused(tmp_path):
    directory = _label_export(LONGITUDINAL, tmp_path / "labels")
    (directory / "event.csv").unlink()
    (directory / "arm.csv").unlink()
    with pytest.raises(StudyDataError) as error:
        read_export(directory)
    problem = error.value.problems[0]
    assert problem.column == EVENT and problem.row == 2 and problem.value.endswith("(Arm 1: Drug A)")
    assert "events.csv" in problem.allowed


def test_an_event_label_of_no_event_is_refused(tmp_path):
    directory = _copy_export(LONGITUDINAL, tmp_path / "labels")
    rows = _rows(directory / "data.csv")
    rows[1][1] = "Enrollment (Arm 3: Drug C)"
    _write(directory / "data.csv", rows)
    with pytest.raises(StudyDataError) as error:
        read_export(directory)
    problem = error.value.problems[0]
    assert problem.value == "Enrollment (Arm 3: Drug C)" and "Enrollment (Arm 1: Drug A)" in problem.allowed


def test_a_repeating_form_label_reads_as_its_name(tmp_path):
    source = DATA / "redcapr-vignette-repeating"
    directory = _copy_export(source, tmp_path / "labels")
    rows = _rows(directory / "data.csv")
    labels = {"blood_pressure": "Blood Pressure", "laboratory": "Laboratory", "image": "Image"}
    for row in rows[1:]:
        row[1] = labels.get(row[1], row[1])
    _write(directory / "data.csv", rows)
    assert "Blood Pressure" in {row[1] for row in rows}
    pd.testing.assert_frame_equal(read_export(directory).records, read_export(source, source="csv").records)
    rows[2][1] = "Vital Signs"
    _write(directory / "data.csv", rows)
    with pytest.raises(StudyDataError) as error:
        read_export(directory)
    assert (error.value.problems[0].column, error.value.problems[0].value) == (REPEAT_INSTRUMENT, "Vital Signs")


def test_label_headers_are_refused(tmp_path):
    directory = _copy_export(DATA / "redcapr-repeating-instruments", tmp_path / "labels")
    dictionary = read_dictionary(directory / "dictionary.csv")
    label_of = dict(zip(dictionary[FIELD], dictionary[LABEL], strict=True))
    rows = _rows(directory / "data.csv")
    rows[0] = [label_of.get(name, name) for name in rows[0]]
    assert rows[0][0] == "Record ID"
    _write(directory / "data.csv", rows)
    with pytest.raises(StudyDataError) as error:
        read_export(directory)
    problem = error.value.problems[0]
    assert (problem.row, problem.column) == (1, "Record ID")
    assert "variable names as column headers" in problem.allowed


# --------------------------------------------------------------------------------------------
# A directory
# --------------------------------------------------------------------------------------------

def test_read_export_reads_events_and_arms_and_counts_them():
    export = read_export(LONGITUDINAL, source="csv")
    assert isinstance(export, RedcapExport)
    assert list(export.events.columns) == ["unique_event_name", "event_name", "arm_num", "day_offset",
                                           "custom_event_label"]
    assert export.events["arm_num"].dtype == np.int64 and export.events["day_offset"].isna().all()
    assert export.record_lines.dtype == np.int64 and export.record_lines[0] == 2
    summary = export.to_dict()
    assert {k: summary[k] for k in ("records", "rows", "events", "arms", "record_id")} == {
        "records": 3, "rows": 18, "events": 12, "arms": 2, "record_id": "study_id"}
    assert summary["files"]["records"] == str(LONGITUDINAL / "data.csv")


def test_designations_and_repeating_files_are_read(tmp_path):
    directory = _copy_export(DATA / "redcapr-repeating-instruments", tmp_path / "export")
    _write(directory / "instrument_event_mapping.csv", [["arm_num", "unique_event_name", "form"],
                                                        ["1", "event_1_arm_1", "demographics"]])
    _write(directory / "repeating_instruments.csv", [["event_name", "form_name", "custom_form_label"],
                                                     ["", "bp", "[date_bp]"], ["visit_arm_1", "", ""]])
    export = read_export(directory)
    assert export.form_events.to_dict("list") == {"arm_num": [1], "unique_event_name": ["event_1_arm_1"],
                                                  "form": ["demographics"]}
    assert export.repeating.to_dict("list") == {"event_name": ["", "visit_arm_1"], "form_name": ["bp", ""],
                                                "custom_form_label": ["[date_bp]", ""]}


def test_two_dictionaries_are_ambiguous(tmp_path):
    directory = _copy_export(DATA / "redcapr-dag", tmp_path / "export")
    shutil.copy(directory / "dictionary.csv", directory / "data_dictionary.csv")
    with pytest.raises(StudyDataError, match="two data dictionary files"):
        read_export(directory)


def test_a_directory_without_an_export_names_the_files_looked_for(tmp_path):
    with pytest.raises(StudyDataError) as error:
        read_export(tmp_path)
    problem = error.value.problems[0]
    assert "records.csv or data.csv" in problem.allowed and "project.xml" in problem.allowed


def test_an_event_file_with_a_bad_arm_number_is_refused(tmp_path):
    rows = _rows(LONGITUDINAL / "event.csv")
    rows[3][1] = "two"
    with pytest.raises(StudyDataError) as error:
        read_events(_write(tmp_path / "event.csv", rows))
    assert [(p.row, p.column, p.value) for p in error.value.problems] == [(4, "arm_num", "two")]
