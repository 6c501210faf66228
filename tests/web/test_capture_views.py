"""Study pages: who sees what, setting up a study, enrolment, the timeline, dosing sessions, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from alliance.protocol import default_protocol
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture import signals

from .webapp import OTHER, OWN, STUDY, client_for

pytestmark = pytest.mark.django_db


def url(name, **kwargs):
    return reverse(f"capture:{name}", kwargs=kwargs)


def events_since(count):
    return list(AuditEvent.objects.order_by("id")[count:])


# -- who sees what -------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("investigator", 200), ("facilitator", 200),
                                              ("monitor", 200), ("outsider", 403)])
def test_study_page_by_role(client, accounts, role, status):
    assert client_for(client, accounts, role).get(url("study_detail", study=STUDY)).status_code == status


def test_study_list_shows_only_the_users_studies(client, accounts):
    assert b"levin2024" in client_for(client, accounts, "monitor").get(url("study_list")).content
    client.logout()
    assert b"levin2024" not in client_for(client, accounts, "outsider").get(url("study_list")).content


def test_unknown_study_is_404(client, accounts):
    assert client_for(client, accounts, "admin").get(url("study_detail", study="nope")).status_code == 404


def test_a_facilitator_sees_only_their_own_participants(client, accounts):
    client_for(client, accounts, "facilitator")
    listing = client.get(url("study_detail", study=STUDY)).content.decode()
    assert ">P003<" in listing and ">P002<" not in listing
    assert client.get(url("participant_detail", study=STUDY, participant=OWN)).status_code == 200
    # Another facilitator's participant does not exist for them: 404 on every participant page.
    for name in ("participant_detail", "dosing_record", "link_create"):
        assert client.get(url(name, study=STUDY, participant=OTHER)).status_code == 404, name
    assert client.get(url("staff_form", study=STUDY, participant=OTHER, timepoint="baseline",
                          instrument="grid_hamd17")).status_code == 404


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("investigator", 200), ("facilitator", 404),
                                              ("facilitator2", 200), ("monitor", 200), ("outsider", 403)])
def test_participant_page_by_role(client, accounts, role, status):
    response = client_for(client, accounts, role).get(url("participant_detail", study=STUDY, participant=OTHER))
    assert response.status_code == status


def test_monitors_see_no_identifiers_and_no_dates(client, accounts, web_study):
    participant = m.Participant.objects.get(study=web_study, participant_id=OWN)
    participant.enrolled_on = timezone.localdate() - timedelta(days=20)
    participant.save()
    name = participant.identifiers["name"]
    staff = client_for(client, accounts, "investigator").get(url("participant_detail", study=STUDY, participant=OWN))
    assert name in staff.content.decode()
    client.logout()
    page = client_for(client, accounts, "monitor").get(url("participant_detail", study=STUDY, participant=OWN))
    text = page.content.decode()
    assert name not in text
    assert participant.enrolled_on.isoformat() not in text and "2024-" not in text and "day " in text
    assert "Record a dosing session" not in text and "Private link" not in text


# -- setting up a study --------------------------------------------------------------------------

def test_setting_up_a_study_from_the_builtin_protocol(client, accounts):
    client_for(client, accounts, "admin")
    assert client.get(url("study_create")).status_code == 200
    response = client.post(url("study_create"), {"name": "site2", "source": "builtin"})
    assert response.status_code == 302
    study = m.Study.objects.get(name="site2")
    assert study.timepoints.count() == len(default_protocol().timepoints)
    assert AuditEvent.objects.filter(study=study, model="capture.study", action="create").exists()


def test_an_uploaded_protocol_with_problems_is_explained(client, accounts):
    client_for(client, accounts, "admin")
    bad = default_protocol().to_yaml().replace("unit: mg/70kg", "unit: grams", 1).replace("kind: baseline", "kind: base")
    upload = SimpleUploadedFile("my_protocol.yaml", bad.encode(), content_type="application/x-yaml")
    response = client.post(url("study_create"), {"name": "site3", "source": "upload", "protocol_file": upload})
    assert response.status_code == 400
    text = response.content.decode()
    assert "my_protocol.yaml" in text and "is not a dose unit" in text and "is not a timepoint kind" in text
    assert "mg/70kg" in text  # what is allowed
    assert not m.Study.objects.filter(name="site3").exists()


def test_an_uploaded_valid_protocol_and_an_unreadable_one(client, accounts):
    client_for(client, accounts, "admin")
    good = SimpleUploadedFile("p.yaml", default_protocol().to_yaml().encode())
    assert client.post(url("study_create"), {"name": "site4", "source": "upload", "protocol_file": good}).status_code == 302
    broken = SimpleUploadedFile("p.yaml", b"id: [unclosed")
    response = client.post(url("study_create"), {"name": "site5", "source": "upload", "protocol_file": broken})
    assert response.status_code == 400 and b"not valid YAML" in response.content


def test_a_study_name_is_never_reused(client, accounts):
    client_for(client, accounts, "admin")
    response = client.post(url("study_create"), {"name": STUDY, "source": "builtin"})
    assert response.status_code == 400 and b"already a study named" in response.content


@pytest.mark.parametrize("role", ["investigator", "facilitator", "monitor"])
def test_only_administrators_set_up_studies(client, accounts, role):
    assert client_for(client, accounts, role).get(url("study_create")).status_code == 403


# -- enrolment -----------------------------------------------------------------------------------

def test_enrolling_a_participant(client, accounts, web_study):
    client_for(client, accounts, "investigator")
    assert client.get(url("participant_enrol", study=STUDY)).status_code == 200
    arm = m.Arm.objects.get(study=web_study, code="immediate")
    f1 = m.Facilitator.objects.get(study=web_study, facilitator_id="F1")
    before = AuditEvent.objects.count()
    response = client.post(url("participant_enrol", study=STUDY), {
        "participant_id": "P100", "arm": arm.pk, "enrolled_on": "2024-01-01", "site": "Baltimore",
        "facilitators": [f1.pk], "new_facilitator": "F7", "identifier_name": "Ana Example", "identifier_email": ""})
    assert response.status_code == 302
    participant = m.Participant.objects.get(study=web_study, participant_id="P100")
    assert participant.enrolled_on.isoformat() == "2024-01-01"
    assert participant.identifiers == {"name": "Ana Example"}
    assert [f.facilitator_id for f in participant.facilitators.order_by("assignments__position")] == ["F1", "F7"]
    created = {(e.model, e.action) for e in events_since(before)}
    assert ("capture.participant", "create") in created and ("capture.facilitator", "create") in created
    # The facilitator linked to F1 now sees P100.
    client.logout()
    assert client_for(client, accounts, "facilitator").get(
        url("participant_detail", study=STUDY, participant="P100")).status_code == 200


def test_enrolling_an_existing_id_is_refused(client, accounts, web_study):
    client_for(client, accounts, "investigator")
    arm = m.Arm.objects.get(study=web_study, code="immediate")
    response = client.post(url("participant_enrol", study=STUDY),
                           {"participant_id": OWN, "arm": arm.pk, "enrolled_on": "2024-01-01"})
    assert response.status_code == 400 and b"already enrolled" in response.content


@pytest.mark.parametrize("participant_id", ["P/1", "P\x001", " ", "P" * 65, "-P1"])
def test_enrolling_an_id_outside_the_one_id_pattern_is_refused(client, accounts, web_study, participant_id):
    # the same rule as the import's (alliance.study.validation.ID_PATTERN): a '/' broke every page
    client_for(client, accounts, "investigator")
    arm = m.Arm.objects.get(study=web_study, code="immediate")
    response = client.post(url("participant_enrol", study=STUDY),
                           {"participant_id": participant_id, "arm": arm.pk, "enrolled_on": "2024-01-01"})
    assert response.status_code == 400
    assert not m.Participant.objects.filter(study=web_study, participant_id=participant_id.strip()).exists()


@pytest.mark.parametrize(("role", "status"), [("facilitator", 403), ("monitor", 403), ("outsider", 403)])
def test_who_may_not_enrol(client, accounts, role, status):
    assert client_for(client, accounts, role).get(url("participant_enrol", study=STUDY)).status_code == status


UNDATED = "P002"


def test_editing_a_participant_sets_the_enrolment_date(client, accounts, web_study):
    client_for(client, accounts, "admin")
    # make_study leaves P002 without an enrolment date (an imported participant without a schedule)
    participant = m.Participant.objects.get(study=web_study, participant_id=UNDATED)
    page = client.get(url("participant_detail", study=STUDY, participant=UNDATED))
    assert b"No enrolment date is recorded" in page.content
    response = client.post(url("participant_edit", study=STUDY, participant=UNDATED), {
        "arm": participant.arm.pk, "enrolled_on": "2024-01-02", "site": "site A",
        "facilitators": list(participant.facilitators.values_list("pk", flat=True)),
        **{f"identifier_{k}": v for k, v in participant.identifiers.items()}})
    assert response.status_code == 302
    participant.refresh_from_db()
    assert participant.enrolled_on.isoformat() == "2024-01-02"
    event = AuditEvent.objects.filter(model="capture.participant", action="change").latest("id")
    assert event.old == {"enrolled_on": None} and event.new == {"enrolled_on": "2024-01-02"}


# -- the timeline --------------------------------------------------------------------------------

def enrol_days_ago(client, study, days, participant_id="P200"):
    arm = m.Arm.objects.get(study=study, code="immediate")
    enrolled = timezone.localdate() - timedelta(days=days)
    response = client.post(url("participant_enrol", study=STUDY),
                           {"participant_id": participant_id, "arm": arm.pk, "enrolled_on": enrolled.isoformat()})
    assert response.status_code == 302
    return m.Participant.objects.get(study=study, participant_id=participant_id), enrolled


def statuses(response):
    return {row["timepoint"]: row["status"] for row in response.context["rows"]}


def test_timeline_statuses_come_from_the_protocol(client, accounts, web_study):
    client_for(client, accounts, "investigator")
    # Enrolled 20 days ago in the immediate arm: baseline's window (days 0-14) ended 6 days ago
    # (overdue); session 1 is planned at day 21 with a window from day 14 (due); the final
    # preparation session at day 20, window days 17-20 (due); month 12 is far ahead (upcoming).
    participant, enrolled = enrol_days_ago(client, web_study, 20)
    page = client.get(url("participant_detail", study=STUDY, participant="P200"))
    shown = statuses(page)
    assert shown["baseline"] == "overdue" and shown["prep"] == "due" and shown["session1"] == "due"
    assert shown["month12"] == "upcoming"
    planned = {row["timepoint"]: row["planned"] for row in page.context["rows"]}
    assert planned["session1"] == enrolled + timedelta(days=21)
    # 40 days after enrolment, a baseline never done is missed (over 14 days past its window).
    enrol_days_ago(client, web_study, 40, "P201")
    assert statuses(client.get(url("participant_detail", study=STUDY, participant="P201")))["baseline"] == "missed"


def test_a_recorded_dosing_session_anchors_the_timeline_and_tells_the_monitor(client, accounts, web_study, monkeypatch,
                                                                               received):
    monkeypatch.setattr("alliance.web.monitor.receivers.raise_alerts", lambda participant: [])
    told = received(signals.dosing_recorded, "dosing_session")
    client_for(client, accounts, "investigator")
    participant, enrolled = enrol_days_ago(client, web_study, 30)
    form = client.get(url("dosing_record", study=STUDY, participant="P200"))
    assert form.status_code == 200 and form.context["form"].initial["compound"] == "psilocybin"
    given = enrolled + timedelta(days=25)
    before = AuditEvent.objects.count()
    response = client.post(url("dosing_record", study=STUDY, participant="P200"),
                           {"session": 1, "date": given.isoformat(), "compound": "psilocybin", "amount": 20,
                            "unit": "mg/70kg"})
    assert response.status_code == 302
    dosing = m.DosingSession.objects.get(participant=participant, session=1)
    assert (dosing.date, dosing.amount, dosing.unit) == (given.isoformat(), 20.0, "mg/70kg")
    assert told == [dosing]
    assert ("capture.dosingsession", "create") in {(e.model, e.action) for e in events_since(before)}
    page = client.get(url("participant_detail", study=STUDY, participant="P200"))
    planned = {row["timepoint"]: row["planned"] for row in page.context["rows"]}
    # Session 2 is planned 12 days after the session 1 that really happened, not the planned one;
    # session 1 keeps its own planned date (treatment start + 21 days): data never move their own visit.
    assert planned["session1"] == enrolled + timedelta(days=21) and planned["session2"] == given + timedelta(days=12)
    assert b"psilocybin" in page.content


def test_a_facilitator_records_dosing_for_their_participant_only(client, accounts):
    client_for(client, accounts, "facilitator")
    data = {"session": 2, "date": "2024-06-01", "compound": "psilocybin", "amount": 30, "unit": "mg/70kg"}
    assert client.post(url("dosing_record", study=STUDY, participant=OWN), data).status_code == 302
    assert client.post(url("dosing_record", study=STUDY, participant=OTHER), data).status_code == 404
    client.logout()
    assert client_for(client, accounts, "monitor").post(
        url("dosing_record", study=STUDY, participant=OWN), data).status_code == 403


# -- the audit trail page ------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("investigator", 200), ("facilitator", 403),
                                              ("monitor", 403), ("outsider", 403)])
def test_audit_trail_page_by_role(client, accounts, role, status):
    assert client_for(client, accounts, role).get(url("audit_trail", study=STUDY)).status_code == status
