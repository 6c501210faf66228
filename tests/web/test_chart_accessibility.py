"""The dashboards' charts meet WCAG 2.1 AA: series told apart without colour, a data summary as the
svg's name, a table of every number after every chart, legends that are not cut, 3:1 contrast.

Expected numbers come from outside the chart code: cohort means and t intervals are computed here
with pandas and scipy from the stored administrations, acute percentages from the instruments'
ranges, contrast ratios with WCAG 2.1's formula (``test_colour_contrast.contrast``, checked there on known values).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html import escape, unescape
from html.parser import HTMLParser

import pandas as pd
import pytest
from django.urls import reverse
from scipy import stats

from alliance import instruments as bank
from alliance.web.capture import models as m
from alliance.web.capture.queries import study_protocol
from alliance.web.monitor import charts
from alliance.web.monitor.dashboards import dashboard_roles

from .test_colour_contrast import contrast
from .webapp import OWN, STUDY, client_for

NS = "{http://www.w3.org/2000/svg}"
CHAR_WIDTH = 6.5   # the width the chart code estimates for a character of its 11 px font


# -- reading charts and tables back ----------------------------------------------------------------

def svg_root(svg) -> ET.Element:
    return ET.fromstring(str(svg))


def view_width(root: ET.Element) -> float:
    return float(root.get("viewBox").split()[2])


def shape_of(element: ET.Element) -> tuple:
    """A marker's shape as drawn: its element, and for polygons the corner count and whether it points up."""
    tag = element.tag.removeprefix(NS)
    filled = element.get("fill") != "#fff"
    if tag != "polygon":
        return tag, filled
    points = [tuple(map(float, p.split(","))) for p in element.get("points").split()]
    mean_y = sum(y for _, y in points) / len(points)
    return tag, len(points), points[0][1] < mean_y, filled


def series_marks(root: ET.Element, label: str) -> list[ET.Element]:
    """The markers whose tooltip names the series ``label``."""
    return [e for e in root.iter() if e.tag in (NS + "circle", NS + "rect", NS + "polygon")
            and (title := e.find(NS + "title")) is not None and title.text.startswith(label + ", ")]


def legend_entries(root: ET.Element) -> list[dict]:
    legend = root.find(f"{NS}g[@class='legend']")
    entries = []
    for entry in legend.findall(NS + "g"):
        text = entry.find(NS + "text")
        spans = text.findall(NS + "tspan")
        line = entry.find(NS + "line")
        shapes = [e for e in entry if e.tag in (NS + "circle", NS + "polygon")
                  or (e.tag == NS + "rect" and e.get("stroke-width") == "1.5")]
        entries.append({"label": " ".join(s.text or "" for s in spans), "spans": spans,
                        "dash": None if line is None else line.get("stroke-dasharray", ""),
                        "color": None if line is None else line.get("stroke"),
                        "shape": shape_of(shapes[0]) if shapes else None})
    return entries


