"""Acceptance tests of the REDCap import on real REDCap exports: what is stored, exactly, or why not.

Each test reads a project REDCap itself exported — REDCapR's test projects and PyCap's long
project, copied with their licences into ``tests/study/data/redcap/`` (sources, commits and what
each project tests: ``tests/study/data/redcap/README.md``) — through the protocol and mapping beside
it (or ``tests/study/data/redcap_api/``), and compares the study with a table written by hand from
the project's ``data.csv`` (the lines are named), or a refusal with the exact problem. What no
public export shows (a repeating event, label exports, other delimiters, checkbox-label exports)
is derived in the test from the raw real export, as the README describes.

Covered: arms as REDCap holds them (two and three arms, ``join_arms:``), classic projects with
repeating instruments, a repeating event, survey and data-access-group columns, checkboxes, label
and checkbox-label exports, the five delimiters, the API's dictionary headers and the ODM project
XML against the CSV of the same project.
"""

from __future__ import annotations

import csv
import fnmatch
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from alliance.protocol import load_protocol
from alliance.study import StudyDataError
from alliance.study.formats.redcap import read_dictionary, read_export, read_records
from alliance.study.formats.redcap.importing import read_redcap_export, study_from_export
from alliance.study.formats.redcap.schema import DICTIONARY_COLUMNS, EVENT, REPEAT_INSTANCE, REPEAT_INSTRUMENT
from tests.study.test_redcap_files import _copy_export, _label_export, _rows, _write

DATA = Path(__file__).parent / "data" / "redcap"
API = Path(__file__).parent / "data" / "redcap_api"  # REDCapR's longitudinal project as a protocol
LONGITUDINAL = DATA / "redcapr-longitudinal"
ARMS = DATA / "redcapr-arm-multiple-delete"
TABLES = ("participants", "responses", "dosing_sessions", "adverse_events", "vital_signs", "concomitant_medications")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def _mapping(project: Path) -> dict:
    """The project's mapping.yaml (redcap_api's for the longitudinal project), as read from YAML."""
    path = project / "mapping.yaml" if (project / "mapping.yaml").is_file() else API / "mapping.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _protocol(project: Path):
    """The project's protocol.yaml, else redcap_api's (REDCapR's longitudinal project: CEQ at dose_1 …)."""
    return load_protocol(project / "protocol.yaml" if (project / "protocol.yaml").is_file() else API / "protocol.yaml")


def _study(directory: Path, mapping: dict | None = None, *, project: Path | None = None, source: str | None = "csv"):
    project = project or directory
    export = read_export(directory, source=source)
    return study_from_export(export, _mapping(project) if mapping is None else mapping, _protocol(project))


def _refused(directory: Path, mapping: dict | None = None, **kwargs) -> list:
    with pytest.raises(StudyDataError) as caught:
        _study(directory, mapping, **kwargs)
    return caught.value.problems


def _where(problem) -> tuple:
    """A problem's place: the file's directory and name, line, column and value."""
    return "/".join(Path(problem.file).parts[-2:]), problem.row, problem.column, problem.value


def _answers(study) -> list[tuple]:
    """Every stored answer as (participant, timepoint, instrument, item, value), sorted."""
    r = study.responses
    return sorted(zip(r["participant_id"], r["timepoint"], r["instrument"], r["item"], r["value"], strict=True))


def _expand(table: list[tuple], instrument: str, items: list[str], shift: float = 0) -> list[tuple]:
    """Rows (line, record, timepoint, value of items[0], …) as answers; an empty value (None) is no answer."""
    return sorted((record, timepoint, instrument, item, value + shift)
                  for _, record, timepoint, *values in table
                  for item, value in zip(items, values, strict=True) if value is not None)


def _mentions(mapping: dict, column: str) -> bool:
    """Whether the mapping names a records column: as a field of a section, or under ignore: (patterns)."""
    sections = ("fields", "participant_fields", "administration_fields", "dosing_fields")
    return (any(column in (mapping.get(s) or {}) for s in sections)
            or any(fnmatch.fnmatchcase(column, pattern) for pattern in mapping.get("ignore") or []))


def _assert_same_study(a, b) -> None:
    for table in TABLES:
        left, right = getattr(a, table), getattr(b, table)
        assert (left is None) == (right is None), table
        if left is not None:
            pd.testing.assert_frame_equal(left, right, obj=table)


CEQ_1_4 = ["ceq_1", "ceq_2", "ceq_3", "ceq_4"]

