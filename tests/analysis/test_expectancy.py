"""Expectancy as a covariate of the exploratory partial correlations (plan role ``expectancy``).

The default protocol (Levin et al. 2024) did not measure expectancy: its plan lists the analysis
as left out with the reason. A protocol that gives an expectancy measure (here an invented
fixture instrument from a site folder) gets the partial correlation controlling for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alliance.analysis import resolve_plan, run_analysis
from alliance.analysis.pipeline import analysed_study
from alliance.protocol import ProtocolError, default_protocol, parse_protocol
from alliance.simulate import simulate_trial

FIXTURES = Path(__file__).parent / "fixtures" / "site_instruments"


pytestmark = pytest.mark.usefixtures("package_bank")  # tests/conftest.py: the bank as shipped, after each test


def _protocol_with_expectancy(expectancy_role=True):
    raw = default_protocol().to_dict()
    raw["instruments_dir"] = str(FIXTURES)
    for timepoint in raw["timepoints"]:
        if timepoint["id"] == "baseline":
            timepoint["instruments"] = [*timepoint["instruments"], "expectancy_fixture"]
    if expectancy_role:
        raw["analysis"]["roles"]["expectancy"] = {"measure": "expectancy_fixture.score", "timepoint": "baseline"}
    return parse_protocol(raw, "with_expectancy.yaml")


def test_the_default_plan_lists_the_expectancy_analysis_as_left_out_with_the_reason():
    protocol = default_protocol()
    dropped = [d for d in resolve_plan(protocol.analysis, protocol).dropped if d.analysis == "alliance_outcome_expectancy"]
    assert dropped and "expectancy was not measured" in dropped[0].reason


def test_a_protocol_with_an_expectancy_measure_controls_for_it():
    protocol = _protocol_with_expectancy()
    study = simulate_trial(protocol, n=60, seed=5)
    run = run_analysis(study, created_utc="2026-01-01T00:00:00+00:00")
    results = run.to_dict()
    entries = [e for e in results["partial_correlations"] if e["analysis"] == "alliance_outcome_expectancy"]
    assert entries and all(e["role"] == "exploratory" for e in entries)
    week4 = next(e for e in entries if e["y"] == "grid_hamd17.total@week4")
    assert week4["covariates"] == ["grid_hamd17.total@baseline", "expectancy_fixture.score@baseline"]
    # The partial correlation by hand: residuals of x and y on the covariates (listwise complete).
    wide = analysed_study(study, results["deviations"]).measures(wide=True)
    columns = ["wai_sr.total@prep", "grid_hamd17.total@week4", *week4["covariates"]]
    data = wide[columns].dropna().to_numpy(float)
    design = np.column_stack([np.ones(len(data)), data[:, 2:]])
    residual = [v - design @ np.linalg.lstsq(design, v, rcond=None)[0] for v in (data[:, 0], data[:, 1])]
    assert week4["n"] == len(data)
    assert week4["r"] == pytest.approx(np.corrcoef(*residual)[0, 1], abs=1e-10)


def test_expectancy_with_a_timepoint_is_refused():
    raw = default_protocol().to_dict()
    raw["analysis"]["analyses"].append({"id": "x", "type": "partial_correlation", "x": "alliance.total",
                                        "y": "outcome@week4", "covariates": ["expectancy@baseline"]})
    with pytest.raises(ProtocolError, match="the expectancy role is at roles.expectancy.timepoint"):
        parse_protocol(raw, "p.yaml")
