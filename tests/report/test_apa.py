"""APA number formats, worked by hand from the APA Publication Manual (7th ed., §6.36, §6.46)."""

from __future__ import annotations

import math

import pytest

from alliance.report import apa


@pytest.mark.parametrize(("value", "text"), [
    (0.4912, ".49"), (-0.649, "\u2212.65"), (1.0, "1.00"), (-0.004, ".00"), (None, "\u2013"), (math.nan, "\u2013"),
])
def test_bounded_statistics_have_no_leading_zero(value, text):
    assert apa.proportion(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (0.0274, ".027"), (0.0004, "< .001"), (0.001, ".001"), (0.5, ".500"), (0.99996, "> .999"), (None, "\u2013"),
])
def test_p_values(value, text):
    assert apa.p_value(value) == text


def test_p_with_symbol_and_numbers():
    assert apa.p_with_symbol(0.002) == "p = .002"
    assert apa.p_with_symbol(1e-6) == "p < .001"
    assert apa.number(-3.14159) == "\u22123.14"
    assert apa.number(2.0, 0) == "2"
    assert apa.ci(0.94163, 4.10185) == "[0.94, 4.10]"
    assert apa.ci(-0.81, 0.12, bounded=True) == "[\u2212.81, .12]"
    assert apa.t_test(3.3097, 22.0) == "t(22) = 3.31"
    assert apa.t_test(-2.5, 51.49) == "t(51.5) = \u22122.50"
