"""Small server-rendered SVG charts for the dashboards: lines over timepoints, grouped bars, and boxes with points.

Why our own and not matplotlib: a dashboard draws a handful of points per chart, and the
participant dashboard must render in well under 100 ms (``benchmarks/bench_dashboard.py``); a
matplotlib SVG costs tens of milliseconds per figure, while writing the few SVG elements needed here
costs microseconds. The report (``alliance.report``) keeps matplotlib for print-quality figures.

The SVG is inline (no files, no JavaScript), scales with its container (``viewBox``), and carries
``<title>`` tooltips on every point and an ``aria-label`` for screen readers. Every text that
comes from data is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#1b6ca8", "#d1495b", "#2e8b57", "#b07d10", "#6a4c93", "#00798c")
_FONT = 'font-family="system-ui, sans-serif"'


@dataclass(frozen=True)
class Series:
    """One line: a value (or ``None``) per x position, optionally with a 95% interval per position.

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
    notes : sequence of str, optional
        Extra tooltip text per point (e.g. ``n = 20``).
    """

    label: str
    values: Sequence[float | None]
    intervals: Sequence[tuple[float, float] | None] | None = None
    color: str | None = None
    width: float = 2.0
    notes: Sequence[str] | None = None


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


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


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


def line_chart(x_labels: Sequence[str], series: Sequence[Series], *, title: str, y_range: tuple[float, float],
               y_label: str = "", references: Sequence[Reference] = (), markers: Sequence[int] = (),
               marker_label: str = "", layout: Layout | None = None) -> SafeString:
    """An SVG line chart over categorical x positions (timepoints).

    Parameters
    ----------
    x_labels : sequence of str
        One label per position, left to right.
    series : sequence of Series
        A line joins a series' values in order, passing over ``None`` (not measured there).
    title : str
        Shown above the chart and read by screen readers.
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
    SafeString
        ``<svg …>…</svg>``.
    """
    layout = layout or Layout()
    values = [v for s in series for v in s.values if v is not None]
    values += [v for s in series for pair in (s.intervals or []) if pair for v in pair]
    low = min([y_range[0], *values])
    high = max([y_range[1], *values])
    plot_w = layout.width - layout.left - layout.right
    plot_h = layout.height - layout.top - layout.bottom
    n = max(len(x_labels), 1)
    step = plot_w / n

    def x(i: int) -> float:
        return layout.left + step * (i + 0.5)

    def y(v: float) -> float:
        return layout.top + plot_h * (1 - (v - low) / ((high - low) or 1))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {layout.width} {layout.height}" '
             f'class="chart" role="img" aria-label="{escape(title)}" {_FONT} font-size="11">',
             f"<title>{escape(title)}</title>"]
    parts += _plot_frame(x_labels, x, y, step, layout.top, plot_h, (low, high), layout, markers, marker_label,
                         y_label)
    for reference in references:
        parts.append(f'<line x1="{layout.left}" x2="{layout.width - layout.right}" y1="{y(reference.value):.1f}" '
                     f'y2="{y(reference.value):.1f}" stroke="#777" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{layout.width - layout.right - 2}" y="{y(reference.value) - 3:.1f}" '
                     f'text-anchor="end" fill="#555">{escape(reference.label)}</text>')
    for k, s in enumerate(series):
        color = s.color or PALETTE[k % len(PALETTE)]
        if s.intervals:
            parts += _band(s, color, x, y)
        present = [i for i, v in enumerate(s.values) if v is not None]
        if len(present) > 1:  # through the positions where the measure is not taken (or missing)
            points = " ".join(f"{x(i):.1f},{y(s.values[i]):.1f}" for i in present)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" '
                         f'stroke-width="{s.width}" stroke-linejoin="round"/>')
        for i, v in enumerate(s.values):
            if v is None:
                continue
            note = f" ({s.notes[i]})" if s.notes and s.notes[i] else ""
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="{s.width + 1.5}" fill="{color}">'
                         f"<title>{escape(s.label)}, {escape(x_labels[i])}: {_fmt(v)}{escape(note)}</title></circle>")
    parts += _legend([(s.label, s.color or PALETTE[k % len(PALETTE)]) for k, s in enumerate(series)]
                     + ([(marker_label, "#f3ecd8")] if markers and marker_label else []), layout)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text from data above went through escape()


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
              title: str, y_range: tuple[float, float] = (0, 100), y_label: str = "",
              value_labels: Sequence[Sequence[str]] | None = None, layout: Layout | None = None) -> SafeString:
    """An SVG grouped bar chart: for each group (measure), one bar per series (dosing session).

    Parameters
    ----------
    groups : sequence of str
        Group labels along x.
    bars : sequence of str
        Bar labels within each group (the legend).
    values : sequence of sequence of float or None
        ``values[g][b]``; ``None`` leaves the bar out.
    title : str
    y_range : (float, float)
    y_label : str
    value_labels : sequence of sequence of str, optional
        Tooltip text per bar (e.g. the raw score when the bar shows a percentage).
    layout : Layout, optional

    Returns
    -------
    SafeString
    """
    layout = layout or Layout(bottom=40)
    low, high = y_range
    plot_w = layout.width - layout.left - layout.right
    plot_h = layout.height - layout.top - layout.bottom
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.7 / max(len(bars), 1)

    def y(v: float) -> float:
        return layout.top + plot_h * (1 - (min(max(v, low), high) - low) / ((high - low) or 1))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {layout.width} {layout.height}" '
             f'class="chart" role="img" aria-label="{escape(title)}" {_FONT} font-size="11">',
             f"<title>{escape(title)}</title>"]
    for tick in _nice_ticks(low, high):
        parts.append(f'<line x1="{layout.left}" x2="{layout.width - layout.right}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{layout.left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">'
                     f"{_fmt(tick)}</text>")
    base = layout.top + plot_h
    parts.append(f'<line x1="{layout.left}" x2="{layout.width - layout.right}" y1="{base}" y2="{base}" '
                 'stroke="#888"/>')
    if y_label:
        parts.append(f'<text transform="translate(11,{layout.top + plot_h / 2:.1f}) rotate(-90)" '
                     f'text-anchor="middle" fill="#555">{escape(y_label)}</text>')
    for g, group in enumerate(groups):
        start = layout.left + group_w * g + group_w * 0.15
        for b, bar in enumerate(bars):
            value = values[g][b]
            if value is None:
                continue
            color = PALETTE[b % len(PALETTE)]
            tip = value_labels[g][b] if value_labels else _fmt(value)
            parts.append(f'<rect x="{start + bar_w * b:.1f}" y="{y(value):.1f}" width="{bar_w * 0.92:.1f}" '
                         f'height="{base - y(value):.1f}" fill="{color}"><title>{escape(group)}, {escape(bar)}: '
                         f"{escape(tip)}</title></rect>")
        parts.append(f'<text x="{layout.left + group_w * (g + 0.5):.1f}" y="{base + 14}" text-anchor="middle" '
                     f'fill="#333">{escape(group)}</text>')
    parts += _legend([(bar, PALETTE[b % len(PALETTE)]) for b, bar in enumerate(bars)], layout)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text from data above went through escape()


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


def _legend(entries: list[tuple[str, str]], layout: Layout) -> list[str]:
    parts = []
    x = layout.left
    for label, color in entries:
        parts.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{x + 14}" y="17" fill="#333">{escape(label)}</text>')
        x += 24 + 6.5 * len(label)
    return parts


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


def _wrap(label: str, width: int, max_lines: int) -> list[str]:
    """Words of ``label`` on lines of at most ``width`` characters; the last line cut with an ellipsis."""
    lines: list[str] = []
    for word in label.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _short(lines[-1] + " …", width)
    return [_short(line, width) for line in lines]


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
                       title: str, y_range: tuple[float, float], y_label: str = "", spread_label: str = "",
                       markers: Sequence[int] = (), marker_label: str = "",
                       layout: Layout | None = None) -> SafeString:
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
    title : str
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
    SafeString
        ``<svg …>…</svg>``, with a tooltip on every box (n, median, quartiles) and every point.
    """
    layout = layout or Layout(height=300)
    entries = ([("box", spread_label, 0)] if spread_label else []) + [("point", s.label, k) for k, s in enumerate(points)]
    entries += [("band", marker_label, 0)] if markers and marker_label else []
    rows = _legend_rows([label for _, label, _ in entries], layout.width - layout.left - layout.right)
    top = layout.top + 16 * (len(set(rows)) - 1)
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

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {layout.width} {height}" '
             f'class="chart" role="img" aria-label="{escape(title)}" {_FONT} font-size="11">',
             f"<title>{escape(title)}</title>"]
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
            note = f" ({s.notes[i]})" if s.notes and s.notes[i] else ""
            parts.append(_shape(shape, filled, px(i, k), y(v), 4.5, color,
                                f"{escape(s.label)}, {escape(x_labels[i])}: {_fmt(v)}{escape(note)}"))
    parts += _distribution_legend(entries, rows, points, layout)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text from data above went through escape()


