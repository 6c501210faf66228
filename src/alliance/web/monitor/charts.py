"""Small server-rendered SVG charts for the dashboards: lines over timepoints, grouped bars, and boxes with points.

Why our own and not matplotlib: a dashboard draws a handful of points per chart, and the
participant dashboard must render in well under 100 ms (``benchmarks/bench_dashboard.py``); a
matplotlib SVG costs tens of milliseconds per figure, while writing the few SVG elements needed here
costs microseconds. The report (``alliance.report``) keeps matplotlib for print-quality figures.

The SVG is inline (no files, no JavaScript), scales with its container (``viewBox``), and every
text that comes from data is escaped. Each chart function returns a :class:`Chart`: the caption,
the SVG, a short summary of the data and the :class:`Table` of the chart's numbers, all made from
the same arguments, so that the picture and its text alternative cannot disagree. The template
``monitor/_chart.html`` shows them as a ``<figure>`` with the table in a ``<details>`` under it.

Accessibility (WCAG 2.1 AA)
---------------------------
- **Name and summary** (1.1.1): the ``<figcaption>`` names the figure; the ``<svg>`` is
  ``role="img"`` with an ``aria-label`` that *summarises the data* (:attr:`Chart.summary`: which
  lines or bars, over which timepoints, each series' first and last value, its lowest and highest)
  and never repeats the caption. The root ``<svg>`` has no ``<title>`` of its own: next to an
  ``aria-label`` it would be read again as the description.
- **Every number as text** (1.1.1, 2.1.1): each chart has its own table (:attr:`Chart.table`):
  a row per timepoint (per measure for bars), and per series its value, its interval and n where
  the chart has them, formatted as in the tooltips; a missing value is ``None`` (the template
  shows "—" and, to screen readers, "no data"). The points' ``<title>`` tooltips stay for the
  mouse, but points are not focusable: dozens of tab stops per chart would cost keyboard users
  more than they give, and the table reaches every value with the keyboard and a screen reader.
- **Not by colour alone** (1.4.1): the ``k``-th series of a line chart has its own marker
  (:func:`marker`: circle, square, triangle, … then the same hollow) *and* line pattern
  (:data:`LINE_DASHES`: solid, dashed, dotted, dash-dot); the legend draws the same marker on the
  same line. Each bar carries its series' label as text under it, and the legend names each series.
- **Contrast** (1.4.11): every colour of :data:`PALETTE` (and the grey of reference curves) has a
  contrast of at least 3:1 against white (``tests/web/test_chart_accessibility.py``).
- **Legends are not cut**: entries are placed side by side and wrap into rows (:func:`_legend_layout`);
  a label wider than a row wraps onto lines of its own, and the plot moves down to make room.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#1b6ca8", "#d1495b", "#2e8b57", "#b07d10", "#6a4c93", "#00798c")
GREY = "#7a7a7a"   # reference curves (the expected response): 4.3:1 against white
# Line patterns (``stroke-dasharray``), in the order series get them: solid, dashed, dotted, dash-dot.
LINE_DASHES = ("", "7 4", "2 3", "9 3 2 3")
_FONT = 'font-family="system-ui, sans-serif"'
_CHAR_WIDTH = 6.5   # the estimated width of a character of the 11 px font, for legends
_LINE_HEIGHT = 13   # between the lines of a wrapped legend label


@dataclass(frozen=True)
class Series:
    """One line: a value (or ``None``) per x position, optionally with an interval and n per position.

    Attributes
    ----------
    label : str
    values : sequence of float or None
    intervals : sequence of (low, high) or None, optional
        Drawn as a shaded band around the line (cohort means).
    color : str, optional
        Default: the palette colour of the series' position.
    width : float
        Line width.
    n : sequence of int or None, optional
        How many values each point is made of (cohort means); in the tooltips and the table.
    interval_label : str
        What the intervals are, for the tooltips and the table's header.
    statistic : str, optional
        What each value is (``mean``): the legend says ``{label} ({statistic}, {interval_label})``,
        the table's columns ``{label}: {statistic}``, ``{label}: {interval_label}``, ``{label}: n``.
    decimals : int, optional
        Digits after the point in tooltips, summary and table; default: at most one, trailing
        zeros dropped (scores), as on the axis.
    """

    label: str
    values: Sequence[float | None]
    intervals: Sequence[tuple[float, float] | None] | None = None
    color: str | None = None
    width: float = 2.0
    n: Sequence[int | None] | None = None
    interval_label: str = "95% CI"
    statistic: str = ""
    decimals: int | None = None

    @property
    def legend(self) -> str:
        """The series' name in the legend and the summary: its label, with what its values are."""
        if not self.statistic:
            return self.label
        return f"{self.label} ({self.statistic}{f', {self.interval_label}' if self.intervals else ''})"


