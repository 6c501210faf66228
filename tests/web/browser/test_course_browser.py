"""A participant's course on their dashboard in Chromium (issue 14): the expected-response band
given the first score, reliable change with its SD and reliability, and ruptures.

The study is ``levin2024`` re-imported with a simulated trial of 24 (enough for the study's own
baseline SD and Cronbach's alpha, reliable_change.min_n = 10); one participant's WAI-SR after session
1 is set to 12 (a rupture) and one week after session 2 back at their preparation answers (its repair). The
screenshot goes to ``docs/screenshots/participant-course.png`` when ``ALLIANCE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from alliance.simulate import simulate_trial
from alliance.web.capture.storage import import_study

from ..webapp import STUDY
from .conftest import DESKTOP
from .test_browser import ROOT, browser_settings, log_in  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_investigator_sees_the_band_reliable_change_and_a_repaired_rupture(web_study, accounts, browser_settings,  # noqa: F811
                                                                               new_page):
    study = simulate_trial(n=24, seed=7)   # the calibrated generator: items that hang together
    answers = study.responses
    wai = answers[answers["instrument"] == "wai_sr"]
    given = {p: set(tps) for p, tps in wai.groupby("participant_id")["timepoint"]}
    pid = next(p for p, tps in given.items() if {"prep", "post_session1", "week1"} <= tps)
    # A rupture: every WAI-SR answer after session 1 set to 1 (total 12), then back at prep's level.
    after = (answers["participant_id"] == pid) & (answers["instrument"] == "wai_sr")
    prep = answers[after & (answers["timepoint"] == "prep")].set_index("item")["value"]
    answers.loc[after & (answers["timepoint"] == "post_session1"), "value"] = 1
    week1 = after & (answers["timepoint"] == "week1")
    answers.loc[week1, "value"] = answers.loc[week1, "item"].map(prep).to_numpy()
    import_study(study, STUDY, actor="test:setup", allow_deletions=True)

    page = new_page(DESKTOP)
    log_in(page, "investigator")
    page.goto(reverse("monitor:participant", kwargs={"study": STUDY, "participant": pid}))
    course = page.locator("#course")
    course.scroll_into_view_if_needed()
    assert course.is_visible()
    text = page.locator("main").inner_text()
    assert "Not on track" in text                               # 20 is far below the WAI-SR band
    assert "calibrated synthetic trial" in text
    assert "repaired at 1 week after session 2" in text
    assert "Reliable change of GRID-HAMD-17 total" in text and "Cronbach's alpha of n =" in text
    if os.environ.get("ALLIANCE_SCREENSHOTS"):
        course.screenshot(path=str(ROOT / "docs" / "screenshots" / "participant-course.png"))
