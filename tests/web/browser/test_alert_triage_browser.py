"""The triage list in Chromium (issue 14, item 4): bulk acknowledgement into the audit trail, and the
email about an urgent alert through a real SMTP server (aiosmtpd, as test_invitation_browser.py).

Writes ``docs/screenshots/alert-triage.png`` when ``ALLIANCE_SCREENSHOTS=1`` (otherwise to a
temporary folder), as the other browser tests do.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from ..webapp import STUDY
from .conftest import DESKTOP
from .test_browser import ROOT, browser_settings, log_in  # noqa: F401
from .test_invitation_browser import smtp_server  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

NOTE = "Called all ten; safety plans reviewed with Dr Rao"
SITE_TEXT = "Call the Bayview on-call psychiatrist on 410-555-0199; in immediate danger, call 911."
WIDE = {"width": 1280, "height": 1000}


def _alerts(study, accounts):
    """Ten open urgent suicidality alerts (F1's P003, P004, P006 and others), two warnings, one closed."""
    from alliance.web.capture import models as m
    from alliance.web.monitor.alerting import assign_alerts
    from alliance.web.monitor.models import Alert

    Alert.objects.filter(study=study).delete()   # what the import raised: this page shows these
    study.crisis_text = SITE_TEXT
    study.save()
    urgent = []
    timepoints = ("baseline", "week1", "week4", "month3")
    labels = {t.code: t.label for t in study.timepoints.all()}
    for k, (pid, timepoint) in enumerate([(p, t) for p in ("P002", "P003", "P004") for t in timepoints][:10]):
        participant = m.Participant.objects.get(study=study, participant_id=pid)
        value = 1 + k % 3
        urgent.append(Alert.objects.create(
            study=study, participant=participant, rule="suicidality", rule_type="flag", timepoint=timepoint,
            severity="urgent", value=value, action=SITE_TEXT,
            reason=f"GRID-HAMD-17 item 3 answered {value} at {labels[timepoint].lower()}: Suicide item "
                   f"endorsed (GRID-HAMD item 3 >= 1)"))
    warnings = []
    for pid, total in (("P006", 31), ("P001", 29)):
        participant = m.Participant.objects.get(study=study, participant_id=pid)
        warnings.append(Alert.objects.create(
            study=study, participant=participant, rule="low_alliance", rule_type="low_alliance", timepoint="prep",
            severity="warning", value=total,
            reason=f"WAI-SR total {total} at the final preparation session is below the sample's 25th percentile"))
    closed = Alert.objects.create(
        study=study, participant=m.Participant.objects.get(study=study, participant_id="P005"),
        rule="overdue_assessment", rule_type="missed_assessment", timepoint="week1", severity="info",
        reason="GRID-HAMD-17 at 1 week after session 2 is overdue", resolved_at=timezone.now())
    assign_alerts(study, [a.pk for a in urgent[4:8]], accounts.facilitator, accounts.admin)  # P003's, P004's
    assign_alerts(study, [warnings[0].pk], accounts.investigator, accounts.admin)
    return urgent, warnings, closed


def test_bulk_acknowledge_of_ten_alerts_with_one_note_appears_in_the_audit_trail(
        web_study, accounts, browser_settings, new_page, tmp_path):  # noqa: F811
    from alliance.web.monitor.models import Alert

    target = ROOT / "docs" / "screenshots" if os.environ.get("ALLIANCE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    urgent, warnings, closed = _alerts(web_study, accounts)
    page = new_page(WIDE)
    log_in(page, "investigator")
    page.goto(f"/monitor/studies/{STUDY}/alerts/")
    counts = page.locator(".counts").inner_text()
    assert re.search(r"10\s+open urgent", counts) and re.search(r"2\s+open warnings", counts)

    # Filter with the plain form: open alerts only.
    page.select_option("#id_state", "open")
    page.click("form.quality-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*state=open.*"))
    rows = page.locator("table.triage tbody tr")
    assert rows.count() == 12
    assert "Not yet active" in page.locator("table.rule-statuses").inner_text() or \
        "Active" in page.locator("table.rule-statuses").inner_text()
    assert "URGENT" in rows.first.inner_text() and "WARNING" in rows.last.inner_text()  # the most severe first
    assert SITE_TEXT in page.locator("#crisis-text").inner_text()
    # Tick a few for the picture, as a person would.
    for k in range(3):
        page.locator("input[name=alert]").nth(k).check()
    page.fill("#bulk-note", "Called; safety plan reviewed")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(target / "alert-triage.png"), full_page=False)
    assert Path(target / "alert-triage.png").stat().st_size > 10_000

    # Now the ten urgent ones: filter, tick every open alert on the page, one note.
    page.goto(f"/monitor/studies/{STUDY}/alerts/?state=open&severity=urgent")
    assert page.locator("table.triage tbody tr").count() == 10
    page.click("text=tick every open alert on this page")
    assert page.locator("input[name=alert]:checked").count() == 10
    page.click("button:has-text('Acknowledge selected')")   # the note is required: nothing is sent
    assert Alert.objects.filter(acknowledged_at__isnull=False).count() == 0
    page.fill("#bulk-note", NOTE)
    page.click("button:has-text('Acknowledge selected')")
    page.wait_for_load_state()
    assert "10 alerts acknowledged." in page.locator(".messages").inner_text()
    assert page.locator("table.triage tbody tr").count() == 0
    assert Alert.objects.filter(acknowledged_at__isnull=False, acknowledgement_note=NOTE).count() == 10
    assert all(w.is_open for w in Alert.objects.filter(pk__in=[w.pk for w in warnings]))

    # The audit trail: ten changes by the investigator, each with the note.
    page.goto(f"/studies/{STUDY}/audit/?actor=user:investigator&action=change&size=25")
    rows = page.locator("table.audit tbody tr", has_text=NOTE)
    assert rows.count() == 10
    text = page.locator("table.audit").inner_text()
    for alert in urgent:
        assert f"{alert.participant.participant_id}/{alert.timepoint}/suicidality" in text


