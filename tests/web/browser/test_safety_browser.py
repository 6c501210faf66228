"""The safety record in Chromium (issue 16): a serious adverse event raises an urgent alert and an email
through a real SMTP server; a facilitator records vital signs during a session; a randomised
enrolment is given its arm.

Writes ``docs/screenshots/safety.png`` (the study's safety page) when ``ALLIANCE_SCREENSHOTS=1``
(otherwise to a temporary folder), as the other browser tests do.
"""

from __future__ import annotations

import copy
import os
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from django.test import override_settings

from ..webapp import OWN, STUDY
from .conftest import DESKTOP, PHONE
from .test_browser import ROOT, browser_settings, log_in  # noqa: F401
from .test_invitation_browser import smtp_server  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _smtp(port, live_server):
    return override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
                             EMAIL_PORT=port, EMAIL_USE_TLS=False, EMAIL_HOST_USER="", EMAIL_HOST_PASSWORD="",
                             DEFAULT_FROM_EMAIL="trial@example.org", ALLIANCE_SITE_URL=live_server.url)


def test_an_investigator_records_a_serious_adverse_event_and_the_alert_and_email_appear(
        web_study, accounts, browser_settings, new_page, smtp_server, live_server, tmp_path):  # noqa: F811
    from alliance.web.capture import models as m
    from alliance.web.monitor.models import Alert

    port, inbox = smtp_server
    accounts.investigator.email = "pi@example.org"
    accounts.investigator.save()
    with _smtp(port, live_server):
        page = new_page(DESKTOP)
        log_in(page, "investigator")
        page.goto(f"/studies/{STUDY}/participants/{OWN}/safety/")
        page.click("text=Report an adverse event")
        page.fill("#id_term", "Panic and chest pain two hours after dosing; admitted overnight for observation")
        page.fill("#id_onset", "2024-03-10")
        page.select_option("#id_severity", "3")
        page.check("input[name=serious][value=yes]")
        page.check("input[name=seriousness][value=hospitalisation]")
        page.select_option("#id_relatedness", "possible")
        page.select_option("#id_expected", "no")
        page.select_option("#id_action", "none")
        page.select_option("#id_outcome", "recovered")
        page.fill("#id_resolved_on", "2024-03-11")
        page.click("main button[type=submit]")
        page.wait_for_url(f"**/participants/{OWN}/safety/")
        assert "the study's investigators are alerted" in page.locator(".messages").inner_text()
        envelope = inbox.wait()

    event = m.AdverseEvent.objects.get(participant__participant_id=OWN)
    assert (event.serious, event.seriousness, event.severity) == (True, "hospitalisation", 3)
    alert = Alert.objects.get(participant__participant_id=OWN, rule_type="serious_adverse_event")
    assert alert.severity == "urgent"
    assert "pi@example.org" in envelope.rcpt_tos
    message = message_from_bytes(envelope.content, policy=policy.default)
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert f"Participant: {OWN}" in body
    assert "Panic" not in body  # the term is free text: it stays in the app, not in an email

    # The alert is on the study's alert list, urgent.
    page.goto(f"/monitor/studies/{STUDY}/alerts/")
    card = page.locator(f"#alert-{alert.pk}")
    assert card.count() == 1, page.locator("main").inner_text()[:3000]
    assert "urgent" in card.inner_text().lower()

    # The study's safety page lists the event first, marked serious.
    page.goto(f"/studies/{STUDY}/safety/")
    first = page.locator("table tbody tr.serious").first
    assert event.ae_id in first.inner_text() and "serious" in first.inner_text()
    target = ROOT / "docs" / "screenshots" if os.environ.get("ALLIANCE_SCREENSHOTS") == "1" else Path(tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1200, "height": 900})
    page.screenshot(path=str(target / "safety.png"), full_page=True)


def test_a_facilitator_records_vital_signs_during_a_session_on_a_phone(
        web_study, accounts, browser_settings, new_page):  # noqa: F811
    from alliance.web.capture import models as m

    page = new_page(PHONE)
    log_in(page, "facilitator")
    page.goto(f"/studies/{STUDY}/participants/{OWN}/")
    page.click("text=Safety")
    page.click("text=Record vital signs")
    for minutes, systolic, diastolic, rate, at in ((-30, "128", "82", "70", "09:00"), (90, "163", "96", "92", "11:00")):
        page.select_option("#id_session", "1")
        page.fill("#id_measured_at", f"2024-03-10T{at}")
        page.fill("#id_minutes_after_dose", str(minutes))
        page.fill("#id_systolic_bp", systolic)
        page.fill("#id_diastolic_bp", diastolic)
        page.fill("#id_heart_rate", rate)
        page.click("button[name=another]")
        page.wait_for_url("**/vital-signs/new/")
    page.goto(f"/studies/{STUDY}/participants/{OWN}/safety/")
    rows = page.locator("table tbody tr", has_text="2024-03-10")
    assert rows.count() == 2
    assert "warning" in rows.nth(1).inner_text() and "163" in rows.nth(1).inner_text()
    readings = list(m.VitalSign.objects.filter(participant__participant_id=OWN).order_by("measured_at")
                    .values_list("minutes_after_dose", "systolic_bp"))
    assert readings == [(-30, 128.0), (90, 163.0)]


def test_a_randomised_enrolment_assigns_an_arm(web_study, accounts, browser_settings, new_page):  # noqa: F811
    from alliance.protocol import default_protocol, parse_protocol
    from alliance.protocol.randomisation import allocation_list
    from alliance.web.accounts.members import set_membership
    from alliance.web.audit.log import AuditLog
    from alliance.web.capture import models as m
    from alliance.web.capture import recording

    raw = copy.deepcopy(default_protocol().to_dict())
    raw["randomisation"] = {"method": "stratified_permuted_blocks", "ratio": {"immediate": 1, "delayed": 1},
                            "block_sizes": [2, 4], "strata": ["site"],
                            "list_length": 20}
    protocol = parse_protocol(raw)
    study = recording.create_study("trial-r", protocol=protocol, user=accounts.admin)
    log = AuditLog(actor="test:setup", study=study)
    set_membership(accounts.investigator, study, "investigator", log)
    log.write()

    admin = new_page(DESKTOP)
    log_in(admin, "admin")
    admin.goto("/studies/trial-r/randomisation/")
    admin.fill("#id_seed", "4242")
    admin.fill("#id_values_site", "Baltimore, Denver")
    admin.click("text=Generate the allocation list")
    admin.wait_for_url("**/randomisation/")
    assert "4242" in admin.locator("main").inner_text()

    page = new_page(DESKTOP)
    log_in(page, "investigator")
    assert page.goto("/studies/trial-r/randomisation/").status == 403
    page.goto("/studies/trial-r/participants/new/")
    assert page.locator("#id_arm").count() == 0  # staff do not choose the arm
    page.fill("#id_participant_id", "R001")
    page.select_option("#id_stratum_site", "Denver")
    page.check("#id_eligible")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith("/participants/R001/"), page.locator("main").inner_text()
    expected = allocation_list(protocol.randomisation, 4242, {"site": ["Baltimore", "Denver"]}).stratum("site=Denver")
    participant = m.Participant.objects.get(study=study, participant_id="R001")
    assert participant.arm.code == expected.arms[0] and participant.site == "Denver"
    assert "allocated to" in page.locator(".messages").inner_text()
    label = participant.arm.label or participant.arm.code
    assert label in page.locator("dl.facts").inner_text()
