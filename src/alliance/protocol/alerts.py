"""The ``alerts:`` section of a protocol: which rules watch the participants, checked at load.

The rules are data (schema: ``docs/protocol.md``, "Alert rules"); a protocol without the section
gets the rules of the default protocol (``levin2024.yaml``), except rules about a measure the
protocol never administers (a protocol without WAI-SR has no alliance rules). A section that is
a mapping without ``rules`` (only ``crisis_text``, say) keeps the default rules; ``rules: []``
switches every rule off. Seven types of rule: about alliance and the assessments
(``low_alliance``, ``alliance_drop``, ``flag``, ``missed_assessment``) and about the safety record
(``serious_adverse_event``, ``vital_sign``, ``washout``); what each one means, and what data it
needs, is in :mod:`alliance.monitoring.alerts`, which evaluates them.

The safety rules have no keys of their own: what they compare with is the protocol's ``safety:``
section (:mod:`alliance.protocol.safety`: vital-sign thresholds, washout rules), one place for the
numbers that the analysis and the alerts both use. A ``vital_sign`` rule takes no ``severity``
either: each alert has the severity of the threshold the reading reached (``warning`` or
``urgent``), and a rule-wide severity would contradict the section.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alliance import instruments as bank

from .design import Design
from .errors import Reader
from .measure import Measure, MeasureNameError

__all__ = ["AT_CHOICES", "LATE_STATUSES", "METHODS", "RULE_SCHEMAS", "RULE_TYPES", "SEVERITIES", "AlertConfig",
           "AlertRule", "RuleSchema", "read_alerts"]

SEVERITIES = ("info", "warning", "urgent")
METHODS = ("percentile", "threshold")
AT_CHOICES = ("last_preparation", "last_before_dosing")
# The statuses of alliance.monitoring.schedule.timeline that mean "should have happened and has not".
LATE_STATUSES = ("overdue", "missed")

_TOP_KEYS = ("crisis_text", "missed_after_days", "historical_after_days", "rules")
RELIABLE_CHANGE = "reliable_change"
"""``points: reliable_change`` of an ``alliance_drop`` rule: the measure's reliable-change threshold."""
_COMMON_KEYS = ("id", "type", "label", "severity")


@dataclass(frozen=True)
class AlertRule:
    """One alert rule of the protocol's ``alerts:`` section (see ``docs/protocol.md``).

    Attributes
    ----------
    id : str
        Unique among the rules; stored with every alert the rule raises.
    type : str
        One of :data:`RULE_TYPES`.
    severity : str
        One of :data:`SEVERITIES`.
    label : str
        A title for people (default: the id).
    measure : str or None
        ``INSTRUMENT.SCALE`` (``low_alliance``, ``alliance_drop``), e.g. ``wai_sr.total``.
    at : str
        ``low_alliance``: ``last_preparation`` (the last timepoint of kind ``preparation`` since the
        previous dosing session) or ``last_before_dosing`` (the last timepoint of any kind since
        then) that administers the measure's instrument.
    method : str or None
        ``low_alliance``: ``percentile`` or ``threshold``.
    value : float or None
        ``low_alliance``: the percentile (0–100) or the threshold (points).
    min_n : int
        ``low_alliance`` with ``percentile``: the fewest participants with a score at the timepoint
        for the percentile to be used (below it the rule raises nothing).
    points : float or None
        ``alliance_drop``: the smallest fall from the previous rating that raises an alert
        (``None`` with ``reliable_change``).
    reliable_change : bool
        ``alliance_drop`` with ``points: reliable_change``: a fall is a rupture when it is larger
        than the measure's reliable-change threshold (Jacobson & Truax 1991; the protocol's
        ``reliable_change:`` section names its SD and reliability).
    flag : str or None
        ``flag``: the flag id of the instrument definitions, e.g. ``suicidality``.
    instruments : tuple of str
        ``flag``: the instruments to watch; empty means every instrument that defines the flag.
    statuses : tuple of str
        ``missed_assessment``: ``overdue`` and/or ``missed``.

    Notes
    -----
    ``severity`` of a ``vital_sign`` rule is ``urgent``, the most it raises: each of its alerts has
    the severity of the threshold the reading reached (``safety.vital_signs``).
    """

    id: str
    type: str
    severity: str
    label: str = ""
    measure: str | None = None
    at: str = "last_preparation"
    method: str | None = None
    value: float | None = None
    min_n: int = 5
    points: float | None = None
    reliable_change: bool = False
    flag: str | None = None
    instruments: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    @property
    def instrument(self) -> str | None:
        """The instrument of ``measure`` (``wai_sr`` of ``wai_sr.total``)."""
        return Measure.parse(self.measure, timepoint="forbidden").instrument if self.measure else None

    @property
    def scale(self) -> str | None:
        """The scale of ``measure`` (``total`` of ``wai_sr.total``)."""
        return Measure.parse(self.measure, timepoint="forbidden").scale if self.measure else None


