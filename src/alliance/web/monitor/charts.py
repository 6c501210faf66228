"""Small server-rendered SVG charts for the dashboards: lines over timepoints, and grouped bars.

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
    for i in markers:
        parts.append(f'<rect x="{x(i) - step / 2:.1f}" y="{layout.top}" width="{step:.1f}" height="{plot_h}" '
                     f'fill="#f3ecd8"><title>{escape(marker_label)}: {escape(x_labels[i])}</title></rect>')
    for tick in _nice_ticks(low, high):
        parts.append(f'<line x1="{layout.left}" x2="{layout.width - layout.right}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{layout.left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">'
                     f"{_fmt(tick)}</text>")
    parts.append(f'<line x1="{layout.left}" x2="{layout.left}" y1="{layout.top}" y2="{layout.top + plot_h}" '
                 'stroke="#888"/>')
    base = layout.top + plot_h
    parts.append(f'<line x1="{layout.left}" x2="{layout.width - layout.right}" y1="{base}" y2="{base}" '
                 'stroke="#888"/>')
    parts += _x_labels(x_labels, x, step, base)
    if y_label:
        parts.append(f'<text transform="translate(11,{layout.top + plot_h / 2:.1f}) rotate(-90)" '
                     f'text-anchor="middle" fill="#555">{escape(y_label)}</text>')
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
