"""The safety rule types of the ``alerts:`` section: in the default protocol, and what a protocol may not say."""

from __future__ import annotations

import copy

import pytest

from alliance.protocol import ProtocolError, default_protocol, parse_protocol
from alliance.protocol.alerts import RULE_SCHEMAS

PROTOCOL = default_protocol()


def with_rules(*rules) -> dict:
    raw = copy.deepcopy(PROTOCOL.to_dict())
    raw["alerts"]["rules"] = list(rules)
    return raw


def problems(raw) -> dict[str, object]:
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(raw, origin="trial.yaml")
    return {p.column: p for p in caught.value.problems}


def test_the_default_protocol_watches_the_safety_record():
    config = PROTOCOL.alerts
    assert [(r.id, r.type, r.severity) for r in config.rules[-3:]] == [
        ("serious_adverse_event", "serious_adverse_event", "urgent"),
        ("vital_sign", "vital_sign", "urgent"),     # the most it raises; each alert has its threshold's
        ("washout", "washout", "warning")]
    assert config.rule("serious_adverse_event").label == "Serious adverse event"
    assert {t: RULE_SCHEMAS[t].default_severity for t in ("serious_adverse_event", "vital_sign", "washout")} == {
        "serious_adverse_event": "urgent", "vital_sign": "urgent", "washout": "warning"}


def test_a_safety_rule_needs_only_its_id_and_type_and_takes_a_severity_except_vital_sign():
    config = parse_protocol(with_rules({"id": "sae", "type": "serious_adverse_event", "severity": "warning"},
                                       {"id": "bp", "type": "vital_sign"},
                                       {"id": "wash", "type": "washout"})).alerts
    assert [(r.id, r.severity, r.label) for r in config.rules] == [
        ("sae", "warning", "sae"), ("bp", "urgent", "bp"), ("wash", "warning", "wash")]


@pytest.mark.parametrize(("rule", "key", "allowed"), [
    ({"id": "sae", "type": "serious_adverse_event", "measure": "wai_sr.total"}, "alerts.rules[0] (sae).measure",
     "id, type, label, severity"),
    ({"id": "wash", "type": "washout", "days": 14}, "alerts.rules[0] (wash).days", "id, type, label, severity"),
    ({"id": "bp", "type": "vital_sign", "systolic_bp": 150}, "alerts.rules[0] (bp).systolic_bp", "id, type, label"),
    ({"id": "bp", "type": "vital_sign", "severity": "warning"}, "alerts.rules[0] (bp).severity",
     "the severity of the threshold the reading reached"),
    ({"id": "sae", "type": "serious_adverse_event", "severity": "critical"}, "alerts.rules[0] (sae).severity",
     "info, warning, urgent"),
    ({"type": "washout"}, "alerts.rules[0].id", ""),
])
def test_keys_a_safety_rule_does_not_have_are_refused_with_what_is_allowed(rule, key, allowed):
    found = problems(with_rules(rule))
    assert key in found, list(found)
    assert allowed in found[key].allowed and found[key].file == "trial.yaml"


def test_an_unknown_key_of_a_vital_sign_rule_does_not_offer_severity():
    found = problems(with_rules({"id": "bp", "type": "vital_sign", "threshold": 150}))
    assert found["alerts.rules[0] (bp).threshold"].allowed == "id, type, label"
    assert "is not set on a vital_sign rule" in str(
        problems(with_rules({"id": "bp", "type": "vital_sign", "severity": "urgent"}))["alerts.rules[0] (bp).severity"])


def test_a_protocol_without_a_safety_section_keeps_the_safety_rules_and_the_default_thresholds():
    raw = copy.deepcopy(PROTOCOL.to_dict())
    del raw["alerts"]
    raw.pop("safety", None)
    protocol = parse_protocol(raw)
    assert [r.id for r in protocol.alerts.rules][-3:] == ["serious_adverse_event", "vital_sign", "washout"]
    assert protocol.safety.vital_signs.urgent == {"systolic_bp": 180.0, "diastolic_bp": 120.0}
    assert protocol.safety.washout == ()
