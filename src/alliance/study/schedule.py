"""When each timepoint of a protocol is due for one participant.

Timepoints are anchored to enrolment, to the start of treatment (enrolment plus the arm's
``start_offset_days``), to the first or last dosing session, or to another timepoint. Once a
dosing session or an assessment has happened, its actual date replaces the planned one as an
anchor: follow-ups count from the day the last dose was really given.
"""

from __future__ import annotations

from datetime import date, timedelta

from .errors import DataProblem, ProtocolError
from .protocol import Protocol, Timepoint


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
    >>> from alliance.study import default_protocol
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
