"""Mediation: OLS paths against lavaan, and the vectorized bootstrap against plain loops."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alliance.stats.mediation import CHUNK_ELEMENTS, _chunk_rows, mediation
from tests.stats.conftest import ESTIMATE_ABS, ESTIMATE_REL, assert_close, reference_entry

SWISS_PATH = ("Education", "Examination", "Fertility")


def _ols(design: np.ndarray, response: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(design, response, rcond=None)[0]


def _slow_indirect(x: np.ndarray, m: np.ndarray, y: np.ndarray) -> float:
    """a·b from two separate least-squares fits, the textbook way."""
    ones = np.ones_like(x)
    a = _ols(np.column_stack([ones, x]), m)[1]
    b = _ols(np.column_stack([ones, m, x]), y)[1]
    return a * b


@pytest.fixture
def swiss(reference_data):
    return reference_data("swiss")


def test_paths_match_lavaan(reference, swiss):
    expected = reference_entry(reference["mediation"], "swiss_education_examination_fertility")
    result = mediation(swiss, expected["x"], expected["m"], expected["y"], n_boot=1000, seed=1)
    assert result.n == expected["n"]
    for field in ("a", "b", "c_prime", "indirect", "total"):
        assert_close(getattr(result, field), expected[field], ESTIMATE_REL, ESTIMATE_ABS, what=field)


def test_total_equals_the_simple_regression_coefficient(swiss):
    x, m, y = (swiss[column].to_numpy() for column in SWISS_PATH)
    total = _ols(np.column_stack([np.ones_like(x), x]), y)[1]
    result = mediation(swiss, *SWISS_PATH, n_boot=1000, seed=1)
    assert_close(result.total, total, 1e-10)


def test_covariates_enter_both_regressions(swiss):
    import statsmodels.formula.api as smf

    result = mediation(swiss, *SWISS_PATH, covariates=["Catholic", "Agriculture"], n_boot=1000, seed=1)
    a = smf.ols("Examination ~ Education + Catholic + Agriculture", swiss).fit().params["Education"]
    outcome = smf.ols("Fertility ~ Examination + Education + Catholic + Agriculture", swiss).fit().params
    total = smf.ols("Fertility ~ Education + Catholic + Agriculture", swiss).fit().params["Education"]
    assert_close(result.a, a, 1e-10)
    assert_close(result.b, outcome["Examination"], 1e-10)
    assert_close(result.c_prime, outcome["Education"], 1e-10)
    assert_close(result.total, total, 1e-10)


def test_bootstrap_equals_a_loop_over_the_same_resamples(swiss):
    # mediation draws its (n_boot × n) index matrix from default_rng(seed) in consecutive chunks
    # of _chunk_rows(n, p) rows (p = 4 design columns: 1, x, m, y). Replaying those draws and
    # refitting each resample in a loop must give the same SE, percentile and BCa intervals and p.
    n_boot, seed = 2000, 7
    n = len(swiss)
    rng = np.random.default_rng(seed)
    chunk = _chunk_rows(n, 4)
    assert chunk < n_boot  # the replay covers several chunks
    indices = np.vstack(
        [rng.integers(0, n, size=(min(chunk, n_boot - start), n)) for start in range(0, n_boot, chunk)]
    )
    x, m, y = (swiss[column].to_numpy() for column in SWISS_PATH)
    boot = np.array([_slow_indirect(x[row], m[row], y[row]) for row in indices])
    estimate = _slow_indirect(x, m, y)

    percentile = mediation(swiss, *SWISS_PATH, n_boot=n_boot, seed=seed)
    assert_close(percentile.indirect_se, boot.std(ddof=1), 1e-9)
    low, high = np.quantile(boot, [0.025, 0.975])
    assert_close(percentile.indirect_ci_low, low, 1e-9)
    assert_close(percentile.indirect_ci_high, high, 1e-9)
    tail = min(np.mean(boot <= 0), np.mean(boot >= 0))
    assert_close(percentile.p_indirect, max(2 * tail, 1 / n_boot), 1e-12)

    # BCa (Efron 1987): bias z0 from the share below the estimate, acceleration from a jackknife loop
    jackknife = np.array(
        [_slow_indirect(np.delete(x, i), np.delete(m, i), np.delete(y, i)) for i in range(n)]
    )
    deviation = jackknife.mean() - jackknife
    acceleration = np.sum(deviation**3) / (6 * np.sum(deviation**2) ** 1.5)
    bias = stats.norm.ppf(np.mean(boot < estimate))
    z = stats.norm.ppf([0.025, 0.975])
    levels = stats.norm.cdf(bias + (bias + z) / (1 - acceleration * (bias + z)))
    bca = mediation(swiss, *SWISS_PATH, n_boot=n_boot, seed=seed, ci="bca")
    expected_low, expected_high = np.quantile(boot, levels)
    assert_close(bca.indirect_ci_low, expected_low, 1e-9)
    assert_close(bca.indirect_ci_high, expected_high, 1e-9)
    assert bca.ci_method == "bca"


def test_percentile_interval_agrees_with_an_independent_slow_bootstrap(swiss):
    # An independent plain-loop percentile bootstrap (different random stream, same n_boot).
    # Monte Carlo error of a 2.5% quantile from B = 2000 resamples is about
    # SE·√(.025·.975/B)/φ(1.96) ≈ 0.06·SE, so two independent estimates differ by about
    # √2·0.06 ≈ 0.085·SE; allow 0.5·SE (≈ 6 standard deviations of that difference).
    n_boot = 2000
    result = mediation(swiss, *SWISS_PATH, n_boot=n_boot, seed=2024)
    x, m, y = (swiss[column].to_numpy() for column in SWISS_PATH)
    rng = np.random.default_rng(99)
    slow = []
    for _ in range(n_boot):
        row = rng.choice(len(x), size=len(x), replace=True)
        slow.append(_slow_indirect(x[row], m[row], y[row]))
    slow = np.array(slow)
    tolerance = 0.5 * slow.std(ddof=1)
    low, high = np.quantile(slow, [0.025, 0.975])
    assert abs(result.indirect_ci_low - low) < tolerance
    assert abs(result.indirect_ci_high - high) < tolerance
    assert abs(result.indirect_se - slow.std(ddof=1)) < 0.1 * slow.std(ddof=1)
    assert result.indirect_ci_low < result.indirect < result.indirect_ci_high


@pytest.mark.parametrize("ci", ["percentile", "bca"])
def test_same_seed_same_answer(swiss, ci):
    first = mediation(swiss, *SWISS_PATH, n_boot=3000, seed=123, ci=ci)
    second = mediation(swiss, *SWISS_PATH, n_boot=3000, seed=123, ci=ci)
    assert first == second
    other = mediation(swiss, *SWISS_PATH, n_boot=3000, seed=124, ci=ci)
    assert other.indirect_ci_low != first.indirect_ci_low
    assert other.indirect == first.indirect


def test_large_bootstrap_is_chunked_consistently():
    # n·n_boot above the chunk size: several index chunks, still deterministic and well formed
    rng = np.random.default_rng(4)
    x = rng.normal(size=400)
    m = 0.4 * x + rng.normal(size=400)
    y = 0.3 * m + rng.normal(size=400)
    data = pd.DataFrame({"x": x, "m": m, "y": y})
    assert 6000 * 400 > CHUNK_ELEMENTS
    first = mediation(data, "x", "m", "y", n_boot=6000, seed=5)
    assert first == mediation(data, "x", "m", "y", n_boot=6000, seed=5)
    assert first.indirect_ci_low < first.indirect < first.indirect_ci_high
    assert first.p_indirect == pytest.approx(1 / 6000)  # every resample has a·b > 0


def test_degenerate_resamples_are_counted_and_left_out():
    # One treated participant among eight: about (7/8)^8 ≈ 34% of resamples miss them, x is then
    # constant and the regressions are singular.
    data = pd.DataFrame(
        {
            "x": [0, 0, 0, 0, 0, 0, 0, 1.0],
            "m": [1.0, 2.0, 1.5, 2.5, 1.0, 3.0, 2.0, 4.0],
            "y": [2.0, 3.5, 2.5, 4.0, 2.0, 5.0, 3.0, 6.5],
        }
    )
    result = mediation(data, "x", "m", "y", n_boot=2000, seed=3)
    assert 500 < result.n_boot_degenerate < 900
    assert result.n_boot == 2000
    assert np.isfinite(result.indirect_ci_low) and np.isfinite(result.indirect_se)


def test_listwise_deletion(swiss):
    with_missing = swiss.copy()
    with_missing.loc[with_missing.index[:3], "Examination"] = np.nan
    with_missing.loc[with_missing.index[5], "Fertility"] = np.nan
    result = mediation(with_missing, *SWISS_PATH, n_boot=500, seed=1)
    complete = mediation(with_missing.dropna(subset=list(SWISS_PATH)), *SWISS_PATH, n_boot=500, seed=1)
    assert result == complete
    assert result.n == 43


def test_to_dict_is_json_safe(swiss):
    as_dict = mediation(swiss, *SWISS_PATH, n_boot=500, seed=1).to_dict()
    text = json.dumps(as_dict, allow_nan=False)
    assert json.loads(text)["ci_method"] == "percentile"
    assert isinstance(as_dict["n"], int) and isinstance(as_dict["indirect"], float)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ci": "normal"}, "supported: 'percentile', 'bca'"),
        ({"n_boot": 10}, "at least 100"),
        ({"confidence": 1.5}, "confidence"),
        ({"covariates": ["Nowhere"]}, "not found"),
        ({"covariates": ["Education"]}, "distinct"),
    ],
)
def test_mediation_rejects_bad_input(swiss, kwargs, message):
    with pytest.raises(ValueError, match=message):
        mediation(swiss, *SWISS_PATH, **kwargs)


def test_mediation_needs_enough_rows(swiss):
    with pytest.raises(ValueError, match="complete rows"):
        mediation(swiss.iloc[:4], *SWISS_PATH, n_boot=100)
