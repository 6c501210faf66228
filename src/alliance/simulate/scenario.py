"""Scenarios for synthetic trials: marginals, correlations, dosing, missing data.

A scenario is data (``levin2024_scenario.yaml`` is the calibrated default). Power analyses change
parts of it — an effect size, the attrition — with :meth:`Scenario.with_overrides`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from .copula import CalibrationError

_TOP_KEYS = {
    "id", "description", "marginals", "correlations", "default_marginal", "default_retest_correlation",
    "dosing", "items", "missing", "arms", "reliability", "safety",
}


@dataclass(frozen=True)
class Scenario:
    """What a synthetic trial should look like in the population.

    Attributes
    ----------
    marginals : dict
        Measure (``INSTRUMENT.SCALE@TIMEPOINT``) → ``{"mean", "sd"}`` in the scale's units or
        ``{"mean_pct", "sd_pct"}`` in percent of the scale's range.
    correlations : dict
        Frozen pair of measures → the Pearson correlation of their scores in the population.
    reliability : dict
        Instrument id → the Cronbach's alpha its primary scale should have in a simulated sample
        (the item noise is set from it, :func:`alliance.simulate.items.item_sd_for_alpha`);
        instruments not named get ``items.item_sd``.
    """

    id: str
    description: str
    marginals: dict[str, dict[str, float]]
    correlations: dict[frozenset, float]
    default_marginal: dict[str, float]
    default_retest_correlation: float
    dosing: dict[str, float]
    items: dict[str, float]
    missing: dict[str, float]
    arms: dict[str, Any] = field(default_factory=dict)
    reliability: dict[str, float] = field(default_factory=dict)
    safety: dict[str, Any] = field(default_factory=dict)

    def correlation(self, first: str, second: str) -> float | None:
        """The scenario's correlation of two measures, or ``None`` when it names none."""
        return self.correlations.get(frozenset((first, second)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "marginals": copy.deepcopy(self.marginals),
            "correlations": [[*sorted(pair), r] for pair, r in sorted(self.correlations.items(), key=lambda kv: sorted(kv[0]))],
            "default_marginal": dict(self.default_marginal),
            "default_retest_correlation": self.default_retest_correlation,
            "dosing": dict(self.dosing),
            "items": dict(self.items),
            "missing": dict(self.missing),
            "arms": copy.deepcopy(self.arms),
            "reliability": {i: {"alpha": a} for i, a in self.reliability.items()},
            "safety": copy.deepcopy(self.safety),
        }

    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        """A copy with parts replaced.

        Parameters
        ----------
        overrides : dict
            Same keys as the scenario file. ``marginals``, ``dosing``, ``items``, ``missing``,
            ``arms`` are merged key by key; ``correlations`` entries replace the pairs they name.

        Returns
        -------
        Scenario
        """
        merged = self.to_dict()
        for key, value in overrides.items():
            if key not in _TOP_KEYS:
                raise CalibrationError(f"scenario override: unknown key {key!r}; allowed keys are {sorted(_TOP_KEYS)}")
            if key == "correlations":
                table = {frozenset(p[:2]): p[2] for p in merged["correlations"]}
                for entry in value:
                    table[frozenset(entry[:2])] = entry[2]
                merged["correlations"] = [[*sorted(p), r] for p, r in table.items()]
            elif key == "marginals":
                for measure, moments in value.items():
                    merged["marginals"][measure] = dict(moments)
            elif isinstance(merged.get(key), dict) and isinstance(value, dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return scenario_from_dict(merged)


def scenario_from_dict(raw: dict[str, Any], origin: str = "scenario") -> Scenario:
    """Build a :class:`Scenario` from a mapping (as read from YAML), checking it.

    Parameters
    ----------
    raw : dict
    origin : str
        Named in error messages.

    Returns
    -------
    Scenario
    """
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise CalibrationError(f"{origin}: unknown keys {unknown}; allowed keys are {sorted(_TOP_KEYS)}")
    marginals = {}
    for measure, moments in (raw.get("marginals") or {}).items():
        keys = set(moments)
        if keys not in ({"mean", "sd"}, {"mean_pct", "sd_pct"}):
            raise CalibrationError(f"{origin}: marginal {measure}: give mean and sd, or mean_pct and sd_pct")
        marginals[measure] = {k: float(v) for k, v in moments.items()}
    correlations: dict[frozenset, float] = {}
    for entry in raw.get("correlations") or []:
        if len(entry) != 3 or entry[0] == entry[1]:
            raise CalibrationError(f"{origin}: correlation entry {entry!r} must be [measure, other measure, r]")
        r = float(entry[2])
        if not -1 < r < 1:
            raise CalibrationError(f"{origin}: correlation {entry!r} must lie strictly between -1 and 1")
        correlations[frozenset(entry[:2])] = r
    missing = {k: float(v) for k, v in (raw.get("missing") or {}).items()}
    for key, value in missing.items():
        if not 0 <= value < 1:
            raise CalibrationError(f"{origin}: missing.{key} = {value:g} must be a probability below 1")
    reliability = {}
    for instrument_id, entry in (raw.get("reliability") or {}).items():
        alpha = entry.get("alpha") if isinstance(entry, dict) and set(entry) <= {"alpha", "source"} else None
        if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise CalibrationError(f"{origin}: reliability.{instrument_id}: give alpha, a number between 0 and 1 "
                                   f"(found {entry!r})")
        reliability[str(instrument_id)] = float(alpha)
    return Scenario(
        id=str(raw.get("id") or "custom"),
        description=str(raw.get("description") or ""),
        marginals=marginals,
        correlations=correlations,
        default_marginal={k: float(v) for k, v in (raw.get("default_marginal") or {"mean_pct": 50.0, "sd_pct": 18.0}).items()},
        default_retest_correlation=float(raw.get("default_retest_correlation", 0.6)),
        dosing={k: float(v) for k, v in (raw.get("dosing") or {}).items()},
        items={k: float(v) for k, v in (raw.get("items") or {}).items()},
        missing=missing,
        arms=copy.deepcopy(raw.get("arms") or {}),
        reliability=reliability,
        safety=_safety_section(raw.get("safety"), origin),
    )


def _safety_section(raw: Any, origin: str) -> dict[str, Any]:
    """The ``safety:`` section (alliance.simulate.safety), checked for the probabilities it holds."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CalibrationError(f"{origin}: safety must be a mapping (instruments, adverse_events, vital_signs)")
    for instrument_id, config in (raw.get("instruments") or {}).items():
        for item, p in (config.get("yes_probability") or {}).items():
            if not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise CalibrationError(f"{origin}: safety.instruments.{instrument_id}.yes_probability.{item} = {p!r} "
                                       "must be a probability")
    for term, config in ((raw.get("adverse_events") or {}).get("terms") or {}).items():
        p = config.get("per_session")
        if not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise CalibrationError(f"{origin}: safety.adverse_events.terms.{term}.per_session = {p!r} must be a probability")
    return copy.deepcopy(raw)


def levin2024_scenario() -> Scenario:
    """The scenario calibrated to Levin et al. (2024) and Davis et al. (2021).

    Returns
    -------
    Scenario

    References
    ----------
    Levin AW et al. (2024). PLoS ONE 19(3):e0300501. Davis AK et al. (2021). JAMA Psychiatry
    78(5):481–489. Gukasyan N et al. (2022). J Psychopharmacol 36(2):151–158.
    """
    text = (resources.files(__package__) / "levin2024_scenario.yaml").read_text(encoding="utf-8")
    return scenario_from_dict(yaml.safe_load(text), origin="levin2024_scenario.yaml")
