"""Alerts a team can act on (issue 14, item 4): the triage list's filters, bulk acknowledgement with one
note, assignment, the email about an urgent alert, the site's crisis text and the rules' status.

The study is tests/web/webapp.py's ``levin2024``: ``facilitator`` is F1 (P003, P004, P006),
``facilitator2`` is F2 (P002, P004); P001 and P005 have no facilitator.
"""

from __future__ import annotations

import socket
from contextlib import nullcontext
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from alliance import instruments as bank
from alliance.web.audit.log import AuditLog
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture import recording
from alliance.web.capture.queries import study_protocol
from alliance.web.monitor.alerting import assign_alerts, refresh_alerts, study_crisis_text
from alliance.web.monitor.models import Alert

from .webapp import OTHER, OWN, STUDY, client_for

pytestmark = pytest.mark.django_db

LIST = reverse("monitor:alerts", kwargs={"study": STUDY})
ACKNOWLEDGE = reverse("monitor:alerts_acknowledge", kwargs={"study": STUDY})
ASSIGN = reverse("monitor:alerts_assign", kwargs={"study": STUDY})
SETTINGS = reverse("monitor:alert_settings", kwargs={"study": STUDY})
NOTE = "called each participant; safety plans reviewed with the PI"


def make_alerts(study, specs) -> list[Alert]:
    """Stored alerts: each spec is (participant id, rule, timepoint, severity)."""
    out = []
    for pid, rule, timepoint, severity in specs:
        participant = m.Participant.objects.get(study=study, participant_id=pid)
        Alert.objects.filter(participant=participant, rule=rule, timepoint=timepoint).delete()  # raised by the import
        out.append(Alert.objects.create(study=study, participant=participant, rule=rule, rule_type="low_alliance",
                                        timepoint=timepoint, severity=severity, reason=f"{rule} of {pid}"))
    return out


def ten_alerts(study) -> list[Alert]:
    """Ten open alerts of F1's participants (P003, P004, P006) and others, as a demo makes them."""
    timepoints = ["baseline", "prep", "week1", "week4"]
    specs = [(pid, "suicidality", t, "urgent") for pid in ("P003", "P004") for t in timepoints]
    specs += [("P006", "low_alliance", "prep", "warning"), ("P001", "low_alliance", "prep", "warning")]
    return make_alerts(study, specs)


def shown(response) -> list[tuple[str, str, str]]:
    return [(a.participant.participant_id, a.rule, a.timepoint) for a in response.context["alerts"]]


# -- the triage list -------------------------------------------------------------------------------

@pytest.fixture
def triage(web_study, accounts):
    """Alerts in every state: open urgent and warning, acknowledged, resolved, assigned."""
    Alert.objects.filter(study=web_study).delete()  # whatever the import raised: these tests count
    open_urgent, open_warning, other, acked, resolved = make_alerts(web_study, [
        ("P003", "suicidality", "baseline", "urgent"), ("P004", "low_alliance", "prep", "warning"),
        ("P002", "suicidality", "week1", "urgent"), ("P006", "low_alliance", "week4", "warning"),
        ("P003", "overdue_assessment", "week1", "info")])
    acked.acknowledged_at, acked.acknowledged_by, acked.acknowledgement_note = timezone.now(), accounts.admin, "done"
    acked.save()
    resolved.resolved_at = timezone.now()
    resolved.save()
    assign_alerts(web_study, [open_warning.pk], accounts.facilitator, accounts.admin)
    assign_alerts(web_study, [other.pk], accounts.investigator, accounts.admin)
    return {"open_urgent": open_urgent, "open_warning": open_warning, "other": other, "acked": acked,
            "resolved": resolved}


