"""The safety record in the web app: adverse events, vital signs and medications, who may write them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture import signals

from .webapp import OTHER, OWN, STUDY, client_for

pytestmark = pytest.mark.django_db


def _url(name, participant=OWN, **kw):
    return reverse(f"capture:{name}", kwargs={"study": STUDY, "participant": participant, **kw})


AE = {"ae_id": "AE-001", "term": "Headache after the session", "code": "", "onset": "2024-02-11",
      "resolved_on": "2024-02-12", "severity": "2", "serious": "no", "relatedness": "probable", "expected": "yes",
      "action": "none", "outcome": "recovered"}


def test_an_investigator_records_an_adverse_event_and_it_is_audited_and_announced(client, accounts, received):
    told = received(signals.safety_recorded, "record")
    response = client_for(client, accounts, "investigator").post(_url("adverse_event_new"), AE)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = m.AdverseEvent.objects.get(ae_id="AE-001")
    assert (event.participant.participant_id, event.severity, event.serious, event.relatedness, event.expected) == (
        OWN, 2, False, "probable", True)
    assert told == [event]
    audit = AuditEvent.objects.filter(object_repr=f"{OWN}/adverse event AE-001")
    assert audit.count() == 1 and audit.get().action == "create"
    # The study now has the adverse-event table, exported like an imported one.
    assert m.Study.objects.get(name=STUDY).adverse_event_columns[:3] == ["participant_id", "ae_id", "term"]


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"serious": "yes"}, "seriousness", "at least one of death"),
    ({"resolved_on": "2024-02-01"}, "resolved_on", "before"),
    ({"severity": "6"}, "severity", "6"),
    ({"severity": "5"}, None, "fatal"),
])
def test_an_event_the_contract_refuses_is_shown_at_its_field_and_not_stored(client, accounts, change, field, words):
    response = client_for(client, accounts, "investigator").post(_url("adverse_event_new"), {**AE, **change})
    assert response.status_code == 400
    form = response.context["form"]
    errors = form.errors.get(field) if field else [e for v in form.errors.values() for e in v]
    assert errors and any(words in e for e in errors), form.errors
    assert not m.AdverseEvent.objects.exists()


def test_an_event_id_is_unique_in_the_study_and_an_update_keeps_it(client, accounts):
    c = client_for(client, accounts, "investigator")
    assert c.post(_url("adverse_event_new"), AE).status_code == 302
    again = c.post(_url("adverse_event_new", participant=OTHER), {**AE, "ae_id": "AE-001"})
    assert again.status_code == 400 and "another adverse event" in str(again.context["form"].errors)
    assert c.get(_url("adverse_event_new")).context["form"].initial["ae_id"] == "AE-002"
    update = c.post(_url("adverse_event_edit", ae_id="AE-001"),
                    {**AE, "ae_id": "AE-999", "severity": "3", "outcome": "recovering"})
    assert update.status_code == 302
    event = m.AdverseEvent.objects.get()
    assert (event.ae_id, event.severity, event.outcome) == ("AE-001", 3, "recovering")
    changed = AuditEvent.objects.filter(object_repr=f"{OWN}/adverse event AE-001", action="change").get()
    assert changed.old["severity"] == 2 and changed.new["severity"] == 3


def test_a_serious_event_with_its_criteria_is_stored(client, accounts):
    c = client_for(client, accounts, "investigator")
    response = c.post(_url("adverse_event_new"), {**AE, "serious": "yes",
                                                  "seriousness": ["hospitalisation", "important_medical_event"],
                                                  "severity": "3"})
    assert response.status_code == 302
    assert m.AdverseEvent.objects.get().seriousness == "hospitalisation;important_medical_event"
    page = c.get(reverse("capture:study_safety", kwargs={"study": STUDY})).content.decode()
    assert "hospitalisation" in page and "AE-001" in page


@pytest.mark.parametrize(("role", "status"), [("facilitator", 403), ("monitor", 403), ("admin", 200),
                                              ("investigator", 200)])
def test_who_may_report_adverse_events(client, accounts, role, status):
    assert client_for(client, accounts, role).get(_url("adverse_event_new")).status_code == status


def test_a_facilitator_records_vital_signs_of_their_participant_only(client, accounts, received):
    told = received(signals.safety_recorded, "participant")
    c = client_for(client, accounts, "facilitator")
    reading = {"session": "1", "measured_at": "2024-03-10T11:30", "minutes_after_dose": "90",
               "systolic_bp": "162", "diastolic_bp": "95", "heart_rate": "88"}
    assert c.post(_url("vital_sign_new"), reading).status_code == 302
    stored = m.VitalSign.objects.get()
    assert (stored.session, stored.measured_at, stored.systolic_bp, stored.minutes_after_dose) == (
        1, "2024-03-10T11:30", 162.0, 90)
    assert [p.participant_id for p in told] == [OWN]
    page = c.get(_url("participant_safety")).content.decode()
    assert "warning" in page and "systolic_bp 162 mmHg at or above the warning threshold 160" in page
    assert c.post(_url("vital_sign_new", participant=OTHER), reading).status_code == 404


def test_an_implausible_reading_is_refused_with_its_range(client, accounts):
    c = client_for(client, accounts, "facilitator")
    response = c.post(_url("vital_sign_new"), {"session": "1", "measured_at": "2024-03-10T11:30",
                                                "systolic_bp": "1200", "diastolic_bp": "80"})
    assert response.status_code == 400
    assert "50" in str(response.context["form"].errors["systolic_bp"])
    assert not m.VitalSign.objects.exists()


def test_a_medication_is_recorded_then_stopped(client, accounts):
    c = client_for(client, accounts, "investigator")
    med = {"name": "Sertraline", "dose": "50 mg daily", "start": "2023-11-01", "stop": "", "indication": "depression"}
    assert c.post(_url("medication_new"), med).status_code == 302
    stored = m.ConcomitantMedication.objects.get()
    assert c.post(_url("medication_new"), med).status_code == 400  # the same medication from the same day
    assert c.post(_url("medication_edit", pk=stored.pk), {**med, "stop": "2023-10-01"}).status_code == 400
    assert c.post(_url("medication_edit", pk=stored.pk), {**med, "stop": "2023-12-15"}).status_code == 302
    stored.refresh_from_db()
    assert (stored.stop, stored.dose) == ("2023-12-15", "50 mg daily")


def test_a_monitor_sees_the_safety_record_in_days_from_enrolment(client, accounts):
    client_for(client, accounts, "investigator").post(_url("adverse_event_new"), AE)
    client.logout()
    page = client_for(client, accounts, "monitor").get(_url("participant_safety")).content.decode()
    enrolled = m.Participant.objects.get(participant_id=OWN).enrolled_on
    from datetime import date

    assert f"day {(date(2024, 2, 11) - enrolled).days}" in page
    assert "2024-02-11" not in page
    assert "Report an adverse event" not in page


def test_a_facilitator_sees_only_their_participants_events_on_the_study_page(client, accounts):
    c = client_for(client, accounts, "investigator")
    c.post(_url("adverse_event_new"), AE)
    c.post(_url("adverse_event_new", participant=OTHER), {**AE, "ae_id": "AE-002", "term": "Nausea"})
    client.logout()
    page = client_for(client, accounts, "facilitator").get(
        reverse("capture:study_safety", kwargs={"study": STUDY})).content.decode()
    assert "Headache" in page and "Nausea" not in page
