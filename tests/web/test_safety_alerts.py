"""Alerts about the safety record in the web app: a serious adverse event, a vital sign, a washout.

The capture app sends ``safety_recorded`` inside the transaction that stored the record (its views
do; here the tests store the row and send the signal as they will). The study is
tests/web/webapp.py's ``levin2024``; P100 is enrolled here, with F1 (``facilitator``) as its
facilitator. The default protocol's thresholds: warning 160/100 mmHg, urgent 180/120 mmHg.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from alliance.protocol import parse_protocol
from alliance.web.accounts.members import set_membership
from alliance.web.audit.log import AuditLog
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture import recording, signals
from alliance.web.capture.queries import study_protocol
from alliance.web.capture.storage import import_study
from alliance.web.monitor.alerting import refresh_alerts
from alliance.web.monitor.models import Alert

from .conftest import make_study
from .webapp import STUDY, client_for

pytestmark = pytest.mark.django_db

TERM = "Fell at her daughter's wedding in Leeds, admitted"   # free text: never in an email


def enrol(study) -> m.Participant:
    log = AuditLog(actor="test:setup", study=study)
    participant = recording.enrol(study, participant_id="P100", arm=study.arms.get(code="immediate"),
                                  enrolled_on=timezone.localdate() - timedelta(days=30),
                                  facilitators=[study.facilitators.get(facilitator_id="F1")], log=log)
    log.write()
    return participant


def record(model, participant, **fields):
    """Store a safety record and send ``safety_recorded`` in one transaction, as the capture views do.

    (P100, enrolled 30 days ago, also has late-assessment alerts: the tests look at the safety rules'.)
    """
    with transaction.atomic():
        row, _ = model.objects.update_or_create(participant=participant, **fields.pop("key"), defaults=fields)
        signals.safety_recorded.send(sender=model, participant=participant, record=row)
    return row


def serious_event(participant, ae_id="AE-100", onset_days_ago=2, **fields):
    onset = (timezone.localdate() - timedelta(days=onset_days_ago)).isoformat()
    values = {"term": TERM, "onset": onset, "severity": 4, "serious": True, "seriousness": "life_threatening",
              "relatedness": "possible", "expected": False, "action": "none", "outcome": "recovering", **fields}
    return record(m.AdverseEvent, participant, key={"ae_id": ae_id}, **values)


@pytest.fixture
def emails(web_study, accounts):
    """Addresses on every account; who of them is emailed about an SAE is what the tests check."""
    model = get_user_model()
    log = AuditLog(actor="test:setup", study=web_study)
    for user in (accounts.facilitator, accounts.facilitator2, accounts.investigator, accounts.monitor, accounts.admin):
        user.email = f"{user.username}@example.org"
        user.save()
    study_admin = model.objects.create(username="study-admin", email="study-admin@example.org")
    set_membership(study_admin, web_study, "admin", log)
    gone = model.objects.create(username="former-investigator", email="former@example.org", is_active=False)
    set_membership(gone, web_study, "investigator", log)
    log.write()
    return {"facilitator": "facilitator@example.org", "investigator": "investigator@example.org",
            "admin": "study-admin@example.org"}


# -- serious adverse events --------------------------------------------------------------------------

def test_a_serious_adverse_event_stores_one_urgent_alert_and_emails_facilitator_and_investigators_once(
        web_study, accounts, emails, settings, django_capture_on_commit_callbacks):
    settings.ALLIANCE_SITE_URL = "https://trial.example.org"
    participant = enrol(web_study)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        serious_event(participant)
    (alert,) = Alert.objects.filter(participant=participant, rule="serious_adverse_event")
    assert (alert.rule, alert.rule_type, alert.timepoint, alert.severity, alert.value) == (
        "serious_adverse_event", "serious_adverse_event", "ae:AE-100", "urgent", 4.0)
    assert alert.reason.startswith(f"Serious adverse event AE-100: {TERM}, CTCAE grade 4 (life-threatening), onset ")
    assert "ICH E2A" in alert.action
    (message,) = mail.outbox
    # The participant's facilitator, the study's investigator and its admin member; not the
    # monitor, not the other facilitator, not the inactive investigator, not the superuser.
    assert sorted(message.to) == sorted(emails.values())
    assert "Alert: Serious adverse event (adverse event AE-100, CTCAE grade 4)" in message.body
    assert "ICH E2A" in message.body and "as an investigator or admin of the study" in message.body
    assert "Leeds" not in message.body and "wedding" not in message.body and "Leeds" not in message.subject
    assert study_protocol(web_study).alerts.crisis_text not in message.body   # the suicidality text is not for an SAE
    alert.refresh_from_db()
    assert alert.notification == "sent to 1 facilitator, 1 investigator and 1 admin"
    event = AuditEvent.objects.get(model="monitor.alert", object_id=str(alert.pk), action="change")
    assert event.new["notification"] == alert.notification and "@" not in str(event.new)
    # The record sent again (changed, say its outcome), a refresh: the same alert, no second email.
    with django_capture_on_commit_callbacks(execute=True):
        serious_event(participant, outcome="recovered")
    with django_capture_on_commit_callbacks(execute=True):
        refresh_alerts(web_study)
    assert Alert.objects.filter(participant=participant, rule="serious_adverse_event").count() == 1
    assert len(mail.outbox) == 1


def test_two_serious_events_are_two_alerts_and_a_non_serious_one_none(web_study, accounts,
                                                                       django_capture_on_commit_callbacks):
    participant = enrol(web_study)
    with django_capture_on_commit_callbacks(execute=True):
        serious_event(participant, "AE-100")
        serious_event(participant, "AE-101", serious=False, seriousness="", severity=3)
        serious_event(participant, "AE-102", seriousness="hospitalisation", severity=3)
    assert sorted(Alert.objects.filter(participant=participant, rule="serious_adverse_event")
                  .values_list("timepoint", flat=True)) == ["ae:AE-100", "ae:AE-102"]
    # Made serious later: its alert is raised then.
    with django_capture_on_commit_callbacks(execute=True):
        serious_event(participant, "AE-101", seriousness="hospitalisation", severity=3)
    assert Alert.objects.filter(participant=participant, timepoint="ae:AE-101", severity="urgent").exists()


def test_an_sae_entered_weeks_after_its_onset_is_raised_but_an_old_one_found_by_a_refresh_is_not(
        web_study, accounts, django_capture_on_commit_callbacks):
    participant = enrol(web_study)
    onset = (timezone.localdate() - timedelta(days=45)).isoformat()   # historical_after_days is 30
    m.AdverseEvent.objects.create(participant=participant, ae_id="AE-OLD", term="x", onset=onset, severity=3,
                                  serious=True, seriousness="hospitalisation")
    with django_capture_on_commit_callbacks(execute=True):
        refresh_alerts(web_study)     # what an import of old records does: historical, not raised
    assert not Alert.objects.filter(participant=participant, rule="serious_adverse_event").exists()
    with django_capture_on_commit_callbacks(execute=True):
        serious_event(participant, "AE-LATE", onset_days_ago=45)   # entered today: news today
    assert list(Alert.objects.filter(participant=participant, rule="serious_adverse_event")
                .values_list("timepoint", flat=True)) == ["ae:AE-LATE"]


def test_an_imported_serious_event_raises_its_alert(db, accounts):
    study = make_study()
    recent = (timezone.localdate() - timedelta(days=3)).isoformat()
    events = pd.DataFrame([
        {"participant_id": "P002", "ae_id": "AE-1", "term": "Headache", "onset": recent, "severity": "1",
         "serious": "no"},
        {"participant_id": "P003", "ae_id": "AE-2", "term": "Admitted", "onset": recent, "severity": "3",
         "serious": "yes", "seriousness": "hospitalisation"},
        {"participant_id": "P004", "ae_id": "AE-3", "term": "Admitted", "onset": "2024-01-20", "severity": "3",
         "serious": "yes", "seriousness": "hospitalisation"}], dtype="string")
    import_study(replace(study, adverse_events=events), "with-events", actor="test:setup")
    found = Alert.objects.filter(study__name="with-events", rule="serious_adverse_event")
    # AE-3's onset is long past when the import first shows it: historical, as every old record.
    assert list(found.values_list("participant__participant_id", "timepoint")) == [("P003", "ae:AE-2")]


# -- vital signs -------------------------------------------------------------------------------------

def test_a_reading_at_the_urgent_threshold_is_urgent_emailed_to_the_facilitator_only(
        web_study, accounts, emails, django_capture_on_commit_callbacks):
    participant = enrol(web_study)
    measured_at = f"{timezone.localdate().isoformat()}T10:30"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        record(m.VitalSign, participant, key={"session": 1, "measured_at": measured_at}, systolic_bp=159.0,
               diastolic_bp=99.0, heart_rate=119.0)   # one below every warning threshold
    assert not Alert.objects.filter(participant=participant, rule="vital_sign").exists()
    with django_capture_on_commit_callbacks(execute=True):
        record(m.VitalSign, participant, key={"session": 1, "measured_at": measured_at}, systolic_bp=160.0,
               diastolic_bp=99.0, heart_rate=119.0)
    with django_capture_on_commit_callbacks(execute=True):   # corrected: it was 180, a typo
        record(m.VitalSign, participant, key={"session": 1, "measured_at": measured_at}, systolic_bp=180.0,
               diastolic_bp=99.0, heart_rate=119.0)
    assert list(Alert.objects.filter(participant=participant, rule="vital_sign").order_by("pk")
                .values_list("timepoint", "severity", "value")) == [
        (f"vitals:1:{measured_at}:warning", "warning", 160.0), (f"vitals:1:{measured_at}:urgent", "urgent", 180.0)]
    (message,) = mail.outbox   # the urgent one; a warning is not emailed
    assert message.to == [emails["facilitator"]]
    assert "Alert: Vital sign at or above its threshold (systolic_bp at session 1)" in message.body
    assert "Repeat the reading now" in message.body


# -- washout -----------------------------------------------------------------------------------------

def test_a_medication_within_the_washout_before_the_recorded_first_dose_raises_a_warning(
        web_study, accounts, django_capture_on_commit_callbacks):
    protocol = parse_protocol({**study_protocol(web_study).to_dict(), "safety": {"washout": [
        {"medications": ["Sertraline"], "days": 14, "source": "site SOP 7"}]}})
    m.Study.objects.filter(pk=web_study.pk).update(protocol_yaml=protocol.to_yaml(), protocol_sha256=protocol.sha256)
    web_study.refresh_from_db()
    participant = enrol(web_study)
    first_dose = timezone.localdate() - timedelta(days=1)
    m.DosingSession.objects.create(participant=participant, session=1, date=first_dose.isoformat())
    with django_capture_on_commit_callbacks(execute=True):
        record(m.ConcomitantMedication, participant, key={"name": "Sertraline", "start": "2023-06-01"},
               dose="50 mg", stop=(first_dose - timedelta(days=14)).isoformat())   # 14 days: kept
        record(m.ConcomitantMedication, participant, key={"name": "Sertraline", "start": "2024-06-01"},
               dose="50 mg", stop=(first_dose - timedelta(days=13)).isoformat())   # 13 days: one short
    (alert,) = Alert.objects.filter(participant=participant, rule="washout")
    assert (alert.timepoint, alert.severity, alert.value) == ("washout:Sertraline:2024-06-01", "warning", 13.0)
    assert alert.reason.endswith("the protocol asks 14 (washout rule: site SOP 7)")


# -- the pages ---------------------------------------------------------------------------------------

def test_the_alert_list_names_the_record_not_its_key_and_de_identifies_the_onset_for_monitors(
        web_study, accounts, client, django_capture_on_commit_callbacks):
    participant = enrol(web_study)
    with django_capture_on_commit_callbacks(execute=True):
        event = serious_event(participant)
    url = reverse("monitor:alerts", kwargs={"study": STUDY}) + "?participant=P100"
    page = client_for(client, accounts, "investigator").get(url).content.decode()
    assert "adverse event AE-100" in page and "ae:AE-100" not in page and f"onset {event.onset}" in page
    assert "Email to the facilitators and investigators: not sent" in page
    client.logout()
    page = client_for(client, accounts, "monitor").get(url).content.decode()
    assert "adverse event AE-100" in page and event.onset not in page and "onset day 28" in page
    dashboard = client_for(client, accounts, "investigator").get(
        reverse("monitor:participant", kwargs={"study": STUDY, "participant": "P100"})).content.decode()
    assert "Serious adverse event AE-100" in dashboard and "ae:AE-100" not in dashboard
