"""R formulas with R's meaning: model.matrix names and matrices, lmer fits, errors (formulas.json)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alliance.stats import mixedlm
from alliance.stats._lmm_formula import build_model_frame
from alliance.stats._r_formula import (
    RDesign,
    _dqrdc2_keep,
    _r_number,
    design,
    rank_deficiency_note,
    response,
    variables,
)
from tests.stats.conftest import REFERENCE_DIRECTORY, assert_close


@pytest.fixture(scope="module")
def formulas() -> dict:
    with open(REFERENCE_DIRECTORY / "formulas.json", encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    # written and re-read by formulas.R; f and g are character columns (R: factors, C-locale levels)
    return pd.read_csv(REFERENCE_DIRECTORY / "data" / "formula_cases.csv")


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIRECTORY / "data" / "sleepstudy.csv", dtype={"Subject": str})


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _expected_matrix(entry: dict) -> np.ndarray:
    rows = [_as_list(row) for row in entry["matrix"]]
    return np.array(rows, dtype=float)


def _reference_ids(section: str) -> list[str]:
    with open(REFERENCE_DIRECTORY / "formulas.json", encoding="utf-8") as handle:
        return [entry.get("rhs", entry.get("name")) for entry in json.load(handle)[section]]


@pytest.mark.parametrize("rhs", _reference_ids("model_matrix"))
def test_model_matrix_matches_r(formulas, cases, rhs):
    entry = next(entry for entry in formulas["model_matrix"] if entry["rhs"] == rhs)
    built = design(rhs, cases, drop_rank_deficient=False)
    assert isinstance(built, RDesign)
    assert list(built.names) == _as_list(entry["names"])
    expected = _expected_matrix(entry)
    assert built.matrix.shape == expected.shape
    np.testing.assert_allclose(built.matrix, expected, rtol=1e-10, atol=1e-12)
    assert built.dropped == ()


@pytest.mark.parametrize("rhs", _reference_ids("sleepstudy_model_matrix"))
def test_sleepstudy_model_matrix_matches_r(formulas, sleep, rhs):
    entry = next(entry for entry in formulas["sleepstudy_model_matrix"] if entry["rhs"] == rhs)
    built = design(rhs, sleep)
    assert list(built.names) == _as_list(entry["names"])
    np.testing.assert_allclose(built.matrix, _expected_matrix(entry), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", _reference_ids("lmm"))
def test_lmer_fixed_effects_match_r(formulas, cases, sleep, name):
    entry = next(entry for entry in formulas["lmm"] if entry["name"] == name)
    data = sleep if entry["data"] == "sleepstudy" else cases
    fit = mixedlm(entry["formula"], data)
    terms = [row["term"] for row in entry["fixed"]]
    assert fit.fixed.index.tolist() == terms
    for row in entry["fixed"]:
        assert_close(fit.fixed.loc[row["term"], "estimate"], row["estimate"], 1e-6, 1e-9, what=row["term"])
        assert_close(fit.fixed.loc[row["term"], "se"], row["se"], 1e-6, 1e-9, what=f"se {row['term']}")
    assert_close(fit.loglik, entry["reml_loglik"], 1e-9, what="REML log-likelihood")
    # what lme4 dropped, and its message, are in the model frame's notes
    frame = build_model_frame(entry["formula"], data)
    dropped = _as_list(entry["dropped"])
    if dropped:
        assert frame.notes == (f"{entry['message']}: {', '.join(dropped)}",)
    else:
        assert entry["message"] == "" and frame.notes == ()


@pytest.mark.parametrize("name", ["rank_deficient_copy", "rank_deficient_interaction"])
def test_rank_deficient_design_drops_what_lme4_drops(formulas, cases, name):
    entry = next(entry for entry in formulas["lmm"] if entry["name"] == name)
    rhs = entry["formula"].split("~")[1].split("+ (1 | id)")[0]
    built = design(rhs, cases)
    assert list(built.dropped) == _as_list(entry["dropped"])
    assert list(built.names) == [row["term"] for row in entry["fixed"]]
    assert rank_deficiency_note(built.dropped).startswith(entry["message"])
    kept = design(rhs, cases, drop_rank_deficient=False)
    assert len(kept.names) == len(built.names) + len(built.dropped)


def test_power_inside_I_is_a_power_not_xor():
    # formulaic evaluated I(week^2) as Python's bitwise XOR on integers: 0..5 ^ 2 = 2 3 0 1 6 7.
    # R: 0² … 5² = 0 1 4 9 16 25.
    frame = pd.DataFrame({"week": np.arange(6, dtype=np.int64)})
    built = design("I(week^2)", frame)
    assert built.names == ("(Intercept)", "I(week^2)")
    assert built.matrix[:, 1].tolist() == [0.0, 1.0, 4.0, 9.0, 16.0, 25.0]
    assert design("I(week ^ 2)", frame).names[1] == "I(week^2)"   # R prints its own spacing
    assert design("I(week**2)", frame).matrix[:, 1].tolist() == [0.0, 1.0, 4.0, 9.0, 16.0, 25.0]


def test_data_columns_win_over_helper_names():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({name: rng.uniform(1, 2, 8) for name in ["Treatment", "C", "I", "poly", "scale", "log"]})
    built = design("Treatment + C + I + poly + scale + log", frame)
    assert built.names == ("(Intercept)", "Treatment", "C", "I", "poly", "scale", "log")
    np.testing.assert_array_equal(built.matrix[:, 1:], frame.to_numpy())
    # a call is still a function: log(log) is the logarithm of the column named log
    np.testing.assert_allclose(design("log(log)", frame).matrix[:, 1], np.log(frame["log"]))
    assert variables("log(log) + I(C * 2) + poly(poly, 2)") == ["log", "C", "poly"]


def test_variables_in_order_without_constants_and_argument_names():
    assert variables("1 + week * arm + I(age^2)") == ["week", "arm", "age"]
    assert variables("b:a + a + poly(x, degree = 2, raw = TRUE) + I(z * pi) + factor(T)") == [
        "b", "a", "x", "z"]
    assert variables("0 + x") == ["x"]


def test_levels_in_r_order():
    frame = pd.DataFrame({
        "word": ["beta", "alpha", "Gamma", "beta"],           # C-locale: Gamma < alpha < beta
        "flag": [True, False, True, True],                    # FALSE, TRUE
        "kept": pd.Categorical(["z", "a", "z", "m"], categories=["z", "m", "a", "unused"]),
    })
    assert design("word", frame).names == ("(Intercept)", "wordalpha", "wordbeta")
    assert design("flag", frame).names == ("(Intercept)", "flagTRUE")
    assert design("kept", frame).names == ("(Intercept)", "keptm", "kepta")   # order kept, unused dropped
    assert design("0 + kept", frame).names == ("keptz", "keptm", "kepta")
    numbers = pd.DataFrame({"dose": [0.5, 10.0, 1.0, 0.5, 100000.0]})
    # factor() of numbers: numeric order, labels as R's as.character
    assert design("factor(dose)", numbers).names == (
        "(Intercept)", "factor(dose)1", "factor(dose)10", "factor(dose)1e+05")


def test_r_number_formatting():
    # R 4.2.2: as.character(c(100000, 1e5 + 1, 0.1, 1e-5, 123456.7, 1/3, 1e15, 2.5, -3))
    # → "1e+05" "100001" "0.1" "1e-05" "123456.7" "0.333333333333333" "1e+15" "2.5" "-3"
    values = [100000, 1e5 + 1, 0.1, 1e-5, 123456.7, 1 / 3, 1e15, 2.5, -3]
    expected = ["1e+05", "100001", "0.1", "1e-05", "123456.7", "0.333333333333333", "1e+15", "2.5", "-3"]
    assert [_r_number(float(value)) for value in values] == expected


def test_intercept_default_and_response():
    frame = pd.DataFrame({"x": [1.0, 2.0, 4.0], "y": [1.0, np.e, np.e**2]})
    assert design("x", frame, intercept_default=False).names == ("x",)
    assert design("1 + x", frame, intercept_default=False).names == ("(Intercept)", "x")
    np.testing.assert_allclose(response("log(y)", frame), [0.0, 1.0, 2.0])
    np.testing.assert_allclose(response("I(y * 2)", frame), 2 * frame["y"])


def test_poly_is_orthonormal_and_raw_is_powers():
    # stats::poly: columns orthogonal to the constant and to each other, unit length
    frame = pd.DataFrame({"t": [0.0, 1.0, 2.0, 3.0, 4.0, 7.0]})
    z = design("poly(t, 3)", frame).matrix[:, 1:]
    np.testing.assert_allclose(z.T @ z, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(z.sum(axis=0), 0.0, atol=1e-12)
    raw = design("poly(t, 2, raw = TRUE)", frame)
    np.testing.assert_array_equal(raw.matrix[:, 2], frame["t"] ** 2)


def test_dqrdc2_moves_negligible_columns_to_the_end():
    # column 2 = 2·column 1: its residual norm after column 1 is 0 < 1e-7·‖col 2‖, so it is moved
    # to the end and the rank is 2; columns 1 and 3 are kept in their order
    x = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 1.0], [3.0, 6.0, 5.0], [1.0, 2.0, 2.0]])
    assert _dqrdc2_keep(x).tolist() == [0, 2]
    assert _dqrdc2_keep(np.column_stack([np.zeros(4), x[:, 0]])).tolist() == [1]


@pytest.mark.parametrize(
    ("rhs", "message"),
    [
        ("ns(x, 3)", r"term 'ns\(x, 3\)'.*function ns\(\) is not supported.*supported: columns"),
        ("C(f, contr.sum)", r"function C\(\) is not supported"),
        (".", r"'\.' \(all other columns\).*not supported"),
        ("x + 2", r"term '2'.*is a constant"),
        ("(x + z)^x", r"power of a formula term must be a positive whole number"),
        ("(x + z)^1.5", r"power of a formula term must be a positive whole number"),
        ("x + nothere", r"column 'nothere' used in 'x \+ nothere' is not in the data"),
        ("x + (1 | g)", r"random-effects term '1 \| g'.*not part of a fixed-effects"),
        ("poly(x, z, 2)", r"degree must be a single constant"),
        ("poly(f, 2)", r"poly\(\) takes one numeric variable"),
        ("poly(x, 20)", r"'degree' must be less than number of unique points"),
        ("poly(x, 1.5)", r"'degree' must be a whole number"),
        ("poly(x, deg = 2)", r"poly\(\) has no argument 'deg'"),
        ("poly(x, degree = x)", r"degree must be a single constant"),
        ("poly()", r"poly\(\) needs its argument 'x'"),
        ("log(x, 2, 3)", r"too many arguments to log\(\)"),
        ("I(f + 1)", r"arithmetic needs numbers"),
        ("I(f == x)", r"a factor can be compared with one value only"),
        ("I(x %o% z)", r"the operator '%o%' is not supported inside a function"),
        ("I(\"a\")", r"is a string constant"),
        ("x +", r"ends unexpectedly"),
        ("x + )", r"unexpected '\)'"),
        ("x z", r"unexpected 'z'"),
        ("x + $", r"cannot read formula"),
        ("", r"empty formula"),
        ("f(x, y", r"expected ',' or '\)'|ends unexpectedly"),
        ("poly(x, 2", r"ends unexpectedly"),
        ("x ~ z", r"must be one side of a formula"),
        ("(x + z", r"expected '\)'|ends unexpectedly"),
        ("(x, z)", r"expected '\)' in formula '\(x, z\)', found ','"),
        ("log(x z)", r"expected ',' or '\)' in the call log\(\.\.\.\)"),
        ("factor(poly(x, 2))", r"cannot make a factor of 'factor\(poly\(x, 2\)\)'"),
        ("I(ns(x))", r"term 'ns\(x\)' in 'I\(ns\(x\)\)': function ns\(\) is not supported"),
        ("-x", r"."),  # deletes nothing: R gives an intercept-only model (checked below)
    ],
)
def test_unsupported_terms_raise_value_error_naming_them(rhs, message):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "z": [2.0, 1.0, 0.0, 5.0], "f": list("abab")})
    if rhs == "-x":
        assert design(rhs, frame).names == ("(Intercept)",)
        return
    with pytest.raises(ValueError, match=message):
        design(rhs, frame)


def test_value_errors_for_data_problems():
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0], "f": ["a", None, "b", "a"],
                          "o": pd.Categorical(list("abab"), ordered=True), "y": ["u", "v", "u", "v"],
                          "when": pd.to_datetime(["2020-01-01"] * 4)})
    with pytest.raises(ValueError, match=r"missing or undefined \(NaN\) values in 'x' \(1 rows\)"):
        design("x", frame)
    with pytest.raises(ValueError, match=r"missing values in 'f' \(1 rows\)"):
        design("f", frame)
    with pytest.raises(ValueError, match=r"ordered Categorical.*contr\.poly"):
        design("o", frame)
    with pytest.raises(ValueError, match=r"missing values are not allowed in 'poly'"):
        design("poly(x, 2)", frame)
    with pytest.raises(ValueError, match=r"missing or undefined values in 'scale\(x\)'"):
        design("scale(x)", frame)
    with pytest.raises(ValueError, match=r"column 'when' has type"):
        design("when", frame)
    with pytest.raises(ValueError, match=r"the response 'y' must be one numeric variable; it is a factor"):
        response("y", frame)
    with pytest.raises(ValueError, match=r"the response 'poly\(x, 2\)' must be one numeric variable; it is a matrix"):
        response("poly(x, 2)", pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}))
    with pytest.raises(ValueError, match=r"must be a pandas DataFrame"):
        design("x", frame.to_numpy())
    with pytest.raises(ValueError, match=r"a formula side must be a string"):
        variables(3)


def test_formula_errors_reach_mixedlm(sleep):
    with pytest.raises(ValueError, match=r"cannot use formula .*function ns\(\) is not supported"):
        mixedlm("Reaction ~ ns(Days, 3) + (1 | Subject)", sleep)


def test_poly_and_scale_see_all_rows_before_incomplete_rows_are_dropped(sleep):
    # R's model.frame evaluates poly()/scale() on the whole data, then na.omit drops rows with a
    # missing value elsewhere: scale(Days) keeps the mean 4.5 and SD of all 180 rows,
    # sqrt(18 · 82.5 / 179) = 2.88031, not those of the 162 rows left (mean 4)
    data = sleep.assign(Reaction=sleep["Reaction"].where(sleep["Days"] != 9))
    frame = build_model_frame("Reaction ~ scale(Days) + (1 | Subject)", data)
    full_scale = (np.arange(10) - 4.5) / np.sqrt(18 * 82.5 / 179)
    np.testing.assert_allclose(np.unique(frame.fixed_design[:, 1]), full_scale[:9], rtol=1e-12)