def _legend_width(label: str) -> float:
    return 24 + 6.5 * len(label)


def _legend_rows(labels: list[str], width: float) -> list[int]:
    """The legend row of each entry, wrapping when the next entry would pass ``width``."""
    rows, row, used = [], 0, 0.0
    for label in labels:
        if used and used + _legend_width(label) > width:
            row, used = row + 1, 0.0
        rows.append(row)
        used += _legend_width(label)
    return rows


def _distribution_legend(entries, rows: list[int], points: Sequence[Series], layout: Layout) -> list[str]:
    parts = []
    x, row_before = layout.left, 0
    for (kind, label, k), row in zip(entries, rows, strict=True):
        if row != row_before:
            x, row_before = layout.left, row
        top = 8 + 16 * row
        if kind == "box":
            parts.append(f'<rect x="{x}" y="{top}" width="10" height="10" fill="#dfe4ea" stroke="#7a8591"/>'
                         f'<line x1="{x}" x2="{x + 10}" y1="{top + 5}" y2="{top + 5}" stroke="#2b2f33" '
                         'stroke-width="2"/>')
        elif kind == "band":
            parts.append(f'<rect x="{x}" y="{top}" width="10" height="10" fill="#f3ecd8"/>')
        else:
            shape, filled = marker(k)
            parts.append(_shape(shape, filled, x + 5, top + 5, 4, points[k].color or PALETTE[k % len(PALETTE)]))
        parts.append(f'<text x="{x + 14}" y="{top + 9}" fill="#333">{escape(label)}</text>')
        x += _legend_width(label)
    return parts