@dataclass(frozen=True)
class Reference:
    """A horizontal reference line, e.g. the remission threshold."""

    value: float
    label: str


@dataclass(frozen=True)
class Layout:
    width: int = 640
    height: int = 250
    left: int = 48
    right: int = 12
    top: int = 30
    bottom: int = 62
    markers: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TableRow:
    """One row of a chart's table: its header (a timepoint, a measure) and a text per column (``None``: no data)."""

    label: str
    cells: tuple[str | None, ...]


@dataclass(frozen=True)
class Table:
    """A chart's numbers as a table: ``row_header`` names the first column, ``columns`` the others."""

    row_header: str
    columns: tuple[str, ...]
    rows: tuple[TableRow, ...]


@dataclass(frozen=True)
class Chart:
    """A chart and its text alternatives.

    Attributes
    ----------
    caption : str
        The figure's name (its ``<figcaption>``, and the table's caption).
    svg : SafeString
        ``<svg role="img" aria-label="{summary}" …>…</svg>``.
    summary : str
        A sentence or two on the data (the svg's accessible name), not the caption.
    table : Table
        Every number the chart draws.
    """

    caption: str
    svg: SafeString
    summary: str
    table: Table


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _number(s: Series, value: float) -> str:
    """A value of ``s`` as its tooltips, summary and table show it."""
    return _fmt(value) if s.decimals is None else f"{value:.{s.decimals}f}"


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high] (steps of 1, 2, 2.5 or 5 × 10^k)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def line_style(k: int) -> tuple[str, bool, str]:
    """The ``k``-th series' marker shape, whether it is filled, and its line pattern (``stroke-dasharray``).

    The pair (marker, pattern) differs between any two of the first twelve series (twelve markers,
    four patterns).
    """
    shape, filled = marker(k)
    return shape, filled, LINE_DASHES[k % len(LINE_DASHES)]


def _svg_open(width: int, height: float, summary: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:g}" class="chart" role="img" '
            f'aria-label="{escape(summary)}" {_FONT} font-size="11">')


def line_chart(x_labels: Sequence[str], series: Sequence[Series], *, caption: str, y_range: tuple[float, float],
               y_label: str = "", references: Sequence[Reference] = (), markers: Sequence[int] = (),
               marker_label: str = "", layout: Layout | None = None) -> Chart:
    """An SVG line chart over categorical x positions (timepoints), with its summary and table.

    Parameters
    ----------
    x_labels : sequence of str
        One label per position, left to right.
    series : sequence of Series
        A line joins a series' values in order, passing over ``None`` (not measured there). The
        ``k``-th series has the marker and line pattern :func:`line_style` ``(k)``.
    caption : str
        The figure's caption (shown above the chart by the template, and the table's caption).
    y_range : (float, float)
        The axis range (the instrument's scale range), widened to include every value.
    y_label : str
    references : sequence of Reference
        Dashed horizontal lines.
    markers : sequence of int
        Positions to mark with a vertical band (dosing sessions).
    marker_label : str
        The legend text for the markers.
    layout : Layout, optional

    Returns
    -------
    Chart
        The table has a row per position (but not a marked position where no series has a
        value) and per series a column of values, then of intervals and of n when it has them.
    """
    layout = layout or Layout()
    entries = [_Entry("line", s.legend, k, s.color or PALETTE[k % len(PALETTE)]) for k, s in enumerate(series)]
    entries += [_Entry("band", marker_label)] if markers and marker_label else []
    legend, legend_height = _legend_layout(entries, layout)
    top = layout.top + legend_height - 16
    height = layout.height + top - layout.top
    values = [v for s in series for v in s.values if v is not None]
    values += [v for s in series for pair in (s.intervals or []) if pair for v in pair]
    low = min([y_range[0], *values])
    high = max([y_range[1], *values])
    plot_w = layout.width - layout.left - layout.right
    plot_h = height - top - layout.bottom
    n = max(len(x_labels), 1)
    step = plot_w / n

    def x(i: int) -> float:
        return layout.left + step * (i + 0.5)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - low) / ((high - low) or 1))

    summary = _line_summary(x_labels, series, markers, marker_label, references)
    parts = [_svg_open(layout.width, height, summary)]
    parts += _plot_frame(x_labels, x, y, step, top, plot_h, (low, high), layout, markers, marker_label, y_label)
    for reference in references:
        parts.append(f'<line x1="{layout.left}" x2="{layout.width - layout.right}" y1="{y(reference.value):.1f}" '
                     f'y2="{y(reference.value):.1f}" stroke="#777" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{layout.width - layout.right - 2}" y="{y(reference.value) - 3:.1f}" '
                     f'text-anchor="end" fill="#555">{escape(reference.label)}</text>')
    for k, s in enumerate(series):  # every band under every line: a band does not dim another series' line
        if s.intervals:
            parts += _band(s, s.color or PALETTE[k % len(PALETTE)], x, y)
    for k, s in enumerate(series):
        color = s.color or PALETTE[k % len(PALETTE)]
        shape, filled, dash = line_style(k)
        present = [i for i, v in enumerate(s.values) if v is not None]
        if len(present) > 1:  # through the positions where the measure is not taken (or missing)
            points = " ".join(f"{x(i):.1f},{y(s.values[i]):.1f}" for i in present)
            pattern = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" '
                         f'stroke-width="{s.width}" stroke-linejoin="round"{pattern}/>')
        for i in present:
            parts.append(_shape(shape, filled, x(i), y(s.values[i]), s.width + 2, color,
                                escape(f"{s.label}, {x_labels[i]}: {_point_words(s, i)}")))
    parts += _draw_legend(legend)
    parts.append("</svg>")
    svg = mark_safe("".join(parts))  # every text from data above went through escape()
    return Chart(caption, svg, summary, _line_table(x_labels, series, markers))


