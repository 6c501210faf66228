"""Confidence intervals of mixed models against lme4's ``confint`` (``reference/confint.json``).

The references were computed by ``reference/confint.R`` (R 4.2.2, lme4 1.1-31; bobyqa with
``rhoend = 1e-12``): ``confint(profile(m, signames = FALSE), level = 0.95 / 0.90)`` and
``confint(m, method = "Wald", oldNames = FALSE)`` for sleepstudy ``(Days|Subject)`` and
``(Days||Subject)``, crossed Penicillin, nested Pastes (near-singular: the batch SD's profile
reaches 0), Dyestuff2 (singular: SD estimated 0), a simulated correlation estimated +1 (singular:
the correlation's upper end is the bound 1) and, held out, Dyestuff and cake.

Tolerance of the profile intervals: 5e-4 relative (1e-6 absolute near 0); 2.5e-3 for a
correlation whose interval reaches ±1. lme4 evaluates ζ on a grid and inverts an interpolation
spline; we find the roots of ζ directly. Measured differences (max |ours − R| over a case's ends,
95% / 90%): sleepstudy 8.3e-5 / 6.5e-5, sleepstudy ``||`` 6.3e-5 / 4.1e-5, Penicillin 4.2e-5 /
3.0e-5, Pastes 2.2e-4 / 4.6e-4, Dyestuff2 7.4e-4 / 5.0e-6, correlation at +1 2.6e-4 / 1.8e-3 (the
correlation's lower end at 90%, 0.92599 against R's 0.92416: 2.0e-3 relative), Dyestuff 2.0e-3 /
7.5e-4 (its ends are 12 to 1569: 1.7e-4 relative at most), cake 6.1e-6 / 2.9e-6. Apart from that
correlation, the largest relative difference is 2.9e-4. Where they differ it is R's spline:
:func:`test_the_ends_are_the_exact_roots_of_zeta` recomputes the Dyestuff profiles by brute force
(one-dimensional minimisations) and :func:`test_zeta_at_the_ends_by_an_independent_optimiser`
re-optimises the correlation case by Nelder–Mead; both agree with ours to 1e-8. Wald intervals
of fixed effects equal R's to 1e-6 relative.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from alliance.stats import confint, mixedlm
from alliance.stats._lmm_deviance import ProfiledDeviance
from alliance.stats._lmm_formula import build_model_frame
from alliance.stats._lmm_profile import CovarianceTerm, Criterion, psi_deviance

REFERENCE = Path(__file__).parent / "reference"
REFERENCES = json.loads((REFERENCE / "confint.json").read_text(encoding="utf-8"))
CASES = {case["name"]: case for case in REFERENCES["cases"]}
PROFILE_REL = 5e-4
CORRELATION_AT_BOUND_REL = 2.5e-3   # lme4's spline is coarser where ζ meets a correlation's bound


def data_of(case: dict) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / case["data"])


@pytest.fixture(scope="module")
def fitted() -> dict:
    out = {}
    for name, case in CASES.items():
        data = data_of(case)
        out[name] = (mixedlm(case["formula"], data), data)
    return out


def reference_table(case: dict, key: str) -> pd.DataFrame:
    table = pd.DataFrame(case[key]).set_index("parameter")
    return table.astype(float)   # R's NA (null) → NaN


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize(("key", "level"), [("profile_95", 0.95), ("profile_90", 0.90)])
def test_profile_intervals_match_lme4(fitted, name, key, level):
    fit, data = fitted[name]
    theirs = reference_table(CASES[name], key)
    ours = confint(fit, data, level=level)
    assert list(ours.index) == list(theirs.index)      # lme4's row names and order
    at_bound = theirs.index.str.startswith("cor_") & (theirs["upper"].abs().eq(1) | theirs["lower"].abs().eq(1))
    tolerance = np.where(at_bound, CORRELATION_AT_BOUND_REL, PROFILE_REL)
    for column in ("lower", "upper"):
        difference = np.abs(ours[column] - theirs[column])
        assert (difference <= tolerance * np.abs(theirs[column]) + 1e-6).all(), (column, ours, theirs)
    # an end on the boundary is the bound exactly, as lme4 reports it (an SD's 0, a correlation's ±1)
    assert (ours["lower"][theirs["lower"] == 0] == 0).all()
    assert (ours["upper"][theirs["upper"] == 1] == 1).all()
    assert (ours["lower"] <= ours["estimate"]).all() and (ours["estimate"] <= ours["upper"]).all()


@pytest.mark.parametrize("name", list(CASES))
def test_estimates_are_the_fitted_models(fitted, name):
    fit, data = fitted[name]
    ours = confint(fit, data, method="wald")
    # as.data.frame(VarCorr(m)) rows → confint's names (its `||` groups Subject, Subject.1 are both Subject)
    expected = {}
    for row in CASES[name]["varcomp"]:
        group = re.sub(r"\.\d+$", "", row["grp"])
        if row["grp"] == "Residual":
            expected["sigma"] = row["sdcor"]
        elif row["var2"] is None:
            expected[f"sd_{row['var1']}|{group}"] = row["sdcor"]
        else:
            expected[f"cor_{row['var2']}.{row['var1']}|{group}"] = row["sdcor"]
    assert sorted(expected) == sorted(ours.index[:len(expected)])
    assert np.allclose(ours.loc[list(expected), "estimate"], list(expected.values()), rtol=1e-4, atol=1e-6)
    assert np.allclose(ours["estimate"].iloc[len(expected):], fit.fixed["estimate"], rtol=1e-12)


def test_the_boundary_cases_are_the_ones_intended(fitted):
    """Pastes: the batch SD is estimated > 0 but its interval reaches 0; Dyestuff2: the SD is 0."""
    pastes = confint(*fitted["pastes"])
    assert pastes.loc["sd_(Intercept)|batch", "estimate"] > 1.0
    assert pastes.loc["sd_(Intercept)|batch", "lower"] == 0.0
    assert pastes.loc["sd_(Intercept)|cask:batch", "lower"] > 2.0
    singular = confint(*fitted["dyestuff2"])
    assert singular.loc["sd_(Intercept)|Batch", "estimate"] < 1e-4
    assert singular.loc["sd_(Intercept)|Batch", "lower"] == 0.0 and singular.loc["sd_(Intercept)|Batch", "upper"] > 2
    correlated = confint(*fitted["correlation_boundary"])
    assert correlated.loc["cor_x.(Intercept)|g", "estimate"] == pytest.approx(1.0, abs=1e-8)
    assert correlated.loc["cor_x.(Intercept)|g", "upper"] == 1.0
    assert 0.5 < correlated.loc["cor_x.(Intercept)|g", "lower"] < 0.95


@pytest.mark.parametrize("name", list(CASES))
def test_wald_intervals_of_fixed_effects_match_lme4(fitted, name):
    fit, data = fitted[name]
    theirs = reference_table(CASES[name], "wald_95")
    ours = confint(fit, data, method="wald")
    assert list(ours.index) == list(theirs.index)
    fixed = list(fit.fixed.index)
    assert np.allclose(ours.loc[fixed, ["lower", "upper"]], theirs.loc[fixed], rtol=1e-6)
    # lme4 has no Wald interval for variance components; ours (an addition) is finite
    varcomp = [p for p in theirs.index if p not in fixed]
    assert theirs.loc[varcomp].isna().all().all()
    assert np.isfinite(ours.loc[varcomp, ["lower", "upper"]].to_numpy()).all()


@pytest.mark.parametrize(("name", "formula"), [("dyestuff", "Yield ~ 1 + (1|Batch)"),
                                               ("sleepstudy", "Reaction ~ Days + (Days|Subject)")])
def test_wald_variance_components_are_the_delta_method_of_lmertests_varpar_covariance(fitted, name, formula):
    """Cov(ψ̂) = J A Jᵀ with A = 2H⁻¹ in (θ, σ) (lmerTest's vcov_varpar) and J = ∂ψ/∂(θ, σ).

    A different route to the same matrix: ours takes the Hessian in ψ directly.
    """
    fit, data = fitted[name]
    ours = confint(fit, data, method="wald", level=0.95)
    theta, sigma = np.asarray(fit.theta), float(fit.varcomp["sdcor"].iloc[-1])

    def psi(varpar):   # (θ, σ) → (SD, [correlation, SD,] σ), written out for one and two columns
        if len(theta) == 1:
            return np.array([varpar[1] * varpar[0], varpar[1]])
        t = np.array([[varpar[0], 0.0], [varpar[1], varpar[2]]])
        cov = varpar[3] ** 2 * t @ t.T
        sd = np.sqrt(np.diag(cov))
        return np.array([sd[0], cov[1, 0] / (sd[0] * sd[1]), sd[1], varpar[3]])
    varpar = np.r_[theta, sigma]
    jacobian = np.column_stack([(psi(varpar + e) - psi(varpar - e)) / 2e-6 for e in np.eye(len(varpar)) * 1e-6])
    se = np.sqrt(np.diag(jacobian @ fit._varpar_cov @ jacobian.T))
    z = stats.norm.ppf(0.975)
    rows = ours.index[: len(se)]
    assert np.allclose((ours.loc[rows, "upper"] - ours.loc[rows, "estimate"]).to_numpy(), z * se, rtol=1e-4)


def test_the_ends_are_the_exact_roots_of_zeta():
    """Brute force on Dyestuff (one SD, σ, one β): each ζ a one-dimensional minimisation."""
    data = data_of(CASES["dyestuff"])
    frame = build_model_frame("Yield ~ 1 + (1|Batch)", data)
    ml = Criterion(ProfiledDeviance(frame.response, frame.fixed_design, frame.random_design, frame.group_starts,
                                    reml=False))
    best = optimize.minimize_scalar(lambda t: ml.profiled(np.array([t])), bounds=(0, 10), method="bounded",
                                    options={"xatol": 1e-12})
    theta = np.array([best.x])
    base = ml.profiled(theta)
    sd_hat, beta_hat = ml.sigma(theta) * theta[0], ml.parts(theta)[2][0]

    def zeta_sd(s):   # σ re-optimised with the SD held at s
        inner = optimize.minimize_scalar(lambda log_sigma: ml.varpar(np.array([s / np.exp(log_sigma)]),
                                                                      np.exp(log_sigma)), bracket=(3.0, 4.0), tol=1e-14)
        return np.sqrt(max(inner.fun - base, 0.0))

    def zeta_beta(b):  # θ re-optimised (σ and the other β profiled) with β held at b
        inner = optimize.minimize_scalar(lambda t: ml.fixed_profiled(np.array([t]), 0, b), bounds=(0, 20),
                                         method="bounded", options={"xatol": 1e-12})
        return np.sqrt(max(inner.fun - base, 0.0))
    z = stats.norm.ppf(0.975)
    brute = {
        "sd_(Intercept)|Batch": (optimize.brentq(lambda s: zeta_sd(s) - z, 1e-6, sd_hat, xtol=1e-12),
                                 optimize.brentq(lambda s: zeta_sd(s) - z, sd_hat, 500, xtol=1e-12)),
        "(Intercept)": (optimize.brentq(lambda b: zeta_beta(b) - z, beta_hat - 200, beta_hat, xtol=1e-12),
                        optimize.brentq(lambda b: zeta_beta(b) - z, beta_hat, beta_hat + 200, xtol=1e-12)),
    }
    ours = confint(mixedlm("Yield ~ 1 + (1|Batch)", data), data)
    for name, (lower, upper) in brute.items():
        assert ours.loc[name, "lower"] == pytest.approx(lower, rel=1e-8)
        assert ours.loc[name, "upper"] == pytest.approx(upper, rel=1e-8)
    # and lme4's spline is off by more than that here: the difference above is R's
    theirs = reference_table(CASES["dyestuff"], "profile_95")
    assert abs(theirs.loc["sd_(Intercept)|Batch", "lower"] - brute["sd_(Intercept)|Batch"][0]) > 1e-4


def test_zeta_at_the_ends_by_an_independent_optimiser(fitted):
    """The correlation case at 90%, where lme4's ends differ most from ours: at the correlation's
    lower end and at both ends of the slope SD the other three parameters are re-optimised by
    Nelder–Mead (from two starts), and the resulting ζ is the cutoff."""
    fit, data = fitted["correlation_boundary"]
    ours = confint(fit, data, level=0.90)
    frame = build_model_frame(fit.formula, data)
    ml = Criterion(ProfiledDeviance(frame.response, frame.fixed_design, frame.random_design, frame.group_starts,
                                    reml=False))
    terms = [CovarianceTerm("g", tuple(frame.random_names), 0)]
    deviance = psi_deviance(ml, terms, 3)
    ml_fit = mixedlm(fit.formula, data, reml=False)
    base = -2 * ml_fit.loglik
    estimate = confint(ml_fit, data, method="wald")["estimate"].to_numpy()[:4]   # ML (sd, cor, sd, σ)
    cutoff = stats.norm.ppf(0.95)
    for j, name in [(1, "cor_x.(Intercept)|g"), (2, "sd_x|g")]:
        others = [i for i in range(4) if i != j]
        for end in ("lower", "upper"):
            value = ours.loc[name, end]
            if value == 1.0:
                continue

            def objective(free, j=j, others=others, value=value):
                psi = np.empty(4)
                psi[j], psi[others] = value, free
                if psi[0] < 0 or psi[2] < 0 or psi[3] <= 0 or abs(psi[1]) > 1:
                    return 1e10
                return deviance(psi)
            starts = [estimate[others] * factor for factor in (1.0, 0.9)]
            best = min(optimize.minimize(objective, np.minimum(start, [1e9 if i != 1 else 1.0 for i in others]),
                                         method="Nelder-Mead",
                                         options={"xatol": 1e-10, "fatol": 1e-12, "maxfev": 40000}).fun
                       for start in starts)
            assert np.sqrt(best - base) == pytest.approx(cutoff, rel=1e-8), (name, end)
    theirs = reference_table(CASES["correlation_boundary"], "profile_90")
    assert abs(theirs.loc["cor_x.(Intercept)|g", "lower"] - ours.loc["cor_x.(Intercept)|g", "lower"]) > 1e-3


@pytest.mark.parametrize("formula", ["Reaction ~ Days + (Days|Subject)", "Reaction ~ Days + (Days||Subject)"])
def test_a_reml_fit_is_profiled_on_the_ml_deviance_as_lme4_does(formula):
    data = data_of(CASES["sleepstudy"])
    reml = confint(mixedlm(formula, data), data)
    ml = confint(mixedlm(formula, data, reml=False), data)
    assert np.allclose(reml[["lower", "upper"]], ml[["lower", "upper"]], rtol=1e-6)
    assert not np.allclose(reml["estimate"].iloc[:3], ml["estimate"].iloc[:3], rtol=1e-3)   # REML ≠ ML estimates


def test_parm_selects_rows_with_the_same_values(fitted):
    fit, data = fitted["penicillin"]
    everything = confint(fit, data)
    some = confint(fit, data, parm=["sigma", "(Intercept)"])
    assert list(some.index) == ["sigma", "(Intercept)"]
    assert np.allclose(some[["lower", "upper"]], everything.loc[["sigma", "(Intercept)"], ["lower", "upper"]],
                       rtol=1e-7)


def test_multiple_membership_is_profiled_too():
    """No R reference (lme4 cannot profile a hand-built model): the profile of each fixed effect is
    close to the ML Wald interval (400 observations), and each SD's interval brackets its estimate."""
    data = pd.read_csv(REFERENCE / "data" / "mixed_general_membership.csv")
    formula = "y ~ week * arm + (1|participant) + (1|mm(facilitator_1, facilitator_2))"
    fit = mixedlm(formula, data)
    ours = confint(fit, data)
    assert list(ours.index[:3]) == ["sd_(Intercept)|participant", "sd_(Intercept)|mm(facilitator_1, facilitator_2)",
                                    "sigma"]
    assert (ours["lower"] < ours["estimate"]).all() and (ours["estimate"] < ours["upper"]).all()
    ml = mixedlm(formula, data, reml=False)
    z = stats.norm.ppf(0.975)
    width = 2 * z * ml.fixed["se"]
    for column, sign in (("lower", -1), ("upper", 1)):
        wald = ml.fixed["estimate"] + sign * z * ml.fixed["se"]
        assert (np.abs(ours.loc[fit.fixed.index, column] - wald) < 0.05 * width).all()


def test_wrong_data_and_arguments_are_refused(fitted):
    fit, data = fitted["dyestuff"]
    with pytest.raises(ValueError, match="log-likelihood"):
        confint(fit, data.assign(Yield=data["Yield"] + np.arange(len(data))))
    with pytest.raises(ValueError, match="method"):
        confint(fit, data, method="boot")
    with pytest.raises(ValueError, match="parm"):
        confint(fit, data, parm=["sd_Days|Batch"])
    with pytest.raises(ValueError, match="level"):
        confint(fit, data, level=95)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if "ranef" in c])
def test_ranef_of_one_plain_term_matches_lme4(fitted, name):
    """One plain term (the per-group fitter) now carries ranef too, in R's row order."""
    fit, _ = fitted[name]
    theirs = pd.DataFrame(CASES[name]["ranef"])
    ours = fit.ranef()
    assert ours is not None
    assert ours[["grpvar", "term", "grp"]].astype(str).values.tolist() == theirs[["grpvar", "term", "grp"]].values.tolist()
    scale = theirs["condval"].abs().max()
    assert np.allclose(ours["condval"], theirs["condval"], rtol=1e-4, atol=1e-6 * scale)
    assert np.allclose(ours["condsd"], theirs["condsd"], rtol=1e-4)
