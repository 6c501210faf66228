"""Invitation and reminder emails: each participant's visit link, sent when the protocol says.

What is due comes from the core (:func:`alliance.monitoring.invitations.due_messages`: the
protocol's ``invitations:`` section over the participant's timeline); this module sends it, once.

**Scheduler.** :func:`send_due_every_study` runs from cron as ``alliance invitations send`` (a
documented command, like ``alliance alerts refresh``), and inside ``alliance serve`` on the same
thread that refreshes the alerts (:mod:`alliance.web.monitor.scheduler`). We chose that over a
task queue (django-q2, django-tasks): invitations are due by the *day*, so a run every 15 minutes
is on time; the database the app already has is the whole state, so nothing else has to run, be
monitored or be backed up; and cron is what a site's IT already operates.

**Idempotent.** Before a message is handed to the mail server, its
:class:`~alliance.web.capture.models.Notification` row is committed with status ``sending``; the
unique (participant, timepoint, kind, number) constraint makes any other run — another process,
the next quarter-hour — skip it. A run that stops between the commit and the server's answer
leaves ``sending``: the message may have gone out, so it is never sent again (at most once, as a
participant would want). Only a message the server refused or could not take (``failed``) is
tried again, up to :data:`MAX_ATTEMPTS` times in all.

**Private.** The address is an identifier: it is read from the participant when sending and is
never stored with the message, written to a log line or an audit event (an SMTP error's text can
hold it, so only the error's kind is kept). The subject is the protocol's, neutral by default;
the body names no study, condition or drug, since others may read a participant's mail. Every
email ends with a link to stop them (:func:`opt_out_token`), which records the opt-out on the
participant.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from alliance.monitoring.invitations import DueMessage, due_messages
from alliance.web.audit.log import AuditLog

from . import models as m
from . import recording
from .links import participant_email, self_reports, window_close_at
from .queries import study_protocol
from .timelines import dosing_dates, participant_timelines

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
ACTOR = "scheduler:invitations"
_OPT_OUT_SALT = "alliance.web.capture.invitations.opt_out"


class InvitationsNotConfigured(Exception):
    """Emails cannot be sent: the site's address (``ALLIANCE_SITE_URL``) is not set."""


@dataclass
class SendSummary:
    """What one run did for one study."""

    study: str
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    enabled: bool = True
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"study": self.study, "enabled": self.enabled, "sent": self.sent, "skipped": self.skipped,
                "failed": self.failed, "reasons": dict(self.reasons)}


def opt_out_token(participant: m.Participant) -> str:
    """A signed token naming the participant, for the opt-out link in every email (it never expires)."""
    return signing.dumps(participant.pk, salt=_OPT_OUT_SALT, compress=True)


def participant_from_opt_out(token: str) -> m.Participant | None:
    """The participant an opt-out token names, or ``None`` when it is not one of ours."""
    try:
        pk = signing.loads(token, salt=_OPT_OUT_SALT)
    except signing.BadSignature:
        return None
    return m.Participant.objects.select_related("study").filter(pk=pk).first() if isinstance(pk, int) else None


def site_url() -> str:
    """The site's address for links in emails sent without a request."""
    url = getattr(settings, "ALLIANCE_SITE_URL", "")
    if not url:
        raise InvitationsNotConfigured("invitations and reminders are not sent: set ALLIANCE_SITE_URL to the "
                                       "address participants reach this site at (e.g. https://trial.example.org)")
    return url


def visit_email(participant: m.Participant, timepoint: m.Timepoint, *, link_url: str, reminder: bool,
                window_end: date, subject: str) -> EmailMessage:
    """The email that carries a visit link (the recipient is added by the caller)."""
    context = {"timepoint": timepoint.label or timepoint.code, "link": link_url, "reminder": reminder,
               "until": window_end, "opt_out": site_url() + reverse("capture:opt_out",
                                                                      kwargs={"token": opt_out_token(participant)})}
    body = render_to_string("capture/visit_email.txt", context)
    return EmailMessage(("Reminder: " if reminder else "") + subject, body)