@dataclass(frozen=True)
class AlertConfig:
    """The alert rules of one protocol, checked.

    Attributes
    ----------
    rules : tuple of AlertRule
    crisis_text : str
        What to do about an endorsed suicidality item, in the site's words; shown with every
        ``flag`` alert.
    missed_after_days : int
        Days after the end of a timepoint's window at which an overdue assessment counts as
        missed (``missed_after_days`` of :func:`alliance.monitoring.schedule.timeline`).
    historical_after_days : int or None
        An alert about data older than this many days (an administration's date, or the day a
        late assessment's window closed) when the rules first see it is not raised: it is
        historical (an import of a finished study's records), and "contact the participant
        today" about a rating months old helps nobody. ``None``: every alert is raised.
    """

    rules: tuple[AlertRule, ...]
    crisis_text: str = ""
    missed_after_days: int = 14
    historical_after_days: int | None = 30

    def rule(self, rule_id: str) -> AlertRule:
        """The rule with this id; ``KeyError`` naming the rules that exist."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no alert rule {rule_id!r}; rules are {', '.join(r.id for r in self.rules) or 'none'}")

    def of_type(self, rule_type: str) -> tuple[AlertRule, ...]:
        return tuple(r for r in self.rules if r.type == rule_type)


# ---------------------------------------------------------------------------------------------
# Reading and checking the alerts: section
# ---------------------------------------------------------------------------------------------

def read_alerts(r: Reader, raw: Any, design: Design, default: Mapping[str, Any] | None) -> AlertConfig:
    """Read and check a protocol's ``alerts:`` section, filled in from the default protocol's.

    Parameters
    ----------
    r : Reader
        Problems are recorded here, with YAML paths starting at ``alerts``.
    raw : mapping, list or None
        The section as written: a mapping with ``crisis_text``, ``missed_after_days`` and
        ``rules``, or just the list of rules; ``None`` when the protocol has none.
    design : Design
        Measures and instruments are checked against the bank and this design.
    default : mapping or None
        The default protocol's section (``None`` while reading the default protocol itself).

    Returns
    -------
    AlertConfig
        Meaningful only when ``r`` recorded no problem.
    """
    if raw is not None and not isinstance(raw, list | Mapping):
        r.problem("alerts", None, f"expected a mapping or a list, found {type(raw).__name__}",
                  "a mapping or a list: crisis_text, missed_after_days and rules, or just the rules")
        return AlertConfig(rules=())
    own_rules = isinstance(raw, list) and raw or isinstance(raw, Mapping) and "rules" in raw
    if own_rules or default is None:
        section: dict = {"rules": raw} if isinstance(raw, list) else dict(raw or {})
    else:
        # The default rules, less those about a measure this protocol never administers.
        section = dict(default)
        section["rules"] = [rule for rule in default.get("rules") or []
                            if "measure" not in rule or _instrument_of(rule["measure"]) in design.instruments]
        if isinstance(raw, Mapping):
            section.update(raw)
    before = len(r.problems)
    _check_section(section, design, r)
    if len(r.problems) > before:
        return AlertConfig(rules=())
    rules = []
    for entry in section.get("rules") or []:
        rule_type = entry["type"]
        rules.append(AlertRule(
            id=str(entry["id"]),
            type=rule_type,
            severity=str(entry.get("severity") or RULE_SCHEMAS[rule_type].default_severity),
            label=str(entry.get("label") or entry["id"]),
            measure=entry.get("measure"),
            at=str(entry.get("at") or "last_preparation"),
            method=entry.get("method"),
            value=None if entry.get("value") is None else float(entry["value"]),
            min_n=int(entry.get("min_n") or 5),
            points=None if entry.get("points") in (None, RELIABLE_CHANGE) else float(entry["points"]),
            reliable_change=entry.get("points") == RELIABLE_CHANGE,
            flag=entry.get("flag"),
            instruments=tuple(entry.get("instruments") or ()),
            statuses=tuple(entry.get("statuses") or ()),
        ))
    historical = section.get("historical_after_days", 30)
    return AlertConfig(rules=tuple(rules),
                       crisis_text=" ".join(str(section.get("crisis_text") or "").split()),
                       missed_after_days=int(section.get("missed_after_days", 14)),
                       historical_after_days=None if historical is None else int(historical))


def _instrument_of(measure: Any) -> str | None:
    try:
        return Measure.parse(measure, timepoint="forbidden").instrument
    except MeasureNameError:
        return None


def _check_section(section: dict, protocol: Design, r: Reader) -> None:
    """Record every problem of an ``alerts:`` section (YAML paths start at ``alerts``)."""
    problem = r.problem
    for unknown in [k for k in section if k not in _TOP_KEYS]:
        problem(f"alerts.{unknown}", None, "is not a key of the alerts section", ", ".join(_TOP_KEYS))
    if "crisis_text" in section and not isinstance(section["crisis_text"], str):
        problem("alerts.crisis_text", section["crisis_text"], "is not text", "the site's crisis text")
    missed_after = section.get("missed_after_days", 14)
    if isinstance(missed_after, bool) or not isinstance(missed_after, int) or missed_after < 0:
        problem("alerts.missed_after_days", missed_after, "is not a whole number of days ≥ 0", "e.g. 14")
    historical = section.get("historical_after_days", 30)
    if historical is not None and (isinstance(historical, bool) or not isinstance(historical, int) or historical < 1):
        problem("alerts.historical_after_days", historical, "is not a whole number of days ≥ 1",
                "e.g. 30, or null to raise alerts about data of any age")
    rules = section.get("rules")
    if rules is None:
        rules = []
    if not isinstance(rules, list):
        problem("alerts.rules", None, f"expected a list, found {type(rules).__name__}", "a list of rules")
        rules = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(rules):
        _check_rule(entry, f"alerts.rules[{i}]", protocol, r)
        if isinstance(entry, Mapping) and entry.get("id") is not None:
            rule_id = str(entry["id"])
            if rule_id in seen:
                problem(f"alerts.rules[{i}].id", rule_id, f"is also the id of alerts.rules[{seen[rule_id]}]",
                        "a different id for every rule")
            seen.setdefault(rule_id, i)
    flagged = [r for r in rules if isinstance(r, Mapping) and r.get("type") == "flag"]
    if flagged and not str(section.get("crisis_text") or "").strip():
        problem("alerts.crisis_text", None, "is required when a rule of type flag is configured",
                "the site's crisis text: whom to call and what to do")


def _check_rule(entry: Any, key: str, protocol: Design, r: Reader) -> None:
    problem = r.problem
    if not isinstance(entry, Mapping):
        problem(key, None, f"expected a mapping, found {type(entry).__name__}", "a rule with id and type")
        return
    label = f"{key} ({entry['id']})" if entry.get("id") is not None else key
    rule_type = entry.get("type")
    if rule_type not in RULE_TYPES:
        problem(f"{label}.type", rule_type, "is missing" if rule_type is None else "is not a rule type",
                ", ".join(RULE_TYPES))
        return
    schema = RULE_SCHEMAS[rule_type]
    allowed = tuple(k for k in (*_COMMON_KEYS, *schema.keys) if k != "severity" or schema.severity_from is None)
    # A severity where the data set it is refused below, with where it comes from.
    for unknown in [k for k in entry if k not in allowed and k != "severity"]:
        problem(f"{label}.{unknown}", None, f"is not a key of a {rule_type} rule", ", ".join(allowed))
    for required in ("id", *schema.required):
        if entry.get(required) in (None, "", []):
            problem(f"{label}.{required}", None, "is required", "")
    r.identifier(entry.get("id"), f"{label}.id")
    severity = entry.get("severity")
    if severity is not None and schema.severity_from is not None:
        problem(f"{label}.severity", severity, f"is not set on a {rule_type} rule", schema.severity_from)
    elif severity is not None and severity not in SEVERITIES:
        problem(f"{label}.severity", severity, "is not a severity", ", ".join(SEVERITIES))
    if "measure" in schema.keys and entry.get("measure") is not None:
        r.measure(entry["measure"], f"{label}.measure", "forbidden", protocol)
    if schema.check is not None:
        schema.check(entry, label, problem)


def _check_low_alliance(entry: Mapping, label: str, problem) -> None:
    method = entry.get("method")
    if method is not None and method not in METHODS:
        problem(f"{label}.method", method, "is not a method", ", ".join(METHODS))
    value = entry.get("value")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problem(f"{label}.value", value, "is not a number",
                    "a percentile between 0 and 100, or a threshold in the measure's points")
        elif method == "percentile" and not 0 < value < 100:
            problem(f"{label}.value", value, "is not a percentile strictly between 0 and 100", "e.g. 25")
    at = entry.get("at")
    if at is not None and at not in AT_CHOICES:
        problem(f"{label}.at", at, "is not a choice", ", ".join(AT_CHOICES))
    min_n = entry.get("min_n")
    if min_n is not None and (isinstance(min_n, bool) or not isinstance(min_n, int) or min_n < 2):
        problem(f"{label}.min_n", min_n, "is not a whole number ≥ 2", "e.g. 5")


def _check_alliance_drop(entry: Mapping, label: str, problem) -> None:
    points = entry.get("points")
    if points is not None and points != RELIABLE_CHANGE and (
            isinstance(points, bool) or not isinstance(points, int | float) or not math.isfinite(points)
            or points <= 0):
        problem(f"{label}.points", points, "is neither a positive number nor reliable_change",
                "reliable_change (the measure's reliable-change threshold), or a fall in points, e.g. 7")


def _check_missed_assessment(entry: Mapping, label: str, problem) -> None:
    statuses = entry.get("statuses")
    if statuses is None:
        return
    if not isinstance(statuses, list):
        problem(f"{label}.statuses", statuses, "expected a list", "a list of overdue, missed")
        return
    for j, status in enumerate(statuses):
        if status not in LATE_STATUSES:
            problem(f"{label}.statuses[{j}]", status, "is not a late status", ", ".join(LATE_STATUSES))


def _check_flag(entry: Mapping, label: str, problem) -> None:
    flag_id = entry.get("flag")
    with_flag = [i.id for i in bank.list_instruments() if any(f.id == flag_id for f in i.flags)]
    if flag_id is not None and not with_flag:
        defined = sorted({f.id for i in bank.list_instruments() for f in i.flags})
        problem(f"{label}.flag", flag_id, "is not a flag of any instrument", ", ".join(defined))
        return
    instruments = entry.get("instruments")
    if instruments is None:
        return
    if not isinstance(instruments, list):
        problem(f"{label}.instruments", instruments, "expected a list", "a list of instrument ids")
        return
    for j, instrument_id in enumerate(instruments):
        if instrument_id not in with_flag:
            problem(f"{label}.instruments[{j}]", instrument_id, f"does not define the flag {flag_id!r}",
                    ", ".join(with_flag))


@dataclass(frozen=True)
class RuleSchema:
    """What a rule of one type may and must say in the protocol.

    Attributes
    ----------
    keys : tuple of str
        Its keys beyond ``id``, ``type``, ``label`` and ``severity``; a rule with ``measure``
        has it checked as ``INSTRUMENT.SCALE`` of an instrument the protocol gives.
    required : tuple of str
        Those of ``keys`` it must give.
    default_severity : str
    check : callable or None
        ``check(entry, label, problem)``: the checks of its values.
    severity_from : str or None
        Set when the data decide each alert's severity (``vital_sign``: the threshold reached):
        where it comes from, said to a protocol that gives ``severity`` (refused).
    """

    keys: tuple[str, ...]
    required: tuple[str, ...]
    default_severity: str
    check: Callable[[Mapping, str, Callable], None] | None = None
    severity_from: str | None = None


# One entry per rule type (how each is evaluated: alliance.monitoring.alerts.RULE_TYPES).
RULE_SCHEMAS: dict[str, RuleSchema] = {
    "low_alliance": RuleSchema(("measure", "at", "method", "value", "min_n"), ("measure", "method", "value"),
                               "warning", _check_low_alliance),
    "alliance_drop": RuleSchema(("measure", "points"), ("measure", "points"), "warning", _check_alliance_drop),
    "flag": RuleSchema(("flag", "instruments"), ("flag",), "urgent", _check_flag),
    "missed_assessment": RuleSchema(("statuses",), ("statuses",), "info", _check_missed_assessment),
    # An SAE is the investigators' to report within days (ICH E2A): urgent by default.
    "serious_adverse_event": RuleSchema((), (), "urgent"),
    "vital_sign": RuleSchema((), (), "urgent", severity_from=(
        "no severity: each alert has the severity of the threshold the reading reached "
        "(safety.vital_signs warning or urgent)")),
    # A washout not kept is a protocol deviation to look at and report, not an emergency: the dose
    # has been given (the rule reads recorded dosing sessions).
    "washout": RuleSchema((), (), "warning"),
}
RULE_TYPES = tuple(RULE_SCHEMAS)
