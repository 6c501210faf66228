"""Which invitation or reminder email is due for a participant's visit today (pure).

The protocol's ``invitations:`` section (:mod:`alliance.protocol.invitations`) says, per
timepoint, whether an invitation is sent and the reminders after it; the participant's timeline
(:func:`alliance.monitoring.schedule.timeline`) gives each visit's window. Message 0, the
invitation, is due on the day the window opens; reminder *k* on the day ``reminders_days[k-1]``
after it. Nothing is due before the window opens, after it closes, once the visit's
self-reports are all submitted, or while a dosing session the visit is counted from has not
been recorded.

A sender that did not run for a few days must not send three emails at once: for each visit
only the **latest** message due is returned (with ``skipped``, the earlier ones it supersedes),
and the web app records those as skipped. Whether a message has been sent already is the web
app's to know (:class:`alliance.web.capture.models.Notification`); this module only says what is
due.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from alliance.protocol import Protocol

__all__ = ["DueMessage", "dosing_anchors", "due_messages", "message_schedule"]


@dataclass(frozen=True)
class DueMessage:
    """The email due for one visit.

    Attributes
    ----------
    timepoint : str
    kind : str
        ``invitation`` (number 0) or ``reminder`` (1, 2, …).
    number : int
    due_on : date
    window_close : date
        The last day of the visit's window: the link expires at its end.
    skipped : tuple of int
        Numbers of earlier messages due but not sent, superseded by this one.
    """

    timepoint: str
    kind: str
    number: int
    due_on: date
    window_close: date
    skipped: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        return {"timepoint": self.timepoint, "kind": self.kind, "number": self.number,
                "due_on": self.due_on.isoformat(), "window_close": self.window_close.isoformat(),
                "skipped": list(self.skipped)}


def message_schedule(protocol: Protocol, timepoint_id: str, window_open: date) -> list[tuple[int, date]]:
    """``(number, due_on)`` of every message of a visit (0: the invitation), or ``[]`` when none is sent.

    Examples
    --------
    >>> from datetime import date
    >>> from alliance.protocol import default_protocol
    >>> message_schedule(default_protocol(), "week1", date(2024, 3, 1))
    [(0, datetime.date(2024, 3, 1)), (1, datetime.date(2024, 3, 3)), (2, datetime.date(2024, 3, 5))]
    """
    chosen = protocol.invitations.for_timepoint(timepoint_id)
    if chosen is None:
        return []
    return [(0, window_open)] + [(k, window_open + timedelta(days=d))
                                 for k, d in enumerate(chosen.reminders_days, start=1)]


def dosing_anchors(protocol: Protocol, timepoint_id: str) -> set[str]:
    """The dosing timepoints a timepoint's planned date is counted from, directly or through others.

    Examples
    --------
    >>> from alliance.protocol import default_protocol
    >>> sorted(dosing_anchors(default_protocol(), "week1")), sorted(dosing_anchors(default_protocol(), "baseline"))
    (['session1', 'session2'], [])
    """
    dosing = [t.id for t in protocol.dosing_timepoints]
    by_id = {t.id: t for t in protocol.timepoints}
    found: set[str] = set()
    anchor = by_id[timepoint_id].anchor
    seen = {timepoint_id}
    while anchor not in ("enrolment", "treatment_start") and anchor not in seen:
        anchor = {"first_dosing": dosing[0] if dosing else anchor,
                  "last_dosing": dosing[-1] if dosing else anchor}.get(anchor, anchor)
        if anchor not in by_id:
            break
        seen.add(anchor)
        if by_id[anchor].kind == "dosing":
            found.add(anchor)
        anchor = by_id[anchor].anchor
    return found


def due_messages(protocol: Protocol, rows: Iterable[Mapping], today: date,
                 pending: Iterable[str], dosed: Iterable[str] = ()) -> list[DueMessage]:
    """The message due today for each open visit of one participant.

    Parameters
    ----------
    protocol : Protocol
    rows : iterable of mapping
        The participant's timeline rows (:func:`alliance.monitoring.schedule.timeline`), each with
        ``timepoint``, ``window_start`` and ``window_end``.
    today : date
        In the site's time zone.
    pending : iterable of str
        Timepoint ids with at least one self-report not yet submitted.
    dosed : iterable of str
        Dosing timepoint ids whose session is recorded. A visit after dosing counted from a
        dosing session that has not happened is not due: its window is only an estimate until
        then ("one day after session 1" must not be emailed before session 1 is given).

    Returns
    -------
    list of DueMessage
        In protocol order; at most one per visit.

    Examples
    --------
    >>> from datetime import date
    >>> from alliance.protocol import default_protocol
    >>> rows = [{"timepoint": "week1", "window_start": date(2024, 3, 1), "window_end": date(2024, 3, 6)}]
    >>> [m.kind for m in due_messages(default_protocol(), rows, date(2024, 3, 4), {"week1"}, {"session1", "session2"})]
    ['reminder']
    """
    pending, dosed = set(pending), set(dosed)
    out = []
    for row in rows:
        timepoint, start, end = row["timepoint"], row["window_start"], row["window_end"]
        if timepoint not in pending or not start <= today <= end:
            continue
        # A pre-dose visit counted back from a planned dose (prep: the day before session 1) is
        # scheduled on the plan; a visit after a dose waits for the dose to be recorded.
        if protocol.phases[timepoint] != "pre_dose" and not dosing_anchors(protocol, timepoint) <= dosed:
            continue
        due = [(number, on) for number, on in message_schedule(protocol, timepoint, start) if on <= min(today, end)]
        if not due:
            continue
        number, on = due[-1]
        out.append(DueMessage(timepoint=timepoint, kind="invitation" if number == 0 else "reminder", number=number,
                              due_on=on, window_close=end, skipped=tuple(n for n, _ in due[:-1])))
    return out
