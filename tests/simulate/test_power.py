"""Simulation-based power: agreement with analytic power, with a slow reference loop over
``alliance.stats``, the attrition pattern, determinism across executors, and the result format."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportion_confint

from alliance import stats
from alliance.protocol import default_protocol
from alliance.simulate import CalibrationError, batched
from alliance.simulate.executors import DaskExecutor, ProcessExecutor, SerialExecutor, make_executor
from alliance.simulate.power import (
    PowerPlan,
    PowerSpecificationError,
    analytic_correlation_power,
    analytic_paired_power,
    build_design,
    default_power_tests,
    parse_n_range,
    power_analysis,
    run_block,
    simulate_scores,
    split_power_options,
    trial_statistics,
    wilson_interval,
)
from alliance.simulate.scenario import levin2024_scenario
from alliance.simulate.trial import score_model

ALLIANCE_MEQ = {"test": "correlation", "x": "wai_sr.total@prep", "y": "meq30.total@peak"}
ALLIANCE_CHANGE = {"test": "paired", "x": "wai_sr.total@prep", "y": "wai_sr.total@week1"}


@pytest.fixture(scope="module")
def protocol():
    return default_protocol()


def _within_monte_carlo(simulated: float, expected: float, sims: int, extra: float = 0.0) -> bool:
    """|simulated − expected| within 4 binomial standard errors (two-sided p ≈ 6e-5 per check)."""
    return abs(simulated - expected) <= 4.0 * math.sqrt(expected * (1.0 - expected) / sims) + extra


def test_correlation_power_matches_analytic_power(protocol):
    """Bivariate normal scores with ρ = .49: simulated power = exact power (Hotelling's density)
    within Monte Carlo error at n = 15, 30, 45, and = Fisher-z power within Monte Carlo error plus
    Fisher's approximation error (the z approximation is low by .023, .014, .005 here)."""
    sims = 20_000
    result = power_analysis([15, 30, 45], 0.0, sims, seed=3, tests=[ALLIANCE_MEQ], distribution="normal",
                            protocol=protocol)
    for entry in result.entries:
        assert entry["effect"] == pytest.approx(0.49, abs=1e-12)
        exact = analytic_correlation_power(0.49, entry["n"])
        fisher = analytic_correlation_power(0.49, entry["n"], method="fisher_z")
        assert _within_monte_carlo(entry["power"], exact, sims), (entry["n"], entry["power"], exact)
        assert _within_monte_carlo(entry["power"], fisher, sims, extra=abs(exact - fisher)), entry["n"]
        assert entry["ci_low"] <= entry["power"] <= entry["ci_high"]


def test_correlation_power_matches_fisher_z_power_at_larger_n(protocol):
    """With ρ = .25 at n = 60, 100, 150, Fisher's z approximation is accurate to a fraction of the
    Monte Carlo error, so the simulated power must equal it within Monte Carlo error alone."""
    sims = 20_000
    overrides = {"correlations": [["wai_sr.total@prep", "meq30.total@peak", 0.25]]}
    result = power_analysis([60, 100, 150], 0.0, sims, seed=5, overrides=overrides, tests=[ALLIANCE_MEQ],
                            distribution="normal", protocol=protocol)
    for entry in result.entries:
        assert entry["effect"] == pytest.approx(0.25, abs=1e-12)
        # Fisher z, written out here: power = Φ(atanh(ρ)√(n−3) − z.975) + Φ(−atanh(ρ)√(n−3) − z.975).
        shift = math.atanh(0.25) * math.sqrt(entry["n"] - 3)
        normal = scipy_stats.norm
        fisher = normal.cdf(shift - normal.ppf(0.975)) + normal.cdf(-shift - normal.ppf(0.975))
        assert fisher == pytest.approx(analytic_correlation_power(0.25, entry["n"], method="fisher_z"), abs=1e-12)
        assert _within_monte_carlo(entry["power"], fisher, sims), (entry["n"], entry["power"], fisher)


def test_exact_correlation_power_reference_values():
    """Hotelling's exact power against a 400,000-trial simulation of the t-test (ρ = .49, n = 15):
    0.48257 ± 0.0008; Fisher's z gives 0.4591."""
    assert analytic_correlation_power(0.49, 15) == pytest.approx(0.48257, abs=0.0025)
    assert analytic_correlation_power(0.49, 15, method="fisher_z") == pytest.approx(0.45905, abs=1e-5)
    assert analytic_correlation_power(0.0, 30) == pytest.approx(0.05, abs=1e-9)  # the size of the test


def test_paired_power_matches_noncentral_t(protocol):
    sims = 20_000
    result = power_analysis([10, 20, 40], 0.0, sims, seed=4, tests=[ALLIANCE_CHANGE], distribution="normal",
                            protocol=protocol)
    dz = result.entries[0]["effect"]
    # scenario: means 46 → 47.98, SD 6.5 at both, r = .75: dz = 1.98 / (6.5 √(2 · .25)) = .4308
    assert dz == pytest.approx(1.98 / (6.5 * math.sqrt(0.5)), rel=1e-12)
    for entry in result.entries:
        expected = float(analytic_paired_power(dz, entry["n"]))
        assert _within_monte_carlo(entry["power"], expected, sims), (entry["n"], entry["power"], expected)


def test_attrition_is_monotone_dropout_over_protocol_timepoints(protocol):
    """A participant is lost with probability a and then leaves after one of the first 9 of the 10
    timepoints, uniformly. wai_sr@prep (2nd timepoint) and meq30@peak (complete at session 2, the 5th)
    are both observed unless the participant leaves after timepoint 1–4: q = 1 − a · 4/9. Power is
    then the binomial mixture of the exact power over the number of complete pairs."""
    sims, n, a = 20_000, 20, 0.3
    result = power_analysis(n, a, sims, seed=5, tests=[ALLIANCE_MEQ], distribution="normal", protocol=protocol)
    entry = result.entries[0]
    q = 1.0 - a * 4.0 / 9.0
    assert entry["mean_analysed"] == pytest.approx(n * q, abs=4 * math.sqrt(n * q * (1 - q) / sims))
    weights = scipy_stats.binom.pmf(np.arange(n + 1), n, q)
    expected = sum(weights[k] * analytic_correlation_power(0.49, k) for k in range(4, n + 1))
    expected += weights[3] * 0.0  # k = 3: r is tested on 1 df; negligible weight (q³ terms) either way
    assert _within_monte_carlo(entry["power"], expected, sims, extra=weights[3]), (entry["power"], expected)


@pytest.fixture(scope="module")
def reference_block(protocol):
    """40 calibrated Levin-size trials with 20% attrition and every default test."""
    design = build_design(protocol, levin2024_scenario(), default_power_tests())
    values, observed = simulate_scores(design, 24, 0.2, 40, seed=8, block=0)
    return design, values, observed


def _reference_decisions(design, values, observed) -> list[np.ndarray]:
    """The slow loop: one alliance.stats (or statsmodels) call per trial and test."""
    decisions = []
    for test in design.tests:
        columns = [values[..., c] for c in test.columns]
        present = [observed[..., c] for c in test.columns]
        rejected = np.zeros(values.shape[0], dtype=bool)
        for s in range(values.shape[0]):
            try:
                if test.spec.test in ("correlation", "paired"):
                    first = np.where(present[0][s] & present[1][s], columns[0][s], np.nan)
                    second = np.where(present[0][s] & present[1][s], columns[1][s], np.nan)
                    function = stats.correlation if test.spec.test == "correlation" else stats.paired_ttest
                    p = function(first, second).p
                elif test.spec.test == "mixed_model":
                    mask = np.stack(present, 2)[s]  # (n, T)
                    participant, time = np.nonzero(mask)
                    frame = pd.DataFrame({"participant": participant.astype(str), "time": time.astype(float),
                                          "value": np.stack(columns, 2)[s][participant, time]})
                    p = stats.mixedlm("value ~ time + (1|participant)", frame).fixed.loc["time", "p"]
                else:
                    keep = present[0][s] & present[1][s] & present[2][s]
                    frame = pd.DataFrame({"x": columns[0][s][keep], "m": columns[1][s][keep], "y": columns[2][s][keep]})
                    a_fit = sm.OLS(frame["m"], sm.add_constant(frame[["x"]])).fit()
                    b_fit = sm.OLS(frame["y"], sm.add_constant(frame[["x", "m"]])).fit()
                    za, zb = a_fit.params["x"] / a_fit.bse["x"], b_fit.params["m"] / b_fit.bse["m"]
                    below = scipy_stats.norm.cdf(-za) * scipy_stats.norm.cdf(zb) + \
                        scipy_stats.norm.cdf(za) * scipy_stats.norm.cdf(-zb)
                    p = 2 * min(below, 1 - below)
            except ValueError:
                continue
            rejected[s] = p < design.alpha
        decisions.append(rejected)
    return decisions


def test_power_equals_reference_loop_trial_by_trial(reference_block):
    design, values, observed = reference_block
    batch = trial_statistics(design, values, observed)
    reference = _reference_decisions(design, values, observed)
    for test, (_, _, rejected), expected in zip(design.tests, batch, reference, strict=True):
        np.testing.assert_array_equal(rejected, expected, err_msg=test.spec.label)
    outcome = run_block(design, _block_spec(24, 0.2, 0, 40), seed=8)
    assert outcome.rejected == tuple(int(r.sum()) for r in reference)


def _block_spec(n, attrition, block, trials):
    from alliance.simulate.power import BlockSpec

    return BlockSpec(n, attrition, block, trials)


def test_bootstrap_mediation_power_agrees_with_alliance_stats(protocol):
    """With mediation_ci="bootstrap" each decision is a percentile bootstrap CI, as in
    alliance.stats.mediation; the resamples differ, so decisions agree except near the boundary."""
    tests = [{"test": "mediation", "x": "wai_sr.total@prep", "m": "meq30.total@peak",
              "y": "grid_hamd17.total@week4"}]
    design = build_design(protocol, levin2024_scenario(), tests, mediation_ci="bootstrap", n_boot=1000)
    values, observed = simulate_scores(design, 40, 0.0, 60, seed=9, block=0)
    (_, _, rejected), = trial_statistics(design, values, observed, np.random.default_rng(1))
    x, m, y = (values[..., c] for c in design.tests[0].columns)
    reference = np.array([
        (lambda r: r.indirect_ci_low > 0 or r.indirect_ci_high < 0)(
            stats.mediation(pd.DataFrame({"x": x[s], "m": m[s], "y": y[s]}), "x", "m", "y", n_boot=1000, seed=s))
        for s in range(x.shape[0])])
    assert np.mean(rejected == reference) >= 0.9
    assert abs(rejected.mean() - reference.mean()) <= 0.1


def test_same_seed_same_result_and_grid_independence(protocol):
    tests = default_power_tests()
    first = power_analysis([20, 24], [0.0, 0.1], 300, seed=21, tests=tests, protocol=protocol)
    again = power_analysis([20, 24], [0.0, 0.1], 300, seed=21, tests=tests, protocol=protocol, task_seconds=0.0)
    assert first.to_dict() == again.to_dict()
    other = power_analysis([20, 24], [0.0, 0.1], 300, seed=22, tests=tests, protocol=protocol)
    assert [e["power"] for e in other.entries] != [e["power"] for e in first.entries]
    alone = power_analysis(24, 0.1, 300, seed=21, tests=tests, protocol=protocol)
    in_grid = [e for e in first.entries if (e["n"], e["attrition"]) == (24, 0.1)]
    assert list(alone.entries) == in_grid


def test_serial_processes_and_dask_give_identical_results(protocol):
    pytest.importorskip("distributed")
    plan = PowerPlan.build([20, 30], [0.0, 0.2], 600, seed=31, protocol=protocol)
    assert len(plan.tasks(task_seconds=0.0)) == 4  # one block per cell: work really is spread
    with SerialExecutor() as executor:
        serial = plan.run(executor, task_seconds=0.0).to_dict()
    with ProcessExecutor(2) as executor:
        processes = plan.run(executor, task_seconds=0.0).to_dict()
    with DaskExecutor(workers=2) as executor:
        assert executor.workers == 2
        dask = plan.run(executor, task_seconds=0.0).to_dict()
    assert processes == serial
    assert dask == serial


def test_make_executor_options():
    assert isinstance(make_executor(), SerialExecutor)
    assert isinstance(make_executor(processes=2), ProcessExecutor)
    with pytest.raises(RuntimeError, match="choose one of"):
        make_executor(workers=2, processes=2)


def test_tabulated_quantiles_match_the_beta_marginals(protocol):
    """Within |z| ≤ 6 (all but 2e-9 of the draws) the table is the beta quantile to 1e-9 of the range.
    Beyond, BetaMarginal.from_normal itself loses digits (Φ(z) rounds to 1 in double precision near
    z = 8), so only closeness is asked there."""
    design = build_design(protocol, levin2024_scenario(), default_power_tests())
    exact = build_design(protocol, levin2024_scenario(), default_power_tests(), exact_quantiles=True)
    z = np.linspace(-6.0, 6.0, 120_001)
    tails = np.array([-8.4, -7.5, 7.5, 8.4])
    for column, table, marginal in zip(design.columns, design.transforms, exact.transforms, strict=True):
        width = marginal.high - marginal.low
        error = np.max(np.abs(table(z) - marginal.from_normal(z)))
        assert error <= 1e-9 * width, (design.measures[column], error)
        assert np.max(np.abs(table(tails) - marginal.from_normal(tails))) <= 1e-4 * width


def test_exact_quantiles_reproduce_score_model_draws(protocol):
    """With exact quantiles a block is ScoreModel.draw on the block's score stream, column by column.
    The stream is SeedSequence(seed, spawn_key=(n, attrition in ppm, block, 0))."""
    design = build_design(protocol, levin2024_scenario(), default_power_tests(), exact_quantiles=True)
    values, _ = simulate_scores(design, 24, 0.1, 30, seed=12, block=2)
    model = score_model(protocol, levin2024_scenario())  # solved afresh: the cache is not under test
    rng = np.random.default_rng(np.random.SeedSequence(12, spawn_key=(24, 100_000, 2, 0)))
    np.testing.assert_allclose(values, model.draw(rng, (30, 24))[..., list(design.columns)], rtol=1e-12)


def test_effects_are_the_scenario_population_values(protocol):
    design = build_design(protocol, levin2024_scenario(), default_power_tests())
    effects = {t.spec.label: (t.effect, t.effect_measure) for t in design.tests}
    published = {  # Levin et al. (2024), abstract
        "correlation wai_sr.total@prep ~ grid_hamd17.total@week4": -0.65,
        "correlation wai_sr.total@prep ~ grid_hamd17.total@month12": -0.54,
        "correlation wai_sr.total@prep ~ meq30.total@peak": 0.49,
        "correlation meq30.total@peak ~ grid_hamd17.total@week4": -0.45,
    }
    for label, r in published.items():
        assert effects[label] == (pytest.approx(r, abs=1e-6), "r")
    assert effects["paired wai_sr.total@prep → wai_sr.total@week1"][0] == pytest.approx(0.4308, abs=1e-4)
    # WAI-SR means 46, 47, 47.98 at time 0, 1, 2: least-squares slope (47.98 − 46) / 2 = 0.99
    assert effects["mixed_model wai_sr.total ~ time (prep, post_session1, week1)"] == (pytest.approx(0.99), "slope_per_timepoint")
    # a·b in raw units: standardized a = .49, b = (−.45 − .49·(−.65)) / (1 − .49²) = −.17305,
    # times SD(HAMD week 4) / SD(WAI-SR prep) = 5.7 / 6.5
    indirect = 0.49 * (-0.45 + 0.49 * 0.65) / (1 - 0.49**2) * 5.7 / 6.5
    assert effects["mediation wai_sr.total@prep → meq30.total@peak → grid_hamd17.total@week4"] == \
        (pytest.approx(indirect, rel=1e-5), "indirect_ab")


def test_wilson_interval_hand_worked():
    # 80 of 100: p̂ = .8, z = 1.95996, z² = 3.84146; centre = (.8 + .019207)/1.038415 = .788907,
    # half = 1.95996 · √(.0016 + .000096)/1.038415 = .077729 → (.71118, .86664)
    low, high = wilson_interval(80, 100)
    assert (float(low), float(high)) == (pytest.approx(0.71118, abs=1e-5), pytest.approx(0.86664, abs=1e-5))
    assert (float(low), float(high)) == pytest.approx(proportion_confint(80, 100, method="wilson"), abs=1e-12)
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(50, 50)[1] == 1.0


def test_result_format_and_overrides(protocol):
    overrides = {"correlations": [["wai_sr.total@prep", "meq30.total@peak", 0.3]]}
    tests = [ALLIANCE_MEQ,
             {"test": "mixed_model", "y": "wai_sr.total"},
             {"test": "mediation", "x": "wai_sr.total@prep", "m": "meq30.total@peak", "y": "grid_hamd17.total@week4"}]
    result = power_analysis([20, 40], [0.0, 0.1], 200, seed=2, tests=tests, overrides=overrides, protocol=protocol)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["seed"] == 2 and data["sims"] == 200 and data["overrides"] == overrides
    assert data["scenario"] == "levin2024" and data["protocol"] == "levin2024"
    with pytest.raises(CalibrationError, match="cannot hold together"):
        power_analysis(20, sims=10, tests=tests, protocol=protocol,
                       overrides={"correlations": [["wai_sr.total@prep", "grid_hamd17.total@week4", 0.9]]})
    assert len(data["entries"]) == 3 * 2 * 2
    required = {"test", "x", "y", "n", "attrition", "effect", "power", "ci_low", "ci_high", "sims"}
    for entry in data["entries"]:
        assert required <= set(entry)
        assert entry["test"] in ("correlation", "mixed_model", "mediation")
    correlation = [e for e in data["entries"] if e["test"] == "correlation"]
    assert all(e["effect"] == pytest.approx(0.3, abs=1e-6) for e in correlation)
    mixed = next(e for e in data["entries"] if e["test"] == "mixed_model")
    assert (mixed["x"], mixed["y"], mixed["timepoints"]) == ("time", "wai_sr.total", ["prep", "post_session1", "week1"])
    assert next(e for e in data["entries"] if e["test"] == "mediation")["m"] == "meq30.total@peak"
    assert set(result.minimum_n().columns) >= {"test", "attrition", "n"}


def test_bad_specifications_say_what_is_allowed(protocol):
    with pytest.raises(PowerSpecificationError, match="not a measure of the protocol"):
        power_analysis(20, tests=[{"test": "correlation", "x": "wai_sr.total@month3", "y": "grid_hamd17.total@week4"}],
                       sims=10, protocol=protocol)
    with pytest.raises(PowerSpecificationError, match="allowed: correlation, paired, mixed_model, mediation"):
        power_analysis(20, tests=[{"test": "anova", "x": "a", "y": "b"}], sims=10, protocol=protocol)
    with pytest.raises(PowerSpecificationError, match=r"\[0, 1\)"):
        PowerPlan.build(20, attrition=1.0, protocol=protocol)
    with pytest.raises(PowerSpecificationError, match="unknown option"):
        split_power_options({"power": {"samples": 3}})
    assert split_power_options({"missing": {"dropout_probability": 0.1}, "power": {"alpha": 0.01}}) == \
        ({"missing": {"dropout_probability": 0.1}}, {"alpha": 0.01})


def test_parse_n_range():
    assert parse_n_range("20:200:20") == list(range(20, 201, 20))
    assert parse_n_range("24") == [24]
    assert parse_n_range("30,20,30") == [20, 30]
    with pytest.raises(PowerSpecificationError, match="start:stop:step"):
        parse_n_range("20:x")
    with pytest.raises(PowerSpecificationError, match="at least 3"):
        parse_n_range("2")


def test_not_computable_trials_count_as_not_rejecting(protocol):
    """n = 4 with heavy attrition: many trials have fewer than 5 complete for mediation."""
    result = power_analysis(4, 0.6, 300, seed=1, protocol=protocol,
                            tests=[{"test": "mediation", "x": "wai_sr.total@prep", "m": "meq30.total@peak",
                                    "y": "grid_hamd17.total@week4"}])
    entry = result.entries[0]
    assert entry["computed"] == 0 and entry["power"] == 0.0 and entry["sims"] == 300


def test_batched_module_handles_empty_trials():
    values = np.zeros((2, 3))
    observed = np.zeros((2, 3), dtype=bool)
    assert not batched.pearson_correlation(values, values, observed).computed.any()
    assert not batched.paired_difference(values, values, observed).computed.any()
    trend = batched.random_intercept_trend(np.zeros((2, 3, 3)), np.zeros((2, 3, 3), dtype=bool), np.arange(3.0))
    assert not trend.computed.any() and np.isnan(trend.p).all()
