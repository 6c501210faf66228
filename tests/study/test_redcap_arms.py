"""REDCap's data model as the import reads it: records in arms, classic projects, repeating events.

A REDCap record is a record id *in an arm*; a classic project has no events and says nothing of
arms; a repeating event's rows carry ``redcap_repeat_instance`` with an empty
``redcap_repeat_instrument``. Each test builds a small export in REDCap's flat raw format (the
real exports are in ``test_redcap_real_exports.py``) and checks what is stored, or that the
refusal names the cause.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance.protocol import default_protocol
from alliance.study import StudyDataError
from alliance.study.formats.redcap import DICTIONARY_COLUMNS, parse_mapping, study_from_redcap

WAI = [f"wai_sr_{i}" for i in range(1, 13)]


def _dictionary(*forms: str) -> pd.DataFrame:
    rows = [{"Variable / Field Name": "record_id", "Form Name": "enrolment", "Field Type": "text"}]
    for form in forms:
        rows += [{"Variable / Field Name": f"{form}_{name}" if form != "wai_sr" else name, "Form Name": form,
                  "Field Type": "radio", "Choices, Calculations, OR Slider Labels": "1, 1 | 2, 2 | 3, 3 | 4, 4 | 5, 5"}
                 for name in WAI]
    return pd.DataFrame(rows).reindex(columns=DICTIONARY_COLUMNS).astype(object).fillna("")


def _records(rows: list[dict], event: bool = True, repeat: bool = False) -> pd.DataFrame:
    columns = (["record_id"] + (["redcap_event_name"] if event else [])
               + (["redcap_repeat_instrument", "redcap_repeat_instance"] if repeat else []) + WAI)
    return pd.DataFrame(rows).reindex(columns=columns).astype("string")


def _answers(record: str, value: str = "3", **system) -> dict:
    return {"record_id": record, **system, **dict.fromkeys(WAI, value)}


def _import(records: pd.DataFrame, mapping: dict | None = None):
    return study_from_redcap(_dictionary("wai_sr"), records, mapping or {})


def _refused(records: pd.DataFrame, mapping: dict | None = None) -> list:
    with pytest.raises(StudyDataError) as caught:
        _import(records, mapping)
    return caught.value.problems


# -- arms ----------------------------------------------------------------------------------------

def _three_arms(**answers) -> pd.DataFrame:
    """Records 1-3 in arms 1, 2 and 3 (one each), at the prep event."""
    return _records([_answers(str(n), redcap_event_name=f"prep_arm_{n}", **answers) for n in (1, 2, 3)])


def test_an_arm_the_mapping_leaves_out_is_an_error_naming_it():
    # The default mapping knows arms 1 and 2 (the protocol's two arms); arm 3's record must not vanish.
    (problem,) = _refused(_three_arms())
    assert (problem.row, problem.column, problem.value) == (4, "redcap_event_name", "prep_arm_3")
    assert problem.reason == ("is an event of REDCap arm 3, which has no mapping to an arm of the protocol "
                              "(1 record in it)")
    assert problem.allowed.startswith("arms 1, 2 (arms: in mapping.yaml)")


def test_an_arm_listed_under_ignore_arms_is_left_out():
    study = _import(_three_arms(), {"ignore_arms": [3]})
    assert study.participants["participant_id"].tolist() == ["1", "2"]
    assert study.participants["arm"].tolist() == ["immediate", "delayed"]
    assert set(study.responses["participant_id"]) == {"1", "2"}


def test_an_arm_both_mapped_and_ignored_is_a_mapping_error():
    with pytest.raises(StudyDataError) as caught:
        parse_mapping({"arms": {1: "immediate", 2: "delayed"}, "ignore_arms": [2]}, default_protocol())
    (problem,) = caught.value.problems
    assert (problem.column, problem.value, problem.reason) == ("ignore_arms", [2], "names arms that arms: maps")


def _one_id_in_three_arms() -> pd.DataFrame:
    """Record 101 in arms 1, 2 and 3 (as REDCapR's arm-multiple-delete project has every record), 102 in arm 1."""
    return _records([_answers("101", redcap_event_name="prep_arm_1"), _answers("101", "4", redcap_event_name="prep_arm_2"),
                     _answers("101", "5", redcap_event_name="prep_arm_3"), _answers("102", redcap_event_name="prep_arm_1")])


THREE = {"arms": {1: "immediate", 2: "delayed", 3: "delayed"}}


def test_a_record_id_in_several_arms_is_refused_by_default():
    (problem,) = _refused(_one_id_in_three_arms(), THREE)
    assert (problem.row, problem.column, problem.value) == (3, "redcap_event_name", "prep_arm_2")
    assert problem.reason == ("puts record '101' in REDCap arm 2: it is in arms 1, 2 and 3, and REDCap keeps a "
                              "record per arm, so these are 3 records with one id")
    assert "join_arms: separate" in problem.allowed and "101_arm_1" in problem.allowed


def test_separate_gives_one_participant_per_record_and_arm():
    study = _import(_one_id_in_three_arms(), {**THREE, "join_arms": "separate"})
    p = study.participants
    assert p["participant_id"].tolist() == ["101_arm_1", "101_arm_2", "101_arm_3", "102"]
    assert p["arm"].tolist() == ["immediate", "delayed", "delayed", "immediate"]
    got = study.responses.groupby("participant_id")["value"].first().to_dict()
    assert got == {"101_arm_1": 3, "101_arm_2": 4, "101_arm_3": 5, "102": 3}


def test_separate_refuses_an_id_that_another_record_has():
    records = _records([_answers("7", redcap_event_name="prep_arm_1"), _answers("7", redcap_event_name="prep_arm_2"),
                        _answers("7_arm_2", redcap_event_name="prep_arm_1")])
    (problem,) = _refused(records, {"join_arms": "separate"})
    assert (problem.row, problem.column, problem.value) == (3, "record_id", "7")
    assert "would become participant '7_arm_2'" in problem.reason


def test_join_keeps_one_participant_when_its_arms_map_to_one_arm():
    records = _records([_answers("101", redcap_event_name="baseline_arm_2"),
                        _answers("101", redcap_event_name="prep_arm_3")])
    study = _import(records, {**THREE, "join_arms": "join", "events": {"baseline": "prep", "prep": "post_session1"}})
    assert study.participants[["participant_id", "arm"]].values.tolist() == [["101", "delayed"]]
    assert sorted(set(study.responses["timepoint"])) == ["post_session1", "prep"]


def test_join_refuses_a_participant_whose_arms_map_to_two_arms():
    problems = _refused(_one_id_in_three_arms(), {**THREE, "join_arms": "join"})
    (problem,) = [p for p in problems if "as well as" in p.reason]
    assert (problem.row, problem.column, problem.value) == (3, "redcap_event_name", "delayed")
    assert problem.reason == "puts participant '101' in arm 'delayed' as well as 'immediate'"


# -- classic projects ----------------------------------------------------------------------------

def test_a_classic_project_without_arms_says_so_once():
    records = _records([_answers("1"), _answers("2")], event=False)
    problems = _refused(records, {"timepoint": "prep"})
    assert len(problems) == 1
    assert problems[0].reason.startswith("has no redcap_event_name column (a classic project)")
    assert "arms: {1: <an arm of the protocol>}" in problems[0].allowed


def test_a_classic_project_with_one_arm_and_a_timepoint():
    records = _records([_answers("1", "2"), _answers("2", "5")], event=False)
    study = _import(records, {"arms": {1: "delayed"}, "timepoint": "prep"})
    assert study.participants["arm"].tolist() == ["delayed", "delayed"]
    assert set(study.responses["timepoint"]) == {"prep"}
    assert study.responses.groupby("participant_id")["value"].first().to_dict() == {"1": 2, "2": 5}


def test_a_classic_form_without_a_timepoint_is_named_once():
    records = _records([_answers("1"), _answers("2")], event=False)
    (problem,) = _refused(records, {"arms": {1: "immediate"}})
    assert (problem.row, problem.column) == (2, "wai_sr_1")
    assert problem.reason == ("is a field of form 'wai_sr', which has no timepoint: the records have no "
                              "redcap_event_name (a classic project)")


def test_classic_forms_each_take_their_timepoint():
    dictionary = _dictionary("wai_sr")
    second = dictionary.iloc[1:].copy()
    second["Variable / Field Name"] = "again_" + second["Variable / Field Name"]
    second["Form Name"] = "again"
    dictionary = pd.concat([dictionary, second], ignore_index=True)
    records = _records([_answers("1", "2")], event=False).assign(**{f"again_{w}": "4" for w in WAI})
    mapping = {"arms": {1: "immediate"}, "forms": {"wai_sr": {"timepoint": "prep"},
                                                   "again": {"timepoint": "post_session1"}},
               "fields": {f"again_{w}": w for w in WAI}}
    study = study_from_redcap(dictionary, records, mapping)
    assert study.responses.groupby("timepoint")["value"].first().to_dict() == {"prep": 2, "post_session1": 4}


def test_a_form_timepoint_in_a_longitudinal_project_is_refused():
    problems = _refused(_records([_answers("1", redcap_event_name="prep_arm_1")]), {"forms": {"wai_sr": {"timepoint": "prep"}}})
    assert [p.column for p in problems] == ["forms.wai_sr.timepoint"]
    assert "for classic projects" in problems[0].reason


# -- repeating instruments and events -------------------------------------------------------------

def _repeating_event(*instances: str) -> pd.DataFrame:
    """Record 1's preparation event repeats (instrument empty, instance set), one row per instance."""
    return _records([_answers("1", str(n), redcap_event_name="prep_arm_1", redcap_repeat_instance=n)
                     for n in instances], repeat=True)


def test_a_repeating_event_maps_instance_by_instance():
    study = _import(_repeating_event("1", "2"), {"repeating": {"prep": {1: "prep", 2: "post_session1"}}})
    assert study.responses.groupby("timepoint")["value"].first().to_dict() == {"prep": 1, "post_session1": 2}


def _insight_sessions(*instances: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A repeating dosing event holding the insight scale (0-100), one instance per dosing session."""
    dictionary = pd.DataFrame([{"Variable / Field Name": "record_id", "Form Name": "enrolment", "Field Type": "text"},
                               {"Variable / Field Name": "insight_1", "Form Name": "insight", "Field Type": "text"}]
                              ).reindex(columns=DICTIONARY_COLUMNS).astype(object).fillna("")
    records = pd.DataFrame([{"record_id": "1", "redcap_event_name": "dosing_arm_1", "redcap_repeat_instrument": "",
                             "redcap_repeat_instance": n, "insight_1": str(10 * int(n))} for n in instances],
                           dtype="string")
    return dictionary, records


def test_a_repeating_event_maps_through_a_pattern():
    study = study_from_redcap(*_insight_sessions("1", "2"), {"repeating": {"dosing_arm_1": "session{n}"}})
    assert study.responses.groupby("timepoint")["value"].first().to_dict() == {"session1": 10, "session2": 20}


def test_a_pattern_giving_no_timepoint_names_the_instance():
    with pytest.raises(StudyDataError) as caught:
        study_from_redcap(*_insight_sessions("1", "3"), {"repeating": {"dosing": "session{n}"}})
    (problem,) = caught.value.problems
    assert (problem.row, problem.column, problem.value) == (3, "redcap_repeat_instance", "3")
    assert problem.reason == ("is instance 3 of the repeating event 'dosing_arm_1', for which the pattern "
                              "'session{n}' gives 'session3', not a timepoint of the protocol")


def test_repeating_event_instances_without_a_mapping_are_not_second_answers():
    # Before, instance 2 was "a second answer" of the event's timepoint; now its instances are named.
    problems = _refused(_repeating_event("1", "2"))
    assert [(p.row, p.column, p.value) for p in problems] == [(2, "redcap_repeat_instance", "1"),
                                                              (3, "redcap_repeat_instance", "2")]
    assert problems[1].reason == ("is instance 2 of the repeating event 'prep_arm_1', whose instances have no "
                                  "mapping to timepoints")
    assert "repeating: prep:" in problems[1].allowed


def test_a_repeat_with_one_instance_is_its_events():
    study = _import(_repeating_event("1"))
    assert study.responses["timepoint"].unique().tolist() == ["prep"]


def test_a_pattern_must_hold_one_n():
    with pytest.raises(StudyDataError) as caught:
        parse_mapping({"repeating": {"prep": "session"}}, default_protocol())
    assert caught.value.problems[0].reason == "is not a timepoint pattern"


# -- messages and mapping keys --------------------------------------------------------------------

def test_a_second_answer_shows_the_answer_not_the_item_id():
    records = _records([_answers("1", "2", redcap_event_name="prep_arm_1"),
                        _answers("1", "4", redcap_event_name="again_arm_1")])
    problems = _refused(records, {"events": {"again": "prep"}})
    assert {p.value for p in problems} == {"4"}
    first = problems[0]
    assert (first.row, first.column) == (3, "wai_sr_1")
    assert first.reason.startswith("is a second answer of participant '1' at 'prep'")
    assert first.reason.endswith("(record '1', event again_arm_1)")


def test_a_suggested_mapping_is_refused_until_confirmed():
    with pytest.raises(StudyDataError) as caught:
        parse_mapping({"suggested": "by alliance redcap suggest; review it, then delete this line"},
                      default_protocol())
    (problem,) = caught.value.problems
    assert problem.column == "suggested" and "delete the suggested: line" in problem.allowed


@pytest.mark.parametrize(("given", "delimiter"), [(";", ";"), ("\t", "\t"), ("\\t", "\t"), ("tab", "\t"),
                                                  ("|", "|"), ("caret", "^")])
def test_the_mapping_names_a_delimiter(given, delimiter):
    assert parse_mapping({"delimiter": given}, default_protocol()).delimiter == delimiter


@pytest.mark.parametrize(("key", "value"), [("delimiter", ":"), ("join_arms", "merge"), ("ignore_arms", "3"),
                                            ("timepoint", "week99")])
def test_bad_new_mapping_keys_are_named(key, value):
    with pytest.raises(StudyDataError) as caught:
        parse_mapping({key: value}, default_protocol())
    assert [p.column for p in caught.value.problems] == [key]


def test_the_mapping_round_trips_its_new_keys():
    raw = {"delimiter": ";", "events": {}, "ignore_arms": [3], "join_arms": "separate", "timepoint": "prep",
           "repeating": {"wai": {1: "prep"}, "prep": "session{n}"}, "forms": {"wai_sr": {"timepoint": "prep"}}}
    mapping = parse_mapping(raw, default_protocol())
    assert parse_mapping(mapping.to_dict(), default_protocol()) == mapping


# -- the guarantee ------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(placements=st.lists(st.tuples(st.sampled_from(["1", "2", "3", "4"]), st.integers(1, 3)), min_size=1,
                           max_size=10, unique=True),
       mapped=st.sets(st.integers(1, 3)), join=st.sampled_from([None, "refuse", "separate"]))
def test_no_mapping_without_join_merges_redcap_records(placements, mapped, join):
    """Whatever the arms of the records and the mapping, short of join_arms: join, an import that succeeds
    has one participant per REDCap record (record id and arm) of the arms it imports."""
    records = _records([_answers(rid, redcap_event_name=f"prep_arm_{arm}") for rid, arm in placements])
    arms = {n: ("immediate" if n == 1 else "delayed") for n in mapped}
    mapping = {"arms": arms} if arms else {}
    if join:
        mapping["join_arms"] = join
    try:
        study = _import(records, mapping)
    except StudyDataError:
        return
    imported = {(rid, arm) for rid, arm in placements if arm in (arms or {1: 0, 2: 0})}
    assert len(study.participants) == len(imported)