class Tables(HTMLParser):
    """Every table of an HTML text: caption, header cells, and body rows (a missing value: ``None``)."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self._where = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"caption": "", "head": [], "rows": []})
        elif tag == "caption":
            self._cell, self._where = [], "caption"
        elif tag == "thead":
            self._where = "head"
        elif tag == "tbody":
            self._where = "body"
        elif tag == "tr" and self._where == "body":
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "caption":
            self.tables[-1]["caption"] = "".join(self._cell).strip()
            self._cell = None
        elif tag in ("th", "td") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            value = None if text == "—no data" else text
            (self.tables[-1]["head"] if self._where == "head" else self.tables[-1]["rows"][-1]).append(value)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def figures(html: str) -> list[dict]:
    """Each chart figure of a page: its caption, svg, and the tables inside it; ``after``: the page after it."""
    found = []
    for match in re.finditer(r'<figure class="chart-box">(.*?)</figure>', html, re.S):
        inner = match.group(1)
        found.append({"caption": unescape(re.search(r"<figcaption>(.*?)</figcaption>", inner, re.S).group(1).strip()),
                      "svg": svg_root(re.search(r"<svg.*?</svg>", inner, re.S).group(0)),
                      "tables": Tables(inner).tables, "inner": inner, "after": html[match.end():]})
    return found


# -- the chart functions ------------------------------------------------------------------------------

X = ["Baseline", "Session 1", "Week 1", "Week 4", "Month 3"]
FIVE = [charts.Series(f"arm {name}", [4.1 + k, 4.5 + k, None, 5.0 + k, 5.3 + k]) for k, name in enumerate("ABCDE")]


def test_each_line_has_its_own_marker_and_pattern_and_the_legend_shows_the_same():
    chart = charts.line_chart(X, FIVE, caption="Five arms", y_range=(0, 10), markers=[1], marker_label="dosing")
    root = svg_root(chart.svg)
    polylines = root.findall(NS + "polyline")
    assert len(polylines) == 5
    drawn = []
    for k, s in enumerate(FIVE):
        marks = series_marks(root, s.label)
        assert len(marks) == 4                               # one per value, none where it is None
        shapes = {shape_of(e) for e in marks}
        assert len(shapes) == 1                              # the same marker at every point of a series
        drawn.append((shapes.pop(), polylines[k].get("stroke-dasharray", "")))
    assert len(set(drawn)) == 5                              # (marker, pattern) differs between every two
    assert len({shape for shape, _ in drawn}) == 5           # the marker alone tells them apart
    assert len({dash for _, dash in drawn}) == 4             # solid, dashed, dotted, dash-dot, then solid again
    entries = legend_entries(root)
    assert [e["label"] for e in entries] == [s.label for s in FIVE] + ["dosing"]
    for entry, (shape, dash), polyline in zip(entries, drawn, polylines, strict=False):
        assert (entry["shape"], entry["dash"], entry["color"]) == (shape, dash, polyline.get("stroke"))


def test_the_summary_is_the_data_not_the_caption():
    chart = charts.line_chart(X, FIVE[:2], caption="Two arms", y_range=(0, 10))
    root = svg_root(chart.svg)
    assert root.get("role") == "img"
    assert root.get("aria-label") == chart.summary != chart.caption
    assert root.find(NS + "title") is None                   # no second name to be read as the description
    assert chart.summary.startswith("2 lines over 5 timepoints, Baseline to Month 3. arm A, 4 values, "
                                    "from 4.1 at Baseline to 5.3 at Month 3, lowest 4.1, highest 5.3.")


def test_the_table_holds_every_point_with_its_interval_and_n():
    series = charts.Series("arm A", [4.125, None, 5.0], [(3.5, 4.75), None, (4.0, 6.0)], n=[8, 0, 7],
                           statistic="mean", decimals=2)
    chart = charts.line_chart(["Baseline", "Dosing", "Week 1"], [series], caption="c", y_range=(0, 10),
                              markers=[1])
    assert chart.table.columns == ("arm A: mean", "arm A: 95% CI", "arm A: n")
    # the dosing row has n = 0, so it stays (a marked position is left out only when it has nothing)
    assert [(row.label, row.cells) for row in chart.table.rows] == [
        ("Baseline", ("4.12", "3.50 to 4.75", "8")), ("Dosing", (None, None, "0")),
        ("Week 1", ("5.00", "4.00 to 6.00", "7"))]
    # the tooltip says the same
    assert "arm A, Baseline: 4.12 (n = 8, 95% CI 3.50 to 4.75)" in str(chart.svg)
    assert chart.summary.startswith("A line over 3 timepoints, Baseline to Week 1. arm A (mean, 95% CI), 2 values, "
                                    "from 4.12 at Baseline to 5.00 at Week 1.")
    assert [e["label"] for e in legend_entries(svg_root(chart.svg))] == ["arm A (mean, 95% CI)"]


def test_text_from_data_is_escaped_in_the_summary_and_the_svg():
    chart = charts.line_chart(['<b>"x"</b>'], [charts.Series("<script>&", [1.0])], caption="c", y_range=(0, 2))
    assert "<script>" not in str(chart.svg) and "<b>" not in str(chart.svg)
    root = svg_root(chart.svg)                                # still well-formed
    assert root.get("aria-label") == ('A line over 1 timepoints, <b>"x"</b> to <b>"x"</b>. <script>&, 1 at '
                                      '<b>"x"</b>. Every value is in the table after the chart.')


LONG = ["Immediate treatment with psilocybin and the full preparation programme (mean, 95% CI)",
        "Delayed treatment (8-week waiting list, then the same programme) (mean, 95% CI)",
        "Averyveryverylongwordwithoutanyspacesthatcannotwrapanywhereatallinalegendrowofthischart"]


def test_long_legend_labels_wrap_and_stay_inside_the_chart():
    series = [charts.Series(label, [1.0, 2.0, 3.0]) for label in LONG]
    chart = charts.line_chart(["a", "b", "c"], series, caption="c", y_range=(0, 5), markers=[1],
                              marker_label="dosing session")
    root = svg_root(chart.svg)
    labels = [*LONG, "dosing session"]
    entries = legend_entries(root)
    # every label whole: its lines, joined, give it back (the long word split, nothing dropped)
    assert [e["label"] for e in entries[:2]] == LONG[:2]
    assert "".join(s.text for s in entries[2]["spans"]) == LONG[2]
    assert entries[3]["label"] == "dosing session"
    width = view_width(root)
    for entry in entries:
        for span in entry["spans"]:
            assert float(span.get("x")) + CHAR_WIDTH * len(span.text) <= width, span.text
    # the plot starts under the legend's last line
    texts = root.find(f"{NS}g[@class='legend']").iter(NS + "text")
    legend_bottom = max(float(t.get("y")) + 13 * (len(t.findall(NS + "tspan")) - 1) for t in texts)
    plot_top = min(float(line.get("y1")) for line in root.findall(NS + "line") if line.get("stroke") == "#888")
    assert legend_bottom < plot_top
    assert len(labels) == len(entries)


@pytest.mark.parametrize("kind", ["bar", "distribution"])
def test_long_legend_labels_wrap_in_bar_and_distribution_charts(kind):
    if kind == "bar":
        chart = charts.bar_chart(["MEQ30", "EBI"], LONG[:2], [[50.0, 60.0], [70.0, None]], caption="c")
        labels = LONG[:2]
    else:
        chart = charts.distribution_chart(["a", "b"], [charts.Spread(2, 1, 3, 5), None],
                                          [charts.Series(label, [1.0, 2.0]) for label in LONG[:2]], caption="c",
                                          y_range=(0, 5), spread_label="study: median and quartiles")
        labels = ["study: median and quartiles", *LONG[:2]]
    root = svg_root(chart.svg)
    entries = legend_entries(root)
    assert [e["label"] for e in entries] == labels
    for entry in entries:
        for span in entry["spans"]:
            assert float(span.get("x")) + CHAR_WIDTH * len(span.text) <= view_width(root), span.text


def test_each_bar_carries_its_label_and_the_table_its_value():
    chart = charts.bar_chart(["MEQ30", "EBI"], ["Session 1", "Session 2"], [[50.0, 62.5], [70.0, None]],
                             caption="Acute", group_header="Measure", y_label="% of maximum")
    root = svg_root(chart.svg)
    bars = [e for e in root.findall(NS + "rect") if e.find(NS + "title") is not None]
    assert len(bars) == 3
    under = [" ".join(s.text for s in t.findall(NS + "tspan")) for t in root.findall(NS + "text")
             if t.findall(NS + "tspan")]
    assert under == ["Session 1", "Session 2", "Session 1"]   # the missing bar has no label either
    assert (chart.table.row_header, chart.table.columns) == ("Measure", ("Session 1", "Session 2"))
    assert [(r.label, r.cells) for r in chart.table.rows] == [("MEQ30", ("50", "62.5")), ("EBI", ("70", None))]
    assert "MEQ30: Session 1 50, Session 2 62.5. EBI: Session 1 70, Session 2 no data." in chart.summary


def test_every_chart_colour_has_3_to_1_contrast_against_white():
    for color in (*charts.PALETTE, charts.GREY):
        assert contrast(color) >= 3.0, color


# -- the pages --------------------------------------------------------------------------------------------

def _submitted(study) -> pd.DataFrame:
    """Every submitted administration's scores, straight from the database."""
    rows = [(a.participant.participant_id, a.participant.arm.code, a.timepoint.code, a.instrument, scale, value)
            for a in m.Administration.objects.filter(participant__study=study, status="submitted")
            .select_related("participant__arm", "timepoint")
            for scale, value in (a.scores or {}).items() if isinstance(value, int | float)]
    return pd.DataFrame(rows, columns=["participant_id", "arm", "timepoint", "instrument", "scale", "value"])