@pytest.mark.parametrize(("query", "expected"), [
    ("", {("P003", "suicidality", "baseline"), ("P004", "low_alliance", "prep"), ("P002", "suicidality", "week1"),
          ("P006", "low_alliance", "week4"), ("P003", "overdue_assessment", "week1")}),
    ("severity=urgent", {("P003", "suicidality", "baseline"), ("P002", "suicidality", "week1")}),
    ("rule=low_alliance", {("P004", "low_alliance", "prep"), ("P006", "low_alliance", "week4")}),
    ("state=open", {("P003", "suicidality", "baseline"), ("P004", "low_alliance", "prep"),
                    ("P002", "suicidality", "week1")}),
    ("state=acknowledged", {("P006", "low_alliance", "week4")}),
    ("state=resolved", {("P003", "overdue_assessment", "week1")}),
    ("assignee=mine", {("P002", "suicidality", "week1")}),          # the investigator's
    ("assignee=none&state=open", {("P003", "suicidality", "baseline")}),
    ("participant=P003", {("P003", "suicidality", "baseline"), ("P003", "overdue_assessment", "week1")}),
    ("severity=urgent&participant=P002", {("P002", "suicidality", "week1")}),
    ("severity=nonsense", None),                                     # an unknown value filters nothing
])
def test_the_list_filters_by_get_parameters(triage, accounts, client, query, expected):
    client_for(client, accounts, "investigator")
    response = client.get(f"{LIST}?{query}")
    assert response.status_code == 200
    got = {a for a in shown(response) if a[2] != "pending"}
    if expected is None:
        assert response.context["form"].errors["severity"]
        assert len(got) == 5
    else:
        assert got == expected


def test_the_list_filters_by_a_named_assignee_and_counts_open_alerts_per_severity(triage, accounts, client):
    client_for(client, accounts, "investigator")
    response = client.get(f"{LIST}?assignee={accounts.facilitator.pk}")
    assert shown(response) == [("P004", "low_alliance", "prep")]
    counts = client.get(f"{LIST}?state=open&severity=urgent").context["severity_counts"]
    # Open, whatever the severity filter: two urgent, one warning (P006's is acknowledged), no info.
    assert counts["urgent"] == 2 and counts["warning"] == 1
    html = client.get(LIST).content.decode()
    assert 'name="severity"' in html and 'method="get"' in html  # a plain form


def test_a_facilitator_lists_only_their_participants_and_cannot_name_another(triage, accounts, client):
    client_for(client, accounts, "facilitator")
    response = client.get(LIST)
    assert {pid for pid, _, _ in shown(response)} <= {"P003", "P004", "P006"}
    response = client.get(f"{LIST}?participant={OTHER}")
    assert response.context["form"].errors["participant"]
    assert OTHER not in {pid for pid, _, _ in shown(response)}


def test_the_number_of_queries_does_not_grow_with_the_alerts(web_study, accounts, client):
    client_for(client, accounts, "investigator")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"{LIST}?state=open").status_code == 200
        return len(captured)

    make_alerts(web_study, [("P003", "suicidality", "baseline", "urgent")])
    few = queries()
    many = make_alerts(web_study, [(pid, rule, t, "warning") for pid in ("P001", "P002", "P004", "P006")
                                   for rule in ("low_alliance", "alliance_drop")
                                   for t in ("prep", "week1", "week4")])
    assign_alerts(web_study, [a.pk for a in many], accounts.admin, accounts.admin)
    assert queries() == few


def test_the_list_is_paginated(web_study, accounts, client):
    make_alerts(web_study, [(pid, f"rule_{k}", "prep", "warning") for pid in ("P001", "P002", "P003")
                            for k in range(20)])
    client_for(client, accounts, "admin")
    first = client.get(f"{LIST}?state=open&severity=warning")
    assert len(first.context["alerts"]) == 50 and first.context["page"].paginator.num_pages == 2
    second = client.get(f"{LIST}?state=open&severity=warning&page=2")
    assert len(second.context["alerts"]) == first.context["n_shown"] - 50
    assert "state=open&amp;severity=warning&amp;page=2" in first.content.decode()  # the filters are kept


# -- bulk acknowledgement ----------------------------------------------------------------------------

