"""Protocol deviations: administrations taken off the protocol's schedule (pure, no database).

The kinds and what the analysis does with each are the protocol's ``deviations:`` section
(:mod:`alliance.protocol.deviations`). Found here, from each administration's
``administered_at``, the participant's arm, enrolment date and dosing sessions:

``after_dosing``
    The timepoint's phase is ``pre_dose`` but the administration is later than the first dosing
    session: a later calendar day, or the same day when both carry a time and the administration's
    is later. On the same day without times the order cannot be known, and it is not counted.
``out_of_window``
    The day is outside the timepoint's window: ``window_days`` before and after its planned date.
    The planned date comes from the protocol's anchors and the dates the dosing sessions actually
    happened — never from the administration itself (a form submitted late does not move its own
    visit). Without an enrolment date, only timepoints anchored to a recorded dosing session have
    a window.
``out_of_order``
    The day is before the day of an administration at an earlier timepoint (in protocol order) of
    the same participant: week 1 before the final preparation session. The later timepoint's
    administration is the one reported, naming the earlier one.
``undated``
    No ``administered_at``, when the protocol's section says ``require_dates: true``.

An administration can have several deviations. Dates are compared as calendar days (the part
before ``T``); times only decide ``after_dosing`` on the day of the first dose.

References
----------
International Council for Harmonisation (1995). E3 Structure and Content of Clinical Study
Reports, section 10.2 (protocol deviations).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd

from alliance.protocol import Protocol

from .schedule import own_planned_dates

__all__ = ["AdministrationTime", "Deviation", "find_deviations", "participant_deviations"]


@dataclass(frozen=True)
class AdministrationTime:
    """When one administration was given: its timepoint, instrument and ``administered_at`` text."""

    timepoint: str
    instrument: str
    administered_at: str | None


@dataclass(frozen=True)
class Deviation:
    """One administration off schedule.

    Attributes
    ----------
    participant_id, timepoint, instrument : str
    administered_at : str or None
        As recorded.
    kind : str
        ``after_dosing``, ``out_of_window``, ``out_of_order`` or ``undated``.
    window_open, window_close : date or None
        The timepoint's window for this participant, when it could be computed.
    reason : str
        In words, with the dates.
    """

    participant_id: str
    timepoint: str
    instrument: str
    administered_at: str | None
    kind: str
    window_open: date | None
    window_close: date | None
    reason: str

    def to_dict(self, action: str | None = None) -> dict:
        out = {"participant_id": self.participant_id, "timepoint": self.timepoint, "instrument": self.instrument,
               "administered_at": self.administered_at, "kind": self.kind,
               "window_open": None if self.window_open is None else self.window_open.isoformat(),
               "window_close": None if self.window_close is None else self.window_close.isoformat(),
               "reason": self.reason}
        if action is not None:
            out["action"] = "excluded" if action == "exclude" else "included"
        return out


def _moment(text: str | None) -> tuple[date, datetime | None] | None:
    """The calendar day of an ISO-8601 date or date-time, and the date-time when it has a time."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        return None
    if len(text) <= 10:
        return day, None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return day, None
    return day, moment.replace(tzinfo=None) if moment.tzinfo is None else moment


def _later(a: tuple[date, datetime | None], b: tuple[date, datetime | None]) -> bool:
    """``a`` is after ``b``: a later day, or the same day with both times known and ``a``'s later."""
    if a[0] != b[0]:
        return a[0] > b[0]
    if a[1] is None or b[1] is None:
        return False
    try:
        return a[1] > b[1]
    except TypeError:  # one with a time zone, one without: the order is not known
        return False


