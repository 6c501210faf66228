"""A C-SSRS answer of ideation type 4 or 5, or any suicidal behaviour, raises the urgent flag alert."""

from __future__ import annotations

import pandas as pd

from alliance.monitoring.alerts import RULE_TYPES, flag_alerts
from alliance.protocol import default_protocol
from alliance.protocol.alerts import AlertRule

PROTOCOL = default_protocol()
CRISIS = "Call the study physician."
RULE = AlertRule("suicidality", "flag", "urgent", flag="suicidality", instruments=("cssrs_slv",))


def answers(participant, timepoint, yes):
    # every item of the since-last-visit form answered: the listed items yes (1), the others 0
    rows = [(participant, timepoint, "cssrs_slv", f"cssrs_slv_{i}", 1.0 if i in yes else 0.0) for i in range(1, 17)]
    return rows


def frame(rows):
    return pd.DataFrame(rows, columns=["participant_id", "timepoint", "instrument", "item", "value"])


def test_type_4_or_5_or_behaviour_raises_and_types_1_to_3_do_not():
    data = frame(answers("P1", "week1", {1, 2, 3}) + answers("P2", "week1", {1, 2, 3, 4})
                 + answers("P3", "week4", {5}) + answers("P4", "week4", {13}) + answers("P5", "week4", {12}))
    alerts = flag_alerts(RULE, PROTOCOL, data, CRISIS)
    assert [(a.participant_id, a.timepoint) for a in alerts] == [("P2", "week1"), ("P3", "week4"), ("P4", "week4")]
    assert all(a.severity == "urgent" and a.action == CRISIS for a in alerts)
    assert alerts[0].measure == "cssrs_slv.suicidality@week1"
    assert alerts[0].reason.endswith("(item 4 answered yes)")  # the items of the urgent rule that were yes


def test_a_yes_counts_even_when_other_items_are_blank():
    data = frame([("P1", "week1", "cssrs_slv", "cssrs_slv_11", 1.0)])  # an actual attempt, nothing else answered
    (alert,) = flag_alerts(RULE, PROTOCOL, data, CRISIS)
    assert alert.participant_id == "P1" and "item 11 answered yes" in alert.reason


def test_the_rule_asks_for_every_item_of_the_flagged_scale():
    inputs = RULE_TYPES["flag"].inputs(RULE)
    assert {item for _, item in inputs.answer_items} == {f"cssrs_slv_{i}" for i in (4, 5, 11, 13, 14, 15, 16)}
