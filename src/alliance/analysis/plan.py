"""The analysis plan: data in the protocol's ``analysis:`` section, checked and resolved here.

A plan names *roles* (which instrument measures the alliance, which measures are the acute
experience, which scale is the depression outcome) and a list of *analyses*, each of which refers
to measures by role (``alliance@pre_dosing``, ``outcome@follow_ups``) or by full name
(``meq30.total@peak``). :func:`resolve_plan` turns those references into the measure names of one
protocol (``wai_sr.total@prep`` …), dropping — and listing — the measures the protocol does not
administer, so the default plan runs unchanged on a protocol without, say, the EBI.

The schema is documented in ``docs/analysis.md``; the default plan is
``alliance/analysis/levin2024_plan.yaml``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from alliance import instruments

__all__ = [
    "ANALYSIS_TYPES",
    "AnalysisPlan",
    "AnalysisPlanError",
    "AnalysisSpec",
    "Dropped",
    "ResolvedAnalysis",
    "ResolvedPlan",
    "default_plan",
    "parse_plan",
    "plan_for_protocol",
    "resolve_plan",
]

DEFAULT_PLAN_FILE = "levin2024_plan.yaml"
ROLES = ("alliance", "acute", "outcome")
P_ADJUST_METHODS = ("holm", "hochberg", "bonferroni", "bh", "by")
CORRELATION_METHODS = ("pearson", "spearman")
BOOTSTRAP_CI = ("percentile", "bca")
ALLIANCE_WHEN = ("all", "pre_dosing", "last_pre_dosing", "first", "last")
OUTCOME_WHEN = ("follow_ups", "baseline", "all")

# Keys each analysis type takes beyond id/type/family; required ones are listed separately.
ANALYSIS_TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    "alliance_change": {"optional": ("scales", "pairs"), "required": ()},
    "alliance_mixed_model": {"optional": ("formula", "scales"), "required": ()},
    "correlation": {"optional": ("method",), "required": ("x", "y")},
    "partial_correlation": {"optional": ("method",), "required": ("x", "y", "covariates")},
    "mediation": {"optional": ("covariates", "n_boot", "ci"), "required": ("x", "m", "y")},
    "outcome_mixed_model": {"optional": ("formula",), "required": ()},
    "response_remission": {"optional": (), "required": ()},
    "reliability": {"optional": ("instruments", "omega"), "required": ()},
}
TOP_KEYS = ("seed", "p_adjust", "correlation_method", "n_boot", "bootstrap_ci", "roles", "analyses")
DEFAULT_FORMULAS = {
    "alliance_mixed_model": "value ~ timepoint + (1|participant)",
    "outcome_mixed_model": "value ~ timepoint * arm + (1|participant)",
}


class AnalysisPlanError(ValueError):
    """The analysis plan does not follow the schema of ``docs/analysis.md``.

    Attributes
    ----------
    problems : list of str
        Every problem found, each naming its place (``analysis.analyses[2].x``), the value and what
        is allowed.
    """

    def __init__(self, problems: list[str], origin: str = "analysis"):
        self.problems = list(problems)
        self.origin = origin
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the analysis plan ({origin}):\n{listing}")


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis of the plan, as written (references not yet resolved).

    Attributes
    ----------
    id : str
        Unique name, used in the results (``analysis`` field of every entry).
    type : str
        One of :data:`ANALYSIS_TYPES`.
    family : str or None
        Label of the multiple-testing family: p-values of all entries with the same family
        (across analyses) are adjusted together.
    options : dict
        The remaining keys (``x``, ``y``, ``formula`` …) as written.
    """

    id: str
    type: str
    family: str | None
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "type": self.type}
        if self.family is not None:
            out["family"] = self.family
        out.update(copy.deepcopy(self.options))
        return out


