"""The analysis plan: the default plan, the schema checks and the resolution against a protocol."""

from __future__ import annotations

import pytest

from alliance.analysis import AnalysisPlanError, default_plan, parse_plan, plan_for_protocol, resolve_plan
from alliance.analysis.plan import ANALYSIS_TYPES
from alliance.study import default_protocol

from .conftest import protocol_variant


def test_default_plan_covers_the_study():
    plan = default_plan()
    types = {spec.type for spec in plan.analyses}
    assert types == set(ANALYSIS_TYPES)
    assert plan.p_adjust == "holm" and plan.correlation_method == "pearson"
    assert plan.roles["alliance"] == {"instrument": "wai_sr", "scales": ["total", "goal", "task", "bond"]}
    assert len({spec.id for spec in plan.analyses}) == len(plan.analyses)


def test_default_plan_resolved_on_the_levin_protocol():
    resolved = resolve_plan(default_plan(), default_protocol())
    assert resolved.alliance_timepoints == ("prep", "post_session1", "week1")
    assert resolved.pre_dosing_timepoints == ("prep",)
    assert resolved.follow_ups == ("week1", "week4", "month3", "month6", "month12")
    assert resolved.outcome_baseline == "baseline"
    assert resolved.acute_measures[0] == "meq30.total@peak" and "ebi.score@peak" in resolved.acute_measures
    assert resolved.dropped == ()
    by_id = {a.id: a for a in resolved.analyses}
    assert by_id["alliance_acute_outcome_mediation"].measures == {
        "x": ("wai_sr.total@prep",),
        "m": ("meq30.total@peak", "ebi.score@peak", "insight.score@peak"),
        "y": ("grid_hamd17.total@week4",),
    }
    assert by_id["alliance_outcome_partial"].measures["covariates"] == ("grid_hamd17.total@baseline",)
    assert all(a.skipped is None for a in resolved.analyses)


def test_protocol_section_overrides_only_the_keys_it_gives():
    plan = plan_for_protocol(protocol_variant(analysis={"seed": 7, "p_adjust": "bh"}))
    assert (plan.seed, plan.p_adjust) == (7, "bh")
    assert plan.analyses == default_plan().analyses
    assert plan_for_protocol(default_protocol()) == default_plan()


def test_every_problem_is_listed_with_its_place():
    raw = {
        "p_adjust": "fdr",
        "seed": -1,
        "roles": {"alliance": {"instrument": "wai_sr", "scales": ["total", "totl"]},
                  "acute": {"timepoint": "peak", "measures": ["meq30.total"]},
                  "outcome": {"measure": "grid_hamd17.total", "baseline": "baseline"}},
        "analyses": [
            {"id": "a", "type": "correlation", "x": "wai_sr.bogus@prep"},
            {"id": "a", "type": "regression"},
            {"id": "b", "type": "mediation", "x": "alliance", "m": "acute", "y": "outcome", "n_boot": 10},
            {"id": "c", "type": "correlation", "x": "alliance", "y": "outcome", "colour": "red"},
        ],
    }
    with pytest.raises(AnalysisPlanError) as caught:
        parse_plan(raw)
    problems = caught.value.problems
    text = str(caught.value)
    assert "analysis.p_adjust: 'fdr' is not allowed; use one of holm" in text
    assert "analysis.seed" in text
    assert any("roles.alliance.scales" in p and "'totl'" in p for p in problems)
    assert any("analyses[0] (a).x" in p and "no scale 'bogus'" in p for p in problems)
    assert any("analyses[0] (a): missing required key 'y'" in p for p in problems)
    assert any("analyses[1].type: 'regression' is not an analysis type" in p for p in problems)
    assert any("analyses[2] (b).n_boot" in p for p in problems)
    assert any("unknown key(s) ['colour']" in p for p in problems)
    assert len(problems) >= 8


def test_unknown_instrument_and_reference_errors():
    with pytest.raises(AnalysisPlanError, match="unknown instrument 'wai'"):
        parse_plan({"roles": {"alliance": {"instrument": "wai", "scales": ["total"]},
                              "acute": {"timepoint": "peak", "measures": ["meq30.total"]},
                              "outcome": {"measure": "grid_hamd17.total", "baseline": "baseline"}}})
    with pytest.raises(AnalysisPlanError, match="is not a measure name"):
        parse_plan({"analyses": [{"id": "x", "type": "correlation", "x": "alliance", "y": "depression@week4"}]})
    with pytest.raises(AnalysisPlanError, match="expected a mapping"):
        parse_plan(["not", "a", "mapping"])


def test_missing_measures_are_dropped_with_a_reason():
    resolved = resolve_plan(default_plan(), protocol_variant(without_instrument="ebi"))
    assert "ebi.score@peak" not in resolved.acute_measures
    reasons = {(d.analysis, d.reference): d.reason for d in resolved.dropped}
    assert "does not administer ebi" in reasons[("roles", "ebi.score@peak")]
    assert ("alliance_acute_outcome_mediation", "ebi.score@peak") in reasons
    mediation = {a.id: a for a in resolved.analyses}["alliance_acute_outcome_mediation"]
    assert mediation.measures["m"] == ("meq30.total@peak", "insight.score@peak")
    assert mediation.skipped is None


def test_an_analysis_without_measures_is_skipped_not_dropped():
    plan = parse_plan({"analyses": [{"id": "late", "type": "correlation", "x": "alliance.total@prep",
                                     "y": "outcome@month24", "family": "f"}]})
    resolved = resolve_plan(plan, default_protocol())
    (analysis,) = resolved.analyses
    assert "month24" in analysis.skipped
    assert any(d.analysis == "late" for d in resolved.dropped)
