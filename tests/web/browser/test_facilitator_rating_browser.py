"""A facilitator enters their own WAI-SR-T rating in Chromium (issue 13, item 5).

The study is ``levin2024`` re-imported in the protocol with the facilitators' WAI-SR-T at ``prep``
and ``week1`` (tests/web/conftest.py, ``make_rated_study``); a participant enrolled 18 days ago (in
the final preparation session's window) works with F1 (the ``facilitator`` account) and F2. The
screenshot of the participant page with one entry per facilitator goes to
``docs/screenshots/facilitator-rating.png`` when ``ALLIANCE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from alliance.web.audit.log import AuditLog
from alliance.web.capture import models as m
from alliance.web.capture import recording
from alliance.web.capture.storage import import_study

from ..conftest import make_rated_study
from ..webapp import STUDY
from .conftest import DESKTOP
from .test_browser import ROOT, browser_settings, log_in  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_facilitator_enters_their_own_rating(web_study, accounts, browser_settings, new_page, tmp_path):  # noqa: F811
    import_study(make_rated_study(), STUDY, actor="test:setup")
    log = AuditLog(actor="test:setup", study=web_study)
    participant = recording.enrol(web_study, participant_id="P210", arm=web_study.arms.get(code="immediate"),
                                  enrolled_on=timezone.localdate() - timedelta(days=18),
                                  facilitators=[web_study.facilitators.get(facilitator_id=f) for f in ("F1", "F2")],
                                  log=log)
    log.write()

    staff = new_page(DESKTOP)
    log_in(staff, "facilitator")                       # F1
    staff.goto(f"/studies/{STUDY}/participants/P210/")
    prep = staff.locator("tr", has_text="Final preparation session")
    assert "F1: not started" in prep.inner_text() and "F2: not started" in prep.inner_text()
    # only their own rating has a link: F2 enters theirs
    assert prep.get_by_role("link", name="Enter the WAI-SR-T rating of F2 at Final preparation session").count() == 0
    prep.get_by_role("link", name="Enter the WAI-SR-T rating of F1 at Final preparation session").click()
    staff.wait_for_url("**/forms/prep/wai_sr_t/?facilitator=F1")
    assert staff.locator("input[name=entry-rater][value=F1]").is_checked()
    assert staff.locator("input[name=entry-rater]").count() == 1
    assert staff.locator("input[name=entry-mode][value=paper]").is_checked()
    for number in range(1, 13):
        staff.check(f"input[name=wai_sr_t_{number}][value='{4 if number <= 6 else 5}']")
    staff.click("button[name=_action][value=submit]")
    staff.wait_for_url("**/participants/P210/")
    assert ("WAI-SR-T rating by F1 of P210 at Final preparation session is submitted"
            in staff.locator(".messages").inner_text())
    rating = m.Administration.objects.get(participant=participant, instrument="wai_sr_t")
    # 6 items × 4 + 6 items × 5 = 54
    assert (rating.facilitator.facilitator_id, rating.rater, rating.mode, rating.scores["total"]) == (
        "F1", "F1", "paper", 54.0)
    prep = staff.locator("tr", has_text="Final preparation session")
    assert "F1: submitted" in prep.inner_text() and "F2: not started" in prep.inner_text()

    target = ROOT / "docs" / "screenshots" if os.environ.get("ALLIANCE_SCREENSHOTS") == "1" else tmp_path
    # The page down to the second rated visit (1 week after session 2).
    top = staff.locator("main").bounding_box()
    last = staff.locator("tr", has_text="1 week after session 2").bounding_box()
    staff.set_viewport_size({"width": DESKTOP["width"], "height": int(last["y"] + last["height"]) + 40})
    staff.screenshot(path=str(target / "facilitator-rating.png"),
                     clip={"x": top["x"], "y": top["y"], "width": top["width"],
                           "height": last["y"] + last["height"] - top["y"] + 8})
