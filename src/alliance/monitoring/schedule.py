"""When each timepoint of a protocol is due for one participant.

Timepoints are anchored to enrolment, to the start of treatment (enrolment plus the arm's
``start_offset_days``), to the first or last dosing session, or to another timepoint. Once a
dosing session has happened, its actual date replaces the planned one as an anchor: follow-ups
count from the day the last dose was really given. An assessment's own date never moves any
planned date: a form submitted three weeks late does not rewrite its visit (issue 12), and an
assessment off schedule is a deviation (:mod:`alliance.monitoring.deviations`), never "done".
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
    return anchored_dates(protocol, arm_id, enrolment, actual)  # type: ignore[return-value]


def anchored_dates(protocol: Protocol, arm_id: str, enrolment: date | None,
                   actual: dict[str, date] | None = None) -> dict[str, date | None]:
    """:func:`planned_dates`, also without an enrolment date: ``None`` where a date needs it.

    Without enrolment, the timepoints anchored (directly or through others) to a dosing session
    that actually happened still get their dates: the deviations of a participant whose enrolment
    date is not recorded can be found for everything after the first dose.
    """
    actual = dict(actual or {})
    arm = protocol.arm(arm_id)
    by_id = {t.id: t for t in protocol.timepoints}
    dosing = protocol.dosing_timepoints
    fixed = ({"enrolment": enrolment, "treatment_start": enrolment + timedelta(days=arm.start_offset_days)}
             if enrolment is not None else {"enrolment": None, "treatment_start": None})
    resolved: dict[str, date | None] = {}

    def resolve(timepoint: Timepoint, chain: tuple[str, ...]) -> date | None:
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
        resolved[timepoint.id] = None if base is None else base + timedelta(days=timepoint.offset_days)
        return resolved[timepoint.id]

    return {t.id: resolve(t, ()) for t in protocol.timepoints}


def own_planned_dates(protocol: Protocol, arm_id: str, enrolment: date | None,
                      actual: dict[str, date] | None = None) -> dict[str, date | None]:
    """Each timepoint's planned date from the protocol and the *other* timepoints' actual dates.

    A dosing session given late moves the follow-ups anchored to it, but not its own planned date
    (nor its window): that is how a late session is seen to be late.

    Parameters
    ----------
    protocol : Protocol
    arm_id : str
    enrolment : date or None
        Without it, dates that need it are ``None`` (:func:`anchored_dates`).
    actual : dict, optional
        Timepoint id → the date it actually happened (dosing sessions).

    Returns
    -------
    dict
        Timepoint id → date (or ``None``), in protocol order.
    """
    actual = dict(actual or {})
    if not actual:
        return anchored_dates(protocol, arm_id, enrolment)
    shared = anchored_dates(protocol, arm_id, enrolment, actual)
    out = {}
    for timepoint in protocol.timepoints:
        if timepoint.id in actual:
            others = {k: v for k, v in actual.items() if k != timepoint.id}
            out[timepoint.id] = anchored_dates(protocol, arm_id, enrolment, others)[timepoint.id]
        else:
            out[timepoint.id] = shared[timepoint.id]
    return out


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


STATUSES = ("done", "deviation", "upcoming", "due", "overdue", "missed")


def timeline(protocol: Protocol, arm_id: str, enrolment: date, today: date,
             done: dict[str, date] | None = None, actual: dict[str, date] | None = None,
             missed_after_days: int = 14, deviations: dict[str, list[str]] | None = None) -> list[dict]:
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
        Timepoint id → actual date of events that anchor others (dosing sessions). ``done`` dates
        do not: the planned dates stay as the protocol and the dosing sessions set them.
    missed_after_days : int
        Days after the end of the window at which an overdue assessment counts as missed.
    deviations : dict, optional
        Timepoint id → the reasons its assessments deviate (:func:`alliance.monitoring.deviations.
        participant_deviations`); such a timepoint is ``deviation``, never ``done``.

    Returns
    -------
    list of dict
        In protocol order: ``timepoint``, ``label``, ``kind``, ``planned``, ``window_start``,
        ``window_end``, ``done_on``, ``deviations`` (reasons) and ``status`` — ``done``;
        ``deviation`` (given, but off schedule: the reasons say how); ``upcoming`` (before its window);
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
    deviations = deviations or {}
    planned = own_planned_dates(protocol, arm_id, enrolment, actual)
    rows = []
    for timepoint in protocol.timepoints:
        start, end = due_window(timepoint, planned[timepoint.id])
        if deviations.get(timepoint.id):
            status = "deviation"
        elif timepoint.id in done:
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
                     "done_on": done.get(timepoint.id), "deviations": list(deviations.get(timepoint.id, ())),
                     "status": status})
    return rows
