"""The ``analysis:`` section of a protocol: the analysis plan, checked at load.

A plan names *roles* (which instrument measures the alliance, which measures are the acute
experience, which scale is the depression outcome) and a list of *analyses*, each of which refers
to measures by role (``alliance@pre_dosing``, ``outcome@follow_ups``) or by full name
(``meq30.total@peak``). The schema is documented in ``docs/analysis.md``; the default plan is the
``analysis:`` section of ``levin2024.yaml``, and a protocol whose section leaves out a top-level key
(say ``analyses``) takes that key from there.

What a reference stands for in one protocol (``alliance@pre_dosing`` → ``wai_sr.total@prep``) is
decided by :func:`alliance.analysis.resolve_plan`; measures a protocol does not administer are
dropped there, with the reason, not refused here, so the default plan runs on any protocol.

Adding an analysis type: its keys go in :data:`ANALYSIS_TYPES` (and its checks, if any, in
:func:`_read_analysis`), its computation in :mod:`alliance.analysis.pipeline`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alliance import instruments

from .errors import Reader, scale_ids
from .measure import Measure, MeasureNameError

__all__ = [
    "ALLIANCE_WHEN", "ANALYSIS_TYPES", "MEMBERSHIP", "BOOTSTRAP_CI", "CORRELATION_METHODS", "DEFAULT_FORMULAS", "OUTCOME_WHEN",
    "ANALYSIS_ROLES", "MISSING_METHODS", "P_ADJUST_METHODS", "ROLES", "AnalysisPlan", "AnalysisSpec", "Reference", "read_analysis",
]

# expectancy is optional: a covariate of the exploratory partial correlations (Levin et al. 2024 name
# expectancy of self-referred participants as a limitation)
ROLES = ("alliance", "acute", "outcome", "expectancy")
P_ADJUST_METHODS = ("holm", "hochberg", "bonferroni", "bh", "by")
CORRELATION_METHODS = ("pearson", "spearman")
BOOTSTRAP_CI = ("percentile", "bca")
ALLIANCE_WHEN = ("all", "pre_dosing", "last_pre_dosing", "first", "last")
OUTCOME_WHEN = ("follow_ups", "baseline", "all")

# Whether an analysis tests a hypothesis the study pre-specified (the tests its paper reports) or
# explores; every entry of the results carries its analysis's role, and a family has one role.
ANALYSIS_ROLES = ("confirmatory", "exploratory")
# How each analysis type may treat missing data: the first is the default. Pairwise-complete data for
# a correlation, listwise within a model otherwise; full-information ML (``fiml``: every participant
# with any of the variables, under missing at random) or multiple imputation by chained equations
# (``mi``, Rubin's rules). ``missing`` is the method of the entry's own numbers; ``missing_sensitivity``
# lists methods whose numbers are reported beside them (``missing_data`` of the entry).
MISSING_METHODS: dict[str, tuple[str, ...]] = {
    "correlation": ("pairwise", "fiml", "mi"),
    "partial_correlation": ("listwise", "mi"),
    "mediation": ("listwise", "fiml"),
}
_MISSING_KEYS = ("missing", "missing_sensitivity")
# Keys each analysis type takes beyond id/type/family/role; required ones are listed separately.
# ``arm``: the analysis uses one arm's participants only (Murphy et al. 2022 analysed each arm on its own).
ANALYSIS_TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    "alliance_change": {"optional": ("scales", "pairs", "arm"), "required": ()},
    "alliance_mixed_model": {"optional": ("formula", "scales"), "required": ()},
    "correlation": {"optional": ("method", *_MISSING_KEYS, "tipping_point", "arm"), "required": ("x", "y")},
    "partial_correlation": {"optional": ("method", *_MISSING_KEYS, "arm"), "required": ("x", "y", "covariates")},
    "mediation": {"optional": ("covariates", "n_boot", "ci", *_MISSING_KEYS, "arm"), "required": ("x", "m", "y")},
    "outcome_mixed_model": {"optional": ("formula",), "required": ()},
    "response_remission": {"optional": (), "required": ()},
    "reliability": {"optional": ("instruments", "omega"), "required": ()},
    "facilitator_effects": {"optional": ("membership",), "required": ("x", "y")},
    "alliance_agreement": {"optional": ("y", "instrument"), "required": ("x",)},
    "safety": {"optional": ("x", "grades"), "required": ()},
}
# How a participant's facilitators enter the facilitator models: every one of them with equal
# weight (multiple membership, the default: PAT participants work with two), or the first listed.
MEMBERSHIP = ("multiple", "primary")
TOP_KEYS = ("seed", "p_adjust", "correlation_method", "n_boot", "bootstrap_ci", "n_imputations", "roles",
            "analyses")
DEFAULT_FORMULAS = {
    "alliance_mixed_model": "value ~ timepoint + (1|participant)",
    "outcome_mixed_model": "value ~ timepoint * arm + (1|participant)",
}
_REFERENCE_KEYS = ("x", "y", "m", "covariates", "tipping_point")


@dataclass(frozen=True)
class Reference:
    """A measure reference of the plan: ``ROLE[.SCALE][@WHEN]`` or ``INSTRUMENT.SCALE@TIMEPOINT``.

    Attributes
    ----------
    role : str or None
        ``alliance``, ``acute`` or ``outcome``; ``None`` for a measure named in full.
    scale : str or None
        The alliance scale of ``alliance.total``; ``None`` otherwise.
    when : str or None
        The timepoint keyword or id after ``@``.
    measure : Measure or None
        The measure named in full (``role`` is ``None``).
    """

    role: str | None
    scale: str | None = None
    when: str | None = None
    measure: Measure | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Split a reference; a text that is not a role reference must be a full measure name.

        Raises
        ------
        MeasureNameError
            When it is neither a role reference nor ``INSTRUMENT.SCALE@TIMEPOINT``.
        """
        head = text.split("@", 1)[0].split(".", 1)[0]
        if head not in ROLES:
            return cls(None, measure=Measure.parse(text))
        base, _, when = text.partition("@")
        _, _, scale = base.partition(".")
        return cls(head, scale or None, when or None)


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
    role : str
        ``confirmatory`` (a pre-specified test: one the study's paper reports) or ``exploratory``
        (the default).
    """

    id: str
    type: str
    family: str | None
    options: dict[str, Any] = field(default_factory=dict)
    role: str = "exploratory"

    @property
    def missing(self) -> str | None:
        """The missing-data method of the entries' own numbers (the type's default when not given);
        None for a type without a choice."""
        allowed = MISSING_METHODS.get(self.type)
        return self.options.get("missing", allowed[0]) if allowed else None

    @property
    def missing_sensitivity(self) -> tuple[str, ...]:
        return tuple(self.options.get("missing_sensitivity", ()))

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "type": self.type, "role": self.role}
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
    n_imputations : int
        Imputed data sets of every multiple imputation (``missing: mi``).
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
    n_imputations: int = 20

    def to_dict(self) -> dict[str, Any]:
        """The plan as the mapping it was read from (complete, with defaults filled in)."""
        return {
            "seed": self.seed,
            "p_adjust": self.p_adjust,
            "correlation_method": self.correlation_method,
            "n_boot": self.n_boot,
            "bootstrap_ci": self.bootstrap_ci,
            "n_imputations": self.n_imputations,
            "roles": copy.deepcopy(self.roles),
            "analyses": [spec.to_dict() for spec in self.analyses],
        }


# ----------------------------------------------------------------------------------------------
# Reading and checking a plan
# ----------------------------------------------------------------------------------------------


def read_analysis(r: Reader, raw: Any, default: Mapping[str, Any] | None, key: str = "analysis") -> AnalysisPlan:
    """Read and check an ``analysis:`` section, its missing top-level keys taken from the default.

    Parameters
    ----------
    r : Reader
        Problems are recorded here, with YAML paths starting at ``key``.
    raw : mapping or None
        The section as written (``None`` or empty: the default plan).
    default : mapping or None
        The default protocol's section (``None`` while reading the default protocol itself).
    key : str
        The YAML path of the section.

    Returns
    -------
    AnalysisPlan
        Meaningful only when ``r`` recorded no problem.
    """
    empty = AnalysisPlan(0, "holm", "pearson", 100, "percentile", {}, ())
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        r.problem(key, None, f"expected a mapping, found {type(raw).__name__}", "a mapping of plan keys")
        return empty
    merged = dict(raw)
    for name, value in (default or {}).items():
        merged.setdefault(name, copy.deepcopy(value))
    before = len(r.problems)
    for unknown in sorted(set(merged) - set(TOP_KEYS)):
        r.problem(f"{key}.{unknown}", None, "is not a key of the analysis section", ", ".join(TOP_KEYS))
    missing = [name for name in TOP_KEYS if name not in merged]
    for name in missing:
        r.problem(f"{key}.{name}", None, "is required", "")
    if missing:
        return empty
    if not _is_int(merged["seed"]) or merged["seed"] < 0:
        r.problem(f"{key}.seed", merged["seed"], "is not a non-negative whole number", "e.g. 20240301")
    r.choice(merged["p_adjust"], f"{key}.p_adjust", P_ADJUST_METHODS)
    r.choice(merged["correlation_method"], f"{key}.correlation_method", CORRELATION_METHODS)
    r.choice(merged["bootstrap_ci"], f"{key}.bootstrap_ci", BOOTSTRAP_CI)
    _n_boot(r, merged["n_boot"], f"{key}.n_boot")
    if not _is_int(merged["n_imputations"]) or not 2 <= merged["n_imputations"] <= 1000:
        r.problem(f"{key}.n_imputations", merged["n_imputations"], "is not a whole number from 2 to 1000",
                  "e.g. 20 (White, Royston & Wood 2011: at least the percentage of incomplete cases)")
    roles = _read_roles(r, merged["roles"], f"{key}.roles")
    specs: list[AnalysisSpec] = []
    analyses = merged["analyses"]
    if not isinstance(analyses, list):
        r.problem(f"{key}.analyses", None, f"expected a list, found {type(analyses).__name__}", "a list of analyses")
    else:
        seen: set[str] = set()
        for index, item in enumerate(analyses):
            spec = _read_analysis(r, f"{key}.analyses[{index}]", index, item, roles, seen)
            if spec is not None:
                specs.append(spec)
        _check_family_roles(r, f"{key}.analyses", specs)
    if len(r.problems) > before:
        return empty
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
        n_imputations=merged["n_imputations"],
    )


def _check_family_roles(r: Reader, key: str, specs: list[AnalysisSpec]) -> None:
    """A family is adjusted as one: its analyses must all be confirmatory or all exploratory."""
    roles: dict[str, dict[str, list[str]]] = {}
    for spec in specs:
        if spec.family:
            roles.setdefault(spec.family, {}).setdefault(spec.role, []).append(spec.id)
    for family, by_role in roles.items():
        if len(by_role) > 1:
            listed = "; ".join(f"{role}: {', '.join(ids)}" for role, ids in sorted(by_role.items()))
            r.problem(key, family, f"family {family!r} mixes confirmatory and exploratory analyses ({listed})",
                      "one role per family: give the exploratory analyses a family of their own")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _n_boot(r: Reader, value: Any, key: str) -> None:
    if not _is_int(value) or value < 100:
        r.problem(key, value, "is not a whole number of at least 100", "e.g. 5000")


def _check_scales(r: Reader, key: str, instrument_id: str, scales: list[str]) -> None:
    try:
        definition = instruments.get(instrument_id)
    except instruments.UnknownInstrumentError as error:
        r.problem(key, instrument_id, str(error), ", ".join(i.id for i in instruments.list_instruments()))
        return
    known = scale_ids(definition, percent=True)  # the rule Reader.measure applies to measure names
    for scale in scales:
        if scale not in known:
            r.problem(key, scale, f"{instrument_id} has no scale {scale!r}", ", ".join(known))


def _check_reference(r: Reader, key: str, text: str, roles: dict[str, Any]) -> None:
    """One measure reference: ``ROLE[.SCALE][@WHEN]`` or ``INSTRUMENT.SCALE@TIMEPOINT``."""
    try:
        reference = Reference.parse(text)
    except MeasureNameError:
        r.problem(key, text, "is not a measure name nor a role reference",
                  "INSTRUMENT.SCALE@TIMEPOINT or ROLE[.SCALE][@WHEN] (roles: alliance, acute, outcome)")
        return
    if reference.role is None:
        r.measure(text, key, "required", percent=True)
        return
    if reference.role == "alliance":
        scales = (roles.get("alliance") or {}).get("scales", ["total"])
        if reference.scale and reference.scale not in scales:
            r.problem(key, text, f"names alliance scale {reference.scale!r}, which roles.alliance.scales does not list",
                      ", ".join(scales))
        if reference.when and not (reference.when in ALLIANCE_WHEN or reference.when.isidentifier()):
            r.problem(key, text, f"{reference.when!r} is not a timepoint id nor a keyword",
                      ", ".join(ALLIANCE_WHEN) + " or a timepoint id")
        return
    if reference.scale:
        r.problem(key, text, "only the alliance role takes a scale", "alliance.total, acute, outcome@…")
    if reference.role == "expectancy" and reference.when:
        r.problem(key, text, "the expectancy role is at roles.expectancy.timepoint", "expectancy (without @)")
    # A plan may name expectancy without defining the role: the analysis is then left out with
    # the reason (the default plan does, to show that Levin et al. 2024 did not measure it).
    if reference.role == "acute" and reference.when:
        r.problem(key, text, "the acute role is at roles.acute.timepoint", "acute (without @)")
    if reference.role == "outcome" and reference.when in ALLIANCE_WHEN[1:]:
        r.problem(key, text, f"{reference.when!r} is an alliance keyword",
                  "outcome@follow_ups, outcome@baseline, outcome@all or outcome@TIMEPOINT")


def _read_roles(r: Reader, roles: Any, key: str) -> dict[str, Any]:
    if not isinstance(roles, dict):
        r.problem(key, None, f"expected a mapping, found {type(roles).__name__}", "a mapping with " + ", ".join(ROLES))
        return {}
    for unknown in sorted(set(roles) - set(ROLES)):
        r.problem(f"{key}.{unknown}", None, "is not a role", ", ".join(ROLES))
    alliance = roles.get("alliance")
    if not isinstance(alliance, dict) or set(alliance) - {"instrument", "scales"} or "instrument" not in alliance:
        r.problem(f"{key}.alliance", None, "is not an alliance role", "{instrument: ID, scales: [SCALE, ...]}")
    else:
        scales = r.names(alliance.get("scales", ["total"]), f"{key}.alliance.scales")
        _check_scales(r, f"{key}.alliance.scales", alliance["instrument"], scales)
    acute = roles.get("acute")
    if not isinstance(acute, dict) or set(acute) != {"timepoint", "measures"}:
        r.problem(f"{key}.acute", None, "is not an acute role", "{timepoint: ID, measures: [INSTRUMENT.SCALE, ...]}")
    else:
        if not isinstance(acute["timepoint"], str):
            r.problem(f"{key}.acute.timepoint", acute["timepoint"], "is not a timepoint id", "e.g. peak")
        for index, measure in enumerate(r.names(acute["measures"], f"{key}.acute.measures")):
            r.measure(measure, f"{key}.acute.measures[{index}]", "forbidden", percent=True)
    expectancy = roles.get("expectancy")
    if expectancy is not None:
        if not isinstance(expectancy, dict) or set(expectancy) != {"measure", "timepoint"}:
            r.problem(f"{key}.expectancy", None, "is not an expectancy role",
                      "{measure: INSTRUMENT.SCALE, timepoint: TIMEPOINT} (e.g. sets.positive at baseline)")
        else:
            r.measure(expectancy["measure"], f"{key}.expectancy.measure", "forbidden", percent=True)
            if not isinstance(expectancy["timepoint"], str):
                r.problem(f"{key}.expectancy.timepoint", expectancy["timepoint"], "is not a timepoint id",
                          "e.g. baseline")
    outcome = roles.get("outcome")
    allowed = {"measure", "baseline", "follow_ups"}
    if not isinstance(outcome, dict) or set(outcome) - allowed or not {"measure", "baseline"} <= set(outcome):
        r.problem(f"{key}.outcome", None, "is not an outcome role",
                  "{measure: INSTRUMENT.SCALE, baseline: TIMEPOINT, follow_ups: [TIMEPOINT, ...] (optional)}")
    else:
        r.measure(outcome["measure"], f"{key}.outcome.measure", "forbidden", percent=True)
        if not isinstance(outcome["baseline"], str):
            r.problem(f"{key}.outcome.baseline", outcome["baseline"], "is not a timepoint id", "e.g. baseline")
        if outcome.get("follow_ups") is not None:
            r.names(outcome["follow_ups"], f"{key}.outcome.follow_ups", "a list of timepoint ids")
    return roles


def _read_analysis(r: Reader, where: str, index: int, raw: Any, roles: dict[str, Any],
                   seen: set[str]) -> AnalysisSpec | None:
    if not isinstance(raw, dict):
        r.problem(where, None, f"expected a mapping, found {type(raw).__name__}", "a mapping with id and type")
        return None
    kind = raw.get("type")
    if kind not in ANALYSIS_TYPES:
        r.problem(f"{where}.type", kind, "is not an analysis type", ", ".join(ANALYSIS_TYPES))
        return None
    identifier = raw.get("id")
    if not isinstance(identifier, str) or not identifier.isidentifier():
        r.problem(f"{where}.id", identifier, "is not a name", "letters, digits and _")
        identifier = f"{kind}_{index}"
    elif identifier in seen:
        r.problem(f"{where}.id", identifier, "is the id of an earlier analysis", "a different id for every analysis")
    seen.add(identifier)
    where = f"{where} ({identifier})"
    keys = ANALYSIS_TYPES[kind]
    allowed = ("id", "type", "family", "role", *keys["optional"], *keys["required"])
    for unknown in sorted(set(raw) - set(allowed)):
        r.problem(f"{where}.{unknown}", None, f"is not a key of a {kind} analysis", ", ".join(sorted(allowed)))
    for name in keys["required"]:
        if name not in raw:
            r.problem(f"{where}.{name}", None, f"is required for type {kind}", "")
    family = raw.get("family")
    if family is not None and not isinstance(family, str):
        r.problem(f"{where}.family", family, "is not a name", "a family label")
    role = raw.get("role", "exploratory")
    r.choice(role, f"{where}.role", ANALYSIS_ROLES)
    _check_missing(r, where, kind, raw)
    for name in _REFERENCE_KEYS:
        if name in raw:
            references = r.names(raw[name], f"{where}.{name}", "a measure reference or a list of them")
            for i, reference in enumerate(references):
                place = f"{where}.{name}[{i}]" if isinstance(raw[name], list) else f"{where}.{name}"
                _check_reference(r, place, reference, roles)
    if "method" in raw:
        r.choice(raw["method"], f"{where}.method", CORRELATION_METHODS)
    if "ci" in raw:
        r.choice(raw["ci"], f"{where}.ci", BOOTSTRAP_CI)
    if "n_boot" in raw:
        _n_boot(r, raw["n_boot"], f"{where}.n_boot")
    if "pairs" in raw:
        r.choice(raw["pairs"], f"{where}.pairs", ("all", "first_last"))
    if "formula" in raw:
        formula = raw["formula"]
        if not isinstance(formula, str) or not formula.replace(" ", "").startswith("value~"):
            r.problem(f"{where}.formula", formula, "is not an lme4 formula on 'value'",
                      f"e.g. {DEFAULT_FORMULAS[kind]!r}")
        elif "timepoint" not in formula or "participant" not in formula:
            r.problem(f"{where}.formula", formula, "does not use the columns timepoint and participant",
                      f"e.g. {DEFAULT_FORMULAS[kind]!r}")
    if "scales" in raw:
        known = (roles.get("alliance") or {}).get("scales", [])
        for scale in r.names(raw["scales"], f"{where}.scales"):
            if scale not in known:
                r.problem(f"{where}.scales", scale, "is not one of roles.alliance.scales", ", ".join(known))
    if "instruments" in raw:
        for instrument_id in r.names(raw["instruments"], f"{where}.instruments"):
            try:
                instruments.get(instrument_id)
            except instruments.UnknownInstrumentError as error:
                r.problem(f"{where}.instruments", instrument_id, str(error),
                          ", ".join(i.id for i in instruments.list_instruments()))
    if "grades" in raw:
        grades = raw["grades"] if isinstance(raw["grades"], list) else [raw["grades"]]
        for grade in grades:
            if not isinstance(grade, int) or isinstance(grade, bool) or not 1 <= grade <= 5:
                r.problem(f"{where}.grades", grade, "is not a CTCAE grade", "whole numbers 1-5 (the lowest grade counted)")
    if "arm" in raw:  # that it is one of the protocol's arms is checked with the design (loader)
        r.identifier(raw["arm"], f"{where}.arm")
    if "omega" in raw and not isinstance(raw["omega"], bool):
        r.problem(f"{where}.omega", raw["omega"], "is not true or false", "true or false")
    if "membership" in raw:
        r.choice(raw["membership"], f"{where}.membership", MEMBERSHIP)
    if "instrument" in raw:
        rated = [i.id for i in instruments.list_instruments() if i.rater == "facilitator"]
        if raw["instrument"] not in rated:
            r.problem(f"{where}.instrument", raw["instrument"], "is not a facilitator-rated instrument of the bank",
                      ", ".join(rated))
    options = {name: copy.deepcopy(value) for name, value in raw.items()
               if name not in ("id", "type", "family", "role")}
    if kind in DEFAULT_FORMULAS:
        options.setdefault("formula", DEFAULT_FORMULAS[kind])
    return AnalysisSpec(id=identifier, type=kind, family=family, options=options,
                        role=role if role in ANALYSIS_ROLES else "exploratory")


def _check_missing(r: Reader, where: str, kind: str, raw: Mapping[str, Any]) -> None:
    """``missing`` is one of the type's methods; ``missing_sensitivity`` lists others, each once."""
    allowed = MISSING_METHODS.get(kind)
    if allowed is None:
        return
    primary = raw.get("missing", allowed[0])
    if "missing" in raw:
        r.choice(primary, f"{where}.missing", allowed)
    if "missing_sensitivity" in raw:
        methods = r.names(raw["missing_sensitivity"], f"{where}.missing_sensitivity", "a list of methods")
        for method in methods:
            if method not in allowed:
                r.problem(f"{where}.missing_sensitivity", method, "is not a missing-data method of this type",
                          ", ".join(allowed))
            elif method == primary:
                r.problem(f"{where}.missing_sensitivity", method, "is the analysis's own method (missing)",
                          ", ".join(m for m in allowed if m != primary))
        if len(set(methods)) < len(methods):
            r.problem(f"{where}.missing_sensitivity", methods, "names a method twice", "each method once")
