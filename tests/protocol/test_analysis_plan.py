"""The analysis plan's schema: the default plan and the checks of the ``analysis:`` section."""

from __future__ import annotations

import pytest

from alliance.protocol import ProtocolError, default_protocol, parse_analysis_plan
from alliance.protocol.analysis import ANALYSIS_TYPES


def test_default_plan_covers_the_study():
    plan = default_protocol().analysis
    types = {spec.type for spec in plan.analyses}
    # Every analysis type is part of the default plan, except those named here: Levin et al. (2024)
    # collected no facilitator-rated alliance, so the default protocol has nothing to agree with.
    not_in_default: set[str] = {"alliance_agreement"}
    assert types == set(ANALYSIS_TYPES) - not_in_default
    assert plan.p_adjust == "holm" and plan.correlation_method == "pearson"
    assert plan.roles["alliance"] == {"instrument": "wai_sr", "scales": ["total", "goal", "task", "bond"]}
    assert len({spec.id for spec in plan.analyses}) == len(plan.analyses)


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
    with pytest.raises(ProtocolError) as caught:
        parse_analysis_plan(raw)
    problems = {(p.column, p.value, p.reason) for p in caught.value.problems}
    text = str(caught.value)
    assert "key 'analysis.p_adjust': value 'fdr' is not one of the choices; allowed: holm" in text
    assert "analysis.seed" in text
    assert ("analysis.roles.alliance.scales", "totl", "wai_sr has no scale 'totl'") in problems
    assert ("analysis.analyses[0] (a).x", "wai_sr.bogus@prep", "wai_sr has no scale 'bogus'") in problems
    assert ("analysis.analyses[0] (a).y", None, "is required for type correlation") in problems
    assert ("analysis.analyses[1].type", "regression", "is not an analysis type") in problems
    assert any(column == "analysis.analyses[2] (b).n_boot" for column, _, _ in problems)
    assert ("analysis.analyses[3] (c).colour", None, "is not a key of a correlation analysis") in problems
    assert len(problems) >= 8


def test_unknown_instrument_and_reference_errors():
    with pytest.raises(ProtocolError, match="unknown instrument 'wai'"):
        parse_analysis_plan({"roles": {"alliance": {"instrument": "wai", "scales": ["total"]},
                                       "acute": {"timepoint": "peak", "measures": ["meq30.total"]},
                                       "outcome": {"measure": "grid_hamd17.total", "baseline": "baseline"}}})
    with pytest.raises(ProtocolError, match="is not a measure name"):
        parse_analysis_plan({"analyses": [{"id": "x", "type": "correlation", "x": "alliance", "y": "depression@week4"}]})
    with pytest.raises(ProtocolError, match="expected a mapping"):
        parse_analysis_plan(["not", "a", "mapping"])
