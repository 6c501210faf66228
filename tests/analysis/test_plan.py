"""The analysis plan resolved against a protocol: role references become that protocol's measures."""

from __future__ import annotations

from alliance.analysis import resolve_plan
from alliance.protocol import default_protocol, parse_analysis_plan

from .conftest import protocol_variant


def test_default_plan_resolved_on_the_levin_protocol():
    resolved = resolve_plan(default_protocol().analysis, default_protocol())
    assert resolved.alliance_timepoints == ("prep", "post_session1", "week1")
    assert resolved.pre_dosing_timepoints == ("prep",)
    assert resolved.follow_ups == ("week1", "week4", "month3", "month6", "month12")
    assert resolved.outcome_baseline == "baseline"
    assert resolved.acute_measures[0] == "meq30.total@peak" and "ebi.score@peak" in resolved.acute_measures
    # only the expectancy analysis: Levin et al. did not measure expectancy (their named limitation)
    assert {d.analysis for d in resolved.dropped} == {"alliance_outcome_expectancy"}
    by_id = {a.id: a for a in resolved.analyses}
    assert by_id["alliance_acute_outcome_mediation"].measures == {
        "x": ("wai_sr.total@prep",),
        "m": ("meq30.total@peak", "ebi.score@peak", "insight.score@peak"),
        "y": ("grid_hamd17.total@week4",),
    }
    assert by_id["alliance_outcome_partial"].measures["covariates"] == ("grid_hamd17.total@baseline",)
    assert [a.id for a in resolved.analyses if a.skipped is not None] == ["alliance_outcome_expectancy"]


def test_protocol_section_overrides_only_the_keys_it_gives():
    plan = protocol_variant(analysis={"seed": 7, "p_adjust": "bh"}).analysis
    assert (plan.seed, plan.p_adjust) == (7, "bh")
    assert plan.analyses == default_protocol().analysis.analyses
    assert parse_analysis_plan({}) == default_protocol().analysis


def test_missing_measures_are_dropped_with_a_reason():
    resolved = resolve_plan(default_protocol().analysis, protocol_variant(without_instrument="ebi"))
    assert "ebi.score@peak" not in resolved.acute_measures
    reasons = {(d.analysis, d.reference): d.reason for d in resolved.dropped}
    assert "does not administer ebi" in reasons[("roles", "ebi.score@peak")]
    assert ("alliance_acute_outcome_mediation", "ebi.score@peak") in reasons
    mediation = {a.id: a for a in resolved.analyses}["alliance_acute_outcome_mediation"]
    assert mediation.measures["m"] == ("meq30.total@peak", "insight.score@peak")
    assert mediation.skipped is None


def test_an_analysis_without_measures_is_skipped_not_dropped():
    plan = parse_analysis_plan({"analyses": [{"id": "late", "type": "correlation", "x": "alliance.total@prep",
                                              "y": "outcome@month24", "family": "f"}]})
    resolved = resolve_plan(plan, default_protocol())
    (analysis,) = resolved.analyses
    assert "month24" in analysis.skipped
    assert any(d.analysis == "late" for d in resolved.dropped)

