"""A participant's timeline: each timepoint's status and dates, from the protocol and what happened.

The dates and statuses come from :func:`alliance.monitoring.schedule.timeline` (nothing is re-derived
here); this module only gathers its inputs from the database — the enrolment date, the recorded
dosing sessions (which anchor the timepoints after them) and the submitted administrations — and
adds, per timepoint, the state of each instrument's form.

A timepoint is *done* when every instrument it gives has been submitted (its date: the last
submission) — a facilitator-rated instrument (``rater: facilitator``, the WAI-SR-T) when each
facilitator assigned to the participant has submitted their rating, each shown as its own entry; a timepoint without instruments is done when it is a dosing timepoint whose session
is recorded. A timepoint with a submitted administration off schedule (taken after the first
dose though pre-dose, out of its window, out of order: :mod:`alliance.monitoring.deviations`) is
a *deviation* instead, with the reasons, and never done.

Speed (issue 14): the study dashboard and the alert list draw every visible participant's timeline.
:func:`participant_timelines` reads them with five queries whatever the number of participants
(a ``QuerySet`` of participants is used as a subquery, not as a list of ids), and keeps each
participant's computed timeline in a per-process cache keyed on everything it is computed from —
the protocol's sha256, ``today``, the participant's id, arm and enrolment date, and the rows just
read (dosing sessions, administrations, facilitators). The key *is* the data: any change to them
(a submitted form, a recorded session, a new day) gives another key, so nothing is ever stale and
nothing needs invalidating; only the participants whose data changed since the last page are
computed again. The cache holds at most :data:`CACHE_SIZE` timelines (least recently used go first;
about 45 KB each with 20 timepoints), enough for a study of 1,000 participants and a few small ones.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from datetime import date

from django.db.models import QuerySet
from django.utils import timezone

from alliance import instruments as bank
from alliance.monitoring.deviations import AdministrationTime, participant_deviations
from alliance.monitoring.schedule import timeline
from alliance.protocol import Protocol
from alliance.web.bulk import batches

from .models import Administration, DosingSession, Facilitator, FacilitatorAssignment, Participant, Timepoint
from .queries import study_protocol


def iso_day(text: str) -> date | None:
    """The calendar date of an ISO-8601 date or date-time stored as text; ``None`` when empty or unreadable."""
    try:
        return date.fromisoformat((text or "")[:10])
    except ValueError:
        return None


def dosing_dates(protocol: Protocol, sessions) -> dict[str, date]:
    """Dosing timepoint id → the date its session was given, for the sessions with a date."""
    by_session = {t.dose.session: t.id for t in protocol.dosing_timepoints if t.dose is not None}
    out = {}
    for session in sessions:
        day = iso_day(session.date)
        if session.session in by_session and day is not None:
            out[by_session[session.session]] = day
    return out


CACHE_SIZE = 2_000  # about 45 KB each for 20 timepoints: some 90 MB at most, per process
_cache: OrderedDict[tuple, dict] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every cached timeline (they are never stale: for benchmarks and tests of the cold path)."""
    with _cache_lock:
        _cache.clear()


def participant_timelines(participants, today: date | None = None) -> dict[int, dict]:
    """:func:`participant_timeline` of many participants of one study, in five queries.

    A dashboard or an alert refresh needs every participant's timeline: two queries each made the
    study dashboard's time grow with the study (issue 11's load test). The queries (the study's
    timepoints and facilitators; dosing sessions, administrations, facilitator assignments) are one
    each for all the participants of a ``QuerySet`` (used as a subquery), or the last three per
    batch of 500 of a list, never per participant.
    Timelines already computed from the same data are taken from the cache (module docstring).

    Parameters
    ----------
    participants : QuerySet or iterable of Participant
        Of one study, with ``arm`` and ``study`` selected (``select_related``, or ``study`` set).
    today : date, optional
        Default: today in the site's time zone.

    Returns
    -------
    dict
        ``participant.pk`` → what :func:`participant_timeline` returns. The rows may be shared with
        other callers (the cache): read them, do not change them.
    """
    scopes = [participants.values("pk")] if isinstance(participants, QuerySet) else None
    participants = list(participants)
    if not participants:
        return {}
    if scopes is None:
        scopes = list(batches([p.pk for p in participants]))
    protocol = study_protocol(participants[0].study)
    today = today or timezone.localdate()
    sessions: dict[int, list] = defaultdict(list)
    administrations: dict[int, list[tuple]] = defaultdict(list)
    facilitators: dict[int, list[str]] = defaultdict(list)
    # Timepoint codes and facilitator ids by primary key, for the study (two small queries): the
    # administrations are read without joins, which halves the time SQLite takes to hand over
    # 20,000 of them.
    study_id = participants[0].study_id
    codes = dict(Timepoint.objects.filter(study_id=study_id).values_list("pk", "code"))
    facilitator_ids = dict(Facilitator.objects.filter(study_id=study_id).values_list("pk", "facilitator_id"))
    for scope in scopes:
        for session in (DosingSession.objects.filter(participant_id__in=scope)
                        .order_by("participant_id", "session")):
            sessions[session.participant_id].append(session)
        for pk, timepoint, instrument, facilitator, status, administered_at in (
                Administration.objects.filter(participant_id__in=scope).order_by("participant_id", "pk")
                .values_list("participant_id", "timepoint_id", "instrument", "facilitator_id", "status",
                             "administered_at")):
            administrations[pk].append((codes[timepoint], instrument, facilitator_ids.get(facilitator), status,
                                        administered_at))
        for pk, facilitator in (FacilitatorAssignment.objects.filter(participant_id__in=scope)
                                .order_by("participant_id", "position")
                                .values_list("participant_id", "facilitator_id")):
            facilitators[pk].append(facilitator_ids[facilitator])
    out = {}
    for p in participants:
        rows = administrations[p.pk]
        key = (protocol.sha256, today, p.participant_id, p.arm.code, p.enrolled_on,
               tuple((s.session, s.date) for s in sessions[p.pk]), tuple(rows), tuple(facilitators[p.pk]))
        with _cache_lock:
            computed = _cache.get(key)
            if computed is not None:
                _cache.move_to_end(key)
        if computed is None:
            computed = _timeline(protocol, p, today, sessions[p.pk], rows, facilitators[p.pk])
            with _cache_lock:
                _cache[key] = computed
                while len(_cache) > CACHE_SIZE:
                    _cache.popitem(last=False)
        out[p.pk] = {**computed, "dosing_sessions": sessions[p.pk], "facilitators": facilitators[p.pk]}
    return out