# redcapr-longitudinal/data.csv, patient_morale_questionnaire (pmq1-pmq4), read as CEQ 1-4 through
# redcap_api/mapping.yaml: (line, study_id, timepoint, pmq1, pmq2, pmq3, pmq4). The other rows
# (enrollment, final visit, deadlines: lines 2, 7, 8, 13-15, 18, 19) leave the form empty.
LONGITUDINAL_PMQ = [
    (3, "100", "dose_1", 2, 2, 1, 1),     # dose_1_arm_1
    (4, "100", "visit_1", 1, 0, 0, 0),    # visit_1_arm_1
    (5, "100", "dose_2", 3, 1, 0, 0),     # dose_2_arm_1
    (6, "100", "visit_2", 0, 1, 0, 0),    # visit_2_arm_1
    (9, "220", "dose_1", 0, 1, 0, 2),
    (10, "220", "visit_1", 0, 3, 1, 0),
    (11, "220", "dose_2", 1, 2, 0, 1),
    (12, "220", "visit_2", 3, 4, 1, 0),
    (16, "304", "dose_1", 0, 1, 0, 0),    # first_dose_arm_2
    (17, "304", "visit_1", 2, 0, 0, 0),   # first_visit_arm_2
]


# --------------------------------------------------------------------------------------------
# a. Two arms (redcapr-longitudinal)
# --------------------------------------------------------------------------------------------

def test_two_arm_longitudinal_export_stores_every_pmq_answer_and_each_records_arm():
    study = _study(LONGITUDINAL)
    # REDCap's arms: records 100 and 220 have events *_arm_1 ("Drug A"), 304 *_arm_2 ("Drug B").
    assert study.participants[["participant_id", "arm"]].values.tolist() == [
        ["100", "drug_a"], ["220", "drug_a"], ["304", "drug_b"]]
    assert _answers(study) == _expand(LONGITUDINAL_PMQ, "ceq", CEQ_1_4)
    assert study.responses[["rater", "administered_at"]].isna().all().all()


# --------------------------------------------------------------------------------------------
# b. Three arms (redcapr-arm-multiple-delete)
# --------------------------------------------------------------------------------------------

def _record_arm_pairs() -> set[tuple[str, int]]:
    """REDCap's records, counted straight from data.csv: (record_id, the n of redcap_event_name's _arm_n)."""
    with (ARMS / "data.csv").open(newline="", encoding="utf-8") as handle:
        return {(row["record_id"], int(row[EVENT].rpartition("_arm_")[2])) for row in csv.DictReader(handle)}


def test_three_arm_export_with_arm_3_unmapped_is_refused_naming_arm_3():
    mapping = {**_mapping(ARMS), "arms": {1: "arm_1", 2: "arm_2"}}
    problems = _refused(ARMS, mapping)
    # data.csv line 42 is the first row of arm 3 (101, event_1_arm_3); its 20 records are not dropped.
    assert [_where(p) for p in problems] == [
        ("redcapr-arm-multiple-delete/data.csv", 42, "redcap_event_name", "event_1_arm_3")]
    assert problems[0].reason == ("is an event of REDCap arm 3, which has no mapping to an arm of the protocol "
                                  "(20 records in it)")
    assert problems[0].allowed.startswith("arms 1, 2 (arms: in mapping.yaml)")


def test_three_arm_export_without_join_arms_is_refused_naming_each_record_in_several_arms():
    mapping = {k: v for k, v in _mapping(ARMS).items() if k != "join_arms"}
    problems = _refused(ARMS, mapping)
    # Lines 22-41 are event_1_arm_2, each record's second arm.
    assert [_where(p) for p in problems] == [
        ("redcapr-arm-multiple-delete/data.csv", line, "redcap_event_name", "event_1_arm_2") for line in range(22, 42)]
    assert problems[0].reason == ("puts record '101' in REDCap arm 2: it is in arms 1, 2 and 3, and REDCap keeps a "
                                  "record per arm, so these are 3 records with one id")


