"""``suggest_mapping``: a REDCap data dictionary (and events, arms) → a mapping file whose every guess says why.

Tested on REDCapR's longitudinal test project (``tests/study/data/redcap/redcapr-longitudinal``,
MIT) against a protocol written for it (``tests/study/data/redcap_suggest/protocol.yaml``), on the
project alliance's own export writes, and on small dictionaries built here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from alliance.protocol import default_protocol, load_protocol
from alliance.simulate import simulate_trial
from alliance.study import StudyDataError
from alliance.study.formats.redcap import DICTIONARY_COLUMNS, parse_mapping, read_export, write_redcap
from alliance.study.formats.redcap.files import (
    read_arms,
    read_dictionary,
    read_events,
    read_form_events,
    read_repeating,
)
from alliance.study.formats.redcap.importing import study_from_export
from alliance.study.formats.redcap.suggest import MappingSuggestion, suggest_mapping

DATA = Path(__file__).parent / "data"
LONGITUDINAL = DATA / "redcap" / "redcapr-longitudinal"
PROTOCOL = DATA / "redcap_suggest" / "protocol.yaml"
WAI_ANCHORS = "Seldom | Sometimes | Fairly often | Very often | Always".split(" | ")


def confirmed(suggestion: MappingSuggestion) -> dict:
    """The suggestion as the user would confirm it: the suggested: line deleted."""
    lines = suggestion.text.splitlines()
    assert lines[0].startswith("suggested: ")
    return yaml.safe_load("\n".join(lines[1:])) or {}


def dictionary(rows: list[tuple]) -> pd.DataFrame:
    """A data dictionary from (field, form, type, choices[, validation, min, max]) rows."""
    out = []
    for row in rows:
        name, form, kind, choices, *rest = row
        validation, low, high = (list(rest) + ["", "", ""])[:3]
        out.append({**dict.fromkeys(DICTIONARY_COLUMNS, ""), DICTIONARY_COLUMNS[0]: name, DICTIONARY_COLUMNS[1]: form,
                    DICTIONARY_COLUMNS[3]: kind, DICTIONARY_COLUMNS[5]: choices, DICTIONARY_COLUMNS[7]: validation,
                    DICTIONARY_COLUMNS[8]: low, DICTIONARY_COLUMNS[9]: high})
    return pd.DataFrame(out, columns=list(DICTIONARY_COLUMNS))


def entry(suggestion: MappingSuggestion, section: str, key: str):
    found = [e for e in suggestion.entries if e.section == section and e.key == key]
    assert len(found) == 1, (section, key, suggestion.text)
    return found[0]


# ---------------------------------------------------------------------------------------------
# REDCapR's longitudinal project
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def longitudinal() -> MappingSuggestion:
    return suggest_mapping(read_dictionary(LONGITUDINAL / "dictionary.csv"), load_protocol(PROTOCOL),
                           events=read_events(LONGITUDINAL / "event.csv"), arms=read_arms(LONGITUDINAL / "arm.csv"),
                           source="dictionary.csv")


def test_longitudinal_events_and_arms(longitudinal):
    raw = confirmed(longitudinal)
    assert raw["record_id"] == "study_id"
    # event.csv has no day_offset: every match is by name, each with its reason
    assert raw["events"] == {"enrollment": "intake", "dose_1": "session1", "visit_1": "visit_1", "dose_2": "session2",
                             "visit_2": "visit_2", "final_visit": "final", "first_dose": "session1",
                             "first_visit": "visit_1"}
    assert raw["arms"] == {1: "drug_a", 2: "drug_b"}
    enrollment = entry(longitudinal, "events", "enrollment")
    assert enrollment.sureness == "sure" and "'Enrollment'" in enrollment.why and "'Enrolment'" in enrollment.why
    dose = entry(longitudinal, "events", "first_dose")  # "First dose": the first dosing timepoint
    assert dose.sureness == "likely" and "dosing session 1" in dose.why
    assert entry(longitudinal, "events", "visit_1").sureness == "exact"  # named like the timepoint
    assert f"  # {dose.why}; likely\n  first_dose: session1\n" in longitudinal.text
    deadlines = {u.name: u.reason for u in longitudinal.unmatched if u.kind == "event"}
    assert set(deadlines) == {"deadline_to_opt_ou_arm_2", "deadline_to_return_arm_2"}
    assert "no timepoint is named like it, and it has no day_offset" in deadlines["deadline_to_opt_ou_arm_2"]
    assert "#   deadline_to_opt_ou_arm_2: ?    # event 'Deadline to opt out of study' (arm 2)" in longitudinal.text


def test_longitudinal_questionnaire_by_count_and_ranges(longitudinal):
    raw = confirmed(longitudinal)
    # pmq1-pmq4 (codes 0-3, 0-5, 0-1, 0-2) within the ORS items' 0-10: the one 4-item instrument
    assert raw["fields"] == {"pmq1": "ors_1", "pmq2": "ors_2", "pmq3": "ors_3", "pmq4": "ors_4"}
    assert "forms" not in raw
    pmq = entry(longitudinal, "fields", "pmq1")
    assert pmq.sureness == "unsure" and "no recode" in pmq.why and "item count" in pmq.why
    # the block's reason is written once, above its first field
    assert longitudinal.text.count("~ ors items 1-4") == 1
    reasons = {u.name: u.reason for u in longitudinal.unmatched if u.kind == "field"}
    assert "no instrument of the protocol has 5 items" in reasons["vld1"]
    assert "do not run 1..12" in reasons["vob1"]  # vob7 and vob14 are notes: the numbers have gaps
    assert reasons["gym"].startswith("checkbox field")


def test_longitudinal_participant_fields(longitudinal):
    raw = confirmed(longitudinal)
    assert raw["participant_fields"] == {"date_enrolled": "enrolled_on", "age": "age",
                                         "sex": {"column": "sex", "recode": {0: "Female", 1: "Male"}}}
    assert "labels as the values" in entry(longitudinal, "participant_fields", "sex").why
    names = {u.name for u in longitudinal.unmatched}
    assert {"first_name", "email", "dob", "ethnicity"} <= names  # the protocol lists no identifiers


def test_suggested_line_is_refused_until_deleted(longitudinal):
    protocol = load_protocol(PROTOCOL)
    with pytest.raises(StudyDataError) as caught:
        parse_mapping(yaml.safe_load(longitudinal.text), protocol)
    assert "suggested" in str(caught.value) and "delete the suggested: line" in str(caught.value)
    mapping = parse_mapping(confirmed(longitudinal), protocol)
    assert mapping.fields["pmq3"].item == "ors_3" and mapping.arms == {1: "drug_a", 2: "drug_b"}


def test_longitudinal_imports_once_the_unmatched_are_ignored(longitudinal):
    """The user's review, done by rule: every unmatched field ignored. The records then import."""
    raw = confirmed(longitudinal)
    raw["ignore"] = [u.name for u in longitudinal.unmatched if u.kind == "field"]
    study = study_from_export(read_export(LONGITUDINAL, source="csv"), raw, load_protocol(PROTOCOL))
    # 3 records (100, 220 in arm 1; 304 in arm 2), the questionnaire at 10 events, 4 fields each
    assert sorted(study.participants["participant_id"]) == ["100", "220", "304"]
    assert dict(zip(study.participants["participant_id"], study.participants["arm"], strict=True)) == {
        "100": "drug_a", "220": "drug_a", "304": "drug_b"}
    assert len(study.responses) == 40 and set(study.responses["instrument"]) == {"ors"}
    assert set(study.responses["timepoint"]) == {"session1", "visit_1", "session2", "visit_2"}
    assert set(study.participants["sex"]) <= {"Female", "Male"}


