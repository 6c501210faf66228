"""Alert rules on hand-made scores, answers and timelines, with every expected number worked by hand."""

from __future__ import annotations

import copy
from datetime import date

import pandas as pd
import pytest

from alliance.monitoring.alerts import (
    RULE_TYPES,
    alliance_drop_alerts,
    evaluate_alerts,
    flag_alerts,
    low_alliance_alerts,
    low_alliance_timepoints,
    missed_assessment_alerts,
)
from alliance.monitoring.schedule import timeline
from alliance.protocol import AlertRule, ProtocolError, default_protocol, parse_protocol
from alliance.protocol.alerts import RULE_TYPES as RULE_TYPE_NAMES

PROTOCOL = default_protocol()
CRISIS = "Call the study physician on 555-0100."


def wai(rows) -> pd.DataFrame:
    """Long WAI-SR total scores from (participant, timepoint, value) triples."""
    return pd.DataFrame([{"participant_id": p, "timepoint": t, "instrument": "wai_sr", "scale": "total",
                          "value": v} for p, t, v in rows])


def answers(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["participant_id", "timepoint", "instrument", "item", "value"])


PREP_SCORES = wai([(f"P{i}", "prep", v) for i, v in enumerate([30, 35, 40, 42, 45, 48, 50, 55], start=1)])
PERCENTILE = AlertRule("low_alliance", "low_alliance", "warning", measure="wai_sr.total", method="percentile",
                       value=25, min_n=5)


# -- which timepoints ----------------------------------------------------------------------------

def test_low_alliance_judges_the_last_preparation_before_each_dosing_session():
    # Levin: prep (preparation) comes before session1; between session1 and session2 there is only
    # post_session1, an integration timepoint.
    assert low_alliance_timepoints(PERCENTILE, PROTOCOL) == {"prep": "session1"}
    any_kind = AlertRule("x", "low_alliance", "warning", measure="wai_sr.total", method="threshold", value=30,
                         at="last_before_dosing")
    assert low_alliance_timepoints(any_kind, PROTOCOL) == {"prep": "session1", "post_session1": "session2"}


# -- low alliance --------------------------------------------------------------------------------

def test_below_the_samples_25th_percentile():
    # 8 scores 30 35 40 42 45 48 50 55; type-7 position (8 - 1) × .25 = 1.75 (0-based):
    # 35 + .75 × (40 - 35) = 38.75. Strictly below: 30 (P1) and 35 (P2).
    alerts = low_alliance_alerts(PERCENTILE, PROTOCOL, PREP_SCORES)
    assert [(a.participant_id, a.timepoint, a.value) for a in alerts] == [("P1", "prep", 30.0), ("P2", "prep", 35.0)]
    assert alerts[0].reason == ("WAI-SR total 30 at the final preparation session is below the sample's "
                                "25th percentile (38.75, n = 8)")
    assert alerts[0].measure == "wai_sr.total@prep" and alerts[0].severity == "warning"
    assert alerts[0].key == ("low_alliance", "P1", "prep")


def test_the_percentile_waits_for_min_n_scores():
    four = PREP_SCORES[PREP_SCORES["participant_id"].isin(["P1", "P2", "P3", "P4"])]
    assert low_alliance_alerts(PERCENTILE, PROTOCOL, four) == []


def test_below_a_threshold_is_strict():
    rule = AlertRule("low", "low_alliance", "urgent", measure="wai_sr.total", method="threshold", value=35)
    alerts = low_alliance_alerts(rule, PROTOCOL, PREP_SCORES)
    # 30 < 35 raises; 35 (P2) is not below 35.
    assert [a.participant_id for a in alerts] == ["P1"]
    assert alerts[0].reason == "WAI-SR total 30 at the final preparation session is below the threshold of 35"


def test_the_reason_says_when_the_dosing_session_is_due_and_done_sessions_stay_silent():
    # P1 enrolled 1 Jan 2024 (immediate arm): session1 planned 1 Jan + 21 d = 22 Jan 2024.
    # On 19 Jan prep is done (19 Jan); session1's window opens 15 Jan, so it is "due".
    p1 = timeline(PROTOCOL, "immediate", date(2024, 1, 1), date(2024, 1, 19),
                  done={"baseline": date(2024, 1, 2), "prep": date(2024, 1, 19)})
    # P2's first session already happened: an alert could no longer inform it.
    p2 = timeline(PROTOCOL, "immediate", date(2023, 12, 1), date(2024, 1, 19),
                  done={"prep": date(2023, 12, 21), "session1": date(2023, 12, 22)})
    alerts = low_alliance_alerts(PERCENTILE, PROTOCOL, PREP_SCORES, timelines={"P1": p1, "P2": p2})
    assert [a.participant_id for a in alerts] == ["P1"]
    assert alerts[0].reason == ("WAI-SR total 30 at the final preparation session is below the sample's "
                                "25th percentile (38.75, n = 8); session 1 is due on 2024-01-22")