def _point_words(s: Series, i: int) -> str:
    """A point's value, with its n and interval when the series has them: ``4.10 (n = 5, 95% CI 3.01 to 5.19)``."""
    extra = []
    if s.n is not None and s.n[i] is not None:
        extra.append(f"n = {s.n[i]}")
    if s.intervals and s.intervals[i] is not None:
        extra.append(f"{s.interval_label} {_interval(s, s.intervals[i])}")
    return _number(s, s.values[i]) + (f" ({', '.join(extra)})" if extra else "")


def _interval(s: Series, pair: tuple[float, float]) -> str:
    return f"{_number(s, pair[0])} to {_number(s, pair[1])}"


def _line_summary(x_labels: Sequence[str], series: Sequence[Series], markers: Sequence[int], marker_label: str,
                  references: Sequence[Reference]) -> str:
    """What a line chart shows, in a few sentences built from its data (the svg's accessible name)."""
    lines = "A line" if len(series) == 1 else f"{len(series)} lines"
    over = f" over {len(x_labels)} timepoints" + (f", {x_labels[0]} to {x_labels[-1]}" if x_labels else "")
    words = [f"{lines}{over}."]
    words += [_series_words(x_labels, s) for s in series]
    if markers and marker_label:
        words.append(f"Shaded, {marker_label}: {', '.join(x_labels[i] for i in markers)}.")
    words += [f"Reference line: {r.label}." for r in references]
    words.append("Every value is in the table after the chart.")
    return " ".join(words)


def _series_words(x_labels: Sequence[str], s: Series) -> str:
    present = [i for i, v in enumerate(s.values) if v is not None]
    if not present:
        return f"{s.legend}, no data."
    first, last = present[0], present[-1]
    if first == last:
        return f"{s.legend}, {_number(s, s.values[first])} at {x_labels[first]}."
    shown = [s.values[i] for i in present]
    words = (f"{s.legend}, {len(present)} values, from {_number(s, s.values[first])} at {x_labels[first]} "
             f"to {_number(s, s.values[last])} at {x_labels[last]}")
    if len(present) > 2:
        words += f", lowest {_number(s, min(shown))}, highest {_number(s, max(shown))}"
    return words + "."


def _line_table(x_labels: Sequence[str], series: Sequence[Series], markers: Sequence[int]) -> Table:
    columns: list[str] = []
    for s in series:
        columns.append(f"{s.label}: {s.statistic}" if s.statistic else s.label)
        if s.intervals:
            columns.append(f"{s.label}: {s.interval_label}")
        if s.n is not None:
            columns.append(f"{s.label}: n")
    rows = []
    for i, label in enumerate(x_labels):
        cells: list[str | None] = []
        for s in series:
            cells.append(None if s.values[i] is None else _number(s, s.values[i]))
            if s.intervals:
                cells.append(None if s.intervals[i] is None else _interval(s, s.intervals[i]))
            if s.n is not None:
                cells.append(None if s.n[i] is None else str(s.n[i]))
        if i in markers and all(cell is None for cell in cells):
            continue  # a dosing session between the measured timepoints: a band, no numbers
        rows.append(TableRow(label, tuple(cells)))
    return Table("Timepoint", tuple(columns), tuple(rows))


