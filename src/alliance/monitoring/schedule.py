"""When each timepoint of a protocol is due for one participant.

Timepoints are anchored to enrolment, to the start of treatment (enrolment plus the arm's
``start_offset_days``), to the first or last dosing session, or to another timepoint. Once a
dosing session or an assessment has happened, its actual date replaces the planned one as an
anchor: follow-ups count from the day the last dose was really given.
"""

from __future__ import annotations

from datetime import date, timedelta

from alliance.problems import DataProblem
from alliance.protocol import Protocol, ProtocolError, Timepoint


def planned_dates(protocol: Protocol, arm_id: str, enrolment: date,
                  actual: dict[str, date] | None = None) -> dict[str, date]:
    """The date each timepoint is due for a participant.

    Parameters
    ----------
    protocol : Protocol
    arm_id : str
        The participant's arm (its ``start_offset_days`` shifts ``treatment_start``).
    enrolment : date
        The participant's enrolment date.
    actual : dict, optional
        Timepoint id → the date it actually happened (dosing sessions, completed assessments).
        These dates are returned for those timepoints and anchor the timepoints that follow them.

    Returns
    -------
    dict
        Timepoint id → date, in protocol order.

    Examples
    --------
    >>> from datetime import date
    >>> from alliance.protocol import default_protocol
    >>> due = planned_dates(default_protocol(), "immediate", date(2024, 1, 1))
    >>> due["session1"], due["week4"]
    (datetime.date(2024, 1, 22), datetime.date(2024, 3, 2))
    """
    actual = dict(actual or {})
    arm = protocol.arm(arm_id)
    by_id = {t.id: t for t in protocol.timepoints}
    dosing = protocol.dosing_timepoints
    fixed = {"enrolment": enrolment, "treatment_start": enrolment + timedelta(days=arm.start_offset_days)}
    resolved: dict[str, date] = {}

    def resolve(timepoint: Timepoint, chain: tuple[str, ...]) -> date:
        if timepoint.id in actual:
            return actual[timepoint.id]
        if timepoint.id in resolved:
            return resolved[timepoint.id]
        anchor = timepoint.anchor
        if anchor == "first_dosing":
            anchor = dosing[0].id
        elif anchor == "last_dosing":
            anchor = dosing[-1].id
        if anchor in fixed:
            base = fixed[anchor]
        elif anchor in chain:
            raise ProtocolError([DataProblem(f"protocol {protocol.id}", None, f"{timepoint.id}.anchor", anchor,
                                             "an anchor chain that ends at enrolment or treatment_start",
                                             "runs in a circle: " + " → ".join(chain + (anchor,)))])
        else:
            base = resolve(by_id[anchor], chain + (timepoint.id,))
        resolved[timepoint.id] = base + timedelta(days=timepoint.offset_days)
        return resolved[timepoint.id]

    return {t.id: resolve(t, ()) for t in protocol.timepoints}


def due_window(timepoint: Timepoint, planned: date) -> tuple[date, date]:
    """The first and last day on which an assessment counts as on time.

    Parameters
    ----------
    timepoint : Timepoint
        Its ``window_days`` = (days before, days after) the planned date.
    planned : date

    Returns
    -------
    tuple of date
    """
    before, after = timepoint.window_days
    return planned - timedelta(days=before), planned + timedelta(days=after)


STATUSES = ("done", "upcoming", "due", "overdue", "missed")


def timeline(protocol: Protocol, arm_id: str, enrolment: date, today: date,
             done: dict[str, date] | None = None, actual: dict[str, date] | None = None,
             missed_after_days: int = 14) -> list[dict]:
    """Each timepoint's status for one participant on a given day.

    Parameters
    ----------
    protocol : Protocol
    arm_id : str
    enrolment : date
    today : date
    done : dict, optional
        Timepoint id → date of the submitted assessment(s) at that timepoint.
    actual : dict, optional
        Timepoint id → actual date of events that anchor others (dosing sessions); ``done`` dates
        anchor too.
    missed_after_days : int
        Days after the end of the window at which an overdue assessment counts as missed.

    Returns
    -------
    list of dict
        In protocol order: ``timepoint``, ``label``, ``kind``, ``planned``, ``window_start``,
        ``window_end``, ``done_on`` and ``status`` — ``done``; ``upcoming`` (before its window);
        ``due`` (inside its window); ``overdue`` (after the window, up to ``missed_after_days``
        later); ``missed`` (later still).

    Examples
    --------
    >>> from datetime import date
    >>> from alliance.protocol import default_protocol
    >>> rows = timeline(default_protocol(), "immediate", date(2024, 1, 1), today=date(2024, 1, 20),
    ...                 done={"baseline": date(2024, 1, 2)})
    >>> [(r["timepoint"], r["status"]) for r in rows][:3]
    [('baseline', 'done'), ('prep', 'due'), ('session1', 'due')]
    """
    done = dict(done or {})
    anchors = {**(actual or {}), **done}
    planned = planned_dates(protocol, arm_id, enrolment, anchors)
    rows = []
    for timepoint in protocol.timepoints:
        start, end = due_window(timepoint, planned[timepoint.id])
        if timepoint.id in done:
            status = "done"
        elif today < start:
            status = "upcoming"
        elif today <= end:
            status = "due"
        elif (today - end).days <= missed_after_days:
            status = "overdue"
        else:
            status = "missed"
        rows.append({"timepoint": timepoint.id, "label": timepoint.label, "kind": timepoint.kind,
                     "planned": planned[timepoint.id], "window_start": start, "window_end": end,
                     "done_on": done.get(timepoint.id), "status": status})
    return rows