def test_an_urgent_alert_sends_one_email_to_a_local_smtp_server(
        web_study, accounts, browser_settings, new_page, smtp_server, live_server):  # noqa: F811
    from alliance.web.audit.log import AuditLog
    from alliance.web.capture import recording
    from alliance.web.monitor.alerting import refresh_alerts
    from alliance.web.monitor.models import Alert

    port, inbox = smtp_server
    accounts.facilitator.email = "f1@example.org"
    accounts.facilitator.save()
    log = AuditLog(actor="test:setup", study=web_study)
    recording.enrol(web_study, participant_id="P100", arm=web_study.arms.get(code="immediate"),
                    enrolled_on=timezone.localdate() - timedelta(days=10),
                    facilitators=[web_study.facilitators.get(facilitator_id="F1")], log=log)
    log.write()
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
                           EMAIL_PORT=port, EMAIL_USE_TLS=False, EMAIL_HOST_USER="", EMAIL_HOST_PASSWORD="",
                           DEFAULT_FROM_EMAIL="trial@example.org", ALLIANCE_SITE_URL=live_server.url):
        # The facilitator enters the baseline GRID-HAMD-17 on paper: the suicide item is endorsed.
        staff = new_page(DESKTOP)
        log_in(staff, "facilitator")
        staff.goto(f"/studies/{STUDY}/participants/P100/forms/baseline/grid_hamd17/")
        staff.fill("#id_entry-assessed_on", timezone.localdate().isoformat())
        staff.check("input[name=entry-blinded][value=no]")
        for number in range(1, 18):
            staff.check(f"input[name=grid_hamd17_{number}][value='1']")
        staff.click("button[name=_action][value=submit]")
        staff.wait_for_url("**/participants/P100/")
        envelope = inbox.wait()
        refresh_alerts(web_study)          # the scheduled refresh: the alert is stored already, nothing sent
        assert len(inbox.envelopes) == 1

    assert envelope.rcpt_tos == ["f1@example.org"] and envelope.mail_from == "trial@example.org"
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert message["Subject"] == f"Urgent alert in {STUDY}: participant P100"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Participant: P100" in body and "Suicidality" in body and "emergency" in body
    link = re.search(rf"{re.escape(live_server.url)}/\S+/participants/P100/", body).group(0)
    alert = Alert.objects.get(participant__participant_id="P100", rule="suicidality")
    assert alert.notification == "sent to 1 facilitator" and alert.notified_at is not None

    # The link opens the participant's dashboard, which says the email went out.
    staff.goto(link)
    card = staff.locator(f"#alert-{alert.pk}")
    assert "Email to the facilitators: sent to 1 facilitator" in card.inner_text()
