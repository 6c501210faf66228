"""A chart's numbers reached with the keyboard: the study dashboard's cohort chart and its table (issue 18).

An investigator who does not use a mouse (the points' tooltips open only on hover) tabs to the
"Table: …" summary under a cohort chart, opens it with Enter, and reads every mean and interval
the chart draws; the table's numbers equal the chart's own point titles. The chart with its open
table is photographed to ``docs/screenshots/chart-with-table.png`` when ``ALLIANCE_SCREENSHOTS=1``
(otherwise to a temporary folder).
"""

from __future__ import annotations

import os
import re

import pytest
from django.urls import reverse

from ..webapp import STUDY
from .conftest import DESKTOP
from .test_browser import ROOT, browser_settings, log_in  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_cohort_chart_table_opens_from_the_keyboard(web_study, accounts, browser_settings, new_page,  # noqa: F811
                                                      tmp_path):
    page = new_page(DESKTOP)
    log_in(page, "investigator")
    page.goto(reverse("monitor:study", kwargs={"study": STUDY}))
    figure = page.locator("figure.chart-box").first
    summary = figure.locator("details > summary")
    caption = figure.locator("figcaption").inner_text()
    assert summary.inner_text() == f"Table: {caption}"
    assert not figure.locator("table").is_visible()

    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "SUMMARY":
            break
    else:
        raise AssertionError("Tab never reached a chart's table")
    assert page.evaluate("document.activeElement.innerText") == summary.inner_text()
    page.keyboard.press("Enter")
    table = figure.locator("table")
    assert table.is_visible()

    # Every point the chart draws is a cell of the table: "<arm>, <timepoint>: <mean> (n = …, 95% CI …)".
    titles = figure.locator("svg title").evaluate_all("els => els.map(e => e.textContent)")
    points = [re.match(r"(.+), (.+): (-?[\d.]+) \(n = (\d+)", t) for t in titles]
    points = [p for p in points if p]
    assert points, titles
    headers = table.locator("thead th").all_inner_texts()
    for point in points:
        arm, timepoint, mean, n = point.groups()
        row = table.locator("tbody tr").filter(has=page.locator("th", has_text=timepoint)).first
        cells = dict(zip(headers[1:], row.locator("td").all_inner_texts(), strict=True))
        assert cells[f"{arm}: mean"] == mean and cells[f"{arm}: n"] == n, (point.group(0), cells)

    target = ROOT / "docs" / "screenshots" if os.environ.get("ALLIANCE_SCREENSHOTS") == "1" else tmp_path
    figure.screenshot(path=str(target / "chart-with-table.png"))
    assert (target / "chart-with-table.png").stat().st_size > 10_000