# ---------------------------------------------------------------------------------------------
# alliance's own export
# ---------------------------------------------------------------------------------------------


def test_own_export_gives_back_its_mapping(tmp_path):
    protocol = default_protocol()
    project = write_redcap(simulate_trial(protocol, n=6, seed=3), tmp_path)
    suggestion = suggest_mapping(
        read_dictionary(tmp_path / "data_dictionary.csv"), protocol, events=read_events(tmp_path / "events.csv"),
        arms=read_arms(tmp_path / "arms.csv"), form_events=read_form_events(tmp_path / "instrument_event_mapping.csv"),
        repeating=read_repeating(tmp_path / "repeating_instruments.csv"))
    assert suggestion.unmatched == ()
    suggested = parse_mapping(confirmed(suggestion), protocol)
    assert suggested == project.mapping, (suggested.to_yaml(), project.mapping.to_yaml())
    # Items and the dosing and safety forms are matched by name alone; the events by their labels
    # (the export names its events from the timepoints' labels) and their day offsets, the arms by
    # their labels: each of those says why.
    assert all(e.sureness == "exact" for e in suggestion.entries
               if e.section in ("record_id", "participant_fields", "dosing_fields", "adverse_event_fields"))
    for e in suggestion.guessed:
        assert e.why and e.sureness in ("sure", "likely", "unsure")
        assert f"# {e.why}; {e.sureness}" in suggestion.text or e.section == "fields"
    assert not any(e.sureness == "unsure" for e in suggestion.guessed if e.section in ("events", "arms"))


# ---------------------------------------------------------------------------------------------
# Small dictionaries: recodes, offsets, ambiguity, nothing
# ---------------------------------------------------------------------------------------------


def wai_choices(codes) -> str:
    return " | ".join(f"{c}, {label}" for c, label in zip(codes, WAI_ANCHORS, strict=True))


