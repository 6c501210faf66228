"""Paired t-test and Wilcoxon signed-rank test against R and hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.stats.parametric import paired_ttest, wilcoxon
from tests.stats.conftest import ESTIMATE_ABS, ESTIMATE_REL, P_ABS, P_REL, assert_close, reference_entry

# Student's sleep data (R `sleep`): extra hours of sleep with drug 1 and drug 2, same 10 patients.
SLEEP_DRUG_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_DRUG_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


@pytest.fixture
def sleepstudy_days(reference_data):
    data = reference_data("sleepstudy").sort_values(["Subject", "Days"])
    day0 = data.loc[data["Days"] == 0, "Reaction"].to_numpy()
    day9 = data.loc[data["Days"] == 9, "Reaction"].to_numpy()
    return day0, day9


def test_paired_ttest_matches_r_sleepstudy(reference, sleepstudy_days):
    expected = reference_entry(reference["paired"], "sleepstudy_day0_vs_day9")
    result = paired_ttest(*sleepstudy_days)
    assert result.n == expected["n"]
    for field in ("mean_diff", "t", "ci_low", "ci_high", "cohen_dz"):
        assert_close(getattr(result, field), expected[field], ESTIMATE_REL, ESTIMATE_ABS, what=field)
    assert result.df == expected["df"]
    assert_close(result.p, expected["p"], P_REL, P_ABS, what="p")


def test_paired_ttest_matches_r_documentation_sleep():
    # R: t.test(extra ~ group, data = sleep, paired = TRUE) prints (for group 1 − group 2)
    # t = -4.0621, df = 9, p-value = 0.002833, 95% CI -2.4598858 -0.7001142, mean difference -1.58.
    result = paired_ttest(SLEEP_DRUG_1, SLEEP_DRUG_2)
    assert_close(result.t, 4.0621, 0, 5e-5)
    assert result.df == 9
    assert_close(result.p, 0.002833, 0, 5e-7)
    assert_close(result.ci_low, 0.7001142, 0, 5e-8)
    assert_close(result.ci_high, 2.4598858, 0, 5e-8)
    assert_close(result.mean_diff, 1.58, 1e-12)


def test_cohen_dav_hand_worked():
    # before = 3, 4, 5, 4.5 (mean 4.125), after = 4, 4.5, 6, 6.5 (mean 5.25); mean diff 1.125
    # SD(before) = sqrt((1.265625 + 0.015625 + 0.765625 + 0.140625) / 3) = sqrt(0.729167) = 0.853913
    # SD(after)  = sqrt((1.5625 + 0.5625 + 0.5625 + 1.5625) / 3)         = sqrt(1.416667) = 1.190238
    # d_av = 1.125 / ((0.853913 + 1.190238) / 2) = 1.125 / 1.022076 = 1.100701
    result = paired_ttest([3.0, 4.0, 5.0, 4.5], [4.0, 4.5, 6.0, 6.5])
    assert_close(result.cohen_dav, 1.125 / ((math.sqrt(2.1875 / 3) + math.sqrt(4.25 / 3)) / 2), 1e-12)
    # differences 1, 0.5, 1, 2: SD = sqrt((0.015625 + 0.390625 + 0.015625 + 0.765625) / 3) = 0.629153
    assert_close(result.cohen_dz, 1.125 / math.sqrt(1.1875 / 3), 1e-12)


def test_pairs_with_a_missing_value_are_dropped():
    with_missing = paired_ttest([1.0, 2.0, np.nan, 4.0, 5.0], [2.0, 2.5, 3.0, np.nan, 7.5])
    complete = paired_ttest([1.0, 2.0, 5.0], [2.0, 2.5, 7.5])
    assert with_missing == complete
    assert with_missing.n == 3


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "same length"),
        ([np.nan, np.nan, np.nan], [1.0, 2.0, 3.0], "no non-missing"),
        ([1.0, 2.0, np.nan, 4.0], [1.5, np.nan, 3.0, 4.5], "at least 3 complete pairs"),
        ([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], "zero variance"),
    ],
)
def test_paired_ttest_rejects_bad_input(before, after, message):
    with pytest.raises(ValueError, match=message):
        paired_ttest(before, after)


def test_paired_ttest_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence"):
        paired_ttest([1.0, 2.0, 3.0], [2.0, 2.5, 4.5], confidence=95)


def test_wilcoxon_exact_matches_r_documentation():
    # ?wilcox.test (Hollander & Wolfe 1973): Hamilton scores at a first (x) and second (y) visit;
    # wilcox.test(x, y, paired = TRUE, alternative = "greater") → V = 40, p-value = 0.01953.
    # R ranks x − y, so x plays the role of `after` here.
    # By hand: n = 9, no ties, V = 40; P(V ≥ 40) = P(V ≤ 45 − 40 = 5) = #{subsets of 1..9 with
    # sum ≤ 5} / 2^9 = |{∅,1,2,3,4,5,12,13,14,23}| / 512 = 10/512; two-sided p = 20/512 = 0.0390625.
    after = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    before = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    result = wilcoxon(before, after)
    assert result.statistic == 40
    assert result.n == 9
    assert result.method == "exact"
    assert_close(result.p, 20 / 512, 1e-12)
    # rank-biserial: (V − (45 − V)) / 45 = (40 − 5) / 45
    assert_close(result.rank_biserial, 35 / 45, 1e-12)


def test_wilcoxon_normal_approximation_with_ties_and_zero_matches_r():
    # R: wilcox.test(extra ~ group, data = sleep, paired = TRUE) → V = 0, p-value = 0.009091
    # (ties and a zero → normal approximation with continuity correction). For drug 2 − drug 1:
    # differences 1.2 2.4 1.3 1.3 0 1.0 1.8 0.8 4.6 1.4; the zero is dropped, n = 9, all positive
    # so V = 45; mean n(n+1)/4 = 22.5; one tie of size 2 →
    # σ² = 9·10·19/24 − (2³ − 2)/48 = 71.25 − 0.125 = 71.125;
    # z = (45 − 22.5 − 0.5)/√71.125 = 2.60862; p = 2·(1 − Φ(2.60862)) = 0.0090907.
    result = wilcoxon(SLEEP_DRUG_1, SLEEP_DRUG_2)
    assert result.statistic == 45
    assert result.n == 9
    assert result.method == "normal approximation with continuity correction"
    assert_close(result.p, 0.009091, 0, 5e-7)
    assert result.rank_biserial == 1.0


def test_wilcoxon_large_sample_uses_normal_approximation():
    rng = np.random.default_rng(3)
    before = rng.normal(size=60)
    after = before + rng.normal(0.2, 1.0, size=60)
    result = wilcoxon(before, after)
    assert result.n == 60
    assert result.method.startswith("normal")
    assert 0.0 < result.p <= 1.0


def test_wilcoxon_all_zero_differences_raise():
    with pytest.raises(ValueError, match="all differences"):
        wilcoxon([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(finite, finite), min_size=3, max_size=30),
    st.floats(min_value=-100, max_value=100, allow_nan=False),
)
def test_paired_ttest_invariant_to_adding_a_constant(pairs, shift):
    before = np.array([pair[0] for pair in pairs])
    after = np.array([pair[1] for pair in pairs])
    differences = after - before
    if np.std(differences) < 1e-3 * (1 + np.abs(differences).max()):
        return  # (nearly) constant differences: the t statistic is undefined or unstable
    original = paired_ttest(before, after)
    shifted = paired_ttest(before + shift, after + shift)
    assert shifted.t == pytest.approx(original.t, rel=1e-6, abs=1e-6)
    assert shifted.p == pytest.approx(original.p, rel=1e-5, abs=1e-9)
    assert shifted.mean_diff == pytest.approx(original.mean_diff, rel=1e-6, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=3, max_size=30))
def test_paired_ttest_swapping_timepoints_flips_the_sign(pairs):
    before = np.array([pair[0] for pair in pairs])
    after = np.array([pair[1] for pair in pairs])
    differences = after - before
    if np.std(differences) < 1e-3 * (1 + np.abs(differences).max()):
        return
    forward = paired_ttest(before, after)
    backward = paired_ttest(after, before)
    assert backward.t == pytest.approx(-forward.t, rel=1e-9)
    assert backward.p == pytest.approx(forward.p, rel=1e-9)
    assert backward.ci_low == pytest.approx(-forward.ci_high, rel=1e-9, abs=1e-9)
