"""The crisis text shown with an urgent safety alert: the site's own words, never another country's numbers.

What a team must do about an endorsed suicidality item is a local matter: whom to call, which
physician is on call, which emergency number works where the participant lives. So the text comes
from, in this order:

1. the site's own text (``Study.crisis_text`` in the web app), when it has one;
2. otherwise the protocol's ``alerts.crisis_text`` (the default protocol's says what to do in
   general words, with no telephone number),
   followed, when the site has set its country (ISO 3166-1 alpha-2), by that country's emergency
   number and national crisis line from ``crisis_lines.yaml`` (each entry names the organisation's
   own site as its source).

No number is added for a site that has not said where it is: an emergency number of the wrong
country delays help. Pure: the table is package data read once; nothing here reads the
environment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from alliance.protocol.yaml_input import read_yaml

__all__ = ["CrisisLine", "crisis_line", "crisis_text", "known_countries"]


@dataclass(frozen=True)
class CrisisLine:
    """A country's emergency number and national crisis line.

    Attributes
    ----------
    code : str
        ISO 3166-1 alpha-2, upper case.
    country : str
    emergency : str
        The emergency number(s).
    line : str
        The national crisis line and how to reach it.
    source : str
        The organisation's own site, where a site checks the number before use.
    """

    code: str
    country: str
    emergency: str
    line: str
    source: str

    def sentence(self) -> str:
        """``In the United Kingdom: emergency 999; Samaritans: call 116 123.``"""
        name = self.country if self.country[:1].islower() else _with_article(self.country)
        return f"In {name}: emergency {self.emergency}; {self.line}."

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _with_article(country: str) -> str:
    return f"the {country}" if country.startswith(("United", "Netherlands")) else country


@cache
def _table() -> dict[str, CrisisLine]:
    text = resources.files("alliance.monitoring").joinpath("crisis_lines.yaml").read_text(encoding="utf-8")
    raw = read_yaml(text, "crisis_lines.yaml") or {}
    return {code: CrisisLine(code, str(e["country"]), str(e["emergency"]), str(e["line"]), str(e["source"]))
            for code, e in raw.items()}


def known_countries() -> tuple[CrisisLine, ...]:
    """Every country the shipped table has a line for, in code order."""
    return tuple(_table()[code] for code in sorted(_table()))


def crisis_line(country: str | None) -> CrisisLine | None:
    """The crisis line of a country (ISO 3166-1 alpha-2, any case), or ``None`` when unknown or unset."""
    code = (country or "").strip().upper()
    return _table().get(code) if code else None


def crisis_text(protocol_text: str, site_text: str = "", country: str | None = None) -> str:
    """The text shown with a suicidality (or other urgent safety) alert.

    Parameters
    ----------
    protocol_text : str
        The protocol's ``alerts.crisis_text``.
    site_text : str
        The site's own text; when not blank it is used as it is (the site knows its numbers).
    country : str, optional
        The site's country, ISO 3166-1 alpha-2 (``GB``). With the protocol's text, that
        country's emergency number and crisis line are added; an unknown code adds nothing.

    Returns
    -------
    str

    Examples
    --------
    >>> crisis_text("Contact the participant today.", country="gb")
    'Contact the participant today. In the United Kingdom: emergency 999; Samaritans: call 116 123.'
    >>> crisis_text("Contact the participant today.")
    'Contact the participant today.'
    >>> crisis_text("Contact the participant today.", site_text="Call Dr Rao on 0161 555 0100.", country="GB")
    'Call Dr Rao on 0161 555 0100.'
    """
    own = " ".join((site_text or "").split())
    if own:
        return own
    text = " ".join((protocol_text or "").split())
    line = crisis_line(country)
    if line is None:
        return text
    return f"{text} {line.sentence()}".strip()
