"""REDCap export as REDCap takes it: unique event names, the data dictionary upload's rules, and a
lossless round trip of every protocol the package ships (issue 17, "Export REDCap accepts").

The event names are checked against names a real REDCap server gave (REDCapR's and PyCap's
recorded test projects, ``tests/study/data/redcap/README.md``), not against our own function.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from alliance.protocol import default_protocol, load_protocol
from alliance.simulate import simulate_trial
from alliance.study import StudyDataError
from alliance.study.formats import read_study, write_study
from alliance.study.formats.redcap import (
    DICTIONARY_COLUMNS,
    check_dictionary,
    read_dictionary,
    read_export,
    read_redcap,
    unique_event_name,
    write_redcap,
)
from alliance.study.formats.redcap.files import read_events

from .test_redcap_safety import same

DATA = Path(__file__).parent / "data" / "redcap"
ROOT = Path(__file__).parents[2]
MURPHY = ROOT / "examples" / "murphy2022" / "protocol.yaml"
SITE_INSTRUMENTS = ROOT / "tests" / "protocol" / "fixtures" / "site_instruments"
FIELD, FORM, TYPE = DICTIONARY_COLUMNS[0], DICTIONARY_COLUMNS[1], DICTIONARY_COLUMNS[3]


# --------------------------------------------------------------------------------------------
# Unique event names
# --------------------------------------------------------------------------------------------

def _real_events() -> list[tuple[str, pd.DataFrame]]:
    found = [(p.parent.name, read_events(p)) for p in sorted(DATA.glob("redcapr-*/event.csv"))]
    found.append(("pycap", read_export(DATA / "pycap", source="xml").events))
    return found


@pytest.mark.parametrize(("project", "events"), _real_events(), ids=lambda v: v if isinstance(v, str) else "")
def test_unique_event_names_are_those_a_real_redcap_server_gave(project, events):
    # In REDCap's order of events (arm, then the export's order, which is the day offset's).
    given: list[str] = []
    for row in events.itertuples():
        name = unique_event_name(row.event_name, int(row.arm_num), given)
        assert name == row.unique_event_name, (project, row.event_name)
        given.append(name)
    assert len(given) >= 3


def test_the_real_exports_hold_cut_labels_and_repeated_names():
    names = dict(zip(read_events(DATA / "redcapr-longitudinal" / "event.csv")["event_name"],
                     read_events(DATA / "redcapr-longitudinal" / "event.csv")["unique_event_name"], strict=False))
    # 18 characters of the label, lower case, then the arm
    assert names["Deadline to opt out of study"] == "deadline_to_opt_ou_arm_2"
    assert names["Deadline to return feedback"] == "deadline_to_return_arm_2"


@pytest.mark.parametrize(("label", "arm", "taken", "expected"), [
    ("Dose 1", 1, (), "dose_1_arm_1"),
    # punctuation and non-ASCII deleted, trimmed, each space an underscore (so two here)
    ("  Week 4 (± 3 days)!  ", 2, (), "week_4__3_days_arm_2"),
    ("Final preparation session", 1, (), "final_preparation_arm_1"),  # cut at 18, the final '_' stripped
    ("Visit &amp; call", 1, (), "visit__call_arm_1"),                # the entity decoded, '&' then deleted
    ("Visit", 1, ("visit_arm_1",), "visit_arm_1b"),
    ("Visit", 1, ("visit_arm_1", "visit_arm_1b"), "visit_arm_1c"),
    ("Visit", 2, ("visit_arm_1",), "visit_arm_2"),                  # another arm's name does not count
])
def test_unique_event_name_by_hand(label, arm, taken, expected):
    assert unique_event_name(label, arm, taken) == expected


def test_an_event_label_with_no_ascii_letter_is_named_by_its_hash():
    name = unique_event_name("第一次", 1)
    assert len(name) == len("0123456789_arm_1") and name.endswith("_arm_1")
    assert all(c in "0123456789abcdef" for c in name[:10])


# --------------------------------------------------------------------------------------------
# The data dictionary upload's rules
# --------------------------------------------------------------------------------------------

def _dictionary(*fields: tuple[str, str, str], **cells) -> pd.DataFrame:
    rows = []
    for name, form, kind in fields:
        row = dict.fromkeys(DICTIONARY_COLUMNS, "")
        row.update({FIELD: name, FORM: form, TYPE: kind, DICTIONARY_COLUMNS[4]: name.title()})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(DICTIONARY_COLUMNS))
    for key, value in cells.items():
        line, column = key.split("__")
        frame.loc[int(line) - 2, DICTIONARY_COLUMNS[int(column)]] = value
    return frame


GOOD = (("record_id", "participant", "text"), ("age", "participant", "text"), ("mood", "visit", "radio"))


def test_a_dictionary_that_keeps_the_rules_has_no_problem():
    assert check_dictionary(_dictionary(*GOOD, **{"4__5": "1, Low | 2, High"})) == []


@pytest.mark.parametrize("project", sorted(p.name for p in DATA.glob("redcapr-*")))
def test_the_real_dictionaries_pass_save_for_redcaps_own_long_name_warning(project):
    # These dictionaries were uploaded to a real REDCap server; one of its variables is 27
    # characters long, which REDCap accepted with its warning (the rule check_dictionary keeps).
    path = DATA / project / "dictionary.csv"
    problems = check_dictionary(read_dictionary(path), str(path))
    if project == "redcapr-longitudinal":
        (problem,) = problems
        assert (problem.row, problem.column, problem.value) == (29, FIELD, "next_of_kin_contact_address")
        assert "27 characters long" in problem.reason
    else:
        assert problems == []


@pytest.mark.parametrize(("fields", "cells", "line", "column", "value", "reason"), [
    ((("record_id", "participant", "text"), ("grid_hamd17_administered_at", "participant", "text")), {}, 3, 0,
     "grid_hamd17_administered_at", "27 characters long"),
    ((("record_id", "participant", "text"), ("Age", "participant", "text")), {}, 3, 0, "Age",
     "is not a REDCap variable name"),
    ((("record_id", "participant", "text"), ("age__years", "participant", "text")), {}, 3, 0, "age__years",
     "double underscore"),
    ((("record_id", "participant", "text"), ("visit_complete", "participant", "text")), {}, 3, 0,
     "visit_complete", "ends in '_complete'"),
    ((("record_id", "participant", "text"), ("redcap_event_name", "participant", "text")), {}, 3, 0,
     "redcap_event_name", "reserves"),
    ((("record_id", "participant", "text"), ("age", "participant", "text"), ("age", "participant", "text")), {},
     4, 0, "age", "of line 3 too"),
    ((("record_id", "a", "text"), ("x", "b", "text"), ("y", "a", "text")), {}, 4, 1, "a", "interrupted"),
    ((("record_id", "participant", "text"), ("age", "participant", "number")), {}, 3, 3, "number",
     "is not a REDCap field type"),
    ((("record_id", "participant", "text"), ("mood", "participant", "radio")), {"3__5": "1, Low"}, 3, 5,
     "1, Low", "one choice"),
    ((("record_id", "participant", "text"), ("mood", "participant", "radio")), {"3__5": "1, Low | 1, High"}, 3, 5,
     "1", "repeats codes"),
    ((("record_id", "participant", "text"), ("sym", "participant", "checkbox")), {"3__5": "a-b, Ache"}, 3, 5,
     "a-b", "is not a code REDCap accepts"),
    ((("record_id", "participant", "text"), ("age", "participant", "text")), {"3__7": "integer", "3__8": "90",
                                                                               "3__9": "18"}, 3, 8, "90",
     "is above the max of field 'age'"),
    ((("record_id", "participant", "text"), ("age", "participant", "text")), {"3__8": "18"}, 3, 8, "18",
     "has no validation type"),
    ((("record_id", "participant", "text"), ("on", "participant", "text")), {"3__7": "date_ymd", "3__8": "1/2/2024"},
     3, 8, "1/2/2024", "is not a bound of date_ymd"),
    ((("record_id", "participant", "text"), ("age", "participant", "text")), {"3__11": "[agee] > 3"}, 3, 11, "agee",
     "names a field the dictionary does not have"),
    ((("record_id", "participant", "text"), ("age", "participant", "text")), {"3__10": "yes"}, 3, 10, "yes",
     "is not a value REDCap reads there"),
])
def test_each_broken_rule_is_named_by_line_column_and_value(fields, cells, line, column, value, reason):
    problems = check_dictionary(_dictionary(*fields, **cells), "dd.csv")
    assert [(p.file, p.row, p.column, p.value) for p in problems] == [("dd.csv", line, DICTIONARY_COLUMNS[column],
                                                                       value)]
    assert reason in problems[0].reason


def test_the_record_id_field_comes_first():
    frame = _dictionary(("age", "participant", "text"), ("record_id", "participant", "text"))
    (problem,) = check_dictionary(frame, record_id="record_id")
    assert (problem.row, problem.column, problem.value) == (2, FIELD, "age")
    assert "is not the record id field" in problem.reason
    assert check_dictionary(frame) == []   # without record_id, the first field is the record id


def test_columns_out_of_order_are_named():
    frame = _dictionary(*GOOD, **{"4__5": "1, Low | 2, High"})
    (problem,) = check_dictionary(frame[list(reversed(DICTIONARY_COLUMNS))])
    assert problem.row == 1 and "in order" in problem.reason


# --------------------------------------------------------------------------------------------
# Every shipped protocol: the export REDCap takes, and a lossless round trip
# --------------------------------------------------------------------------------------------

def _shipped_protocols(tmp_path: Path):
    yield "levin2024", default_protocol()
    # examples/murphy2022 needs a site's STAR-P: the fixture of tests/protocol (its key is invented)
    folder = tmp_path / "murphy2022"
    folder.mkdir()
    shutil.copy(MURPHY, folder / "protocol.yaml")
    shutil.copytree(SITE_INSTRUMENTS, folder / "site_instruments")
    yield "murphy2022", load_protocol(folder / "protocol.yaml")


def test_every_shipped_protocol_is_covered():
    shipped = sorted(p.stem for p in (ROOT / "src" / "alliance" / "protocol").glob("*.yaml"))
    shipped += sorted(p.parent.name for p in (ROOT / "examples").glob("*/protocol.yaml"))
    assert shipped == ["levin2024", "murphy2022"]   # a new protocol must join _shipped_protocols


@pytest.mark.usefixtures("package_bank")
def test_every_shipped_protocol_survives_a_redcap_round_trip(tmp_path):
    for name, protocol in _shipped_protocols(tmp_path):
        study = simulate_trial(protocol, n=16, seed=20261203)
        directory = tmp_path / f"{name}_export"
        project = write_redcap(study, directory)
        # what REDCap's upload takes as is
        assert check_dictionary(project.dictionary) == [], name
        assert all(len(n) <= 26 for n in project.dictionary[FIELD]), name
        # unique event names as REDCap derives them from the labels it is given
        given: dict[int, list[str]] = {}
        for row in project.events.itertuples():
            taken = given.setdefault(row.arm_num, [])
            assert row.unique_event_name == unique_event_name(row.event_name, row.arm_num, taken), name
            taken.append(row.unique_event_name)
        assert list(project.events.columns) == ["event_name", "arm_num", "day_offset", "offset_min", "offset_max",
                                                "unique_event_name", "custom_event_label"]
        # day offsets per arm counted from the arm's first event (day 0)
        assert (project.events.groupby("arm_num")["day_offset"].min() == 0).all(), name
        again = read_study(directory, "redcap", protocol)
        same(study, again)   # participants (enrolment dates), answers (raters, dates), dosing, safety tables
        assert study.dosing_sessions is not None and len(again.dosing_sessions) == len(study.dosing_sessions)
        assert again.participants["enrolled_on"].notna().all(), name
        assert again.responses["administered_at"].notna().any() and again.responses["rater"].notna().any(), name
        # and again: the second export is the first, byte for byte
        write_redcap(again, tmp_path / f"{name}_again")
        for file in ("data_dictionary.csv", "records.csv", "events.csv", "arms.csv", "mapping.yaml"):
            assert (directory / file).read_bytes() == (tmp_path / f"{name}_again" / file).read_bytes(), (name, file)


def test_the_levin_round_trip_carries_the_safety_tables(tmp_path):
    study = simulate_trial(default_protocol(), n=16, seed=20261203)
    assert study.adverse_events is not None and len(study.adverse_events) > 0
    assert study.vital_signs is not None and len(study.vital_signs) > 0
    write_study(study, tmp_path, "redcap")
    again = read_study(tmp_path, "redcap")
    pd.testing.assert_frame_equal(
        study.adverse_events.sort_values(["participant_id", "ae_id"]).reset_index(drop=True),
        again.adverse_events.sort_values(["participant_id", "ae_id"]).reset_index(drop=True))
    assert len(again.vital_signs) == len(study.vital_signs)


def test_the_export_reads_back_with_another_delimiter_named_in_the_mapping(tmp_path):
    study = simulate_trial(default_protocol(), n=8, seed=7)
    write_redcap(study, tmp_path)
    for name in ("data_dictionary.csv", "records.csv"):
        frame = pd.read_csv(tmp_path / name, dtype=str, keep_default_na=False)
        frame.to_csv(tmp_path / name, index=False, sep=";")
    mapping = (tmp_path / "mapping.yaml").read_text(encoding="utf-8")
    (tmp_path / "mapping.yaml").write_text(mapping + "delimiter: ';'\n", encoding="utf-8")
    same(study, read_redcap(tmp_path / "data_dictionary.csv", tmp_path / "records.csv", tmp_path / "mapping.yaml"))
    # and without the key, found from the header
    (tmp_path / "mapping.yaml").write_text(mapping, encoding="utf-8")
    same(study, read_study(tmp_path, "redcap"))


def test_a_directory_with_only_the_project_xml_is_read_by_read_study(tmp_path):
    source = DATA / "redcapr-longitudinal"
    shutil.copy(source / "project.xml", tmp_path / "project.xml")
    shutil.copy(DATA.parent / "redcap_api" / "mapping.yaml", tmp_path / "mapping.yaml")
    shutil.copy(DATA.parent / "redcap_api" / "protocol.yaml", tmp_path / "protocol.yaml")
    from_xml = read_study(tmp_path, "redcap")
    for name in ("dictionary.csv", "data.csv", "event.csv", "arm.csv"):
        shutil.copy(source / name, tmp_path / name)
    with pytest.raises(StudyDataError, match="two REDCap exports"):
        read_study(tmp_path, "redcap")
    (tmp_path / "project.xml").unlink()
    from_csv = read_study(tmp_path, "redcap")
    same(from_csv, from_xml)
    assert len(from_csv.participant_ids) > 0 and len(from_csv.responses) > 0
