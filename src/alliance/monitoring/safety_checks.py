"""Safety checks of the dosing-day record: vital signs over the protocol's thresholds, washouts not kept.

Pure functions of the tables (``vital_signs.csv``, ``concomitant_medications.csv``,
``docs/data.md``) and the protocol's ``safety:`` section (:class:`~alliance.protocol.SafetySpec`):

==========================  =====================================================================
function                    finds
==========================  =====================================================================
:func:`vital_sign_findings` each reading at or above a warning or urgent threshold
                            (:class:`VitalSignFinding`; one per reading and measure, urgent wins)
:func:`washout_findings`    each listed medication taken too close to the first dose, or at it
                            (:class:`WashoutFinding`)
:func:`first_dose_dates`    each participant's first dose date: the date of dosing session 1
==========================  =====================================================================

A finding is for a conversation and a decision by the team during the session; it is not a
diagnosis, and the thresholds' provenance is the section's ``source``.

**Which medication dates break a washout.** Dates are calendar days; ``stop`` is the last day the
medication was taken, and *D* the participant's first dose date. For a rule of *n* days, a row of
a medication the rule lists (whole name, case-insensitive) gives

- ``ongoing`` — taken on the day of the first dose: ``start`` ≤ *D* and ``stop`` empty (ongoing)
  or ``stop`` ≥ *D*. A medication started on *D* itself counts; one started after *D* does not
  (it is a concomitant medication after dosing, not a washout matter);
- ``within_washout`` — stopped before *D* but fewer than *n* days before it: *D* − ``stop`` < *n*.
  Stopped exactly *n* days before (``stop`` 2024-03-01, *D* 2024-03-15, *n* = 14) keeps the washout.

A participant without a first dose date (not dosed yet; missing from ``first_dose_dates`` or
``NaT``) is not checked: pass the planned date of session 1 to check before dosing.

Examples
--------
>>> import pandas as pd
>>> from alliance.protocol import SafetySpec
>>> readings = pd.DataFrame({"participant_id": ["P1", "P1"], "session": [1, 1],
...                          "measured_at": ["2024-03-01T10:00", "2024-03-01T11:00"],
...                          "systolic_bp": [150.0, 182.0], "diastolic_bp": [95.0, 100.0], "heart_rate": [80.0, 88.0]})
>>> [(f.measured_at, f.measure, f.severity) for f in vital_sign_findings(readings, SafetySpec())]
[('2024-03-01T11:00', 'systolic_bp', 'urgent'), ('2024-03-01T11:00', 'diastolic_bp', 'warning')]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from alliance.protocol.safety import VITAL_SIGN_MEASURES, VITAL_SIGN_UNITS, SafetySpec

__all__ = ["WASHOUT_KINDS", "VitalSignFinding", "WashoutFinding", "first_dose_dates", "vital_sign_findings",
           "washout_findings"]

WASHOUT_KINDS = ("ongoing", "within_washout")


@dataclass(frozen=True)
class VitalSignFinding:
    """One reading at or above a threshold of the protocol's ``safety.vital_signs``.

    Attributes
    ----------
    participant_id : str
    session : int
        The dosing session.
    measured_at : str
        As ``vital_signs.csv`` writes it.
    measure : str
        ``systolic_bp``, ``diastolic_bp`` or ``heart_rate``.
    value : float
        The reading (mmHg, bpm).
    threshold : float
        The threshold it reached (the urgent one when it reached both).
    severity : str
        ``urgent`` or ``warning``.
    """

    participant_id: str
    session: int
    measured_at: str
    measure: str
    value: float
    threshold: float
    severity: str

    @property
    def unit(self) -> str:
        return VITAL_SIGN_UNITS[self.measure]

    @property
    def reason(self) -> str:
        """In words: ``systolic_bp 182 mmHg at or above the urgent threshold 180``."""
        return (f"{self.measure} {self.value:g} {self.unit} at or above the {self.severity} threshold "
                f"{self.threshold:g}")

    def to_dict(self) -> dict[str, Any]:
        return {"participant_id": self.participant_id, "session": self.session, "measured_at": self.measured_at,
                "measure": self.measure, "value": self.value, "threshold": self.threshold,
                "severity": self.severity, "unit": self.unit, "reason": self.reason}


@dataclass(frozen=True)
class WashoutFinding:
    """A medication of a washout rule taken at the first dose or too close before it.

    Attributes
    ----------
    participant_id : str
    medication : str
        The name as ``concomitant_medications.csv`` writes it.
    start : date
    stop : date or None
        ``None``: ongoing.
    first_dose : date
    kind : str
        ``ongoing`` (taken on the day of the first dose) or ``within_washout`` (stopped fewer
        than ``days_required`` days before it); the rules: the module docstring.
    days_required : int
        The rule's ``days``.
    days_before : int or None
        Days from ``stop`` to ``first_dose`` (``within_washout``); ``None`` when ``ongoing``.
    source : str
        The rule's source.
    """

    participant_id: str
    medication: str
    start: dt.date
    stop: dt.date | None
    first_dose: dt.date
    kind: str
    days_required: int
    days_before: int | None
    source: str

    @property
    def reason(self) -> str:
        if self.kind == "ongoing":
            return (f"{self.medication} taken on the day of the first dose ({self.first_dose.isoformat()}); "
                    f"the protocol asks {self.days_required} days of washout")
        return (f"{self.medication} stopped {self.days_before} days before the first dose "
                f"({self.first_dose.isoformat()}); the protocol asks {self.days_required}")

    def to_dict(self) -> dict[str, Any]:
        return {"participant_id": self.participant_id, "medication": self.medication,
                "start": self.start.isoformat(), "stop": None if self.stop is None else self.stop.isoformat(),
                "first_dose": self.first_dose.isoformat(), "kind": self.kind, "days_required": self.days_required,
                "days_before": self.days_before, "source": self.source, "reason": self.reason}


def vital_sign_findings(vital_signs: pd.DataFrame, spec: SafetySpec) -> list[VitalSignFinding]:
    """Every reading at or above a threshold of the protocol's ``safety.vital_signs``.

    Parameters
    ----------
    vital_signs : DataFrame
        ``vital_signs.csv`` as validated (``Study.vital_signs``): ``participant_id``, ``session``,
        ``measured_at`` and any of ``systolic_bp``, ``diastolic_bp``, ``heart_rate``.
    spec : SafetySpec
        The protocol's ``safety:`` section (``protocol.safety``).

    Returns
    -------
    list of VitalSignFinding
        One per reading and measure that reached a threshold (``value >= threshold``; at or above
        the urgent one, only the urgent finding), in the table's row order, measures in the order
        systolic, diastolic, heart rate. An empty measure raises nothing.
    """
    thresholds = spec.vital_signs
    measures = [m for m in VITAL_SIGN_MEASURES if m in vital_signs.columns]
    values = {m: pd.to_numeric(vital_signs[m], errors="coerce").to_numpy(dtype=float, na_value=float("nan"))
              for m in measures}
    participant = vital_signs["participant_id"].astype("string").to_numpy(dtype=object)
    session = pd.to_numeric(vital_signs["session"], errors="coerce").to_numpy(dtype=float, na_value=float("nan"))
    measured_at = vital_signs["measured_at"].astype("string").to_numpy(dtype=object)
    findings = []
    for row in range(len(vital_signs)):
        for measure in measures:
            value = values[measure][row]
            if value != value:  # NaN: not measured
                continue
            severity, threshold = thresholds.crossed(measure, float(value))
            if severity is not None:
                findings.append(VitalSignFinding(str(participant[row]), int(session[row]), str(measured_at[row]),
                                                 measure, float(value), float(threshold), severity))
    return findings


def washout_findings(medications: pd.DataFrame, first_dose_dates: pd.Series,
                     spec: SafetySpec) -> list[WashoutFinding]:
    """Every medication of a washout rule taken at the first dose or fewer than the rule's days before it.

    Parameters
    ----------
    medications : DataFrame
        ``concomitant_medications.csv`` as validated (``Study.concomitant_medications``):
        ``participant_id``, ``name``, ``start``, ``stop`` (``YYYY-MM-DD``; empty: ongoing).
    first_dose_dates : Series
        Participant id (index) → the first dose's date (``YYYY-MM-DD`` text, a date or a
        timestamp; its time of day is not used), e.g. :func:`first_dose_dates` of the dosing
        sessions, or the planned date before dosing.
    spec : SafetySpec
        The protocol's ``safety:`` section; without washout rules, no finding.

    Returns
    -------
    list of WashoutFinding
        In the table's row order. Which dates count: the module docstring.
    """
    if not spec.washout or medications is None or not len(medications):
        return []
    first_dose = {str(k): _date(v) for k, v in first_dose_dates.items()}
    findings = []
    for row in medications.itertuples(index=False):
        record = row._asdict()
        name, participant = record.get("name"), str(record.get("participant_id"))
        dose_day, start = first_dose.get(participant), _date(record.get("start"))
        if dose_day is None or start is None or not isinstance(name, str) or start > dose_day:
            continue
        stop = _date(record.get("stop"))
        for rule in spec.washout:
            if not rule.matches(name):
                continue
            if stop is None or stop >= dose_day:
                findings.append(WashoutFinding(participant, name, start, stop, dose_day, "ongoing", rule.days,
                                               None, rule.source))
            elif (dose_day - stop).days < rule.days:
                findings.append(WashoutFinding(participant, name, start, stop, dose_day, "within_washout",
                                               rule.days, (dose_day - stop).days, rule.source))
    return findings


def first_dose_dates(dosing_sessions: pd.DataFrame | None) -> pd.Series:
    """Each participant's first dose date: the ``date`` of dosing session 1 of ``dosing_sessions.csv``.

    Parameters
    ----------
    dosing_sessions : DataFrame or None
        ``participant_id``, ``session``, ``date``.

    Returns
    -------
    Series
        Participant id → ``datetime.date``; participants without a dated session 1 are left out.
    """
    if dosing_sessions is None or "date" not in dosing_sessions.columns:
        return pd.Series(dtype=object)
    first = dosing_sessions[pd.to_numeric(dosing_sessions["session"], errors="coerce") == 1]
    dates = {str(p): _date(d) for p, d in zip(first["participant_id"], first["date"], strict=True)}
    return pd.Series({p: d for p, d in dates.items() if d is not None}, dtype=object)


def _date(value: Any) -> dt.date | None:
    """A date from ``YYYY-MM-DD`` text (or an ISO date-time), a date or a timestamp; ``None`` when missing."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    timestamp = pd.Timestamp(text)
    return None if pd.isna(timestamp) else timestamp.date()