# -- drop from the previous rating ---------------------------------------------------------------

def test_drop_from_the_participants_own_previous_rating():
    rule = AlertRule("drop", "alliance_drop", "warning", measure="wai_sr.total", points=7)
    scores = wai([
        ("P1", "prep", 50), ("P1", "post_session1", 41), ("P1", "week1", 45),  # 50 → 41: fall 9; then a rise
        ("P2", "prep", 50), ("P2", "week1", 43),                               # missing in between: 50 → 43 = 7
        ("P3", "prep", 48), ("P3", "post_session1", 42),                       # fall 6 < 7
    ])
    alerts = alliance_drop_alerts(rule, PROTOCOL, scores)
    assert [(a.participant_id, a.timepoint, a.value) for a in alerts] == [("P1", "post_session1", 9.0),
                                                                          ("P2", "week1", 7.0)]
    assert alerts[0].reason == ("WAI-SR total fell by 9 points, from 50 at the final preparation session to 41 at "
                                "the integration after session 1 (an alert is raised at a fall of 7 points or more); "
                                "repaired: 45 at 1 week after session 2")   # 50 − 45 = 5 < 7: back to its level
    assert alerts[1].measure == "wai_sr.total@week1"


def test_drop_ignores_other_measures_and_keeps_protocol_order():
    rule = AlertRule("drop", "alliance_drop", "warning", measure="wai_sr.bond", points=2)
    scores = pd.concat([wai([("P1", "week1", 40), ("P1", "prep", 60)]),
                        pd.DataFrame([{"participant_id": "P1", "timepoint": "week1", "instrument": "wai_sr",
                                       "scale": "bond", "value": 20.0},
                                      {"participant_id": "P1", "timepoint": "prep", "instrument": "wai_sr",
                                       "scale": "bond", "value": 17.5}])])
    # bond rose 17.5 → 20 (rows given out of order); the total's fall is another rule's business.
    assert alliance_drop_alerts(rule, PROTOCOL, scores) == []


# -- flags -----------------------------------------------------------------------------------------

SUICIDALITY = AlertRule("suicidality", "flag", "urgent", flag="suicidality",
                        instruments=("phq9", "qids_sr16", "grid_hamd17"))


def test_an_endorsed_suicidality_item_raises_an_urgent_alert_with_the_crisis_text():
    data = answers([
        ("P1", "week4", "grid_hamd17", "grid_hamd17_3", 2),   # GRID-HAMD item 3 ≥ 1: flag
        ("P2", "week4", "grid_hamd17", "grid_hamd17_3", 0),   # 0: no flag
        ("P2", "week4", "grid_hamd17", "grid_hamd17_1", 4),   # another item: ignored
    ])
    (alert,) = flag_alerts(SUICIDALITY, PROTOCOL, data, CRISIS)
    assert (alert.participant_id, alert.timepoint, alert.severity, alert.value) == ("P1", "week4", "urgent", 2.0)
    assert alert.reason == ("GRID-HAMD-17 item 3 answered 2 at 4 weeks after session 2: "
                            "Suicide item endorsed (GRID-HAMD item 3 >= 1)")
    assert alert.action == CRISIS
    assert alert.measure == "grid_hamd17.suicidality@week4"


def test_flags_of_several_instruments_at_one_timepoint_make_one_alert():
    data = answers([
        ("P1", "week1", "qids_sr16", "qids_sr16_12", 1),      # QIDS-SR16 item 12 ≥ 1
        ("P1", "week1", "grid_hamd17", "grid_hamd17_3", 3),
        ("P1", "week1", "phq9", "phq9_9", 0),                 # PHQ-9 item 9 = 0: not flagged
    ])
    (alert,) = flag_alerts(SUICIDALITY, PROTOCOL, data, CRISIS)
    assert alert.measure == "qids_sr16.suicidality@week1, grid_hamd17.suicidality@week1"
    assert alert.value == 3.0
    assert "QIDS-SR16 item 12 answered 1" in alert.reason and "GRID-HAMD-17 item 3 answered 3" in alert.reason


# -- missed and overdue --------------------------------------------------------------------------