@dataclass(frozen=True)
class AnalysisPlan:
    """A validated analysis plan (see ``docs/analysis.md``).

    Attributes
    ----------
    seed : int
        Seed of every bootstrap.
    p_adjust : str
        Adjustment method within each family (``holm`` by default).
    correlation_method : str
        ``pearson`` or ``spearman``; an analysis may override it with ``method``.
    n_boot : int
        Bootstrap resamples of each indirect effect.
    bootstrap_ci : str
        ``percentile`` or ``bca``.
    roles : dict
        ``alliance`` (instrument, scales), ``acute`` (timepoint, measures) and ``outcome``
        (measure, baseline, optional follow_ups).
    analyses : tuple of AnalysisSpec
    """

    seed: int
    p_adjust: str
    correlation_method: str
    n_boot: int
    bootstrap_ci: str
    roles: dict[str, dict[str, Any]]
    analyses: tuple[AnalysisSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        """The plan as the mapping it was read from (complete, with defaults filled in)."""
        return {
            "seed": self.seed,
            "p_adjust": self.p_adjust,
            "correlation_method": self.correlation_method,
            "n_boot": self.n_boot,
            "bootstrap_ci": self.bootstrap_ci,
            "roles": copy.deepcopy(self.roles),
            "analyses": [spec.to_dict() for spec in self.analyses],
        }


# ----------------------------------------------------------------------------------------------
# Reading and checking a plan
# ----------------------------------------------------------------------------------------------


@cache
def _default_raw() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(DEFAULT_PLAN_FILE).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def default_plan() -> AnalysisPlan:
    """The default analysis plan (Levin et al. 2024 + Murphy et al. 2022 mediation).

    Returns
    -------
    AnalysisPlan
        Parsed from ``alliance/analysis/levin2024_plan.yaml``.
    """
    return parse_plan(_default_raw(), origin=DEFAULT_PLAN_FILE)


def plan_for_protocol(protocol) -> AnalysisPlan:
    """The plan of a protocol: its ``analysis`` section, with missing top-level keys from the default.

    Parameters
    ----------
    protocol : alliance.study.Protocol
        Its ``analysis`` attribute is a mapping (possibly empty) or None.

    Returns
    -------
    AnalysisPlan

    Raises
    ------
    AnalysisPlanError
        Listing every problem of the section.
    """
    section = getattr(protocol, "analysis", None)
    return parse_plan(section or {}, origin="protocol analysis section", fill_defaults=True)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_choice(problems: list[str], where: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        problems.append(f"{where}: {value!r} is not allowed; use one of {', '.join(allowed)}")


def _string_list(problems: list[str], where: str, value: Any) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        problems.append(f"{where}: expected a name or a non-empty list of names; got {value!r}")
        return []
    return list(values)


def _check_scales(problems: list[str], where: str, instrument_id: str, scales: list[str]) -> None:
    try:
        definition = instruments.get(instrument_id)
    except instruments.UnknownInstrumentError as error:
        problems.append(f"{where}: {error}")
        return
    known = [scale.id for scale in definition.scales]
    for scale in scales:
        if scale not in known and not (scale.endswith("_pct") and scale.removesuffix("_pct") in known):
            problems.append(f"{where}: {instrument_id} has no scale {scale!r}; its scales are {', '.join(known)}")


def _check_measure_name(problems: list[str], where: str, name: str, need_timepoint: bool) -> None:
    """Check ``instrument.scale`` (or ``instrument.scale@timepoint``) against the instrument bank."""
    base, _, timepoint = name.partition("@")
    if need_timepoint and not timepoint:
        problems.append(f"{where}: measure {name!r} has no timepoint; write INSTRUMENT.SCALE@TIMEPOINT")
    if "." not in base:
        problems.append(f"{where}: {name!r} is not a measure name INSTRUMENT.SCALE[@TIMEPOINT]")
        return
    instrument_id, scale = base.split(".", 1)
    _check_scales(problems, where, instrument_id, [scale])


def _check_reference(problems: list[str], where: str, reference: Any, roles: dict[str, Any]) -> None:
    """Check one measure reference: ``ROLE[.SCALE][@WHEN]`` or ``INSTRUMENT.SCALE@TIMEPOINT``."""
    if not isinstance(reference, str) or not reference:
        problems.append(f"{where}: expected a measure reference such as 'alliance@pre_dosing'; got {reference!r}")
        return
    base, _, when = reference.partition("@")
    head, _, scale = base.partition(".")
    if head not in ROLES:
        _check_measure_name(problems, where, reference, need_timepoint=True)
        return
    if head == "alliance":
        alliance = roles.get("alliance") or {}
        if scale and scale not in alliance.get("scales", ()):
            problems.append(
                f"{where}: {reference!r} names alliance scale {scale!r}, which roles.alliance.scales "
                f"({alliance.get('scales')}) does not list"
            )
    elif scale:
        problems.append(f"{where}: {reference!r}: only the alliance role takes a scale (alliance.total)")
    if head == "acute" and when:
        problems.append(f"{where}: {reference!r}: the acute role is at roles.acute.timepoint; write 'acute'")
    if head == "outcome" and when and when in ALLIANCE_WHEN[1:]:
        problems.append(f"{where}: {reference!r}: outcome takes @follow_ups, @baseline, @all or a timepoint id")
    if head == "alliance" and when and not when.isidentifier():
        problems.append(f"{where}: {reference!r}: {when!r} is not a timepoint id nor one of {', '.join(ALLIANCE_WHEN)}")


def _references(problems: list[str], where: str, value: Any, roles: dict[str, Any]) -> list[str]:
    references = _string_list(problems, where, value)
    for index, reference in enumerate(references):
        _check_reference(problems, f"{where}[{index}]" if isinstance(value, list) else where, reference, roles)
    return references


def _check_roles(problems: list[str], roles: Any) -> dict[str, Any]:
    where = "analysis.roles"
    if not isinstance(roles, dict):
        problems.append(f"{where}: expected a mapping with keys {', '.join(ROLES)}; got {roles!r}")
        return {}
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        problems.append(f"{where}: unknown role(s) {unknown}; roles are {', '.join(ROLES)}")
    alliance = roles.get("alliance")
    if not isinstance(alliance, dict) or set(alliance) - {"instrument", "scales"} or "instrument" not in alliance:
        problems.append(f"{where}.alliance: expected {{instrument: ID, scales: [SCALE, ...]}}; got {alliance!r}")
    else:
        scales = _string_list(problems, f"{where}.alliance.scales", alliance.get("scales", ["total"]))
        _check_scales(problems, f"{where}.alliance.scales", alliance["instrument"], scales)
    acute = roles.get("acute")
    if not isinstance(acute, dict) or set(acute) != {"timepoint", "measures"}:
        problems.append(f"{where}.acute: expected {{timepoint: ID, measures: [INSTRUMENT.SCALE, ...]}}; got {acute!r}")
    else:
        if not isinstance(acute["timepoint"], str):
            problems.append(f"{where}.acute.timepoint: expected a timepoint id; got {acute['timepoint']!r}")
        for index, measure in enumerate(_string_list(problems, f"{where}.acute.measures", acute["measures"])):
            if "@" in measure:
                problems.append(f"{where}.acute.measures[{index}]: {measure!r}: give INSTRUMENT.SCALE without @")
            else:
                _check_measure_name(problems, f"{where}.acute.measures[{index}]", measure, need_timepoint=False)
    outcome = roles.get("outcome")
    allowed = {"measure", "baseline", "follow_ups"}
    if not isinstance(outcome, dict) or set(outcome) - allowed or not {"measure", "baseline"} <= set(outcome):
        problems.append(
            f"{where}.outcome: expected {{measure: INSTRUMENT.SCALE, baseline: TIMEPOINT, "
            f"follow_ups: [TIMEPOINT, ...] (optional)}}; got {outcome!r}"
        )
    else:
        measure = outcome["measure"]
        if not isinstance(measure, str) or "@" in measure:
            problems.append(f"{where}.outcome.measure: expected INSTRUMENT.SCALE; got {measure!r}")
        else:
            _check_measure_name(problems, f"{where}.outcome.measure", measure, need_timepoint=False)
        if not isinstance(outcome["baseline"], str):
            problems.append(f"{where}.outcome.baseline: expected a timepoint id; got {outcome['baseline']!r}")
        if "follow_ups" in outcome and outcome["follow_ups"] is not None:
            _string_list(problems, f"{where}.outcome.follow_ups", outcome["follow_ups"])
    return roles


def _check_analysis(problems: list[str], index: int, raw: Any, roles: dict[str, Any], seen: set[str]) -> AnalysisSpec | None:
    where = f"analysis.analyses[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping with id and type; got {raw!r}")
        return None
    kind = raw.get("type")
    if kind not in ANALYSIS_TYPES:
        problems.append(f"{where}.type: {kind!r} is not an analysis type; types are {', '.join(ANALYSIS_TYPES)}")
        return None
    identifier = raw.get("id")
    if not isinstance(identifier, str) or not identifier.isidentifier():
        problems.append(f"{where}.id: expected a name of letters, digits and _; got {identifier!r}")
        identifier = f"{kind}_{index}"
    elif identifier in seen:
        problems.append(f"{where}.id: {identifier!r} is used by an earlier analysis; ids must be unique")
    seen.add(identifier)
    where = f"analysis.analyses[{index}] ({identifier})"
    keys = ANALYSIS_TYPES[kind]
    allowed = {"id", "type", "family", *keys["optional"], *keys["required"]}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        problems.append(f"{where}: unknown key(s) {unknown} for type {kind}; allowed: {', '.join(sorted(allowed))}")
    for key in keys["required"]:
        if key not in raw:
            problems.append(f"{where}: missing required key {key!r} for type {kind}")
    family = raw.get("family")
    if family is not None and not isinstance(family, str):
        problems.append(f"{where}.family: expected a name; got {family!r}")
    for key in ("x", "y", "m", "covariates"):
        if key in raw:
            _references(problems, f"{where}.{key}", raw[key], roles)
    if "method" in raw:
        _check_choice(problems, f"{where}.method", raw["method"], CORRELATION_METHODS)
    if "ci" in raw:
        _check_choice(problems, f"{where}.ci", raw["ci"], BOOTSTRAP_CI)
    if "n_boot" in raw and (not _is_int(raw["n_boot"]) or raw["n_boot"] < 100):
        problems.append(f"{where}.n_boot: expected a whole number of at least 100; got {raw['n_boot']!r}")
    if "pairs" in raw:
        _check_choice(problems, f"{where}.pairs", raw["pairs"], ("all", "first_last"))
    if "formula" in raw:
        formula = raw["formula"]
        if not isinstance(formula, str) or not formula.replace(" ", "").startswith("value~"):
            problems.append(f"{where}.formula: expected an lme4 formula on 'value', e.g. "
                            f"{DEFAULT_FORMULAS[kind]!r}; got {formula!r}")
        elif "timepoint" not in formula or "participant" not in formula:
            problems.append(f"{where}.formula: {formula!r} must use the columns timepoint and participant")
    if "scales" in raw:
        scales = _string_list(problems, f"{where}.scales", raw["scales"])
        known = (roles.get("alliance") or {}).get("scales", [])
        for scale in scales:
            if scale not in known:
                problems.append(f"{where}.scales: {scale!r} is not one of roles.alliance.scales {known}")
    if "instruments" in raw:
        for instrument_id in _string_list(problems, f"{where}.instruments", raw["instruments"]):
            try:
                instruments.get(instrument_id)
            except instruments.UnknownInstrumentError as error:
                problems.append(f"{where}.instruments: {error}")
    if "omega" in raw and not isinstance(raw["omega"], bool):
        problems.append(f"{where}.omega: expected true or false; got {raw['omega']!r}")
    options = {key: copy.deepcopy(value) for key, value in raw.items() if key not in ("id", "type", "family")}
    if kind in DEFAULT_FORMULAS:
        options.setdefault("formula", DEFAULT_FORMULAS[kind])
    return AnalysisSpec(id=identifier, type=kind, family=family, options=options)


def parse_plan(raw: Mapping[str, Any], origin: str = "analysis", fill_defaults: bool = True) -> AnalysisPlan:
    """Check an analysis-plan mapping and return it as an :class:`AnalysisPlan`.

    Parameters
    ----------
    raw : mapping
        The ``analysis:`` section of a protocol (schema in ``docs/analysis.md``).
    origin : str
        Where it came from, for error messages.
    fill_defaults : bool, default True
        Take every top-level key that ``raw`` leaves out from the default plan, so that a protocol
        can, for example, change only ``roles`` or only ``seed``.

    Returns
    -------
    AnalysisPlan

    Raises
    ------
    AnalysisPlanError
        Listing every problem found (not only the first), each with its place and the allowed values.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise AnalysisPlanError([f"analysis: expected a mapping; got {type(raw).__name__} {raw!r}"], origin)
    merged = dict(raw)
    if fill_defaults and origin != DEFAULT_PLAN_FILE:
        for key, value in _default_raw().items():
            merged.setdefault(key, copy.deepcopy(value))
    problems: list[str] = []
    unknown = sorted(set(merged) - set(TOP_KEYS))
    if unknown:
        problems.append(f"analysis: unknown key(s) {unknown}; allowed: {', '.join(TOP_KEYS)}")
    missing = [key for key in TOP_KEYS if key not in merged]
    if missing:
        problems.append(f"analysis: missing key(s) {missing}")
        raise AnalysisPlanError(problems, origin)
    if not _is_int(merged["seed"]) or merged["seed"] < 0:
        problems.append(f"analysis.seed: expected a non-negative whole number; got {merged['seed']!r}")
    _check_choice(problems, "analysis.p_adjust", merged["p_adjust"], P_ADJUST_METHODS)
    _check_choice(problems, "analysis.correlation_method", merged["correlation_method"], CORRELATION_METHODS)
    _check_choice(problems, "analysis.bootstrap_ci", merged["bootstrap_ci"], BOOTSTRAP_CI)
    if not _is_int(merged["n_boot"]) or merged["n_boot"] < 100:
        problems.append(f"analysis.n_boot: expected a whole number of at least 100; got {merged['n_boot']!r}")
    roles = _check_roles(problems, merged["roles"])
    analyses = merged["analyses"]
    specs: list[AnalysisSpec] = []
    if not isinstance(analyses, list):
        problems.append(f"analysis.analyses: expected a list of analyses; got {analyses!r}")
    else:
        seen: set[str] = set()
        for index, item in enumerate(analyses):
            spec = _check_analysis(problems, index, item, roles if isinstance(roles, dict) else {}, seen)
            if spec is not None:
                specs.append(spec)
    if problems:
        raise AnalysisPlanError(problems, origin)
    roles = copy.deepcopy(roles)
    roles["alliance"].setdefault("scales", ["total"])
    return AnalysisPlan(
        seed=merged["seed"],
        p_adjust=merged["p_adjust"],
        correlation_method=merged["correlation_method"],
        n_boot=merged["n_boot"],
        bootstrap_ci=merged["bootstrap_ci"],
        roles=roles,
        analyses=tuple(specs),
    )


# ----------------------------------------------------------------------------------------------
# Resolving a plan against a protocol
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dropped:
    """A measure (or a whole analysis) the protocol cannot provide, and why."""

    analysis: str
    reference: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"analysis": self.analysis, "reference": self.reference, "reason": self.reason}


@dataclass(frozen=True)
class ResolvedAnalysis:
    """An analysis whose references are measure names of one protocol.

    ``measures`` maps each reference key (``x``, ``y``, ``m``, ``covariates``) to the measure names
    it resolved to; ``skipped`` says why the analysis cannot run at all (None when it can).
    """

    spec: AnalysisSpec
    measures: dict[str, tuple[str, ...]]
    skipped: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def family(self) -> str | None:
        return self.spec.family


@dataclass(frozen=True)
class ResolvedPlan:
    """A plan applied to one protocol.

    Attributes
    ----------
    plan : AnalysisPlan
    alliance_instrument : str
    alliance_scales : tuple of str
    alliance_timepoints : tuple of str
        Protocol timepoints that administer the alliance instrument, in protocol order.
    pre_dosing_timepoints : tuple of str
        Those before the first dosing timepoint.
    acute_timepoint : str
    acute_measures : tuple of str
        Full names (``meq30.total@peak``) of the acute measures the protocol administers.
    outcome_measure : str
        ``instrument.scale`` of the outcome.
    outcome_baseline : str or None
    follow_ups : tuple of str
    analyses : tuple of ResolvedAnalysis
    dropped : tuple of Dropped
    arms : tuple of str
        Arm ids in protocol order (the first is the reference level of ``arm``).
    timepoint_order : dict
        Timepoint id (including derived ones) → position used for ordering.
    """

    plan: AnalysisPlan
    alliance_instrument: str
    alliance_scales: tuple[str, ...]
    alliance_timepoints: tuple[str, ...]
    pre_dosing_timepoints: tuple[str, ...]
    acute_timepoint: str
    acute_measures: tuple[str, ...]
    outcome_measure: str
    outcome_baseline: str | None
    follow_ups: tuple[str, ...]
    analyses: tuple[ResolvedAnalysis, ...]
    dropped: tuple[Dropped, ...]
    arms: tuple[str, ...]
    timepoint_order: dict[str, float]

    @property
    def outcome_instrument(self) -> str:
        return self.outcome_measure.split(".", 1)[0]

    @property
    def outcome_timepoints(self) -> tuple[str, ...]:
        """Baseline (when the protocol has it) followed by the follow-ups."""
        return ((self.outcome_baseline,) if self.outcome_baseline else ()) + self.follow_ups

    def alliance_measures(self, scale: str | None = None) -> tuple[str, ...]:
        """``wai_sr.SCALE@TIMEPOINT`` for every alliance scale (or one) and timepoint."""
        scales = (scale,) if scale else self.alliance_scales
        return tuple(f"{self.alliance_instrument}.{s}@{t}" for s in scales for t in self.alliance_timepoints)

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(),
            "roles": {
                "alliance": {"instrument": self.alliance_instrument, "scales": list(self.alliance_scales),
                             "timepoints": list(self.alliance_timepoints),
                             "pre_dosing_timepoints": list(self.pre_dosing_timepoints)},
                "acute": {"timepoint": self.acute_timepoint, "measures": list(self.acute_measures)},
                "outcome": {"measure": self.outcome_measure, "baseline": self.outcome_baseline,
                            "follow_ups": list(self.follow_ups)},
            },
            "analyses": [
                {"id": a.id, "type": a.type, "family": a.family,
                 "measures": {key: list(values) for key, values in a.measures.items()},
                 **({"skipped": a.skipped} if a.skipped else {})}
                for a in self.analyses
            ],
            "dropped": [d.to_dict() for d in self.dropped],
        }


class _Protocol:
    """What the resolver needs from an :class:`alliance.study.Protocol` (read by attribute)."""

    def __init__(self, protocol):
        self.timepoints = tuple(protocol.timepoints)
        self.derived = tuple(getattr(protocol, "derived", ()) or ())
        self.arms = tuple(arm.id for arm in getattr(protocol, "arms", ()) or ())
        self.by_id = {tp.id: tp for tp in self.timepoints}
        self.derived_by_id = {d.id: d for d in self.derived}
        self.order: dict[str, float] = dict(protocol.timepoint_order)
        dosing = [float(tp.order) for tp in self.timepoints if tp.kind == "dosing"]
        self.first_dosing = min(dosing) if dosing else None

    def known(self, timepoint: str) -> bool:
        return timepoint in self.by_id or timepoint in self.derived_by_id

    def administers(self, timepoint: str, instrument: str) -> bool:
        if timepoint in self.by_id:
            return instrument in tuple(self.by_id[timepoint].instruments)
        if timepoint in self.derived_by_id:
            return any(self.administers(s, instrument) for s in self.derived_by_id[timepoint].from_timepoints)
        return False

    def timepoints_with(self, instrument: str, kinds: tuple[str, ...] | None = None) -> tuple[str, ...]:
        ordered = sorted(self.timepoints, key=lambda tp: float(tp.order))
        return tuple(tp.id for tp in ordered
                     if instrument in tuple(tp.instruments) and (kinds is None or tp.kind in kinds))

    def timepoint_ids(self) -> str:
        return ", ".join([tp.id for tp in self.timepoints] + [d.id for d in self.derived])


def resolve_plan(plan: AnalysisPlan, protocol) -> ResolvedPlan:
    """Apply a plan to a protocol: role references become measure names of that protocol.

    Parameters
    ----------
    plan : AnalysisPlan
    protocol : alliance.study.Protocol

    Returns
    -------
    ResolvedPlan
        Measures the protocol does not administer are left out of their analyses and listed in
        ``dropped`` with the reason; an analysis left with no measures for a required key gets a
        ``skipped`` reason (it is reported, never silently dropped).

    Notes
    -----
    Timepoint keywords (``docs/analysis.md``): for the alliance role ``all`` (default),
    ``pre_dosing`` (before the first timepoint of kind ``dosing``), ``last_pre_dosing``, ``first``,
    ``last``; for the outcome role ``follow_ups`` (default: ``roles.outcome.follow_ups`` or every
    timepoint of kind ``follow_up`` that administers the outcome instrument), ``baseline``, ``all``.
    Any other word is a timepoint id.
    """
    proto = _Protocol(protocol)
    dropped: list[Dropped] = []
    roles = plan.roles

    alliance_instrument = roles["alliance"]["instrument"]
    alliance_scales = tuple(roles["alliance"]["scales"])
    alliance_timepoints = proto.timepoints_with(alliance_instrument)
    pre_dosing = tuple(t for t in alliance_timepoints
                       if proto.first_dosing is None or proto.order[t] < proto.first_dosing)
    if not alliance_timepoints:
        dropped.append(Dropped("roles", "alliance", f"the protocol administers {alliance_instrument} at no timepoint"))

    acute_timepoint = roles["acute"]["timepoint"]
    acute_measures: list[str] = []
    if not proto.known(acute_timepoint):
        dropped.append(Dropped("roles", f"acute@{acute_timepoint}",
                               f"the protocol has no timepoint {acute_timepoint!r}; it has {proto.timepoint_ids()}"))
    else:
        for measure in roles["acute"]["measures"]:
            instrument_id = measure.split(".", 1)[0]
            if proto.administers(acute_timepoint, instrument_id):
                acute_measures.append(f"{measure}@{acute_timepoint}")
            else:
                dropped.append(Dropped("roles", f"{measure}@{acute_timepoint}",
                                       f"the protocol does not administer {instrument_id} at {acute_timepoint}"))

    outcome_measure = roles["outcome"]["measure"]
    outcome_instrument = outcome_measure.split(".", 1)[0]
    baseline = roles["outcome"]["baseline"]
    if not (proto.known(baseline) and proto.administers(baseline, outcome_instrument)):
        dropped.append(Dropped("roles", f"outcome@{baseline}",
                               f"the protocol does not administer {outcome_instrument} at a timepoint {baseline!r}"))
        baseline = None
    if roles["outcome"].get("follow_ups"):
        follow_ups = []
        for timepoint in roles["outcome"]["follow_ups"]:
            if proto.known(timepoint) and proto.administers(timepoint, outcome_instrument):
                follow_ups.append(timepoint)
            else:
                dropped.append(Dropped("roles", f"outcome@{timepoint}",
                                       f"the protocol does not administer {outcome_instrument} at {timepoint!r}"))
        follow_ups = tuple(follow_ups)
    else:
        follow_ups = proto.timepoints_with(outcome_instrument, kinds=("follow_up",))

    resolved = ResolvedPlan(
        plan=plan,
        alliance_instrument=alliance_instrument,
        alliance_scales=alliance_scales,
        alliance_timepoints=alliance_timepoints,
        pre_dosing_timepoints=pre_dosing,
        acute_timepoint=acute_timepoint,
        acute_measures=tuple(acute_measures),
        outcome_measure=outcome_measure,
        outcome_baseline=baseline,
        follow_ups=follow_ups,
        analyses=(),
        dropped=(),
        arms=proto.arms,
        timepoint_order=dict(proto.order),
    )
    analyses = tuple(_resolve_analysis(spec, resolved, proto, dropped) for spec in plan.analyses)
    return dataclasses.replace(resolved, analyses=analyses, dropped=tuple(dropped))


def _expand(reference: str, plan: ResolvedPlan, proto: _Protocol) -> tuple[list[str], str | None]:
    """Measure names a reference stands for, or an empty list and the reason."""
    base, _, when = reference.partition("@")
    head, _, scale = base.partition(".")
    if head == "alliance":
        scales = (scale,) if scale else plan.alliance_scales
        keyword = when or "all"
        timepoints = {
            "all": plan.alliance_timepoints,
            "pre_dosing": plan.pre_dosing_timepoints,
            "last_pre_dosing": plan.pre_dosing_timepoints[-1:],
            "first": plan.alliance_timepoints[:1],
            "last": plan.alliance_timepoints[-1:],
        }.get(keyword)
        if timepoints is None:
            if keyword not in plan.alliance_timepoints:
                return [], (f"the protocol does not administer {plan.alliance_instrument} at a timepoint "
                            f"{keyword!r}; alliance timepoints are {', '.join(plan.alliance_timepoints) or 'none'}")
            timepoints = (keyword,)
        if not timepoints:
            return [], f"no alliance timepoint is {keyword.replace('_', ' ')} in this protocol"
        return [f"{plan.alliance_instrument}.{s}@{t}" for s in scales for t in timepoints], None
    if head == "acute":
        if not plan.acute_measures:
            return [], f"the protocol administers none of the acute measures at {plan.acute_timepoint!r}"
        return list(plan.acute_measures), None
    if head == "outcome":
        keyword = when or "follow_ups"
        if keyword == "follow_ups":
            timepoints = plan.follow_ups
        elif keyword == "baseline":
            timepoints = (plan.outcome_baseline,) if plan.outcome_baseline else ()
        elif keyword == "all":
            timepoints = plan.outcome_timepoints
        elif proto.known(keyword) and proto.administers(keyword, plan.outcome_instrument):
            timepoints = (keyword,)
        else:
            return [], f"the protocol does not administer {plan.outcome_instrument} at a timepoint {keyword!r}"
        if not timepoints:
            return [], f"the protocol has no outcome timepoint for @{keyword}"
        return [f"{plan.outcome_measure}@{t}" for t in timepoints], None
    # an explicit INSTRUMENT.SCALE@TIMEPOINT
    instrument_id = base.split(".", 1)[0]
    if not proto.known(when):
        return [], f"the protocol has no timepoint {when!r}; it has {proto.timepoint_ids()}"
    if not proto.administers(when, instrument_id):
        return [], f"the protocol does not administer {instrument_id} at {when}"
    return [reference], None


def _resolve_analysis(spec: AnalysisSpec, plan: ResolvedPlan, proto: _Protocol,
                      dropped: list[Dropped]) -> ResolvedAnalysis:
    measures: dict[str, tuple[str, ...]] = {}
    reasons: list[str] = []
    for key in ("x", "y", "m", "covariates"):
        if key not in spec.options:
            continue
        value = spec.options[key]
        names: list[str] = []
        unresolved = False
        for reference in [value] if isinstance(value, str) else value:
            expanded, reason = _expand(reference, plan, proto)
            if reason:
                unresolved = True
                reasons.append(f"{key} = {reference}: {reason}")
                dropped.append(Dropped(spec.id, reference, reason))
            names.extend(name for name in expanded if name not in names)
        measures[key] = tuple(names)
        if key == "covariates" and unresolved:
            # a partial correlation without one of its covariates is a different analysis
            measures[key] = ()
    skipped = None
    if any(key in measures and not measures[key] for key in ("x", "y", "m", "covariates")):
        skipped = "; ".join(reasons) or "no measures"
    if spec.type in ("alliance_change", "alliance_mixed_model") and not plan.alliance_timepoints:
        skipped = f"the protocol administers {plan.alliance_instrument} at no timepoint"
    elif spec.type == "alliance_change" and len(plan.alliance_timepoints) < 2:
        skipped = f"alliance is measured at only one timepoint ({plan.alliance_timepoints[0]}); no change to test"
    if spec.type in ("outcome_mixed_model", "response_remission") and not plan.follow_ups:
        skipped = f"the protocol administers {plan.outcome_instrument} at no follow-up timepoint"
    elif spec.type == "response_remission" and not plan.outcome_baseline:
        skipped = f"the protocol has no baseline {plan.outcome_instrument}; response needs one"
    if skipped:
        dropped.append(Dropped(spec.id, spec.type, f"analysis skipped: {skipped}"))
    return ResolvedAnalysis(spec=spec, measures=measures, skipped=skipped)
