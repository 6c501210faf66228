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