def test_bulk_acknowledge_of_ten_alerts_with_one_note_writes_ten_audit_events(web_study, accounts, client):
    alerts = ten_alerts(web_study)
    client_for(client, accounts, "investigator")
    response = client.post(ACKNOWLEDGE, {"alert": [a.pk for a in alerts], "note": NOTE, "next": f"{LIST}?state=open"})
    assert response.status_code == 302 and response["Location"] == f"{LIST}?state=open"
    for alert in alerts:
        alert.refresh_from_db()
        assert alert.acknowledged_by == accounts.investigator and alert.acknowledgement_note == NOTE
    events = AuditEvent.objects.filter(model="monitor.alert", action="change", object_id__in=[str(a.pk) for a in alerts])
    assert events.count() == 10
    assert {e.new["acknowledgement_note"] for e in events} == {NOTE}
    assert {e.actor for e in events} == {"user:investigator"} and {e.user_id for e in events} == {accounts.investigator.pk}
    assert len({e.at for e in events}) == 1  # one unit of work
    page = client.get(response["Location"])
    assert "10 alerts acknowledged." in page.content.decode()


def test_bulk_acknowledge_needs_a_note_and_changes_nothing_without_one(web_study, accounts, client):
    alerts = ten_alerts(web_study)[:3]
    client_for(client, accounts, "admin")
    response = client.post(ACKNOWLEDGE, {"alert": [a.pk for a in alerts], "note": "  "}, follow=True)
    assert "write a note saying what was done" in response.content.decode()
    assert not Alert.objects.filter(pk__in=[a.pk for a in alerts], acknowledged_at__isnull=False).exists()


def test_a_monitors_bulk_post_is_refused(web_study, accounts, client):
    alerts = ten_alerts(web_study)
    client_for(client, accounts, "monitor")
    before = AuditEvent.objects.count()
    assert client.post(ACKNOWLEDGE, {"alert": [a.pk for a in alerts], "note": NOTE}).status_code == 403
    assert client.post(ASSIGN, {"alert": [a.pk for a in alerts], "assignee": accounts.admin.pk}).status_code == 403
    assert not Alert.objects.filter(acknowledged_at__isnull=False).exists()
    assert not Alert.objects.filter(assigned_to__isnull=False).exists()
    assert AuditEvent.objects.count() == before
    # Nor is the list offering them the form.
    assert "Acknowledge selected" not in client.get(LIST).content.decode()


def test_a_facilitator_cannot_acknowledge_another_facilitators_participants_alert(web_study, accounts, client):
    own, other = make_alerts(web_study, [(OWN, "suicidality", "week1", "urgent"), (OTHER, "suicidality", "week1", "urgent")])
    client_for(client, accounts, "facilitator")
    response = client.post(ACKNOWLEDGE, {"alert": [own.pk, other.pk], "note": NOTE}, follow=True)
    own.refresh_from_db()
    other.refresh_from_db()
    assert own.acknowledged_by == accounts.facilitator
    assert other.acknowledged_at is None
    assert not AuditEvent.objects.filter(model="monitor.alert", object_id=str(other.pk), action="change").exists()
    html = response.content.decode()
    assert "1 alert acknowledged." in html
    assert "1 alert was not acknowledged: it is not an alert of a participant you" in html


def test_already_closed_alerts_are_counted_not_acknowledged_again(web_study, accounts, client):
    first, second = ten_alerts(web_study)[:2]
    client_for(client, accounts, "admin")
    client.post(ACKNOWLEDGE, {"alert": [first.pk], "note": "first"})
    response = client.post(ACKNOWLEDGE, {"alert": [first.pk, second.pk], "note": "second"}, follow=True)
    first.refresh_from_db()
    assert first.acknowledgement_note == "first"
    assert "1 alert was not acknowledged: it was acknowledged or resolved already." in response.content.decode()


# -- assignment -------------------------------------------------------------------------------------