def _plot_frame(x_labels, x, y, step: float, top: float, plot_h: float, limits: tuple[float, float], layout,
                markers, marker_label: str, y_label: str) -> list[str]:
    """What every chart over timepoints draws before its data: dosing bands, grid, axes and labels."""
    parts = []
    for i in markers:
        parts.append(f'<rect x="{x(i) - step / 2:.1f}" y="{top}" width="{step:.1f}" height="{plot_h}" '
                     f'fill="#f3ecd8"><title>{escape(marker_label)}: {escape(x_labels[i])}</title></rect>')
    for tick in _nice_ticks(*limits):
        parts.append(f'<line x1="{layout.left}" x2="{layout.width - layout.right}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{layout.left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">'
                     f"{_fmt(tick)}</text>")
    base = top + plot_h
    parts.append(f'<line x1="{layout.left}" x2="{layout.left}" y1="{top}" y2="{base}" stroke="#888"/>')
    parts.append(f'<line x1="{layout.left}" x2="{layout.width - layout.right}" y1="{base}" y2="{base}" '
                 'stroke="#888"/>')
    parts += _x_labels(x_labels, x, step, base)
    if y_label:
        parts.append(f'<text transform="translate(11,{top + plot_h / 2:.1f}) rotate(-90)" '
                     f'text-anchor="middle" fill="#555">{escape(y_label)}</text>')
    return parts


def bar_chart(groups: Sequence[str], bars: Sequence[str], values: Sequence[Sequence[float | None]], *,
              caption: str, y_range: tuple[float, float] = (0, 100), y_label: str = "", group_header: str = "",
              value_labels: Sequence[Sequence[str]] | None = None, layout: Layout | None = None) -> Chart:
    """An SVG grouped bar chart: for each group (measure), one bar per series (dosing session).

    Parameters
    ----------
    groups : sequence of str
        Group labels along x.
    bars : sequence of str
        Bar labels within each group (the legend); each bar also carries its label under it.
    values : sequence of sequence of float or None
        ``values[g][b]``; ``None`` leaves the bar out.
    caption : str
        The figure's caption.
    y_range : (float, float)
    y_label : str
        The y axis's label, also the unit the summary gives.
    group_header : str
        What the groups are (the table's first column), e.g. ``Measure``.
    value_labels : sequence of sequence of str, optional
        Tooltip text per bar (e.g. the raw score when the bar shows a percentage).
    layout : Layout, optional

    Returns
    -------
    Chart
        The table has a row per group and a column per bar.
    """
    layout = layout or Layout(bottom=64)
    entries = [_Entry("swatch", bar, b, PALETTE[b % len(PALETTE)]) for b, bar in enumerate(bars)]
    legend, legend_height = _legend_layout(entries, layout)
    top = layout.top + legend_height - 16
    height = layout.height + top - layout.top
    low, high = y_range
    plot_w = layout.width - layout.left - layout.right
    plot_h = height - top - layout.bottom
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.7 / max(len(bars), 1)

    def y(v: float) -> float:
        return top + plot_h * (1 - (min(max(v, low), high) - low) / ((high - low) or 1))

    summary = _bar_summary(groups, bars, values, y_label)
    parts = [_svg_open(layout.width, height, summary)]
    for tick in _nice_ticks(low, high):
        parts.append(f'<line x1="{layout.left}" x2="{layout.width - layout.right}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{layout.left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">'
                     f"{_fmt(tick)}</text>")
    base = top + plot_h
    parts.append(f'<line x1="{layout.left}" x2="{layout.width - layout.right}" y1="{base}" y2="{base}" '
                 'stroke="#888"/>')
    if y_label:
        parts.append(f'<text transform="translate(11,{top + plot_h / 2:.1f}) rotate(-90)" '
                     f'text-anchor="middle" fill="#555">{escape(y_label)}</text>')
    # Each bar's label under it, on up to two lines of the bar's width (the legend has it whole).
    per_line = max(int(bar_w / 5.6), 3)
    bar_words = [_wrap(bar, per_line, 2) for bar in bars]
    for g, group in enumerate(groups):
        start = layout.left + group_w * g + group_w * 0.15
        for b, bar in enumerate(bars):
            value = values[g][b]
            if value is None:
                continue
            color = PALETTE[b % len(PALETTE)]
            tip = value_labels[g][b] if value_labels else _fmt(value)
            left = start + bar_w * b
            parts.append(f'<rect x="{left:.1f}" y="{y(value):.1f}" width="{bar_w * 0.92:.1f}" '
                         f'height="{base - y(value):.1f}" fill="{color}"><title>{escape(group)}, {escape(bar)}: '
                         f"{escape(tip)}</title></rect>")
            middle = left + bar_w * 0.46
            spans = "".join(f'<tspan x="{middle:.1f}" dy="{0 if k == 0 else 11}">{escape(line)}</tspan>'
                            for k, line in enumerate(bar_words[b]))
            parts.append(f'<text x="{middle:.1f}" y="{base + 11}" text-anchor="middle" font-size="9.5" '
                         f'fill="#333">{spans}</text>')
        parts.append(f'<text x="{layout.left + group_w * (g + 0.5):.1f}" y="{base + 11 + 11 * 2 + 4}" '
                     f'text-anchor="middle" font-weight="600" fill="#333">{escape(group)}</text>')
    parts += _draw_legend(legend)
    parts.append("</svg>")
    svg = mark_safe("".join(parts))  # every text from data above went through escape()
    table = Table(group_header, tuple(bars), tuple(
        TableRow(group, tuple(None if v is None else _fmt(v) for v in values[g])) for g, group in enumerate(groups)))
    return Chart(caption, svg, summary, table)


