"""Data-quality rules: what a data manager checks before the data are analysed (pure, no database).

:func:`check_quality` runs every built-in rule and the protocol's own rules (its ``quality:``
section, :mod:`alliance.protocol.quality`) on a :class:`alliance.study.Study` and gives a
:class:`QualityReport`: one :class:`Finding` per problem, naming the participant, the timepoint,
the instrument, the field and the value, with a message saying what is wrong and what is allowed.
``alliance quality`` prints it; the web app's data-quality page shows it, each finding linked to
the participant's record.

The model is REDCap's data quality module, which trial teams know and compare against: of its
pre-defined rules A-I, A and B list blank values (B: of required fields only), D values outside a
field's validation range, E outliers of numeric fields (beyond two standard deviations of the
mean; here the scale's own ends, see ``docs/quality.md``), and custom rules are logic that is true
for the discrepant records. Here:

==========================  ========  =====================================================
rule                        severity  finds
==========================  ========  =====================================================
``missing_arm``             error     a participant without an arm
``missing_enrolment_date``  warning   a participant without ``enrolled_on`` (no schedule)
``missing_facilitator``     warning   a participant without ``facilitator_ids``
``unanswered_items``        warning   a submitted form with unanswered items, still scored
``incomplete_form``         error     a submitted form whose score is missing (too many items
                                      unanswered for the scale's missing-item rule)
``after_dosing``            error     a pre-dose assessment given after the first dose
``out_of_order``            error     an assessment dated before one of an earlier timepoint
``out_of_window``           warning   an assessment outside its timepoint's window
``undated``                 warning   an assessment without a date, when the protocol needs one
``score_at_floor``          info      a scale score at the lowest its range allows
``score_at_ceiling``        info      a scale score at the highest its range allows
``straight_lining``         warning   every item given the same answer on a form with
                                      reverse-keyed items
``age_at_edge``             warning   an ``age`` under 18 or over 100
``dose_at_edge``            warning   a dosing session with amount 0 or 1,000 or more
(the protocol's rules)      its own   what the rule says
==========================  ========  =====================================================

Off-schedule administrations are :func:`alliance.monitoring.deviations.find_deviations`'s (the
same that the analysis and the participant timeline use), not found a second time here.

References
----------
REDCap Help & FAQ, "Data Quality" module: rules A (blank values), B (blank values, required
fields only), C and D (field validation errors: wrong type, out of range), E (outliers of
numerical fields), F (hidden fields with values), G (multiple-choice fields with invalid values),
H (incorrect calculated fields), I (missing-data codes), and user-defined rules. Harris PA et al. (2009). Research
electronic data capture (REDCap). J Biomed Inform 42(2):377-381.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.instruments import Instrument
from alliance.protocol import Protocol
from alliance.protocol.quality import SEVERITIES, QualityRule, as_number
from alliance.study.administrations import item_matrix
from alliance.study.validation import AGE_RANGE, MAX_DOSE_AMOUNT

from .deviations import Deviation, find_deviations

if TYPE_CHECKING:
    from alliance.study import Study

__all__ = ["COLUMNS", "RULES", "Finding", "QualityReport", "RuleInfo", "check_quality", "straight_lined"]

# The columns of QualityReport.to_frame(), of `alliance quality --format csv` and of the web table.
COLUMNS = ("severity", "rule", "participant_id", "timepoint", "instrument", "field", "value", "message")

# An adult trial: psychedelic-assisted therapy trials enrol adults (Davis et al. 2021: 21-75), so
# an age under 18 is a typo or a minor enrolled by mistake; above 100 a typo (110 for 11, 101 for
# 10) is likelier than a centenarian participant. Both inside the contract's 0-130 (AGE_RANGE),
# which refuses only the impossible.
AGE_EDGE = (18, 100)
# A dosing session recorded with amount 0 is a dose not given (or a blank typed as 0): the
# contract allows it (amount >= 0), the protocol plans a dose. 1,000 is above any single dose of a
# psychedelic in trials in mg or µg (psilocybin 10-40 mg, MDMA 80-180 mg, LSD 50-200 µg), so an
# amount that large is in the wrong unit or mistyped; the contract refuses only 10,000 or more.
DOSE_EDGE = 1_000
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class RuleInfo:
    """A built-in rule: its id, severity, a title for people and where it comes from."""

    id: str
    severity: str
    title: str
    source: str


RULES: dict[str, RuleInfo] = {info.id: info for info in (
    RuleInfo("missing_arm", "error", "Participant without an arm",
             "REDCap rule B (blank required fields); the arm is required by the data contract"),
    RuleInfo("missing_enrolment_date", "warning", "Participant without an enrolment date",
             "REDCap rule B; without enrolled_on no assessment is scheduled, so none can be overdue"),
    RuleInfo("missing_facilitator", "warning", "Participant without a facilitator",
             "REDCap rule B; the alliance is with the facilitators (Levin et al. 2024)"),
    RuleInfo("unanswered_items", "warning", "Submitted form with unanswered items",
             "REDCap rule A (blank values); the scale's missing-item rule still gives a score"),
    RuleInfo("incomplete_form", "error", "Form not scored: too many items unanswered",
             "the instrument's missing-item rule (instruments/*.yaml, docs/instruments.md)"),
    RuleInfo("after_dosing", "error", "Pre-dose assessment after the first dose",
             "protocol deviation (alliance.monitoring.deviations; ICH E3 section 10.2)"),
    RuleInfo("out_of_order", "error", "Assessment dated before an earlier timepoint's",
             "protocol deviation: one of the two dates is wrong (alliance.monitoring.deviations)"),
    RuleInfo("out_of_window", "warning", "Assessment outside its window",
             "protocol deviation (alliance.monitoring.deviations; the timepoint's window_days)"),
    RuleInfo("undated", "warning", "Assessment without a date",
             "protocol deviation when the protocol says require_dates (alliance.monitoring.deviations)"),
    RuleInfo("score_at_floor", "info", "Score at the lowest of its range",
             "REDCap rule E (outliers); the scale's range in instruments/*.yaml"),
    RuleInfo("score_at_ceiling", "info", "Score at the highest of its range",
             "REDCap rule E (outliers); the scale's range in instruments/*.yaml"),
    RuleInfo("straight_lining", "warning", "Same answer to every item despite reverse-keyed items",
             "careless responding (Meade & Craig 2012, Psychol Methods 17(3):437-455: long-string index)"),
    RuleInfo("age_at_edge", "warning", "Age at the edge of what an adult trial enrols",
             "REDCap rule E; the contract allows ages 0-130 (alliance.study.validation)"),
    RuleInfo("dose_at_edge", "warning", "Dose amount 0 or implausibly large",
             "REDCap rule E; the contract allows amounts from 0 to below 10,000 (alliance.study.validation)"),
)}
# RULES describes exactly the protocol's BUILT_IN_RULES, the ids no custom rule may take
# (tests/monitoring/test_quality.py checks it).

_RANK = {severity: i for i, severity in enumerate(SEVERITIES)}
_DEVIATION_RULES = ("after_dosing", "out_of_order", "out_of_window", "undated")


@dataclass(frozen=True)
class Finding:
    """One problem of the data.

    Attributes
    ----------
    rule : str
        A built-in rule id (:data:`RULES`) or the id of a rule of the protocol's ``quality:`` section.
    severity : str
        ``error``, ``warning`` or ``info``.
    participant_id : str
    timepoint, instrument : str or None
        Of the administration (``None`` for a finding about the participant).
    field : str or None
        The item(s), scale or participant column.
    value : str or None
        The value found, as text (``None`` when the value is missing).
    message : str
        What is wrong and what is allowed.
    dated : bool
        Whether ``value`` or ``message`` shows a calendar date.
    undated_message : str
        The message without calendar dates (what a monitor is shown; :meth:`deidentified`).
    """

    rule: str
    severity: str
    participant_id: str
    timepoint: str | None
    instrument: str | None
    field: str | None
    value: str | None
    message: str
    dated: bool = False
    undated_message: str = ""

    def deidentified(self) -> Finding:
        """The finding without calendar dates: the value dropped, the message in days."""
        if not self.dated:
            return self
        return replace(self, value=None, message=self.undated_message or self.message, dated=False)

    def to_dict(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in COLUMNS}


@dataclass(frozen=True)
class QualityReport:
    """The findings of every data-quality rule on one study, most severe first.

    Attributes
    ----------
    findings : tuple of Finding
        Sorted by severity (error, warning, info), participant (the participants table's order),
        timepoint (protocol order; findings about the participant first), instrument and rule.
    rules : tuple of str
        Every rule checked: the built-in ones, then the protocol's in its order.
    not_checked : tuple of str
        What a rule could not check, and why (a column the participants table does not have).
    """

    findings: tuple[Finding, ...]
    rules: tuple[str, ...]
    not_checked: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """Rule id → number of findings, for every rule checked (in :attr:`rules` order)."""
        counts = dict.fromkeys(self.rules, 0)
        for finding in self.findings:
            counts[finding.rule] = counts.get(finding.rule, 0) + 1
        return counts

    @property
    def severity_counts(self) -> dict[str, int]:
        """``error``, ``warning``, ``info`` → number of findings."""
        counts = dict.fromkeys(SEVERITIES, 0)
        for finding in self.findings:
            counts[finding.severity] += 1
        return counts

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def filtered(self, severity: str | None = None, rule: str | None = None) -> QualityReport:
        """Only the findings of one severity and/or one rule (``None``: any)."""
        kept = tuple(f for f in self.findings
                     if (severity is None or f.severity == severity) and (rule is None or f.rule == rule))
        return replace(self, findings=kept)

    def deidentified(self) -> QualityReport:
        """The report without calendar dates (:meth:`Finding.deidentified`), for monitors."""
        return replace(self, findings=tuple(f.deidentified() for f in self.findings))

    def to_frame(self) -> pd.DataFrame:
        """One row per finding, columns :data:`COLUMNS`."""
        return pd.DataFrame([f.to_dict() for f in self.findings], columns=list(COLUMNS))

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "severity_counts": self.severity_counts, "not_checked": list(self.not_checked),
                "findings": [f.to_dict() for f in self.findings]}


def check_quality(study: Study) -> QualityReport:
    """Run every built-in data-quality rule and the protocol's own rules on a study.

    Parameters
    ----------
    study : alliance.study.Study
        A validated study (:func:`alliance.study.load`, or a stored study's export).

    Returns
    -------
    QualityReport

    Notes
    -----
    An administration is a participant × timepoint × instrument with at least one row in the
    responses (the web app exports submitted forms only); an item without a row, or with an empty
    value, is unanswered. Scores come from :func:`alliance.instruments.score`, the one scoring path.

    References
    ----------
    REDCap Help & FAQ, "Data Quality" (rules A-I and custom rules). Harris PA et al. (2009). J
    Biomed Inform 42(2):377-381.

    Examples
    --------
    >>> import pandas as pd
    >>> from alliance.protocol import default_protocol
    >>> from alliance.study import Study
    >>> answers = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]   # total 12, below 17
    >>> responses = pd.DataFrame({"participant_id": "P1", "timepoint": "baseline", "instrument": "grid_hamd17",
    ...                           "item": [f"grid_hamd17_{i}" for i in range(1, 18)], "value": answers})
    >>> participants = pd.DataFrame({"participant_id": ["P1"], "arm": ["immediate"], "enrolled_on": ["2026-10-01"],
    ...                              "facilitator_ids": ["F1"]})
    >>> report = check_quality(Study(default_protocol(), participants, responses))
    >>> [(f.rule, f.severity, f.value) for f in report.findings]
    [('baseline_below_entry', 'error', '12')]
    """
    protocol = study.protocol
    participants = study.participants
    findings: list[Finding] = []
    not_checked: list[str] = []
    findings += _participant_findings(participants)
    findings += _form_findings(protocol, study.responses)
    # Without a protocol arm there is no schedule (missing_arm says so): deviations of the others.
    scheduled = participants[participants["arm"].isin(protocol.arm_ids)] if "arm" in participants.columns \
        else participants.iloc[:0]
    findings += _deviation_findings(protocol, find_deviations(protocol, scheduled, study.responses,
                                                                study.dosing_sessions))
    findings += _age_findings(participants)
    findings += _dose_findings(protocol, study.dosing_sessions)
    for rule in protocol.quality.rules:
        found, note = _custom_findings(rule, study)
        findings += found
        if note:
            not_checked.append(note)
    rules = tuple(RULES) + tuple(rule.id for rule in protocol.quality.rules)
    return QualityReport(findings=_sorted(findings, protocol, study.participant_ids, rules), rules=rules,
                         not_checked=tuple(not_checked))


def _sorted(findings: list[Finding], protocol: Protocol, participant_ids: list[str],
            rules: tuple[str, ...]) -> tuple[Finding, ...]:
    participant_order = {pid: i for i, pid in enumerate(participant_ids)}
    timepoint_order = {tid: i for i, tid in enumerate(protocol.timepoint_ids + protocol.derived_ids)}
    instrument_order = {iid: i for i, iid in enumerate(protocol.instruments)}
    rule_order = {rid: i for i, rid in enumerate(rules)}

    def key(f: Finding):
        return (_RANK[f.severity], participant_order.get(f.participant_id, len(participant_order)), f.participant_id,
                -1 if f.timepoint is None else timepoint_order.get(f.timepoint, len(timepoint_order)),
                -1 if f.instrument is None else instrument_order.get(f.instrument, len(instrument_order)),
                rule_order.get(f.rule, len(rule_order)), f.field or "")

    return tuple(sorted(findings, key=key))


def _text(value: Any) -> str | None:
    """A value as the text a finding shows (numbers without a trailing ``.0``)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else f"{number:g}"
    return str(value)


def _blank(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value)) or (isinstance(value, str)
                                                                                and not value.strip())