def test_assignment_is_audited_and_bulk(web_study, accounts, client):
    alerts = ten_alerts(web_study)[:8]   # P003 and P004: F1's participants
    client_for(client, accounts, "investigator")
    response = client.post(ASSIGN, {"alert": [a.pk for a in alerts], "assignee": accounts.facilitator.pk}, follow=True)
    assert "8 alerts assigned to facilitator." in response.content.decode()
    for alert in alerts:
        alert.refresh_from_db()
        assert alert.assigned_to == accounts.facilitator and alert.assigned_at is not None
    events = AuditEvent.objects.filter(model="monitor.alert", action="change", object_id__in=[str(a.pk) for a in alerts])
    assert events.count() == 8
    event = events.first()
    assert event.old == {"assigned_to": None, "assigned_at": None}
    assert event.new["assigned_to"] == "facilitator" and event.actor == "user:investigator"
    # The assignee sees them as "mine"; taking the assignment away is audited too.
    client_for(client, accounts, "facilitator")
    assert len(client.get(f"{LIST}?assignee=mine").context["alerts"]) == 8
    client.post(ASSIGN, {"alert": [alerts[0].pk], "assignee": "none"})
    alerts[0].refresh_from_db()
    assert alerts[0].assigned_to is None
    assert AuditEvent.objects.filter(model="monitor.alert", object_id=str(alerts[0].pk), action="change").count() == 2


def test_an_alert_is_assigned_only_to_someone_who_can_act_on_it(web_study, accounts, client):
    own, other = make_alerts(web_study, [(OWN, "suicidality", "week1", "urgent"), (OTHER, "suicidality", "week1", "urgent")])
    client_for(client, accounts, "admin")
    # facilitator (F1) is not P002's facilitator: that one is refused and said.
    response = client.post(ASSIGN, {"alert": [own.pk, other.pk], "assignee": accounts.facilitator.pk}, follow=True)
    own.refresh_from_db()
    other.refresh_from_db()
    assert own.assigned_to == accounts.facilitator and other.assigned_to is None
    assert "1 alert was not assigned" in response.content.decode()
    # A monitor is read-only: nobody can assign them an alert.
    response = client.post(ASSIGN, {"alert": [other.pk], "assignee": accounts.monitor.pk}, follow=True)
    assert "cannot act on alerts of levin2024" in response.content.decode()
    other.refresh_from_db()
    assert other.assigned_to is None


def test_the_participant_dashboard_assigns_one_alert(web_study, accounts, client):
    (alert,) = make_alerts(web_study, [(OWN, "suicidality", "week1", "urgent")])
    client_for(client, accounts, "facilitator")
    url = reverse("monitor:participant", kwargs={"study": STUDY, "participant": OWN})
    page = client.get(url).content.decode()
    assert f'id="assignee-{alert.pk}"' in page
    assert "monitor (" not in page   # monitors are never offered
    response = client.post(ASSIGN, {"alert": alert.pk, "assignee": accounts.investigator.pk, "next": url})
    assert response["Location"] == url
    alert.refresh_from_db()
    assert alert.assigned_to == accounts.investigator
    assert "Assigned to investigator" in client.get(url).content.decode()


# -- email about urgent alerts ---------------------------------------------------------------------

def enrol_and_endorse(study, *, commit_hook) -> m.Participant:
    """P100 (F1's) submits a GRID-HAMD-17 whose suicide item is endorsed: an urgent alert."""
    log = AuditLog(actor="test:setup", study=study)
    participant = recording.enrol(study, participant_id="P100", arm=study.arms.get(code="immediate"),
                                  enrolled_on=timezone.localdate() - timedelta(days=10),
                                  facilitators=[study.facilitators.get(facilitator_id="F1")], log=log)
    log.write()
    definition = bank.get("grid_hamd17")
    with commit_hook(execute=True) if commit_hook else nullcontext(), transaction.atomic():
        log = AuditLog(actor="test:form", study=study)
        administration = recording.open_administration(participant, study.timepoints.get(code="baseline"),
                                                       "grid_hamd17", log)
        recording.submit(administration, definition, {item: 1 for item in definition.item_ids}, log)
        log.write()
    return participant


