"""The protocol's ``expected_response:`` section: reference, level, minimum, measures; read and checked at load."""

from __future__ import annotations

import copy

import pytest

from alliance.protocol import ExpectedResponseConfig, ProtocolError, default_protocol, parse_protocol


def _with(section) -> dict:
    raw = copy.deepcopy(default_protocol().to_dict())
    if section is None:
        raw.pop("expected_response", None)
    else:
        raw["expected_response"] = section
    return raw


def _problems(section) -> list[tuple[str, object, str]]:
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(_with(section))
    return [(p.column, p.value, p.reason) for p in caught.value.problems]


def test_the_default_watches_the_plans_alliance_total_and_outcome_against_the_synthetic_trial():
    config = default_protocol().expected_response
    assert config == ExpectedResponseConfig(reference="synthetic", level=0.95, min_reference_participants=20,
                                            measures=("wai_sr.total", "grid_hamd17.total"), calibration="empirical")
    assert config.reference_kind == "synthetic"
    assert default_protocol().sections["expected_response"]["reference"] == "synthetic"


def test_a_protocol_without_the_section_gets_the_default():
    protocol = parse_protocol(_with(None))
    assert protocol.expected_response == default_protocol().expected_response
    assert "expected_response" not in protocol.sections


def test_a_section_is_read_into_its_type():
    config = parse_protocol(_with({"reference": "refs/site.csv", "level": 0.9, "min_reference_participants": 30,
                                   "measures": ["grid_hamd17.total"]})).expected_response
    assert (config.reference, config.reference_kind, config.level, config.min_reference_participants,
            config.measures) == ("refs/site.csv", "file", 0.9, 30, ("grid_hamd17.total",))
    assert parse_protocol(_with({"reference": "study"})).expected_response.reference_kind == "study"
    normal = parse_protocol(_with({"calibration": "normal"})).expected_response
    assert (normal.calibration, normal.to_dict()["calibration"]) == ("normal", "normal")


def test_errors_name_the_key_the_value_and_what_is_allowed():
    assert _problems({"level": 1.5}) == [("expected_response.level", 1.5, "is not strictly between 0 and 1")]
    assert _problems({"level": "high"}) == [("expected_response.level", "high", "is not a number")]
    assert _problems({"min_reference_participants": 2}) == [
        ("expected_response.min_reference_participants", 2, "is below 3")]
    assert _problems({"colour": "red"}) == [("expected_response.colour", None, "is not a key of this section")]
    assert _problems({"reference": ""}) == [("expected_response.reference", "", "is not a reference")]
    assert _problems({"measures": ["wai_sr.sum"]}) == [
        ("expected_response.measures[0]", "wai_sr.sum", "wai_sr has no scale 'sum'")]
    assert _problems({"measures": ["phq9.total"]})[0][:2] == ("expected_response.measures[0]", "phq9.total")
    assert _problems({"calibration": "robust"}) == [
        ("expected_response.calibration", "robust", "is not one of the choices")]
    assert _problems({"measures": []}) == [("expected_response.measures", None, "expected a non-empty list")]
