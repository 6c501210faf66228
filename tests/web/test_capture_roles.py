"""Each GET page of the accounts and capture apps × each role: the statuses of /tmp/web_urls_W1.md."""

from __future__ import annotations

import pytest
from django.urls import reverse

from .webapp import OTHER, OWN, STUDY, client_for

S = {"study": STUDY}
ROLES = ("admin", "investigator", "facilitator", "monitor", "outsider", None)
# url name, kwargs, expected status for: admin, investigator, facilitator (F1), monitor, outsider, anonymous
PAGES = [
    ("accounts:members", S, (200, 200, 403, 403, 403, 302)),
    ("capture:study_list", {}, (200, 200, 200, 200, 200, 302)),
    ("capture:study_create", {}, (200, 403, 403, 403, 403, 302)),
    ("capture:study_detail", S, (200, 200, 200, 200, 403, 302)),
    ("capture:participant_enrol", S, (200, 200, 403, 403, 403, 302)),
    ("capture:participant_detail", {**S, "participant": OWN}, (200, 200, 200, 200, 403, 302)),
    ("capture:participant_detail", {**S, "participant": OTHER}, (200, 200, 404, 200, 403, 302)),
    ("capture:participant_edit", {**S, "participant": OWN}, (200, 200, 403, 403, 403, 302)),
    ("capture:dosing_record", {**S, "participant": OWN}, (200, 200, 200, 403, 403, 302)),
    ("capture:dosing_record", {**S, "participant": OTHER}, (200, 200, 404, 403, 403, 302)),
    ("capture:link_create", {**S, "participant": OWN}, (200, 200, 200, 403, 403, 302)),
    ("capture:link_create", {**S, "participant": OTHER}, (200, 200, 404, 403, 403, 302)),
    ("capture:staff_form", {**S, "participant": OWN, "timepoint": "baseline", "instrument": "grid_hamd17"},
     (200, 200, 200, 403, 403, 302)),
    ("capture:staff_form", {**S, "participant": OTHER, "timepoint": "baseline", "instrument": "grid_hamd17"},
     (200, 200, 404, 403, 403, 302)),
    ("capture:exports", S, (200, 200, 403, 200, 403, 302)),
    ("capture:audit_trail", S, (200, 200, 403, 403, 403, 302)),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "kwargs", "expected"), PAGES, ids=[f"{p[0]}-{p[1].get('participant', '')}" for p in PAGES])
def test_get_pages_by_role(client, accounts, name, kwargs, expected):
    path = reverse(name, kwargs=kwargs)
    found = []
    for role in ROLES:
        client.logout()
        found.append(client_for(client, accounts, role).get(path).status_code)
    assert tuple(found) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "expected"), [("tidy", (200, 200, 403, 403, 403, 302)),
                                                ("deidentified", (200, 200, 403, 200, 403, 302))])
def test_export_downloads_by_role(client, accounts, kind, expected):
    path = reverse("capture:export_download", kwargs={**S, "kind": kind})
    found = []
    for role in ROLES:
        client.logout()
        found.append(client_for(client, accounts, role).post(path).status_code)
    assert tuple(found) == expected
