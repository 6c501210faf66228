"""Kenward–Roger SEs, df and F tests against pbkrtest via lmerTest (``reference/kenward_roger.json``).

``reference/kenward_roger.R``: ``summary(m, ddf = "Kenward-Roger")`` and ``anova(m, ddf =
"Kenward-Roger", type = 3)`` (lmerTest 3.1-3 calling pbkrtest) on one-term, uncorrelated, crossed,
interaction-grouping and two-term models. The type III F of a term contained in an interaction is
not the test of its coefficients, so only terms outside interactions are compared as F tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.stats import mixedlm
from alliance.stats.mixed import kenward_roger, kenward_roger_test

REFERENCE = Path(__file__).parent / "reference"
CASES = {k: v for k, v in json.loads((REFERENCE / "kenward_roger.json").read_text(encoding="utf-8")).items()
         if k != "versions"}


@pytest.fixture(scope="module")
def fitted():
    out = {}
    for key, case in CASES.items():
        data = pd.read_csv(REFERENCE / "data" / case["data"])
        out[key] = (mixedlm(case["formula"], data), data)
    return out


@pytest.mark.parametrize("key", list(CASES))
def test_adjusted_se_and_df(fitted, key):
    fit, data = fitted[key]
    ours = kenward_roger(fit, data)
    theirs = pd.DataFrame(CASES[key]["fixed"]).set_index("term")
    assert list(ours.index) == list(theirs.index)
    assert np.allclose(ours["se"], theirs["se"], rtol=1e-4)
    assert np.allclose(ours["df"], theirs["df"], rtol=1e-3)
    assert np.allclose(ours["p"], theirs["p"], rtol=1e-3, atol=1e-10)
    adjusted = np.atleast_2d(np.asarray(CASES[key]["vcov_adjusted"], dtype=float))
    assert np.allclose(ours["se"] ** 2, np.diag(adjusted), rtol=1e-4)   # pbkrtest's vcovAdj


@pytest.mark.parametrize("key", list(CASES))
def test_f_tests_of_terms_outside_interactions(fitted, key):
    fit, data = fitted[key]
    names = list(fit.fixed.index)
    interacting = {part for name in names if ":" in name for part in name.split(":")}
    checked = 0
    for row in CASES[key]["anova"]:
        term = row["term"]
        columns = [n for n in names if ":" not in n and n != "(Intercept)" and n.startswith(term)
                   and n[len(term):].isalnum() or n == term]
        if ":" in term or any(c in interacting for c in columns):
            continue
        matrix = np.eye(len(names))[[names.index(c) for c in columns]]
        found = kenward_roger_test(fit, data, matrix)
        assert found["num_df"] == row["num_df"]
        assert found["F"] == pytest.approx(row["F"], rel=1e-4)
        assert found["den_df"] == pytest.approx(row["den_df"], rel=1e-3)
        checked += 1
    assert checked or not CASES[key]["anova"] or ":" in "".join(r["term"] for r in CASES[key]["anova"])


def test_an_ml_fit_is_refused(fitted):
    fit, data = fitted["sleepstudy_slope"]
    ml = mixedlm(fit.formula, data, reml=False)
    with pytest.raises(ValueError, match="REML"):
        kenward_roger(ml, data)