def _pending(protocol, row: dict) -> bool:
    wanted = set(self_reports(protocol, row["timepoint"]))
    return any(i["id"] in wanted and i["state"] != "submitted" for i in row["instruments"])


def _skip(participant, timepoint, message_number: int, kind: str, due_on: date, reason: str, log: AuditLog,
          summary: SendSummary) -> None:
    try:
        with transaction.atomic():
            note = m.Notification.objects.create(participant=participant, timepoint=timepoint, kind=kind,
                                                 number=message_number, due_on=due_on,
                                                 status=m.Notification.Status.SKIPPED, reason=reason)
    except IntegrityError:
        return
    log.created(note, {"participant_id": participant.participant_id, "timepoint": timepoint.code, "kind": kind,
                       "number": message_number, "status": "skipped", "reason": reason}, label=_label(note))
    summary.skipped += 1
    summary.reasons[reason] = summary.reasons.get(reason, 0) + 1


def _label(note: m.Notification) -> str:
    return f"{note.participant.participant_id}/{note.timepoint.code} {note.kind} {note.number}"


def _claim(participant, timepoint, message: DueMessage, existing: m.Notification | None) -> m.Notification | None:
    """Take the message for this run, or ``None`` when it was sent, is being sent, or gave up."""
    if existing is None:
        try:
            with transaction.atomic():
                return m.Notification.objects.create(participant=participant, timepoint=timepoint,
                                                     kind=message.kind, number=message.number,
                                                     due_on=message.due_on, status=m.Notification.Status.SENDING,
                                                     attempts=1)
        except IntegrityError:
            return None
    if existing.status != m.Notification.Status.FAILED or existing.attempts >= MAX_ATTEMPTS:
        return None
    taken = m.Notification.objects.filter(pk=existing.pk, status=m.Notification.Status.FAILED,
                                          attempts=existing.attempts).update(
        status=m.Notification.Status.SENDING, attempts=existing.attempts + 1)
    if not taken:
        return None
    existing.refresh_from_db()
    return existing


def _link_revoked(participant, timepoint) -> bool:
    latest = m.VisitLink.objects.filter(participant=participant, timepoint=timepoint).order_by("-created_at").first()
    return latest is not None and latest.revoked_at is not None and latest.revoked_reason == recording.REVOKED_BY_STAFF


def send_due(study: m.Study, *, today: date | None = None, connection=None) -> SendSummary:
    """Send the invitations and reminders due today for one study (module docstring: once, privately).

    Parameters
    ----------
    study : Study
    today : date, optional
        Default: today in the site's time zone.
    connection : optional
        A Django email connection (default: ``get_connection()``, the settings' backend).

    Returns
    -------
    SendSummary

    Raises
    ------
    InvitationsNotConfigured
        When the protocol sends invitations but ``ALLIANCE_SITE_URL`` is not set.
    """
    protocol = study_protocol(study)
    summary = SendSummary(study.name, enabled=protocol.invitations.enabled)
    if not protocol.invitations.enabled:
        return summary
    base = site_url()
    today = today or timezone.localdate()
    participants = list(m.Participant.objects.filter(study=study, enrolled_on__isnull=False)
                        .select_related("arm", "study"))
    timelines = participant_timelines(participants, today)
    timepoints = {t.code: t for t in study.timepoints.all()}
    known: dict[tuple[int, int, int], m.Notification] = {
        (n.participant_id, n.timepoint_id, n.number): n
        for n in m.Notification.objects.filter(participant__study=study)}
    connection = connection or get_connection()
    for participant in participants:
        rows = timelines[participant.pk]["rows"]
        by_id = {row["timepoint"]: row for row in rows}
        pending = [row["timepoint"] for row in rows if _pending(protocol, row)]
        dosed = dosing_dates(protocol, timelines[participant.pk]["dosing_sessions"])
        for message in due_messages(protocol, rows, today, pending, dosed):
            timepoint = timepoints[message.timepoint]
            if known.get((participant.pk, timepoint.pk, message.number)) is not None and \
                    known[(participant.pk, timepoint.pk, message.number)].status != m.Notification.Status.FAILED:
                continue
            log = AuditLog(actor=ACTOR, study=study)
            for number in message.skipped:
                if (participant.pk, timepoint.pk, number) not in known:
                    _skip(participant, timepoint, number, "invitation" if number == 0 else "reminder",
                          message.due_on, "superseded by a later message (the sender did not run that day)",
                          log, summary)
            address = participant_email(protocol, participant)
            reason = ("the participant opted out of emails" if participant.email_opt_out is not None
                      else "no valid email address among the participant's identifiers" if address is None
                      else "the visit's link was revoked by staff" if _link_revoked(participant, timepoint)
                      else None)
            if reason is not None:
                _skip(participant, timepoint, message.number, message.kind, message.due_on, reason, log, summary)
                log.write()
                continue
            _send_one(participant, timepoint, message, known.get((participant.pk, timepoint.pk, message.number)),
                      address, base, protocol.invitations.subject, by_id[message.timepoint], log, connection,
                      summary)
    return summary


