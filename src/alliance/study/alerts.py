"""Alert rules: which participant needs the team's attention while treatment runs, and why.

The rules are data, the ``alerts:`` section of the protocol (schema: ``docs/protocol.md``,
"Alert rules"); a protocol without the section gets the rules of the default protocol
(``protocols/levin2024.yaml``). Four kinds of rule:

``low_alliance``
    Alliance at the last preparation session before a dosing session is low: below the sample's
    percentile (default the 25th, among the participants with a score at that timepoint) or below
    a fixed threshold. Levin et al. (2024) found alliance at the final preparation session to
    predict the acute experience and depression up to 12 months later, so a dosing session after
    low alliance should not simply go ahead.
``alliance_drop``
    Alliance fell from the participant's own previous rating by at least a number of points.
``flag``
    An instrument's flag is raised, e.g. ``suicidality``: PHQ-9 item 9, QIDS-SR-16 item 12,
    GRID-HAMD item 3 (the ``flags`` of the instrument definitions, computed by
    :func:`alliance.instruments.score`). The alert carries the site's crisis text.
``missed_assessment``
    A timepoint is overdue or missed (:func:`alliance.study.schedule.timeline`).

Everything here is pure: scores, answers and timelines come in as tables and lists, alerts go out
as :class:`Alert` values. Storing them, deduplicating them and acknowledging them is the web
app's part (``alliance.web.monitor``).

Examples
--------
>>> import pandas as pd
>>> from alliance.study import default_protocol
>>> protocol = default_protocol()
>>> config = alert_config(protocol)
>>> [rule.id for rule in config.rules]
['low_alliance', 'alliance_drop', 'suicidality', 'overdue_assessment', 'missed_assessment']
>>> scores = pd.DataFrame({"participant_id": ["P1", "P1"], "timepoint": ["prep", "post_session1"],
...                        "instrument": "wai_sr", "scale": "total", "value": [50.0, 41.0]})
>>> [a.reason for a in evaluate_alerts(config, protocol, scores=scores)]
['WAI-SR total fell by 9 points, from 50 at the final preparation session to 41 at the integration after session 1 (an alert is raised at a fall of 7 points or more)']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from alliance import instruments as bank

from .errors import DataProblem, ProtocolError
from .measures import measure_name
from .protocol import Protocol, Timepoint
from .schedule import STATUSES

__all__ = [
    "AT_CHOICES", "METHODS", "RULE_TYPES", "SEVERITIES", "Alert", "AlertConfig", "AlertRule",
    "alert_config", "alliance_drop_alerts", "check_alerts", "evaluate_alerts", "flag_alerts",
    "low_alliance_alerts", "low_alliance_timepoints", "missed_assessment_alerts", "parse_alerts",
]

RULE_TYPES = ("low_alliance", "alliance_drop", "flag", "missed_assessment")
SEVERITIES = ("info", "warning", "urgent")
METHODS = ("percentile", "threshold")
AT_CHOICES = ("last_preparation", "last_before_dosing")
# The statuses of alliance.study.schedule.timeline that mean "should have happened and has not".
LATE_STATUSES = ("overdue", "missed")

_TOP_KEYS = ("crisis_text", "missed_after_days", "rules")
_RULE_KEYS = {
    "low_alliance": ("id", "type", "label", "severity", "measure", "at", "method", "value", "min_n"),
    "alliance_drop": ("id", "type", "label", "severity", "measure", "points"),
    "flag": ("id", "type", "label", "severity", "flag", "instruments"),
    "missed_assessment": ("id", "type", "label", "severity", "statuses"),
}
_REQUIRED = {
    "low_alliance": ("measure", "method", "value"),
    "alliance_drop": ("measure", "points"),
    "flag": ("flag",),
    "missed_assessment": ("statuses",),
}
_DEFAULT_SEVERITY = {"low_alliance": "warning", "alliance_drop": "warning", "flag": "urgent",
                     "missed_assessment": "info"}


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
        ``alliance_drop``: the smallest fall from the previous rating that raises an alert.
    flag : str or None
        ``flag``: the flag id of the instrument definitions, e.g. ``suicidality``.
    instruments : tuple of str
        ``flag``: the instruments to watch; empty means every instrument that defines the flag.
    statuses : tuple of str
        ``missed_assessment``: ``overdue`` and/or ``missed``.
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
    flag: str | None = None
    instruments: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    @property
    def instrument(self) -> str | None:
        """The instrument of ``measure`` (``wai_sr`` of ``wai_sr.total``)."""
        return self.measure.partition(".")[0] if self.measure else None

    @property
    def scale(self) -> str | None:
        """The scale of ``measure`` (``total`` of ``wai_sr.total``)."""
        return self.measure.partition(".")[2] if self.measure else None


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
        missed (``missed_after_days`` of :func:`alliance.study.schedule.timeline`).
    """

    rules: tuple[AlertRule, ...]
    crisis_text: str = ""
    missed_after_days: int = 14

    def rule(self, rule_id: str) -> AlertRule:
        """The rule with this id; ``KeyError`` naming the rules that exist."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no alert rule {rule_id!r}; rules are {', '.join(r.id for r in self.rules) or 'none'}")

    def of_type(self, rule_type: str) -> tuple[AlertRule, ...]:
        return tuple(r for r in self.rules if r.type == rule_type)


@dataclass(frozen=True)
class Alert:
    """One alert: a rule that holds for one participant at one timepoint.

    Attributes
    ----------
    rule : str
        The rule's id.
    type : str
        The rule's type.
    participant_id : str
    timepoint : str
        The timepoint the alert is about (where the low score, the drop, the flagged answer or
        the late assessment is).
    measure : str
        What was measured: ``wai_sr.total@prep``; for flags ``phq9.suicidality@week1``; for late
        assessments the instruments due, e.g. ``grid_hamd17@week4``.
    severity : str
    reason : str
        The reason in words, with the numbers.
    action : str
        What to do, when the protocol says (the crisis text for flags); otherwise empty.
    value : float or None
        The number the rule looked at (score, fall in points, answer, days late).
    """

    rule: str
    type: str
    participant_id: str
    timepoint: str
    measure: str
    severity: str
    reason: str
    action: str = ""
    value: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """``(rule, participant_id, timepoint)``: one alert per key is ever raised."""
        return (self.rule, self.participant_id, self.timepoint)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Reading and checking the alerts: section
# ---------------------------------------------------------------------------------------------

def parse_alerts(raw: Any, protocol: Protocol, origin: str = "<protocol>") -> AlertConfig:
    """Build the alert rules from a protocol's ``alerts:`` section, checking all of it.

    Parameters
    ----------
    raw : mapping or list
        The section: a mapping with ``crisis_text``, ``missed_after_days`` and ``rules``, or
        just the list of rules.
    protocol : Protocol
        Measures and instruments are checked against the bank and this protocol.
    origin : str
        The file name, for error messages.

    Returns
    -------
    AlertConfig

    Raises
    ------
    ProtocolError
        Listing every problem, each with the key path (``alerts.rules[1].method``), the value
        found and what is allowed.
    """
    problems = check_alerts(raw, protocol, origin)
    if problems:
        raise ProtocolError(problems)
    section = {"rules": raw} if isinstance(raw, list) else dict(raw)
    rules = []
    for entry in section.get("rules") or []:
        rule_type = entry["type"]
        rules.append(AlertRule(
            id=str(entry["id"]),
            type=rule_type,
            severity=str(entry.get("severity") or _DEFAULT_SEVERITY[rule_type]),
            label=str(entry.get("label") or entry["id"]),
            measure=entry.get("measure"),
            at=str(entry.get("at") or "last_preparation"),
            method=entry.get("method"),
            value=None if entry.get("value") is None else float(entry["value"]),
            min_n=int(entry.get("min_n") or 5),
            points=None if entry.get("points") is None else float(entry["points"]),
            flag=entry.get("flag"),
            instruments=tuple(entry.get("instruments") or ()),
            statuses=tuple(entry.get("statuses") or ()),
        ))
    return AlertConfig(rules=tuple(rules),
                       crisis_text=" ".join(str(section.get("crisis_text") or "").split()),
                       missed_after_days=int(section.get("missed_after_days", 14)))


def check_alerts(raw: Any, protocol: Protocol, origin: str = "<protocol>") -> list[DataProblem]:
    """Every problem of an ``alerts:`` section (an empty list when there is none).

    Parameters
    ----------
    raw : mapping or list
    protocol : Protocol
    origin : str

    Returns
    -------
    list of DataProblem
        Key paths start at ``alerts``.
    """
    problems: list[DataProblem] = []

    def problem(key: str, value: Any, reason: str, allowed: str = "") -> None:
        problems.append(DataProblem(origin, None, key, value, allowed, reason, where="key"))

    if isinstance(raw, list):
        section: dict = {"rules": raw}
    elif isinstance(raw, Mapping):
        section = dict(raw)
    else:
        problem("alerts", None, f"expected a mapping or a list, found {type(raw).__name__}",
                "a mapping with crisis_text, missed_after_days and rules, or a list of rules")
        return problems
    for unknown in [k for k in section if k not in _TOP_KEYS]:
        problem(f"alerts.{unknown}", None, "is not a key of the alerts section", ", ".join(_TOP_KEYS))
    if "crisis_text" in section and not isinstance(section["crisis_text"], str):
        problem("alerts.crisis_text", section["crisis_text"], "is not text", "the site's crisis text")
    missed_after = section.get("missed_after_days", 14)
    if isinstance(missed_after, bool) or not isinstance(missed_after, int) or missed_after < 0:
        problem("alerts.missed_after_days", missed_after, "is not a whole number of days ≥ 0", "e.g. 14")
    rules = section.get("rules")
    if rules is None:
        rules = []
    if not isinstance(rules, list):
        problem("alerts.rules", None, f"expected a list, found {type(rules).__name__}", "a list of rules")
        rules = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(rules):
        _check_rule(entry, f"alerts.rules[{i}]", protocol, problem)
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
    return problems


def _check_rule(entry: Any, key: str, protocol: Protocol, problem) -> None:
    if not isinstance(entry, Mapping):
        problem(key, None, f"expected a mapping, found {type(entry).__name__}", "a rule with id and type")
        return
    label = f"{key} ({entry['id']})" if entry.get("id") is not None else key
    rule_type = entry.get("type")
    if rule_type not in RULE_TYPES:
        problem(f"{label}.type", rule_type, "is missing" if rule_type is None else "is not a rule type",
                ", ".join(RULE_TYPES))
        return
    allowed = _RULE_KEYS[rule_type]
    for unknown in [k for k in entry if k not in allowed]:
        problem(f"{label}.{unknown}", None, f"is not a key of a {rule_type} rule", ", ".join(allowed))
    for required in ("id", *_REQUIRED[rule_type]):
        if entry.get(required) in (None, "", []):
            problem(f"{label}.{required}", None, "is required", "")
    rule_id = entry.get("id")
    if rule_id is not None and (not isinstance(rule_id, str) or not rule_id.replace("_", "").isalnum()
                                or not rule_id[:1].isalpha() or rule_id != rule_id.lower()):
        problem(f"{label}.id", rule_id, "is not a valid id",
                "lower-case letters, digits and underscores, starting with a letter")
    severity = entry.get("severity")
    if severity is not None and severity not in SEVERITIES:
        problem(f"{label}.severity", severity, "is not a severity", ", ".join(SEVERITIES))
    if rule_type in ("low_alliance", "alliance_drop") and entry.get("measure") is not None:
        _check_measure(entry["measure"], f"{label}.measure", protocol, problem)
    if rule_type == "low_alliance":
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
    elif rule_type == "alliance_drop":
        points = entry.get("points")
        if points is not None and (isinstance(points, bool) or not isinstance(points, int | float)
                                   or not math.isfinite(points) or points <= 0):
            problem(f"{label}.points", points, "is not a positive number", "a fall in the measure's points, e.g. 7")
    elif rule_type == "flag":
        _check_flag(entry, label, problem)
    else:
        statuses = entry.get("statuses")
        if statuses is not None:
            if not isinstance(statuses, list):
                problem(f"{label}.statuses", statuses, "expected a list", "a list of overdue, missed")
            else:
                for j, status in enumerate(statuses):
                    if status not in LATE_STATUSES:
                        problem(f"{label}.statuses[{j}]", status, "is not a late status", ", ".join(LATE_STATUSES))


def _check_measure(measure: Any, key: str, protocol: Protocol, problem) -> None:
    text = str(measure)
    instrument_id, dot, scale = text.partition(".")
    if not dot or "@" in text:
        problem(key, measure, "is not INSTRUMENT.SCALE", "e.g. wai_sr.total (no timepoint)")
        return
    try:
        instrument = bank.get(instrument_id)
    except bank.UnknownInstrumentError:
        problem(key, measure, f"names {instrument_id!r}, which is not an instrument in the bank",
                ", ".join(i.id for i in bank.list_instruments()))
        return
    scales = [s.id for s in instrument.scales]
    if scale not in scales:
        problem(key, measure, f"{instrument_id} has no scale {scale!r}", ", ".join(scales))
    elif instrument_id not in protocol.instruments:
        problem(key, measure, f"protocol {protocol.id} never administers {instrument_id}",
                ", ".join(protocol.instruments))


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


def alert_config(protocol: Protocol) -> AlertConfig:
    """The alert rules of a protocol: its ``alerts:`` section, or the default protocol's.

    A protocol without the section gets the rules of ``protocols/levin2024.yaml``, except rules
    about a measure the protocol never administers (a protocol without WAI-SR has no alliance
    rules). A section that is a mapping without ``rules`` (only ``crisis_text``, say) keeps the
    default rules; ``rules: []`` switches every rule off.

    Parameters
    ----------
    protocol : Protocol

    Returns
    -------
    AlertConfig

    Raises
    ------
    ProtocolError
        When the section breaks the schema (the protocol loader already checks it).
    """
    own = protocol.alerts
    if isinstance(own, list) and own or isinstance(own, Mapping) and "rules" in own:
        return parse_alerts(own, protocol)
    from .io import default_protocol

    default = dict(default_protocol().alerts)
    default["rules"] = [r for r in default["rules"]
                        if "measure" not in r or r["measure"].partition(".")[0] in protocol.instruments]
    if isinstance(own, Mapping):
        default.update(own)
    return parse_alerts(default, protocol)


# ---------------------------------------------------------------------------------------------
# Evaluating the rules
# ---------------------------------------------------------------------------------------------

def evaluate_alerts(config: AlertConfig, protocol: Protocol, *, scores: pd.DataFrame | None = None,
                    responses: pd.DataFrame | None = None,
                    timelines: Mapping[str, Sequence[Mapping]] | None = None,
                    today: date | None = None,
                    participant_ids: Iterable[str] | None = None) -> list[Alert]:
    """Every alert the rules raise on the data given.

    Parameters
    ----------
    config : AlertConfig
        From :func:`alert_config`.
    protocol : Protocol
    scores : DataFrame, optional
        Long scale scores of the whole study (the sample for percentiles): ``participant_id``,
        ``timepoint``, ``instrument``, ``scale``, ``value``. Needed by ``low_alliance`` and
        ``alliance_drop`` rules.
    responses : DataFrame, optional
        Long item answers: ``participant_id``, ``timepoint``, ``instrument``, ``item``,
        ``value``. Needed by ``flag`` rules; only the flagged items need to be there.
    timelines : mapping, optional
        Participant id → the rows of :func:`alliance.study.schedule.timeline` on ``today``.
        Needed by ``missed_assessment`` rules; ``low_alliance`` uses them to say when the dosing
        session is due and to stay silent once it has happened.
    today : date, optional
        The day the timelines were computed for; ``missed_assessment`` rules need it (days late).
    participant_ids : iterable of str, optional
        Raise alerts for these participants only (the sample for percentiles is still everyone
        in ``scores``).

    Returns
    -------
    list of Alert
        In rule order, then participant, then protocol order of timepoints.
    """
    wanted = None if participant_ids is None else {str(p) for p in participant_ids}
    alerts: list[Alert] = []
    for rule in config.rules:
        if rule.type == "low_alliance" and scores is not None:
            found = low_alliance_alerts(rule, protocol, scores, timelines=timelines)
        elif rule.type == "alliance_drop" and scores is not None:
            found = alliance_drop_alerts(rule, protocol, scores)
        elif rule.type == "flag" and responses is not None:
            found = flag_alerts(rule, protocol, responses, config.crisis_text)
        elif rule.type == "missed_assessment" and timelines is not None and today is not None:
            found = missed_assessment_alerts(rule, protocol, timelines, today, config.missed_after_days)
        else:
            continue
        alerts += [a for a in found if wanted is None or a.participant_id in wanted]
    return alerts


def low_alliance_timepoints(rule: AlertRule, protocol: Protocol) -> dict[str, str]:
    """Which timepoint's alliance the ``low_alliance`` rule judges, before which dosing session.

    Parameters
    ----------
    rule : AlertRule
    protocol : Protocol

    Returns
    -------
    dict
        Alliance timepoint id → the dosing timepoint id it comes before. For each dosing timepoint,
        the last timepoint since the previous dosing timepoint (of kind ``preparation`` for
        ``at: last_preparation``, of any kind for ``last_before_dosing``) that administers the
        rule's instrument; dosing timepoints with none are left out. In the default protocol:
        ``{"prep": "session1"}`` (and with ``last_before_dosing`` also
        ``"post_session1": "session2"``).
    """
    out: dict[str, str] = {}
    since_dosing: list[Timepoint] = []
    for timepoint in protocol.timepoints:
        if timepoint.kind == "dosing":
            candidates = [t for t in since_dosing if rule.instrument in t.instruments
                          and (rule.at == "last_before_dosing" or t.kind == "preparation")]
            if candidates:
                out[candidates[-1].id] = timepoint.id
            since_dosing = []
        else:
            since_dosing.append(timepoint)
    return out


def low_alliance_alerts(rule: AlertRule, protocol: Protocol, scores: pd.DataFrame,
                        timelines: Mapping[str, Sequence[Mapping]] | None = None) -> list[Alert]:
    """Alerts of a ``low_alliance`` rule: a score below the sample's percentile or a threshold.

    Parameters
    ----------
    rule : AlertRule
    protocol : Protocol
    scores : DataFrame
        Long scores of every participant (``participant_id, timepoint, instrument, scale, value``).
    timelines : mapping, optional
        Participant id → timeline rows. When given, a participant whose dosing session is already
        ``done`` gets no alert (it can no longer inform that session), and the reason says when the
        session is due. A row may carry ``dosed=True``: the session took place (it is recorded)
        although its forms are not all in yet — that, too, silences the rule.

    Returns
    -------
    list of Alert

    Notes
    -----
    The percentile is numpy's default (linear interpolation between order statistics, R's
    ``quantile(type = 7)``) over every participant with a score at that timepoint — the
    participant's own score included. "Below" is strict: a score equal to the cut-off raises
    nothing. With fewer than ``min_n`` scores the percentile is not used and nothing is raised.
    """
    alerts = []
    rows = _timeline_index(timelines)
    for timepoint_id, dosing_id in low_alliance_timepoints(rule, protocol).items():
        sample = _scores_at(scores, rule.instrument, rule.scale, timepoint_id)
        if sample.empty:
            continue
        if rule.method == "percentile":
            if len(sample) < rule.min_n:
                continue
            cutoff = float(np.percentile(sample.to_numpy(dtype=float), rule.value))
            against = (f"the sample's {_ordinal(rule.value)} percentile "
                       f"({_number(cutoff)}, n = {len(sample)})")
        else:
            cutoff = float(rule.value)
            against = f"the threshold of {_number(cutoff)}"
        dosing = protocol.timepoint(dosing_id)
        for participant_id, value in sample.items():
            if not value < cutoff:
                continue
            dosing_row = rows.get((participant_id, dosing_id))
            if dosing_row is not None and (dosing_row.get("status") == "done" or dosing_row.get("dosed")):
                continue
            reason = (f"{_scale_label(rule.measure)} {_number(value)} at {_at(protocol, timepoint_id)} "
                      f"is below {against}")
            if dosing_row is not None:
                when = "is due on" if dosing_row.get("status") in ("upcoming", "due") else "was due on"
                reason += f"; {_session_label(dosing)} {when} {_iso(dosing_row['planned'])}"
            alerts.append(Alert(rule.id, rule.type, participant_id, timepoint_id,
                                measure_name(rule.instrument, rule.scale, timepoint_id), rule.severity,
                                reason, value=float(value)))
    return sorted(alerts, key=lambda a: (a.participant_id, protocol.timepoint_ids.index(a.timepoint)))


def alliance_drop_alerts(rule: AlertRule, protocol: Protocol, scores: pd.DataFrame) -> list[Alert]:
    """Alerts of an ``alliance_drop`` rule: a fall of at least ``points`` from the previous rating.

    Parameters
    ----------
    rule : AlertRule
    protocol : Protocol
    scores : DataFrame
        Long scores (``participant_id, timepoint, instrument, scale, value``).

    Returns
    -------
    list of Alert
        One per participant and timepoint whose score is at least ``points`` below the
        participant's previous score (the latest earlier timepoint, in protocol order, with a
        score of this measure; a missing rating in between is skipped, not treated as zero).
    """
    order = {t.id: t.order for t in protocol.timepoints if rule.instrument in t.instruments}
    rows = scores[(scores["instrument"] == rule.instrument) & (scores["scale"] == rule.scale)
                  & scores["timepoint"].isin(list(order)) & scores["value"].notna()]
    alerts = []
    for participant_id, block in rows.groupby("participant_id", sort=True):
        block = block.assign(_order=block["timepoint"].map(order)).sort_values("_order")
        timepoints, values = block["timepoint"].tolist(), block["value"].astype(float).tolist()
        for (before_id, before), (now_id, now) in zip(zip(timepoints, values, strict=True),
                                                      zip(timepoints[1:], values[1:], strict=True), strict=False):
            fall = before - now
            if fall >= rule.points:
                reason = (f"{_scale_label(rule.measure)} fell by {_number(fall)} points, from {_number(before)} "
                          f"at {_at(protocol, before_id)} to {_number(now)} at {_at(protocol, now_id)} "
                          f"(an alert is raised at a fall of {_number(rule.points)} points or more)")
                alerts.append(Alert(rule.id, rule.type, str(participant_id), now_id,
                                    measure_name(rule.instrument, rule.scale, now_id), rule.severity, reason,
                                    value=float(fall)))
    return alerts


def flag_alerts(rule: AlertRule, protocol: Protocol, responses: pd.DataFrame, crisis_text: str = "") -> list[Alert]:
    """Alerts of a ``flag`` rule: an instrument's flag (e.g. suicidality) raised by an answer.

    Parameters
    ----------
    rule : AlertRule
    protocol : Protocol
    responses : DataFrame
        Long answers (``participant_id, timepoint, instrument, item, value``); other items of
        the instruments may be present or not.
    crisis_text : str
        Put in each alert's ``action``.

    Returns
    -------
    list of Alert
        One per participant and timepoint (answers to several flagged instruments at one
        timepoint make one alert naming them all).

    Notes
    -----
    Whether a flag is raised is decided by :func:`alliance.instruments.score` (the one scoring
    path), from the flag's definition (item and ``at_least``) in the instrument's YAML file.
    """
    instrument_ids = rule.instruments or tuple(
        i.id for i in bank.list_instruments() if any(f.id == rule.flag for f in i.flags))
    found: dict[tuple[str, str], list[tuple[str, float, str]]] = {}
    for instrument_id in instrument_ids:
        instrument = bank.get(instrument_id)
        flag = next(f for f in instrument.flags if f.id == rule.flag)
        rows = responses[(responses["instrument"] == instrument_id) & (responses["item"] == flag.item)]
        rows = rows[rows["value"].notna()]
        if rows.empty:
            continue
        # Every item column must be there for the engine; only the flagged one matters here.
        answers = pd.DataFrame(np.nan, index=range(len(rows)), columns=list(instrument.item_ids))
        answers[flag.item] = rows["value"].astype(float).to_numpy()
        raised = bank.score(instrument, answers)[flag.id].fillna(False).to_numpy(dtype=bool)
        item_number = instrument.item_ids.index(flag.item) + 1
        for (participant_id, timepoint_id, value), hit in zip(
                rows[["participant_id", "timepoint", "value"]].itertuples(index=False), raised, strict=True):
            if hit:
                text = (f"{instrument.short_name} item {item_number} answered {_number(value)} at "
                        f"{_at(protocol, str(timepoint_id))}: {flag.label}")
                found.setdefault((str(participant_id), str(timepoint_id)), []).append(
                    (instrument_id, float(value), text))
    alerts = []
    for (participant_id, timepoint_id), hits in found.items():
        measure = ", ".join(f"{instrument_id}.{rule.flag}@{timepoint_id}" for instrument_id, _, _ in hits)
        alerts.append(Alert(rule.id, rule.type, participant_id, timepoint_id, measure, rule.severity,
                            "; ".join(text for _, _, text in hits), action=crisis_text,
                            value=max(value for _, value, _ in hits)))
    return sorted(alerts, key=lambda a: (a.participant_id, _position(protocol, a.timepoint)))


def missed_assessment_alerts(rule: AlertRule, protocol: Protocol, timelines: Mapping[str, Sequence[Mapping]],
                             today: date, missed_after_days: int = 14) -> list[Alert]:
    """Alerts of a ``missed_assessment`` rule: timepoints whose status is one of ``statuses``.

    Parameters
    ----------
    rule : AlertRule
    protocol : Protocol
    timelines : mapping
        Participant id → the rows of :func:`alliance.study.schedule.timeline` on ``today``
        (computed with the same ``missed_after_days``).
    today : date
    missed_after_days : int
        Only to explain ``missed`` in the reason.

    Returns
    -------
    list of Alert
        Timepoints without instruments are never late.
    """
    alerts = []
    for participant_id in sorted(timelines):
        for row in timelines[participant_id]:
            status = row["status"]
            if status not in rule.statuses or status not in STATUSES:
                continue
            timepoint = protocol.timepoint(row["timepoint"])
            if not timepoint.instruments:
                continue
            late = (today - row["window_end"]).days
            names = ", ".join(_short_name(i) for i in timepoint.instruments)
            reason = (f"{names} at {_at(protocol, timepoint.id)} is {status}: due {_iso(row['planned'])}, "
                      f"window {_iso(row['window_start'])} to {_iso(row['window_end'])}, nothing submitted "
                      f"{late} {'day' if late == 1 else 'days'} after the window closed")
            if status == "missed":
                reason += f" (missed after {missed_after_days} days)"
            measure = ", ".join(f"{i}@{timepoint.id}" for i in timepoint.instruments)
            alerts.append(Alert(rule.id, rule.type, str(participant_id), timepoint.id, measure, rule.severity,
                                reason, value=float(late)))
    return alerts


# ---------------------------------------------------------------------------------------------
# Words and numbers
# ---------------------------------------------------------------------------------------------

def _scores_at(scores: pd.DataFrame, instrument: str, scale: str, timepoint: str) -> pd.Series:
    rows = scores[(scores["instrument"] == instrument) & (scores["scale"] == scale)
                  & (scores["timepoint"] == timepoint) & scores["value"].notna()]
    return pd.Series(rows["value"].astype(float).to_numpy(), index=rows["participant_id"].astype(str).to_numpy())


def _timeline_index(timelines: Mapping[str, Sequence[Mapping]] | None) -> dict[tuple[str, str], Mapping]:
    if not timelines:
        return {}
    return {(str(pid), row["timepoint"]): row for pid, rows in timelines.items() for row in rows}


def _position(protocol: Protocol, timepoint_id: str) -> int:
    ids = protocol.timepoint_ids
    return ids.index(timepoint_id) if timepoint_id in ids else len(ids)


def _number(value: float) -> str:
    """31 → ``31``, 38.5 → ``38.5``, 38.25 → ``38.25``, 6.666… → ``6.67`` (at most two decimals)."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _ordinal(value: float) -> str:
    """25 → ``25th``, 1 → ``1st``, 22 → ``22nd``, 13 → ``13th``, 12.5 → ``12.5th``."""
    if not float(value).is_integer():
        return f"{_number(value)}th"
    n = int(value)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _at(protocol: Protocol, timepoint_id: str) -> str:
    """``the final preparation session`` for a label ``Final preparation session``; labels that
    start with a number (``1 week after session 2``) take no article."""
    try:
        label = protocol.timepoint(timepoint_id).label or timepoint_id
    except KeyError:
        return timepoint_id
    if label[:1].isdigit():
        return label
    return "the " + (label[:1].lower() + label[1:] if not label[1:2].isupper() else label)


def _session_label(dosing: Timepoint) -> str:
    return f"session {dosing.dose.session}" if dosing.dose is not None else dosing.label


def _scale_label(measure: str) -> str:
    instrument_id, _, scale = measure.partition(".")
    return f"{_short_name(instrument_id)} {scale.replace('_pct', ' %').replace('_', ' ')}"


def _short_name(instrument_id: str) -> str:
    try:
        return bank.get(instrument_id).short_name
    except bank.UnknownInstrumentError:
        return instrument_id


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
