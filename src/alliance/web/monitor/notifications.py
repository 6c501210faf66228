"""Email about urgent alerts to the participant's facilitators: once per alert, after the commit.

When :func:`alliance.web.monitor.alerting._evaluate_and_store` stores an alert of severity
``urgent`` (a form submitted, an import, the scheduled refresh), it asks for :func:`notify_urgent`
with ``transaction.on_commit``: a submission that is rolled back stores no alert and sends nothing,
and the mail server is never talked to while the database is locked.

**Once.** One connection serves the alerts of one transaction (an import may store dozens);
when the server cannot be reached, the others of that batch are recorded as failed without
waiting for it again. An alert is stored once (one per rule, participant and timepoint), and before its email
is handed to the mail server the alert's ``notified_at`` is set with a conditional update, so a
second run (a refresh, another process) finds it taken and sends nothing. A message the server
did not take is not tried again: the alert says so (``notification``) on the pages and in the
audit trail, and the alert itself is stored and open whatever the mail server did.

**Private.** The message names the study, the participant's study id (never a name or other
identifier), the rule's title, a link to the participant's dashboard and the crisis text — no
answers. Addresses are read from the facilitators' accounts when sending and are never written to
the audit trail (an SMTP error's text can hold one, so only the error's kind is kept).

Alerts stored before this existed have no ``notified_at`` and are never emailed: a new alert is.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from alliance.monitoring.crisis import crisis_text
from alliance.web.audit.log import AuditLog
from alliance.web.capture.models import FacilitatorAssignment
from alliance.web.capture.queries import study_protocol

from .models import Alert

logger = logging.getLogger(__name__)

ACTOR = "system:alerts"


def facilitator_addresses(alert: Alert) -> list[str]:
    """The email addresses of the alert's participant's facilitators who log in and have one."""
    addresses = (FacilitatorAssignment.objects.filter(participant_id=alert.participant_id,
                                                      facilitator__user__is_active=True)
                 .exclude(facilitator__user__email="").exclude(facilitator__user__isnull=True)
                 .order_by("position").values_list("facilitator__user__email", flat=True))
    return list(dict.fromkeys(addresses))


def urgent_email(alert: Alert) -> EmailMessage:
    """The message about one urgent alert (the recipients are added by the caller)."""
    study = alert.study
    protocol = study_protocol(study)
    titles = {rule.id: rule.label for rule in protocol.alerts.rules}
    path = reverse("monitor:participant", kwargs={"study": study.name,
                                                  "participant": alert.participant.participant_id})
    base = getattr(settings, "ALLIANCE_SITE_URL", "")
    context = {"study": study.name, "participant": alert.participant.participant_id,
               "title": titles.get(alert.rule, alert.rule), "timepoint": alert.timepoint,
               "link": base + path, "site_url_missing": not base,
               "crisis_text": alert.action or crisis_text(protocol.alerts.crisis_text, study.crisis_text, study.country)}
    body = render_to_string("monitor/urgent_alert_email.txt", context)
    subject = f"Urgent alert in {study.name}: participant {alert.participant.participant_id}"
    return EmailMessage(subject, body, from_email=settings.DEFAULT_FROM_EMAIL)


def notify_urgent(alert_ids: Iterable[int], connection=None) -> dict[int, str]:
    """Send the email of each urgent alert not emailed yet; record what became of it.

    Parameters
    ----------
    alert_ids : iterable of int
        Stored alerts (those not urgent, or already taken by another run, are left alone).
    connection : optional
        A Django email connection (default: the settings' backend).

    Returns
    -------
    dict
        Alert id → what became of its email (the ``notification`` it was given), for the alerts
        this call took. Never raises on a mail failure: the failure is the outcome.
    """
    out = {}
    unreachable = None   # a mail server that could not be reached is not tried again for every alert
    for pk in alert_ids:
        taken = Alert.objects.filter(pk=pk, severity=Alert.Severity.URGENT, notified_at=None).update(
            notified_at=timezone.now())
        if not taken:
            continue
        alert = Alert.objects.select_related("participant", "study").get(pk=pk)
        addresses = facilitator_addresses(alert)
        if not addresses:
            outcome = "not sent: none of the participant's facilitators has an account with an email address"
        elif unreachable is not None:
            outcome = f"failed: the mail server could not be reached ({unreachable}; tried for an alert before)"
        else:
            message = urgent_email(alert)
            message.to = addresses
            try:
                connection = connection or get_connection()
                message.connection = connection
                message.send()
            except (smtplib.SMTPException, OSError) as error:
                kind = type(error).__name__
                logger.warning("the email about urgent alert %s could not be sent: %s", pk, kind)
                outcome = f"failed: the mail server did not take it ({kind})"
                if isinstance(error, OSError | smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
                    unreachable = kind
            else:
                outcome = f"sent to {len(addresses)} facilitator{'s' if len(addresses) != 1 else ''}"
        Alert.objects.filter(pk=pk).update(notification=outcome[:300])
        log = AuditLog(actor=ACTOR, study=alert.study)
        log.changed(alert, {"notified_at": None, "notification": ""},
                    {"notified_at": alert.notified_at.isoformat(), "notification": outcome},
                    label=f"{alert.participant.participant_id}/{alert.timepoint}/{alert.rule}")
        log.write()
        out[pk] = outcome
    return out