def _check_page_charts(found: list[dict]) -> None:
    for figure in found:
        name = figure["svg"].get("aria-label")
        assert figure["svg"].get("role") == "img"
        assert name and name != figure["caption"] and figure["caption"] not in name
        assert figure["svg"].find(NS + "title") is None
        for polyline in figure["svg"].iter(NS + "polyline"):
            if polyline.get("stroke-opacity") is None:
                assert contrast(polyline.get("stroke")) >= 3.0
        for entry in legend_entries(figure["svg"]):
            assert entry["color"] is None or contrast(entry["color"]) >= 3.0


def _table_of(figure: dict) -> dict:
    """The figure's own table, in a details element after the svg, captioned with the figure's caption."""
    assert re.search(rf"</svg>\s*<details class=\"chart-table\">\s*<summary>Table: {re.escape(escape(figure['caption']))}"
                     r"</summary>", figure["inner"])
    (table,) = figure["tables"]
    assert table["caption"] == f"The chart's numbers: {figure['caption']}"
    return table


@pytest.mark.django_db
def test_study_dashboard_cohort_charts_have_tables_of_the_means_computed_from_the_scores(web_study, accounts, client):
    client_for(client, accounts, "investigator")
    html = client.get(reverse("monitor:study", kwargs={"study": STUDY})).content.decode()
    found = figures(html)
    assert [f["caption"] for f in found] == [
        "Alliance: WAI-SR total: mean with 95% CI per timepoint, by arm",
        "Depression: GRID-HAMD-17 total: mean with 95% CI per timepoint, by arm"]
    _check_page_charts(found)
    protocol = study_protocol(web_study)
    scores = _submitted(web_study)
    for figure, (instrument, scale) in zip(found, [("wai_sr", "total"), ("grid_hamd17", "total")], strict=True):
        table = _table_of(figure)
        head = ["Timepoint"]
        for arm in protocol.arms:
            head += [f"{arm.label}: mean", f"{arm.label}: 95% CI", f"{arm.label}: n"]
        assert table["head"] == head
        given = [t for t in protocol.timepoints if instrument in t.instruments]
        assert [row[0] for row in table["rows"]] == [t.label for t in given]
        mine = scores[(scores.instrument == instrument) & (scores.scale == scale)]
        expected = []
        for t in given:
            row = [t.label]
            for arm in protocol.arms:
                values = mine[(mine.arm == arm.id) & (mine.timepoint == t.id)]["value"]
                mean, n = values.mean(), len(values)
                low, high = stats.t.interval(0.95, n - 1, loc=mean, scale=values.std(ddof=1) / n ** 0.5)
                row += [f"{mean:.2f}", f"{low:.2f} to {high:.2f}", str(n)]
            expected.append(row)
        assert table["rows"] == expected
        assert all(int(row[3]) == 3 for row in expected)      # six participants, three per arm


