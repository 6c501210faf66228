"""Visits as a participant sees them: the self-reports due at a visit, its window, its links, its address.

A *visit* is one participant at one timepoint. Its self-reports are the instruments the protocol
gives there with ``rater: participant``, in the protocol's order; one private link
(:class:`~alliance.web.capture.models.VisitLink`) walks through them (a survey queue, like
REDCap's). The link expires at the end of the last day of the visit's window, in the site's time
zone — the protocol's windows are calendar days where the site is.

The links page lists every link of a study with its state; the states, in the order they are
checked: ``revoked``, ``completed`` (every form submitted), ``expired``, ``in progress`` (some
answer saved through it) and ``open``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from alliance import instruments as bank
from alliance.protocol import Protocol

from . import models as m

LINK_STATES = ("revoked", "completed", "expired", "in progress", "open")


def self_reports(protocol: Protocol, timepoint_id: str) -> list[str]:
    """The self-report instruments given at a timepoint, in the protocol's order."""
    return [i for i in protocol.timepoint(timepoint_id).instruments if bank.get(i).rater == "participant"]


def window_close_at(window_end: date) -> datetime:
    """The moment a visit's window closes: the end of its last day in the site's time zone (aware)."""
    return timezone.make_aware(datetime.combine(window_end + timedelta(days=1), time.min))


def visit_expiry(row: dict | None, now: datetime | None = None) -> tuple[datetime, bool]:
    """When a new visit link expires, and whether that is the window's close.

    Parameters
    ----------
    row : dict or None
        The visit's timeline row (``window_end``), or ``None`` when the participant has no
        timeline (no enrolment date).
    now : datetime, optional

    Returns
    -------
    expires_at : datetime
        The window's close; when it is unknown or already past (a late visit, which will be an
        ``out_of_window`` deviation), ``ALLIANCE_LINK_DAYS`` from now.
    in_window : bool
    """
    now = now or timezone.now()
    if row is not None:
        close = window_close_at(row["window_end"])
        if close > now:
            return close, True
    return now + timedelta(days=settings.PRIVATE_LINK_DAYS), False


def participant_email(protocol: Protocol, participant: m.Participant) -> str | None:
    """The participant's email address: the first identifier of type ``email`` that holds a valid one.

    An address is an identifier (``docs/protocol.md``): it is read here when a message is sent and
    never copied into a log line, an audit event or a de-identified export. A protocol whose
    identifiers declare no type reads the column named ``email``.
    """
    fields = [f.id for f in protocol.identifier_fields if f.type == "email"] or ["email"]
    for column in fields:
        value = str(participant.identifiers.get(column) or "").strip()
        if not value:
            continue
        try:
            validate_email(value)
        except ValidationError:
            continue
        return value
    return None


def link_state(link, now: datetime | None = None, *, submitted: bool | None = None) -> str:
    """One of :data:`LINK_STATES` for a :class:`VisitLink` or :class:`PrivateLink`.

    ``submitted`` says, for a private link, whether its form has been submitted (through it or
    otherwise); a visit link knows from ``completed_at``.
    """
    now = now or timezone.now()
    if link.revoked_at is not None:
        return "revoked"
    if isinstance(link, m.VisitLink):
        if link.completed_at is not None:
            return "completed"
    elif link.used_at is not None or submitted:
        return "completed"
    if link.expires_at <= now:
        return "expired"
    if isinstance(link, m.VisitLink) and link.opened_at is not None:
        return "in progress"
    return "open"


@dataclass(frozen=True)
class VisitForm:
    """One form of a visit as its queue page shows it."""

    instrument: str
    name: str
    state: str  # submitted | draft | not started


def visit_forms(protocol: Protocol, participant: m.Participant, timepoint: m.Timepoint) -> list[VisitForm]:
    """The visit's self-reports with their state, in the protocol's order (one query)."""
    states = dict(m.Administration.objects.filter(participant=participant, timepoint=timepoint)
                  .values_list("instrument", "status"))
    out = []
    for instrument in self_reports(protocol, timepoint.code):
        status = states.get(instrument)
        state = ("submitted" if status == m.Administration.Status.SUBMITTED
                 else "draft" if status is not None else "not started")
        out.append(VisitForm(instrument, bank.get(instrument).short_name, state))
    return out
