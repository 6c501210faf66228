"""The ``quality:`` section of a protocol: the study's own data-quality rules, checked at load.

The built-in data-quality rules (missing values, off-schedule administrations, incomplete forms,
values at the edge of their range; :mod:`alliance.monitoring.quality`) apply to every study. This
section adds the rules only a study can know, as REDCap's custom data-quality rules do: each rule
names one value — a measure (``grid_hamd17.total@baseline``, the names of
:class:`~alliance.protocol.Measure`) or a participant column (``age``) — a comparison and a value.
As in REDCap, a rule describes the problem: a finding is raised for every participant whose value
*satisfies* the comparison (``grid_hamd17.total@baseline < 17``: the entry criterion is not met).

Schema (``docs/protocol.md``, "Data-quality rules")::

    quality:
      rules:
        - id: baseline_below_entry          # unique; not the id of a built-in rule
          measure: grid_hamd17.total@baseline   # or `column: age`; without @TIMEPOINT: every
                                                # timepoint that gives the instrument
          comparison: "<"                   # < <= > >= == != between missing (quote it in YAML)
          value: 17                         # a number; [low, high] for between; none for missing;
                                            # == and != on a column also take text
          severity: error                   # error | warning | info (default warning)
          message: GRID-HAMD below the entry criterion of 17   # what is wrong, in plain words

A protocol without the section has no custom rules (the default protocol's rule is about the
Levin trial's entry criterion, not a default for other studies).

References
----------
REDCap data quality module: pre-defined rules A–I, and custom rules whose logic is true for the
discrepant records (REDCap Help & FAQ, "Data Quality"; Harris PA et al. 2009, J Biomed Inform 42(2):377-381).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .design import Design
from .errors import ID_ALLOWED, ID_PATTERN, Reader
from .measure import Measure

__all__ = ["BUILT_IN_RULES", "COMPARISONS", "SEVERITIES", "QualityConfig", "QualityRule", "read_quality"]

SEVERITIES = ("error", "warning", "info")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=", "between", "missing")
# The ids of the built-in rules (alliance.monitoring.quality.RULES describes each): a custom rule
# may not take one, so that a count per rule means one thing.
BUILT_IN_RULES = ("missing_arm", "missing_enrolment_date", "missing_facilitator", "unanswered_items",
                  "incomplete_form", "after_dosing", "out_of_order", "out_of_window", "undated",
                  "score_at_floor", "score_at_ceiling", "straight_lining", "age_at_edge", "dose_at_edge")
_TOP_KEYS = ("rules",)
_RULE_KEYS = ("id", "measure", "column", "comparison", "value", "severity", "message")
# Participant columns a rule may not read: the id (every finding names it anyway).
_NOT_RULE_COLUMNS = ("participant_id",)


@dataclass(frozen=True)
class QualityRule:
    """One custom data-quality rule of the protocol's ``quality:`` section.

    Attributes
    ----------
    id : str
        Unique among the rules and not one of :data:`BUILT_IN_RULES`; names the rule in findings.
    comparison : str
        One of :data:`COMPARISONS`; a finding is raised when the value satisfies it.
    severity : str
        One of :data:`SEVERITIES`.
    message : str
        What is wrong, in words a coordinator understands.
    measure : Measure or None
        The measure checked (``timepoint`` ``None``: at every timepoint that gives the instrument).
    column : str or None
        The participant column checked (when ``measure`` is ``None``).
    value : float, str, tuple of float or None
        The number (or, for ``==`` and ``!=`` on a column, text) compared with; ``(low, high)``
        for ``between`` (both ends included); ``None`` for ``missing``.
    """

    id: str
    comparison: str
    severity: str
    message: str
    measure: Measure | None = None
    column: str | None = None
    value: float | str | tuple[float, float] | None = None

    @property
    def target(self) -> str:
        """What the rule reads: the measure name or the column name."""
        return str(self.measure) if self.measure is not None else str(self.column)

    def describe(self) -> str:
        """The rule as a condition: ``grid_hamd17.total@baseline < 17``."""
        if self.comparison == "missing":
            return f"{self.target} missing"
        if self.comparison == "between":
            low, high = self.value
            return f"{self.target} between {_number(low)} and {_number(high)}"
        value = _number(self.value) if isinstance(self.value, float) else repr(self.value)
        return f"{self.target} {self.comparison} {value}"

    def holds(self, value: Any) -> bool:
        """Whether a value satisfies the rule's comparison (a finding); ``None``/NaN is missing.

        A numeric comparison on a value that is not a number does not hold (the caller reports the
        value as not comparable).
        """
        missing = value is None or (isinstance(value, float) and value != value)
        if self.comparison == "missing":
            return missing
        if missing:
            return False
        if self.comparison in ("==", "!=") and isinstance(self.value, str):
            equal = str(value).strip() == self.value
            return equal if self.comparison == "==" else not equal
        number = as_number(value)
        if number is None:
            return False
        if self.comparison == "between":
            low, high = self.value
            return low <= number <= high
        target = self.value
        return {"<": number < target, "<=": number <= target, ">": number > target, ">=": number >= target,
                "==": number == target, "!=": number != target}[self.comparison]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        out["measure" if self.measure is not None else "column"] = self.target
        out["comparison"] = self.comparison
        if self.value is not None:
            out["value"] = list(self.value) if isinstance(self.value, tuple) else self.value
        out.update(severity=self.severity, message=self.message)
        return out


@dataclass(frozen=True)
class QualityConfig:
    """The custom data-quality rules of one protocol, checked.

    Attributes
    ----------
    rules : tuple of QualityRule
    """

    rules: tuple[QualityRule, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [rule.to_dict() for rule in self.rules]}


def as_number(value: Any) -> float | None:
    """A value as a float when it is a number or text that reads as one (not a bool); else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number