@pytest.fixture
def facilitator_email(accounts):
    accounts.facilitator.email = "f1@example.org"
    accounts.facilitator.save()
    return "f1@example.org"


def test_an_urgent_alert_sends_one_email_and_a_refresh_sends_none(web_study, accounts, facilitator_email, settings,
                                                                  django_capture_on_commit_callbacks):
    settings.ALLIANCE_SITE_URL = "https://trial.example.org"
    mail.outbox.clear()
    participant = enrol_and_endorse(web_study, commit_hook=django_capture_on_commit_callbacks)
    alert = Alert.objects.get(participant=participant, rule="suicidality")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [facilitator_email] and message.from_email == settings.DEFAULT_FROM_EMAIL
    assert "levin2024" in message.subject and "P100" in message.subject
    assert "An urgent alert was raised in the study levin2024." in message.body
    assert "Participant: P100" in message.body
    dashboard = reverse("monitor:participant", kwargs={"study": STUDY, "participant": "P100"})
    assert f"https://trial.example.org{dashboard}\n" in message.body
    assert alert.action and alert.action in message.body        # the crisis text
    assert study_protocol(web_study).alerts.rule("suicidality").label in message.body
    assert "Person" not in message.body and "answered" not in message.body   # no name, no answers
    alert.refresh_from_db()
    assert alert.notified_at is not None and alert.notification == "sent to 1 facilitator"
    event = AuditEvent.objects.filter(model="monitor.alert", object_id=str(alert.pk), action="change").get()
    assert event.new["notification"] == "sent to 1 facilitator" and facilitator_email not in str(event.new)
    with django_capture_on_commit_callbacks(execute=True):
        refresh_alerts(web_study)
    with django_capture_on_commit_callbacks(execute=True):
        refresh_alerts(web_study)
    assert len(mail.outbox) == 1


