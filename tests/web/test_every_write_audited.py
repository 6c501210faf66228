"""Every write the web app makes leaves audit events: each write view, one after the other."""

from __future__ import annotations

import pytest
from django.urls import reverse

from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture.invitations import opt_out_token

from .webapp import STUDY

pytestmark = pytest.mark.django_db


def test_each_write_view_writes_audit_events(client, accounts, web_study):
    client.force_login(accounts.admin)
    arm = m.Arm.objects.get(study=web_study, code="immediate").pk
    participant = {"study": STUDY, "participant": "P400"}
    link_response = {}

    def make_link():
        response = client.post(reverse("capture:link_create", kwargs=participant), {"form": "prep:wai_sr", "days": 7})
        link_response["path"] = response.context["url"].removeprefix("http://testserver")
        return response

    visit = {}

    def make_visit_link():
        response = client.post(reverse("capture:visit_link_create", kwargs={**participant, "timepoint": "session1"}))
        visit["path"] = response.context["url"].removeprefix("http://testserver")
        return response

    client.post(reverse("capture:participant_enrol", kwargs={"study": STUDY}),
                {"participant_id": "P401", "arm": arm, "enrolled_on": "2024-01-01"})
    steps = [
        ("set up a study", lambda: client.post(reverse("capture:study_create"), {"name": "other", "source": "builtin"})),
        ("invite a member", lambda: client.post(reverse("accounts:members", kwargs={"study": STUDY}),
                                                {"action": "invite", "invite-email": "new-monitor@example.org",
                                                 "invite-role": "monitor"})),
        ("enrol", lambda: client.post(reverse("capture:participant_enrol", kwargs={"study": STUDY}),
                                      {"participant_id": "P400", "arm": arm, "enrolled_on": "2024-01-01"})),
        ("edit", lambda: client.post(reverse("capture:participant_edit", kwargs=participant),
                                     {"arm": arm, "enrolled_on": "2024-01-03", "site": "B"})),
        ("dosing", lambda: client.post(reverse("capture:dosing_record", kwargs=participant),
                                       {"session": 1, "date": "2024-01-25", "compound": "psilocybin", "amount": 20,
                                        "unit": "mg/70kg"})),
        ("clinician draft", lambda: client.post(
            reverse("capture:staff_form", kwargs={**participant, "timepoint": "baseline", "instrument": "grid_hamd17"}),
            {"grid_hamd17_1": "2", "_action": "draft"})),
        ("clinician submit", lambda: client.post(
            reverse("capture:staff_form", kwargs={**participant, "timepoint": "baseline", "instrument": "grid_hamd17"}),
            {**{f"grid_hamd17_{k}": "1" for k in range(1, 18)}, "_action": "submit", "entry-mode": "interview",
             "entry-assessed_on": "2024-01-04", "entry-rater": "A. Rater", "entry-blinded": "yes"})),
        ("paper self-report", lambda: client.post(
            reverse("capture:staff_form", kwargs={**participant, "timepoint": "session1", "instrument": "ebi"}),
            {**{f"ebi_{k}": "50" for k in range(1, 7)}, "_action": "submit", "entry-mode": "paper",
             "entry-assessed_on": "2024-01-25"})),
        ("visit link", make_visit_link),
        ("visit draft", lambda: client.post(visit["path"] + "meq30/", {"meq30_1": "2", "_action": "draft"})),
        ("visit submit", lambda: client.post(visit["path"] + "meq30/",
                                             {**{f"meq30_{k}": "3" for k in range(1, 31)}, "_action": "submit"})),
        ("revoke a link", lambda: client.post(reverse("capture:link_revoke", kwargs={
            "study": STUDY, "kind": "visit", "pk": m.VisitLink.objects.latest("pk").pk}))),
        ("stop emails", lambda: client.post(reverse("capture:email_preference", kwargs=participant),
                                            {"opt_out": "yes"})),
        ("participant stops emails", lambda: client.post(reverse("capture:opt_out", kwargs={
            "token": opt_out_token(m.Participant.objects.get(participant_id="P401"))}))),
        ("private link", make_link),
        ("self-report draft", lambda: client.post(link_response["path"], {"wai_sr_1": "4", "_action": "draft"})),
        ("self-report submit", lambda: client.post(link_response["path"],
                                                   {**{f"wai_sr_{k}": "3" for k in range(1, 13)}, "_action": "submit"})),
        ("export", lambda: client.post(reverse("capture:export_download", kwargs={"study": STUDY, "kind": "tidy"}))),
    ]
    for name, step in steps:
        before = AuditEvent.objects.count()
        response = step()
        assert response.status_code in (200, 302), name
        assert AuditEvent.objects.count() > before, f"{name} wrote no audit event"
