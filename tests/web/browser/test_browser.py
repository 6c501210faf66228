"""The web app in a real browser: a study team's day, from logging in to downloading an export.

One story, in order: an investigator logs in and enrols a participant; makes a private link to
the WAI-SR at the final preparation session; the participant (another browser, phone-sized) opens
it, answers half the items, leaves, comes back and finds the draft, and submits; the investigator
sees the score on the participant's dashboard, where the low alliance (WAI-SR total 12) has raised
an alert, acknowledges it (found in the audit trail), and downloads an export.

``test_screenshots`` renders the participant dashboard and a questionnaire on a phone and writes
them to ``docs/screenshots/`` when ``ALLIANCE_SCREENSHOTS=1`` (otherwise to a temporary folder).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from alliance.web.capture import models as m

from ..webapp import PASSWORD, STUDY
from .conftest import DESKTOP, PHONE

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[3]
NEW = "P100"


@pytest.fixture
def browser_settings(settings):
    # A real browser refuses Secure cookies over the live server's plain HTTP.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    return settings


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))
    assert page.locator("header .who").inner_text() == username


def answer(page, items: range, value: int = 1) -> None:
    for number in items:
        page.check(f"input[name=wai_sr_{number}][value='{value}']")


def test_a_study_teams_day(web_study, accounts, browser_settings, new_page):
    staff = new_page(DESKTOP)

    # Log in.
    log_in(staff, "investigator")

    # Enrol a participant (enrolled 10 days ago, so session 1 is due in 11 days).
    staff.goto(f"/studies/{STUDY}/")
    staff.click("text=Enrol a participant")
    staff.fill("#id_participant_id", NEW)
    staff.select_option("#id_arm", label="Immediate treatment")
    staff.fill("#id_enrolled_on", (timezone.localdate() - timedelta(days=10)).isoformat())
    staff.check("input[name=facilitators] >> nth=0")
    staff.click("button:has-text('Enrol')")
    staff.wait_for_url(f"**/participants/{NEW}/")
    assert staff.locator("h1").inner_text() == NEW

    # A private link to the WAI-SR at the final preparation session.
    staff.click("text=Private link to a form")
    staff.select_option("#id_form", value="prep:wai_sr")
    staff.click("button:has-text('Make the link')")
    link = staff.input_value("#private-link")
    assert "/f/" in link

    # The participant, on a phone, without an account: half the form, then away.
    participant = new_page(PHONE)
    participant.goto(link)
    assert participant.locator("h1").inner_text().startswith("WAI-SR")
    answer(participant, range(1, 7))
    participant.locator("#save-status").filter(has_text="Draft saved").wait_for()
    participant.close()

    # Back with the same link: the six answers are there, the other six are not.
    participant = new_page(PHONE)
    participant.goto(link)
    for number in range(1, 7):
        assert participant.is_checked(f"input[name=wai_sr_{number}][value='1']")
    for number in range(7, 13):
        assert participant.locator(f"input[name=wai_sr_{number}]:checked").count() == 0

    # Submit.
    answer(participant, range(7, 13))
    participant.click("button[value=submit]")
    participant.locator("h1", has_text="Thank you").wait_for()
    assert participant.goto(link).status == 410   # single use: the link is closed now

    # The score on the dashboard, and the alert it raised (WAI-SR total 12 among the 7 at prep).
    staff.goto(f"/monitor/studies/{STUDY}/participants/{NEW}/")
    staff.click("text=The scores as a table")
    row = staff.locator("#score-table tr", has_text="Final preparation session")
    assert row.locator("td").first.inner_text() == "12"
    alert = staff.locator(".alert", has_text="Low alliance before a dosing session")
    assert "WAI-SR total 12 at the final preparation session is below the sample's 25th percentile" \
        in alert.inner_text()
    due = (timezone.localdate() + timedelta(days=11)).isoformat()
    assert f"session 1 is due on {due}" in alert.inner_text()

    # Acknowledge it, with a note; it leaves the open alerts and is in the audit trail.
    alert.locator("input[name=note]").fill("Discussed with the team; extra preparation session booked.")
    alert.locator("button:has-text('Acknowledge')").click()
    staff.locator(".message", has_text="Alert acknowledged").wait_for()
    # 12 is also below the protocol's fixed cut-off of 36: that rule's alert is acknowledged too.
    cutoff = staff.locator(".alert", has_text="Alliance below the cut-off before a dosing session")
    assert "is below the threshold of 36" in cutoff.inner_text()
    cutoff.locator("input[name=note]").fill("Same conversation.")
    cutoff.locator("button:has-text('Acknowledge')").click()
    staff.locator(".message", has_text="Alert acknowledged").wait_for()
    assert staff.locator("text=No open alerts.").is_visible()
    staff.click("text=Acknowledged and resolved alerts")
    assert "Acknowledged by investigator" in staff.locator(".alert.closed").first.inner_text()
    staff.goto(f"/studies/{STUDY}/audit/")
    assert staff.locator("tr", has_text="monitor.alert").filter(has_text="investigator").count() >= 1

    # Download an export (de-identified): a zip holding the new participant's answers.
    staff.goto(f"/studies/{STUDY}/exports/")
    with staff.expect_download() as download_info:
        staff.click("button:has-text('De-identified')")
    download = download_info.value
    assert download.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as archive:
        responses = next(n for n in archive.namelist() if n.endswith("responses.csv"))
        assert NEW in archive.read(responses).decode()


def test_screenshots(web_study, accounts, browser_settings, new_page, tmp_path):
    """The participant dashboard (desktop) and a questionnaire (phone), for the README."""
    from alliance.web.audit.log import AuditLog
    from alliance.web.capture import recording
    from alliance.web.monitor.alerting import refresh_alerts

    target = ROOT / "docs" / "screenshots" if os.environ.get("ALLIANCE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    # A participant half-way through follow-up: enrolled 150 days ago in the delayed arm, so treatment
    # started on day 56, session 2 was on day 89 and the 4-week follow-up on day 117; month 3 is
    # still to come. Their forms and sessions get the dates the protocol planned for them.
    from alliance.monitoring.schedule import planned_dates
    from alliance.web.capture.queries import study_protocol

    participant = m.Participant.objects.get(study=web_study, participant_id="P004")
    participant.enrolled_on = timezone.localdate() - timedelta(days=150)
    participant.save(update_fields=["enrolled_on"])
    planned = planned_dates(study_protocol(web_study), participant.arm.code, participant.enrolled_on)
    for administration in m.Administration.objects.filter(participant=participant).select_related("timepoint"):
        day = planned[administration.timepoint.code]
        if day > timezone.localdate():
            administration.delete()
        else:
            administration.administered_at = day.isoformat()
            administration.save(update_fields=["administered_at"])
    for dosing in m.DosingSession.objects.filter(participant=participant):
        dosing.date = planned[f"session{dosing.session}"].isoformat()
        dosing.save(update_fields=["date"])
    m.Participant.objects.filter(study=web_study).exclude(pk=participant.pk).update(
        enrolled_on=timezone.localdate() - timedelta(days=400))
    refresh_alerts(web_study)
    log = AuditLog(actor="test:setup", study=web_study)
    recording.enrol(web_study, participant_id=NEW, arm=web_study.arms.get(code="immediate"),
                    enrolled_on=timezone.localdate(), log=log)
    token, _ = recording.create_private_link(m.Participant.objects.get(study=web_study, participant_id=NEW),
                                             web_study.timepoints.get(code="prep"), "wai_sr", days=7, log=log)
    log.write()

    staff = new_page(DESKTOP)
    log_in(staff, "facilitator")
    staff.goto(f"/monitor/studies/{STUDY}/participants/P004/")
    staff.screenshot(path=str(target / "dashboard.png"), full_page=True)

    phone = new_page(PHONE)
    phone.goto(f"/f/{token}/")
    answer(phone, range(1, 3), 4)
    phone.locator("#save-status").filter(has_text="Draft saved").wait_for()
    phone.evaluate("window.scrollTo(0, 0)")
    phone.screenshot(path=str(target / "form.png"), full_page=False)
    assert (target / "dashboard.png").stat().st_size > 10_000 and (target / "form.png").stat().st_size > 5_000