@pytest.mark.parametrize("join_arms", ["separate", "join"])
def test_three_arm_export_has_one_participant_per_redcap_record_unless_join_arms_join(join_arms):
    pairs = _record_arm_pairs()
    assert len(pairs) == 60 and len({record for record, _ in pairs}) == 20  # 20 ids (101-120) × 3 arms
    arms = {1: "arm_1", 2: "arm_2", 3: "arm_3"} if join_arms == "separate" else {1: "arm_1", 2: "arm_1", 3: "arm_1"}
    study = _study(ARMS, {**_mapping(ARMS), "arms": arms, "join_arms": join_arms})
    participants = study.participants
    if join_arms == "separate":
        assert len(participants) == len(pairs)
        assert set(zip(participants["participant_id"], participants["arm"], strict=True)) == {
            (f"{record}_arm_{arm}", f"arm_{arm}") for record, arm in pairs}
    else:  # the one key under which fewer participants than REDCap records come in
        assert len(participants) == 20 != len(pairs)
        assert participants["participant_id"].tolist() == [str(n) for n in range(101, 121)]
        assert set(participants["arm"]) == {"arm_1"}
    # position, lines 2-21 (and repeated in each arm): pg, sg, sf, pf, c, pg, …
    positions = ["pg", "sg", "sf", "pf", "c"] * 4
    assert participants["position"].tolist() == positions * (3 if join_arms == "separate" else 1)
    assert study.responses.empty  # the project has no questionnaire


def test_three_arm_export_drops_arm_3_only_when_ignore_arms_says_so():
    study = _study(ARMS, {**_mapping(ARMS), "arms": {1: "arm_1", 2: "arm_2"}, "ignore_arms": [3]})
    kept = {(f"{record}_arm_{arm}", f"arm_{arm}") for record, arm in _record_arm_pairs() if arm != 3}
    assert len(kept) == 40
    assert set(zip(study.participants["participant_id"], study.participants["arm"], strict=True)) == kept


def test_join_arms_join_is_refused_where_a_records_arms_map_to_different_arms():
    problems = _refused(ARMS, {**_mapping(ARMS), "join_arms": "join"})
    assert len(problems) == 20 and {p.row for p in problems} == set(range(22, 42))
    first = problems[0]
    # The value named is the protocol arm the row's REDCap arm maps to (the cell holds event_1_arm_2).
    assert _where(first) == ("redcapr-arm-multiple-delete/data.csv", 22, "redcap_event_name", "arm_2")
    assert first.reason == "puts participant '101' in arm 'arm_2' as well as 'arm_1'"


# --------------------------------------------------------------------------------------------
# c. Classic projects with repeating instruments
# --------------------------------------------------------------------------------------------

REPEATING = DATA / "redcapr-repeating-instruments"
VIGNETTE = DATA / "redcapr-vignette-repeating"

# redcapr-repeating-instruments/data.csv, form bp: (line, record_id, timepoint, bp_systolic, bp_diastolic);
# the mapping stores each reading − 100 as EBI 1 and 2 (shift: -100), the date as administered_at.
REPEATING_BP = [
    (3, "1", "reading_1", 110, 100),   # bp instance 1
    (4, "1", "reading_2", 111, 101),   # instance 2
    (5, "1", "reading_3", 112, 102),   # instance 3
    (7, "2", "reading_1", 114, 104),   # record 2's one instance
]


def test_classic_repeating_instrument_maps_instance_by_instance():
    study = _study(REPEATING)
    assert _answers(study) == _expand(REPEATING_BP, "ebi", ["ebi_1", "ebi_2"], shift=-100)
    dates = study.responses.groupby("participant_id")["administered_at"].unique().map(list).to_dict()
    assert dates == {"1": ["2019-10-14"], "2": ["2004-04-04"]}  # date_bp, lines 3-5 and 7
    # Lines 2 and 6, form demographics: age, sex, ethnicity, race as covariates; arms: {1: clinic}.
    columns = ["participant_id", "arm", "age", "sex", "ethnicity", "race"]
    assert study.participants[columns].values.tolist() == [["1", "clinic", 8.9, 0, 1, 4],
                                                           ["2", "clinic", 9.6, 1, 0, 6]]


def test_classic_repeating_instrument_without_repeating_mapping_is_refused_per_instance():
    mapping = {k: v for k, v in _mapping(REPEATING).items() if k != "repeating"}
    problems = _refused(REPEATING, mapping)
    # Record 1's three instances (lines 3-5) are named; record 2's one instance (line 7) is its form's.
    assert [_where(p) for p in problems] == [
        ("redcapr-repeating-instruments/data.csv", line, REPEAT_INSTANCE, str(n)) for line, n in ((3, 1), (4, 2), (5, 3))]
    assert problems[1].reason == ("is instance 2 of the repeating instrument 'bp', whose instances have no mapping "
                                  "to timepoints")
    assert problems[1].allowed.startswith("repeating: bp: {1: <timepoint>, 2: …}")


