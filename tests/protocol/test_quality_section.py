"""The protocol's ``quality:`` section: custom data-quality rules, read and checked at load."""

from __future__ import annotations

import copy

import pytest
import yaml

from alliance.protocol import ProtocolError, default_protocol, parse_protocol
from alliance.protocol.quality import BUILT_IN_RULES, COMPARISONS, QualityRule


def _with_rules(*rules, section=None) -> dict:
    raw = copy.deepcopy(default_protocol().to_dict())
    raw["quality"] = section if section is not None else {"rules": list(rules)}
    return raw


def _rule(**keys) -> dict:
    return {"id": "rule_a", "measure": "grid_hamd17.total@baseline", "comparison": "<", "value": 17,
            "severity": "error", "message": "below the entry criterion", **keys}


def _problems(raw) -> list:
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(raw)
    return caught.value.problems


def _only(raw):
    (problem,) = _problems(raw)
    return problem


def test_a_rule_is_read_into_its_type():
    protocol = parse_protocol(_with_rules(_rule(), _rule(id="rule_b", measure=None, column="age",
                                                         comparison="between", value=[18, 21], severity="info",
                                                         message="young")))
    first, second = protocol.quality.rules
    assert (str(first.measure), first.comparison, first.value, first.severity) == (
        "grid_hamd17.total@baseline", "<", 17.0, "error")
    assert (second.column, second.measure, second.value, second.describe()) == ("age", None, (18.0, 21.0),
                                                                                 "age between 18 and 21")


def test_defaults_severity_warning_and_no_section_no_rules():
    raw = _with_rules(_rule())
    del raw["quality"]["rules"][0]["severity"]
    assert parse_protocol(raw).quality.rules[0].severity == "warning"
    raw.pop("quality")
    # a protocol without the section has no custom rules, not the default file's
    assert parse_protocol(raw).quality.rules == ()
    assert "quality" not in parse_protocol(raw).sections


def test_severity_none_is_refused():
    problem = _only(_with_rules(_rule(severity=None)))
    assert (problem.column, problem.value, problem.allowed) == ("quality.rules[0].severity", None,
                                                                "error, warning, info")


def test_the_section_is_kept_as_written_so_the_hash_follows_the_file():
    raw = _with_rules(_rule())
    protocol = parse_protocol(raw)
    assert protocol.to_dict()["quality"] == raw["quality"]
    again = parse_protocol(yaml.safe_load(protocol.to_yaml()))
    assert again.sha256 == protocol.sha256
    raw.pop("quality")
    # a stored protocol without the section keeps the hash it was stored with
    assert parse_protocol(raw).sha256 != protocol.sha256
    assert parse_protocol(copy.deepcopy(raw)).sha256 == parse_protocol(raw).sha256


@pytest.mark.parametrize("comparison", COMPARISONS)
def test_every_comparison_is_accepted(comparison):
    value = {"between": [1, 2], "missing": None}.get(comparison, 3)
    keys = {"comparison": comparison, "value": value}
    if value is None:
        keys.pop("value")
        rule = _rule(**keys)
        rule.pop("value")
    else:
        rule = _rule(**keys)
    (read,) = parse_protocol(_with_rules(rule)).quality.rules
    assert read.comparison == comparison


@pytest.mark.parametrize(("comparison", "value", "holds"), [
    ("<", 16, True), ("<", 17, False), ("<=", 17, True), ("<=", 18, False), (">", 18, True), (">", 17, False),
    (">=", 17, True), (">=", 16, False), ("==", 17, True), ("==", 17.5, False), ("!=", 16, True), ("!=", 17, False),
    ("missing", None, True), ("missing", 0, False),
])
def test_holds_at_the_edge(comparison, value, holds):
    rule = QualityRule(id="r", comparison=comparison, severity="error", message="m",
                       value=None if comparison == "missing" else 17.0)
    assert rule.holds(value) is holds


def test_between_includes_both_ends_and_text_equality():
    rule = QualityRule(id="r", comparison="between", severity="info", message="m", value=(18.0, 21.0))
    assert [rule.holds(v) for v in (17.9, 18, 21, 21.1, None)] == [False, True, True, False, False]
    text = QualityRule(id="r", comparison="==", severity="info", message="m", column="sex", value="unknown")
    assert (text.holds("unknown"), text.holds(" unknown "), text.holds("F")) == (True, True, False)


# -- errors: each names the YAML path, the value and what is allowed ----------------------------------

def test_an_unknown_key():
    problem = _only(_with_rules(_rule(limit=3)))
    assert (problem.column, problem.reason) == ("quality.rules[0].limit", "is not a key of this section")
    assert "comparison" in problem.allowed and "measure" in problem.allowed


def test_an_unknown_comparison_says_to_quote_it():
    problem = _only(_with_rules(_rule(comparison="above")))
    assert (problem.column, problem.value, problem.reason) == ("quality.rules[0].comparison", "above",
                                                                "is not a comparison")
    assert problem.allowed.startswith("<, <=, >, >=, ==, !=, between, missing") and "quotes" in problem.allowed