def test_overdue_and_missed_assessments_from_the_timeline():
    # Enrolled 1 Jan 2024, immediate arm, only baseline done; today 20 Feb 2024. Planned:
    # prep 21 Jan (window 18-21 Jan, 30 days late → missed), session1 22 Jan (15 Jan-5 Feb, 15 late →
    # missed), post_session1 23 Jan (23-25 Jan, 26 late → missed), session2 3 Feb (1-5 Feb, 15 late →
    # missed), week1 10 Feb (8-13 Feb, 7 days late ≤ 14 → overdue), week4 2 Mar (upcoming).
    today = date(2024, 2, 20)
    rows = timeline(PROTOCOL, "immediate", date(2024, 1, 1), today, done={"baseline": date(2024, 1, 2)})
    overdue = AlertRule("overdue", "missed_assessment", "info", statuses=("overdue",))
    missed = AlertRule("missed", "missed_assessment", "warning", statuses=("missed",))
    (late,) = missed_assessment_alerts(overdue, PROTOCOL, {"P1": rows}, today)
    assert (late.timepoint, late.value, late.measure) == ("week1", 7.0,
                                                          "wai_sr@week1, grid_hamd17@week1, cssrs_slv@week1")
    assert late.reason == ("WAI-SR, GRID-HAMD-17, C-SSRS Since Last Visit at 1 week after session 2 is overdue: "
                           "due 2024-02-10, "
                           "window 2024-02-08 to 2024-02-13, nothing submitted 7 days after the window closed")
    gone = missed_assessment_alerts(missed, PROTOCOL, {"P1": rows}, today)
    assert [(a.timepoint, a.value) for a in gone] == [("prep", 30.0), ("session1", 15.0), ("post_session1", 26.0),
                                                      ("session2", 15.0)]
    assert gone[0].reason.endswith("30 days after the window closed (missed after 14 days)")


# -- all rules at once -----------------------------------------------------------------------------

def test_evaluate_runs_every_rule_that_has_its_data():
    # The rupture rule of the default protocol needs the study's own SD and alpha (10 participants
    # at least); with 8 it raises nothing, so this protocol's rule counts 7 points.
    raw = copy.deepcopy(PROTOCOL.to_dict())
    next(r for r in raw["alerts"]["rules"] if r["id"] == "alliance_drop")["points"] = 7
    config = parse_protocol(raw).alerts
    scores = pd.concat([PREP_SCORES, wai([("P8", "post_session1", 40)])])   # P8: 55 → 40, fall 15
    data = answers([("P3", "baseline", "grid_hamd17", "grid_hamd17_3", 1)])
    alerts = evaluate_alerts(config, PROTOCOL, scores=scores, responses=data)
    # P1 30 and P2 35 are below both the 25th percentile (38.75) and the cut-off of 36.
    assert [a.key for a in alerts] == [("low_alliance", "P1", "prep"), ("low_alliance", "P2", "prep"),
                                       ("alliance_drop", "P8", "post_session1"), ("suicidality", "P3", "baseline"),
                                       ("low_alliance_cutoff", "P1", "prep"), ("low_alliance_cutoff", "P2", "prep")]
    assert alerts[3].action == config.crisis_text != ""
    only = evaluate_alerts(config, PROTOCOL, scores=scores, responses=data, participant_ids=["P2"])
    assert [a.key for a in only] == [("low_alliance", "P2", "prep"),   # the percentile still uses all 8
                                     ("low_alliance_cutoff", "P2", "prep")]
    default = evaluate_alerts(PROTOCOL.alerts, PROTOCOL, scores=scores, responses=data)
    assert "alliance_drop" not in {a.rule for a in default}


# -- the alerts: section ---------------------------------------------------------------------------

def test_default_rules_and_their_settings():
    config = PROTOCOL.alerts
    low = config.rule("low_alliance")
    assert (low.method, low.value, low.min_n, low.at, low.measure) == ("percentile", 25.0, 5, "last_preparation",
                                                                       "wai_sr.total")
    drop = config.rule("alliance_drop")
    assert drop.reliable_change and drop.points is None
    cutoff = config.rule("low_alliance_cutoff")
    assert (cutoff.method, cutoff.value, cutoff.at) == ("threshold", 36.0, "last_preparation")
    assert config.rule("suicidality").instruments == ("phq9", "qids_sr16", "grid_hamd17", "cssrs_screen",
                                                      "cssrs_slv")
    assert config.missed_after_days == 14 and "emergency" in config.crisis_text


def test_a_protocol_without_the_section_gets_the_default_rules_it_can_use():
    raw = PROTOCOL.to_dict()
    del raw["alerts"]
    assert [r.id for r in parse_protocol(raw).alerts.rules] == [r.id for r in PROTOCOL.alerts.rules]
    # Without WAI-SR anywhere there is no alliance to watch (and no preparation visit to email).
    del raw["invitations"]
    for t in raw["timepoints"]:
        t["instruments"] = [i for i in t["instruments"] if i != "wai_sr"]
    no_alliance = parse_protocol(raw).alerts
    # The safety rules read the safety record, not a measure: every protocol keeps them.
    assert [r.id for r in no_alliance.rules] == ["suicidality", "overdue_assessment", "missed_assessment",
                                                 "serious_adverse_event", "vital_sign", "washout"]
    # Only a crisis text: the default rules with that text.
    raw["alerts"] = {"crisis_text": CRISIS}
    assert parse_protocol(raw).alerts.crisis_text == CRISIS
    raw["alerts"] = {"rules": []}
    assert parse_protocol(raw).alerts.rules == ()


