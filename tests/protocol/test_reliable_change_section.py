"""The protocol's ``reliable_change:`` section: reference SD and reliability per scale, read and checked at load."""

from __future__ import annotations

import copy

import pytest
import yaml

from alliance.protocol import ProtocolError, default_protocol, parse_protocol
from alliance.protocol.change import STUDY, ChangeNorm, ClinicalNorms, ReliableChangeConfig


def _with_section(section) -> dict:
    raw = copy.deepcopy(default_protocol().to_dict())
    raw["reliable_change"] = section
    return raw


def _entry(**keys) -> dict:
    return {"lower_is_better": True, "sd": 5.0, "reliability": 0.8, "source": "a manual, p. 12", **keys}


def _problems(raw) -> list:
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(raw)
    return caught.value.problems


def _only(raw):
    (problem,) = _problems(raw)
    return problem


def test_the_default_protocol_names_sd_and_reliability_with_sources():
    config = default_protocol().reliable_change
    assert isinstance(config, ReliableChangeConfig)
    assert config.alpha == 0.05 and config.min_n == 10
    hamd = config.norm("grid_hamd17.total")
    # Davis et al. 2021: baseline GRID-HAMD 22.8 (SD 3.9)
    assert (hamd.lower_is_better, hamd.sd, hamd.reliability) == (True, 3.9, STUDY)
    assert "Davis" in hamd.source
    assert hamd.norms == ClinicalNorms(22.8, 3.9, None, None, hamd.norms.source)
    alliance = config.norm("wai_sr.total")
    assert (alliance.lower_is_better, alliance.sd, alliance.reliability) == (False, STUDY, STUDY)
    assert alliance.source
    with pytest.raises(KeyError, match="no entry for 'meq30.total'; it has grid_hamd17.total, wai_sr.total"):
        config.norm("meq30.total")


def test_a_section_is_read_into_its_types():
    section = {"alpha": 0.1, "min_n": 12, "measures": {
        "grid_hamd17.total": _entry(norms={"dysfunctional": {"mean": 22.8, "sd": 3.9},
                                           "functional": {"mean": 5, "sd": 3}, "source": "norms paper"}),
        "wai_sr.total": _entry(lower_is_better=False, sd="study", reliability="study"),
    }}
    config = parse_protocol(_with_section(section)).reliable_change
    assert (config.alpha, config.min_n) == (0.1, 12)
    assert config.measures["grid_hamd17.total"] == ChangeNorm(
        "grid_hamd17.total", True, 5.0, 0.8, "a manual, p. 12", ClinicalNorms(22.8, 3.9, 5.0, 3.0, "norms paper"))
    assert config.measures["wai_sr.total"].sd == STUDY
    assert (config.measures["wai_sr.total"].instrument, config.measures["wai_sr.total"].scale) == ("wai_sr", "total")


def test_without_the_section_the_default_entries_of_administered_instruments():
    raw = copy.deepcopy(default_protocol().to_dict())
    raw.pop("reliable_change", None)
    assert list(parse_protocol(raw).reliable_change.measures) == ["grid_hamd17.total", "wai_sr.total"]
    # a protocol that never gives the WAI-SR gets no alliance entry
    for timepoint in raw["timepoints"]:
        timepoint["instruments"] = [i for i in timepoint["instruments"] if i != "wai_sr"]
    raw["timepoints"] = [t for t in raw["timepoints"] if t["instruments"]]
    for section in ("alerts", "power", "analysis", "expected_response", "invitations"):
        raw.pop(section, None)
    assert list(parse_protocol(raw).reliable_change.measures) == ["grid_hamd17.total"]


def test_own_section_has_exactly_its_measures_and_default_alpha():
    config = parse_protocol(_with_section({"measures": {"grid_hamd17.total": _entry()}})).reliable_change
    assert list(config.measures) == ["grid_hamd17.total"]
    assert (config.alpha, config.min_n) == (0.05, 10)


def test_the_section_is_kept_as_written():
    raw = _with_section({"measures": {"grid_hamd17.total": _entry()}})
    protocol = parse_protocol(raw)
    assert protocol.to_dict()["reliable_change"] == raw["reliable_change"]
    assert parse_protocol(yaml.safe_load(protocol.to_yaml())).sha256 == protocol.sha256


@pytest.mark.parametrize(("keys", "path", "value", "allowed"), [
    ({"sd": 0}, "sd", 0, "a number greater than 0 (points), or study (the study's baseline SD)"),
    ({"sd": "baseline"}, "sd", "baseline", "a number greater than 0 (points), or study (the study's baseline SD)"),
    ({"reliability": 1.0}, "reliability", 1.0, "a number in [0, 1) (0 ≤ reliability < 1), or study (Cronbach's "
                                               "alpha of the study's baseline items)"),
    ({"reliability": -0.2}, "reliability", -0.2, "a number in [0, 1) (0 ≤ reliability < 1), or study (Cronbach's "
                                                 "alpha of the study's baseline items)"),
    ({"lower_is_better": "yes"}, "lower_is_better", "yes", "true or false"),
    ({"source": 12}, "source", 12, "where the SD and reliability come from"),
])
def test_a_bad_value_is_named_with_its_path(keys, path, value, allowed):
    problem = _only(_with_section({"measures": {"grid_hamd17.total": _entry(**keys)}}))
    assert (problem.column, problem.value, problem.allowed) == (
        f"reliable_change.measures.grid_hamd17.total.{path}", value, allowed)


@pytest.mark.parametrize("missing", ["source", "sd", "reliability", "lower_is_better"])
def test_required_keys(missing):
    entry = _entry()
    entry.pop(missing)
    problem = _only(_with_section({"measures": {"grid_hamd17.total": entry}}))
    assert (problem.column, problem.reason) == (f"reliable_change.measures.grid_hamd17.total.{missing}",
                                                "is required")


def test_measure_names_are_checked_against_the_bank():
    problems = _problems(_with_section({"measures": {"nope.total": _entry(), "wai_sr.nothing": _entry(),
                                                     "wai_sr.total@prep": _entry()}}))
    assert [p.column for p in problems] == ["reliable_change.measures.nope.total",
                                            "reliable_change.measures.wai_sr.nothing",
                                            "reliable_change.measures.wai_sr.total@prep"]
    assert "not an instrument in the bank" in problems[0].reason
    # a norm for a scale this protocol does not give is kept (and unused)
    config = parse_protocol(_with_section({"measures": {"phq9.total": _entry()}})).reliable_change
    assert list(config.measures) == ["phq9.total"]


def test_top_level_problems():
    problems = _problems(_with_section({"alpha": 1.5, "min_n": 2, "extra": 1, "measures": []}))
    assert {p.column for p in problems} == {"reliable_change.alpha", "reliable_change.min_n",
                                            "reliable_change.extra", "reliable_change.measures"}
    alpha = next(p for p in problems if p.column == "reliable_change.alpha")
    assert (alpha.value, alpha.allowed) == (1.5, "e.g. 0.05")


def test_norms_are_checked():
    problems = _problems(_with_section({"measures": {"grid_hamd17.total": _entry(
        norms={"dysfunctional": {"mean": 22.8, "sd": -1}, "functional": {"mean": 5}})}}))
    assert {p.column for p in problems} == {
        "reliable_change.measures.grid_hamd17.total.norms.source",
        "reliable_change.measures.grid_hamd17.total.norms.dysfunctional.sd",
        "reliable_change.measures.grid_hamd17.total.norms.functional.sd"}
