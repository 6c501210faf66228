"""Facilitator-rated instruments in the tidy contract: one administration per facilitator."""

import pandas as pd
import pytest
import yaml

from alliance.protocol import default_protocol, parse_protocol
from alliance.simulate import simulate_trial
from alliance.study import Study, StudyDataError
from alliance.study.formats.redcap import redcap_from_study
from alliance.study.formats.wide import wide_from_responses


def rated_protocol():
    raw = yaml.safe_load(default_protocol().to_yaml())
    for timepoint in raw["timepoints"]:
        if timepoint["id"] in ("prep", "week1"):
            timepoint["instruments"].append("wai_sr_t")
    return parse_protocol(raw)


def _study(rows=None, participants=None):
    protocol = rated_protocol()
    base = simulate_trial(default_protocol(), n=4, seed=11)
    participants = base.participants.assign(facilitator_ids=["F1;F2", "F1;F3", "F2;F3", "F3"]) \
        if participants is None else participants
    if rows is None:
        rows = [{"participant_id": "P001", "timepoint": "prep", "instrument": "wai_sr_t",
                 "item": f"wai_sr_t_{i}", "value": value, "rater": rater}
                for rater, value in (("F1", 4), ("F2", 3)) for i in range(1, 13)]
    responses = pd.concat([base.responses, pd.DataFrame(rows)], ignore_index=True)
    return Study(protocol, participants, responses, base.dosing_sessions)


def test_each_facilitator_is_an_administration_and_the_measure_is_their_mean():
    study = _study()
    study.validate()
    scores = study.scores()
    rated = scores[scores["instrument"] == "wai_sr_t"]
    assert rated[["participant_id", "rater", "total"]].values.tolist() == [["P001", "F1", 48.0], ["P001", "F2", 36.0]]
    assert scores.columns[:4].tolist() == ["participant_id", "timepoint", "instrument", "rater"]
    wide = study.measures(wide=True)
    assert wide.loc["P001", "wai_sr_t.total@prep"] == 42.0
    assert pd.isna(wide.loc["P002", "wai_sr_t.total@prep"])


def _problems(study):
    with pytest.raises(StudyDataError) as caught:
        study.validate()
    return caught.value.problems


def test_a_rating_without_its_facilitator_is_refused():
    rows = [{"participant_id": "P001", "timepoint": "prep", "instrument": "wai_sr_t", "item": "wai_sr_t_1",
             "value": 4, "rater": None}]
    (problem,) = _problems(_study(rows))
    assert problem.column == "rater" and "rated by each facilitator" in problem.reason
    assert "F1, F2" in problem.allowed


def test_a_rater_who_is_not_the_participants_facilitator_is_refused():
    rows = [{"participant_id": "P004", "timepoint": "prep", "instrument": "wai_sr_t", "item": "wai_sr_t_1",
             "value": 4, "rater": "F1"}]
    (problem,) = _problems(_study(rows))
    assert (problem.column, problem.value) == ("rater", "F1")
    assert "'P004'" in problem.reason and problem.allowed.endswith("F3")


def test_without_facilitator_ids_no_rater_can_be_checked_so_none_is_accepted():
    participants = simulate_trial(default_protocol(), n=4, seed=11).participants.drop(columns="facilitator_ids")
    problems = _problems(_study(participants=participants))
    assert len(problems) == 24 and {p.column for p in problems} == {"rater"}


def test_a_second_answer_by_the_same_facilitator_is_refused_naming_the_facilitator():
    rows = [{"participant_id": "P001", "timepoint": "prep", "instrument": "wai_sr_t", "item": "wai_sr_t_1",
             "value": value, "rater": "F1"} for value in (4, 5)]
    (problem,) = _problems(_study(rows))
    assert "by facilitator 'F1'" in problem.reason and "and facilitator" in problem.allowed


def test_formats_with_one_row_per_timepoint_refuse_rather_than_drop_a_rating():
    study = _study()
    with pytest.raises(StudyDataError, match="tidy CSV or Parquet") as caught:
        wide_from_responses(study.responses, study.protocol)
    assert caught.value.problems[0].value == "wai_sr_t"
    with pytest.raises(StudyDataError, match="REDCap project"):
        redcap_from_study(study)


def test_a_simulated_trial_gives_each_facilitator_a_rating():
    study = simulate_trial(rated_protocol(), n=30, seed=5)
    study.validate()
    rated = study.scores().query("instrument == 'wai_sr_t' and timepoint == 'prep'")
    facilitators = study.participants.set_index("participant_id")["facilitator_ids"].str.split(";")
    for pid, group in rated.groupby("participant_id"):
        assert sorted(group["rater"]) == sorted(facilitators[pid])
    # the scenario's agreement between perspectives (r = .36 before facilitator noise) shows
    wide = study.measures(wide=True)
    assert 0.0 < wide["wai_sr.total@prep"].corr(wide["wai_sr_t.total@prep"]) < 0.8