def test_a_rolled_back_submission_sends_nothing(web_study, accounts, facilitator_email,
                                                django_capture_on_commit_callbacks):
    mail.outbox.clear()

    class Abort(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(Abort), transaction.atomic():
            enrol_and_endorse(web_study, commit_hook=None)
            assert Alert.objects.filter(participant__participant_id="P100", rule="suicidality").exists()
            raise Abort
    assert callbacks == [] and mail.outbox == []
    assert not Alert.objects.filter(participant__participant_id="P100").exists()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed


def test_the_mail_server_down_stores_the_alert_and_records_the_failure(web_study, accounts, facilitator_email,
                                                                      settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", _closed_port(), False
    settings.EMAIL_TIMEOUT = 2
    participant = enrol_and_endorse(web_study, commit_hook=django_capture_on_commit_callbacks)
    alert = Alert.objects.get(participant=participant, rule="suicidality")
    assert alert.is_open and alert.notified_at is not None
    assert alert.notification.startswith("failed: the mail server did not take it (")
    event = AuditEvent.objects.filter(model="monitor.alert", object_id=str(alert.pk), action="change").get()
    assert event.new["notification"] == alert.notification
    with django_capture_on_commit_callbacks(execute=True):
        refresh_alerts(web_study)   # not tried again: the failure stays on the alert, said on the pages
    alert.refresh_from_db()
    assert alert.notification.startswith("failed")


def test_without_a_facilitators_address_the_alert_says_so(web_study, accounts, client, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    participant = enrol_and_endorse(web_study, commit_hook=django_capture_on_commit_callbacks)
    alert = Alert.objects.get(participant=participant, rule="suicidality")
    assert mail.outbox == [] and alert.notification.startswith("not sent: none of the participant's facilitators")
    client_for(client, accounts, "investigator")
    page = client.get(reverse("monitor:participant", kwargs={"study": STUDY, "participant": "P100"}))
    assert "Email to the facilitators: not sent" in page.content.decode()


# -- the site's crisis text -------------------------------------------------------------------------

def test_the_sites_crisis_text_wins_and_is_shown_on_stored_alerts(web_study, accounts, client,
                                                                  django_capture_on_commit_callbacks):
    protocol_text = study_protocol(web_study).alerts.crisis_text
    assert study_crisis_text(web_study, protocol_text) == protocol_text
    web_study.country = "GB"
    assert "999" in study_crisis_text(web_study, protocol_text)        # the country's number is added
    web_study.crisis_text = "Call Dr Rao on 0161 555 0100; out of hours, 999."
    assert study_crisis_text(web_study, protocol_text) == "Call Dr Rao on 0161 555 0100; out of hours, 999."
    web_study.save()
    participant = enrol_and_endorse(web_study, commit_hook=django_capture_on_commit_callbacks)
    alert = Alert.objects.get(participant=participant, rule="suicidality")
    assert alert.action == "Call Dr Rao on 0161 555 0100; out of hours, 999."


def test_the_crisis_text_is_edited_on_its_page_and_audited(web_study, accounts, client):
    (alert,) = make_alerts(web_study, [(OWN, "suicidality", "week1", "urgent")])
    Alert.objects.filter(pk=alert.pk).update(rule_type="flag", action="In the US, call 988.")
    client_for(client, accounts, "investigator")
    assert client.post(SETTINGS, {"crisis_text": "x", "country": "Britain"}).status_code == 400
    response = client.post(SETTINGS, {"crisis_text": " Call the Manchester team: 0161 555 0100. ", "country": "gb"})
    assert response.status_code == 302
    web_study.refresh_from_db()
    assert (web_study.crisis_text, web_study.country) == ("Call the Manchester team: 0161 555 0100.", "GB")
    event = AuditEvent.objects.filter(model="capture.study", action="change").latest("pk")
    assert event.new == {"crisis_text": "Call the Manchester team: 0161 555 0100.", "country": "GB"}
    assert event.actor == "user:investigator"
    # Alerts stored before show the site's text now, not the protocol's.
    page = client.get(reverse("monitor:participant", kwargs={"study": STUDY, "participant": OWN})).content.decode()
    assert "Call the Manchester team: 0161 555 0100." in page and "call 988" not in page
    client_for(client, accounts, "facilitator")
    assert client.get(SETTINGS).status_code == 403


# -- rule status ------------------------------------------------------------------------------------

def test_the_rules_and_whether_they_are_active_are_shown(web_study, accounts, client):
    client_for(client, accounts, "investigator")
    for url in (LIST, reverse("monitor:study", kwargs={"study": STUDY})):
        response = client.get(url)
        statuses = response.context["rule_statuses"]
        protocol_rules = study_protocol(web_study).alerts.rules
        assert [s.rule_id for s in statuses] == [r.id for r in protocol_rules]
        html = response.content.decode()
        assert "Alert rules of the protocol" in html
        for status in statuses:
            assert status.label in html
            if not status.active:
                assert "Not yet active" in html and escape(status.reason) in html


def test_an_unreachable_mail_server_is_tried_once_for_a_batch_of_urgent_alerts(web_study, accounts, facilitator_email):
    from alliance.web.monitor.notifications import notify_urgent

    class Down:
        tries = 0

        def send_messages(self, messages):
            Down.tries += 1
            raise ConnectionRefusedError("no mail server")

    alerts = make_alerts(web_study, [(OWN, "suicidality", "week1", "urgent"), ("P004", "suicidality", "week1", "urgent")])
    outcomes = notify_urgent([a.pk for a in alerts], connection=Down())
    assert Down.tries == 1
    assert outcomes[alerts[0].pk] == "failed: the mail server did not take it (ConnectionRefusedError)"
    assert outcomes[alerts[1].pk].startswith("failed: the mail server could not be reached (ConnectionRefusedError")
    assert notify_urgent([a.pk for a in alerts], connection=Down()) == {}   # taken once: never again
