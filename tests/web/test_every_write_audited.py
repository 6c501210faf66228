"""Every write the web app makes leaves audit events: each write view, one after the other."""

from __future__ import annotations

import pytest
from django.urls import reverse

from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m

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
            {**{f"grid_hamd17_{k}": "1" for k in range(1, 18)}, "_action": "submit"})),
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
