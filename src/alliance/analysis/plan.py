"""The analysis plan applied to one protocol: role references become that protocol's measures.

The plan itself is the protocol's ``analysis:`` section, read and checked with the rest of the
protocol (:mod:`alliance.protocol.analysis`; schema ``docs/analysis.md``). :func:`resolve_plan`
turns its references (``alliance@pre_dosing``, ``outcome@follow_ups``) into the measure names of
one protocol (``wai_sr.total@prep`` …), dropping — and listing — the measures the protocol does
not administer, so the default plan runs unchanged on a protocol without, say, the EBI.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from alliance import instruments
from alliance.protocol import AnalysisPlan, AnalysisSpec, Measure, Protocol, Reference

__all__ = ["Dropped", "ResolvedAnalysis", "ResolvedPlan", "resolve_plan"]


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

    @property
    def role(self) -> str:
        return self.spec.role


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
        return Measure.parse(self.outcome_measure, timepoint="forbidden").instrument

    @property
    def outcome_timepoints(self) -> tuple[str, ...]:
        """Baseline (when the protocol has it) followed by the follow-ups."""
        return ((self.outcome_baseline,) if self.outcome_baseline else ()) + self.follow_ups

    def alliance_measures(self, scale: str | None = None) -> tuple[str, ...]:
        """``wai_sr.SCALE@TIMEPOINT`` for every alliance scale (or one) and timepoint."""
        scales = (scale,) if scale else self.alliance_scales
        return tuple(str(Measure(self.alliance_instrument, s, t)) for s in scales for t in self.alliance_timepoints)

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
                {"id": a.id, "type": a.type, "role": a.role, "family": a.family,
                 "measures": {key: list(values) for key, values in a.measures.items()},
                 **({"skipped": a.skipped} if a.skipped else {})}
                for a in self.analyses
            ],
            "dropped": [d.to_dict() for d in self.dropped],
        }


def resolve_plan(plan: AnalysisPlan, protocol) -> ResolvedPlan:
    """Apply a plan to a protocol: role references become measure names of that protocol.

    Parameters
    ----------
    plan : AnalysisPlan
    protocol : alliance.protocol.Protocol

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
    proto = protocol
    known = protocol.timepoint_order  # timepoints and derived timepoints
    every_timepoint = ", ".join(known)
    first_dosing = protocol.dosing_timepoints[0].order if protocol.dosing_timepoints else None
    dropped: list[Dropped] = []
    roles = plan.roles

    alliance_instrument = roles["alliance"]["instrument"]
    alliance_scales = tuple(roles["alliance"]["scales"])
    alliance_timepoints = proto.timepoints_with(alliance_instrument)
    pre_dosing = tuple(t for t in alliance_timepoints
                       if first_dosing is None or known[t] < first_dosing)
    if not alliance_timepoints:
        dropped.append(Dropped("roles", "alliance", f"the protocol administers {alliance_instrument} at no timepoint"))

    acute_timepoint = roles["acute"]["timepoint"]
    acute_measures: list[str] = []
    if acute_timepoint not in known:
        dropped.append(Dropped("roles", f"acute@{acute_timepoint}",
                               f"the protocol has no timepoint {acute_timepoint!r}; it has {every_timepoint}"))
    else:
        for measure in roles["acute"]["measures"]:
            at = Measure.parse(measure, timepoint="forbidden").at(acute_timepoint)
            if proto.administers(acute_timepoint, at.instrument):
                acute_measures.append(str(at))
            else:
                dropped.append(Dropped("roles", str(at),
                                       f"the protocol does not administer {at.instrument} at {acute_timepoint}"))

    outcome_measure = roles["outcome"]["measure"]
    outcome_instrument = Measure.parse(outcome_measure, timepoint="forbidden").instrument
    baseline = roles["outcome"]["baseline"]
    if not proto.administers(baseline, outcome_instrument):
        dropped.append(Dropped("roles", f"outcome@{baseline}",
                               f"the protocol does not administer {outcome_instrument} at a timepoint {baseline!r}"))
        baseline = None
    if roles["outcome"].get("follow_ups"):
        follow_ups = []
        for timepoint in roles["outcome"]["follow_ups"]:
            if proto.administers(timepoint, outcome_instrument):
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
        arms=protocol.arm_ids,
        timepoint_order=dict(known),
    )
    analyses = tuple(_resolve_analysis(spec, resolved, proto, dropped) for spec in plan.analyses)
    return dataclasses.replace(resolved, analyses=analyses, dropped=tuple(dropped))


