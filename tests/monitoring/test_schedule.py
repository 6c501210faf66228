"""Planned dates and timeline statuses, worked by hand from the Levin 2024 protocol file."""

from __future__ import annotations

from datetime import date

from alliance.monitoring.schedule import due_window, planned_dates, timeline
from alliance.protocol import default_protocol


def test_planned_dates_follow_the_anchors():
    due = planned_dates(default_protocol(), "immediate", date(2024, 1, 1))
    # session1 = treatment start (enrolment + 0) + 21 days; prep = session1 - 1;
    # session2 = session1 + 12; week1 = session2 + 7; month12 = session2 + 365.
    assert due["session1"] == date(2024, 1, 22)
    assert due["prep"] == date(2024, 1, 21)
    assert due["session2"] == date(2024, 2, 3)
    assert due["week1"] == date(2024, 2, 10)
    assert due["month12"] == date(2025, 2, 2)


def test_waiting_list_arm_starts_eight_weeks_later():
    due = planned_dates(default_protocol(), "delayed", date(2024, 1, 1))
    # treatment start = enrolment + 56 days (26 Feb 2024), session1 21 days later.
    assert due["session1"] == date(2024, 3, 18)
    assert due["baseline"] == date(2024, 1, 1)


def test_actual_dosing_dates_move_the_follow_ups():
    due = planned_dates(default_protocol(), "immediate", date(2024, 1, 1), actual={"session2": date(2024, 2, 10)})
    assert due["week4"] == date(2024, 3, 9)  # 10 Feb + 28 days


def test_due_window():
    protocol = default_protocol()
    start, end = due_window(protocol.timepoint("week4"), date(2024, 3, 2))
    assert (start, end) == (date(2024, 2, 24), date(2024, 3, 9))  # window [7, 7]


def test_timeline_statuses():
    protocol = default_protocol()
    # On 1 April 2024 an immediate-arm participant enrolled 1 Jan who did baseline, prep and both
    # sessions (session2 on 3 Feb): week1 was due 10 Feb, window to 13 Feb, missed 14 days later
    # (27 Feb); week4 (2 Mar, window to 9 Mar) is overdue until 23 Mar, so missed on 1 Apr too;
    # month3 (4 May, window from 20 Apr) is upcoming.
    done = {"baseline": date(2024, 1, 2), "prep": date(2024, 1, 21), "session1": date(2024, 1, 22),
            "post_session1": date(2024, 1, 23), "session2": date(2024, 2, 3)}
    rows = {r["timepoint"]: r["status"] for r in timeline(protocol, "immediate", date(2024, 1, 1),
                                                          today=date(2024, 4, 1), done=done)}
    assert rows == {"baseline": "done", "prep": "done", "session1": "done", "post_session1": "done",
                    "session2": "done", "week1": "missed", "week4": "missed", "month3": "upcoming",
                    "month6": "upcoming", "month12": "upcoming"}
    rows = {r["timepoint"]: r["status"] for r in timeline(protocol, "immediate", date(2024, 1, 1),
                                                          today=date(2024, 3, 15), done=done)}
    assert rows["week4"] == "overdue"  # 6 days after the window closed on 9 Mar
    rows = {r["timepoint"]: r["status"] for r in timeline(protocol, "immediate", date(2024, 1, 1),
                                                          today=date(2024, 3, 1), done=done)}
    assert rows["week4"] == "due"
