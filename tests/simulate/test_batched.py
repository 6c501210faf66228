"""Batched statistics equal the per-trial reference, trial by trial.

The reference is a plain Python loop over :mod:`alliance.stats` (itself checked against R) and,
for the standard errors of the mediation paths, statsmodels OLS. The data are 20 calibrated
Levin-size trials (n = 24) with 30% attrition, so participants miss whole timepoints, plus a
stress block of very small trials (n = 6, heavy attrition) where boundary (singular) mixed-model
fits and not-computable tests are common.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from alliance import stats
from alliance.protocol import default_protocol
from alliance.simulate import batched
from alliance.simulate.power import build_design, simulate_scores
from alliance.simulate.scenario import levin2024_scenario

TESTS = [
    {"test": "correlation", "x": "wai_sr.total@prep", "y": "grid_hamd17.total@week4"},
    {"test": "paired", "x": "wai_sr.total@prep", "y": "wai_sr.total@week1"},
    {"test": "mixed_model", "y": "wai_sr.total"},
    {"test": "mediation", "x": "wai_sr.total@prep", "m": "meq30.total@peak", "y": "grid_hamd17.total@week4"},
]
TRIALS = 20


@pytest.fixture(scope="module")
def design():
    return build_design(default_protocol(), levin2024_scenario(), TESTS)


def _columns(design, values, observed, index):
    test = design.tests[index]
    return [values[..., c] for c in test.columns], [observed[..., c] for c in test.columns]


@pytest.fixture(scope="module", params=[(24, 0.3, TRIALS), (6, 0.6, 60)], ids=["levin", "tiny"])
def block(request, design):
    n, attrition, trials = request.param
    values, observed = simulate_scores(design, n, attrition, trials, seed=11, block=0)
    return values, observed


def test_correlation_equals_alliance_stats(design, block):
    values, observed = block
    (x, y), (seen_x, seen_y) = _columns(design, values, observed, 0)
    batch = batched.pearson_correlation(x, y, seen_x & seen_y)
    for s in range(x.shape[0]):
        first = np.where(seen_x[s], x[s], np.nan)
        second = np.where(seen_y[s], y[s], np.nan)
        try:
            reference = stats.correlation(first, second)
        except ValueError:
            assert not batch.computed[s]
            continue
        assert batch.computed[s]
        assert batch.n[s] == reference.n
        assert batch.r[s] == pytest.approx(reference.r, rel=1e-12, abs=1e-14)
        assert batch.p[s] == pytest.approx(reference.p, rel=1e-10, abs=1e-300)


def test_paired_equals_alliance_stats(design, block):
    values, observed = block
    (before, after), (seen_before, seen_after) = _columns(design, values, observed, 1)
    batch = batched.paired_difference(before, after, seen_before & seen_after)
    for s in range(before.shape[0]):
        try:
            reference = stats.paired_ttest(np.where(seen_before[s], before[s], np.nan),
                                           np.where(seen_after[s], after[s], np.nan))
        except ValueError:
            assert not batch.computed[s]
            continue
        assert (batch.n[s], batch.df[s]) == (reference.n, reference.df)
        assert batch.t[s] == pytest.approx(reference.t, rel=1e-10)
        assert batch.p[s] == pytest.approx(reference.p, rel=1e-10)
        assert batch.cohen_dz[s] == pytest.approx(reference.cohen_dz, rel=1e-10)


def test_mixed_model_equals_lmer_satterthwaite(design, block):
    """REML slope, SE, Satterthwaite df, t and p of value ~ time + (1|participant), as lmerTest."""
    values, observed = block
    columns, present = _columns(design, values, observed, 2)
    batch = batched.random_intercept_trend(np.stack(columns, 2), np.stack(present, 2), np.arange(3.0))
    fitted = singular = 0
    for s in range(values.shape[0]):
        participant, time = np.nonzero(np.stack(present, 1)[s].T)
        frame = pd.DataFrame({"participant": participant.astype(str), "time": time.astype(float),
                              "value": np.stack(columns, 1)[s].T[participant, time]})
        try:
            reference = stats.mixedlm("value ~ time + (1|participant)", frame)
        except ValueError:
            assert not batch.computed[s]
            continue
        fitted += 1
        singular += reference.singular
        row = reference.fixed.loc["time"]
        assert batch.computed[s]
        assert (batch.n_obs[s], batch.n_groups[s]) == (reference.n_obs, reference.n_groups)
        assert batch.singular[s] == reference.singular
        for name in ("estimate", "se", "df", "t", "p"):
            assert getattr(batch, name)[s] == pytest.approx(row[name], rel=1e-6), name
        sd = reference.varcomp.set_index("group")["sdcor"]
        assert batch.sd_residual[s] == pytest.approx(sd["Residual"], rel=1e-6)
        assert batch.sd_participant[s] == pytest.approx(sd["participant"], rel=1e-6, abs=1e-6)
    assert fitted >= 15
    if values.shape[1] == 6:
        assert singular > 0  # the stress block exercises boundary fits


def test_balanced_mixed_model_is_the_anova_solution():
    """Complete balanced data: the REML fit is the within/between (ANOVA) solution.

    Hand-worked: 4 participants × 3 timepoints, participant effects 0, 2, 4, 6 (a large,
    interior between-participant variance), slope 1 and the residuals below. The slope is the
    pooled within-participant slope Σ(y − ȳᵢ)(t − t̄) / (4 · Σ(t − t̄)²) with Σ(t − t̄)² = 2; its
    variance is σ²_within / 8, σ²_within = within SSE / (4·(3 − 1) − 1 = 7), and Satterthwaite's df
    is that same 7 (a purely within-participant contrast).
    """
    time = np.arange(3.0)
    residual = np.array([[0.3, -0.2, 0.1], [-0.4, 0.5, -0.1], [0.2, 0.0, -0.3], [0.1, -0.3, 0.4]])
    values = (np.array([0.0, 2.0, 4.0, 6.0])[:, None] + time + residual)[None]
    batch = batched.random_intercept_trend(values, np.ones_like(values, dtype=bool), time)
    centred = values[0] - values[0].mean(axis=1, keepdims=True)
    t_centred = time - time.mean()
    slope = (centred @ t_centred).sum() / (4 * (t_centred @ t_centred))
    within = centred - slope * t_centred
    sigma2 = (within**2).sum() / (4 * 2 - 1)
    assert batch.estimate[0] == pytest.approx(slope, rel=1e-12)
    assert batch.se[0] == pytest.approx(np.sqrt(sigma2 / (4 * (t_centred @ t_centred))), rel=1e-10)
    assert batch.df[0] == pytest.approx(7.0, rel=1e-8)


def test_mediation_paths_equal_alliance_stats_and_ols(design, block):
    values, observed = block
    (x, m, y), seen = _columns(design, values, observed, 3)
    complete = seen[0] & seen[1] & seen[2]
    paths = batched.mediation_paths(x, m, y, complete)
    for s in range(x.shape[0]):
        frame = pd.DataFrame({"x": x[s][complete[s]], "m": m[s][complete[s]], "y": y[s][complete[s]]})
        try:
            reference = stats.mediation(frame, "x", "m", "y", n_boot=1000, seed=1)
        except ValueError:
            assert not paths.computed[s]
            continue
        assert paths.n[s] == reference.n
        for name in ("a", "b", "c_prime", "indirect"):
            assert getattr(paths, name)[s] == pytest.approx(getattr(reference, name), rel=1e-9), name
        a_fit = sm.OLS(frame["m"], sm.add_constant(frame[["x"]])).fit()
        b_fit = sm.OLS(frame["y"], sm.add_constant(frame[["x", "m"]])).fit()
        assert paths.se_a[s] == pytest.approx(a_fit.bse["x"], rel=1e-9)
        assert paths.se_b[s] == pytest.approx(b_fit.bse["m"], rel=1e-9)


def test_monte_carlo_interval_equals_loop_and_closed_form(design, block):
    """The per-trial Monte Carlo CI is the percentile interval of a*·b* (Preacher & Selig 2012);
    the closed-form p agrees with the share of draws on the far side of zero."""
    values, observed = block
    (x, m, y), seen = _columns(design, values, observed, 3)
    paths = batched.mediation_paths(x, m, y, seen[0] & seen[1] & seen[2])
    draws = 40_000
    low, high = batched.mediation_monte_carlo_interval(paths, np.random.default_rng(3), draws=draws)
    replay = np.random.default_rng(3)
    z_a = replay.standard_normal((x.shape[0], draws))
    z_b = replay.standard_normal((x.shape[0], draws))
    p = batched.mediation_monte_carlo_p(paths)
    for s in np.flatnonzero(paths.computed):
        product = (paths.a[s] + paths.se_a[s] * z_a[s]) * (paths.b[s] + paths.se_b[s] * z_b[s])
        assert low[s] == pytest.approx(np.quantile(product, 0.025), rel=1e-12)
        assert high[s] == pytest.approx(np.quantile(product, 0.975), rel=1e-12)
        share = 2 * min(np.mean(product < 0), np.mean(product > 0))
        assert abs(share - p[s]) < 4 * np.sqrt(max(p[s], 1e-3) / draws) + 1e-4
        # the closed-form decision is the interval's decision unless the draw sits on the edge
        if abs(p[s] - 0.05) > 0.01:
            assert (p[s] < 0.05) == (low[s] > 0 or high[s] < 0)


def test_bootstrap_interval_equals_refits_per_resample(design):
    values, observed = simulate_scores(design, 12, 0.3, 4, seed=5, block=0)
    (x, m, y), seen = _columns(design, values, observed, 3)
    complete = seen[0] & seen[1] & seen[2]
    n_boot = 300
    low, high = batched.mediation_bootstrap_interval(x, m, y, complete, np.random.default_rng(9), n_boot=n_boot)
    uniform = np.random.default_rng(9).random((x.shape[0], n_boot, x.shape[1]))
    for s in range(x.shape[0]):
        rows = np.flatnonzero(complete[s])
        k = rows.size
        indirect = []
        for b in range(n_boot):
            drawn = rows[np.floor(uniform[s, b, :k] * k).astype(int)]
            if np.unique(drawn).size < 3:  # x and m collinear: left out, as alliance.stats.mediation does
                continue
            a = np.polyfit(x[s][drawn], m[s][drawn], 1)[0]
            design_matrix = np.column_stack([np.ones(k), x[s][drawn], m[s][drawn]])
            coefficients = np.linalg.lstsq(design_matrix, y[s][drawn], rcond=None)[0]
            indirect.append(a * coefficients[2])
        assert low[s] == pytest.approx(np.quantile(indirect, 0.025), rel=1e-8)
        assert high[s] == pytest.approx(np.quantile(indirect, 0.975), rel=1e-8)
