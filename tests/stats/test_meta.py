"""meta_analysis and pool_correlations against metafor (reference/meta.R → meta.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from alliance.stats import meta_analysis, pool_correlations

REFERENCE = json.loads((Path(__file__).parent / "reference" / "meta.json").read_text(encoding="utf-8"))
CASES = REFERENCE["cases"]
FITS = [(name, index) for name, case in CASES.items() for index in range(len(case["fits"]))]
FIELDS = ("estimate", "se", "ci_low", "ci_high", "statistic", "p", "tau2", "i2", "h2", "q", "q_p",
          "pi_low", "pi_high")


def _close(got, want, field, rel=1e-8, abs_=1e-10):
    if want is None:
        assert got is None, field
    else:
        assert got == pytest.approx(want, rel=rel, abs=abs_), field


@pytest.mark.parametrize(("name", "index"), FITS, ids=[f"{n}-{CASES[n]['fits'][i]['method']}-"
                                                       f"{CASES[n]['fits'][i]['test']}" for n, i in FITS])
def test_equals_metafor(name, index):
    case, want = CASES[name], CASES[name]["fits"][index]
    got = meta_analysis(case["yi"], case["vi"], method=want["method"], test=want["test"])
    assert got.k == want["k"] and got.df == want["df"]
    for field in FIELDS:
        _close(getattr(got, field), want[field], field)
    _close(got.tau2_se if want["method"] == "REML" else None,
           want["tau2_se"] if want["method"] == "REML" else None, "tau2_se", rel=1e-6)
    assert np.allclose(got.weights, want["weights"], rtol=1e-8)
    assert got.converged


def test_homogeneous_case_is_at_the_bound_and_equals_fixed_effect():
    case = CASES["homog"]
    random = meta_analysis(case["yi"], case["vi"], method="REML")
    fixed = meta_analysis(case["yi"], case["vi"], method="FE")
    assert random.tau2 == 0.0 and random.i2 == 0.0
    assert random.estimate == pytest.approx(fixed.estimate, rel=1e-12)
    assert any("lower bound 0" in note for note in random.notes)


def test_two_studies_say_so():
    case = CASES["k2"]
    result = meta_analysis(case["yi"], case["vi"], test="knha")
    assert result.df == 1 and any("Only 2 studies" in note for note in result.notes)
    # with 1 df the Knapp-Hartung interval is far wider than the z interval
    z = meta_analysis(case["yi"], case["vi"])
    assert result.ci_high - result.ci_low > 5 * (z.ci_high - z.ci_low)


@pytest.mark.parametrize("name", ["molloy", "levin"])
def test_pooled_correlations_equal_metafor_back_transformed(name):
    case = CASES[name]
    want = case["pooled_r_knha"]
    got = pool_correlations(case["r"], case["n"], test="knha")
    for field in ("r", "ci_low", "ci_high", "pi_low", "pi_high"):
        _close(getattr(got, field), want[field], field)
    assert np.allclose([s["z"] for s in got.studies], case["yi"], rtol=1e-12)
    assert np.allclose([s["vi"] for s in got.studies], case["vi"], rtol=1e-12)
    assert got.n_total == sum(case["n"])


def test_held_out_case_was_not_used_for_tuning():
    # dat.normand1999 was run only after the code was written (meta.R header)
    case = CASES["heldout"]
    for want in case["fits"]:
        got = meta_analysis(case["yi"], case["vi"], method=want["method"], test=want["test"])
        for field in FIELDS:
            _close(getattr(got, field), want[field], field)


@pytest.mark.parametrize(("r", "n", "message"), [
    ([0.3, 1.2], [20, 30], r"r\[1\] is 1.2; allowed: a correlation strictly between -1 and 1"),
    ([0.3, 0.2], [20, 3], r"n\[1\] is 3.0; allowed: a whole number of at least 4"),
    ([0.3, 0.2], [20.5, 30], r"n\[0\] is 20.5"),
    ([0.3], [20], r"1 study; allowed: at least 2 to pool"),
    ([0.3, 0.2], [20], r"r has 2 values and n 1"),
    ([0.3, math.nan], [20, 30], r"r\[1\] is nan; allowed: a finite number"),
])
def test_pool_correlations_refuses_bad_input(r, n, message):
    with pytest.raises(ValueError, match=message):
        pool_correlations(r, n)


def test_meta_analysis_refuses_bad_input():
    with pytest.raises(ValueError, match=r"vi\[1\] is 0.0; allowed: a sampling variance > 0"):
        meta_analysis([0.1, 0.2], [0.1, 0.0])
    with pytest.raises(ValueError, match="method 'PM' is not one of REML, DL, FE"):
        meta_analysis([0.1, 0.2], [0.1, 0.1], method="PM")
    with pytest.raises(ValueError, match="test 't' is not one of z, knha"):
        meta_analysis([0.1, 0.2], [0.1, 0.1], test="t")


def test_ee_is_metafors_other_name_for_fe():
    case = CASES["bcg"]
    want = next(f for f in case["fits"] if f["method"] == "FE")
    got = meta_analysis(case["yi"], case["vi"], method="EE")
    assert got.method == "FE"
    for field in ("estimate", "se", "p", "q", "i2", "h2"):
        _close(getattr(got, field), want[field], field)
