"""Simulated item answers reproduce the published Cronbach's alpha the scenario names.

Cronbach's alpha of the simulated items is computed by the analysis (``stats.cronbach_alpha``,
itself checked against R's psych) on trials the calibration was not tuned on: other seeds, other
sizes and other targets than the scenario file's.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alliance import instruments
from alliance.analysis import run_analysis
from alliance.protocol import default_protocol, parse_analysis_plan
from alliance.simulate import simulate_trial
from alliance.simulate.items import item_sd_for_alpha
from alliance.simulate.scenario import levin2024_scenario, scenario_from_dict

PLAN = parse_analysis_plan({"analyses": [{"id": "reliability", "type": "reliability", "omega": False}]})
# Tolerance: the calibration ignores clipping at the ends of the range and items of unequal
# ranges (GRID-HAMD: 0-2 and 0-4), and a sample's alpha varies (SE about .01 at n = 500).
TOLERANCE = {"grid_hamd17": 0.06}


def alphas(scenario, n, seed):
    study = simulate_trial(default_protocol(), n=n, seed=seed, scenario=scenario)
    entries = run_analysis(study, plan=PLAN, created_utc="2026-01-01T00:00:00+00:00").to_dict()["reliability"]
    return {(e["instrument"], e["timepoint"]): e["alpha"] for e in entries
            if e["scale"] == instruments.get(e["instrument"]).scales[0].id and np.isfinite(e.get("alpha", np.nan))}


@pytest.fixture(scope="module")
def default_alphas():
    return alphas(levin2024_scenario(), 500, 11)


def test_the_scenario_names_a_published_alpha_with_its_source_for_each_multi_item_scale():
    scenario = levin2024_scenario()
    assert {"wai_sr", "meq30", "ebi"} <= set(scenario.reliability)


def test_every_calibrated_instrument_has_its_published_alpha(default_alphas):
    targets = levin2024_scenario().reliability
    checked = 0
    for (instrument_id, timepoint), alpha in default_alphas.items():
        if instrument_id in targets:
            assert abs(alpha - targets[instrument_id]) < TOLERANCE.get(instrument_id, 0.03), (instrument_id, timepoint, alpha)
            checked += 1
    assert checked >= 7  # wai_sr at 3 timepoints, meq30 and ebi at 2 each


def test_the_mystical_experience_is_no_longer_implausibly_reliable(default_alphas):
    assert max(a for (i, _), a in default_alphas.items() if i == "meq30") < 0.97


# Targets the scenario file does not use. (Far lower ones are out of reach for the MEQ30: its 30
# items near the top of their range are clipped, and the sample alpha stops near .87.)
@pytest.mark.parametrize("target", [0.85, 0.95])
def test_other_targets_and_sizes_than_the_scenario_file(target):
    scenario = dataclasses.replace(levin2024_scenario(), reliability={"wai_sr": target, "meq30": target, "ebi": target})
    found = alphas(scenario, 300, 99)
    for instrument_id in ("wai_sr", "meq30", "ebi"):
        values = [a for (i, _), a in found.items() if i == instrument_id]
        assert values and abs(np.median(values) - target) < 0.04, (instrument_id, values)


def test_item_noise_grows_as_the_target_alpha_falls_and_is_zero_when_out_of_reach():
    wai = instruments.get("wai_sr")
    scores = np.random.default_rng(1).normal(45, 7, size=200).clip(12, 60)
    sds = [item_sd_for_alpha(wai, scores, a) for a in (0.95, 0.9, 0.8, 0.7)]
    assert all(b > a for a, b in zip(sds, sds[1:], strict=False))
    assert item_sd_for_alpha(wai, np.full(50, 45.0), 0.9) == 0.0  # no true-score spread
    assert item_sd_for_alpha(wai, scores[:1], 0.9) == 0.0


def test_a_scenario_alpha_outside_0_1_is_refused():
    from alliance.simulate.copula import CalibrationError

    with pytest.raises(CalibrationError, match=r"reliability\.wai_sr: give alpha, a number between 0 and 1"):
        scenario_from_dict({"reliability": {"wai_sr": {"alpha": 1.2}}}, "s.yaml")
