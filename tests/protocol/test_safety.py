"""The protocol's ``safety:`` section: vital-sign thresholds (≥, urgent wins) and washout rules."""

from __future__ import annotations

import copy

import pytest

from alliance.protocol import (
    ProtocolError,
    SafetySpec,
    VitalSignThresholds,
    WashoutRule,
    default_protocol,
    parse_protocol,
)
from alliance.protocol.safety import DEFAULT_VITAL_SIGNS, medication_key

SECTION = {
    "vital_signs": {"warning": {"systolic_bp": 150, "diastolic_bp": 95, "heart_rate": 110},
                    "urgent": {"systolic_bp": 170, "heart_rate": 140},
                    "source": "site SOP 12, version 3"},
    "washout": [{"medications": ["Sertraline", "fluoxetine"], "days": 14, "source": "site SOP 7"},
                {"medications": ["lithium"], "days": 28, "source": "site SOP 7"}],
}


def _with(section) -> dict:
    raw = copy.deepcopy(default_protocol().to_dict())
    raw["safety"] = section
    return raw


def _problems(section) -> list[tuple]:
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(_with(section))
    return [(p.column, p.value, p.reason) for p in caught.value.problems]


def test_without_the_section_the_default_thresholds_and_no_washout():
    spec = default_protocol().safety
    assert spec == SafetySpec()
    assert spec.vital_signs.warning == {"systolic_bp": 160, "diastolic_bp": 100, "heart_rate": 120}
    assert spec.vital_signs.urgent == {"systolic_bp": 180, "diastolic_bp": 120}
    assert "Whelton" in spec.vital_signs.source and "not validated" in spec.vital_signs.source
    assert spec.washout == ()
    assert "safety" not in default_protocol().to_dict()  # nothing written back that the file did not hold


@pytest.mark.parametrize(("measure", "threshold", "severity", "below"), [
    ("systolic_bp", 180, "urgent", "warning"), ("diastolic_bp", 120, "urgent", "warning"),
    ("systolic_bp", 160, "warning", None), ("diastolic_bp", 100, "warning", None), ("heart_rate", 120, "warning", None),
])
def test_a_reading_at_a_default_threshold_reaches_it_and_one_below_does_not(measure, threshold, severity, below):
    # ≥: the threshold itself raises the finding (180 systolic is urgent although ACC/AHA's crisis is > 180)
    assert DEFAULT_VITAL_SIGNS.crossed(measure, threshold) == (severity, threshold)
    assert DEFAULT_VITAL_SIGNS.severity(measure, threshold - 1) == below
    assert DEFAULT_VITAL_SIGNS.severity(measure, threshold - 0.1) == below


def test_urgent_wins_and_no_heart_rate_is_urgent_by_default():
    assert DEFAULT_VITAL_SIGNS.crossed("systolic_bp", 250) == ("urgent", 180)
    assert DEFAULT_VITAL_SIGNS.crossed("heart_rate", 250) == ("warning", 120)


def test_the_section_is_read_into_its_types_and_kept_as_written():
    protocol = parse_protocol(_with(copy.deepcopy(SECTION)))
    spec = protocol.safety
    assert spec.vital_signs == VitalSignThresholds(warning={"systolic_bp": 150, "diastolic_bp": 95, "heart_rate": 110},
                                                   urgent={"systolic_bp": 170, "heart_rate": 140},
                                                   source="site SOP 12, version 3")
    assert spec.washout == (WashoutRule(("Sertraline", "fluoxetine"), 14, "site SOP 7"),
                            WashoutRule(("lithium",), 28, "site SOP 7"))
    assert protocol.to_dict()["safety"] == SECTION
    assert parse_protocol(protocol.to_dict()) == protocol
    # a measure the section leaves out is not watched: diastolic has no urgent threshold here
    assert spec.vital_signs.severity("diastolic_bp", 199) == "warning"


def test_washout_only_keeps_the_default_thresholds():
    spec = parse_protocol(_with({"washout": SECTION["washout"]})).safety
    assert spec.vital_signs == DEFAULT_VITAL_SIGNS and len(spec.washout) == 2


def test_names_match_whole_and_case_insensitively():
    rule = WashoutRule(("Sertraline",), 14, "")
    assert rule.matches("SERTRALINE") and rule.matches(" sertraline ")
    assert not rule.matches("sertraline hydrochloride") and not rule.matches("sert")
    assert medication_key("St John's  wort") == "st john's wort"


@pytest.mark.parametrize(("change", "expected"), [
    ({"vital_signs": {"warning": {"systolic": 160}, "source": "x"}},
     ("safety.vital_signs.warning.systolic", "systolic", "is not a vital sign")),
    ({"vital_signs": {"warning": {"systolic_bp": "160"}, "source": "x"}},
     ("safety.vital_signs.warning.systolic_bp", "160", "is not a threshold")),
    ({"vital_signs": {"warning": {"heart_rate": 0}, "source": "x"}},
     ("safety.vital_signs.warning.heart_rate", 0, "is not a threshold")),
    ({"vital_signs": {"warning": {"systolic_bp": 160}, "urgent": {"systolic_bp": 160}, "source": "x"}},
     ("safety.vital_signs.urgent.systolic_bp", 160, "is not above the warning threshold (160)")),
    ({"vital_signs": {"warning": {"systolic_bp": 160}}}, ("safety.vital_signs.source", None, "is required")),
    ({"vital_signs": {"source": "x"}}, ("safety.vital_signs", None, "lists no threshold")),
    ({"vital_sign": {}}, ("safety.vital_sign", None, "is not a key of this section")),
    ({"washout": [{"medications": ["lithium"], "days": 0, "source": "x"}]},
     ("safety.washout[0].days", 0, "is not a number of days")),
    ({"washout": [{"medications": ["lithium"], "days": 14.5, "source": "x"}]},
     ("safety.washout[0].days", 14.5, "is not a number of days")),
    ({"washout": [{"medications": "lithium", "days": 14, "source": "x"}]},
     ("safety.washout[0].medications", "lithium", "is not a list of medication names")),
    ({"washout": [{"medications": ["lithium"], "days": 14}]}, ("safety.washout[0].source", None, "is required")),
    ({"washout": [{"medications": ["Lithium"], "days": 14, "source": "x"},
                  {"medications": ["lithium"], "days": 28, "source": "x"}]},
     ("safety.washout[1].medications[0]", "lithium", "appears twice (also at safety.washout[0].medications[0])")),
    ({"washout": {"medications": ["lithium"]}}, ("safety.washout", {"medications": ["lithium"]}, "expected a list")),
])
def test_each_problem_names_its_key_value_and_reason(change, expected):
    assert expected in _problems(change)