def participant_deviations(protocol: Protocol, participant_id: str, arm_id: str, enrolled_on: date | None,
                           administrations: Iterable[AdministrationTime],
                           dosing_dates: Mapping[int, str | None]) -> list[Deviation]:
    """The deviations of one participant's administrations.

    Parameters
    ----------
    protocol : Protocol
    participant_id, arm_id : str
    enrolled_on : date or None
    administrations : iterable of AdministrationTime
    dosing_dates : mapping
        Dosing session number → the ISO date (or date-time) it was given, ``None`` if unknown.

    Returns
    -------
    list of Deviation
        In protocol order of the timepoints, then instrument.
    """
    order = {t.id: t.order for t in protocol.timepoints}
    by_id = {t.id: t for t in protocol.timepoints}
    session_timepoint = {t.dose.session: t.id for t in protocol.dosing_timepoints if t.dose is not None}
    dosed = {session_timepoint[s]: _moment(text) for s, text in dosing_dates.items() if s in session_timepoint}
    given = {tid: moment for tid, moment in dosed.items() if moment is not None}
    actual_days = {tid: moment[0] for tid, moment in given.items()}
    first_dose = min(given.values(), key=lambda m: (m[0], m[1] or datetime.min)) if given else None
    first_label = None
    if first_dose is not None:
        first_label = next(by_id[t].label for t, m in given.items() if m == first_dose)

    windows: dict[str, tuple[date, date] | None] = {}
    # Planned dates from everything but the timepoint itself: a session given late does not move
    # its own window.
    planned_on = own_planned_dates(protocol, arm_id, enrolled_on, actual_days)
    for timepoint in protocol.timepoints:
        planned = planned_on[timepoint.id]
        if planned is None:
            windows[timepoint.id] = None
        else:
            before, after = timepoint.window_days
            windows[timepoint.id] = (planned - timedelta(days=before), planned + timedelta(days=after))

    rows = sorted((a for a in administrations if a.timepoint in order),
                  key=lambda a: (order[a.timepoint], a.instrument))
    moments = [(a, _moment(a.administered_at)) for a in rows]
    out: list[Deviation] = []
    for a, moment in moments:
        window = windows[a.timepoint]
        open_, close = window if window is not None else (None, None)

        def deviation(kind: str, reason: str, a=a, open_=open_, close=close) -> Deviation:
            return Deviation(participant_id, a.timepoint, a.instrument, a.administered_at, kind, open_, close, reason)

        if moment is None:
            if protocol.deviations.require_dates:
                out.append(deviation("undated", "has no administered_at, which the protocol requires"))
            continue
        if protocol.phases.get(a.timepoint) == "pre_dose" and first_dose is not None and _later(moment, first_dose):
            out.append(deviation("after_dosing", f"a pre-dose assessment given on {moment[0].isoformat()}, after "
                                                 f"{first_label} on {first_dose[0].isoformat()}"))
        if window is not None and not open_ <= moment[0] <= close:
            side = "before" if moment[0] < open_ else "after"
            out.append(deviation("out_of_window", f"given on {moment[0].isoformat()}, {side} its window "
                                                  f"{open_.isoformat()} to {close.isoformat()}"))
        earlier = [(b, m) for b, m in moments if m is not None and order[b.timepoint] < order[a.timepoint]
                   and m[0] > moment[0]]
        if earlier:
            b, m = max(earlier, key=lambda pair: pair[1][0])
            out.append(deviation("out_of_order", f"given on {moment[0].isoformat()}, before {b.instrument} at the "
                                                 f"earlier timepoint {b.timepoint} on {m[0].isoformat()}"))
    return out


def find_deviations(protocol: Protocol, participants: pd.DataFrame, responses: pd.DataFrame,
                    dosing_sessions: pd.DataFrame | None = None) -> list[Deviation]:
    """Every deviation of a study's administrations (the tidy tables, ``docs/data.md``).

    Parameters
    ----------
    protocol : Protocol
    participants : DataFrame
        ``participant_id``, ``arm`` and optionally ``enrolled_on``.
    responses : DataFrame
        One row per answer; an administration is a participant × timepoint × instrument, whose
        rows share one ``administered_at`` (the core validation's rule).
    dosing_sessions : DataFrame, optional
        ``participant_id``, ``session`` and optionally ``date``.

    Returns
    -------
    list of Deviation
        Participants in the participants table's order.

    Examples
    --------
    >>> import pandas as pd
    >>> from alliance.protocol import default_protocol
    >>> participants = pd.DataFrame({"participant_id": ["P1"], "arm": ["immediate"], "enrolled_on": ["2026-10-01"]})
    >>> responses = pd.DataFrame({"participant_id": ["P1"], "timepoint": ["prep"], "instrument": ["wai_sr"],
    ...                           "administered_at": ["2026-12-01"]})
    >>> dosing = pd.DataFrame({"participant_id": ["P1"], "session": [1], "date": ["2026-11-10"]})
    >>> [d.kind for d in find_deviations(default_protocol(), participants, responses, dosing)]
    ['after_dosing', 'out_of_window']
    """
    if "administered_at" not in responses.columns:
        responses = responses.assign(administered_at=None)
    administrations = (responses[["participant_id", "timepoint", "instrument", "administered_at"]]
                       .drop_duplicates(["participant_id", "timepoint", "instrument", "administered_at"]))
    by_participant: dict[str, list[AdministrationTime]] = {}
    for pid, timepoint, instrument, when in administrations.itertuples(index=False, name=None):
        text = None if when is None or pd.isna(when) else str(when)
        by_participant.setdefault(str(pid), []).append(AdministrationTime(str(timepoint), str(instrument), text))
    doses: dict[str, dict[int, str | None]] = {}
    if dosing_sessions is not None and len(dosing_sessions):
        dates = dosing_sessions["date"] if "date" in dosing_sessions.columns else pd.Series(None, index=dosing_sessions.index)
        for pid, session, when in zip(dosing_sessions["participant_id"], dosing_sessions["session"], dates, strict=True):
            if pd.isna(session):
                continue
            doses.setdefault(str(pid), {})[int(session)] = None if when is None or pd.isna(when) else str(when)
    enrolled = participants["enrolled_on"] if "enrolled_on" in participants.columns \
        else pd.Series(None, index=participants.index)
    out: list[Deviation] = []
    for pid, arm, when in zip(participants["participant_id"], participants["arm"], enrolled, strict=True):
        pid = str(pid)
        if pid not in by_participant:
            continue
        day = None if when is None or pd.isna(when) else date.fromisoformat(str(when)[:10])
        out += participant_deviations(protocol, pid, str(arm), day, by_participant[pid], doses.get(pid, {}))
    return out