def _ratings(assigned: list[str], states: dict[str, str]) -> list[dict]:
    """One entry per facilitator of a facilitator-rated form: each assigned one, then any other who rated."""
    states = states if isinstance(states, dict) else {}
    others = [f for f in states if f not in assigned]
    return [{"facilitator": f, "state": states.get(f, "not started"), "assigned": f in assigned}
            for f in [*assigned, *others]]


def _form_state(instrument_id: str, state, assigned: list[str]) -> str:
    """``submitted``, ``draft`` or ``not started``; a facilitator-rated form is submitted when each
    assigned facilitator has submitted their rating."""
    if bank.get(instrument_id).rater != "facilitator":
        return state or "not started"
    ratings = state if isinstance(state, dict) else {}
    if assigned and all(ratings.get(f) == "submitted" for f in assigned):
        return "submitted"
    return "draft" if ratings else "not started"


def participant_timeline(participant: Participant, today: date | None = None) -> dict:
    """Everything the participant page shows about the schedule.

    Parameters
    ----------
    participant : Participant
    today : date, optional
        Default: today in the site's time zone.

    Returns
    -------
    dict
        ``protocol``; ``enrolled_on``; ``rows`` — the rows of
        :func:`~alliance.monitoring.schedule.timeline` (empty without an enrolment date), each with
        ``instruments``: a list of ``{"id", "name", "rater", "state"}`` where state is
        ``submitted``, ``draft`` or ``not started`` — and, for a facilitator-rated instrument,
        ``ratings``: ``{"facilitator", "state", "assigned"}`` per facilitator (the assigned ones
        in order, then any other who rated), its state ``submitted`` when every assigned
        facilitator's is — and ``day`` (days since enrolment of the planned date);
        ``dosing_sessions``: the recorded sessions; ``facilitators``: the assigned facilitator ids.
    """
    return participant_timelines([participant], today)[participant.pk]


def _timeline(protocol: Protocol, participant: Participant, today: date, sessions: list,
              administrations: list[tuple], facilitators: list[str]) -> dict:
    """The timeline of one participant from the rows read (no query; the cache's values)."""
    # states[timepoint][instrument] is a state, or for a facilitator-rated instrument a dict
    # facilitator id → state.
    states: dict[str, dict] = defaultdict(dict)
    submitted_on: dict[str, list[date]] = defaultdict(list)
    given: list[AdministrationTime] = []
    for code, instrument, facilitator, status, administered_at in administrations:
        state = "submitted" if status == Administration.Status.SUBMITTED else "draft"
        if facilitator is None:
            states[code][instrument] = state
        else:
            states[code].setdefault(instrument, {})[facilitator] = state
        if status == Administration.Status.SUBMITTED:
            submitted_on[code].append(iso_day(administered_at) or today)
            given.append(AdministrationTime(code, instrument, administered_at or None))
    actual = dosing_dates(protocol, sessions)
    reasons: dict[str, list[str]] = defaultdict(list)
    found = participant_deviations(protocol, participant.participant_id, participant.arm.code,
                                   participant.enrolled_on, given, {s.session: s.date or None for s in sessions})
    for deviation in found:
        reasons[deviation.timepoint].append(f"{bank.get(deviation.instrument).short_name} {deviation.reason} "
                                            f"({deviation.kind.replace('_', ' ')})")
    done = {}
    for timepoint in protocol.timepoints:
        if timepoint.instruments:
            if submitted_on[timepoint.id] and all(
                    _form_state(i, states[timepoint.id].get(i), facilitators) == "submitted"
                    for i in timepoint.instruments):
                done[timepoint.id] = max(submitted_on[timepoint.id])
        elif timepoint.id in actual:
            done[timepoint.id] = actual[timepoint.id]
    rows = []
    if participant.enrolled_on is not None:
        rows = timeline(protocol, participant.arm.code, participant.enrolled_on, today, done=done, actual=actual,
                        missed_after_days=protocol.alerts.missed_after_days, deviations=dict(reasons))
        for row in rows:
            timepoint = protocol.timepoint(row["timepoint"])
            row["day"] = (row["planned"] - participant.enrolled_on).days
            row["dose"] = timepoint.dose.describe() if timepoint.dose is not None else ""
            row["instruments"] = []
            for i in timepoint.instruments:
                form = {"id": i, "name": bank.get(i).short_name, "rater": bank.get(i).rater,
                        "state": _form_state(i, states[timepoint.id].get(i), facilitators)}
                if form["rater"] == "facilitator":
                    form["ratings"] = _ratings(facilitators, states[timepoint.id].get(i))
                row["instruments"].append(form)
            row["self_reports_pending"] = any(f["rater"] == "participant" and f["state"] != "submitted"
                                              for f in row["instruments"])
    return {"protocol": protocol, "enrolled_on": participant.enrolled_on, "rows": rows, "deviations": found}