def _expand(reference: str, plan: ResolvedPlan, proto: Protocol) -> tuple[list[str], str | None]:
    """Measure names a reference stands for, or an empty list and the reason."""
    parsed = Reference.parse(reference)
    head, scale, when = parsed.role, parsed.scale, parsed.when
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
        return [str(Measure(plan.alliance_instrument, s, t)) for s in scales for t in timepoints], None
    if head == "acute":
        if not plan.acute_measures:
            return [], f"the protocol administers none of the acute measures at {plan.acute_timepoint!r}"
        return list(plan.acute_measures), None
    if head == "expectancy":
        role = plan.plan.roles.get("expectancy")
        if not role:
            return [], "expectancy was not measured (the plan defines no expectancy role)"
        measure = Measure.parse(role["measure"], timepoint="forbidden").at(role["timepoint"])
        if not proto.administers(role["timepoint"], measure.instrument):
            return [], (f"the protocol does not administer {measure.instrument} at {role['timepoint']!r} "
                        "(no expectancy measure)")
        return [str(measure)], None
    if head == "outcome":
        keyword = when or "follow_ups"
        if keyword == "follow_ups":
            timepoints = plan.follow_ups
        elif keyword == "baseline":
            timepoints = (plan.outcome_baseline,) if plan.outcome_baseline else ()
        elif keyword == "all":
            timepoints = plan.outcome_timepoints
        elif proto.administers(keyword, plan.outcome_instrument):
            timepoints = (keyword,)
        else:
            return [], f"the protocol does not administer {plan.outcome_instrument} at a timepoint {keyword!r}"
        if not timepoints:
            return [], f"the protocol has no outcome timepoint for @{keyword}"
        outcome = Measure.parse(plan.outcome_measure, timepoint="forbidden")
        return [str(outcome.at(t)) for t in timepoints], None
    # an explicit INSTRUMENT.SCALE@TIMEPOINT
    instrument_id, when = parsed.measure.instrument, parsed.measure.timepoint
    if when not in proto.timepoint_order:
        return [], f"the protocol has no timepoint {when!r}; it has {', '.join(proto.timepoint_order)}"
    if not proto.administers(when, instrument_id):
        return [], f"the protocol does not administer {instrument_id} at {when}"
    return [reference], None


def agreement_instrument(spec: AnalysisSpec, proto: Protocol) -> str | None:
    """The facilitator-rated instrument an ``alliance_agreement`` analysis compares with: its
    ``instrument`` option, else the protocol's first facilitator-rated instrument (None if none)."""
    return spec.options.get("instrument") or next(
        (i for i in proto.instruments if instruments.get(i).rater == "facilitator"), None)


def _resolve_analysis(spec: AnalysisSpec, plan: ResolvedPlan, proto: Protocol,
                      dropped: list[Dropped]) -> ResolvedAnalysis:
    measures: dict[str, tuple[str, ...]] = {}
    reasons: list[str] = []
    for key in ("x", "y", "m", "covariates", "tipping_point"):
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
    # a tipping-point measure the protocol cannot provide is dropped (and listed); the analysis runs
    reasons = [reason for reason in reasons if not reason.startswith("tipping_point = ")]
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
    if spec.type == "alliance_agreement" and not skipped and agreement_instrument(spec, proto) is None:
        skipped = "the protocol gives no facilitator-rated instrument (e.g. wai_sr_t)"
    if skipped:
        dropped.append(Dropped(spec.id, spec.type, f"analysis skipped: {skipped}"))
    return ResolvedAnalysis(spec=spec, measures=measures, skipped=skipped)
