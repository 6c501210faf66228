"""Full-information ML against lavaan (reference/fiml.R → fiml.json); Rubin's rules and MI by hand and by simulation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance import stats
from alliance.stats.missing import fiml_saturated

REFERENCE = json.loads((Path(__file__).parent / "reference" / "fiml.json").read_text(encoding="utf-8"))
# lavaan's nlminb stops at rel.tol 1e-14 of the objective, not of the parameters: its estimates agree
# with the EM fixed point to about 1e-6 relative (the observed worst case is 2.2e-6), SEs to 3e-6.
REL = 1e-5


def _data(case: str) -> pd.DataFrame:
    return pd.DataFrame(REFERENCE["data"][case])


def test_reference_uses_lavaans_observed_information():
    assert REFERENCE["information"] == "observed"


@pytest.mark.parametrize("case", ["airquality", "trial", "heldout"])
def test_fiml_correlations_equal_lavaan(case):
    want = REFERENCE["correlation"][case]
    got = stats.correlation_matrix(_data(case), want["columns"], missing="fiml")
    assert got.n == want["n_used"] and got.fit.converged
    assert got.fit.loglik == pytest.approx(want["loglik"], rel=1e-9)
    for pair in want["correlations"]:
        mine = got.pair(pair["x"], pair["y"])
        assert mine["r"] == pytest.approx(pair["r"], rel=REL), pair
        assert mine["se"] == pytest.approx(pair["se"], rel=REL), pair
        assert mine["z"] == pytest.approx(pair["z"], rel=REL), pair
        assert mine["p"] == pytest.approx(pair["p"], rel=1e-4, abs=1e-12), pair
        assert mine["ci_low"] < mine["r"] < mine["ci_high"] and -1 < mine["ci_low"] and mine["ci_high"] < 1
    columns = list(got.columns)
    for entry in want["covariances"]:
        i, j = columns.index(entry["x"]), columns.index(entry["y"])
        assert got.fit.covariance[i][j] == pytest.approx(entry["estimate"], rel=REL)
    for name, value in want["means"].items():
        assert got.fit.means[columns.index(name)] == pytest.approx(value, rel=REL)


@pytest.mark.parametrize("case", ["airquality", "trial", "trial_covariate", "heldout"])
def test_fiml_mediation_equals_lavaan(case):
    want = REFERENCE["mediation"][case]
    data = _data(case.replace("_covariate", ""))
    got = stats.mediation(data, want["x"], want["m"], want["y"], covariates=want["covariates"] or None,
                          missing="fiml")
    assert got.n == want["n_used"] and got.missing == "fiml" and got.ci_method == "delta"
    for name, field in (("a", "a"), ("b", "b"), ("c_prime", "c_prime"), ("total", "total")):
        assert getattr(got, field) == pytest.approx(want[name]["estimate"], rel=REL), name
        assert getattr(got, f"{field}_se") == pytest.approx(want[name]["se"], rel=REL), name
        assert getattr(got, f"{field}_p") == pytest.approx(want[name]["p"], rel=1e-4), name
    assert got.indirect == pytest.approx(want["indirect"]["estimate"], rel=REL)
    assert got.indirect_se == pytest.approx(want["indirect"]["se"], rel=REL)
    assert got.p_indirect == pytest.approx(want["indirect"]["p"], rel=1e-4)


def test_without_missing_values_fiml_r_is_pearson_r():
    rng = np.random.default_rng(4)
    data = pd.DataFrame(rng.normal(size=(30, 3)), columns=["a", "b", "c"])
    data["b"] += 0.6 * data["a"]
    fiml = stats.correlation_matrix(data, missing="fiml")
    pearson = stats.correlation(data["a"], data["b"])
    assert fiml.pair("a", "b")["r"] == pytest.approx(pearson.r, rel=1e-10)
    assert fiml.n == fiml.n_complete == 30 and fiml.n_patterns == 1
    # ML divides by n: the FIML variance is (n - 1) / n times the sample variance
    assert fiml.fit.covariance[0][0] == pytest.approx(data["a"].var() * 29 / 30, rel=1e-10)


def test_rows_with_nothing_observed_are_not_counted():
    data = pd.DataFrame({"x": [1.0, 2, 3, 4, np.nan, 6], "y": [2.0, 1, 4, 3, np.nan, 5]})
    assert fiml_saturated(data).n == 5


@pytest.mark.parametrize(("data", "message"), [
    (pd.DataFrame({"x": [1.0, 2, np.nan, np.nan], "y": [np.nan, np.nan, 1.0, 2]}), "observed in 2 rows"),
    (pd.DataFrame({"x": [1.0, 2, 3, np.nan, np.nan, np.nan], "y": [np.nan] * 3 + [1.0, 2, 3]}),
     "never observed together"),
    (pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [2.0, 4, 6, 8]}), "singular"),
])
def test_fiml_refuses_what_it_cannot_estimate(data, message):
    with pytest.raises(ValueError, match=message):
        stats.correlation_matrix(data, missing="fiml")


def test_pairwise_and_listwise_tables():
    data = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6], "y": [2.0, 1, 4, 3, np.nan, 5], "z": [1.0, 3, 2, 5, 4, np.nan]})
    pairwise = stats.correlation_matrix(data)
    listwise = stats.correlation_matrix(data, missing="listwise")
    assert list(pairwise["n"]) == [5, 5, 4] and list(listwise["n"]) == [4, 4, 4]
    assert pairwise.loc[0, "r"] == stats.correlation(data["x"], data["y"]).r
    with pytest.raises(ValueError, match="unknown missing 'mice'"):
        stats.correlation_matrix(data, missing="mice")


# -- Rubin's rules, worked by hand ---------------------------------------------------------------

def test_rubin_pool_by_hand():
    # m = 4 estimates 0.50, 0.60, 0.40, 0.70 with variances 0.010, 0.012, 0.011, 0.013
    # Q̄ = 2.2 / 4 = 0.55;  Ū = 0.046 / 4 = 0.0115
    # B = (0.05² + 0.05² + 0.15² + 0.15²) / 3 = 0.05 / 3 = 0.016667
    # T = Ū + (1 + 1/4) B = 0.0115 + 0.0208333 = 0.0323333
    # r = 1.25 B / Ū = 1.811594;  λ = 1.25 B / T = 0.644330
    # Rubin's ν_old = (m − 1) / λ² = 3 / 0.415161 = 7.226116
    # Barnard–Rubin with ν_com = 20: ν_obs = 21/23 · 20 · (1 − λ) = 6.495066; ν = ν_old ν_obs / (ν_old + ν_obs) = 3.420496
    pooled = stats.rubin_pool([0.50, 0.60, 0.40, 0.70], [0.010, 0.012, 0.011, 0.013], df_complete=20)
    assert pooled.estimate == pytest.approx(0.55, rel=1e-12)
    assert pooled.within == pytest.approx(0.0115, rel=1e-12)
    assert pooled.between == pytest.approx(0.05 / 3, rel=1e-12)
    assert pooled.total == pytest.approx(0.0115 + 1.25 * 0.05 / 3, rel=1e-12)
    assert pooled.riv == pytest.approx(1.25 * (0.05 / 3) / 0.0115, rel=1e-12)
    lam = 1.25 * (0.05 / 3) / (0.0115 + 1.25 * 0.05 / 3)
    assert pooled.lambda_ == pytest.approx(lam, rel=1e-12)
    old = 3 / lam ** 2
    observed = 21 / 23 * 20 * (1 - lam)
    assert pooled.df == pytest.approx(old * observed / (old + observed), rel=1e-12)
    assert pooled.df == pytest.approx(3.420496, rel=1e-6)
    assert stats.rubin_pool([0.50, 0.60, 0.40, 0.70], [0.010, 0.012, 0.011, 0.013]).df == pytest.approx(old, rel=1e-12)
    # the interval is Q̄ ± t(ν) √T
    from scipy.stats import t
    half = t.ppf(0.975, pooled.df) * np.sqrt(pooled.total)
    assert (pooled.ci_low, pooled.ci_high) == pytest.approx((0.55 - half, 0.55 + half), rel=1e-12)


def test_rubin_pool_refuses_bad_input():
    with pytest.raises(ValueError, match="1 imputed data set"):
        stats.rubin_pool([0.5], [0.01])
    with pytest.raises(ValueError, match="2 estimates and 3 variances"):
        stats.rubin_pool([0.5, 0.6], [0.01, 0.01, 0.01])


# -- multiple imputation -------------------------------------------------------------------------

def test_imputation_is_reproducible_and_fills_observed_values():
    rng = np.random.default_rng(8)
    data = pd.DataFrame({"x": rng.normal(size=40), "y": rng.normal(size=40)})
    data.loc[:9, "y"] = np.nan
    first, again = stats.impute(data, m=3, seed=11, method="pmm"), stats.impute(data, m=3, seed=11, method="pmm")
    assert all(a.equals(b) for a, b in zip(first, again, strict=True))
    assert not first[0].equals(first[1])  # the data sets differ (between-imputation variance)
    observed = set(data["y"].dropna())
    assert set(first[0].loc[:9, "y"]) <= observed  # predictive mean matching imputes observed values
    assert first[0].loc[10:, "y"].equals(data.loc[10:, "y"])


def test_mi_covers_the_true_correlation_under_mar_where_complete_cases_are_biased():
    # y missing with a probability rising steeply with x (MAR given x): complete cases lose the high
    # x, which restricts x's range and attenuates r (a known bias); MI from x recovers it.
    rho, n, replicates = 0.5, 100, 200
    rng = np.random.default_rng(20261202)
    covered, mi_r, complete_r = 0, [], []
    for index in range(replicates):
        x = rng.normal(size=n)
        y = rho * x + np.sqrt(1 - rho ** 2) * rng.normal(size=n)
        y[rng.random(n) < 1 / (1 + np.exp(-2.5 * (x - 0.3)))] = np.nan
        data = pd.DataFrame({"x": x, "y": y})
        result = stats.mi_correlation(data, "x", "y", m=10, seed=index)
        covered += result.ci_low <= rho <= result.ci_high
        mi_r.append(result.r)
        complete_r.append(stats.correlation(data["x"], data["y"]).r)
    # binomial(200, .95): 95% of replicates fall in [.92, .98]; allow for MI's slight conservatism
    assert 0.91 <= covered / replicates <= 0.99
    assert abs(np.mean(mi_r) - rho) < 0.03
    assert np.mean(complete_r) < rho - 0.07


def test_mi_correlation_without_missing_values_is_pearson():
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"x": rng.normal(size=30), "y": rng.normal(size=30)})
    result = stats.mi_correlation(data, "x", "y", m=5, seed=1)
    pearson = stats.correlation(data["x"], data["y"])
    assert result.r == pytest.approx(pearson.r, rel=1e-12)
    assert result.pooled.between == 0 and result.fmi == 0
    # with nothing imputed, the interval is the Fisher-z interval on t(n - 3) instead of the normal
    assert result.ci_low == pytest.approx(np.tanh(np.arctanh(pearson.r) - 2.0518305 / np.sqrt(27)), rel=1e-6)


# -- tipping point -------------------------------------------------------------------------------

def _dropout_data(seed=5, n=40):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = -0.5 * x + rng.normal(size=n)
    y[np.argsort(x)[:10]] = np.nan  # the lowest x drop out (MAR given x)
    return pd.DataFrame({"x": x, "y": y})


def test_tipping_point_at_zero_equals_the_mar_result():
    data = _dropout_data()
    result = stats.tipping_point(data, "x", "y", m=10, seed=3)
    mar = stats.mi_correlation(data, "x", "y", m=10, seed=3)
    zero = next(row for row in result.table if row["delta"] == 0.0)
    assert zero["r"] == pytest.approx(mar.r, rel=1e-12) and zero["p"] == pytest.approx(mar.p, rel=1e-12)
    assert result.n_imputed == 10


def test_shifting_the_dropouts_moves_the_correlation_monotonically():
    # the dropouts have low x; with a negative r, shifting their imputed y upward (worse) makes r more
    # negative, shifting it downward weakens r — monotonically over the whole grid
    result = stats.tipping_point(_dropout_data(), "x", "y", m=10, seed=3)
    r = np.array([row["r"] for row in result.table])
    assert (np.diff(r) < 0).all()
    assert result.tipping_delta is None or -1.0 <= result.tipping_delta <= 1.0


def test_no_missing_outcome_has_no_tipping_point_and_says_so():
    data = _dropout_data().dropna()
    result = stats.tipping_point(data, "x", "y", m=3, seed=1)
    assert result.tipping_delta is None and result.n_imputed == 0
    assert "has no missing values" in result.notes[0]
    assert len({round(row["r"], 12) for row in result.table}) == 1
