"""Email about urgent alerts to the participant's facilitators (an SAE's to the investigators too): once, after the commit.

**Who.** The participant's facilitators whose accounts are active and have an email address. An
urgent alert of a rule type that is the investigators' business too (``to_investigators`` of
:data:`alliance.monitoring.alerts.RULE_TYPES`: a serious adverse event, which the investigator
reports to the sponsor at once, ICH E6(R2) 4.11.1) goes also to the study's investigators and
admins (their ``StudyMembership``; active accounts with an address) — not to superusers who are no
member of the study, whose account is for running the site. One message, each address once; what
became of it names how many of each were sent it ("sent to 1 facilitator and 2 investigators").

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
identifier), the rule's title, what the alert is about in coded words only, a link to the
participant's dashboard and what to do (the crisis text of a suicidality alert, the reporting
duty of an SAE) — no answers and no free text someone typed. What it is about: the timepoint; for a
serious adverse event its id and CTCAE grade (``adverse event AE-004, CTCAE grade 4``), never its
term, which can hold identifying detail ("fell at her daughter's wedding"); for a vital sign the
measures and the session; for a washout nothing (the medication's name is typed text). Addresses
are read from the accounts when sending and are never written to the audit trail (an SMTP error's
text can hold one, so only the error's kind is kept).

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

from alliance.monitoring import alerts as rules
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


INVESTIGATOR_ROLES = ("investigator", "admin")


def investigator_addresses(alert: Alert) -> list[tuple[str, str]]:
    """``(role, address)`` of the study's investigators and admins (members) who log in and have an address."""
    from alliance.web.accounts.models import StudyMembership

    return list(StudyMembership.objects.filter(study_id=alert.study_id, role__in=INVESTIGATOR_ROLES,
                                               user__is_active=True)
                .exclude(user__email="").order_by("role", "user__username").values_list("role", "user__email"))


def recipients(alert: Alert) -> dict[str, str]:
    """Address → why it is sent the email (``facilitator``, ``investigator`` or ``admin``), each address once.

    The participant's facilitators; for a rule type with ``to_investigators`` the study's
    investigators and admins too. An address that is a facilitator's and an investigator's
    counts as the facilitator's.
    """
    out = dict.fromkeys(facilitator_addresses(alert), "facilitator")
    if _to_investigators(alert):
        for role, address in investigator_addresses(alert):
            out.setdefault(address, role)
    return out


def _to_investigators(alert: Alert) -> bool:
    kind = rules.RULE_TYPES.get(alert.rule_type)
    return kind is not None and kind.to_investigators


def _about(alert: Alert, protocol) -> str:
    """What the email says the alert is about: coded words and ids only (module docstring)."""
    if alert.timepoint in protocol.timepoint_ids:
        return alert.timepoint
    if alert.rule_type == "serious_adverse_event":
        grade = None if alert.value is None else int(alert.value)
        return alert.measure + (f", CTCAE grade {grade}" if grade in rules.CTCAE_GRADES else "")
    if alert.rule_type == "vital_sign":
        return alert.measure
    return ""


def urgent_email(alert: Alert) -> EmailMessage:
    """The message about one urgent alert (the recipients are added by the caller)."""
    study = alert.study
    protocol = study_protocol(study)
    titles = {rule.id: rule.label for rule in protocol.alerts.rules}
    path = reverse("monitor:participant", kwargs={"study": study.name,
                                                  "participant": alert.participant.participant_id})
    base = getattr(settings, "ALLIANCE_SITE_URL", "")
    # The crisis text is for suicidality (flag) alerts only; others carry their own action or none.
    fallback = crisis_text(protocol.alerts.crisis_text, study.crisis_text, study.country) \
        if alert.rule_type == "flag" else ""
    context = {"study": study.name, "participant": alert.participant.participant_id,
               "title": titles.get(alert.rule, alert.rule), "timepoint": _about(alert, protocol),
               "link": base + path, "site_url_missing": not base,
               "to_investigators": _to_investigators(alert),
               "crisis_text": alert.action or fallback}
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
        sent_to = recipients(alert)
        addresses = list(sent_to)
        if not addresses:
            outcome = ("not sent: neither the participant's facilitators nor the study's investigators and admins "
                       "have an account with an email address" if _to_investigators(alert) else
                       "not sent: none of the participant's facilitators has an account with an email address")
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
                outcome = f"sent to {_counted(sent_to)}"
        Alert.objects.filter(pk=pk).update(notification=outcome[:300])
        log = AuditLog(actor=ACTOR, study=alert.study)
        log.changed(alert, {"notified_at": None, "notification": ""},
                    {"notified_at": alert.notified_at.isoformat(), "notification": outcome},
                    label=f"{alert.participant.participant_id}/{alert.timepoint}/{alert.rule}")
        log.write()
        out[pk] = outcome
    return out


def _counted(sent_to: dict[str, str]) -> str:
    """``1 facilitator``, ``2 facilitators and 1 investigator``, ``1 facilitator, 1 investigator and 1 admin``."""
    parts = []
    for role in ("facilitator", "investigator", "admin"):
        n = sum(r == role for r in sent_to.values())
        if n:
            parts.append(f"{n} {role}{'s' if n != 1 else ''}")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