def test_codes_shift_and_recode():
    rows = [("record_id", "intake", "text", "")]
    # REDCap 0-4 labelled with the WAI-SR's anchors, item 1-5: shift +1, sure (the labels say so)
    rows += [(f"wai_q{n}", "wai", "radio", wai_choices(range(5))) for n in range(1, 13)]
    # named like the items themselves, codes 10-50 unlabelled: as many codes as values, in order
    rows += [(f"wai_sr_t_{n}", "therapist", "dropdown", " | ".join(f"{c}, {c}" for c in (10, 20, 30, 40, 50)))
             for n in range(1, 13)]
    protocol = _protocol_with(["wai_sr", "wai_sr_t"])
    s = suggest_mapping(dictionary(rows), protocol)
    raw = confirmed(s)
    assert "wai" not in raw["forms"]
    assert raw["forms"]["therapist"] == {"recode": {10: 1, 20: 2, 30: 3, 40: 4, 50: 5}}
    # wai ~ wai_sr and wai_sr_t alike by name; 12 items each; the labels decide nothing between them
    reasons = {u.name: u.reason for u in s.unmatched}
    assert "fit wai_sr and wai_sr_t alike" in reasons["wai_q1"]
    assert "wai_q1" not in raw.get("fields", {})
    assert entry(s, "forms", "therapist").sureness == "likely"
    parse_mapping(raw, protocol)


def test_one_instrument_chosen_by_name_and_anchors():
    rows = [("record_id", "intake", "text", "")] + [(f"wai_{n:02d}", "wai", "radio", wai_choices(range(5)))
                                                     for n in range(1, 13)]
    s = suggest_mapping(dictionary(rows), default_protocol())  # the default protocol gives wai_sr only
    raw = confirmed(s)
    assert raw["fields"] == {f"wai_{n:02d}": f"wai_sr_{n}" for n in range(1, 13)}
    assert raw["forms"] == {"wai": {"shift": 1}}
    why = entry(s, "forms", "wai")
    assert why.sureness == "sure" and "shift +1" in why.why and "anchors" in why.why
    assert s.unmatched == ()


def test_codes_outside_every_instrument_are_unmatched():
    rows = [("record_id", "intake", "text", "")] + [(f"wai_{n}", "wai", "radio", "1, a | 2, b | 3, c")
                                                    for n in range(1, 13)]
    s = suggest_mapping(dictionary(rows), default_protocol())
    # 3 codes, not among wai_sr's values 1-5?  They are: 1-3 ⊂ 1-5, so the fit is "codes among the values"
    assert entry(s, "fields", "wai_1").value == "wai_sr_1"
    rows = [("record_id", "intake", "text", "")] + [(f"wai_{n}", "wai", "radio", "7, a | 8, b | 9, c")
                                                    for n in range(1, 13)]
    s = suggest_mapping(dictionary(rows), default_protocol())
    assert {u.name for u in s.unmatched} == {f"wai_{n}" for n in range(1, 13)}
    assert "no instrument of the protocol has 12 items whose values hold their codes" in s.unmatched[0].reason


def test_events_and_arms_by_day_offset():
    protocol = default_protocol()
    rows = [("record_id", "intake", "text", "")]
    # unnamed events, REDCap arms unnamed: the delayed arm's offsets (prep at day 76) say which is which
    events = pd.DataFrame({
        "unique_event_name": ["visit_a_arm_1", "visit_b_arm_1", "week_4_arm_1", "visit_a_arm_2", "visit_b_arm_2",
                              "visit_c_arm_2"],
        "event_name": ["Visit A", "Visit B", "Week 4", "Visit A", "Visit B", "Visit C"],
        "arm_num": [1, 1, 1, 2, 2, 2], "day_offset": [0.0, 21.0, 0.0, 0.0, 76.0, 82.0]})
    s = suggest_mapping(dictionary(rows), protocol, events=events)
    raw = confirmed(s)
    assert raw["events"] == {"visit_a": "baseline", "visit_b_arm_1": "session1", "visit_b_arm_2": "prep",
                             "visit_c": "session1"}
    assert entry(s, "events", "visit_b_arm_1").sureness == "likely"
    assert "day_offset 21 = session1's planned day in arm immediate" in entry(s, "events", "visit_b_arm_1").why
    # 82 is no planned day of the delayed arm, but within session1's window (day 77, -7/+14) alone
    assert entry(s, "events", "visit_c").sureness == "unsure"
    # "Week 4" names week4, but its day_offset 0 is not week4's planned day: not resolved, listed
    week4 = next(u for u in s.unmatched if u.name == "week_4_arm_1")
    assert "its name gives week4" in week4.reason and "planned day 61" in week4.reason
    # arms: 2 of arm 1's 3 offsets (0, 21) are the immediate arm's days (week 4's 0 is not its own);
    # 2 of arm 2's (0, 76) the delayed arm's
    assert raw["arms"] == {1: "immediate", 2: "delayed"}
    assert entry(s, "arms", "1").sureness == "unsure" and "2 of its 3 events' day offsets" in entry(s, "arms", "1").why
    # with neither names nor offsets the arms stay unmatched, and the import's default is said out loud
    s = suggest_mapping(dictionary([("record_id", "intake", "text", "")]), protocol,
                        events=events.drop(columns="day_offset"))
    arms = {u.name: u.reason for u in s.unmatched if u.kind == "arm"}
    assert "the import takes it as the protocol's arm 1, immediate" in arms["1"]
    assert "arms" not in confirmed(s)
    # an offset inside two windows (delayed: session1 day 77 -7/+14, post_session1 day 78 +2) is not chosen
    two = events.assign(day_offset=[0.0, 21.0, 0.0, 0.0, 76.0, 80.0])
    s = suggest_mapping(dictionary([("record_id", "intake", "text", "")]), protocol, events=two)
    visit_c = next(u for u in s.unmatched if u.name == "visit_c_arm_2")
    assert "within the windows of session1 and post_session1" in visit_c.reason


