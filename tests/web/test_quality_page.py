"""The data-quality page (monitor/quality.py): roles, de-identification, links to the record, filters.

The stored study is tests/web/conftest.py's ``make_study`` (imported as ``levin2024``): its forms are
dated off their windows (out_of_window), P002 has no enrolment date and P001 and P005 no
facilitator. Here one GRID-HAMD item of P003's baseline is deleted, so that the form is not scored
(incomplete_form, an error, on a clinician-rated form).
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from alliance.monitoring.quality import check_quality
from alliance.web.capture import models as m
from alliance.web.capture.storage import export_study

from .webapp import OWN, STUDY

pytestmark = pytest.mark.django_db

def _url(**query) -> str:
    base = reverse("monitor:quality", kwargs={"study": STUDY})
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.fixture
def quality_study(web_study):
    m.ItemResponse.objects.filter(administration__participant__participant_id=OWN,
                                  administration__timepoint__code="baseline",
                                  administration__instrument="grid_hamd17", item="grid_hamd17_9").delete()
    return web_study


def _page(client, accounts, role, **query):
    client.force_login(accounts[role])
    return client.get(_url(**query))


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("investigator", 200), ("monitor", 200),
                                              ("facilitator", 403), ("outsider", 403)])
def test_who_may_open_the_page(quality_study, accounts, client, role, status):
    assert _page(client, accounts, role).status_code == status


def test_the_page_lists_what_the_core_finds(quality_study, accounts, client):
    page = _page(client, accounts, "investigator")
    core = check_quality(export_study(STUDY))
    shown = [row["finding"] for row in page.context["rows"]]
    assert shown == list(core.findings)
    assert shown[0].rule == "incomplete_form" and shown[0].participant_id == OWN   # the one error comes first
    counts = {r["id"]: r["count"] for r in page.context["rules"]}
    assert counts == core.counts and counts["out_of_window"] > 0 and counts["missing_facilitator"] == 2
    html = page.content.decode()
    assert "<caption>" in html and '<th scope="col">Severity</th>' in html
    # severity in words, not colour alone
    assert re.search(r'<span class="severity severity-error">Error</span>', html)


def test_each_finding_links_to_the_record(quality_study, accounts, client):
    html = _page(client, accounts, "admin").content.decode()
    record = reverse("capture:participant_detail", kwargs={"study": STUDY, "participant": OWN})
    form = reverse("capture:staff_form", kwargs={"study": STUDY, "participant": OWN, "timepoint": "baseline",
                                                 "instrument": "grid_hamd17"})
    assert f'href="{record}"' in html and f'href="{form}"' in html
    # the record pages open for this role
    assert client.get(record).status_code == 200 and client.get(form).status_code == 200
    # a self-report (WAI-SR) has no staff form page: only the participant link
    page = client.get(_url(rule="out_of_window"))
    wai = [row for row in page.context["rows"] if row["finding"].instrument == "wai_sr"]
    assert wai and all(row["form"] is None and row["record"].endswith(f"/{row['finding'].participant_id}/")
                       for row in wai)


def test_a_monitor_sees_no_dates_and_no_identifiers(quality_study, accounts, client):
    admin_html = _page(client, accounts, "admin").content.decode()
    assert re.search(r"20\d\d-\d\d-\d\d", admin_html)            # the admin sees the dates ...
    client.logout()
    page = _page(client, accounts, "monitor")
    html = page.content.decode()
    assert not re.search(r"20\d\d-\d\d-\d\d", html)               # ... the monitor none
    off_window = [row["finding"] for row in page.context["rows"] if row["finding"].rule == "out_of_window"]
    assert off_window and all(f.value is None and ("after its window closed" in f.message
                                                   or "before its window opened" in f.message) for f in off_window)
    # identifier columns of the participants (name) appear nowhere
    assert "Person " not in html and "Person " not in admin_html
    # a monitor may not open the clinician's form: no link to it
    assert "/forms/" not in html
    assert "De-identified for your role" in html


def test_filters_by_severity_and_rule(quality_study, accounts, client):
    everything = _page(client, accounts, "investigator").context
    errors = client.get(_url(severity="error")).context
    assert [row["finding"].severity for row in errors["rows"]] == ["error"]
    assert {r["id"]: r["count"] for r in errors["rules"]} == {r["id"]: r["count"] for r in everything["rules"]}
    rule = client.get(_url(rule="missing_facilitator")).context
    assert {row["finding"].participant_id for row in rule["rows"]} == {"P001", "P005"}
    both = client.get(_url(severity="error", rule="missing_facilitator"))
    assert both.context["rows"] == [] and "No findings match these filters." in both.content.decode()
    # an unknown value is no filter (the whole list), not an error
    unknown = client.get(_url(severity="urgent", rule="nonsense")).context
    assert len(unknown["rows"]) == len(everything["rows"]) and not unknown["filtered"]


def test_the_page_is_linked_from_the_study_pages(quality_study, accounts, client):
    client.force_login(accounts.investigator)
    link = f'href="{_url()}"'
    assert link in client.get(reverse("capture:study_detail", kwargs={"study": STUDY})).content.decode()
    assert link in client.get(reverse("monitor:study", kwargs={"study": STUDY})).content.decode()
    client.logout()
    client.force_login(accounts.facilitator)   # who may not open it is not offered it
    assert link not in client.get(reverse("capture:study_detail", kwargs={"study": STUDY})).content.decode()
