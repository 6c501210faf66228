"""The audit page in a real browser: filtered by participant, changes as ``field: old → new``, CSV download.

Writes ``docs/screenshots/audit-page.png`` when ``ALLIANCE_SCREENSHOTS=1`` (otherwise to a
temporary folder), as ``test_browser.test_screenshots`` does for the dashboard.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ..webapp import STUDY
from .conftest import DESKTOP
from .test_browser import ROOT, browser_settings, log_in  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_audit_page_screenshot(web_study, accounts, browser_settings, new_page, tmp_path):  # noqa: F811
    from alliance.web.audit.log import AuditLog
    from alliance.web.audit.models import AuditEvent
    from alliance.web.capture import models as m
    from alliance.web.capture.storage import import_study

    from ..conftest import make_study

    target = ROOT / "docs" / "screenshots" if os.environ.get("ALLIANCE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    # A corrected answer (re-import) and a site typed in the participant form, both for P001.
    study = make_study()
    responses = study.responses
    row = responses.index[(responses.participant_id == "P001") & (responses.item == "grid_hamd17_1")][0]
    responses.at[row, "value"] = 0.0 if responses.at[row, "value"] != 0 else 1.0
    import_study(study, STUDY, actor="cli:import")
    participant = m.Participant.objects.get(study=web_study, participant_id="P001")
    log = AuditLog(actor="user:investigator", user=accounts.investigator, study=web_study)
    log.changed(participant, {"site": participant.site}, {"site": "Johns Hopkins Bayview, Baltimore"}, label="P001")
    log.write()

    page = new_page(DESKTOP)
    log_in(page, "investigator")
    page.goto(f"/studies/{STUDY}/audit/?participant=P001&size=25")
    assert page.locator("h1").inner_text() == f"Audit trail of {STUDY}"
    first = page.locator("table.audit tbody tr").first
    assert re.search(r"site: \(empty\)\s*→\s*Johns Hopkins Bayview, Baltimore", first.inner_text())
    page.screenshot(path=str(target / "audit-page.png"), full_page=False)
    assert Path(target / "audit-page.png").stat().st_size > 10_000

    with page.expect_download() as download_info:
        page.click("text=as CSV")
    download = download_info.value
    assert download.suggested_filename.startswith(f"{STUDY}-audit-") and download.suggested_filename.endswith(".csv")
    assert "Johns Hopkins Bayview, Baltimore" in Path(download.path()).read_text(encoding="utf-8")
    assert AuditEvent.objects.filter(action="export", new__format="audit-csv").count() == 1
