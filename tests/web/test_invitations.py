"""Invitation and reminder emails (capture/invitations.py): when, once, privately, and opting out."""

from __future__ import annotations

import logging
import re
import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from typer.testing import CliRunner

from alliance.cli import app
from alliance.protocol import default_protocol
from alliance.web.audit.log import AuditLog
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import invitations, recording
from alliance.web.capture import models as m

pytestmark = pytest.mark.django_db

SITE = "https://trial.example.org"
ADDRESS = "ana.participant@example.org"
# prep is planned the day before session 1 (enrolment + 21 days), its window opens 3 days before.
PREP_OPENS_AFTER = 17


@pytest.fixture
def site(settings):
    settings.ALLIANCE_SITE_URL = SITE
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings


@pytest.fixture
def study(site, django_user_model):
    return recording.create_study("trial", default_protocol(), user=django_user_model.objects.create(username="setup"))


def enrol(study, pid="P1", *, days_ago=PREP_OPENS_AFTER, email=ADDRESS, opted_out=False):
    log = AuditLog(actor="test:setup", study=study)
    participant = recording.enrol(study, participant_id=pid, arm=study.arms.get(code="immediate"),
                                  enrolled_on=timezone.localdate() - timedelta(days=days_ago),
                                  identifiers={"email": email} if email else {}, log=log)
    if opted_out:
        recording.set_email_opt_out(participant, True, log)
    log.write()
    return participant


def send(study, days_later=0):
    return invitations.send_due(study, today=timezone.localdate() + timedelta(days=days_later))


def link_path(message) -> str:
    (url,) = re.findall(rf"{re.escape(SITE)}(/v/[^\s]+/)", message.body)
    return url


def test_the_invitation_goes_out_once_with_a_working_link(study, client, caplog):
    participant = enrol(study)
    caplog.set_level(logging.DEBUG)
    first = send(study)
    again = send(study)
    assert (first.sent, again.sent) == (1, 0) and len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [ADDRESS] and message.subject == "Your questionnaires"
    assert '"Final preparation session"' in message.body
    # neutral: no study, condition or drug named where others may read it
    assert not re.search(r"psilocybin|depress|trial|levin", message.body.replace(SITE, ""), re.I)
    note = m.Notification.objects.get()
    assert (note.kind, note.number, note.status, note.timepoint.code) == ("invitation", 0, "sent", "prep")
    # the link opens the visit; it expires when prep's window closes (the planned day, its end)
    page = client.get(link_path(message))
    assert page.status_code == 200 and "WAI-SR" in page.content.decode()
    link = note.link
    planned = participant.enrolled_on + timedelta(days=20)
    assert timezone.localtime(link.expires_at) == timezone.make_aware(
        timezone.datetime.combine(planned + timedelta(days=1), timezone.datetime.min.time()))
    # the sender's audit events (the link, the message) and its log lines never hold the address
    events = AuditEvent.objects.filter(actor=invitations.ACTOR)
    assert {e.model for e in events} == {"capture.visitlink", "capture.notification"}
    assert not any(ADDRESS in repr((e.old, e.new, e.object_repr)) for e in events)
    assert ADDRESS not in caplog.text


def test_reminders_on_their_days_and_a_late_run_sends_only_the_latest(study):
    enrol(study, "P1")
    enrol(study, "P2", days_ago=PREP_OPENS_AFTER + 2)   # two days into the window, never invited
    summary = send(study)
    assert summary.sent == 2 and summary.skipped == 2   # P2: invitation and reminder 1 superseded by reminder 2
    got = {(n.participant.participant_id, n.number): n.status for n in m.Notification.objects.all()}
    assert got == {("P1", 0): "sent", ("P2", 0): "skipped", ("P2", 1): "skipped", ("P2", 2): "sent"}
    subjects = sorted(e.subject for e in mail.outbox)
    assert subjects == ["Reminder: Your questionnaires", "Your questionnaires"]
    assert send(study, 1).sent == 1   # P1's reminder 1; P2 has had all
    assert send(study, 1).sent == 0
    # after prep's window closed (day 3): nothing; not even for post_session1, whose window would
    # be open on day 4 if session 1 had been given on its planned day: it has not been recorded
    assert send(study, 4).sent == 0


def test_nothing_for_a_completed_visit_an_opt_out_or_a_missing_address(study):
    done = enrol(study, "P1")
    enrol(study, "P2", opted_out=True)
    enrol(study, "P3", email="")
    enrol(study, "P4", email="not-an-address")
    log = AuditLog(actor="test:setup", study=study)
    administration = recording.open_administration(done, study.timepoints.get(code="prep"), "wai_sr", log)
    from alliance import instruments as bank
    recording.submit(administration, bank.get("wai_sr"), {f"wai_sr_{k}": 4.0 for k in range(1, 13)}, log)
    log.write()
    summary = send(study)
    assert summary.sent == 0 and mail.outbox == []
    reasons = {n.participant.participant_id: n.reason for n in m.Notification.objects.all()}
    assert reasons == {"P2": "the participant opted out of emails",
                       "P3": "no valid email address among the participant's identifiers",
                       "P4": "no valid email address among the participant's identifiers"}


