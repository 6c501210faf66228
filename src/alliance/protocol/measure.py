"""The measure grammar: ``INSTRUMENT.SCALE@TIMEPOINT``, built and split only here.

A measure is one number per participant: an instrument's scale score (or its ``_pct``
percent-of-maximum form) at a timepoint, e.g. ``wai_sr.total@prep``, ``grid_hamd17.total@week4``,
``meq30.total_pct@peak``. Rules and plans also name a scale without a timepoint
(``wai_sr.total``: "this scale, wherever it is given"). Every module that needs the parts of a
name, or builds one, goes through :class:`Measure`; nothing else splits on ``@`` or ``.``.

Examples
--------
>>> m = Measure.parse("meq30.total_pct@peak")
>>> m.instrument, m.scale, m.timepoint, m.base_scale
('meq30', 'total_pct', 'peak', 'total')
>>> str(m.without_timepoint()), str(Measure("wai_sr", "total").at("prep"))
('meq30.total_pct', 'wai_sr.total@prep')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alliance.problems import DataProblem, StudyDataError

__all__ = ["Measure", "MeasureNameError", "measure_name", "parse_measure"]

_PART = r"[a-z][a-z0-9_]*"
_NAME = re.compile(rf"(?P<instrument>{_PART})\.(?P<scale>{_PART})(?:@(?P<timepoint>{_PART}))?")
_FORMS = {
    "required": "INSTRUMENT.SCALE@TIMEPOINT, e.g. wai_sr.total@prep",
    "forbidden": "INSTRUMENT.SCALE without a timepoint, e.g. wai_sr.total",
    "optional": "INSTRUMENT.SCALE or INSTRUMENT.SCALE@TIMEPOINT, e.g. wai_sr.total@prep",
}


class MeasureNameError(StudyDataError):
    """A text that is not a measure name of the required form."""


@dataclass(frozen=True, order=True)
class Measure:
    """A measure name's parts: ``INSTRUMENT.SCALE@TIMEPOINT`` (timepoint ``None``: the scale alone).

    Attributes
    ----------
    instrument : str
        Instrument id, e.g. ``wai_sr``.
    scale : str
        Scale id (or ``<scale>_pct``), e.g. ``total``; for an instrument's flag, the flag id.
    timepoint : str or None
        Timepoint or derived-timepoint id, e.g. ``prep``, ``peak``.
    """

    instrument: str
    scale: str
    timepoint: str | None = None

    @classmethod
    def parse(cls, text: object, timepoint: str = "required") -> Measure:
        """Split a measure name.

        Parameters
        ----------
        text : str
        timepoint : {"required", "forbidden", "optional"}
            Whether the name must, must not or may carry ``@TIMEPOINT``.

        Returns
        -------
        Measure

        Raises
        ------
        MeasureNameError
            When the text is not of the required form (the message says which form).
        """
        match = _NAME.fullmatch(text) if isinstance(text, str) else None
        has_timepoint = match is not None and match["timepoint"] is not None
        if (match is None or (timepoint == "required" and not has_timepoint)
                or (timepoint == "forbidden" and has_timepoint)):
            raise MeasureNameError([DataProblem("measure name", None, None, text, _FORMS[timepoint],
                                                "is not a measure name")], "not a measure name")
        return cls(match["instrument"], match["scale"], match["timepoint"])

    @classmethod
    def is_name(cls, text: object, timepoint: str = "required") -> bool:
        """Whether :meth:`parse` would accept ``text``."""
        try:
            cls.parse(text, timepoint)
        except MeasureNameError:
            return False
        return True

    @property
    def name(self) -> str:
        return str(self)

    @property
    def base_scale(self) -> str:
        """The scale without a ``_pct`` suffix (``total`` of ``total_pct``)."""
        return self.scale.removesuffix("_pct")

    @property
    def is_percent(self) -> bool:
        """Whether this is a scale's percent-of-maximum form (``total_pct``)."""
        return self.scale.endswith("_pct")

    def prefix(self) -> str:
        """``INSTRUMENT.SCALE@``: to build the names of one scale at many timepoints at once.

        ``measure.prefix() + timepoints`` on a pandas string column gives a column of names.
        """
        return f"{self.instrument}.{self.scale}@"

    def at(self, timepoint: str) -> Measure:
        """The same scale at another timepoint."""
        return Measure(self.instrument, self.scale, timepoint)

    def without_timepoint(self) -> Measure:
        """The scale alone (``wai_sr.total`` of ``wai_sr.total@prep``)."""
        return Measure(self.instrument, self.scale)

    def __str__(self) -> str:
        base = f"{self.instrument}.{self.scale}"
        return base if self.timepoint is None else f"{base}@{self.timepoint}"


def measure_name(instrument: str, scale: str, timepoint: str) -> str:
    """The name of a measure: ``measure_name("wai_sr", "total", "prep")`` is ``"wai_sr.total@prep"``.

    Parameters
    ----------
    instrument, scale, timepoint : str

    Returns
    -------
    str
    """
    return str(Measure(instrument, scale, timepoint))


def parse_measure(name: str) -> Measure:
    """:meth:`Measure.parse` of a full name ``INSTRUMENT.SCALE@TIMEPOINT``.

    Parameters
    ----------
    name : str

    Returns
    -------
    Measure

    Raises
    ------
    MeasureNameError
        When the name is not of the form ``INSTRUMENT.SCALE@TIMEPOINT``.
    """
    return Measure.parse(name)
