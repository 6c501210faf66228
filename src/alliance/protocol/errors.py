"""The protocol's one error type and the reader that every section's schema check uses.

Every section of a protocol file (the design, ``alerts:``, ``analysis:``, ``power:``) is checked by
a function that takes a :class:`Reader` and records each problem with its YAML path
(``alerts.rules[1].method``), the value found and what is allowed. The loader
(:mod:`alliance.protocol.loader`) runs them all and raises one :class:`ProtocolError` listing
every problem of the file, so a user fixes the file once, not once per section.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from alliance import instruments as bank
from alliance.problems import DataProblem, StudyDataError

from .measure import Measure, MeasureNameError

__all__ = ["ID_PATTERN", "ProtocolError", "Reader"]

# Ids take part in measure names (INSTRUMENT.SCALE@TIMEPOINT) and REDCap event names.
ID_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
ID_ALLOWED = "lower-case letters, digits and underscores, starting with a letter"


class ProtocolError(StudyDataError):
    """A protocol YAML file that does not follow the schema in ``docs/protocol.md``.

    ``problems`` lists every problem of every section, in the order they were found; each
    :class:`~alliance.problems.DataProblem` has the file, the YAML path (``column``, with
    ``where="key"``), the value and what is allowed.
    """

    def __init__(self, problems: Sequence[DataProblem]):
        count = len(problems)
        super().__init__(problems, f"{count} {'problem' if count == 1 else 'problems'} in the protocol",
                         sort=False)


class Reader:
    """Collects every problem of one protocol file, each with its YAML path.

    Parameters
    ----------
    origin : str
        The file name (or ``"stored protocol of study X"``), put in every problem.
    """

    def __init__(self, origin: str):
        self.origin = origin
        self.problems: list[DataProblem] = []

    def problem(self, key: str, value: Any, reason: str, allowed: str = "") -> None:
        """Record one problem at YAML path ``key``."""
        self.problems.append(DataProblem(self.origin, None, key, value, allowed, reason, where="key"))

    def raise_if_any(self) -> None:
        if self.problems:
            raise ProtocolError(self.problems)

    # -- shapes ----------------------------------------------------------------------------------

    def mapping(self, value: Any, key: str, allowed: Sequence[str], required: Sequence[str] = (),
                what: str = "a mapping of keys") -> dict:
        """``value`` as a dict; unknown keys and missing required keys are problems."""
        if not isinstance(value, dict):
            self.problem(key or "(top level)", None, f"expected a mapping, found {type(value).__name__}", what)
            return {}
        for unknown in [k for k in value if k not in allowed]:
            self.problem(join(key, unknown), None, "is not a key of this section", ", ".join(allowed))
        for k in required:
            if value.get(k) in (None, "", []):
                self.problem(join(key, k), None, "is required", "")
        return value

    def listing(self, value: Any, key: str, what: str, non_empty: bool = False) -> list:
        """``value`` as a list (``None`` is an empty list)."""
        if value is None:
            return []
        if not isinstance(value, list) or (non_empty and not value):
            self.problem(key, None if isinstance(value, list) else value,
                         "expected a non-empty list" if non_empty else "expected a list", what)
            return []
        return value

    def identifier(self, value: Any, key: str) -> str:
        text = "" if value is None else str(value)
        if value is not None and (not isinstance(value, str) or not ID_PATTERN.fullmatch(text)):
            self.problem(key, value, "is not a valid id", ID_ALLOWED)
        return text

    def id_list(self, value: Any, key: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(key, value, "expected a list", "a list of ids")
            return []
        return [str(v) for v in value]

    def names(self, value: Any, key: str, what: str = "a name or a non-empty list of names") -> list[str]:
        """A name or a non-empty list of names (``x: acute`` or ``x: [acute, outcome]``)."""
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            self.problem(key, value, "is not a name or a list of names", what)
            return []
        return list(values)

    def unique(self, ids: list[str], key: str) -> None:
        seen: set[str] = set()
        for i, value in enumerate(ids):
            if value in seen:
                self.problem(f"{key}[{i}].id", value, "appears twice", "unique ids")
            seen.add(value)

    # -- values ----------------------------------------------------------------------------------

    def choice(self, value: Any, key: str, allowed: Sequence[str]) -> bool:
        if value not in allowed:
            self.problem(key, value, "is not one of the choices", ", ".join(allowed))
            return False
        return True

    def integer(self, value: Any, key: str, default: int, minimum: int | None = None,
                what: str = "a whole number of days") -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, value, "is not a whole number", what)
            return default
        if minimum is not None and value < minimum:
            self.problem(key, value, f"is below {minimum}", f"a whole number ≥ {minimum}")
        return value

    def number(self, value: Any, key: str, what: str) -> float | None:
        """A finite number (not a bool), or ``None`` with a problem recorded."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.problem(key, value, "is not a number", what)
            return None
        return float(value)

    def measure(self, value: Any, key: str, timepoint: str = "forbidden", design: Any = None,
                percent: bool = False) -> Measure | None:
        """A measure name of a scale of the instrument bank; with ``design``, of an instrument it gives.

        Parameters
        ----------
        value : object
            E.g. ``wai_sr.total`` or ``wai_sr.total@prep``.
        key : str
            Its YAML path.
        timepoint : {"forbidden", "required", "optional"}
            Whether the name carries ``@TIMEPOINT`` (:meth:`Measure.parse`).
        design : Design, optional
            Also require that the design gives the instrument (at the timepoint, when named).
        percent : bool
            Also accept a scale's percent-of-maximum form (``total_pct``) where the scale has one.

        Returns
        -------
        Measure or None
            ``None`` when a problem was recorded.
        """
        try:
            measure = Measure.parse(value, timepoint=timepoint)
        except MeasureNameError as error:
            self.problem(key, value, "is not a measure name", error.problems[0].allowed)
            return None
        try:
            instrument = bank.get(measure.instrument)
        except bank.UnknownInstrumentError:
            self.problem(key, value, f"names {measure.instrument!r}, which is not an instrument in the bank",
                         ", ".join(i.id for i in bank.list_instruments()))
            return None
        scales = scale_ids(instrument, percent)
        if measure.scale not in scales:
            self.problem(key, value, f"{measure.instrument} has no scale {measure.scale!r}", ", ".join(scales))
            return None
        if design is None:
            return measure
        if measure.timepoint is None and measure.instrument not in design.instruments:
            self.problem(key, value, f"protocol {design.id} never administers {measure.instrument}",
                         ", ".join(design.instruments))
            return None
        if measure.timepoint is not None and not design.administers(measure.timepoint, measure.instrument):
            self.problem(key, value, f"protocol {design.id} does not administer {measure.instrument} at "
                         f"{measure.timepoint}", "a measure of an instrument at a timepoint that gives it")
            return None
        return measure

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.problem(key, value, "is not true or false", "true or false")
            return False
        return value


def scale_ids(instrument: Any, percent: bool = False) -> list[str]:
    """An instrument's scale ids, and with ``percent`` the ``<scale>_pct`` of those that have one."""
    scales = [s.id for s in instrument.scales]
    return scales + [f"{s.id}_pct" for s in instrument.scales if s.percent_of_max] if percent else scales


def join(key: str, child: Any) -> str:
    """The YAML path of ``child`` under ``key`` (``alerts`` + ``rules`` → ``alerts.rules``)."""
    return f"{key}.{child}" if key else str(child)
