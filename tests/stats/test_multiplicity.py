"""p-value adjustment: expected vectors worked by hand with R's p.adjust algorithm."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.stats.multiplicity import adjust_pvalues

# Family with one missing p-value: R's p.adjust keeps NA and uses m = 5 (the non-missing count).
P = [0.01, 0.04, 0.03, 0.005, np.nan, 0.20]
# Sorted non-missing: p(1) = .005 (#4), p(2) = .01 (#1), p(3) = .03 (#3), p(4) = .04 (#2), p(5) = .20 (#6)

EXPECTED = {
    # m·p, capped at 1: .05 .20 .15 .025 NA 1.0
    "bonferroni": [0.05, 0.20, 0.15, 0.025, np.nan, 1.0],
    # (m − i + 1)·p(i) = 5·.005, 4·.01, 3·.03, 2·.04, 1·.20 = .025 .04 .09 .08 .20;
    # running max → .025 .04 .09 .09 .20
    "holm": [0.04, 0.09, 0.09, 0.025, np.nan, 0.20],
    # same products; running min from the largest → .025 .04 .08 .08 .20
    "hochberg": [0.04, 0.08, 0.08, 0.025, np.nan, 0.20],
    # (m / i)·p(i) = 5·.005, 2.5·.01, (5/3)·.03, 1.25·.04, 1·.20 = .025 .025 .05 .05 .20;
    # running min from the largest → .025 .025 .05 .05 .20
    "bh": [0.025, 0.05, 0.05, 0.025, np.nan, 0.20],
    # BH × (1 + 1/2 + 1/3 + 1/4 + 1/5) = BH × 137/60
    "by": [0.025 * 137 / 60, 0.05 * 137 / 60, 0.05 * 137 / 60, 0.025 * 137 / 60, np.nan, 0.20 * 137 / 60],
}


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_adjust_pvalues_matches_r_p_adjust(method):
    np.testing.assert_allclose(adjust_pvalues(P, method=method), EXPECTED[method], rtol=1e-12, equal_nan=True)


def test_adjusted_values_are_capped_at_one():
    # Holm: 3·.5 = 1.5 → 1; 2·.6 = 1.2 → 1; 1·.7 = .7 but the running max keeps 1
    np.testing.assert_array_equal(adjust_pvalues([0.5, 0.6, 0.7], method="holm"), [1.0, 1.0, 1.0])


def test_ties_and_all_missing():
    # tied p-values get the same adjusted value whatever their order: BH 2·.02/2 = .02 for both
    np.testing.assert_allclose(adjust_pvalues([0.02, 0.02], method="bh"), [0.02, 0.02])
    assert np.isnan(adjust_pvalues([np.nan, np.nan], method="holm")).all()
    assert adjust_pvalues([], method="holm").size == 0


@pytest.mark.parametrize(
    ("p", "method", "message"),
    [
        ([0.1, 1.2], "holm", r"\[0, 1\]"),
        ([0.1, -0.1], "bh", r"\[0, 1\]"),
        ([0.1, 0.2], "fdr", "supported: 'holm', 'bh', 'bonferroni', 'hochberg', 'by'"),
        ([[0.1, 0.2]], "holm", "one-dimensional"),
    ],
)
def test_adjust_pvalues_rejects_bad_input(p, method, message):
    with pytest.raises(ValueError, match=message):
        adjust_pvalues(p, method=method)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=1, max_size=40),
    st.sampled_from(["holm", "bh", "bonferroni", "hochberg", "by"]),
)
def test_adjustment_is_monotone_and_never_smaller(p, method):
    raw = np.array(p)
    adjusted = adjust_pvalues(raw, method=method)
    assert (adjusted >= raw - 1e-15).all()
    assert (adjusted <= 1.0).all()
    order = np.argsort(raw, kind="stable")
    assert (np.diff(adjusted[order]) >= -1e-15).all()  # the ranking of the p-values is kept
    # step-up procedures are never more conservative than their step-down / single-step peers
    if method == "hochberg":
        assert (adjusted <= adjust_pvalues(raw, method="holm") + 1e-15).all()
    if method == "holm":
        assert (adjusted <= adjust_pvalues(raw, method="bonferroni") + 1e-15).all()
