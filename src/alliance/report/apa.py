"""Numbers formatted as APA style asks (Publication Manual, 7th ed., §6.36 and §6.46).

* statistics that cannot exceed 1 (r, p, α, ω) have no leading zero: ``r = .49``;
* p is given to three decimals, and below .001 as ``p < .001``;
* negative numbers use the typographic minus sign (U+2212), which is also what matplotlib draws;
* missing values are an en dash.
"""

from __future__ import annotations

import math

__all__ = ["MINUS", "MISSING", "ci", "number", "p_value", "p_with_symbol", "proportion", "t_test"]

MINUS = "\u2212"
MISSING = "\u2013"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def number(value, decimals: int = 2) -> str:
    """``-3.14159`` → ``"−3.14"``; ``None``/NaN → ``"–"``.

    Examples
    --------
    >>> number(-3.14159)
    '−3.14'
    """
    if _missing(value):
        return MISSING
    text = f"{float(value):.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", MINUS)


def proportion(value, decimals: int = 2) -> str:
    """A statistic bounded by 1 without its leading zero: ``-0.649`` → ``"−.65"``, ``1.0`` → ``"1.00"``.

    Examples
    --------
    >>> proportion(0.4912), proportion(-0.649)
    ('.49', '−.65')
    """
    text = number(value, decimals)
    if text == MISSING:
        return text
    return text.replace("0.", ".", 1) if text.lstrip(MINUS).startswith("0.") else text


def p_value(value) -> str:
    """``0.0274`` → ``".027"``; ``0.0004`` → ``"< .001"``; ``0.99996`` → ``"> .999"``.

    Examples
    --------
    >>> p_value(0.0274), p_value(0.0004)
    ('.027', '< .001')
    """
    if _missing(value):
        return MISSING
    value = float(value)
    if value < 0.001:
        return "< .001"
    if value > 0.999:
        return "> .999"
    return proportion(value, 3)


def p_with_symbol(value) -> str:
    """``"p = .027"`` or ``"p < .001"`` for running text and figure annotations."""
    text = p_value(value)
    if text == MISSING:
        return f"p {MISSING}"
    return f"p {text}" if text[0] in "<>" else f"p = {text}"


def ci(low, high, bounded: bool = False, decimals: int = 2) -> str:
    """``"[0.94, 4.10]"``; with ``bounded`` (correlations) ``"[.12, .74]"``."""
    if _missing(low) or _missing(high):
        return MISSING
    formatter = proportion if bounded else number
    return f"[{formatter(low, decimals)}, {formatter(high, decimals)}]"


def t_test(t, df) -> str:
    """``t(22) = 3.31``; fractional (Satterthwaite) df get one decimal."""
    if _missing(t) or _missing(df):
        return MISSING
    df_text = f"{int(round(df))}" if abs(df - round(df)) < 1e-9 else f"{df:.1f}"
    return f"t({df_text}) = {number(t)}"
