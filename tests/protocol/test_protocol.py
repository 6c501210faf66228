"""The protocol: the built-in Levin 2024 protocol, the YAML loader and its errors, the CLI."""

from __future__ import annotations

import copy

import pytest
import yaml
from typer.testing import CliRunner

from alliance.cli import app
from alliance.protocol import (
    ProtocolError,
    default_protocol,
    load_protocol,
    parse_protocol,
    write_protocol,
)
from alliance.study import StudyDataError


def test_default_protocol_reproduces_levin_2024():
    p = default_protocol()
    assert p.id == "levin2024"
    assert p.timepoint_ids == ("baseline", "prep", "session1", "post_session1", "session2", "week1", "week4",
                               "month3", "month6", "month12")
    assert p.arm_ids == ("immediate", "delayed")
    # the delayed arm starts after an 8-week wait
    assert p.arm("immediate").start_offset_days == 0
    assert p.arm("delayed").start_offset_days == 8 * 7
    # study.md: WAI-SR at prep, after session 1, one week after session 2
    assert [t for t in p.timepoint_ids if "wai_sr" in p.instruments_at(t)] == ["prep", "post_session1", "week1"]
    for instrument in ("meq30", "insight", "ebi"):
        assert [t for t in p.timepoint_ids if instrument in p.instruments_at(t)] == ["session1", "session2"]
    assert [t for t in p.timepoint_ids if "grid_hamd17" in p.instruments_at(t)] == [
        "baseline", "week1", "week4", "month3", "month6", "month12"]
    # doses: 20 then 30 mg/70 kg psilocybin
    s1, s2 = p.timepoint("session1"), p.timepoint("session2")
    assert (s1.dose.compound, s1.dose.amount, s1.dose.unit, s1.dose.session) == ("psilocybin", 20, "mg/70kg", 1)
    assert (s2.dose.compound, s2.dose.amount, s2.dose.unit, s2.dose.session) == ("psilocybin", 30, "mg/70kg", 2)
    assert [t.id for t in p.dosing_timepoints] == ["session1", "session2"]
    # sessions about 1.5-2 weeks apart: 12 days ± 2 covers 10-14 days
    assert s2.anchor == "session1"
    assert s2.offset_days - s2.window_days[0] >= 10 and s2.offset_days + s2.window_days[1] <= 14
    # follow-ups anchored to session 2: 1 and 4 weeks, 3, 6, 12 months
    follow = {t.id: (t.anchor, t.offset_days) for t in p.timepoints if t.kind == "follow_up"}
    assert follow == {"week1": ("session2", 7), "week4": ("session2", 28), "month3": ("session2", 91),
                      "month6": ("session2", 182), "month12": ("session2", 365)}
    (peak,) = p.derived
    assert (peak.id, peak.from_timepoints, peak.rule) == ("peak", ("session1", "session2"), "max")
    assert p.instruments_at("peak") == ("meq30", "insight", "ebi", "ceq")
    # added for safety (issue 16; not in Levin et al.'s analysis): CEQ at each session, C-SSRS
    assert [t for t in p.timepoint_ids if "ceq" in p.instruments_at(t)] == ["session1", "session2"]
    assert [t for t in p.timepoint_ids if "cssrs_screen" in p.instruments_at(t)] == ["baseline"]
    assert [t for t in p.timepoint_ids if "cssrs_slv" in p.instruments_at(t)] == [
        "week1", "week4", "month3", "month6", "month12"]
    assert set(p.identifiers) >= {"name", "email", "date_of_birth", "mrn"}
    # One file holds the design and its four sections, each read into its type.
    assert set(p.sections) >= {"alerts", "deviations", "quality", "analysis", "power"}
    # the study's own data-quality rule: the entry criterion of Davis et al. (2021), GRID-HAMD >= 17
    assert [(r.id, r.describe(), r.severity) for r in p.quality.rules] == [
        ("baseline_below_entry", "grid_hamd17.total@baseline < 17", "error")]
    # the time model: the final preparation session (the alliance predictor) is before the first dose
    assert p.phases == {"baseline": "pre_dose", "prep": "pre_dose", "session1": "dosing", "post_session1": "post_dose",
                        "session2": "dosing", "week1": "post_dose", "week4": "post_dose", "month3": "post_dose",
                        "month6": "post_dose", "month12": "post_dose"}
    assert p.deviations.action("after_dosing") == "exclude" and p.deviations.action("out_of_window") == "include"
    # emailed: the visits with self-reports, except the dosing days (completed on site)
    assert [t for t in p.timepoint_ids if p.invitations.for_timepoint(t)] == ["prep", "post_session1", "week1"]
    assert p.invitations.for_timepoint("prep").reminders_days == (1, 2)
    assert [spec.id for spec in p.analysis.analyses][:2] == ["alliance_change", "alliance_acute"]
    assert [rule.id for rule in p.alerts.rules] == [
        "low_alliance", "alliance_drop", "suicidality", "overdue_assessment", "missed_assessment",
        "low_alliance_cutoff", "serious_adverse_event", "vital_sign", "washout"]
    assert [t.test for t in p.power.tests] == ["correlation"] * 4 + ["paired", "mixed_model", "mediation"]


