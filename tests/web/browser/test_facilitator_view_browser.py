"""The per-facilitator view in Chromium (issue 14, item 5).

The study is ``levin2024`` re-imported with 12 participants and WAI-SR totals drawn here
(tests/web/test_facilitator_view.py, ``study_with_totals``); F1 (the ``facilitator`` account) works
with P003, P004, P006, P007, P010 and P012. A finished analysis run's results.json holds the
facilitator-effects analysis of those data (:func:`alliance.analysis.facilitators.facilitator_effects`,
WAI-SR total one week after session 2 against the GRID-HAMD-17 total 4 weeks and 3 months after it).
An investigator goes from the study dashboard to the facilitators, to F1's page and on to a
participant's dashboard. The screenshot of F1's page goes to ``docs/screenshots/facilitator-view.png``
when ``ALLIANCE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse
from django.utils import timezone

from alliance.analysis import Results
from alliance.analysis.facilitators import facilitator_effects, facilitator_lists
from alliance.web.capture.storage import import_study
from alliance.web.monitor.models import AnalysisRun

from ..test_facilitator_view import study_with_totals
from ..webapp import STUDY
from .conftest import DESKTOP
from .test_browser import ROOT, browser_settings, log_in  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _study_and_results(tmp_path):
    rng = np.random.default_rng(14)
    pids = [f"P{k:03d}" for k in range(1, 13)]
    totals = {}
    for k, timepoint in enumerate(("prep", "post_session1", "week1")):
        totals[timepoint] = {pid: int(np.clip(round(rng.normal(40 + 3 * k, 7)), 12, 60)) for pid in pids}
    del totals["post_session1"]["P007"]   # one missed form
    study = study_with_totals(12, totals)
    scores = study.scores()
    outcome = scores[(scores["instrument"] == "grid_hamd17")].set_index(["timepoint", "participant_id"])["total"]
    alliance = pd.Series(totals["week1"], dtype=float)
    lists = facilitator_lists(study.participants.set_index("participant_id")["facilitator_ids"])
    entries = []
    for timepoint in ("week4", "month3"):
        found = facilitator_effects(alliance, outcome.loc[timepoint].astype(float), lists)
        entries.append({"analysis": "facilitator_effects", "family": "facilitator_effects",
                        "x": "wai_sr.total@week1", "y": f"grid_hamd17.total@{timepoint}", **found,
                        "p": found["association"]["x"]["p"], "p_adjusted": None})
    folder = tmp_path / "run-1"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(Results(facilitator_effects=tuple(entries),
                                                            provenance={}).to_dict()), encoding="utf-8")
    return study, folder, totals


def test_an_investigator_opens_a_facilitators_page(web_study, accounts, browser_settings, new_page, tmp_path):  # noqa: F811
    study, folder, totals = _study_and_results(tmp_path)
    import_study(study, STUDY, actor="test:setup", allow_deletions=True)
    browser_settings.DATA_DIR = tmp_path
    AnalysisRun.objects.create(study=web_study, status=AnalysisRun.Status.DONE, output_dir=str(folder),
                               n_participants=12, seconds=1.0, finished_at=timezone.now())

    page = new_page(DESKTOP)
    log_in(page, "investigator")
    page.goto(reverse("monitor:study", kwargs={"study": STUDY}))
    page.get_by_role("link", name="Facilitators", exact=True).click()
    page.wait_for_url("**/facilitators/")
    table = page.locator("#facilitator-table")
    assert [row.inner_text().split("\t")[0].strip() for row in table.locator("tbody tr").all()] == [
        "The study (all participants)", "F1", "F2", "F3"]
    page.get_by_role("link", name="F1", exact=True).click()
    page.wait_for_url("**/facilitators/F1/")
    assert page.locator("h1").inner_text() == "Facilitator F1"
    chart = page.locator("figure.chart-box svg")
    # The svg's name summarises the data; the figcaption names the figure (no repetition).
    caption = page.locator("figure.chart-box figcaption").inner_text()
    label = chart.get_attribute("aria-label")
    assert label != caption and label.startswith("Boxes (study: median and quartiles)"), label
    assert chart.locator("rect[fill='#dfe4ea']").count() == 3 + 1   # a box per alliance timepoint, and the legend's
    scores = page.locator("#facilitator-scores tbody tr")
    assert scores.count() == 2 + 6
    p003 = page.locator("#facilitator-scores tr", has_text="P003")
    assert p003.locator("td").all_inner_texts() == [str(totals[t]["P003"]) for t in ("prep", "post_session1", "week1")]
    effects = page.locator("#facilitator-effects tbody tr")
    assert effects.count() == 1 + 2   # the alliance measure, then a row per outcome
    assert "Fewer than 30 participants or 10 facilitators" in page.locator("ul.note").inner_text()

    target = ROOT / "docs" / "screenshots" if os.environ.get("ALLIANCE_SCREENSHOTS") == "1" else tmp_path
    main = page.locator("main")
    page.set_viewport_size({"width": DESKTOP["width"], "height": int(main.bounding_box()["height"]) + 120})
    box = main.bounding_box()
    page.screenshot(path=str(target / "facilitator-view.png"),
                    clip={"x": box["x"], "y": box["y"], "width": box["width"], "height": box["height"]})

    page.get_by_role("link", name="P003", exact=True).click()
    page.wait_for_url("**/participants/P003/")
    assert page.locator("h1").inner_text().startswith("P003")