def _bar_summary(groups: Sequence[str], bars: Sequence[str], values, y_label: str) -> str:
    unit = f" ({y_label})" if y_label else ""
    words = [f"Bars for {', '.join(bars)}, per {', '.join(groups)}{unit}."]
    for g, group in enumerate(groups):
        shown = ", ".join(f"{bar} {'no data' if values[g][b] is None else _fmt(values[g][b])}"
                          for b, bar in enumerate(bars))
        words.append(f"{group}: {shown}.")
    words.append("Every value is in the table after the chart.")
    return " ".join(words)


def _band(s: Series, color: str, x, y) -> list[str]:
    intervals = list(s.intervals or [])
    present = [i for i, pair in enumerate(intervals) if pair is not None]
    if len(present) == 1:  # a single interval: an error bar
        i = present[0]
        return [f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(intervals[i][0]):.1f}" '
                f'y2="{y(intervals[i][1]):.1f}" stroke="{color}" stroke-width="6" stroke-opacity="0.25"/>']
    if not present:
        return []
    upper = [f"{x(i):.1f},{y(intervals[i][1]):.1f}" for i in present]
    lower = [f"{x(i):.1f},{y(intervals[i][0]):.1f}" for i in reversed(present)]
    return [f'<polygon points="{" ".join(upper + lower)}" fill="{color}" fill-opacity="0.15"/>']


# ---------------------------------------------------------------------------------------------
# Legends
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Entry:
    """One legend entry: its key (``line``: the series' line and marker; ``point``: the marker;
    ``swatch``: a bar's colour; ``box``: the distribution's box; ``band``: the dosing band)."""

    kind: str
    label: str
    k: int = 0
    color: str = ""


_KEY_WIDTH = {"line": 26, "point": 10, "swatch": 10, "box": 10, "band": 10}


@dataclass(frozen=True)
class _Placed:
    entry: _Entry
    x: float
    top: float
    lines: tuple[str, ...]


def _legend_layout(entries: Sequence[_Entry], layout: Layout) -> tuple[list[_Placed], float]:
    """Where each legend entry goes, and the legend's height (16 for one row).

    Entries go side by side from the plot's left edge and wrap into a new row when the next one
    would pass the right edge; a label wider than a whole row wraps onto lines of its own
    (:func:`_words_on_lines`), so that no label is cut. Widths are estimated at
    :data:`_CHAR_WIDTH` per character.
    """
    room = layout.width - layout.left - layout.right
    placed: list[_Placed] = []
    x, top, row_height = float(layout.left), 8.0, 16.0
    for entry in entries:
        key = _KEY_WIDTH[entry.kind] + 4
        lines = tuple(_words_on_lines(entry.label, max(int((room - key) / _CHAR_WIDTH), 1)))
        width = key + _CHAR_WIDTH * max(len(line) for line in lines) + 10
        if x > layout.left and x + width - 10 > layout.left + room:
            x, top, row_height = float(layout.left), top + row_height, 16.0
        placed.append(_Placed(entry, x, top, lines))
        row_height = max(row_height, 16.0 + _LINE_HEIGHT * (len(lines) - 1))
        x += width
    return placed, (top + row_height - 8 if placed else 16.0)