# redcapr-vignette-repeating/data.csv: (line, record_id, timepoint, ORS 1, EBI 1): intake's height and
# weight, blood_pressure's sbp and dbp; laboratory and image (lines 6-9, 14-17) are not imported.
VIGNETTE_ANSWERS = [
    (2, "1", "intake", 1.0, 11.0), (3, "1", "bp_1", 1.1, 11.1), (4, "1", "bp_2", 1.2, 11.2), (5, "1", "bp_3", 1.3, 11.3),
    (10, "2", "intake", 2.0, 22.0), (11, "2", "bp_1", 2.1, 22.1), (12, "2", "bp_2", 2.2, 22.2),
    (13, "2", "bp_3", 2.3, 22.3),
]


@pytest.mark.parametrize("repeating", ["bp_{n}", {1: "bp_1", 2: "bp_2", 3: "bp_3"}], ids=["pattern", "instances"])
def test_classic_project_with_three_repeating_forms_reads_blood_pressure_instances(repeating):
    study = _study(VIGNETTE, {**_mapping(VIGNETTE), "repeating": {"blood_pressure": repeating}})
    answers = sorted((r, t, i, item, v) for _, r, t, ors, ebi in VIGNETTE_ANSWERS
                     for i, item, v in (("ors", "ors_1", ors), ("ebi", "ebi_1", ebi)))
    assert [a[:4] for a in _answers(study)] == [a[:4] for a in answers]
    assert [a[4] for a in _answers(study)] == pytest.approx([a[4] for a in answers])
    assert study.participants[["participant_id", "arm"]].values.tolist() == [["1", "clinic"], ["2", "clinic"]]


def test_classic_repeating_form_without_repeating_mapping_is_refused_naming_the_form():
    mapping = {k: v for k, v in _mapping(VIGNETTE).items() if k != "repeating"}
    problems = _refused(VIGNETTE, mapping)
    assert [_where(p) for p in problems] == [("redcapr-vignette-repeating/data.csv", line, REPEAT_INSTANCE, n)
                                             for line, n in ((3, "1"), (4, "2"), (5, "3"), (11, "1"), (12, "2"),
                                                             (13, "3"))]
    assert all("of the repeating instrument 'blood_pressure'" in p.reason for p in problems)


# --------------------------------------------------------------------------------------------
# d. A repeating event (derived from redcapr-longitudinal)
# --------------------------------------------------------------------------------------------

def _repeating_event_export(target: Path) -> Path:
    """redcapr-longitudinal with arm 1's events dose_1_arm_1 and dose_2_arm_1 made one repeating event.

    Every row of dose_1_arm_1 becomes event ``dose_arm_1`` instance 1, every row of dose_2_arm_1
    ``dose_arm_1`` instance 2 (records 100 and 220, lines 3, 5, 9 and 11 — rows keep their lines),
    with ``redcap_repeat_instrument`` empty (the whole event repeats) and the two columns inserted
    after ``redcap_event_name``, as REDCap writes them; event.csv holds ``Dose`` (dose_arm_1) in
    their place, and repeating_instruments.csv marks the event as repeating (form_name empty).
    """
    directory = _copy_export(LONGITUDINAL, target)
    rows = _rows(directory / "data.csv")
    at = rows[0].index(EVENT)
    instance = {"dose_1_arm_1": "1", "dose_2_arm_1": "2"}
    derived = [rows[0][:at + 1] + [REPEAT_INSTRUMENT, REPEAT_INSTANCE] + rows[0][at + 1:]]
    for row in rows[1:]:
        n = instance.get(row[at], "")
        derived.append(row[:at] + ["dose_arm_1" if n else row[at], "", n] + row[at + 1:])
    _write(directory / "data.csv", derived)
    events = [row for row in _rows(directory / "event.csv") if row[2] != "dose_2_arm_1"]
    events = [["Dose", "1", "dose_arm_1", "", row[4]] if row[2] == "dose_1_arm_1" else row for row in events]
    _write(directory / "event.csv", events)
    _write(directory / "repeating_instruments.csv", [["event_name", "form_name", "custom_form_label"],
                                                     ["dose_arm_1", "", ""]])
    return directory


def _without_dose_events() -> dict:
    mapping = _mapping(LONGITUDINAL)
    mapping["events"] = {k: v for k, v in mapping["events"].items() if k not in ("dose_1_arm_1", "dose_2_arm_1")}
    return mapping


@pytest.mark.parametrize("repeating", [{"dose_arm_1": {1: "dose_1", 2: "dose_2"}}, {"dose": "dose_{n}"}],
                         ids=["instances", "pattern"])
