"""The data-quality page of the demo study in a real browser (Debian's Chromium), as an investigator.

The study is the one ``alliance demo`` stores (``simulate_trial(default_protocol(), n=24,
seed=2024)``): its simulated forms have the unanswered items, the form that cannot be scored and
the floor and ceiling scores a real trial has. Writes ``docs/screenshots/quality.png`` when
``ALLIANCE_SCREENSHOTS=1`` (otherwise to a temporary folder), as the other screenshot tests do.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import DESKTOP
from .test_browser import ROOT, browser_settings, log_in  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

DEMO = "levin2024-demo"


def test_quality_page_screenshot(web_study, accounts, browser_settings, new_page, tmp_path):  # noqa: F811
    from alliance.protocol import default_protocol
    from alliance.simulate import simulate_trial
    from alliance.web.accounts.members import set_membership
    from alliance.web.audit.log import AuditLog
    from alliance.web.capture import models as m
    from alliance.web.capture.storage import import_study

    target = ROOT / "docs" / "screenshots" if os.environ.get("ALLIANCE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    import_study(simulate_trial(default_protocol(), n=24, seed=2024), DEMO, actor="cli:demo")
    demo = m.Study.objects.get(name=DEMO)
    log = AuditLog(actor="test:setup", study=demo)
    set_membership(accounts.investigator, demo, "investigator", log)
    log.write()

    page = new_page({"width": 1360, "height": 1200})
    log_in(page, "investigator")
    page.goto(f"/studies/{DEMO}/")
    page.click("text=Data quality")
    assert page.locator("h1").inner_text() == f"Data quality: {DEMO}"
    rows = page.locator("table.quality tbody tr")
    assert rows.count() > 10
    assert rows.first.locator("td").first.inner_text().strip().lower() == "error"   # most severe first
    # the filter keeps the counts and narrows the table
    page.select_option("#quality-severity", "warning")
    page.click("text=Show")
    assert {text.strip().lower() for text in page.locator("table.quality tbody td:first-child").all_inner_texts()} \
        == {"warning"}
    page.click("text=Clear filters")
    page.screenshot(path=str(target / "quality.png"), full_page=False)
    assert Path(target / "quality.png").stat().st_size > 10_000
    # each finding opens the participant's record
    participant = rows.first.locator("th a").inner_text()
    rows.first.locator("th a").click()
    assert page.locator("h1").inner_text().startswith(participant)
    page.set_viewport_size(DESKTOP)