def test_the_opt_out_link_in_the_email_stops_the_reminders(study, client):
    participant = enrol(study)
    send(study)
    (opt_out,) = re.findall(rf"{re.escape(SITE)}(/o/[^\s]+/)", mail.outbox[0].body)
    page = client.get(opt_out)
    assert page.status_code == 200 and b"Stop the emails" in page.content
    participant.refresh_from_db()
    assert participant.email_opt_out is None          # a GET changes nothing
    assert client.post(opt_out).status_code == 200
    participant.refresh_from_db()
    assert participant.email_opt_out is not None
    assert AuditEvent.objects.filter(actor=f"opt-out-link:{participant.pk}", action="change").exists()
    assert send(study, 1).sent == 0 and len(mail.outbox) == 1


class Refusing:
    """An email connection whose server refuses every message."""

    def send_messages(self, messages):
        raise smtplib.SMTPRecipientsRefused({"x": (550, b"no")})


def test_a_failed_send_is_tried_again_at_most_three_times_and_its_link_revoked(study):
    enrol(study)
    for attempt in range(1, 4):
        summary = invitations.send_due(study, connection=Refusing())
        note = m.Notification.objects.get()
        assert (summary.failed, note.status, note.attempts) == (1, "failed", attempt)
        assert note.reason == "the mail server did not take it (SMTPRecipientsRefused)"
        assert note.link.revoked_at is not None   # nobody can use the link of an email never sent
    assert invitations.send_due(study, connection=Refusing()).failed == 0   # gave up
    assert send(study).sent == 0 and mail.outbox == []


def test_a_send_interrupted_after_its_claim_is_never_repeated(study):
    participant = enrol(study)
    m.Notification.objects.create(participant=participant, timepoint=study.timepoints.get(code="prep"),
                                  kind="invitation", number=0, due_on=timezone.localdate(), status="sending",
                                  attempts=1)
    assert send(study).sent == 0 and mail.outbox == []


def test_a_link_revoked_by_staff_stops_the_reminders(study):
    enrol(study)
    send(study)
    note = m.Notification.objects.get()
    log = AuditLog(actor="test", study=study)
    recording.revoke_visit_link(note.link, log, None)
    log.write()
    summary = send(study, 1)
    assert summary.sent == 0 and summary.reasons == {"the visit's link was revoked by staff": 1}


def test_without_the_site_address_nothing_is_sent_and_the_command_says_why(study, settings):
    enrol(study)
    settings.ALLIANCE_SITE_URL = ""
    with pytest.raises(invitations.InvitationsNotConfigured, match="ALLIANCE_SITE_URL"):
        send(study)
    assert not m.Notification.objects.exists()


def test_the_command_sends_and_prints_the_counts(study, monkeypatch):
    enrol(study)
    monkeypatch.setattr("alliance.cli._storage", lambda **kw: None)
    result = CliRunner().invoke(app, ["invitations", "send", "--study", "trial"])
    assert result.exit_code == 0, result.output
    assert "trial: 1 sent, 0 failed, 0 skipped" in result.output and len(mail.outbox) == 1
    again = CliRunner().invoke(app, ["invitations", "send"])
    assert "trial: 0 sent, 0 failed, 0 skipped" in again.output
    missing = CliRunner().invoke(app, ["invitations", "send", "--study", "nope"])
    assert missing.exit_code == 1 and "no study named 'nope'" in missing.output


def test_the_links_page_shows_the_emails_and_staff_send_a_link_again(study, client, django_user_model):
    participant = enrol(study)
    send(study)
    admin = django_user_model.objects.create_superuser("boss", password="x" * 20)
    client.force_login(admin)
    page = client.get(reverse("capture:links", kwargs={"study": "trial"}))
    text = page.content.decode()
    assert page.status_code == 200 and "invitation: sent" in text and "P1" in text
    old = m.VisitLink.objects.get()
    response = client.post(reverse("capture:link_resend", kwargs={"study": "trial", "kind": "visit", "pk": old.pk}))
    assert response.status_code == 302 and len(mail.outbox) == 2
    old.refresh_from_db()
    assert old.revoked_reason == "replaced by a link sent again"
    assert client.get(link_path(mail.outbox[0])).status_code == 410
    assert client.get(link_path(mail.outbox[1])).status_code == 200
    new = m.VisitLink.objects.exclude(pk=old.pk).get()
    assert (new.origin, new.participant) == ("resend", participant)
    assert AuditEvent.objects.filter(action="export", model="capture.visitlink").count() == 1