def test_repeating_event_maps_instance_by_instance(tmp_path, repeating):
    directory = _repeating_event_export(tmp_path / "export")
    export = read_export(directory)
    assert export.repeating.to_dict("list") == {"event_name": ["dose_arm_1"], "form_name": [""],
                                                "custom_form_label": [""]}
    study = study_from_export(export, {**_without_dose_events(), "repeating": repeating}, _protocol(LONGITUDINAL))
    assert _answers(study) == _expand(LONGITUDINAL_PMQ, "ceq", CEQ_1_4)
    _assert_same_study(study, _study(LONGITUDINAL))


def test_repeating_event_without_mapping_is_refused_naming_the_event_and_each_instance(tmp_path):
    problems = _refused(_repeating_event_export(tmp_path / "export"), _without_dose_events(), project=LONGITUDINAL)
    assert [_where(p) for p in problems] == [("export/data.csv", line, REPEAT_INSTANCE, n)
                                             for line, n in ((3, "1"), (5, "2"), (9, "1"), (11, "2"))]
    assert problems[1].reason == ("is instance 2 of the repeating event 'dose_arm_1', whose instances have no "
                                  "mapping to timepoints")
    assert problems[1].allowed == "repeating: dose: {1: <timepoint>, 2: …} or a pattern such as dose_{n} in mapping.yaml"


# --------------------------------------------------------------------------------------------
# e. Survey columns (redcapr-survey)
# --------------------------------------------------------------------------------------------

SURVEY = DATA / "redcapr-survey"


def test_survey_timestamps_and_identifier_need_no_mapping_entry():
    export = read_export(SURVEY, source="csv")
    survey_columns = {"redcap_survey_identifier", "prescreening_survey_timestamp", "participant_info_survey_timestamp",
                      "participant_morale_questionnaire_timestamp"}
    assert survey_columns <= set(export.records.columns)
    assert not any(_mentions(_mapping(SURVEY), column) for column in survey_columns)
    study = study_from_export(export, _mapping(SURVEY), _protocol(SURVEY))
    # data.csv lines 2-3, has_diabetes (true/false): 1 and 0. pmq1-pmq4 are empty (line 2's
    # questionnaire timestamp is "[not completed]").
    assert export.records["participant_morale_questionnaire_timestamp"].tolist()[0] == "[not completed]"
    assert _answers(study) == [("1", "dose_1", "ceq", "ceq_5", 1), ("2", "dose_1", "ceq", "ceq_5", 0)]
    assert study.participants[["participant_id", "arm"]].values.tolist() == [["1", "drug_a"], ["2", "drug_a"]]


@pytest.mark.parametrize(("project", "section", "entry", "stored"), [
    pytest.param("redcapr-dag", "participant_fields", {"redcap_data_access_group": "site"},
                 ("participants", "site", ["daga", "daga", "dagb"]), id="data-access-group-as-site"),
    pytest.param("redcapr-survey", "administration_fields",
                 {"prescreening_survey_timestamp": {"instrument": "ceq", "column": "administered_at"}},
                 ("responses", "administered_at", ["2018-03-06 15:52:43", "2018-03-06 15:53:15"]),
                 id="survey-timestamp-as-administered-at"),
])
def test_a_mapping_entry_naming_a_system_column_reads_it(project, section, entry, stored):
    # The mapping says what the column is, so it is read (the values of data.csv lines 2-4 / 2-3),
    # not dropped as the system columns are when no entry names them.
    mapping = _mapping(DATA / project)
    mapping[section] = {**(mapping.get(section) or {}), **entry}
    study = _study(DATA / project, mapping)
    table, name, values = stored
    assert name in getattr(study, table).columns
    assert [None if pd.isna(v) else v for v in getattr(study, table)[name]] == values


@pytest.mark.parametrize(("section", "entry"), [
    ("fields", {"pmq5": "ceq_5"}),                          # the questionnaire has pmq1-pmq4
    ("participant_fields", {"date_enroled": "enrolled_on"}),  # date_enrolled misspelt
])
def test_a_mapping_entry_naming_no_field_of_the_dictionary_is_refused(section, entry):
    mapping = _mapping(LONGITUDINAL)
    mapping[section] = {**(mapping.get(section) or {}), **entry}
    problems = _refused(LONGITUDINAL, mapping, project=LONGITUDINAL)
    (name,) = entry
    (problem,) = [p for p in problems if p.value == name]
    assert (problem.file, problem.column) == ("mapping.yaml", section)
    assert problem.reason == "names no field of the data dictionary " + str(LONGITUDINAL / "dictionary.csv")