def _finding(rule: str, participant_id: str, message: str, timepoint: str | None = None,
             instrument: str | None = None, field: str | None = None, value: Any = None,
             severity: str | None = None, undated_message: str = "") -> Finding:
    return Finding(rule=rule, severity=severity or RULES[rule].severity, participant_id=str(participant_id),
                   timepoint=timepoint, instrument=instrument, field=field, value=_text(value), message=message,
                   dated=bool(undated_message), undated_message=undated_message)


# -- missing required values (REDCap rule B) ---------------------------------------------------------

def _participant_findings(participants: pd.DataFrame) -> list[Finding]:
    """A participant without an arm, an enrolment date or a facilitator (a column left out counts)."""
    out = []
    columns = participants.columns

    def values(column: str) -> list:
        return participants[column].tolist() if column in columns else [None] * len(participants)

    for pid, arm, enrolled, facilitators in zip(participants["participant_id"], values("arm"),
                                                values("enrolled_on"), values("facilitator_ids"), strict=True):
        if _blank(arm):
            out.append(_finding("missing_arm", pid, "has no arm: every participant needs one of the protocol's arms",
                                field="arm"))
        if _blank(enrolled):
            out.append(_finding("missing_enrolment_date", pid,
                                "has no enrolment date (enrolled_on): without it no assessment is scheduled, so "
                                "none is shown as due, overdue or missed", field="enrolled_on"))
        if _blank(facilitators) or not [f for f in str(facilitators).split(";") if f.strip()]:
            out.append(_finding("missing_facilitator", pid,
                                "has no facilitator (facilitator_ids): the alliance cannot be attributed and no "
                                "facilitator sees the participant in the web app", field="facilitator_ids"))
    return out


