"""Pearson, Spearman and partial correlation against R and hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.stats.correlation import correlation, partial_correlation
from tests.stats.conftest import ESTIMATE_ABS, ESTIMATE_REL, P_ABS, P_REL, assert_close, reference_entry


@pytest.fixture
def sleepstudy_days(reference_data):
    data = reference_data("sleepstudy").sort_values(["Subject", "Days"])
    day0 = data.loc[data["Days"] == 0, "Reaction"].to_numpy()
    day9 = data.loc[data["Days"] == 9, "Reaction"].to_numpy()
    return day0, day9


def test_pearson_matches_r_cor_test(reference, sleepstudy_days):
    expected = reference_entry(reference["correlation"], "sleepstudy_day0_day9")
    result = correlation(*sleepstudy_days, method="pearson")
    assert result.n == expected["n"]
    assert_close(result.r, expected["r"], ESTIMATE_REL, ESTIMATE_ABS, what="r")
    assert_close(result.p, expected["p"], P_REL, P_ABS, what="p")
    assert_close(result.ci_low, expected["ci_low"], ESTIMATE_REL, ESTIMATE_ABS, what="ci_low")
    assert_close(result.ci_high, expected["ci_high"], ESTIMATE_REL, ESTIMATE_ABS, what="ci_high")


def test_spearman_matches_r_cor_test(reference, sleepstudy_days):
    # n = 18 without ties: R uses the Edgeworth series of AS 89, not the t approximation
    expected = reference_entry(reference["correlation"], "sleepstudy_day0_day9")
    result = correlation(*sleepstudy_days, method="spearman")
    assert result.n == expected["n"]
    assert result.p_method == "edgeworth"
    assert_close(result.r, expected["spearman_rho"], ESTIMATE_REL, ESTIMATE_ABS, what="rho")
    assert_close(result.p, expected["spearman_p"], P_REL, P_ABS, what="spearman p")


def test_spearman_ci_is_fisher_z_with_fieller_variance(sleepstudy_days):
    # rho = 0.3106295, atanh(rho) = 0.3210..., SE = sqrt(1.06 / 15) = 0.265832
    result = correlation(*sleepstudy_days, method="spearman")
    z = math.atanh(result.r)
    half_width = 1.959963984540054 * math.sqrt(1.06 / 15)
    assert_close(result.ci_low, math.tanh(z - half_width), 1e-12)
    assert_close(result.ci_high, math.tanh(z + half_width), 1e-12)


def test_pearson_hand_worked():
    # x = 1..5, y = 2 1 4 3 5: Sxy = 8, Sxx = Syy = 10, r = 0.8;
    # t = 0.8·√(3 / 0.36) = 2.309401, p = 2·P(T₃ ≥ 2.309401) = 0.1040880 (R: 0.1041)
    result = correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert_close(result.r, 0.8, 1e-12)
    assert_close(result.p, 0.1040880, 0, 5e-7)
    # Fisher interval: atanh(0.8) = 1.098612, SE = 1/√2, tanh(1.098612 ± 1.385904)
    assert_close(result.ci_low, math.tanh(math.atanh(0.8) - 1.959963984540054 / math.sqrt(2)), 1e-12)


def test_spearman_exact_small_sample_hand_worked():
    # x = 1..5, y = 2 1 4 3 5: rho = 0.8, S = Σd² = 1 + 1 + 1 + 1 + 0 = 4.
    # Permutations of 5 ranks with Σd² ≤ 4: the identity (0), 4 adjacent swaps (2 each) and the
    # 3 disjoint pairs of adjacent swaps (4 each) = 8 of 120 → P(S ≤ 4) = 1/15, p = 2/15 (R: 0.1333).
    result = correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], method="spearman")
    assert result.p_method == "exact"
    assert_close(result.r, 0.8, 1e-12)
    assert_close(result.p, 2 / 15, 1e-12)


def test_spearman_negative_exact_uses_upper_tail():
    # y reversed: rho = −0.8, S = 36; by symmetry p = 2/15 again
    result = correlation([1, 2, 3, 4, 5], [4, 5, 2, 3, 1], method="spearman")
    assert_close(result.r, -0.8, 1e-12)
    assert_close(result.p, 2 / 15, 1e-12)


def test_spearman_with_ties_uses_t_approximation():
    # ranks of x: 1.5 1.5 3 4 5 6; y: 1 2 3 4 5 6 → rho = Pearson of the ranks;
    # with ties R's cor.test falls back to t = rho·√((n−2)/(1−rho²)) on n − 2 df
    x = [1, 1, 2, 3, 4, 5]
    y = [1, 2, 3, 4, 6, 5]
    result = correlation(x, y, method="spearman")
    ranks_x = np.array([1.5, 1.5, 3, 4, 5, 6])
    ranks_y = np.array([1, 2, 3, 4, 6, 5.0])
    rho = np.corrcoef(ranks_x, ranks_y)[0, 1]
    t = rho * math.sqrt(4 / (1 - rho**2))
    from scipy import stats

    assert result.p_method == "t"
    assert_close(result.r, rho, 1e-12)
    assert_close(result.p, 2 * stats.t.sf(t, 4), 1e-10)


def test_pairwise_complete_observations():
    x = [1.0, 2.0, np.nan, 4.0, 5.0, 6.0]
    y = [2.0, np.nan, 3.0, 3.5, 6.0, 5.0]
    assert correlation(x, y) == correlation([1.0, 4.0, 5.0, 6.0], [2.0, 3.5, 6.0, 5.0])
    assert correlation(x, y).n == 4


def test_three_pairs_give_no_interval():
    result = correlation([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert result.n == 3
    assert math.isnan(result.ci_low) and math.isnan(result.ci_high)
    assert result.to_dict()["ci_low"] is None


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "message"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], {}, "same length"),
        ([np.nan] * 4, [1.0, 2.0, 3.0, 4.0], {}, "no non-missing"),
        ([1.0, 2.0, np.nan, 4.0], [1.0, np.nan, 3.0, 4.0], {}, "at least 3 complete pairs"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {"method": "kendall"}, "supported: 'pearson', 'spearman'"),
        ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], {}, "constant"),
        (["a", "b", "c"], [1.0, 2.0, 3.0], {}, "numeric"),
    ],
)
def test_correlation_rejects_bad_input(x, y, kwargs, message):
    with pytest.raises(ValueError, match=message):
        correlation(x, y, **kwargs)


def test_partial_correlation_equals_first_order_formula(reference_data):
    # r_xy·z = (r_xy − r_xz r_yz) / √((1 − r_xz²)(1 − r_yz²)); t on n − 3 df
    swiss = reference_data("swiss")
    r = swiss[["Fertility", "Examination", "Education"]].corr().to_numpy()
    expected = (r[0, 1] - r[0, 2] * r[1, 2]) / math.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))
    result = partial_correlation(swiss, "Fertility", "Examination", "Education")
    assert result.n == 47 and result.df == 44
    assert result.covariates == ("Education",)
    assert_close(result.r, expected, 1e-10)
    from scipy import stats

    t = expected * math.sqrt(44 / (1 - expected**2))
    assert_close(result.p, 2 * stats.t.sf(abs(t), 44), 1e-10)


def test_partial_correlation_matches_pingouin(reference_data):
    import pingouin

    swiss = reference_data("swiss")
    covariates = ["Education", "Catholic", "Agriculture"]
    for method in ("pearson", "spearman"):
        theirs = pingouin.partial_corr(swiss, x="Fertility", y="Examination", covar=covariates, method=method)
        ours = partial_correlation(swiss, "Fertility", "Examination", covariates, method=method)
        assert_close(ours.r, float(theirs["r"].iloc[0]), 1e-8, what=f"{method} r")
        assert_close(ours.p, float(theirs["p_val"].iloc[0]), 1e-6, what=f"{method} p")


def test_partial_correlation_listwise_deletion():
    data = pd.DataFrame(
        {
            "alliance": [3.1, 4.2, 2.8, 4.9, 3.7, 4.4, 2.5, np.nan, 3.3],
            "outcome": [12.0, 7.5, 14.0, 5.0, 9.5, 8.0, 15.5, 10.0, np.nan],
            "baseline": [22.0, 20.0, 24.0, 19.0, 23.0, 21.0, 25.0, 22.0, 23.0],
        }
    )
    result = partial_correlation(data, "alliance", "outcome", ["baseline"])
    complete = partial_correlation(data.dropna(), "alliance", "outcome", ["baseline"])
    assert result == complete
    assert result.n == 7


def test_partial_correlation_rejects_bad_input():
    data = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 1.0, 4.0, 3.0], "c": [1.0, 1.0, 2.0, 2.0]})
    with pytest.raises(ValueError, match="not found"):
        partial_correlation(data, "a", "b", ["d"])
    with pytest.raises(ValueError, match="complete rows"):
        partial_correlation(data.iloc[:3], "a", "b", ["c"])
    with pytest.raises(ValueError, match="supported"):
        partial_correlation(data, "a", "b", ["c"], method="kendall")
    with pytest.raises(ValueError, match="distinct"):
        partial_correlation(data, "a", "b", ["a"])


values = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


def _varies(array: np.ndarray) -> bool:
    return np.ptp(array) > 1e-3 * (1 + np.abs(array).max())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(values, values), min_size=4, max_size=25), st.sampled_from(["pearson", "spearman"]))
def test_correlation_is_symmetric(pairs, method):
    x = np.array([pair[0] for pair in pairs])
    y = np.array([pair[1] for pair in pairs])
    if not (_varies(x) and _varies(y)):
        return
    forward = correlation(x, y, method=method)
    backward = correlation(y, x, method=method)
    assert backward.r == pytest.approx(forward.r, abs=1e-12)
    assert backward.p == pytest.approx(forward.p, rel=1e-9, abs=1e-12)
    assert -1.0 <= forward.r <= 1.0
    assert 0.0 <= forward.p <= 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(values, values), min_size=4, max_size=25))
def test_spearman_invariant_to_monotone_transformation(pairs):
    x = np.array([pair[0] for pair in pairs])
    y = np.array([pair[1] for pair in pairs])
    if not (_varies(x) and _varies(y)):
        return
    original = correlation(x, y, method="spearman")
    transformed = correlation(np.arctan(x / 100.0) * 7 + 3, y, method="spearman")
    if np.unique(np.arctan(x / 100.0) * 7 + 3).size != np.unique(x).size:
        return  # the transformation merged distinct floats into ties
    assert transformed.r == pytest.approx(original.r, abs=1e-12)
    assert transformed.p == pytest.approx(original.p, rel=1e-9, abs=1e-12)