# --------------------------------------------------------------------------------------------
# f. Checkboxes (redcapr-checkboxes-1)
# --------------------------------------------------------------------------------------------

CHECKBOXES = DATA / "redcapr-checkboxes-1"


@pytest.mark.parametrize("checkbox_labels", [False, True], ids=["checked-unchecked", "exportCheckboxLabel"])
def test_checkbox_label_exports_read_as_the_raw_records(tmp_path, checkbox_labels):
    raw = read_export(CHECKBOXES, source="csv")
    labels = read_export(_label_export(CHECKBOXES, tmp_path / "labels", checkbox_labels=checkbox_labels))
    written = _rows(tmp_path / "labels" / "data.csv")
    # Record 1 (line 2): check_one___1 ticked; exportCheckboxLabel writes its label "one", else "Checked".
    assert written[1][2] == ("one" if checkbox_labels else "Checked")
    assert written[1][3] == ("" if checkbox_labels else "Unchecked")
    pd.testing.assert_frame_equal(labels.records, raw.records)


# Where records 1, 2 and 3 are: data.csv lines 2-4; project.xml the first <FormData> of each <SubjectData>.
@pytest.mark.parametrize(("source", "file", "lines"), [("csv", "data.csv", (2, 3, 4)),
                                                       ("xml", "project.xml", (166, 201, 235))])
def test_a_checkbox_read_as_an_item_is_refused_where_more_than_one_box_is_ticked(source, file, lines):
    # docs/data.md: "a checkbox field with more than one box ticked" is an error (an item has one
    # answer). Record 1: check_two a and c; record 2: check_two b and d; record 3: check_one 1-4.
    problems = _refused(CHECKBOXES, source=source)
    where = f"redcapr-checkboxes-1/{file}"
    assert sorted(_where(p) for p in problems) == [(where, lines[0], "check_two", None),
                                                   (where, lines[1], "check_two", None),
                                                   (where, lines[2], "check_one", None)]
    assert {p.reason for p in problems} == {"has more than one box ticked"}


def test_a_checkbox_with_one_box_ticked_is_the_answer_of_its_code(tmp_path):
    # Without record 3 (line 4, every box of check_one ticked) and with check_two not imported:
    # record 1 ticks check_one___1 alone (line 2); records 2 and 4 tick none (no answer).
    directory = _copy_export(CHECKBOXES, tmp_path / "export")
    rows = _rows(directory / "data.csv")
    _write(directory / "data.csv", [row for row in rows if row[0] != "3"])
    mapping = {**_mapping(CHECKBOXES), "fields": {"check_one": "ceq_1"}, "ignore": ["desired_result", "check_two"]}
    study = _study(directory, mapping, project=CHECKBOXES)
    assert _answers(study) == [("1", "dose_1", "ceq", "ceq_1", 1)]
    assert study.participants["participant_id"].tolist() == ["1", "2", "4"]


# --------------------------------------------------------------------------------------------
# g. Data access groups (redcapr-dag)
# --------------------------------------------------------------------------------------------

def test_data_access_group_column_does_not_stop_the_import():
    directory = DATA / "redcapr-dag"
    export = read_export(directory, source="csv")
    assert export.records["redcap_data_access_group"].tolist() == ["daga", "daga", "dagb"]  # lines 2-4
    assert not _mentions(_mapping(directory), "redcap_data_access_group")
    study = study_from_export(export, _mapping(directory), _protocol(directory))
    assert study.participants[["participant_id", "arm"]].values.tolist() == [
        ["331-1", "drug_a"], ["331-2", "drug_a"], ["332-3", "drug_a"]]
    # Lines 2-4 hold names only: ethnicity, race and sex (mapped to CEQ 1-3) are empty, so no answer.
    assert _answers(study) == []


# --------------------------------------------------------------------------------------------
# h. Label export (derived from redcapr-longitudinal)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("checkbox_labels", [False, True], ids=["labels", "labels-and-checkbox-labels"])
def test_label_export_gives_the_raw_exports_study(tmp_path, checkbox_labels):
    directory = _label_export(LONGITUDINAL, tmp_path / "labels", checkbox_labels=checkbox_labels)
    written = _rows(directory / "data.csv")
    pmq1, gym = written[0].index("pmq1"), written[0].index("gym___0")
    assert written[2][pmq1] == "6-15" and written[1][1] == "Enrollment (Arm 1: Drug A)"  # line 3: code 2
    assert written[1][gym] == ("Monday" if checkbox_labels else "Checked")  # line 2: gym___0 is 1
    _assert_same_study(_study(directory, project=LONGITUDINAL, source=None), _study(LONGITUDINAL))