def _draw_legend(placed: Sequence[_Placed]) -> list[str]:
    """The legend: a ``<g class="legend">`` with a ``<g>`` per entry (its key, then its text)."""
    parts = ['<g class="legend">']
    for p in placed:
        entry, x, top = p.entry, p.x, p.top
        parts.append("<g>")
        if entry.kind == "line":
            shape, filled, dash = line_style(entry.k)
            pattern = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<line x1="{x:g}" x2="{x + 26:g}" y1="{top + 5:g}" y2="{top + 5:g}" stroke="{entry.color}" '
                         f'stroke-width="2"{pattern}/>')
            parts.append(_shape(shape, filled, x + 13, top + 5, 4, entry.color))
        elif entry.kind == "point":
            shape, filled = marker(entry.k)
            parts.append(_shape(shape, filled, x + 5, top + 5, 4, entry.color))
        elif entry.kind == "swatch":
            parts.append(f'<rect x="{x:g}" y="{top:g}" width="10" height="10" fill="{entry.color}"/>')
        elif entry.kind == "box":
            parts.append(f'<rect x="{x:g}" y="{top:g}" width="10" height="10" fill="#dfe4ea" stroke="#7a8591"/>'
                         f'<line x1="{x:g}" x2="{x + 10:g}" y1="{top + 5:g}" y2="{top + 5:g}" stroke="#2b2f33" '
                         'stroke-width="2"/>')
        else:
            parts.append(f'<rect x="{x:g}" y="{top:g}" width="10" height="10" fill="#f3ecd8"/>')
        text_x = x + _KEY_WIDTH[entry.kind] + 4
        spans = "".join(f'<tspan x="{text_x:g}" dy="{0 if k == 0 else _LINE_HEIGHT}">{escape(line)}</tspan>'
                        for k, line in enumerate(p.lines))
        parts.append(f'<text x="{text_x:g}" y="{top + 9:g}" fill="#333">{spans}</text></g>')
    parts.append("</g>")
    return parts


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------

def _x_labels(x_labels: Sequence[str], x, step: float, base: float) -> list[str]:
    """Labels under the x axis: wrapped on up to three lines when there is room, else slanted."""
    parts = []
    per_line = int(step / 6.2)
    if per_line >= 9:
        for i, label in enumerate(x_labels):
            lines = _wrap(label, per_line, 3)
            spans = "".join(f'<tspan x="{x(i):.1f}" dy="{0 if k == 0 else 12}">{escape(line)}</tspan>'
                            for k, line in enumerate(lines))
            parts.append(f'<text x="{x(i):.1f}" y="{base + 14}" text-anchor="middle" fill="#333">{spans}'
                         f"<title>{escape(label)}</title></text>")
    else:
        for i, label in enumerate(x_labels):
            parts.append(f'<text transform="translate({x(i) + 3:.1f},{base + 10}) rotate(-40)" text-anchor="end" '
                         f'fill="#333">{escape(_short(label))}<title>{escape(label)}</title></text>')
    return parts


def _words_on_lines(label: str, width: int) -> list[str]:
    """The words of ``label`` on lines of at most ``width`` characters; a longer word is split, none is lost."""
    lines: list[str] = []
    for word in label.split() or [""]:
        while len(word) > width:
            lines.append(word[:width])
            word = word[width:]
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _wrap(label: str, width: int, max_lines: int) -> list[str]:
    """:func:`_words_on_lines`, on at most ``max_lines`` lines: the last one cut with an ellipsis."""
    lines = _words_on_lines(label, width)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _short(lines[-1] + " …", width)
    return lines


def _short(label: str, width: int = 14) -> str:
    return label if len(label) <= width else label[:width - 1] + "…"


# ---------------------------------------------------------------------------------------------
# A distribution with points on it (the per-facilitator view)
# ---------------------------------------------------------------------------------------------

# Marker shapes, in the order series get them; after the last, the same shapes hollow. Each series
# is told apart by its shape (and its label in the tooltip), never by colour alone.
MARKER_SHAPES = ("circle", "square", "triangle", "diamond", "triangle-down", "cross")
# The same shapes as text, for the table that stands in for the chart (filled, then hollow).
MARKER_SYMBOLS = {"circle": ("●", "○"), "square": ("■", "□"), "triangle": ("▲", "△"), "diamond": ("◆", "◇"),
                  "triangle-down": ("▼", "▽"), "cross": ("✚", "✛")}


@dataclass(frozen=True)
class Spread:
    """A distribution at one x position: its median, lower and upper quartiles and size."""

    median: float
    q1: float
    q3: float
    n: int