def test_arm_offsets_decide_the_arm():
    protocol = default_protocol()
    events = pd.DataFrame({"unique_event_name": ["baseline_arm_1", "prep_arm_1", "baseline_arm_2", "prep_arm_2"],
                           "event_name": ["Baseline", "Prep", "Baseline", "Prep"], "arm_num": [1, 1, 2, 2],
                           "day_offset": [0.0, 76.0, 0.0, 20.0]})
    s = suggest_mapping(dictionary([("record_id", "intake", "text", "")]), protocol, events=events)
    # REDCap's arm 1 is the delayed one: its prep sits at day 76
    assert confirmed(s)["arms"] == {1: "delayed", 2: "immediate"}
    assert "planned days" in entry(s, "arms", "1").why


def test_two_fields_for_one_column_are_both_unmatched():
    rows = [("record_id", "intake", "text", ""), ("age", "intake", "text", "", "integer"),
            ("age_years", "intake", "text", "", "integer"), ("site_id", "intake", "text", "")]
    s = suggest_mapping(dictionary(rows), default_protocol())
    raw = confirmed(s)
    assert raw["participant_fields"] == {"site_id": "site"}
    reasons = {u.name: u.reason for u in s.unmatched}
    assert "one of 2 fields that could be the participants column age (age, age_years)" in reasons["age"]
    assert set(reasons) == {"age", "age_years"}


def test_dictionary_matching_nothing():
    s = suggest_mapping(read_dictionary(DATA / "redcap" / "redcapr-checkboxes-1" / "dictionary.csv"), default_protocol())
    assert [e.section for e in s.entries] == ["record_id"]
    assert len(s.unmatched) == s.review > 0
    text_lines = s.text.splitlines()
    heading = next(n for n, line in enumerate(text_lines) if line.startswith("# UNMATCHED"))
    assert all(line.startswith("#") for line in text_lines[heading:])
    assert all(f"#   - {u.name}" in s.text for u in s.unmatched if u.kind == "field")
    raw = confirmed(s)
    assert set(raw) == {"record_id"}
    parse_mapping(raw, default_protocol())
    assert "no events file given" in s.text
    assert s.to_dict()["review"] == s.review and s.to_dict()["unmatched"][0]["reason"]


def test_repeating_form_of_answers_is_listed():
    rows = [("record_id", "intake", "text", "")] + [(f"wai_sr_{n}", "wai_sr", "radio",
                                                     " | ".join(f"{c}, {c}" for c in range(1, 6))) for n in range(1, 13)]
    repeating = pd.DataFrame({"event_name": ["prep_arm_1", "baseline_arm_1"], "form_name": ["wai_sr", "dosing"],
                              "custom_form_label": ["", ""]})
    s = suggest_mapping(dictionary(rows), default_protocol(), repeating=repeating)
    listed = [u for u in s.unmatched if u.kind == "repeating"]
    assert [u.name for u in listed] == ["wai_sr"] and "repeating: wai_sr: {1: <timepoint>" in listed[0].reason
    assert "#   wai_sr: ?" in s.text


def _protocol_with(instruments: list[str]):
    from alliance.protocol import parse_protocol

    return parse_protocol({
        "id": "two_wai", "name": "two WAI forms", "arms": [{"id": "a", "label": "A"}],
        "timepoints": [{"id": "prep", "label": "Preparation", "kind": "preparation", "anchor": "enrolment",
                        "offset_days": 0, "window_days": [0, 7], "instruments": instruments}]})