def test_label_export_with_a_label_not_among_the_choices_is_refused(tmp_path):
    directory = _label_export(LONGITUDINAL, tmp_path / "labels")
    rows = _rows(directory / "data.csv")
    pmq1 = rows[0].index("pmq1")
    rows[2][pmq1] = "16-20"  # line 3 (record 100, dose_1): not one of pmq1's labels
    _write(directory / "data.csv", rows)
    problems = _refused(directory, project=LONGITUDINAL, source=None)
    assert [_where(p) for p in problems] == [("labels/data.csv", 3, "pmq1", "16-20")]
    assert "is neither a code nor a label of field 'pmq1'" in problems[0].reason
    assert "2 (6-15)" in problems[0].allowed


# --------------------------------------------------------------------------------------------
# i. Delimiters (redcapr-longitudinal rewritten with each)
# --------------------------------------------------------------------------------------------

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", "^": "caret"}


def _mapping_file(path: Path, **keys) -> Path:
    path.write_text(yaml.safe_dump({**_mapping(LONGITUDINAL), **keys}), encoding="utf-8")
    return path


@pytest.mark.parametrize("delimiter", list(DELIMITERS), ids=list(DELIMITERS.values()))
def test_each_delimiter_detected_or_given_gives_the_comma_exports_study(tmp_path, delimiter):
    directory = _copy_export(LONGITUDINAL, tmp_path / "export", delimiter=delimiter)
    header = (directory / "data.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith(f"study_id{delimiter}redcap_event_name{delimiter}")
    comma = _study(LONGITUDINAL)
    _assert_same_study(_study(directory, project=LONGITUDINAL), comma)             # detected from the header
    given = _mapping_file(tmp_path / "mapping.yaml", delimiter=delimiter)        # mapping's delimiter:
    _assert_same_study(read_redcap_export(directory, given, _protocol(LONGITUDINAL)), comma)
    assert _answers(comma) == _expand(LONGITUDINAL_PMQ, "ceq", CEQ_1_4)


@pytest.mark.parametrize(("delimiter", "wrong"), [(d, w) for d in DELIMITERS for w in DELIMITERS if w != d],
                         ids=[f"{DELIMITERS[d]}-given-{DELIMITERS[w]}" for d in DELIMITERS for w in DELIMITERS if w != d])
def test_a_wrong_given_delimiter_is_refused_naming_the_files_delimiter(tmp_path, delimiter, wrong):
    directory = _copy_export(LONGITUDINAL, tmp_path / "export", delimiter=delimiter)
    with pytest.raises(StudyDataError) as caught:
        read_redcap_export(directory, _mapping_file(tmp_path / "mapping.yaml", delimiter=wrong),
                           _protocol(LONGITUDINAL))
    (problem,) = caught.value.problems
    assert (_where(problem)[:3]) == ("export/dictionary.csv", 1, None)
    assert problem.reason == (f"is not split into data dictionary columns (Variable / Field Name, … or field_name, "
                              f"…) by the {DELIMITERS[wrong]} ({wrong!r}) given")
    assert problem.allowed.startswith(f"{DELIMITERS[delimiter]} ({delimiter!r}), which splits it")
    assert "record id column is missing" not in problem.reason


# --------------------------------------------------------------------------------------------
# j. The API's dictionary headers (redcapr-simple/metadata.csv)
# --------------------------------------------------------------------------------------------

SIMPLE = DATA / "redcapr-simple"


def test_api_metadata_reads_as_the_ui_dictionary_and_gives_the_same_study():
    ui = read_dictionary(SIMPLE / "dictionary.csv")
    api = read_dictionary(SIMPLE / "metadata.csv")
    assert list(api.columns) == list(ui.columns) == list(DICTIONARY_COLUMNS)
    differ = (api != ui).stack()
    field_type, choices_column = DICTIONARY_COLUMNS[3], DICTIONARY_COLUMNS[5]
    # The one real difference: metadata.csv (line 9) has age as a calculated field, dictionary.csv text.
    assert [(int(i), c) for i, c in differ[differ].index] == [(7, field_type), (7, choices_column)]
    assert (ui.loc[7, field_type], api.loc[7, field_type]) == ("text", "calc")
    assert (ui.loc[7, choices_column], api.loc[7, choices_column]) == ("", "rounddown(datediff([dob],'today','y'))")
    pd.testing.assert_frame_equal(api.drop(columns=[field_type, choices_column]),
                                  ui.drop(columns=[field_type, choices_column]))
    ui_export = read_export(SIMPLE, source="csv")
    records, lines = read_records(SIMPLE / "data.csv", api)
    api_export = replace(ui_export, dictionary=api, records=records, record_lines=lines)
    ui_study = study_from_export(ui_export, _mapping(SIMPLE), _protocol(SIMPLE))
    _assert_same_study(study_from_export(api_export, _mapping(SIMPLE), _protocol(SIMPLE)), ui_study)
    # data.csv lines 2, 4, 6, 8, 13 (records span lines): ethnicity 1, 1, 0, 1, 2; age 11, 11, 80, 61, 59.
    assert _answers(ui_study) == [(str(r), "dose_1", "ceq", "ceq_1", v) for r, v in zip(range(1, 6), (1, 1, 0, 1, 2),
                                                                                          strict=True)]
    assert ui_study.participants["age"].tolist() == [11, 11, 80, 61, 59]


# --------------------------------------------------------------------------------------------
# k. ODM project XML against the CSV of the same project
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("project", ["redcapr-longitudinal", "redcapr-repeating-instruments",
                                     "redcapr-vignette-repeating", "redcapr-survey", "redcapr-dag", "redcapr-simple"])
def test_project_xml_gives_the_csv_exports_study(project):
    xml = _study(DATA / project, source="xml")
    _assert_same_study(xml, _study(DATA / project, source="csv"))
    if project == "redcapr-longitudinal":
        assert _answers(xml) == _expand(LONGITUDINAL_PMQ, "ceq", CEQ_1_4)
    if project == "redcapr-repeating-instruments":
        assert _answers(xml) == _expand(REPEATING_BP, "ebi", ["ebi_1", "ebi_2"], shift=-100)


def test_project_xml_of_three_arms_has_one_participant_per_record_the_xml_holds():
    text = (ARMS / "project.xml").read_text(encoding="utf-8")
    clinical = text[text.index("<ClinicalData"):]
    # Counted in the file: each <SubjectData SubjectKey="…"> and its events' redcap:UniqueEventName.
    pairs, record = set(), None
    for match in re.finditer(r'<SubjectData SubjectKey="([^"]+)"|<StudyEventData [^>]*redcap:UniqueEventName="([^"]+)"',
                             clinical):
        record = match[1] or record
        if match[2]:
            pairs.add((record, int(match[2].rpartition("_arm_")[2])))
    # The XML, exported after the CSV, no longer holds records 102, 103, 105 and 120 in arm 2.
    assert _record_arm_pairs() - pairs == {("102", 2), ("103", 2), ("105", 2), ("120", 2)} and len(pairs) == 56
    study = _study(ARMS, source="xml")
    assert set(study.participants["participant_id"]) == {f"{r}_arm_{a}" for r, a in pairs}


def test_pycap_long_project_xml_reads_its_records_events_and_repeating_form():
    path = DATA / "pycap" / "test_long_project.xml"
    text = path.read_text(encoding="utf-8")
    export = read_export(path.parent)
    summary = export.to_dict()
    # Counted in the file: 2 <SubjectData> (records 1 and 2), 13 <StudyEventData> (record 1: 8 events
    # and its repeating baseline_data instance in an event element of its own; record 2: 4 events),
    # 16 <StudyEventDef>, arms 1 and 2, one <redcap:RepeatingInstrument>.
    assert summary["records"] == text.count("<SubjectData ") == 2
    assert summary["rows"] == text.count("<StudyEventData ") == 13
    assert summary["events"] == text.count("<StudyEventDef ") == 16
    assert (summary["arms"], summary["repeating"], summary["record_id"]) == (2, 1, "study_id")
    records = export.records
    assert records["study_id"].value_counts().to_dict() == {"1": 9, "2": 4}
    repeat = records[records[REPEAT_INSTRUMENT].notna()]
    assert repeat[["study_id", EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE, "weight2"]].values.tolist() == [
        ["1", "enrollment_arm_1", "baseline_data", "1", "100"]]
    assert records.loc[records[EVENT] == "enrollment_arm_2", "weight2"].tolist() == ["50"]
    assert export.repeating[["event_name", "form_name"]].values.tolist() == [["enrollment_arm_1", "baseline_data"]]
