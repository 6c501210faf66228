"""linear_regression against R's lm/summary.lm/confint (tests/stats/reference/regression.R)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.stats import linear_regression

REFERENCE = Path(__file__).parent / "reference"
CASES = json.loads((REFERENCE / "regression.json").read_text())["cases"]
DATA = {"mtcars": pd.read_csv(REFERENCE / "data" / "mtcars.csv"),
        "toothgrowth": pd.read_csv(REFERENCE / "data" / "toothgrowth.csv")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_coefficients_and_fit_equal_r(name):
    case = CASES[name]
    data = DATA["toothgrowth" if name.startswith("toothgrowth") else "mtcars"]
    fit = linear_regression(case["formula"], data)
    assert list(fit.coefficients.index) == case["terms"]
    for column in ("estimate", "se", "t", "ci_low", "ci_high"):
        np.testing.assert_allclose(fit.coefficients[column], case[column], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fit.coefficients["p"], case["p"], rtol=1e-6, atol=1e-15)
    assert fit.n == case["n"] and fit.df_residual == case["df_residual"]
    for key in ("sigma", "r_squared", "adj_r_squared", "f", "f_df1", "f_df2", "f_p"):
        assert getattr(fit, key) == pytest.approx(case[key], rel=1e-8), key


def test_rows_with_missing_values_are_left_out_and_said():
    fit = linear_regression("mpg ~ wt + hp", DATA["mtcars"])
    assert fit.n == 30
    assert any("2 rows with a missing value" in note for note in fit.notes)


def test_an_aliased_column_is_dropped_and_named():
    data = DATA["mtcars"].assign(wt2=lambda d: 2 * d["wt"])
    fit = linear_regression("mpg ~ wt + wt2", data)
    assert list(fit.coefficients.index) == ["(Intercept)", "wt"]
    assert any("wt2" in note for note in fit.notes)


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="needs a response"):
        linear_regression("wt", DATA["mtcars"])
    with pytest.raises(ValueError, match="'weight'"):
        linear_regression("mpg ~ weight", DATA["mtcars"])
    with pytest.raises(ValueError, match="more complete rows"):
        linear_regression("mpg ~ wt + hp", DATA["mtcars"].head(3))
