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
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.utils import timezone

from alliance import instruments as bank
from alliance.monitoring.deviations import AdministrationTime, participant_deviations
from alliance.monitoring.schedule import timeline
from alliance.protocol import Protocol
from alliance.web.bulk import batches

from .models import Administration, DosingSession, FacilitatorAssignment, Participant
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


def participant_timelines(participants, today: date | None = None) -> dict[int, dict]:
    """:func:`participant_timeline` of many participants of one study, in three queries per batch.

    A dashboard or an alert refresh needs every participant's timeline: two queries each made the
    study dashboard's time grow with the study (issue 11's load test). The queries (dosing
    sessions, administrations, facilitator assignments) are per batch of participants, never per
    participant.

    Parameters
    ----------
    participants : iterable of Participant
        Of one study, with ``arm`` and ``study`` selected (``select_related``).
    today : date, optional
        Default: today in the site's time zone.

    Returns
    -------
    dict
        ``participant.pk`` → what :func:`participant_timeline` returns.
    """
    participants = list(participants)
    if not participants:
        return {}
    protocol = study_protocol(participants[0].study)
    today = today or timezone.localdate()
    pks = [p.pk for p in participants]
    sessions: dict[int, list] = defaultdict(list)
    # states[pk][timepoint][instrument] is a state, or for a facilitator-rated instrument a dict
    # facilitator id → state.
    states: dict[int, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
    submitted_on: dict[int, dict[str, list[date]]] = defaultdict(lambda: defaultdict(list))
    given: dict[int, list[AdministrationTime]] = defaultdict(list)
    facilitators: dict[int, list[str]] = defaultdict(list)
    for batch in batches(pks):
        for session in DosingSession.objects.filter(participant_id__in=batch).order_by("participant_id", "session"):
            sessions[session.participant_id].append(session)
        for pk, code, instrument, facilitator, status, administered_at in (
                Administration.objects.filter(participant_id__in=batch)
                .values_list("participant_id", "timepoint__code", "instrument", "facilitator__facilitator_id",
                             "status", "administered_at")):
            state = "submitted" if status == Administration.Status.SUBMITTED else "draft"
            if facilitator is None:
                states[pk][code][instrument] = state
            else:
                states[pk][code].setdefault(instrument, {})[facilitator] = state
            if status == Administration.Status.SUBMITTED:
                submitted_on[pk][code].append(iso_day(administered_at) or today)
                given[pk].append(AdministrationTime(code, instrument, administered_at or None))
        for pk, facilitator in (FacilitatorAssignment.objects.filter(participant_id__in=batch)
                                .order_by("participant_id", "position")
                                .values_list("participant_id", "facilitator__facilitator_id")):
            facilitators[pk].append(facilitator)
    return {p.pk: _timeline(protocol, p, today, sessions[p.pk], states[p.pk], submitted_on[p.pk], given[p.pk],
                            facilitators[p.pk])
            for p in participants}


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
              states: dict[str, dict], submitted_on: dict[str, list[date]],
              given: list[AdministrationTime], facilitators: list[str]) -> dict:
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
    return {"protocol": protocol, "enrolled_on": participant.enrolled_on, "rows": rows, "dosing_sessions": sessions,
            "deviations": found, "facilitators": facilitators}
