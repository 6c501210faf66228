"""Alert evaluation: which participant needs the team's attention while treatment runs, and why.

The rules are data, the ``alerts:`` section of the protocol, read and checked by
:mod:`alliance.protocol.alerts` (schema: ``docs/protocol.md``, "Alert rules"). This module
evaluates them. Seven types of rule, each registered in :data:`RULE_TYPES` with the inputs it
needs (:class:`AlertInputs`) and the function that evaluates it:

``low_alliance``
    Alliance at the last preparation session before a dosing session is low: below the sample's
    percentile (default the 25th, among the participants with a score at that timepoint) or below
    a fixed threshold. Levin et al. (2024) found alliance at the final preparation session to
    predict the acute experience and depression up to 12 months later, so a dosing session after
    low alliance should not simply go ahead.
``alliance_drop``
    A rupture: alliance fell from the participant's own previous rating by more than the measure's
    reliable-change threshold (``points: reliable_change``; Jacobson & Truax 1991, with the SD and
    reliability of the protocol's ``reliable_change:`` section), or by a fixed number of points.
    A later rating back at the level before the fall is its repair (:func:`ruptures`).
``flag``
    An instrument's flag is raised, e.g. ``suicidality``: PHQ-9 item 9, QIDS-SR-16 item 12,
    GRID-HAMD item 3 (the ``flags`` of the instrument definitions, computed by
    :func:`alliance.instruments.score`). The alert carries the site's crisis text.
``missed_assessment``
    A timepoint is overdue or missed (:func:`alliance.monitoring.schedule.timeline`).
``serious_adverse_event``
    An adverse event recorded as serious (``adverse_events.csv``, ``serious = yes``): the
    investigator reports it to the sponsor at once and the sponsor to the authorities within days
    (ICH E6(R2) 4.11.1; ICH E2A III.A), so it is urgent by default and its email goes to the
    study's investigators too (:attr:`RuleType.to_investigators`). One alert per event.
``vital_sign``
    A dosing-day reading at or above the protocol's ``safety.vital_signs`` thresholds
    (:func:`alliance.monitoring.safety_checks.vital_sign_findings`); the alert's severity is the
    threshold's. One alert per reading, naming every measure that reached a threshold.
``washout``
    A medication of the protocol's ``safety.washout`` rules taken at the first dose or within the
    washout before it (:func:`alliance.monitoring.safety_checks.washout_findings`, the first dose
    being the recorded dosing session 1). One alert per medication record.

An alert is one per rule, participant and ``timepoint`` (:attr:`Alert.key`). The safety rules
are about records, not timepoints, so their ``timepoint`` is the record's key
(:func:`record_keys`): ``ae:<ae_id>``, ``vitals:<session>:<measured_at>:<severity>`` and
``washout:<medication>:<start>``, at most :data:`KEY_LENGTH` characters.

Which rules can raise anything yet (a percentile before its minimum sample cannot) is told by
:func:`rule_statuses`; alerts about data older than the protocol's ``historical_after_days`` are
set apart by :func:`split_historical` and not raised.

Everything here is pure: scores, answers and timelines come in as tables and lists, alerts go out
as :class:`Alert` values. The web app asks :func:`inputs_needed` what to fetch, supplies it and
stores, deduplicates and acknowledges the alerts (``alliance.web.monitor``); it does not know
which rule type needs what.

Examples
--------
>>> import pandas as pd
>>> from alliance.protocol import default_protocol
>>> protocol = default_protocol()
>>> config = protocol.alerts
>>> [rule.id for rule in config.rules]  # doctest: +NORMALIZE_WHITESPACE
['low_alliance', 'alliance_drop', 'suicidality', 'overdue_assessment', 'missed_assessment', 'low_alliance_cutoff',
 'serious_adverse_event', 'vital_sign', 'washout']
>>> scores = pd.DataFrame({"participant_id": ["P1", "P1"], "timepoint": ["prep", "post_session1"],
...                        "instrument": "wai_sr", "scale": "total", "value": [30.0, 21.0]})
>>> sorted(inputs_needed(config.rules).score_instruments)
['wai_sr']
>>> [a.reason for a in evaluate_alerts(config, protocol, scores=scores)]
['WAI-SR total 30 at the final preparation session is below the threshold of 36']
>>> from alliance.protocol import AlertRule
>>> drop = AlertRule("drop", "alliance_drop", "warning", measure="wai_sr.total", points=7)
>>> [a.reason for a in alliance_drop_alerts(drop, protocol, scores)]
['WAI-SR total fell by 9 points, from 30 at the final preparation session to 21 at the integration after session 1 (an alert is raised at a fall of 7 points or more)']
>>> events = pd.DataFrame({"participant_id": ["P1"], "ae_id": ["AE-1"], "term": ["Chest pain"],
...                        "onset": ["2024-03-02"], "severity": [3], "serious": ["yes"],
...                        "seriousness": ["hospitalisation"]})
>>> [(a.timepoint, a.severity, a.reason) for a in evaluate_alerts(config, protocol, adverse_events=events)]
[('ae:AE-1', 'urgent', 'Serious adverse event AE-1: Chest pain, CTCAE grade 3 (severe), onset 2024-03-02; seriousness: hospitalisation')]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.protocol import AlertConfig, AlertRule, Measure, Protocol, Timepoint
from alliance.protocol.safety import VITAL_SIGN_UNITS

from .safety_checks import first_dose_dates, vital_sign_findings, washout_findings
from .schedule import STATUSES

__all__ = [
    "KEY_LENGTH", "RULE_TYPES", "Alert", "AlertData", "AlertInputs", "DropThreshold", "RuleStatus", "RuleType",
    "Rupture", "adverse_event_key", "alliance_drop_alerts", "drop_threshold", "evaluate_alerts", "flag_alerts",
    "inputs_needed", "low_alliance_alerts", "low_alliance_timepoints", "missed_assessment_alerts", "record_keys",
    "rule_statuses", "ruptures", "serious_adverse_event_alerts", "split_historical", "time_dependent",
    "vital_sign_alerts", "vital_sign_key", "washout_alerts", "washout_key",
]


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
        the late assessment is); for the safety rules, the key of the record it is about
        (:func:`record_keys`: ``ae:AE-001``, ``vitals:1:2024-03-01T10:30:urgent``,
        ``washout:Sertraline:2024-01-05``), which is no timepoint of the protocol.
    measure : str
        What was measured: ``wai_sr.total@prep``; for flags ``phq9.suicidality@week1``; for late
        assessments the instruments due, e.g. ``grid_hamd17@week4``; for the safety rules what the
        pages show in place of a timepoint, without a date (dates are in ``reason``, where the
        monitors' pages de-identify them): ``adverse event AE-001``, ``systolic_bp, diastolic_bp
        at session 1``, ``medication Sertraline``.
    severity : str
    reason : str
        The reason in words, with the numbers.
    action : str
        What to do, when the protocol says (the crisis text for flags); otherwise empty.
    value : float or None
        The number the rule looked at (score, fall in points, answer, days late).
    dated : date or None
        How old the administration behind it is (``administered_on`` of the scores or answers,
        when given; an adverse event's onset, a reading's day, a washout's first dose). What
        :func:`split_historical` looks at; ``None`` when unknown or when the alert is about no
        administration (a late assessment): never historical.
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
    dated: date | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """``(rule, participant_id, timepoint)``: one alert per key is ever raised."""
        return (self.rule, self.participant_id, self.timepoint)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)



# ---------------------------------------------------------------------------------------------
# Evaluating the rules
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlertInputs:
    """What rules need from the data, so that the caller fetches just that.

    Attributes
    ----------
    score_instruments : frozenset of str
        Long scale scores of these instruments, of the whole study (the sample of percentiles).
    answer_items : frozenset of (str, str)
        ``(instrument, item)``: the submitted answers to these items.
    timelines : bool
        The participants' timelines (:func:`alliance.monitoring.schedule.timeline`) and ``today``.
    baseline_answers : frozenset of str
        Instruments whose item answers at their baseline (the first timepoint that gives them)
        are needed, for a reliable-change threshold from the study's own Cronbach's alpha
        (:func:`alliance.monitoring.change.resolve_norm`). Only that timepoint's answers.
    adverse_events, vital_signs, medications, dosing_sessions : bool
        The safety tables (``adverse_events.csv``, ``vital_signs.csv``,
        ``concomitant_medications.csv``) and ``dosing_sessions.csv`` (the first dose's date, for
        the washout), of the participants the alerts are for.
    """

    score_instruments: frozenset[str] = frozenset()
    answer_items: frozenset[tuple[str, str]] = frozenset()
    timelines: bool = False
    baseline_answers: frozenset[str] = frozenset()
    adverse_events: bool = False
    vital_signs: bool = False
    medications: bool = False
    dosing_sessions: bool = False

    def __or__(self, other: AlertInputs) -> AlertInputs:
        return AlertInputs(self.score_instruments | other.score_instruments,
                           self.answer_items | other.answer_items, self.timelines or other.timelines,
                           self.baseline_answers | other.baseline_answers,
                           self.adverse_events or other.adverse_events, self.vital_signs or other.vital_signs,
                           self.medications or other.medications, self.dosing_sessions or other.dosing_sessions)


@dataclass(frozen=True)
class AlertData:
    """The data alert rules are evaluated on (each rule type reads what its inputs declare).

    Attributes
    ----------
    scores : DataFrame or None
        Long scale scores: ``participant_id``, ``timepoint``, ``instrument``, ``scale``, ``value``.
    responses : DataFrame or None
        Long item answers: ``participant_id``, ``timepoint``, ``instrument``, ``item``, ``value``.
    timelines : mapping or None
        Participant id → the rows of :func:`alliance.monitoring.schedule.timeline` on ``today``.
    today : date or None
    adverse_events : DataFrame or None
        ``adverse_events.csv``: ``participant_id``, ``ae_id``, ``term``, ``onset``, ``severity``,
        ``serious`` (yes/no text or booleans), optional ``seriousness``, ``relatedness``, ``expected``.
    vital_signs : DataFrame or None
        ``vital_signs.csv``: ``participant_id``, ``session``, ``measured_at`` and the measures.
    medications : DataFrame or None
        ``concomitant_medications.csv``: ``participant_id``, ``name``, ``start``, ``stop``.
    dosing_sessions : DataFrame or None
        ``dosing_sessions.csv``: ``participant_id``, ``session``, ``date``.
    """

    scores: pd.DataFrame | None = None
    responses: pd.DataFrame | None = None
    timelines: Mapping[str, Sequence[Mapping]] | None = None
    today: date | None = None
    adverse_events: pd.DataFrame | None = None
    vital_signs: pd.DataFrame | None = None
    medications: pd.DataFrame | None = None
    dosing_sessions: pd.DataFrame | None = None

    def has(self, inputs: AlertInputs) -> bool:
        """Whether this data holds what ``inputs`` asks for (a rule without its data raises nothing)."""
        if inputs.score_instruments and self.scores is None:
            return False
        if (inputs.answer_items or inputs.baseline_answers) and self.responses is None:
            return False
        tables = (("adverse_events", self.adverse_events), ("vital_signs", self.vital_signs),
                  ("medications", self.medications), ("dosing_sessions", self.dosing_sessions))
        if any(getattr(inputs, name) and frame is None for name, frame in tables):
            return False
        return not inputs.timelines or (self.timelines is not None and self.today is not None)


@dataclass(frozen=True)
class RuleType:
    """One type of alert rule: the inputs a rule of it needs and the function that evaluates it.

    Attributes
    ----------
    name : str
        The ``type`` of the rules in the protocol.
    inputs : callable
        ``inputs(rule) -> AlertInputs``.
    evaluate : callable
        ``evaluate(rule, protocol, data, config) -> list[Alert]``.
    time_dependent : bool
        Whether its alerts can appear with nothing new stored, as time passes (what the web app's
        scheduled refresh stores, and its pages compute on the fly in between).
    to_investigators : bool
        Whether its alerts are the study's investigators' business as well as the participant's
        facilitators': a serious adverse event is the investigator's to report to the sponsor at
        once (ICH E6(R2) 4.11.1). The web app emails an urgent one to both.
    """

    name: str
    inputs: Callable[[AlertRule], AlertInputs]
    evaluate: Callable[..., list]
    time_dependent: bool = False
    to_investigators: bool = False


def inputs_needed(rules: Iterable[AlertRule]) -> AlertInputs:
    """Everything the rules need, together.

    Parameters
    ----------
    rules : iterable of AlertRule

    Returns
    -------
    AlertInputs
    """
    needed = AlertInputs()
    for rule in rules:
        needed = needed | RULE_TYPES[rule.type].inputs(rule)
    return needed


def time_dependent(config: AlertConfig) -> AlertConfig:
    """The rules of ``config`` whose alerts can appear as time passes, with nothing new stored."""
    return replace(config, rules=tuple(r for r in config.rules if RULE_TYPES[r.type].time_dependent))


def evaluate_alerts(config: AlertConfig, protocol: Protocol, *, scores: pd.DataFrame | None = None,
                    responses: pd.DataFrame | None = None,
                    timelines: Mapping[str, Sequence[Mapping]] | None = None,
                    today: date | None = None,
                    participant_ids: Iterable[str] | None = None,
                    adverse_events: pd.DataFrame | None = None,
                    vital_signs: pd.DataFrame | None = None,
                    medications: pd.DataFrame | None = None,
                    dosing_sessions: pd.DataFrame | None = None) -> list[Alert]:
    """Every alert the rules raise on the data given.

    Parameters
    ----------
    config : AlertConfig
        The protocol's rules (``protocol.alerts``), or some of them.
    protocol : Protocol
    scores : DataFrame, optional
        Long scale scores of the whole study (the sample for percentiles): ``participant_id``,
        ``timepoint``, ``instrument``, ``scale``, ``value``. Needed by ``low_alliance`` and
        ``alliance_drop`` rules.
    responses : DataFrame, optional
        Long item answers: ``participant_id``, ``timepoint``, ``instrument``, ``item``,
        ``value``. Needed by ``flag`` rules; only the flagged items need to be there.
    timelines : mapping, optional
        Participant id → the rows of :func:`alliance.monitoring.schedule.timeline` on ``today``.
        Needed by ``missed_assessment`` rules; ``low_alliance`` uses them to say when the dosing
        session is due and to stay silent once it has happened.
    today : date, optional
        The day the timelines were computed for; ``missed_assessment`` rules need it (days late).
    participant_ids : iterable of str, optional
        Raise alerts for these participants only (the sample for percentiles is still everyone
        in ``scores``).
    adverse_events : DataFrame, optional
        ``adverse_events.csv`` (:class:`AlertData`); needed by ``serious_adverse_event`` rules.
    vital_signs : DataFrame, optional
        ``vital_signs.csv``; needed by ``vital_sign`` rules.
    medications, dosing_sessions : DataFrame, optional
        ``concomitant_medications.csv`` and ``dosing_sessions.csv``; both needed by ``washout``
        rules.

    Returns
    -------
    list of Alert
        In rule order, then participant, then protocol order of timepoints (for the safety rules,
        the order of the records). A rule whose inputs (:func:`inputs_needed`) are not given
        raises nothing.
    """
    wanted = None if participant_ids is None else {str(p) for p in participant_ids}
    data = AlertData(scores=scores, responses=responses, timelines=timelines, today=today,
                     adverse_events=adverse_events, vital_signs=vital_signs, medications=medications,
                     dosing_sessions=dosing_sessions)
    alerts: list[Alert] = []
    for rule in config.rules:
        kind = RULE_TYPES[rule.type]
        if not data.has(kind.inputs(rule)):
            continue
        found = kind.evaluate(rule, protocol, data, config)
        alerts += [a for a in found if wanted is None or a.participant_id in wanted]
    return alerts


def split_historical(alerts: Iterable[Alert], today: date, historical_after_days: int | None
                     ) -> tuple[list[Alert], list[Alert]]:
    """Alerts about current data, and those about data too old to act on (not to be raised).

    Parameters
    ----------
    alerts : iterable of Alert
    today : date
    historical_after_days : int or None
        ``AlertConfig.historical_after_days``; ``None`` keeps every alert.

    Returns
    -------
    tuple of list
        ``(current, historical)``: an alert is historical when its ``dated`` is more than
        ``historical_after_days`` days before ``today``. An alert without a date is current.

    Examples
    --------
    >>> from datetime import date
    >>> old = Alert("suicidality", "flag", "P1", "week1", "phq9.suicidality@week1", "urgent", "…",
    ...             dated=date(2024, 1, 1))
    >>> [len(part) for part in split_historical([old], date(2024, 1, 31), 30)]   # 30 days: still current
    [1, 0]
    >>> [len(part) for part in split_historical([old], date(2024, 2, 1), 30)]
    [0, 1]
    """
    current, historical = [], []
    for alert in alerts:
        old = (historical_after_days is not None and alert.dated is not None
               and (today - alert.dated).days > historical_after_days)
        (historical if old else current).append(alert)
    return current, historical


@dataclass(frozen=True)
class RuleStatus:
    """Whether a rule can raise alerts now, in words a team reads on its dashboard.

    Attributes
    ----------
    rule_id, label, type, severity : str
    active : bool
        ``False``: the rule cannot raise anything yet (a percentile before its minimum sample; a
        reliable-change threshold the study's data cannot give yet).
    reason : str
        What it watches, or (not active) why not, with the numbers: ``the 25th percentile needs
        WAI-SR total scores of at least 5 participants at the final preparation session; 1 so
        far``.
    """

    rule_id: str
    label: str
    type: str
    severity: str
    active: bool
    reason: str

    @property
    def summary(self) -> str:
        """``Active: …`` or ``Not yet active: …``."""
        return ("Active: " if self.active else "Not yet active: ") + self.reason

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary}


def rule_statuses(config: AlertConfig, protocol: Protocol, scores: pd.DataFrame | None = None,
                  responses: pd.DataFrame | None = None) -> tuple[RuleStatus, ...]:
    """Each rule of the protocol, and whether it is active on the study's data.

    Parameters
    ----------
    config : AlertConfig
    protocol : Protocol
    scores : DataFrame, optional
        The study's long scores (``participant_id, timepoint, instrument, scale, value``); without
        them a rule that needs a sample is reported as not yet active.
    responses : DataFrame, optional
        Long item answers, for a reliable-change threshold computed from the study's own alpha.

    Returns
    -------
    tuple of RuleStatus
        In the protocol's order.
    """
    out = []
    for rule in config.rules:
        active, reason = True, ""
        if rule.type == "low_alliance":
            where = low_alliance_timepoints(rule, protocol)
            at = " or ".join(_at(protocol, t) for t in where) or "no timepoint of this protocol"
            label = _scale_label(rule.measure)
            if rule.method == "percentile":
                counts = {t: (0 if scores is None else len(_scores_at(scores, rule.instrument, rule.scale, t)))
                          for t in where}
                most = max(counts.values(), default=0)
                active = most >= rule.min_n
                reason = (f"{label} below the sample's {_ordinal(rule.value)} percentile at {at} "
                          f"(n = {most}; at least {rule.min_n} needed)" if active else
                          f"the {_ordinal(rule.value)} percentile needs {label} scores of at least {rule.min_n} "
                          f"participants at {at}; {most} so far")
            else:
                reason = f"{label} below {_number(rule.value)} at {at}, from the first participant"
        elif rule.type == "alliance_drop":
            threshold, why = drop_threshold(rule, protocol, scores, responses)
            active = threshold is not None
            reason = why if threshold is None else (
                f"a fall of {_scale_label(rule.measure)} from the participant's previous rating: {threshold.words()}")
        elif rule.type == "flag":
            names = ", ".join(_short_name(i) for i in _flag_instruments(rule))
            reason = f"the {rule.flag} flag of {names}, from the first answer"
        elif rule.type == "missed_assessment":
            reason = f"assessments {' or '.join(rule.statuses)}, for every participant with an enrolment date"
        elif rule.type == "serious_adverse_event":
            reason = "every adverse event recorded as serious, from the first"
        elif rule.type == "vital_sign":
            reason = _vital_sign_status(protocol)
        elif rule.type == "washout":
            active, reason = _washout_status(protocol)
        out.append(RuleStatus(rule.id, rule.label, rule.type, rule.severity, active, reason))
    return tuple(out)


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
    dates = _dates_of(scores, rule.instrument)
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
                                str(Measure(rule.instrument, rule.scale, timepoint_id)), rule.severity,
                                reason, value=float(value), dated=dates.get((participant_id, timepoint_id))))
    return sorted(alerts, key=lambda a: (a.participant_id, protocol.timepoint_ids.index(a.timepoint)))


_EPSILON = 1e-9


@dataclass(frozen=True)
class DropThreshold:
    """How large a fall of alliance from the previous rating is a rupture.

    Attributes
    ----------
    points : float
    strict : bool
        ``True``: a fall larger than ``points`` (a reliable-change threshold: a change is reliable
        when |RCI| > z, Jacobson & Truax 1991); ``False``: a fall of ``points`` or more (a rule
        with a fixed number of points).
    description : str
        Where the number comes from, for the alert's reason and the dashboards.
    """

    points: float
    strict: bool = False
    description: str = ""

    def is_rupture(self, fall: np.ndarray | float) -> np.ndarray | bool:
        # Scores are sums of answers: a fall equal to the threshold must not become "larger" by
        # a rounding error of the subtraction (50 − 43.348 = 6.652000000000001).
        if self.strict:
            return fall > self.points + _EPSILON
        return fall >= self.points - _EPSILON

    def words(self) -> str:
        if self.strict:
            return (f"a fall larger than {_number(self.points)} points is beyond the reliable-change threshold"
                    + (f": {self.description}" if self.description else ""))
        return f"an alert is raised at a fall of {_number(self.points)} points or more"


@dataclass(frozen=True)
class Rupture:
    """A fall of alliance from the participant's own previous rating, and its repair if any.

    Attributes
    ----------
    participant_id : str
    before_timepoint, timepoint : str
        The previous rating's timepoint and the one where alliance fell.
    before_value, value, fall : float
    repaired_timepoint : str or None
        The first later timepoint whose rating is back within the threshold of the rating
        before the fall (the fall from ``before_value`` would no longer be a rupture), or
        ``None``: not (yet) repaired.
    repaired_value : float or None
    dated : date or None
        The date of the rating that fell, when the scores carry ``administered_on``.
    """

    participant_id: str
    before_timepoint: str
    timepoint: str
    before_value: float
    value: float
    fall: float
    repaired_timepoint: str | None = None
    repaired_value: float | None = None
    dated: date | None = None

    @property
    def repaired(self) -> bool:
        return self.repaired_timepoint is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ruptures(measure: str, protocol: Protocol, scores: pd.DataFrame, threshold: DropThreshold) -> list[Rupture]:
    """Every rupture of a measure in the study, each with its repair when a later rating shows one.

    Parameters
    ----------
    measure : str
        ``INSTRUMENT.SCALE``, e.g. ``wai_sr.total``.
    protocol : Protocol
    scores : DataFrame
        Long scores (``participant_id, timepoint, instrument, scale, value``; optional
        ``administered_on``).
    threshold : DropThreshold

    Returns
    -------
    list of Rupture
        In participant order, then protocol order. The previous rating is the latest earlier
        timepoint, in protocol order, with a score of this measure (a missing rating in between is
        skipped, not treated as zero).

    Notes
    -----
    A rupture is a fall of the participant's own alliance rating; a repair is a later return to
    the level before the fall, the V-shaped rupture–repair sequence of Stiles et al. (2004).
    Repaired ruptures go with better outcomes (Eubanks, Muran & Safran 2018, meta-analysis).
    Here "back to the level" means the fall from the rating before the rupture is no longer
    beyond the threshold, so the rupture and its repair are judged by the same number.

    References
    ----------
    Stiles WB, Glick MJ, Osatuke K, et al. (2004). Patterns of alliance development and the
    rupture-repair hypothesis. J Couns Psychol 51(1):81–92.
    Eubanks CF, Muran JC, Safran JD (2018). Alliance rupture repair: a meta-analysis.
    Psychotherapy 55(4):508–519.
    """
    parsed = Measure.parse(measure, timepoint="forbidden")
    order = {t.id: t.order for t in protocol.timepoints if parsed.instrument in t.instruments}
    rows = scores[(scores["instrument"] == parsed.instrument) & (scores["scale"] == parsed.scale)
                  & scores["timepoint"].isin(list(order)) & scores["value"].notna()]
    if rows.empty:
        return []
    # One sort of the whole study and a comparison of neighbours, rather than a loop per
    # participant: this runs on every submitted form (the study's scores are the input).
    rows = rows.assign(_order=rows["timepoint"].map(order)).sort_values(["participant_id", "_order"], kind="stable")
    participants = rows["participant_id"].astype(str).to_numpy()
    timepoints = rows["timepoint"].to_numpy()
    values = rows["value"].to_numpy(dtype=float)
    dates = rows["administered_on"].to_numpy() if "administered_on" in rows else None
    falls = values[:-1] - values[1:]
    out = []
    for k in np.flatnonzero((participants[1:] == participants[:-1]) & threshold.is_rupture(falls)):
        now = k + 1
        repaired = None
        j = now + 1
        while j < len(values) and participants[j] == participants[k]:
            if not threshold.is_rupture(values[k] - values[j]):
                repaired = j
                break
            j += 1
        out.append(Rupture(participants[k], str(timepoints[k]), str(timepoints[now]), float(values[k]),
                           float(values[now]), float(falls[k]),
                           None if repaired is None else str(timepoints[repaired]),
                           None if repaired is None else float(values[repaired]),
                           _as_date(dates[now]) if dates is not None else None))
    return out


def alliance_drop_alerts(rule: AlertRule, protocol: Protocol, scores: pd.DataFrame,
                         threshold: DropThreshold | None = None) -> list[Alert]:
    """Alerts of an ``alliance_drop`` rule: a rupture, a fall from the participant's previous rating.

    Parameters
    ----------
    rule : AlertRule
    protocol : Protocol
    scores : DataFrame
        Long scores (``participant_id, timepoint, instrument, scale, value``; optional
        ``administered_on``).
    threshold : DropThreshold, optional
        Required with ``points: reliable_change`` (:func:`drop_threshold` resolves it); default
        the rule's ``points`` (a fall of that many points or more).

    Returns
    -------
    list of Alert
        One per rupture (:func:`ruptures`); its reason says whether a later rating repaired it.
    """
    if threshold is None:
        if rule.points is None:
            return []
        threshold = DropThreshold(rule.points)
    alerts = []
    for r in ruptures(rule.measure, protocol, scores, threshold):
        reason = (f"{_scale_label(rule.measure)} fell by {_number(r.fall)} points, from {_number(r.before_value)} "
                  f"at {_at(protocol, r.before_timepoint)} to {_number(r.value)} at {_at(protocol, r.timepoint)} "
                  f"({threshold.words()})")
        if r.repaired:
            reason += (f"; repaired: {_number(r.repaired_value)} at {_at(protocol, r.repaired_timepoint)}")
        alerts.append(Alert(rule.id, rule.type, r.participant_id, r.timepoint,
                            str(Measure(rule.instrument, rule.scale, r.timepoint)), rule.severity, reason,
                            value=r.fall, dated=r.dated))
    return alerts


def drop_threshold(rule: AlertRule, protocol: Protocol, scores: pd.DataFrame | None = None,
                   responses: pd.DataFrame | None = None) -> tuple[DropThreshold | None, str]:
    """The threshold of an ``alliance_drop`` rule, and why there is none when it cannot be had.

    Parameters
    ----------
    rule : AlertRule
    protocol : Protocol
    scores, responses : DataFrame, optional
        The study's long scores and item answers: the reliable-change threshold may use the
        study's own baseline SD and Cronbach's alpha (the protocol's ``reliable_change:`` says).

    Returns
    -------
    tuple
        ``(threshold, "")``, or ``(None, reason)``: e.g. the study's baseline has too few
        participants for its own SD.
    """
    if not rule.reliable_change:
        return DropThreshold(float(rule.points)), ""
    return _reliable_threshold(rule, protocol, scores, responses)


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
    instrument_ids = _flag_instruments(rule)
    found: dict[tuple[str, str], list[tuple[str, float, str]]] = {}
    for instrument_id in instrument_ids:
        instrument = bank.get(instrument_id)
        flag = next(f for f in instrument.flags if f.id == rule.flag)
        if flag.scale is not None:
            _scale_flag_hits(protocol, instrument, flag, responses, found)
            continue
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
    dates = _dates_of(responses, None)
    for (participant_id, timepoint_id), hits in found.items():
        measure = ", ".join(str(Measure(instrument_id, rule.flag, timepoint_id)) for instrument_id, _, _ in hits)
        alerts.append(Alert(rule.id, rule.type, participant_id, timepoint_id, measure, rule.severity,
                            "; ".join(text for _, _, text in hits), action=crisis_text,
                            value=max(value for _, value, _ in hits), dated=dates.get((participant_id, timepoint_id))))
    return sorted(alerts, key=lambda a: (a.participant_id, _position(protocol, a.timepoint)))


def _scale_flag_hits(protocol, instrument, flag, responses, found) -> None:
    """A flag on a scale score (the C-SSRS ``urgent_risk``): each administration's answers to the
    scale's items are scored together by the engine, and the flag read from the scores."""
    scale = next(s for s in instrument.scales if s.id == flag.scale)
    items = list(scale.all_items)
    rows = responses[(responses["instrument"] == instrument.id) & responses["item"].isin(items)
                     & responses["value"].notna()]
    if rows.empty:
        return
    keys = ["participant_id", "timepoint"]
    wide = rows.assign(value=rows["value"].astype(float)).pivot_table(
        index=keys, columns="item", values="value", aggfunc="first", observed=True)
    answers = pd.DataFrame(np.nan, index=range(len(wide)), columns=list(instrument.item_ids))
    for item in wide.columns:
        answers[str(item)] = wide[item].to_numpy(dtype=float)
    scored = bank.score(instrument, answers)
    raised = scored[flag.id].fillna(False).to_numpy(dtype=bool)
    for (participant_id, timepoint_id), hit, value in zip(wide.index, raised, scored[flag.scale], strict=True):
        if hit:
            yes = [str(instrument.item_ids.index(i) + 1) for i in items
                   if i in wide.columns and wide.loc[(participant_id, timepoint_id), i] >= 1]
            text = (f"{instrument.short_name} at {_at(protocol, str(timepoint_id))}: {flag.label} "
                    f"(item{'s' if len(yes) > 1 else ''} {', '.join(yes)} answered yes)")
            found.setdefault((str(participant_id), str(timepoint_id)), []).append(
                (instrument.id, float(value), text))


def missed_assessment_alerts(rule: AlertRule, protocol: Protocol, timelines: Mapping[str, Sequence[Mapping]],
                             today: date, missed_after_days: int = 14) -> list[Alert]:
    """Alerts of a ``missed_assessment`` rule: timepoints whose status is one of ``statuses``.

    Parameters
    ----------
    rule : AlertRule
    protocol : Protocol
    timelines : mapping
        Participant id → the rows of :func:`alliance.monitoring.schedule.timeline` on ``today``
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
# The safety record: serious adverse events, vital signs, washouts
# ---------------------------------------------------------------------------------------------

KEY_LENGTH = 100
"""The longest ``Alert.timepoint``: the web app stores at most this many characters. A longer
record key (a long medication name or event id) is cut and ends in a digest of the whole."""

SERIOUS_ADVERSE_EVENT_ACTION = (
    "Report it to the sponsor at once and to the ethics committee (IRB) as it requires (ICH E6(R2) 4.11.1); a "
    "serious, unexpected suspected adverse reaction is reported to the authorities within 7 calendar days when "
    "fatal or life-threatening and within 15 days otherwise (ICH E2A). The protocol's own timelines apply.")
"""The ``action`` of a ``serious_adverse_event`` alert."""

VITAL_SIGN_ACTIONS = {
    "urgent": "Repeat the reading now and call the study physician; follow the site's procedure for a medical "
              "emergency during a dosing session.",
    "warning": "Repeat the reading, talk it over with the participant and tell the study physician during the "
               "session.",
}
"""The ``action`` of a ``vital_sign`` alert, by severity: the warning thresholds are for a
conversation and a repeat reading (:mod:`alliance.protocol.safety`), the urgent ones a
hypertensive crisis."""

WASHOUT_ACTION = ("A protocol deviation: record it, and review with the investigator the participant's safety and "
                  "whether the next dosing session goes ahead.")
"""The ``action`` of a ``washout`` alert."""

CTCAE_GRADES = {1: "mild", 2: "moderate", 3: "severe", 4: "life-threatening", 5: "death"}
_CRITERIA_WORDS = {"life_threatening": "life-threatening"}
_VITAL_SIGN_WORDS = {"systolic_bp": "systolic blood pressure", "diastolic_bp": "diastolic blood pressure",
                     "heart_rate": "heart rate"}
_YES = {"yes", "y", "true", "1"}


def _key(*parts: Any) -> str:
    text = ":".join(str(part) for part in parts)
    if len(text) <= KEY_LENGTH:
        return text
    # Cut, with a digest of the whole: two long names that share their first 87 characters
    # still make two keys, and the same record always the same one.
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return f"{text[:KEY_LENGTH - 13]}~{digest}"


def adverse_event_key(ae_id: Any) -> str:
    """The ``timepoint`` of the alert about a serious adverse event: ``ae:<ae_id>``.

    >>> adverse_event_key("AE-001")
    'ae:AE-001'
    """
    return _key("ae", str(ae_id).strip())


def vital_sign_key(session: Any, measured_at: Any, severity: str) -> str:
    """The ``timepoint`` of the alert about one reading: ``vitals:<session>:<measured_at>:<severity>``.

    The severity is part of the key: a reading corrected from a warning value to an urgent one (a
    typo, 165 for 185) raises its urgent alert, which one alert per reading would swallow.

    >>> vital_sign_key(1, "2024-03-01T10:30", "urgent")
    'vitals:1:2024-03-01T10:30:urgent'
    """
    return _key("vitals", int(session), str(measured_at).strip(), severity)


def washout_key(medication: Any, start: Any) -> str:
    """The ``timepoint`` of the alert about one medication record: ``washout:<medication>:<start>``.

    >>> washout_key("Sertraline", date(2024, 1, 5))
    'washout:Sertraline:2024-01-05'
    """
    day = _as_date(start)
    return _key("washout", str(medication).strip(), day.isoformat() if day is not None else str(start).strip())


def record_keys(table: str, record: Mapping[str, Any]) -> frozenset[str]:
    """Every ``timepoint`` key an alert about one safety record can have.

    What the web app uses to tell the alerts about a record stored just now from the others
    (they are news whatever the record's dates: see :func:`split_historical`).

    Parameters
    ----------
    table : str
        ``adverse_events``, ``vital_signs`` or ``concomitant_medications``.
    record : mapping
        The record's key fields: ``ae_id``; ``session`` and ``measured_at``; ``name`` and ``start``.

    Returns
    -------
    frozenset of str
        Empty for another table.

    Examples
    --------
    >>> sorted(record_keys("vital_signs", {"session": 2, "measured_at": "2024-03-13T11:00"}))
    ['vitals:2:2024-03-13T11:00:urgent', 'vitals:2:2024-03-13T11:00:warning']
    """
    if table == "adverse_events":
        return frozenset({adverse_event_key(record["ae_id"])})
    if table == "vital_signs":
        return frozenset(vital_sign_key(record["session"], record["measured_at"], severity)
                         for severity in ("warning", "urgent"))
    if table == "concomitant_medications":
        return frozenset({washout_key(record["name"], record["start"])})
    return frozenset()


def serious_adverse_event_alerts(rule: AlertRule, protocol: Protocol, adverse_events: pd.DataFrame | None
                                 ) -> list[Alert]:
    """Alerts of a ``serious_adverse_event`` rule: one per adverse event recorded as serious.

    Parameters
    ----------
    rule : AlertRule
    protocol : Protocol
    adverse_events : DataFrame
        ``adverse_events.csv`` (``participant_id``, ``ae_id``, ``term``, ``onset``, ``severity``,
        ``serious``; ``seriousness``, ``relatedness``, ``expected`` when given). ``serious`` is
        yes/no text or booleans (:func:`alliance.study.adverse_events.normalize_adverse_events`).

    Returns
    -------
    list of Alert
        By participant, then onset. ``timepoint`` is :func:`adverse_event_key`, ``value`` the CTCAE
        grade, ``dated`` the onset's day, ``action`` :data:`SERIOUS_ADVERSE_EVENT_ACTION`; the
        reason names the term, the grade, the onset, the seriousness criteria and, when recorded,
        relatedness and expectedness (serious, unexpected and related is what is reported
        expedited).

    Notes
    -----
    Seriousness is what the record says (``serious``), as the investigator judged it against the
    ICH E2A criteria (death, life-threatening, hospitalisation, disability, congenital anomaly,
    other important medical event); severity (the CTCAE grade) is a different thing — a grade 3
    event need not be serious, nor a serious one grade 3 — and is not looked at to decide. An event
    made serious later (a record changed) raises its alert then; one made non-serious keeps it,
    open, for a person to close.

    References
    ----------
    ICH E2A (1994). Clinical safety data management: definitions and standards for expedited
    reporting, sections II.B (serious) and III.A (7 and 15 calendar days).
    ICH E6(R2) (2016). Guideline for good clinical practice, 4.11.1 (the investigator reports
    every SAE to the sponsor immediately).
    National Cancer Institute (2017). Common Terminology Criteria for Adverse Events v5.0, "Grades".
    """
    if adverse_events is None or adverse_events.empty:
        return []
    alerts = []
    for record in adverse_events.to_dict("records"):
        if not _yes(record.get("serious")):
            continue
        ae_id = _text(record.get("ae_id"))
        participant_id = _text(record.get("participant_id"))
        grade = _grade(record.get("severity"))
        onset = _text(record.get("onset"))
        described = [f"Serious adverse event {ae_id}: {_text(record.get('term')) or 'no term recorded'}"]
        if grade is not None:
            described.append(f"CTCAE grade {grade} ({CTCAE_GRADES[grade]})")
        if onset:
            described.append(f"onset {onset}")
        reason = ", ".join(described)
        criteria = [c.strip() for c in _text(record.get("seriousness")).split(";") if c.strip()]
        if criteria:
            reason += "; seriousness: " + ", ".join(_CRITERIA_WORDS.get(c, c.replace("_", " ")) for c in criteria)
        relatedness = _text(record.get("relatedness"))
        if relatedness:
            reason += f"; relatedness: {relatedness.replace('_', ' ')}"
        expected = record.get("expected")
        if not _missing(expected) and _text(expected):
            reason += "; expected" if _yes(expected) else "; unexpected"
        alerts.append(Alert(rule.id, rule.type, participant_id, adverse_event_key(ae_id), f"adverse event {ae_id}",
                            rule.severity, reason, action=SERIOUS_ADVERSE_EVENT_ACTION,
                            value=None if grade is None else float(grade), dated=_as_date(onset or None)))
    return sorted(alerts, key=lambda a: (a.participant_id, a.dated or date.max, a.timepoint))


def vital_sign_alerts(rule: AlertRule, protocol: Protocol, vital_signs: pd.DataFrame | None) -> list[Alert]:
    """Alerts of a ``vital_sign`` rule: one per reading at or above a threshold of ``safety.vital_signs``.

    Parameters
    ----------
    rule : AlertRule
    protocol : Protocol
        Its ``safety.vital_signs`` thresholds (the defaults without the section).
    vital_signs : DataFrame
        ``vital_signs.csv``: ``participant_id``, ``session``, ``measured_at`` and any of
        ``systolic_bp``, ``diastolic_bp``, ``heart_rate``.

    Returns
    -------
    list of Alert
        By participant, then the table's order. The severity is the worst threshold the reading
        reached (a reading at or above a threshold raises it; urgent wins: the findings of
        :func:`alliance.monitoring.safety_checks.vital_sign_findings`), not the rule's;
        ``timepoint`` is :func:`vital_sign_key`, ``value`` the reading that set the severity
        (the first measure of systolic, diastolic, heart rate that reached it), ``dated`` the
        reading's day.

    Notes
    -----
    One alert per reading rather than per measure: a reading of 185/125 mmHg is one event that
    the team acts on once (repeat it, call the physician), and two alerts would be acknowledged
    twice for it. The reason names every measure that reached a threshold.
    """
    if vital_signs is None or vital_signs.empty:
        return []
    readings: dict[tuple[str, int, str], list] = {}
    for finding in vital_sign_findings(vital_signs, protocol.safety):
        readings.setdefault((finding.participant_id, finding.session, finding.measured_at), []).append(finding)
    alerts = []
    for (participant_id, session, measured_at), found in readings.items():
        severity = "urgent" if any(f.severity == "urgent" for f in found) else "warning"
        worst = next(f for f in found if f.severity == severity)
        reached = "; ".join(f"{_VITAL_SIGN_WORDS[f.measure]} {_number(f.value)} {VITAL_SIGN_UNITS[f.measure]} "
                            f"at or above the {f.severity} threshold of {_number(f.threshold)}" for f in found)
        reason = f"Reading of {measured_at} at dosing session {session}: {reached}"
        measure = f"{', '.join(f.measure for f in found)} at session {session}"
        alerts.append(Alert(rule.id, rule.type, participant_id, vital_sign_key(session, measured_at, severity),
                            measure, severity, reason, action=VITAL_SIGN_ACTIONS[severity], value=worst.value,
                            dated=_as_date(measured_at)))
    return sorted(alerts, key=lambda a: a.participant_id)


def washout_alerts(rule: AlertRule, protocol: Protocol, medications: pd.DataFrame | None,
                   dosing_sessions: pd.DataFrame | None) -> list[Alert]:
    """Alerts of a ``washout`` rule: a medication of ``safety.washout`` taken at or too close before the first dose.

    Parameters
    ----------
    rule : AlertRule
    protocol : Protocol
        Its ``safety.washout`` rules; without any, nothing is raised.
    medications : DataFrame
        ``concomitant_medications.csv``: ``participant_id``, ``name``, ``start``, ``stop``.
    dosing_sessions : DataFrame
        ``dosing_sessions.csv``: the first dose is the ``date`` of session 1
        (:func:`alliance.monitoring.safety_checks.first_dose_dates`).

    Returns
    -------
    list of Alert
        One per finding of :func:`alliance.monitoring.safety_checks.washout_findings` (which dates
        count, to the day: its module docstring), by participant, then the table's order.
        ``timepoint`` is :func:`washout_key`, ``value`` the days from ``stop`` to the first dose
        (``None`` when taken on that day), ``dated`` the first dose.

    Notes
    -----
    Only a recorded dose is checked, not a planned one: an ongoing medication weeks before the
    planned session is not yet a washout broken (it can still be stopped), and an alert then would
    be premature. Checking eligibility before dosing is the team's screening.
    """
    if not protocol.safety.washout or medications is None or medications.empty:
        return []
    alerts = []
    for finding in washout_findings(medications, first_dose_dates(dosing_sessions), protocol.safety):
        reason = finding.reason + (f" (washout rule: {finding.source})" if finding.source else "")
        alerts.append(Alert(rule.id, rule.type, finding.participant_id, washout_key(finding.medication, finding.start),
                            f"medication {finding.medication}", rule.severity, reason, action=WASHOUT_ACTION,
                            value=None if finding.days_before is None else float(finding.days_before),
                            dated=finding.first_dose))
    return sorted(alerts, key=lambda a: a.participant_id)


def _vital_sign_status(protocol: Protocol) -> str:
    thresholds = protocol.safety.vital_signs

    def listed(levels: Mapping[str, float]) -> str:
        return ", ".join(f"{_VITAL_SIGN_WORDS[m]} {_number(v)} {VITAL_SIGN_UNITS[m]}" for m, v in levels.items())

    parts = [f"{severity} at {listed(levels)}" for severity, levels in
             (("urgent", thresholds.urgent), ("warning", thresholds.warning)) if levels]
    return (f"dosing-day readings at or above the protocol's thresholds ({'; '.join(parts)}); each alert has the "
            "severity of the threshold reached")


def _washout_status(protocol: Protocol) -> tuple[bool, str]:
    rules = protocol.safety.washout
    if not rules:
        return False, ("the protocol's safety section names no washout rule (safety.washout), so no medication "
                       "is checked")
    listed = "; ".join(f"{', '.join(r.medications)}: {r.days} days" for r in rules)
    return True, f"medications taken at the first dose or within the washout before it ({listed})"


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str:
    return "" if _missing(value) else " ".join(str(value).split())


def _yes(value: Any) -> bool:
    if _missing(value):
        return False
    if isinstance(value, bool | np.bool_):
        return bool(value)
    return str(value).strip().casefold() in _YES


def _grade(value: Any) -> int | None:
    if _missing(value):
        return None
    try:
        grade = int(float(str(value).strip()))
    except ValueError:
        return None
    return grade if grade in CTCAE_GRADES else None


# ---------------------------------------------------------------------------------------------
# Words and numbers
# ---------------------------------------------------------------------------------------------

def _scores_at(scores: pd.DataFrame, instrument: str, scale: str, timepoint: str) -> pd.Series:
    rows = scores[(scores["instrument"] == instrument) & (scores["scale"] == scale)
                  & (scores["timepoint"] == timepoint) & scores["value"].notna()]
    return pd.Series(rows["value"].astype(float).to_numpy(), index=rows["participant_id"].astype(str).to_numpy())


def _as_date(value: Any) -> date | None:
    """A date from a date, a date-time, a pandas timestamp or an ISO text; ``None`` when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if hasattr(value, "date") and callable(value.date):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _dates_of(frame: pd.DataFrame | None, instrument: str | None) -> dict[tuple[str, str], date]:
    """(participant, timepoint) → the administration's date, from an ``administered_on`` column if any."""
    if frame is None or "administered_on" not in frame or frame.empty:
        return {}
    rows = frame if instrument is None else frame[frame["instrument"] == instrument]
    out: dict[tuple[str, str], date] = {}
    for pid, timepoint, when in rows[["participant_id", "timepoint", "administered_on"]].itertuples(index=False):
        day = _as_date(when)
        if day is not None:
            key = (str(pid), str(timepoint))
            out[key] = max(out.get(key, day), day)
    return out


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
    parts = Measure.parse(measure, timepoint="forbidden")
    instrument_id, scale = parts.instrument, parts.scale
    return f"{_short_name(instrument_id)} {scale.replace('_pct', ' %').replace('_', ' ')}"


def _short_name(instrument_id: str) -> str:
    try:
        return bank.get(instrument_id).short_name
    except bank.UnknownInstrumentError:
        return instrument_id


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _flag_instruments(rule: AlertRule) -> tuple[str, ...]:
    """The instruments a ``flag`` rule watches: its own list, or every one that defines the flag."""
    return rule.instruments or tuple(i.id for i in bank.list_instruments() if any(f.id == rule.flag for f in i.flags))


# ---------------------------------------------------------------------------------------------
# The rule types: what each needs, and how it is evaluated
# ---------------------------------------------------------------------------------------------

def _flag_items(rule: AlertRule) -> AlertInputs:
    needed = set()
    for instrument_id in _flag_instruments(rule):
        instrument = bank.get(instrument_id)
        for flag in instrument.flags:
            if flag.id != rule.flag:
                continue
            if flag.scale is None:
                needed.add((instrument_id, flag.item))
            else:  # every item of the flagged scale
                scale = next(s for s in instrument.scales if s.id == flag.scale)
                needed |= {(instrument_id, i) for i in scale.all_items}
    return AlertInputs(answer_items=frozenset(needed))


def _reliable_threshold(rule: AlertRule, protocol: Protocol, scores: pd.DataFrame | None,
                        responses: pd.DataFrame | None) -> tuple[DropThreshold | None, str]:
    from .change import (  # the reliable-change norms of the protocol's reliable_change: section
        OK,
        resolve_norm,
    )

    if scores is None:
        scores = pd.DataFrame(columns=["participant_id", "timepoint", "instrument", "scale", "value"])
    if responses is None:
        responses = pd.DataFrame(columns=["participant_id", "timepoint", "instrument", "item", "value"])
    norm = resolve_norm(protocol, rule.measure, scores, responses)
    if norm.status != OK or norm.threshold is None:
        why = "; ".join(norm.notes) or norm.status
        return None, f"the reliable-change threshold of {_scale_label(rule.measure)} cannot be set yet: {why}"
    origins = {"this study's baseline" if text.startswith("this study") else "the protocol"
               for text in (norm.sd_from, norm.reliability_from)}
    described = (f"SD {_number(round(norm.sd, 2))}, reliability {_number(round(norm.reliability, 2))}, "
                 f"from {' and '.join(sorted(origins))}")
    return DropThreshold(float(norm.threshold), strict=True, description=described), ""


def _evaluate_drop(rule: AlertRule, protocol: Protocol, data: AlertData) -> list[Alert]:
    threshold, _ = drop_threshold(rule, protocol, data.scores, data.responses)
    return [] if threshold is None else alliance_drop_alerts(rule, protocol, data.scores, threshold)


RULE_TYPES: dict[str, RuleType] = {
    "low_alliance": RuleType(
        "low_alliance",
        inputs=lambda rule: AlertInputs(score_instruments=frozenset({rule.instrument})),
        evaluate=lambda rule, protocol, data, config: low_alliance_alerts(rule, protocol, data.scores,
                                                                          timelines=data.timelines)),
    "alliance_drop": RuleType(
        "alliance_drop",
        inputs=lambda rule: AlertInputs(
            score_instruments=frozenset({rule.instrument}),
            baseline_answers=frozenset({rule.instrument}) if rule.reliable_change else frozenset()),
        evaluate=lambda rule, protocol, data, config: _evaluate_drop(rule, protocol, data)),
    "flag": RuleType(
        "flag",
        inputs=_flag_items,
        evaluate=lambda rule, protocol, data, config: flag_alerts(rule, protocol, data.responses,
                                                                  config.crisis_text)),
    "missed_assessment": RuleType(
        "missed_assessment",
        inputs=lambda rule: AlertInputs(timelines=True),
        evaluate=lambda rule, protocol, data, config: missed_assessment_alerts(
            rule, protocol, data.timelines, data.today, config.missed_after_days),
        time_dependent=True),
    "serious_adverse_event": RuleType(
        "serious_adverse_event",
        inputs=lambda rule: AlertInputs(adverse_events=True),
        evaluate=lambda rule, protocol, data, config: serious_adverse_event_alerts(rule, protocol,
                                                                                   data.adverse_events),
        to_investigators=True),
    "vital_sign": RuleType(
        "vital_sign",
        inputs=lambda rule: AlertInputs(vital_signs=True),
        evaluate=lambda rule, protocol, data, config: vital_sign_alerts(rule, protocol, data.vital_signs)),
    "washout": RuleType(
        "washout",
        inputs=lambda rule: AlertInputs(medications=True, dosing_sessions=True),
        evaluate=lambda rule, protocol, data, config: washout_alerts(rule, protocol, data.medications,
                                                                     data.dosing_sessions)),
}