def test_a_measure_the_protocol_does_not_give_there():
    problem = _only(_with_rules(_rule(measure="wai_sr.total@baseline")))
    assert (problem.column, problem.value) == ("quality.rules[0].measure", "wai_sr.total@baseline")
    assert "does not administer wai_sr at baseline" in problem.reason


def test_a_measure_that_is_not_a_measure_name():
    problem = _only(_with_rules(_rule(measure="grid_hamd17")))
    assert (problem.column, problem.value, problem.reason) == ("quality.rules[0].measure", "grid_hamd17",
                                                                "is not a measure name")
    assert "INSTRUMENT.SCALE" in problem.allowed


def test_a_scale_the_instrument_does_not_have():
    problem = _only(_with_rules(_rule(measure="grid_hamd17.sum@baseline")))
    assert problem.column == "quality.rules[0].measure" and "no scale 'sum'" in problem.reason
    assert problem.allowed == "total"


def test_both_or_neither_of_measure_and_column():
    both = _only(_with_rules(_rule(column="age")))
    assert (both.column, both.reason) == ("quality.rules[0]", "names both a measure and a column")
    rule = _rule()
    rule.pop("measure")
    neither = _only(_with_rules(rule))
    assert (neither.column, neither.reason) == ("quality.rules[0]", "names no value to check")
    assert "measure:" in neither.allowed and "column:" in neither.allowed


def test_an_identifier_column_is_refused():
    problem = _only(_with_rules(_rule(measure=None, column="email")))
    assert (problem.column, problem.value) == ("quality.rules[0].column", "email")
    assert "identifies a person" in problem.reason and "not in identifiers" in problem.allowed


def test_values_as_the_comparison_needs_them():
    missing_number = _only(_with_rules(_rule(value=None)))
    assert (missing_number.column, missing_number.reason, missing_number.allowed) == (
        "quality.rules[0].value", "is required for <", "a number")
    text = _only(_with_rules(_rule(value="seventeen")))
    assert (text.column, text.value, text.reason, text.allowed) == ("quality.rules[0].value", "seventeen",
                                                                    "is not a number", "a number")
    reversed_pair = _only(_with_rules(_rule(comparison="between", value=[21, 18])))
    assert (reversed_pair.value, reversed_pair.reason) == ([21, 18], "has low above high")
    not_pair = _only(_with_rules(_rule(comparison="between", value=18)))
    assert (not_pair.value, not_pair.reason, not_pair.allowed) == (
        18, "is not a pair of numbers", "[low, high], two numbers with low ≤ high")
    extra = _only(_with_rules(_rule(comparison="missing", value=3)))
    assert (extra.column, extra.value, extra.allowed) == ("quality.rules[0].value", 3, "no value")


def test_text_values_only_for_equality_on_a_column():
    rule = _rule(measure=None, column="sex", comparison="==", value="unknown")
    assert parse_protocol(_with_rules(rule)).quality.rules[0].value == "unknown"
    problem = _only(_with_rules(_rule(comparison="==", value="unknown")))   # on a measure: a number
    assert (problem.column, problem.value, problem.reason) == ("quality.rules[0].value", "unknown",
                                                                "is not a number")


def test_ids_unique_valid_and_not_built_in():
    twice = _only(_with_rules(_rule(), _rule()))
    assert (twice.column, twice.value, twice.reason) == ("quality.rules[1].id", "rule_a", "appears twice")
    built_in = _only(_with_rules(_rule(id="out_of_window")))
    assert (built_in.column, built_in.value, built_in.reason) == ("quality.rules[0].id", "out_of_window",
                                                                  "is the id of a built-in rule")
    assert "missing_arm" in built_in.allowed
    bad = _only(_with_rules(_rule(id="Rule A")))
    assert (bad.column, bad.value, bad.reason) == ("quality.rules[0].id", "Rule A", "is not a valid id")


def test_a_message_is_required_and_plain_text():
    rule = _rule()
    rule.pop("message")
    problem = _only(_with_rules(rule))
    assert (problem.column, problem.reason) == ("quality.rules[0].message", "is required")
    empty = _only(_with_rules(_rule(message=3)))
    assert (empty.column, empty.value, empty.reason) == ("quality.rules[0].message", 3, "is not a message")


def test_the_section_shape():
    problem = _only(_with_rules(section=[_rule()]))
    assert (problem.column, problem.reason) == ("quality", "expected a mapping, found list")
    problem = _only(_with_rules(section={"rules": _rule()}))
    assert (problem.column, problem.reason, problem.allowed) == ("quality.rules", "expected a list", "a list of rules")


def test_every_problem_is_listed_at_once():
    problems = _problems(_with_rules(_rule(comparison="above"), _rule(id="rule_b", severity="urgent")))
    assert [p.column for p in problems] == ["quality.rules[0].comparison", "quality.rules[1].severity"]
    assert problems[1].value == "urgent" and problems[1].allowed == "error, warning, info"


def test_the_built_in_ids_are_the_ones_monitoring_describes():
    from alliance.monitoring.quality import RULES

    assert tuple(RULES) == BUILT_IN_RULES