def marker(k: int) -> tuple[str, bool]:
    """The shape of the ``k``-th series and whether it is filled (:data:`MARKER_SHAPES`, then hollow)."""
    return MARKER_SHAPES[k % len(MARKER_SHAPES)], (k // len(MARKER_SHAPES)) % 2 == 0


def marker_symbol(k: int) -> str:
    """The ``k``-th series' marker as a character (``●``, ``■``, …, ``○``), for tables and legends in text."""
    shape, filled = marker(k)
    return MARKER_SYMBOLS[shape][0 if filled else 1]


def _shape(shape: str, filled: bool, cx: float, cy: float, size: float, color: str, title: str = "") -> str:
    """One marker; ``title`` (escaped already) is its tooltip."""
    paint = (f'fill="{color}" stroke="{color}"' if filled else f'fill="#fff" stroke="{color}"') + ' stroke-width="1.5"'
    tip = f"<title>{title}</title>" if title else ""
    if shape == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{size:.1f}" {paint}>{tip}</circle>'
    if shape == "square":
        side = size * 1.75
        return (f'<rect x="{cx - side / 2:.1f}" y="{cy - side / 2:.1f}" width="{side:.1f}" height="{side:.1f}" '
                f"{paint}>{tip}</rect>")
    if shape in ("triangle", "triangle-down"):
        sign = 1 if shape == "triangle" else -1
        points = (f"{cx:.1f},{cy - sign * size * 1.2:.1f} {cx - size * 1.1:.1f},{cy + sign * size * 0.8:.1f} "
                  f"{cx + size * 1.1:.1f},{cy + sign * size * 0.8:.1f}")
        return f'<polygon points="{points}" {paint}>{tip}</polygon>'
    if shape == "diamond":
        r = size * 1.3
        points = f"{cx:.1f},{cy - r:.1f} {cx + r:.1f},{cy:.1f} {cx:.1f},{cy + r:.1f} {cx - r:.1f},{cy:.1f}"
        return f'<polygon points="{points}" {paint}>{tip}</polygon>'
    # cross: a plus sign with width (a polygon, so that it can be hollow too)
    a, b = size * 1.3, size * 0.45
    points = " ".join(f"{cx + dx:.1f},{cy + dy:.1f}" for dx, dy in (
        (-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)))
    return f'<polygon points="{points}" {paint}>{tip}</polygon>'


def distribution_chart(x_labels: Sequence[str], spreads: Sequence[Spread | None], points: Sequence[Series], *,
                       caption: str, y_range: tuple[float, float], y_label: str = "", spread_label: str = "",
                       markers: Sequence[int] = (), marker_label: str = "",
                       layout: Layout | None = None) -> Chart:
    """An SVG chart of a distribution per x position (a box: quartiles and median) with points over it.

    Parameters
    ----------
    x_labels : sequence of str
        One label per position, left to right.
    spreads : sequence of Spread or None
        The distribution at each position, drawn as a box from the lower to the upper quartile with
        a line at the median (``None``: nothing measured there).
    points : sequence of Series
        One series per person: a marker at each position where its value is not ``None``, joined by
        a thin dotted line. Each series has its own marker shape (:func:`marker`) and colour; the
        points of a position are spread sideways so that equal values stay visible.
    caption : str
        The figure's caption.
    y_range : (float, float)
        The axis range (the scale's range), widened to include every value.
    y_label, spread_label : str
        The y axis's label, and the legend's text for the boxes.
    markers : sequence of int
        Positions to mark with a vertical band (dosing sessions).
    marker_label : str
    layout : Layout, optional

    Returns
    -------
    Chart
        With a tooltip on every box (n, median, quartiles) and every point; the table has a row
        per position (not a marked one with nothing measured) and the median, quartiles and n of
        the distribution, then a column per series.
    """
    layout = layout or Layout(height=300)
    entries = [_Entry("box", spread_label)] if spread_label else []
    entries += [_Entry("point", s.legend, k, s.color or PALETTE[k % len(PALETTE)]) for k, s in enumerate(points)]
    entries += [_Entry("band", marker_label)] if markers and marker_label else []
    legend, legend_height = _legend_layout(entries, layout)
    top = layout.top + legend_height - 16
    height = layout.height + top - layout.top
    values = [v for s in points for v in s.values if v is not None]
    values += [v for spread in spreads if spread is not None for v in (spread.q1, spread.q3, spread.median)]
    low, high = min([y_range[0], *values]), max([y_range[1], *values])
    plot_w = layout.width - layout.left - layout.right
    plot_h = height - top - layout.bottom
    n = max(len(x_labels), 1)
    step = plot_w / n

    def x(i: int) -> float:
        return layout.left + step * (i + 0.5)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - low) / ((high - low) or 1))

    summary = _distribution_summary(x_labels, spreads, points, spread_label, markers, marker_label)
    parts = [_svg_open(layout.width, height, summary)]
    parts += _plot_frame(x_labels, x, y, step, top, plot_h, (low, high), layout, markers, marker_label, y_label)
    box_w = min(step * 0.6, 90)
    for i, spread in enumerate(spreads):
        if spread is None:
            continue
        tip = escape(f"{spread_label or 'distribution'}, {x_labels[i]}: median {_fmt(spread.median)}, "
                     f"quartiles {_fmt(spread.q1)} to {_fmt(spread.q3)}, n = {spread.n}")
        parts.append(f'<rect x="{x(i) - box_w / 2:.1f}" y="{y(spread.q3):.1f}" width="{box_w:.1f}" '
                     f'height="{max(y(spread.q1) - y(spread.q3), 1):.1f}" fill="#dfe4ea" stroke="#7a8591">'
                     f"<title>{tip}</title></rect>")
        parts.append(f'<line x1="{x(i) - box_w / 2:.1f}" x2="{x(i) + box_w / 2:.1f}" y1="{y(spread.median):.1f}" '
                     f'y2="{y(spread.median):.1f}" stroke="#2b2f33" stroke-width="3"><title>{tip}</title></line>')
    # Points of one position side by side across the box, in series order.
    spread_x = min(box_w * 0.8, 12 * len(points))

    def px(i: int, k: int) -> float:
        return x(i) if len(points) < 2 else x(i) - spread_x / 2 + spread_x * k / (len(points) - 1)

    for k, s in enumerate(points):
        color = s.color or PALETTE[k % len(PALETTE)]
        present = [i for i, v in enumerate(s.values) if v is not None]
        if len(present) > 1:
            line = " ".join(f"{px(i, k):.1f},{y(s.values[i]):.1f}" for i in present)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="1" '
                         'stroke-dasharray="2 3" stroke-opacity="0.8"/>')
    for k, s in enumerate(points):
        color = s.color or PALETTE[k % len(PALETTE)]
        shape, filled = marker(k)
        for i, v in enumerate(s.values):
            if v is None:
                continue
            parts.append(_shape(shape, filled, px(i, k), y(v), 4.5, color,
                                escape(f"{s.label}, {x_labels[i]}: {_point_words(s, i)}")))
    parts += _draw_legend(legend)
    parts.append("</svg>")
    svg = mark_safe("".join(parts))  # every text from data above went through escape()
    return Chart(caption, svg, summary, _distribution_table(x_labels, spreads, points, spread_label, markers))


