"""logistic_regression against glm(binomial) and brglm2 (reference/logistic.R → logistic.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.stats import logistic_regression

REFERENCE = json.loads((Path(__file__).parent / "reference" / "logistic.json").read_text(encoding="utf-8"))
CASES = REFERENCE["cases"]
FITS = [(name, index) for name, case in CASES.items() for index in range(len(case["fits"]))]
IDS = [f"{name}-{CASES[name]['fits'][index]['formula']}" for name, index in FITS]


def _fit(name, index, method):
    case, want = CASES[name], CASES[name]["fits"][index]
    response, right = (side.strip() for side in want["formula"].split("~"))
    covariates = [term.strip() for term in right.split("+")]
    data = pd.DataFrame(case["data"])
    return logistic_regression(data[response], data[covariates], method=method), want


def _close(got, want, rel):
    np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), rtol=rel, atol=0)


@pytest.mark.parametrize(("name", "index"), [f for f in FITS if not CASES[f[0]]["separated"]],
                         ids=[i for f, i in zip(FITS, IDS, strict=True) if not CASES[f[0]]["separated"]])
def test_ml_equals_glm(name, index):
    got, want = _fit(name, index, "ml")
    want = want["ml"]
    table = got.coefficients
    assert list(table.index) == want["terms"]
    for field in ("estimate", "se", "z", "p", "ci_low", "ci_high"):
        _close(table[field], want[field], 1e-8)
    _close(table["odds_ratio"], np.exp(want["estimate"]), 1e-8)
    assert got.loglik == pytest.approx(want["loglik"], rel=1e-10)
    assert got.n == want["n"] and got.converged and not got.separation


@pytest.mark.parametrize(("name", "index"), FITS, ids=IDS)
def test_firth_equals_brglm2_and_profile_penalised_likelihood(name, index):
    got, want = _fit(name, index, "firth")
    want = want["firth"]
    table = got.coefficients
    for field in ("estimate", "se", "z", "p"):
        _close(table[field], want[field], 1e-7)
    _close(table["lr_statistic"], want["lr_statistic"], 1e-7)
    _close(table["p_lr"], want["lr_p"], 1e-7)
    _close(table["profile_ci_low"], want["profile_ci_low"], 1e-7)
    _close(table["profile_ci_high"], want["profile_ci_high"], 1e-7)
    assert got.penalised_loglik == pytest.approx(want["penalised_loglik"], rel=1e-10)
    assert got.loglik == pytest.approx(want["loglik"], rel=1e-10)
    assert got.converged and want["converged"]
    assert not any("did not converge" in note for note in got.notes)


@pytest.mark.parametrize("name", ["quasi", "complete"])
def test_separation_is_flagged_for_ml_and_firth_stays_finite(name):
    ml, want = _fit(name, 0, "ml")
    assert ml.separation and ml.separation_kind == ("complete" if name == "complete" else "quasi-complete")
    assert not ml.converged
    assert any("separation" in note and "method='firth'" in note for note in ml.notes)
    # glm's diverged estimates are huge; ours are as meaningless, and just as far out
    assert abs(ml.coefficients.loc["x", "estimate"]) > 10 and abs(want["ml"]["estimate"][1]) > 10
    firth = logistic_regression(CASES[name]["data"]["y"], CASES[name]["data"]["x"], method="firth")
    assert firth.converged and np.isfinite(firth.coefficients[["estimate", "se"]].to_numpy()).all()
    assert np.isfinite(firth.coefficients[["profile_ci_low", "profile_ci_high"]].to_numpy()).all()


def test_no_separation_in_the_ordinary_cases():
    for name in ("safety", "mtcars", "infert"):
        assert _fit(name, 0, "ml")[0].separation_kind == "none"


def test_missing_rows_are_dropped_and_counted():
    data = pd.DataFrame(CASES["safety"]["data"])
    reference = logistic_regression(data["event"], data[["alliance"]], method="firth")
    extra = pd.DataFrame({"event": [np.nan, 1.0, 0.0], "alliance": [50.0, np.nan, np.nan]})
    padded = pd.concat([data[["event", "alliance"]], extra], ignore_index=True)
    got = logistic_regression(padded["event"], padded[["alliance"]], method="firth")
    assert got.n_dropped == 3 and got.n == reference.n == 24 and any("3 rows" in note for note in got.notes)
    pd.testing.assert_frame_equal(got.coefficients, reference.coefficients)


def test_bool_outcome_arrays_and_names():
    data = CASES["safety"]["data"]
    as_bool = logistic_regression(np.array(data["event"]) == 1, np.array(data["alliance"]), names=["alliance"])
    as_frame = logistic_regression(pd.Series(data["event"]), pd.DataFrame({"alliance": data["alliance"]}))
    pd.testing.assert_frame_equal(as_bool.coefficients, as_frame.coefficients)
    assert list(as_bool.coefficients.index) == ["(Intercept)", "alliance"]
    assert as_bool.n_events == sum(data["event"])
    record = as_bool.to_dict()
    assert record["method"] == "ml" and record["penalised_loglik"] is None and len(record["coefficients"]) == 2


@pytest.mark.parametrize(
    ("y", "X", "message"),
    [
        ([0, 1, 2, 0, 1, 0], [1, 2, 3, 4, 5, 6], "binary"),
        ([0, 1, "yes", 0, 1, 0], [1, 2, 3, 4, 5, 6], "binary"),
        ([0, 0, 0, 0, 1, 0], [1, 2, 3, 4, 5, 6], "at least 2 events"),
        ([1, 1, 1, 0, 1, 1], [1, 2, 3, 4, 5, 6], "2 non-events"),
        ([0, 1, 0, 1, 1, 0], [1, 2, 3], "same length"),
        ([0, 1, 0, 1, 1, 0], [[1, 2], [2, 4], [3, 6], [4, 8], [5, 10], [6, 12]], "collinear"),
        ([0, 1, 0, 1, 1, 0], [3, 3, 3, 3, 3, 3], "constant or collinear"),
        ([0, 1, 0, 1, 1, 0], ["a", "b", "c", "d", "e", "f"], "numeric"),
        ([0, 1, 0, 1], [[1, 2, 3], [2, 1, 0], [0, 5, 1], [4, 4, 2]], "more complete rows"),
    ],
)
def test_invalid_input_is_refused(y, X, message):
    with pytest.raises(ValueError, match=message):
        logistic_regression(y, X)


def test_unknown_method_and_wrong_names():
    with pytest.raises(ValueError, match="unknown method"):
        logistic_regression([0, 1, 0, 1, 1, 0], [1, 2, 3, 4, 5, 6], method="exact")
    with pytest.raises(ValueError, match="names has 2 entries"):
        logistic_regression([0, 1, 0, 1, 1, 0], [1, 2, 3, 4, 5, 6], names=["a", "b"])
