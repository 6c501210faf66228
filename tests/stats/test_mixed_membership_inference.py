"""Inference for multiple-membership models against lme4 + lmerTest (``reference/mixed_general.json``).

lmerTest refuses a hand-built membership model through its public ``as_lmerModLmerTest``;
``mixed_general.R`` builds it with lme4's modular functions and attaches lmerTest's
Satterthwaite and pbkrtest's Kenward–Roger through lmerTest's internal ``as_lmerModLT`` (checked
there: with facilitator_2 = facilitator_1 it reproduces plain ``lmer`` to 1e-10). Different
data from ``mixed_terms.json`` (seed 1302). Covered: estimates, Satterthwaite df, Kenward–Roger
SE and df, type III anova with both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from alliance.stats import mixedlm
from alliance.stats.mixed import anova, kenward_roger

REFERENCE = Path(__file__).parent / "reference"
CASES = json.loads((REFERENCE / "mixed_general.json").read_text(encoding="utf-8"))["multiple_membership"]


@pytest.fixture(scope="module", params=CASES, ids=[c["name"] for c in CASES])
def fitted(request):
    case = request.param
    data = pd.read_csv(REFERENCE / "data" / case["data"])
    formula = case["formula"]
    if case["weights"].startswith("columns w_1, w_2"):   # the R formula field names the terms, the weights are apart
        formula = formula.replace("mm(facilitator_1, facilitator_2)",
                                  "mm(facilitator_1, facilitator_2, weights = cbind(w_1, w_2))")
    return case, mixedlm(formula, data), data


def test_loglik_estimates_and_satterthwaite_df(fitted):
    case, fit, _ = fitted
    theirs = pd.DataFrame(case["fixed"]).set_index("term")
    assert fit.loglik == pytest.approx(case["reml_loglik"], abs=1e-6)
    assert fit.fixed["estimate"].to_numpy() == pytest.approx(theirs["estimate"].to_numpy(), rel=1e-5)
    assert fit.fixed["se"].to_numpy() == pytest.approx(theirs["se"].to_numpy(), rel=1e-4)
    assert fit.fixed["df"].to_numpy() == pytest.approx(theirs["df"].to_numpy(), rel=1e-3)


def test_kenward_roger(fitted):
    case, fit, data = fitted
    theirs = pd.DataFrame(case["fixed_kr"]).set_index("term")
    ours = kenward_roger(fit, data)
    assert ours["df"].to_numpy() == pytest.approx(theirs["df"].to_numpy(), rel=1e-3)
    se = theirs["se_adjusted"] if "se_adjusted" in theirs else theirs["se"]
    assert ours["se"].to_numpy() == pytest.approx(se.to_numpy(), rel=1e-4)


@pytest.mark.parametrize(("ddf", "key"), [("satterthwaite", "anova3"), ("kenward-roger", "anova3_kr")])
def test_type_3_anova(fitted, ddf, key):
    case, fit, data = fitted
    theirs = pd.DataFrame(case[key]).set_index("term")
    ours = anova(fit, data, ddf=ddf)
    assert list(ours.index) == list(theirs.index)
    assert ours["F"].to_numpy() == pytest.approx(theirs["F"].to_numpy(), rel=1e-4)
    assert ours["den_df"].to_numpy() == pytest.approx(theirs["den_df"].to_numpy(), rel=1e-3)