def test_dict_round_trip_and_hash():
    p = default_protocol()
    again = parse_protocol(yaml.safe_load(p.to_yaml()))
    assert again == p
    assert again.sha256 == p.sha256 and len(p.sha256) == 64
    changed = p.to_dict()
    changed["timepoints"][0]["offset_days"] = 1
    assert parse_protocol(changed).sha256 != p.sha256


def test_file_round_trip(tmp_path):
    write_protocol(default_protocol(), tmp_path / "protocol.yaml")
    assert load_protocol(tmp_path / "protocol.yaml") == default_protocol()


def test_sections_are_typed_and_kept_as_written():
    raw = default_protocol().to_dict()
    raw["analysis"] = {"seed": 7, "analyses": [{"id": "x", "type": "correlation", "x": "alliance.total",
                                                "y": "outcome"}]}
    raw["alerts"] = [{"id": "low", "type": "low_alliance", "measure": "wai_sr.total", "method": "threshold",
                      "value": 36}]
    p = parse_protocol(raw)
    assert p.sections["analysis"] == raw["analysis"] and p.sections["alerts"] == raw["alerts"]
    # the section's missing keys come from the default plan
    assert (p.analysis.seed, p.analysis.p_adjust, [a.id for a in p.analysis.analyses]) == (7, "holm", ["x"])
    assert [(r.id, r.method, r.value) for r in p.alerts.rules] == [("low", "threshold", 36.0)]
    assert p.to_dict()["analysis"] == raw["analysis"]
    assert parse_protocol(p.to_dict()) == p


@pytest.mark.parametrize(("section", "value", "key"), [
    ("analysis", {"analyses": [{"id": "x", "type": "correlation"}]}, "analysis.analyses[0] (x).y"),
    ("analysis", {"p_adjust": "fdr"}, "analysis.p_adjust"),
    ("power", {"tests": [{"type": "anova", "x": "a", "y": "b"}]}, "power.tests[0].type"),
    ("power", {"tests": [{"type": "correlation", "x": "wai_sr.totl@prep", "y": "grid_hamd17.total@week4"}]},
     "power.tests[0].x"),
    ("power", {"tests": [{"type": "mixed_model", "y": "wai_sr.total@prep"}]}, "power.tests[0].y"),
    ("power", {"alpha": 1.5}, "power.alpha"),
    ("alerts", {"rules": [{"id": "x", "type": "flag"}]}, "alerts.rules[0] (x).flag"),
])
def test_an_error_in_any_section_is_refused_at_load_with_its_yaml_path(section, value, key):
    raw = default_protocol().to_dict()
    raw[section] = value
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(raw, origin="trial.yaml")
    assert key in [p.column for p in caught.value.problems], caught.value
    assert all(p.file == "trial.yaml" and p.where == "key" for p in caught.value.problems)


def test_problems_of_several_sections_are_listed_together():
    raw = default_protocol().to_dict()
    raw["analysis"] = {"seed": -1}
    raw["power"] = {"alpha": 0}
    raw["alerts"] = {"missed_after_days": -1}
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(raw, origin="trial.yaml")
    assert {p.column for p in caught.value.problems} == {"analysis.seed", "power.alpha", "alerts.missed_after_days"}


def _bad(mutate) -> ProtocolError:
    raw = copy.deepcopy(default_protocol().to_dict())
    mutate(raw)
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(raw, origin="trial.yaml")
    return caught.value


@pytest.mark.parametrize(("mutate", "key", "value", "allowed"), [
    (lambda r: r["timepoints"][2]["dose"].update(unit="mg/m2"), "timepoints[2] (session1).dose.unit", "mg/m2",
     "mg, mg/kg, mg/70kg"),
    (lambda r: r["timepoints"][1].update(kind="prep"), "timepoints[1] (prep).kind", "prep",
     "baseline, preparation, dosing, integration, follow_up"),
    (lambda r: r["timepoints"][5]["instruments"].append("wai"), "timepoints[5] (week1).instruments[3]", "wai",
     "wai_sr"),
    (lambda r: r["timepoints"][6].update(anchor="session3"), "timepoints[6] (week4).anchor", "session3",
     "enrolment, treatment_start, first_dosing, last_dosing or a timepoint id"),
    (lambda r: r["derived"][0].update(rule="top"), "derived[0].rule", "top", "max, min, mean"),
    (lambda r: r["derived"][0]["from_timepoints"].append("session3"), "derived[0].from_timepoints[2]", "session3",
     "baseline, prep, session1"),
    (lambda r: r["timepoints"][0].update(dose={"compound": "psilocybin", "amount": 1, "unit": "mg"}),
     "timepoints[0] (baseline).dose", None, "a dose only at timepoints of kind dosing"),
    (lambda r: r["arms"][1].update(start_offset_days=-3), "arms[1].start_offset_days", -3, "≥ 0"),
    (lambda r: r["timepoints"][3].update(id="session1"), "timepoints[3].id", "session1", "unique ids"),
    (lambda r: r.update(colour="blue"), "colour", None, "arms"),
    (lambda r: r.update(alerts="none"), "alerts", None, "a mapping or a list"),
    (lambda r: r.update(identifiers=["arm"]), "identifiers[0]", "arm", "participant columns other than"),
    (lambda r: r["timepoints"][4].update(window_days=[2]), "timepoints[4] (session2).window_days", [2],
     "[days before, days after]"),
])
def test_errors_name_file_key_value_and_allowed(mutate, key, value, allowed):
    error = _bad(mutate)
    problem = next(p for p in error.problems if p.column == key)
    assert problem.file == "trial.yaml"
    assert problem.value == value
    assert allowed in problem.allowed
    assert f"trial.yaml, key {key!r}" in str(error)
    assert isinstance(error, StudyDataError)