def _number(value: float) -> str:
    return f"{value:g}"


def read_quality(r: Reader, raw: Any, design: Design) -> QualityConfig:
    """Read and check a protocol's ``quality:`` section (``None``: no custom rules).

    Parameters
    ----------
    r : Reader
        Problems are recorded here, with YAML paths starting at ``quality``.
    raw : mapping or None
    design : Design
        Measures must be of instruments the design gives (at the timepoint, when named); columns
        may not be the design's identifier columns.

    Returns
    -------
    QualityConfig
        Meaningful only when ``r`` recorded no problem.
    """
    if raw is None:
        return QualityConfig()
    section = r.mapping(raw, "quality", _TOP_KEYS, ())
    entries = r.listing(section.get("rules"), "quality.rules", "a list of rules")
    rules = []
    for i, entry in enumerate(entries):
        rule = _read_rule(r, entry, f"quality.rules[{i}]", design)
        if rule is not None:
            rules.append(rule)
    r.unique([str(e.get("id")) if isinstance(e, dict) else f"<entry {i}>" for i, e in enumerate(entries)],
             "quality.rules")
    return QualityConfig(rules=tuple(rules))


def _read_rule(r: Reader, entry: Any, key: str, design: Design) -> QualityRule | None:
    before = len(r.problems)
    e = r.mapping(entry, key, _RULE_KEYS, ("id", "comparison", "message"))
    if not e:
        return None
    rule_id = r.identifier(e.get("id"), f"{key}.id")
    if rule_id in BUILT_IN_RULES:
        r.problem(f"{key}.id", rule_id, "is the id of a built-in rule",
                  f"an id other than {', '.join(BUILT_IN_RULES)}")

    measure, column = None, None
    has_measure, has_column = e.get("measure") is not None, e.get("column") is not None
    if has_measure == has_column:
        r.problem(key, None, "names both a measure and a column" if has_measure else "names no value to check",
                  "either measure: INSTRUMENT.SCALE[@TIMEPOINT] or column: a participant column")
    elif has_measure:
        measure = r.measure(e["measure"], f"{key}.measure", timepoint="optional", design=design, percent=True)
    else:
        column = e["column"]
        if not isinstance(column, str) or not ID_PATTERN.fullmatch(column):
            r.problem(f"{key}.column", column, "is not a column name", ID_ALLOWED)
        elif column in design.identifiers or column in _NOT_RULE_COLUMNS:
            r.problem(f"{key}.column", column, "identifies a person: quality rules do not read identifiers",
                      "a covariate or contract column that is not in identifiers: "
                      + ", ".join(design.identifiers))

    comparison = e.get("comparison")
    if comparison not in COMPARISONS:
        r.problem(f"{key}.comparison", comparison, "is not a comparison",
                  ", ".join(COMPARISONS) + " (in quotes: YAML reads a bare > or ! as syntax)")
        comparison = None
    value = _read_value(r, e, key, comparison, text_allowed=column is not None)

    severity = e.get("severity", "warning")
    r.choice(severity, f"{key}.severity", SEVERITIES)
    message = e.get("message")
    if message is not None and (not isinstance(message, str) or not message.strip()):
        r.problem(f"{key}.message", message, "is not a message", "what is wrong, in words a coordinator understands")
    if len(r.problems) > before:
        return None
    return QualityRule(id=rule_id, comparison=str(comparison), severity=str(severity),
                       message=" ".join(str(message).split()), measure=measure, column=column, value=value)


def _read_value(r: Reader, e: dict, key: str, comparison: str | None,
                text_allowed: bool) -> float | str | tuple[float, float] | None:
    """The ``value`` of a rule, as its comparison needs it."""
    raw = e.get("value")
    where = f"{key}.value"
    if comparison is None:
        return None
    if comparison == "missing":
        if raw is not None:
            r.problem(where, raw, "is given, but `missing` compares with nothing", "no value")
        return None
    if raw is None:
        r.problem(where, None, f"is required for {comparison}",
                  "[low, high]" if comparison == "between" else "a number")
        return None
    if comparison == "between":
        pair = raw if isinstance(raw, list) and len(raw) == 2 else None
        numbers = [as_number(v) if not isinstance(v, str) else None for v in pair] if pair else [None]
        if pair is None or None in numbers:
            r.problem(where, raw, "is not a pair of numbers", "[low, high], two numbers with low ≤ high")
            return None
        if numbers[0] > numbers[1]:
            r.problem(where, raw, "has low above high", "[low, high], two numbers with low ≤ high")
            return None
        return (numbers[0], numbers[1])
    if comparison in ("==", "!=") and text_allowed and isinstance(raw, str) and raw.strip():
        return raw.strip()
    number = r.number(raw, where, "a number" + (" or a text (== and != on a column)" if text_allowed
                                                 and comparison in ("==", "!=") else ""))
    return number
