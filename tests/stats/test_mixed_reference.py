"""mixedlm with several random-effects terms against lme4/lmerTest (``reference/mixed_terms.json``).

The references were computed by ``reference/mixed_terms.R`` (R 4.2.2, lme4 1.1-31, lmerTest 3.1-3)
with bobyqa at ``rhoend = 1e-12`` so that R's optimum is accurate: crossed (Penicillin), nested
(Pastes, ``batch/cask``), uncorrelated ``||`` and its two-term spelling (sleepstudy), crossed terms
with correlated slopes (simulated), multiple membership with equal and with explicit weights
(simulated; lme4's modular functions with a hand-built ``Zt`` block), and held-out shapes
(Dyestuff, cake with an interaction grouping ``recipe:replicate``). Tolerances: those of
``reference/README.md``; the log-likelihood to 1e-6 absolute.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.stats import mixedlm

REFERENCE = Path(__file__).parent / "reference"
with open(REFERENCE / "mixed_terms.json", encoding="utf-8") as handle:
    CASES = {k: v for k, v in json.load(handle).items() if k != "versions"}
WITH_TABLES = [k for k, v in CASES.items() if "fixed" in v]
MEMBERSHIP = [k for k, v in CASES.items() if "fixed_estimate" in v]


def data_of(case: dict) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / case["data"], keep_default_na=True)


@pytest.fixture(scope="module")
def fits() -> dict:
    return {key: mixedlm(case["formula"], data_of(case)) for key, case in CASES.items()}


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-2)))


@pytest.mark.parametrize("key", list(CASES))
def test_loglik_and_theta(fits, key):
    case, fit = CASES[key], fits[key]
    assert fit.loglik == pytest.approx(case["reml_loglik"], abs=1e-6)
    assert rel(fit.theta, case["theta"]) < 1e-4
    assert fit.singular == case["isSingular"]


@pytest.mark.parametrize("key", WITH_TABLES)
def test_fixed_effects_with_satterthwaite_df(fits, key):
    reference = pd.DataFrame(CASES[key]["fixed"]).set_index("term")
    fixed = fits[key].fixed
    assert list(fixed.index) == list(reference.index)
    assert rel(fixed["estimate"], reference["estimate"]) < 1e-4
    assert rel(fixed["se"], reference["se"]) < 1e-4
    assert rel(fixed["df"], reference["df"]) < 1e-3
    assert np.allclose(fixed["p"], reference["p"], rtol=1e-3, atol=1e-10)


@pytest.mark.parametrize("key", WITH_TABLES)
def test_variance_components_in_varcorr_layout_with_lme4s_group_names(fits, key):
    reference = pd.DataFrame(CASES[key]["varcomp"])
    varcomp = fits[key].varcomp
    assert varcomp["group"].tolist() == reference["grp"].tolist()
    assert varcomp["var1"].tolist() == [None if pd.isna(v) else v for v in reference["var1"]]
    assert rel(varcomp["vcov"], reference["vcov"]) < 1e-4
    assert rel(varcomp["sdcor"], reference["sdcor"]) < 1e-4
    assert fits[key].groups == CASES[key]["ngrps"] and fits[key].n_obs == CASES[key]["nobs"]


@pytest.mark.parametrize("key", WITH_TABLES)
def test_ml_refit(key):
    case = CASES[key]
    fit = mixedlm(case["formula"], data_of(case), reml=False)
    assert fit.loglik == pytest.approx(case["ml_loglik"], abs=1e-6)


@pytest.mark.parametrize("key", [k for k in WITH_TABLES if CASES[k]["ranef"]])
def test_conditional_modes_and_sds(fits, key):
    """Every model carries ranef: several terms, an interaction grouping, and one plain term (dyestuff)."""
    reference = pd.DataFrame(CASES[key]["ranef"])
    ours = fits[key].ranef()
    merged = reference.merge(ours, on=["grpvar", "term", "grp"], suffixes=("_r", ""), how="left")
    assert len(merged) == len(reference) and merged["condval"].notna().all()
    assert np.allclose(merged["condval"], merged["condval_r"], rtol=1e-4, atol=1e-6 * merged["condval_r"].abs().max())
    assert np.allclose(merged["condsd"], merged["condsd_r"], rtol=1e-4)


@pytest.mark.parametrize("key", [k for k in WITH_TABLES if CASES[k]["anova3"]])
def test_f_tests_of_main_effect_terms_match_type_3_anova(fits, key):
    """Without interactions, lmerTest's type III test of a term is the F test of its coefficients."""
    fit = fits[key]
    for row in CASES[key]["anova3"]:
        columns = [t for t in fit.fixed.index if t == row["term"] or (t.startswith(row["term"]) and t != "(Intercept)"
                                                                      and t[len(row["term"]):].isalnum())]
        found = fit.test(pd.DataFrame(np.eye(len(fit.fixed))[[list(fit.fixed.index).index(c) for c in columns]],
                                      columns=fit.fixed.index))
        assert found["num_df"] == row["num_df"]
        assert found["F"] == pytest.approx(row["F"], rel=1e-4)
        assert found["den_df"] == pytest.approx(row["den_df"], rel=1e-3)


@pytest.mark.parametrize("key", MEMBERSHIP)
def test_multiple_membership_equals_lme4_with_a_hand_built_zt(fits, key):
    case, fit = CASES[key], fits[key]
    assert list(fit.fixed.index) == case["fixed_terms"]
    assert rel(fit.fixed["estimate"], case["fixed_estimate"]) < 1e-4
    assert rel(fit.fixed["se"], case["fixed_se"]) < 1e-4
    assert rel(fit.varcomp["vcov"], pd.DataFrame(case["varcomp"])["vcov"]) < 1e-4
    assert fit.n_obs == len(data_of(case))   # participants with one facilitator are kept