def _send_one(participant, timepoint, message: DueMessage, existing, address: str, base: str, subject: str,
              row: dict, log: AuditLog, connection, summary: SendSummary) -> None:
    with transaction.atomic():
        note = _claim(participant, timepoint, message, existing)
        if note is None:
            return
        origin = m.VisitLink.Origin.INVITATION if message.number == 0 else m.VisitLink.Origin.REMINDER
        token, link = recording.create_visit_link(participant, timepoint, expires_at=window_close_at(row["window_end"]),
                                                  log=log, origin=origin)
        note.link = link
        note.save(update_fields=["link"])
        log.created(note, {"participant_id": participant.participant_id, "timepoint": timepoint.code,
                           "kind": note.kind, "number": note.number, "status": "sending", "attempt": note.attempts},
                    label=_label(note))
        log.write()
    earlier_sent = m.Notification.objects.filter(participant=participant, timepoint=timepoint,
                                                 status=m.Notification.Status.SENT).exists()
    email = visit_email(participant, timepoint, link_url=base + reverse("capture:visit", kwargs={"token": token}),
                        reminder=earlier_sent or message.number > 0, window_end=row["window_end"], subject=subject)
    email.to = [address]
    email.connection = connection
    try:
        email.send()
    except (smtplib.SMTPException, OSError) as error:
        kind = type(error).__name__
        logger.warning("the %s of participant id %s could not be sent: %s", note.kind, participant.pk, kind)
        status, reason = m.Notification.Status.FAILED, f"the mail server did not take it ({kind})"
        summary.failed += 1
    else:
        status, reason = m.Notification.Status.SENT, ""
        summary.sent += 1
    with transaction.atomic():
        note.status, note.reason = status, reason
        note.sent_at = timezone.now() if status == m.Notification.Status.SENT else None
        note.save(update_fields=["status", "reason", "sent_at"])
        log = AuditLog(actor=ACTOR, study=participant.study)
        log.changed(note, {"status": "sending"}, {"status": status, "reason": reason}, label=_label(note))
        if status == m.Notification.Status.FAILED:
            # The link of a message that did not go out must not stay usable by whoever holds the row.
            recording.revoke_visit_link(link, log, None, reason="its email was not sent")
        log.write()


def send_due_every_study(*, study_name: str | None = None, today: date | None = None) -> list[SendSummary]:
    """:func:`send_due` for every study (or one), each study on its own; the summaries in name order.

    Raises
    ------
    InvitationsNotConfigured
        When a study sends invitations but ``ALLIANCE_SITE_URL`` is not set.
    LookupError
        When ``study_name`` names no study.
    """
    studies = m.Study.objects.order_by("name")
    if study_name is not None:
        studies = studies.filter(name=study_name)
        if not studies.exists():
            raise LookupError(f"no study named {study_name!r}")
    connection = get_connection()
    return [send_due(study, today=today, connection=connection) for study in studies]
