"""The ``safety:`` section of a protocol: vital-sign thresholds of a dosing day and medication washouts.

Schema (``docs/protocol.md``, "Safety")::

    safety:
      vital_signs:                      # optional; without it, the defaults below
        warning: {systolic_bp: 160, diastolic_bp: 100, heart_rate: 120}
        urgent: {systolic_bp: 180, diastolic_bp: 120}
        source: ...                     # required with vital_signs: where the numbers come from
      washout:                          # optional; without it, no washout rule
        - medications: [sertraline, fluoxetine]   # names, matched case-insensitively, whole name
          days: 14                      # the medication stopped at least this many days before the first dose
          source: ...                   # required

**The comparison is "at or above" (≥).** A reading at or above a threshold raises a finding of
that severity; a reading at or above both the warning and the urgent threshold raises one finding,
urgent. The threshold is thus the first value that raises the finding, and one rule holds for every
threshold of every file. The default urgent thresholds are the hypertensive crisis of the 2017
ACC/AHA guideline (Whelton et al. 2018: systolic above 180 and/or diastolic above 120 mmHg), which
is "above": at ≥ a reading of exactly 180 systolic or 120 diastolic is urgent here too, one mmHg
on the cautious side of the guideline. The default warning thresholds (160 systolic, 100 diastolic,
heart rate 120 bpm) are **our choices**: values that should prompt a conversation and a repeat
reading during the session, not validated cut-offs. No heart rate is urgent by default.

A ``vital_signs:`` mapping replaces the defaults whole: the measures it lists under ``warning`` and
``urgent`` are watched, the others are not. An urgent threshold at or below the warning threshold
of the same measure is refused (the warning could never be raised).

**Washout.** The default protocol has no washout rule: the Levin et al. (2024) trial excluded
participants using antidepressants, but its design (Davis et al. 2021) says only "not currently
using antidepressant medications", naming neither the drugs nor a washout length, so any list and
number of days here would be ours, not the trial's. A site states its own, with its source. How a
rule is applied (which dates count): :func:`alliance.monitoring.safety_checks.washout_findings`.

References
----------
Whelton PK, Carey RM, Aronow WS, et al. (2018). 2017 ACC/AHA/AAPA/ABC/ACPM/AGS/APhA/ASH/ASPC/NMA/PCNA
guideline for the prevention, detection, evaluation, and management of high blood pressure in
adults. Hypertension 71(6):e13-e115. Davis AK et al. (2021). Effects of psilocybin-assisted therapy
on major depressive disorder: a randomized clinical trial. JAMA Psychiatry 78(5):481-489.

Examples
--------
>>> spec = SafetySpec()
>>> spec.vital_signs.severity("systolic_bp", 180.0), spec.vital_signs.severity("systolic_bp", 179.0)
('urgent', 'warning')
>>> spec.vital_signs.severity("heart_rate", 119.0) is None
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import Reader

__all__ = ["DEFAULT_VITAL_SIGNS", "SEVERITIES", "VITAL_SIGN_MEASURES", "VITAL_SIGN_UNITS", "SafetySpec",
           "VitalSignThresholds", "WashoutRule", "medication_key", "read_safety"]

VITAL_SIGN_MEASURES = ("systolic_bp", "diastolic_bp", "heart_rate")
VITAL_SIGN_UNITS = {"systolic_bp": "mmHg", "diastolic_bp": "mmHg", "heart_rate": "bpm"}
SEVERITIES = ("warning", "urgent")
# A threshold is a reading: bounded like the readings of vital_signs.csv are (alliance.study.vital_signs).
MAX_THRESHOLD = 300
MAX_WASHOUT_DAYS = 365
_KEYS = ("vital_signs", "washout")
_VITAL_KEYS = ("warning", "urgent", "source")
_WASHOUT_KEYS = ("medications", "days", "source")
DEFAULT_SOURCE = ("urgent: the hypertensive crisis of the 2017 ACC/AHA guideline, Whelton PK et al. (2018) "
                  "Hypertension 71(6):e13-e115 (there: above 180/120 mmHg; here at or above); warning: "
                  "alliance's choices, for a conversation during the session, not validated cut-offs")


@dataclass(frozen=True)
class VitalSignThresholds:
    """When a reading of ``vital_signs.csv`` raises a finding (the ``vital_signs:`` mapping).

    Attributes
    ----------
    warning, urgent : dict
        Measure (:data:`VITAL_SIGN_MEASURES`) → the reading (mmHg, bpm) at or above which a
        finding of that severity is raised; a measure left out raises none of that severity.
    source : str
        Where the numbers come from.
    """

    warning: dict[str, float]
    urgent: dict[str, float]
    source: str

    def severity(self, measure: str, value: float) -> str | None:
        """``"urgent"``, ``"warning"`` or ``None`` for one reading (≥ each threshold; urgent wins)."""
        return self.crossed(measure, value)[0]

    def crossed(self, measure: str, value: float) -> tuple[str | None, float | None]:
        """The severity of one reading and the threshold it reached, or ``(None, None)``."""
        for severity, thresholds in (("urgent", self.urgent), ("warning", self.warning)):
            threshold = thresholds.get(measure)
            if threshold is not None and value >= threshold:
                return severity, threshold
        return None, None

    def to_dict(self) -> dict[str, Any]:
        return {"warning": dict(self.warning), "urgent": dict(self.urgent), "source": self.source}


DEFAULT_VITAL_SIGNS = VitalSignThresholds(warning={"systolic_bp": 160.0, "diastolic_bp": 100.0, "heart_rate": 120.0},
                                          urgent={"systolic_bp": 180.0, "diastolic_bp": 120.0},
                                          source=DEFAULT_SOURCE)


def medication_key(name: str) -> str:
    """A medication name as washout rules compare it: the whole name, case-folded, outer spaces removed.

    >>> medication_key("  Sertraline ") == medication_key("SERTRALINE")
    True
    """
    return " ".join(str(name).split()).casefold()


@dataclass(frozen=True)
class WashoutRule:
    """One washout rule (an entry of ``washout:``).

    Attributes
    ----------
    medications : tuple of str
        The names as the protocol writes them; matched by :func:`medication_key` (whole name,
        case-insensitive): ``sertraline`` matches ``Sertraline``, not ``sertraline hydrochloride``.
    days : int
        The fewest days between the last day a medication was taken and the first dose.
    source : str
    """

    medications: tuple[str, ...]
    days: int
    source: str

    def matches(self, name: str) -> bool:
        return medication_key(name) in {medication_key(m) for m in self.medications}

    def to_dict(self) -> dict[str, Any]:
        return {"medications": list(self.medications), "days": self.days, "source": self.source}


@dataclass(frozen=True)
class SafetySpec:
    """The protocol's ``safety:`` section, checked (without it: the default thresholds, no washout).

    Attributes
    ----------
    vital_signs : VitalSignThresholds
    washout : tuple of WashoutRule
    """

    vital_signs: VitalSignThresholds = field(default_factory=lambda: DEFAULT_VITAL_SIGNS)
    washout: tuple[WashoutRule, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"vital_signs": self.vital_signs.to_dict(), "washout": [w.to_dict() for w in self.washout]}


def read_safety(r: Reader, raw: Any) -> SafetySpec:
    """Read and check a protocol's ``safety:`` section.

    Parameters
    ----------
    r : Reader
        Problems are recorded here, with YAML paths starting at ``safety``.
    raw : mapping or None

    Returns
    -------
    SafetySpec
        The defaults without the section (or without its ``vital_signs:``); meaningful only when
        ``r`` recorded no problem.
    """
    if raw is None:
        return SafetySpec()
    section = r.mapping(raw, "safety", _KEYS)
    vital_signs = DEFAULT_VITAL_SIGNS
    if section.get("vital_signs") is not None:
        vital_signs = _read_vital_signs(r, section["vital_signs"])
    return SafetySpec(vital_signs=vital_signs, washout=_read_washout(r, section.get("washout")))


def _read_vital_signs(r: Reader, raw: Any) -> VitalSignThresholds:
    key = "safety.vital_signs"
    before = len(r.problems)
    section = r.mapping(raw, key, _VITAL_KEYS, ("source",))
    levels: dict[str, dict[str, float]] = {}
    for severity in SEVERITIES:
        where = f"{key}.{severity}"
        entries = section.get(severity)
        levels[severity] = {}
        if entries is None:
            continue
        if not isinstance(entries, dict):
            r.problem(where, entries, "is not a mapping of measures to thresholds",
                      "{measure: reading}, measures " + ", ".join(VITAL_SIGN_MEASURES))
            continue
        for measure, value in entries.items():
            if measure not in VITAL_SIGN_MEASURES:
                r.problem(f"{where}.{measure}", measure, "is not a vital sign", ", ".join(VITAL_SIGN_MEASURES))
            elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or not 0 < value <= MAX_THRESHOLD:
                r.problem(f"{where}.{measure}", value, "is not a threshold",
                          f"a reading in {VITAL_SIGN_UNITS[measure]}, a number > 0 and ≤ {MAX_THRESHOLD}")
            else:
                levels[severity][measure] = float(value)
    if section and not levels["warning"] and not levels["urgent"] and len(r.problems) == before:
        r.problem(key, None, "lists no threshold", "warning: and/or urgent: with at least one measure, "
                  "or no vital_signs: for the defaults")
    for measure in VITAL_SIGN_MEASURES:
        warning, urgent = levels["warning"].get(measure), levels["urgent"].get(measure)
        if warning is not None and urgent is not None and urgent <= warning:
            r.problem(f"{key}.urgent.{measure}", section["urgent"][measure],
                      f"is not above the warning threshold ({section['warning'][measure]})",
                      "an urgent threshold above the warning one (at or above both, a reading is urgent)")
    source = section.get("source")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        r.problem(f"{key}.source", source, "is not a source", "the text naming where the thresholds come from")
    return VitalSignThresholds(warning=levels["warning"], urgent=levels["urgent"], source=str(source or ""))


def _read_washout(r: Reader, raw: Any) -> tuple[WashoutRule, ...]:
    key = "safety.washout"
    rules: list[WashoutRule] = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(r.listing(raw, key, "a list of {medications: [names], days: N, source: text}")):
        where = f"{key}[{i}]"
        rule = r.mapping(entry, where, _WASHOUT_KEYS, ("medications", "days", "source"))
        if not rule:
            continue
        names = rule.get("medications")
        medications: list[str] = []
        if names is not None and (not isinstance(names, list)
                                  or not all(isinstance(n, str) and n.strip() for n in names)):
            r.problem(f"{where}.medications", names, "is not a list of medication names",
                      "a non-empty list of names, e.g. [sertraline, fluoxetine]")
        else:
            for j, name in enumerate(names or []):
                name_key = medication_key(name)
                if name_key in seen:
                    r.problem(f"{where}.medications[{j}]", name, f"appears twice (also at {seen[name_key]})",
                              "each medication in one washout rule, once")
                    continue
                seen[name_key] = f"{where}.medications[{j}]"
                medications.append(name.strip())
        days = rule.get("days")
        if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                                 or not 1 <= days <= MAX_WASHOUT_DAYS):
            r.problem(f"{where}.days", days, "is not a number of days", f"a whole number 1-{MAX_WASHOUT_DAYS}")
        source = rule.get("source")
        if source is not None and not isinstance(source, str):
            r.problem(f"{where}.source", source, "is not a source", "the text naming where the rule comes from")
        rules.append(WashoutRule(tuple(medications), days if isinstance(days, int) else 0, str(source or "")))
    return tuple(rules)
