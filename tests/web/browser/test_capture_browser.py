"""Capture in Chromium (issue 12, "Done means"): staff entry, a whole visit from one link, reminders, revoking.

- staff enter a paper WAI-SR with its assessment date (desktop);
- a reminder email is delivered to a real SMTP server (aiosmtpd on 127.0.0.1) by the scheduler's
  run, and not a second time on the next run; the participant opens its link on a phone viewport
  and completes the whole visit from that one link;
- staff revoke a link on the links page and the participant's browser is refused.

Screenshots of the staff entry form and the links page go to ``docs/screenshots/`` when
``ALLIANCE_SCREENSHOTS=1`` (otherwise to a temporary folder).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.test import override_settings
from django.utils import timezone

from alliance.web.audit.log import AuditLog
from alliance.web.capture import models as m
from alliance.web.capture import recording

from ..webapp import STUDY
from .conftest import DESKTOP, PHONE
from .test_browser import ROOT, browser_settings, log_in  # noqa: F401
from .test_invitation_browser import smtp_server  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "sam.participant@example.org"


def _target(tmp_path):
    return ROOT / "docs" / "screenshots" if os.environ.get("ALLIANCE_SCREENSHOTS") == "1" else tmp_path


def _enrol(study, pid: str, days_ago: int, email: str | None = None):
    log = AuditLog(actor="test:setup", study=study)
    participant = recording.enrol(study, participant_id=pid, arm=study.arms.get(code="immediate"),
                                  enrolled_on=timezone.localdate() - timedelta(days=days_ago),
                                  facilitators=[study.facilitators.get(facilitator_id="F1")],
                                  identifiers={"email": email} if email else {}, log=log)
    log.write()
    return participant


def test_staff_enter_a_paper_wai_sr_with_its_date(web_study, accounts, browser_settings, new_page, tmp_path):  # noqa: F811
    participant = _enrol(web_study, "P200", days_ago=19)
    staff = new_page(DESKTOP)
    log_in(staff, "facilitator")
    staff.goto(f"/studies/{STUDY}/participants/P200/")
    staff.locator("tr", has_text="Final preparation session").get_by_role("link", name="Enter (paper or tablet)").click()
    staff.wait_for_url("**/forms/prep/wai_sr/")
    assert staff.locator("legend", has_text="Entry details").is_visible()
    assert staff.locator("input[name=entry-mode][value=paper]").is_checked()
    paper_day = timezone.localdate() - timedelta(days=1)
    staff.fill("#id_entry-assessed_on", paper_day.isoformat())
    staff.fill("#id_entry-assessed_time", "09:45")
    for number in range(1, 13):
        staff.check(f"input[name=wai_sr_{number}][value='4']")
    staff.evaluate("window.scrollTo(0, 0)")
    staff.screenshot(path=str(_target(tmp_path) / "staff-entry.png"), full_page=False)
    staff.click("button[name=_action][value=submit]")
    staff.wait_for_url("**/participants/P200/")
    assert "WAI-SR of P200 at Final preparation session is submitted" in staff.locator(".messages").inner_text()
    given = m.Administration.objects.get(participant=participant, instrument="wai_sr")
    assert given.status == "submitted" and given.mode == "paper" and given.scores["total"] == 48.0
    assert given.administered_at.startswith(f"{paper_day.isoformat()}T09:45:00")
    row = staff.locator("tr", has_text="Final preparation session")
    assert "submitted" in row.inner_text()

    # A date in the future is refused, with the field named and focusable from the summary.
    staff.goto(f"/studies/{STUDY}/participants/P200/forms/baseline/grid_hamd17/")
    staff.fill("#id_entry-assessed_on", (timezone.localdate() + timedelta(days=3)).isoformat())
    staff.click("button[name=_action][value=submit]")
    summary = staff.locator(".note.error", has_text="entry details")
    assert "is in the future" in summary.inner_text() and "Say whether the rater was blind" in summary.inner_text()
    assert staff.input_value("#id_entry-rater") == "facilitator"   # the rater defaults to the one entering


def test_a_reminder_by_email_and_a_whole_visit_from_one_link_on_a_phone(
        web_study, accounts, browser_settings, new_page, smtp_server, live_server, monkeypatch,  # noqa: F811
        tmp_path):
    from alliance.web.monitor import scheduler

    port, inbox = smtp_server
    # prep's window opened yesterday: today reminder 1 is due (prep reminds after 1 and 2 days)
    participant = _enrol(web_study, "P201", days_ago=18, email=EMAIL)
    _enrol(web_study, "P202", days_ago=18)   # no address: skipped, said on the links page
    monkeypatch.setattr(scheduler.connections, "close_all", lambda: None)   # the test's own connection
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
                           EMAIL_PORT=port, EMAIL_USE_TLS=False, EMAIL_HOST_USER="", EMAIL_HOST_PASSWORD="",
                           DEFAULT_FROM_EMAIL="trial@example.org", ALLIANCE_SITE_URL=live_server.url):
        refresher = scheduler.Refresher(900.0)
        refresher.run_once()          # what `alliance serve` does every 15 minutes
        envelope = inbox.wait()
        refresher.run_once()          # the next quarter-hour: nothing again
        assert len(inbox.envelopes) == 1

    assert envelope.rcpt_tos == [EMAIL] and envelope.mail_from == "trial@example.org"
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert message["Subject"] == "Reminder: Your questionnaires"
    body = message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(rf"{re.escape(live_server.url)}/v/\S+/", body).group(0)
    assert m.Notification.objects.get(participant=participant, status="sent").number == 1

    phone = new_page(PHONE)
    phone.goto(link)
    assert phone.locator("h1").inner_text().startswith("Your questionnaires")
    phone.click("text=Start: WAI-SR")
    for number in range(1, 13):
        phone.check(f"input[name=wai_sr_{number}][value='5']")
    phone.click("button[name=_action][value=submit]")
    phone.wait_for_url(link)
    assert "All questionnaires of this visit are submitted" in phone.locator("main").inner_text()
    # no horizontal scrolling on the phone
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    given = m.Administration.objects.get(participant=participant, timepoint__code="prep", instrument="wai_sr")
    assert (given.status, given.mode, given.scores["total"]) == ("submitted", "link", 60.0)


def test_a_dosing_day_visit_of_four_forms_from_one_link_on_a_phone(web_study, accounts, new_page,
                                                                    browser_settings):  # noqa: F811
    participant = _enrol(web_study, "P203", days_ago=21)   # session 1 planned today
    log = AuditLog(actor="test:setup", study=web_study)
    token, _ = recording.create_visit_link(participant, web_study.timepoints.get(code="session1"), log=log,
                                           expires_at=timezone.now() + timedelta(days=2))
    log.write()
    phone = new_page(PHONE)
    phone.goto(f"/v/{token}/")
    assert "This visit has 4 questionnaires" in phone.locator("main").inner_text()  # MEQ30, insight, EBI, CEQ
    phone.click("text=Start: MEQ30")
    for number in range(1, 31):
        phone.check(f"input[name=meq30_{number}][value='3']")
    phone.click("button[name=_action][value=submit]")
    phone.wait_for_url(f"**/v/{token}/")
    assert "1 done" in phone.locator("main").inner_text()
    phone.click("text=Start: Insight")
    phone.fill("#insight_1-value", "72")
    phone.click("button[name=_action][value=submit]")
    phone.wait_for_url(f"**/v/{token}/")
    # the participant stops here and comes back later with the same link
    phone.goto(f"/v/{token}/")
    phone.click("text=Start: EBI")
    for number in range(1, 7):
        phone.fill(f"#ebi_{number}-value", "64.5")
    phone.click("button[name=_action][value=submit]")
    phone.wait_for_url(f"**/v/{token}/")
    phone.click("text=Start: CEQ")  # the challenging experience of the session (issue 16)
    for number in range(1, 27):
        phone.check(f"input[name=ceq_{number}][value='1']")
    phone.click("button[name=_action][value=submit]")
    phone.wait_for_url(f"**/v/{token}/")
    assert "All questionnaires of this visit are submitted" in phone.locator("main").inner_text()
    states = dict(m.Administration.objects.filter(participant=participant, timepoint__code="session1")
                  .values_list("instrument", "status"))
    assert states == {"meq30": "submitted", "insight": "submitted", "ebi": "submitted", "ceq": "submitted"}


def test_staff_revoke_a_link_and_it_is_refused(web_study, accounts, browser_settings, new_page, tmp_path):  # noqa: F811
    participant = _enrol(web_study, "P204", days_ago=17)
    staff = new_page(DESKTOP)
    log_in(staff, "facilitator")
    staff.goto(f"/studies/{STUDY}/participants/P204/")
    staff.locator("tr", has_text="Final preparation session").get_by_role("button", name=re.compile("visit link")).click()
    link = staff.input_value("#private-link")
    assert "/v/" in link
    other = _enrol(web_study, "P205", days_ago=17)
    log = AuditLog(actor="test:setup", study=web_study)
    week1 = web_study.timepoints.get(code="week1")
    _, emailed = recording.create_visit_link(other, week1, log=log, origin=m.VisitLink.Origin.INVITATION,
                                             expires_at=timezone.now() + timedelta(days=5))
    log.write()
    # as the sender leaves it: the invitation sent with this link, a reminder not sent (the participant opted out)
    m.Notification.objects.create(participant=other, timepoint=week1, kind="invitation", number=0, link=emailed,
                                  due_on=timezone.localdate(), status="sent", attempts=1, sent_at=timezone.now())
    m.Notification.objects.create(participant=other, timepoint=week1, kind="reminder", number=1,
                                  due_on=timezone.localdate(), status="skipped",
                                  reason="the participant opted out of emails")

    phone = new_page(PHONE)
    phone.goto(link)
    assert phone.locator("h1").inner_text().startswith("Your questionnaires")
    phone.click("text=Start: WAI-SR")
    phone.check("input[name=wai_sr_1][value='4']")
    phone.click("button[name=_action][value=draft]")
    phone.wait_for_url("**/wai_sr/")

    staff.goto(f"/studies/{STUDY}/links/")
    row = staff.locator("tbody tr", has_text="P204")
    assert "in progress" in row.inner_text()
    staff.screenshot(path=str(_target(tmp_path) / "links.png"), full_page=False)
    row.get_by_role("button", name=re.compile("Revoke")).click()
    staff.wait_for_url("**/links/")
    assert "no longer opens" in staff.locator(".messages").inner_text()
    assert "revoked" in staff.locator("tbody tr", has_text="P204").inner_text()

    response = phone.goto(link)
    assert response.status == 410 and "This link no longer works" in phone.locator("h1").inner_text()
    kept = m.ItemResponse.objects.get(administration__participant=participant, item="wai_sr_1")
    assert kept.value == 4.0