def test_every_problem_is_reported_and_anchor_circles_are_found():
    def mutate(r):
        r["timepoints"][1].update(anchor="post_session1")       # prep → post_session1 → session1 → …
        r["timepoints"][2].update(anchor="prep")                # session1 → prep → session1: a circle
        r["timepoints"][9].update(kind="later")
    error = _bad(mutate)
    reasons = [(p.column, p.reason) for p in error.problems]
    assert any(c == "timepoints[2] (session1).anchor" and "circle" in r for c, r in reasons)
    assert any(c == "timepoints[9] (month12).kind" for c, _ in reasons)


def test_yaml_syntax_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\narms: [\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match="broken.yaml.*not valid YAML"):
        load_protocol(path)
    with pytest.raises(ProtocolError, match="absent.yaml"):
        load_protocol(tmp_path / "absent.yaml")


def test_cli_protocol_show_default_and_file(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["protocol", "show"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("immediate", "delayed", "post_session1", "month12", "mg/70kg", "psilocybin", "pre-dose", "post-dose", "after dosing excluded", "peak",
                 "meq30, insight, ebi", "wai_sr, grid_hamd17", "session2 +28 d",
                 "prep at window open, +1 d, +2 d", "week1 at window open, +2 d, +4 d"):
        assert text in result.output
    raw = default_protocol().to_dict()
    raw["timepoints"][2]["dose"]["unit"] = "mg/m2"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = runner.invoke(app, ["protocol", "show", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "dose.unit" in result.output and "mg/m2" in result.output


def test_a_protocol_derived_by_dropping_a_timepoint_still_loads_with_the_default_power_tests():
    # As the analysis plan's references, power tests are resolved against the protocol when
    # power is simulated (which names the measures it has), not refused at load.
    raw = default_protocol().to_dict()
    raw["timepoints"] = [t for t in raw["timepoints"] if t["id"] != "month12"]
    assert "grid_hamd17.total@month12" in str(parse_protocol(raw).power.tests)
    # A protocol without a power: section gets the default tests it can run.
    del raw["power"]
    assert "month12" not in str(parse_protocol(raw).power.tests)
    assert len(parse_protocol(raw).power.tests) == 6


@pytest.mark.parametrize(("text", "key"), [
    # YAML 1.1 reads 1e30 as text; 1.0e+30 is a float; 10**30 a whole number no date can be built from.
    ("offset_days: 1.0e+30", "timepoints[1] (prep).offset_days"),
    ("offset_days: 1000000000000000000000000000000", "timepoints[1] (prep).offset_days"),
    ("offset_days: -36501", "timepoints[1] (prep).offset_days"),
    ("window_days: [1000000000000000000000000000000, 0]", "timepoints[1] (prep).window_days"),
    ("window_days: [0, 3651]", "timepoints[1] (prep).window_days"),
])
def test_days_outside_their_bounds_are_protocol_errors(tmp_path, text, key):
    raw = default_protocol().to_dict()
    name, value = text.split(": ", 1)
    raw["timepoints"][1][name] = yaml.safe_load(value)
    path = tmp_path / "trial.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.column) == (str(path), key)
    assert "36,500" in problem.allowed or "3,650" in problem.allowed


def test_days_at_their_bounds_are_accepted():
    raw = default_protocol().to_dict()
    raw["timepoints"][0].update(offset_days=-36_500, window_days=[3_650, 0])
    raw["arms"][1]["start_offset_days"] = 36_500
    protocol = parse_protocol(raw)
    assert protocol.timepoints[0].offset_days == -36_500 and protocol.timepoints[0].window_days == (3_650, 0)
    assert protocol.arm("delayed").start_offset_days == 36_500


@pytest.mark.parametrize("amount", [float("inf"), float("nan"), 1e309, 10_000, 0, -1])
def test_a_dose_amount_is_finite_positive_and_bounded(amount):
    error = _bad(lambda r: r["timepoints"][2]["dose"].update(amount=amount))
    (problem,) = error.problems
    assert problem.column == "timepoints[2] (session1).dose.amount"
    assert problem.allowed == "a number > 0 and < 10,000"


def test_a_start_offset_beyond_its_bound_is_refused():
    error = _bad(lambda r: r["arms"][1].update(start_offset_days=10**30))
    assert [p.column for p in error.problems] == ["arms[1].start_offset_days"]
