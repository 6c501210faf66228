"""Every text colour the app uses, on every background it is used on, has a contrast of at least 4.5:1.

axe-core checks contrast in the browser tests, but where it cannot see an element's background (a
cell of a table scrolled off a phone's screen, text inside an SVG chart, a one-digit cell) it
leaves the element as "needs review" (docs/accessibility.md). Those elements take their colours
from the stylesheet's named colours and the charts' few fixed ones, so checking every pair here
decides them all, and keeps deciding them when a colour changes.

The ratio is WCAG 2.1's (relative luminance of sRGB, (L1 + 0.05) / (L2 + 0.05)); 4.5:1 is
success criterion 1.4.3 for normal text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STYLESHEET = Path(__file__).resolve().parents[2] / "src" / "alliance" / "web" / "static" / "alliance" / "alliance.css"

# (text, background, where): the pairs the templates and stylesheets put together.
PAIRS = [
    ("ink", "paper", "body text"), ("ink", "wash", "table headers, the questionnaire's intro"),
    ("ink", "info-wash", "notes, a chosen answer"), ("ink", "ok-wash", "success messages"),
    ("ink", "warn-wash", "warnings"), ("ink", "bad-wash", "errors, an invalid question"),
    ("muted", "paper", "help text, small print"), ("muted", "wash", "header's user name, upcoming status"),
    ("muted", "bad-wash", "an invalid question's number"),
    ("accent", "paper", "links, secondary buttons"), ("accent", "wash", "links in the header"),
    ("accent", "info-wash", "due and draft statuses, links in notes"),
    ("accent-ink", "accent", "buttons"), ("accent-ink", "bad", "danger buttons"),
    ("ok", "ok-wash", "done and submitted statuses"), ("warn", "warn-wash", "overdue status"),
    ("warn", "paper", "warning severity, inactive rules"),
    ("bad", "bad-wash", "missed and deviation statuses, error text in notes"), ("bad", "paper", "error text"),
]
# Text inside the SVG charts (alliance.web.monitor.charts): axis labels and legend text.
CHART_TEXT = [("#555555", "#ffffff", "axis ticks, reference labels"), ("#333333", "#ffffff", "axis and legend labels"),
              ("#333333", "#f3ecd8", "labels over a dosing session's band")]


def luminance(colour: str) -> float:
    """WCAG 2.1's relative luminance of an sRGB colour (``#rrggbb`` or ``#rgb``)."""
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    channels = [int(value[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str = "#ffffff") -> float:
    """The contrast ratio of two colours (against white by default): (L1 + 0.05) / (L2 + 0.05)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def named_colours() -> dict[str, str]:
    root = re.search(r":root\s*\{(.*?)\}", STYLESHEET.read_text(), re.S).group(1)
    return {name: value.lower() for name, value in re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})\s*;", root)}


def test_the_formula_gives_wcag_s_known_values():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)   # the classic just-failing grey
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)   # and the just-passing one
    assert contrast("#ffffff") == pytest.approx(1.0)
    assert contrast("#777") == contrast("#777777")


@pytest.mark.parametrize(("text", "background", "where"), PAIRS, ids=[f"{t}-on-{b}" for t, b, _ in PAIRS])
def test_stylesheet_text_colours_have_contrast(text, background, where):
    colours = named_colours()
    ratio = contrast(colours[text], colours[background])
    assert ratio >= 4.5, f"--{text} on --{background} ({where}): {ratio:.2f}:1, below 4.5:1"


@pytest.mark.parametrize(("text", "background", "where"), CHART_TEXT, ids=[w for _, _, w in CHART_TEXT])
def test_chart_text_colours_have_contrast(text, background, where):
    ratio = contrast(text, background)
    assert ratio >= 4.5, f"{text} on {background} ({where}): {ratio:.2f}:1"


def test_the_chart_colours_are_the_ones_checked():
    source = (STYLESHEET.parents[2] / "monitor" / "charts.py").read_text()
    text_fills = {f"#{c * 2 if len(c) == 3 else c}".lower()
                  for c in re.findall(r'<text[^>]*fill="#([0-9a-fA-F]{3,6})"', source)}
    assert text_fills and text_fills <= {t for t, _, _ in CHART_TEXT}, f"chart text colours not checked here: {text_fills}"
