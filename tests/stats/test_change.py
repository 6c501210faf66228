"""Reliable and clinically significant change (Jacobson & Truax 1991), checked against hand arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alliance.stats import (
    ClinicalSignificance,
    ReliableChange,
    classify_change,
    clinical_significance,
    reliable_change,
)

Z = 1.959963984540054  # qnorm(0.975) in R


def test_formula_worked_by_hand():
    # sd 8, reliability .91: S_diff = 8 · √2 · √(1 − .91) = 8 · 1.414214 · 0.3 = 3.394113
    # threshold = 1.959964 · 3.394113 = 6.652338 points
    result = reliable_change([24.0, 22.0, 20.0], [10.0, 20.0, 28.0], sd=8, reliability=0.91)
    assert isinstance(result, ReliableChange)
    assert result.se_diff == pytest.approx(8 * math.sqrt(2) * 0.3, rel=1e-12)
    assert result.se_diff == pytest.approx(3.394112549695428, rel=1e-12)
    assert result.z == pytest.approx(Z, rel=1e-12)
    assert result.threshold == pytest.approx(6.652338356878452, rel=1e-12)
    # RCI = (10 − 24) / 3.394113 = −14 / 3.394113 = −4.124790
    #       (20 − 22) / 3.394113 =  −2 / 3.394113 = −0.589256
    #       (28 − 20) / 3.394113 =   8 / 3.394113 =  2.357023
    assert list(result.table["change"]) == [-14.0, -2.0, 8.0]
    assert result.table["rci"].to_numpy() == pytest.approx([-4.124790, -0.589256, 2.357023], abs=1e-6)
    assert list(result.table["category"]) == ["reliable improvement", "no reliable change",
                                              "reliable deterioration"]
    assert result.n == 3
    assert result.counts == {"reliable improvement": 1, "no reliable change": 1, "reliable deterioration": 1}


def test_alpha_changes_z():
    # alpha .10: z = qnorm(.95) = 1.644854; sd 10, reliability .5: S_diff = 10 · √(2 · .5) = 10
    result = reliable_change([0.0], [17.0], sd=10, reliability=0.5, alpha=0.10)
    assert result.se_diff == 10.0
    assert result.z == pytest.approx(1.6448536269514722, rel=1e-12)
    assert result.threshold == pytest.approx(16.448536269514722, rel=1e-12)
    assert result.table["category"][0] == "reliable deterioration"  # 17 > 16.45, and higher is worse


@pytest.mark.parametrize("lower_is_better", [True, False])
def test_exactly_at_the_threshold_is_no_reliable_change(lower_is_better):
    # sd 5, reliability .5: S_diff = 5 · √(2 · .5) = 5 exactly; threshold = 5 · 1.959964 = 9.799820
    threshold = reliable_change([0.0], [0.0], sd=5, reliability=0.5).threshold
    assert threshold == pytest.approx(5 * Z, rel=1e-12)
    # a change of exactly +threshold and exactly −threshold (0 − t is exactly −t in floating point)
    result = reliable_change([0.0, threshold], [threshold, 0.0], sd=5, reliability=0.5,
                             lower_is_better=lower_is_better)
    assert list(result.table["change"]) == [threshold, -threshold]
    assert list(result.table["category"]) == ["no reliable change", "no reliable change"]


def test_just_beyond_the_threshold_is_reliable_in_both_directions():
    threshold = 5 * Z
    above = threshold + 1e-9
    lower = reliable_change([0.0, above], [above, 0.0], sd=5, reliability=0.5, lower_is_better=True)
    assert list(lower.table["category"]) == ["reliable deterioration", "reliable improvement"]
    higher = reliable_change([0.0, above], [above, 0.0], sd=5, reliability=0.5, lower_is_better=False)
    assert list(higher.table["category"]) == ["reliable improvement", "reliable deterioration"]


def test_alliance_higher_is_better():
    # WAI-SR with sd 8, reliability .91 (threshold 6.65): 40 → 48 (+8) is a reliable improvement
    result = reliable_change([40.0, 40.0], [48.0, 46.0], sd=8, reliability=0.91, lower_is_better=False)
    assert list(result.table["category"]) == ["reliable improvement", "no reliable change"]


def test_missing_pre_or_post_is_not_guessed():
    result = reliable_change([20.0, np.nan, 20.0, None], [5.0, 5.0, np.nan, 5.0], sd=8, reliability=0.91)
    assert result.table["category"].tolist() == ["reliable improvement", None, None, None]
    assert np.isnan(result.table["rci"][1:]).all()
    assert result.n == 1
    assert result.counts["reliable improvement"] == 1


def test_zero_reliability_is_allowed():
    # reliability 0: S_diff = SD · √2
    result = reliable_change([0.0], [1.0], sd=2, reliability=0)
    assert result.se_diff == pytest.approx(2 * math.sqrt(2), rel=1e-12)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sd": 0}, "sd must be a finite number greater than 0; got 0"),
    ({"sd": -1.5}, "sd must be a finite number greater than 0; got -1.5"),
    ({"sd": float("inf")}, "sd must be a finite number greater than 0; got inf"),
    ({"sd": float("nan")}, "sd must be a finite number greater than 0; got nan"),
    ({"sd": "8"}, "sd must be a number; got '8'"),
    ({"reliability": 1.0}, r"reliability must lie in \[0, 1\).*got 1.0"),
    ({"reliability": -0.1}, r"reliability must lie in \[0, 1\).*got -0.1"),
    ({"alpha": 0}, "alpha must lie strictly between 0 and 1.*got 0"),
    ({"alpha": 1.5}, "alpha must lie strictly between 0 and 1.*got 1.5"),
    ({"lower_is_better": "yes"}, "lower_is_better must be True or False; got 'yes'"),
])
def test_input_errors_name_the_argument_and_value(kwargs, message):
    arguments = {"sd": 8, "reliability": 0.9, "alpha": 0.05, **kwargs}
    with pytest.raises(ValueError, match=message):
        reliable_change([1.0, 2.0], [3.0, 4.0], **arguments)


def test_unequal_lengths_are_an_error():
    with pytest.raises(ValueError, match="pre and post must have the same length; got 2 and 3"):
        reliable_change([1.0, 2.0], [1.0, 2.0, 3.0], sd=8, reliability=0.9)


def test_to_dict_is_json_safe():
    record = reliable_change([20.0, np.nan], [5.0, 5.0], sd=8, reliability=0.91).to_dict()
    assert record["table"][1]["rci"] is None and record["table"][1]["category"] is None
    assert record["counts"]["reliable improvement"] == 1


def test_cutoffs_worked_by_hand_lower_is_better():
    # dysfunctional 30 (SD 6), functional 10 (SD 4):
    # a = 30 − 2·6 = 18; b = 10 + 2·4 = 18; c = (4·30 + 6·10) / (4 + 6) = (120 + 60) / 10 = 18
    cut = clinical_significance(30, 6, functional_mean=10, functional_sd=4)
    assert isinstance(cut, ClinicalSignificance)
    assert (cut.a, cut.b, cut.c) == (18.0, 18.0, 18.0)
    assert cut.recommended == "c" and cut.cutoff == 18.0
    # dysfunctional 22.8 (SD 3.9), functional 5 (SD 3):
    # a = 22.8 − 7.8 = 15.0; b = 5 + 6 = 11; c = (3·22.8 + 3.9·5) / 6.9 = (68.4 + 19.5) / 6.9 = 12.739130
    cut = clinical_significance(22.8, 3.9, functional_mean=5, functional_sd=3)
    assert cut.a == pytest.approx(15.0)
    assert cut.b == pytest.approx(11.0)
    assert cut.c == pytest.approx(87.9 / 6.9)
    assert cut.cutoff == pytest.approx(12.739130, abs=1e-6)


def test_cutoffs_higher_is_better_and_without_functional_norms():
    # alliance-like: dysfunctional 35 (SD 5), functional 50 (SD 4):
    # a = 35 + 10 = 45; b = 50 − 8 = 42; c = (4·35 + 5·50) / 9 = (140 + 250) / 9 = 43.333333
    cut = clinical_significance(35, 5, 50, 4, lower_is_better=False)
    assert (cut.a, cut.b) == (45.0, 42.0)
    assert cut.c == pytest.approx(390 / 9)
    # without functional norms only a: 22.8 − 2 · 3.9 = 15.0, and it is the recommended one
    cut = clinical_significance(22.8, 3.9)
    assert cut.b is None and cut.c is None
    assert cut.recommended == "a" and cut.cutoff == pytest.approx(15.0)


def test_cutoff_input_errors():
    with pytest.raises(ValueError, match="dysfunctional_sd must be a finite number greater than 0; got 0"):
        clinical_significance(20, 0)
    with pytest.raises(ValueError, match="functional_mean and functional_sd must be given together"):
        clinical_significance(20, 4, functional_mean=5)
    with pytest.raises(ValueError, match="functional_sd must be a finite number greater than 0; got -2"):
        clinical_significance(20, 4, functional_mean=5, functional_sd=-2)


def test_four_categories():
    # threshold 6.65 (sd 8, reliability .91), cut-off 15 (lower is better):
    # 24 → 10: −14, reliable, 10 < 15            → recovered
    # 24 → 17: −7, reliable, 17 ≥ 15              → improved
    # 24 → 15: −9, reliable, exactly at the cut-off → improved (has not crossed it)
    # 20 → 18: −2, not reliable                   → unchanged
    # 20 → 28: +8, reliable, worse                → deteriorated
    # NaN post                                    → None
    change = reliable_change([24, 24, 24, 20, 20, 20], [10, 17, 15, 18, 28, np.nan], sd=8, reliability=0.91)
    assert classify_change(change, 15.0).tolist() == ["recovered", "improved", "improved", "unchanged",
                                                      "deteriorated", None]
    # higher is better, cut-off 48: 40 → 50 (+10, 50 > 48) is recovered; 40 → 47 (+7, 47 < 48) improved
    change = reliable_change([40, 40], [50, 47], sd=8, reliability=0.91, lower_is_better=False)
    assert classify_change(change, 48.0).tolist() == ["recovered", "improved"]
    with pytest.raises(ValueError, match="cutoff must be a finite number"):
        classify_change(change, float("nan"))


# -- against R (tests/stats/reference/change.R → change.json) -----------------------------------------

def _r_reference():
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "reference" / "change.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", _r_reference()["cases"], ids=lambda c: c["name"])
def test_reliable_change_equals_r(case):
    from alliance.stats import reliable_change as rc

    result = rc(case["pre"], case["post"], sd=case["sd"], reliability=case["reliability"], alpha=case["alpha"],
                lower_is_better=case["lower_is_better"])
    assert result.se_diff == pytest.approx(case["se_diff"], rel=1e-12)
    assert result.z == pytest.approx(case["z"], rel=1e-12)
    assert result.threshold == pytest.approx(case["threshold"], rel=1e-12)
    assert list(result.table["rci"]) == pytest.approx(case["rci"], rel=1e-12)
    assert list(result.table["category"]) == case["category"]


@pytest.mark.parametrize("case", _r_reference()["cutoffs"], ids=lambda c: c["name"])
def test_clinical_cutoffs_equal_r(case):
    from alliance.stats import clinical_significance as cs

    found = cs(case["dysfunctional_mean"], case["dysfunctional_sd"], case["functional_mean"], case["functional_sd"])
    assert (found.a, found.b, found.c) == pytest.approx((case["a"], case["b"], case["c"]), rel=1e-12)
