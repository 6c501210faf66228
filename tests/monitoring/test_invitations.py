"""Which invitation or reminder is due (alliance.monitoring.invitations) and the protocol section it reads."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from alliance.monitoring.invitations import due_messages, message_schedule
from alliance.monitoring.schedule import timeline
from alliance.protocol import ProtocolError, default_protocol, parse_protocol

PROTOCOL = default_protocol()
OPEN = date(2024, 3, 1)


def rows(timepoint="week1", start=OPEN, end=OPEN + timedelta(days=5)):
    return [{"timepoint": timepoint, "window_start": start, "window_end": end}]


def kinds(today, pending=("week1",), **kw):
    return [(m.kind, m.number, m.skipped)
            for m in due_messages(PROTOCOL, rows(**kw), today, pending, dosed={"session1", "session2"})]


def test_the_invitation_is_due_the_day_the_window_opens_and_not_the_day_before():
    assert kinds(OPEN - timedelta(days=1)) == []
    assert kinds(OPEN) == [("invitation", 0, ())]
    assert kinds(OPEN + timedelta(days=1)) == [("invitation", 0, ())]


def test_reminders_follow_on_their_days_and_a_late_run_sends_only_the_latest():
    assert kinds(OPEN + timedelta(days=2)) == [("reminder", 1, (0,))]
    assert kinds(OPEN + timedelta(days=4)) == [("reminder", 2, (0, 1))]


def test_nothing_after_the_window_closes_or_once_the_visit_is_complete():
    assert kinds(OPEN + timedelta(days=5)) == [("reminder", 2, (0, 1))]   # the last day of the window
    assert kinds(OPEN + timedelta(days=6)) == []
    assert kinds(OPEN + timedelta(days=2), pending=()) == []


def test_a_reminder_due_after_the_close_is_never_due():
    # prep's window is 3 days (open = planned - 3, close = planned); reminders at +1 and +2 fit, +4 would not
    short = parse_protocol({**PROTOCOL.to_dict(), "invitations": {"timepoints": {"prep": {"reminders_days": [1, 4]}}}})
    window = rows("prep", OPEN, OPEN + timedelta(days=3))
    due = [(m.number, m.due_on) for m in due_messages(short, window, OPEN + timedelta(days=3), {"prep"})]
    assert due == [(1, OPEN + timedelta(days=1))]


def test_a_visit_counted_from_a_dosing_session_waits_for_the_session():
    after = rows("post_session1")
    pending = {"post_session1"}
    assert due_messages(PROTOCOL, after, OPEN, pending) == []
    assert due_messages(PROTOCOL, after, OPEN, pending, dosed={"session2"}) == []
    assert [m.kind for m in due_messages(PROTOCOL, after, OPEN, pending, dosed={"session1"})] == ["invitation"]
    # week1 counts from session 2, which counts from session 1: both must have happened
    assert due_messages(PROTOCOL, rows("week1"), OPEN, {"week1"}, dosed={"session2"}) == []
    assert len(due_messages(PROTOCOL, rows("week1"), OPEN, {"week1"}, dosed={"session1", "session2"})) == 1


def test_dosing_days_are_not_emailed_in_the_default_protocol():
    assert message_schedule(PROTOCOL, "session1", OPEN) == []
    assert kinds(OPEN, timepoint="session1", pending=("session1",)) == []


def test_a_protocol_without_the_section_sends_nothing():
    raw = PROTOCOL.to_dict()
    raw.pop("invitations")
    bare = parse_protocol(raw)
    assert not bare.invitations.enabled
    assert due_messages(bare, rows(), OPEN, {"week1"}) == []


def test_on_a_real_timeline():
    enrolled = date(2024, 1, 1)
    today = date(2024, 1, 18)   # prep: planned 2024-01-21 (the day before session 1), window from 3 days before
    line = timeline(PROTOCOL, "immediate", enrolled, today)
    prep = {r["timepoint"]: r for r in line}["prep"]
    assert prep["window_start"] <= today <= prep["window_end"]
    due = due_messages(PROTOCOL, line, today, {"prep", "week1"})
    assert [(m.timepoint, m.kind) for m in due] == [("prep", "invitation")]
    assert due[0].window_close == prep["window_end"]
    assert due[0].to_dict()["window_close"] == prep["window_end"].isoformat()


@pytest.mark.parametrize(("section", "path", "message"), [
    ({"reminders_days": [4, 2]}, "invitations.reminders_days", "is not increasing"),
    ({"reminders_days": [0]}, "invitations.reminders_days[0]", "is not a number of days after the invitation"),
    ({"reminders_days": [1, 2, 3, 4, 5, 6]}, "invitations.reminders_days", "has 6 reminders"),
    ({"subject": ""}, "invitations.subject", "is not an email subject"),
    ({"timepoints": {"baseline": {"send": True}}}, "invitations.timepoints.baseline", "gives no self-report"),
    ({"timepoints": {"nowhere": {}}}, "invitations.timepoints.nowhere", "is not a key of this section"),
    ({"timepoints": {"prep": {"send": "yes"}}}, "invitations.timepoints.prep.send", "is not true or false"),
    ({"every": 2}, "invitations.every", "is not a key of this section"),
])
def test_section_errors_name_the_path_the_value_and_what_is_allowed(section, path, message):
    with pytest.raises(ProtocolError) as raised:
        parse_protocol({**PROTOCOL.to_dict(), "invitations": section})
    described = [p.describe() for p in raised.value.problems]
    assert any(path in d and message in d for d in described), described