def _distribution_summary(x_labels: Sequence[str], spreads: Sequence[Spread | None], points: Sequence[Series],
                          spread_label: str, markers: Sequence[int], marker_label: str) -> str:
    shown = [(i, s) for i, s in enumerate(spreads) if s is not None]
    words = [f"Boxes ({spread_label or 'distribution'}) at {len(shown)} of {len(x_labels)} timepoints"
             + (f", median from {_fmt(shown[0][1].median)} at {x_labels[shown[0][0]]} to "
                f"{_fmt(shown[-1][1].median)} at {x_labels[shown[-1][0]]}" if shown else "")
             + f"; points for {len(points)} series."]
    words += [_series_words(x_labels, s) for s in points]
    if markers and marker_label:
        words.append(f"Shaded, {marker_label}: {', '.join(x_labels[i] for i in markers)}.")
    words.append("Every value is in the table after the chart.")
    return " ".join(words)


def _distribution_table(x_labels: Sequence[str], spreads: Sequence[Spread | None], points: Sequence[Series],
                        spread_label: str, markers: Sequence[int]) -> Table:
    name = spread_label or "distribution"
    columns = (f"{name}: median", f"{name}: quartiles", f"{name}: n", *(s.label for s in points))
    rows = []
    for i, label in enumerate(x_labels):
        spread = spreads[i]
        cells = ((None, None, None) if spread is None else
                 (_fmt(spread.median), f"{_fmt(spread.q1)} to {_fmt(spread.q3)}", str(spread.n)))
        cells += tuple(None if s.values[i] is None else _number(s, s.values[i]) for s in points)
        if i in markers and all(cell is None for cell in cells):
            continue
        rows.append(TableRow(label, cells))
    return Table("Timepoint", columns, tuple(rows))