@pytest.mark.django_db
def test_participant_dashboard_every_chart_has_a_table_of_its_scores(web_study, accounts, client):
    client_for(client, accounts, "facilitator")
    html = client.get(reverse("monitor:participant", kwargs={"study": STUDY, "participant": OWN})).content.decode()
    found = figures(html)
    _check_page_charts(found)
    protocol = study_protocol(web_study)
    scores = _submitted(web_study)
    mine = scores[scores.participant_id == OWN]
    value = {(r.timepoint, r.instrument, r.scale): r.value for r in mine.itertuples()}
    by_caption = {f["caption"]: f for f in found}
    for caption, instrument, scales in (("Alliance: WAI-SR total", "wai_sr", ["total"]),
                                        ("Alliance: WAI-SR goal, task, bond", "wai_sr", ["goal", "task", "bond"]),
                                        ("Depression: GRID-HAMD-17 total", "grid_hamd17", ["total"])):
        table = _table_of(by_caption[caption])
        given = [t for t in protocol.timepoints if instrument in t.instruments]
        assert [row[0] for row in table["rows"]] == [t.label for t in given]
        for row, t in zip(table["rows"], given, strict=True):
            assert [float(cell) for cell in row[1:]] == [round(value[(t.id, instrument, s)], 1) for s in scales]
    # the acute bars: a percentage of each scale's range, per dosing session
    roles = dashboard_roles(protocol)
    table = _table_of(by_caption["Acute experience per dosing session (% of each scale's maximum)"])
    assert table["head"] == ["Measure", *(protocol.timepoint(t).label for t in roles.dosing_timepoints)]
    for row, (instrument, scale) in zip(table["rows"], roles.acute_measures, strict=True):
        low, high = next(s.range for s in bank.get(instrument).scales if s.id == scale)
        assert row[0] == bank.get(instrument).short_name
        assert [float(cell) for cell in row[1:]] == [
            round(100 * (value[(t, instrument, scale)] - low) / (high - low), 1) for t in roles.dosing_timepoints]
    # the two expected-response charts: their numbers are in the course table right after them
    course = [f for f in found if f["caption"].startswith("Expected response: ")]
    assert len(course) == 2 and len(found) == 6
    for figure in course:
        assert not figure["tables"]                              # no second table: the page's own follows
        table = Tables(figure["after"]).tables[0]
        assert table["caption"].startswith("The chart's numbers.")
        own = {row[0]: row for row in table["rows"]}
        label = figure["caption"].removeprefix("Expected response: ")
        observed = series_marks(figure["svg"], f"{label} (this participant)")
        curve = "expected, 95% band (given the first score)"
        expected = series_marks(figure["svg"], curve)
        assert observed and expected
        for mark in observed:           # "WAI-SR total (this participant), Baseline: 26"
            timepoint, shown = mark.find(NS + "title").text.removeprefix(f"{label} (this participant), ").split(": ")
            assert float(own[timepoint][1]) == float(shown)
        for mark in expected:           # "expected, …, Week 1: 9.9 (95% band 2.1 to 17.6)", or the first score
            timepoint, shown = re.match(r"(.*?): ([\d.]+)", mark.find(NS + "title").text.removeprefix(curve + ", ")).groups()
            band = own[timepoint][2]
            if band.startswith("first score"):
                assert float(own[timepoint][1]) == float(shown)
            else:                       # the table to one decimal, "9.9 (2.1 to 17.6)"
                assert band.split(" ")[0] == f"{float(shown):.1f}"


@pytest.mark.django_db
def test_facilitator_chart_numbers_are_in_the_table_after_it(web_study, accounts, client):
    client_for(client, accounts, "admin")
    html = client.get(reverse("monitor:facilitator", kwargs={"study": STUDY, "facilitator": "F1"})).content.decode()
    (figure,) = figures(html)
    _check_page_charts([figure])
    assert not figure["tables"]
    table = Tables(figure["after"]).tables[0]
    assert table["caption"].startswith("The chart's numbers")
    timepoints = table["head"][1:]
    rows = {row[0].split()[1]: row for row in table["rows"][2:]}   # "● P003 Immediate treatment" → P003
    assert rows
    checked = 0
    for pid, row in rows.items():
        for mark in series_marks(figure["svg"], pid):
            timepoint, shown = mark.find(NS + "title").text.removeprefix(pid + ", ").rsplit(": ", 1)
            assert float(row[1 + timepoints.index(timepoint)]) == float(shown)
            checked += 1
    assert checked >= len(rows)