def _bad(mutate) -> ProtocolError:
    raw = copy.deepcopy(PROTOCOL.to_dict())
    mutate(raw["alerts"])
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(raw, origin="trial.yaml")
    return caught.value


@pytest.mark.parametrize(("mutate", "key", "allowed"), [
    (lambda a: a["rules"][0].update(method="median"), "alerts.rules[0] (low_alliance).method", "percentile, threshold"),
    (lambda a: a["rules"][0].update(value=100), "alerts.rules[0] (low_alliance).value", "e.g. 25"),
    (lambda a: a["rules"][0].update(measure="wai_sr.totl"), "alerts.rules[0] (low_alliance).measure",
     "total, goal, task, bond"),
    (lambda a: a["rules"][0].update(measure="phq9.total"), "alerts.rules[0] (low_alliance).measure", "wai_sr"),
    (lambda a: a["rules"][0].update(at="first"), "alerts.rules[0] (low_alliance).at", "last_preparation"),
    (lambda a: a["rules"][1].update(points=-2), "alerts.rules[1] (alliance_drop).points", "e.g. 7"),
    (lambda a: a["rules"][1].pop("points"), "alerts.rules[1] (alliance_drop).points", ""),
    (lambda a: a["rules"][2].update(flag="suicide"), "alerts.rules[2] (suicidality).flag", "suicidality"),
    (lambda a: a["rules"][2].update(instruments=["wai_sr"]), "alerts.rules[2] (suicidality).instruments[0]",
     "grid_hamd17"),
    (lambda a: a["rules"][3].update(statuses=["late"]), "alerts.rules[3] (overdue_assessment).statuses[0]",
     "overdue, missed"),
    (lambda a: a["rules"][3].update(severity="high"), "alerts.rules[3] (overdue_assessment).severity",
     "info, warning, urgent"),
    (lambda a: a["rules"][3].update(when="always"), "alerts.rules[3] (overdue_assessment).when", "statuses"),
    (lambda a: a["rules"][4].update(type="late"), "alerts.rules[4] (missed_assessment).type", "missed_assessment"),
    (lambda a: a["rules"][4].update(id="low_alliance"), "alerts.rules[4].id", "a different id"),
    (lambda a: a.pop("crisis_text"), "alerts.crisis_text", "the site's crisis text"),
    (lambda a: a.update(colour="red"), "alerts.colour", "crisis_text, missed_after_days, historical_after_days, rules"),
    (lambda a: a.update(missed_after_days=-1), "alerts.missed_after_days", "e.g. 14"),
])
def test_errors_name_the_key_and_what_is_allowed(mutate, key, allowed):
    error = _bad(mutate)
    keys = [p.column for p in error.problems]
    assert key in keys, keys
    problem = error.problems[keys.index(key)]
    assert allowed in problem.allowed
    assert problem.file == "trial.yaml" and key in str(error)


def test_a_list_of_rules_is_the_rules():
    config = parse_protocol({**PROTOCOL.to_dict(), "alerts": [
        {"id": "low", "type": "low_alliance", "measure": "wai_sr.total", "method": "threshold", "value": 36}]}).alerts
    (rule,) = config.rules
    assert (rule.id, rule.severity, rule.value, rule.label) == ("low", "warning", 36.0, "low")


def test_every_rule_type_of_the_schema_is_evaluated_and_declares_its_inputs():
    assert set(RULE_TYPES) == set(RULE_TYPE_NAMES)
    needed = {rule.id: RULE_TYPES[rule.type].inputs(rule) for rule in PROTOCOL.alerts.rules}
    assert needed["low_alliance"].score_instruments == {"wai_sr"} and not needed["low_alliance"].timelines
    # PHQ-9 item 9, QIDS-SR-16 item 12, GRID-HAMD-17 item 3 (the instruments' suicidality flags)
    # and the C-SSRS urgent-risk items (ideation types 4-5, behaviour) of both forms
    assert needed["suicidality"].answer_items == {("phq9", "phq9_9"), ("qids_sr16", "qids_sr16_12"),
                                                  ("grid_hamd17", "grid_hamd17_3")} | {
        ("cssrs_screen", f"cssrs_screen_{i}") for i in (4, 5, 6, 7)} | {
        ("cssrs_slv", f"cssrs_slv_{i}") for i in (4, 5, 11, 13, 14, 15, 16)}
    assert needed["missed_assessment"].timelines and not needed["missed_assessment"].score_instruments
    # A rule whose data is not given raises nothing (it is not an error).
    assert evaluate_alerts(PROTOCOL.alerts, PROTOCOL, scores=None, responses=None) == []