# -- forms: unanswered items, incomplete forms, floor and ceiling, straight-lining -------------------

def straight_lined(instrument: Instrument, values: np.ndarray) -> np.ndarray:
    """Which administrations gave every item the same answer although some items are reverse-keyed.

    Parameters
    ----------
    instrument : Instrument
    values : ndarray
        (administrations × items) raw answers in the instrument's item order, NaN where unanswered.

    Returns
    -------
    ndarray of bool
        True where every item is answered, all answers are equal, the instrument has both
        reverse-keyed and plainly keyed items, and the answer is not the midpoint of the items'
        range. Always False for an instrument without reverse-keyed items.

    Notes
    -----
    A reverse-keyed item is worded against the construct: agreeing with both it and its opposite
    is inconsistent, so identical answers across both kinds of items point to careless responding
    (the long-string index of Meade & Craig 2012). The midpoint is the one answer that stays the
    same when reversed (``min + max − x = x``): a neutral answer everywhere is consistent, and is
    not flagged.

    References
    ----------
    Meade AW, Craig SB (2012). Identifying careless responses in survey data. Psychol Methods
    17(3):437-455.
    """
    reverse = np.array([item.reverse for item in instrument.items], dtype=bool)
    if not reverse.any() or reverse.all() or values.shape[1] < 2:
        return np.zeros(len(values), dtype=bool)
    complete = ~np.isnan(values).any(axis=1)
    first = values[:, 0]
    same = complete & (np.abs(values - first[:, None]) < _TOLERANCE).all(axis=1)
    midpoints = np.array([(item.min + item.max) / 2 for item in instrument.items])
    neutral = (np.abs(values - midpoints[None, :]) < _TOLERANCE).all(axis=1)
    return same & ~neutral


def _listed(items: list[str], most: int = 6) -> str:
    return ", ".join(items) if len(items) <= most else ", ".join(items[:most]) + f" and {len(items) - most} more"


def _form_findings(protocol: Protocol, responses: pd.DataFrame) -> list[Finding]:
    out: list[Finding] = []
    if not len(responses):
        return out
    numbers = pd.to_numeric(responses["value"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    instrument_column = responses["instrument"].astype(str).to_numpy()
    for instrument_id in protocol.instruments:
        positions = np.flatnonzero(instrument_column == instrument_id)
        if not len(positions):
            continue
        inst = bank.get(instrument_id)
        matrix = item_matrix(responses, positions, inst, numbers)
        scores = bank.score(inst, matrix.frame(inst))
        lined = straight_lined(inst, matrix.values)
        for row, (pid, timepoint) in enumerate(matrix.keys.itertuples(index=False, name=None)):
            out += _administration_findings(inst, str(pid), str(timepoint), matrix.values[row], scores.iloc[row],
                                            bool(lined[row]))
    return out


def _allowed_missing(scale) -> str:
    """What a scale's missing-item rule allows, in words."""
    unit = "domain" if scale.groups else "item"
    n = scale.missing.max_missing
    if n == 0:
        return f"{scale.label} needs every {unit} answered"
    return f"{scale.label} allows at most {n} {unit}{'' if n == 1 else 's'} missing"


def _administration_findings(inst: Instrument, pid: str, timepoint: str, answers: np.ndarray, scores: pd.Series,
                             lined: bool) -> list[Finding]:
    out = []
    where = {"timepoint": timepoint, "instrument": inst.id}
    unanswered = [item.id for item, value in zip(inst.items, answers, strict=True) if np.isnan(value)]
    n = len(inst.items)
    not_scored = [scale for scale in inst.scales if pd.isna(scores[scale.id])]
    if not_scored:
        limits = "; ".join(_allowed_missing(scale) for scale in not_scored)
        out.append(_finding("incomplete_form", pid,
                            f"{inst.short_name} is not scored: {len(unanswered)} of {n} items unanswered "
                            f"({_listed(unanswered)}); {limits}. Complete the form or query the rater.",
                            field=_listed(unanswered), value=f"{n - len(unanswered)} of {n} answered", **where))
    elif unanswered:
        out.append(_finding("unanswered_items", pid,
                            f"{inst.short_name}: {len(unanswered)} of {n} items unanswered ({_listed(unanswered)}); "
                            "the score is computed from the answered items, as the scale's missing-item rule "
                            "allows. Check the items were skipped on purpose.",
                            field=_listed(unanswered), value=f"{n - len(unanswered)} of {n} answered", **where))
    for scale in inst.scales:
        score = scores[scale.id]
        if pd.isna(score):
            continue
        low, high = scale.range
        span = f"{low:g}–{high:g}"
        if abs(score - low) < _TOLERANCE:
            out.append(_finding("score_at_floor", pid,
                                f"{scale.label} is {score:g}, the lowest the scale allows ({span}): check the form "
                                "was filled in, not left at its lowest answers", field=scale.id, value=score, **where))
        elif abs(score - high) < _TOLERANCE:
            out.append(_finding("score_at_ceiling", pid,
                                f"{scale.label} is {score:g}, the highest the scale allows ({span}): check it "
                                "against the source", field=scale.id, value=score, **where))
    if lined:
        reversed_items = [item.id for item in inst.items if item.reverse]
        out.append(_finding("straight_lining", pid,
                            f"{inst.short_name}: every item answered {answers[0]:g}, although "
                            f"{_listed(reversed_items)} {'is' if len(reversed_items) == 1 else 'are'} worded the "
                            "other way round: the answers contradict each other. Ask whether the form was read.",
                            field="all items", value=answers[0], **where))
    return out


# -- off schedule: alliance.monitoring.deviations ----------------------------------------------------

def _days(a: date, b: date) -> str:
    n = abs((a - b).days)
    return f"{n} day{'' if n == 1 else 's'}"


def _deviation_findings(protocol: Protocol, deviations: Iterable[Deviation]) -> list[Finding]:
    out = []
    for d in deviations:
        action = protocol.deviations.action(d.kind)
        consequence = ("the analysis excludes it (the protocol's deviations: section)" if action == "exclude"
                       else "the analysis keeps it and reports it")
        undated = _undated_reason(d)
        out.append(_finding(d.kind, d.participant_id, f"{d.reason}; {consequence}", timepoint=d.timepoint,
                            instrument=d.instrument, field="administered_at", value=d.administered_at,
                            undated_message=f"{undated}; {consequence}" if d.administered_at else ""))
    return out


def _undated_reason(d: Deviation) -> str:
    """A deviation's reason without calendar dates: how many days off, not which days."""
    try:
        day = date.fromisoformat(str(d.administered_at)[:10])
    except ValueError:
        day = None
    if d.kind == "out_of_window" and day is not None and d.window_open is not None and d.window_close is not None:
        if day < d.window_open:
            return f"given {_days(d.window_open, day)} before its window opened"
        return f"given {_days(day, d.window_close)} after its window closed"
    if d.kind == "after_dosing":
        return "a pre-dose assessment given after the first dosing session"
    if d.kind == "out_of_order":
        return "given on a day before an assessment of an earlier timepoint: one of the two dates is wrong"
    return "off schedule"


# -- values at the edge of the contract's ranges (REDCap rule E) -------------------------------------

def _age_findings(participants: pd.DataFrame) -> list[Finding]:
    if "age" not in participants.columns:
        return []
    out = []
    low, high = AGE_EDGE
    for pid, age in zip(participants["participant_id"], participants["age"], strict=True):
        number = as_number(age)
        if number is None or low <= number <= high:
            continue
        side = f"under {low}: is the participant an adult?" if number < low else f"over {high}: a typo?"
        out.append(_finding("age_at_edge", pid, f"age {number:g} is {side} The data contract allows "
                                                f"{AGE_RANGE[0]}–{AGE_RANGE[1]}; an adult trial enrols "
                                                f"{low}–{high}.", field="age", value=number))
    return out


def _dose_findings(protocol: Protocol, dosing: pd.DataFrame | None) -> list[Finding]:
    if dosing is None or "amount" not in dosing.columns or not len(dosing):
        return []
    session_timepoint = {t.dose.session: t for t in protocol.dosing_timepoints if t.dose is not None}
    units = dosing["unit"] if "unit" in dosing.columns else pd.Series(None, index=dosing.index)
    out = []
    for pid, session, amount, unit in zip(dosing["participant_id"], dosing["session"], dosing["amount"], units,
                                          strict=True):
        number = as_number(amount)
        if number is None or 0 < number < DOSE_EDGE:
            continue
        timepoint = session_timepoint.get(int(session)) if not pd.isna(session) else None
        planned = (f"; the protocol plans {timepoint.dose.describe()}" if timepoint is not None
                   and timepoint.dose is not None else "")
        what = (f"dosing session {session} is recorded with amount 0: was the dose given?" if number == 0 else
                f"dosing session {session} is recorded with {number:g} {'' if _blank(unit) else unit}".rstrip()
                + f", {DOSE_EDGE:,} or more: above any single dose of a psychedelic (wrong unit?); the data "
                  f"contract accepts 0 to below {MAX_DOSE_AMOUNT:,}")
        out.append(_finding("dose_at_edge", pid, what + planned,
                            timepoint=None if timepoint is None else timepoint.id, field="amount", value=number))
    return out


# -- the protocol's rules ------------------------------------------------------------------------------

def _custom_findings(rule: QualityRule, study: Study) -> tuple[list[Finding], str]:
    """The findings of one rule of the protocol's ``quality:`` section, and what it could not check."""
    if rule.measure is not None:
        return _measure_findings(rule, study), ""
    participants = study.participants
    if rule.column not in participants.columns:
        return [], f"{rule.id}: the participants table has no column {rule.column!r}, so the rule was not checked"
    out, not_numbers = [], 0
    numeric = rule.comparison not in ("missing",) and not isinstance(rule.value, str)
    dated = rule.column == "enrolled_on"
    for pid, value in zip(participants["participant_id"], participants[rule.column], strict=True):
        plain = None if _blank(value) else value
        if numeric and plain is not None and as_number(plain) is None:
            not_numbers += 1
            continue
        if rule.holds(plain):
            out.append(_custom_finding(rule, pid, plain, field=rule.column, dated=dated))
    note = (f"{rule.id}: {not_numbers} value(s) of column {rule.column!r} are not numbers and were not compared"
            if not_numbers else "")
    return out, note


def _measure_findings(rule: QualityRule, study: Study) -> list[Finding]:
    protocol = study.protocol
    measure = rule.measure
    names = ([measure] if measure.timepoint is not None
             else [measure.at(t) for t in protocol.timepoints_with(measure.instrument)])
    wide = study.measures(wide=True)
    out = []
    for name in names:
        column = wide[str(name)] if str(name) in wide.columns else pd.Series(np.nan, index=wide.index)
        for pid, value in column.items():
            number = None if pd.isna(value) else float(value)
            if rule.holds(number):
                out.append(_custom_finding(rule, pid, number, field=name.scale, timepoint=name.timepoint,
                                           instrument=name.instrument))
    return out


def _custom_finding(rule: QualityRule, pid: str, value: Any, field: str, timepoint: str | None = None,
                    instrument: str | None = None, dated: bool = False) -> Finding:
    text = rule.message.rstrip(".")
    found = "No value" if value is None else f"Found {_text(value)}"
    message = f"{text}. {found}; the rule flags {rule.describe()}."
    return _finding(rule.id, pid, message, timepoint=timepoint, instrument=instrument, field=field, value=value,
                    severity=rule.severity,
                    undated_message=f"{text}. The rule flags {rule.describe()}." if dated and value is not None else "")
