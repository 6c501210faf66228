"""Tests of :mod:`alliance.stats.mixed` against R, published output, statsmodels and dense algebra.

Where the expected numbers come from:
- ``reference.json`` section ``lmm``: lmerTest 3.1-3 / lme4 1.1-31 on sleepstudy (R 4.2.2).
- Printed lme4 output for Orthodont and ChickWeight found online (cited at each test); the data
  are embedded below (108 and 578 rows, from R's ``nlme::Orthodont`` and
  ``datasets::ChickWeight``).
- statsmodels ``MixedLM`` fitted tightly, and a dense textbook implementation written plainly in
  this file (full V = Z G Zᵀ + σ²I, generic optimiser, REML log-likelihood from its formula,
  Satterthwaite df from numerical derivatives) — nothing of the code under test is reused.
- A closed form: in a balanced random-intercept design, the Satterthwaite df of a
  between-group effect is G − 2 and of a centred within-group covariate G(m − 1) − 1.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import linalg, optimize
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from alliance.stats.mixed import MixedModel, mixedlm

REFERENCE = Path(__file__).parent / "reference"

# Tolerances of reference/README.md.
RTOL = 1e-4
ATOL = 1e-6
DF_RTOL = 1e-3
P_RTOL = 1e-3
P_ATOL = 1e-10
LOGLIK_RTOL = 1e-4


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def sleepstudy() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / "sleepstudy.csv")


@pytest.fixture(scope="module")
def lmm_reference() -> dict[str, dict]:
    with open(REFERENCE / "reference.json", encoding="utf-8") as handle:
        return {entry["name"]: entry for entry in json.load(handle)["lmm"]}


# nlme::Orthodont: distance at ages 8, 10, 12, 14 for M01..M16 then F01..F11.
ORTHODONT_DISTANCE = [
    26, 25, 29, 31, 21.5, 22.5, 23, 26.5, 23, 22.5, 24, 27.5, 25.5, 27.5, 26.5, 27, 20, 23.5, 22.5, 26,
    24.5, 25.5, 27, 28.5, 22, 22, 24.5, 26.5, 24, 21.5, 24.5, 25.5, 23, 20.5, 31, 26, 27.5, 28, 31, 31.5,
    23, 23, 23.5, 25, 21.5, 23.5, 24, 28, 17, 24.5, 26, 29.5, 22.5, 25.5, 25.5, 26, 23, 24.5, 26, 30,
    22, 21.5, 23.5, 25, 21, 20, 21.5, 23, 21, 21.5, 24, 25.5, 20.5, 24, 24.5, 26, 23.5, 24.5, 25, 26.5,
    21.5, 23, 22.5, 23.5, 20, 21, 21, 22.5, 21.5, 22.5, 23, 25, 23, 23, 23.5, 24, 20, 21, 22, 21.5,
    16.5, 19, 19, 19.5, 24.5, 25, 28, 28,
]

# datasets::ChickWeight: weights of chick c at days 0, 2, ..., 20, 21 (truncated when a chick was
# lost); chicks 1-20 diet 1, 21-30 diet 2, 31-40 diet 3, 41-50 diet 4.
CHICK_WEIGHTS = {
    1: [42, 51, 59, 64, 76, 93, 106, 125, 149, 171, 199, 205],
    2: [40, 49, 58, 72, 84, 103, 122, 138, 162, 187, 209, 215],
    3: [43, 39, 55, 67, 84, 99, 115, 138, 163, 187, 198, 202],
    4: [42, 49, 56, 67, 74, 87, 102, 108, 136, 154, 160, 157],
    5: [41, 42, 48, 60, 79, 106, 141, 164, 197, 199, 220, 223],
    6: [41, 49, 59, 74, 97, 124, 141, 148, 155, 160, 160, 157],
    7: [41, 49, 57, 71, 89, 112, 146, 174, 218, 250, 288, 305],
    8: [42, 50, 61, 71, 84, 93, 110, 116, 126, 134, 125],
    9: [42, 51, 59, 68, 85, 96, 90, 92, 93, 100, 100, 98],
    10: [41, 44, 52, 63, 74, 81, 89, 96, 101, 112, 120, 124],
    11: [43, 51, 63, 84, 112, 139, 168, 177, 182, 184, 181, 175],
    12: [41, 49, 56, 62, 72, 88, 119, 135, 162, 185, 195, 205],
    13: [41, 48, 53, 60, 65, 67, 71, 70, 71, 81, 91, 96],
    14: [41, 49, 62, 79, 101, 128, 164, 192, 227, 248, 259, 266],
    15: [41, 49, 56, 64, 68, 68, 67, 68],
    16: [41, 45, 49, 51, 57, 51, 54],
    17: [42, 51, 61, 72, 83, 89, 98, 103, 113, 123, 133, 142],
    18: [39, 35],
    19: [43, 48, 55, 62, 65, 71, 82, 88, 106, 120, 144, 157],
    20: [41, 47, 54, 58, 65, 73, 77, 89, 98, 107, 115, 117],
    21: [40, 50, 62, 86, 125, 163, 217, 240, 275, 307, 318, 331],
    22: [41, 55, 64, 77, 90, 95, 108, 111, 131, 148, 164, 167],
    23: [43, 52, 61, 73, 90, 103, 127, 135, 145, 163, 170, 175],
    24: [42, 52, 58, 74, 66, 68, 70, 71, 72, 72, 76, 74],
    25: [40, 49, 62, 78, 102, 124, 146, 164, 197, 231, 259, 265],
    26: [42, 48, 57, 74, 93, 114, 136, 147, 169, 205, 236, 251],
    27: [39, 46, 58, 73, 87, 100, 115, 123, 144, 163, 185, 192],
    28: [39, 46, 58, 73, 92, 114, 145, 156, 184, 207, 212, 233],
    29: [39, 48, 59, 74, 87, 106, 134, 150, 187, 230, 279, 309],
    30: [42, 48, 59, 72, 85, 98, 115, 122, 143, 151, 157, 150],
    31: [42, 53, 62, 73, 85, 102, 123, 138, 170, 204, 235, 256],
    32: [41, 49, 65, 82, 107, 129, 159, 179, 221, 263, 291, 305],
    33: [39, 50, 63, 77, 96, 111, 137, 144, 151, 146, 156, 147],
    34: [41, 49, 63, 85, 107, 134, 164, 186, 235, 294, 327, 341],
    35: [41, 53, 64, 87, 123, 158, 201, 238, 287, 332, 361, 373],
    36: [39, 48, 61, 76, 98, 116, 145, 166, 198, 227, 225, 220],
    37: [41, 48, 56, 68, 80, 83, 103, 112, 135, 157, 169, 178],
    38: [41, 49, 61, 74, 98, 109, 128, 154, 192, 232, 280, 290],
    39: [42, 50, 61, 78, 89, 109, 130, 146, 170, 214, 250, 272],
    40: [41, 55, 66, 79, 101, 120, 154, 182, 215, 262, 295, 321],
    41: [42, 51, 66, 85, 103, 124, 155, 153, 175, 184, 199, 204],
    42: [42, 49, 63, 84, 103, 126, 160, 174, 204, 234, 269, 281],
    43: [42, 55, 69, 96, 131, 157, 184, 188, 197, 198, 199, 200],
    44: [42, 51, 65, 86, 103, 118, 127, 138, 145, 146],
    45: [41, 50, 61, 78, 98, 117, 135, 141, 147, 174, 197, 196],
    46: [40, 52, 62, 82, 101, 120, 144, 156, 173, 210, 231, 238],
    47: [41, 53, 66, 79, 100, 123, 148, 157, 168, 185, 210, 205],
    48: [39, 50, 62, 80, 104, 125, 154, 170, 222, 261, 303, 322],
    49: [40, 53, 64, 85, 108, 128, 152, 166, 184, 203, 233, 237],
    50: [41, 54, 67, 84, 105, 122, 155, 175, 205, 234, 264, 264],
}
CHICK_DAYS = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 21]


@pytest.fixture(scope="module")
def orthodont() -> pd.DataFrame:
    subjects = [f"M{i:02d}" for i in range(1, 17)] + [f"F{i:02d}" for i in range(1, 12)]
    return pd.DataFrame({
        "distance": ORTHODONT_DISTANCE,
        "age": np.tile([8, 10, 12, 14], len(subjects)),
        "Subject": np.repeat(subjects, 4),
        "Sex": np.repeat(["Male" if s.startswith("M") else "Female" for s in subjects], 4),
    })


@pytest.fixture(scope="module")
def chickweight() -> pd.DataFrame:
    rows = [
        (weight, CHICK_DAYS[day], chick, str(1 + (chick > 20) + (chick > 30) + (chick > 40)))
        for chick, weights in CHICK_WEIGHTS.items()
        for day, weight in enumerate(weights)
    ]
    return pd.DataFrame(rows, columns=["weight", "Time", "Chick", "Diet"])


def simulated_slopes(seed: int = 3, n_groups: int = 40) -> pd.DataFrame:
    """Unbalanced random intercept + slope data with a three-level string covariate."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 12, n_groups)
    group = np.repeat(np.arange(n_groups), sizes)
    n = group.size
    x = rng.uniform(0, 10, n)
    arm = rng.choice(["control", "drug", "placebo"], n_groups)[group]
    effects = rng.multivariate_normal([0, 0], [[4, 0.5], [0.5, 0.3]], n_groups)
    y = (2 + 0.5 * x + np.where(arm == "drug", 1.5, 0.0) + effects[group, 0]
         + effects[group, 1] * x + rng.normal(0, 1.2, n))
    return pd.DataFrame({"y": y, "x": x, "arm": arm, "site": [f"s{g:02d}" for g in group]})


# --------------------------------------------------------------------------- dense reference
class DenseLMM:
    """Textbook LMM, written plainly: V = Z (I ⊗ Σ_b) Zᵀ + σ²I, everything dense.

    −2 log L_ML   = n log 2π + log|V| + rᵀV⁻¹r
    −2 log L_REML = (n − p) log 2π + log|V| + log|XᵀV⁻¹X| + rᵀV⁻¹r,   r = y − Xβ̂_GLS.

    Parameters psi = (lower triangle of Σ_b row by row, σ²).
    """

    def __init__(self, y, x, z_columns, groups, reml: bool):
        self.y, self.x, self.reml = np.asarray(y, float), np.asarray(x, float), reml
        z_columns = np.asarray(z_columns, float)
        levels, codes = np.unique(groups, return_inverse=True)
        self.q = z_columns.shape[1]
        self.z = np.zeros((self.y.size, levels.size * self.q))
        for row, code in enumerate(codes):
            self.z[row, code * self.q:(code + 1) * self.q] = z_columns[row]
        self.n_groups = levels.size
        self.tril = np.tril_indices(self.q)

    def unpack(self, psi):
        sigma_b = np.zeros((self.q, self.q))
        sigma_b[self.tril] = psi[:-1]
        sigma_b = sigma_b + np.tril(sigma_b, -1).T
        return sigma_b, psi[-1]

    def marginal_cov(self, psi):
        sigma_b, sigma2 = self.unpack(psi)
        return self.z @ np.kron(np.eye(self.n_groups), sigma_b) @ self.z.T + sigma2 * np.eye(self.y.size)

    def gls(self, psi):
        v_chol = linalg.cho_factor(self.marginal_cov(psi))
        vinv_x = linalg.cho_solve(v_chol, self.x)
        information = self.x.T @ vinv_x
        beta = np.linalg.solve(information, vinv_x.T @ self.y)
        return v_chol, information, beta

    def minus2loglik(self, psi):
        v_chol, information, beta = self.gls(psi)
        resid = self.y - self.x @ beta
        n, p = self.x.shape
        value = 2 * np.log(np.diag(v_chol[0])).sum() + resid @ linalg.cho_solve(v_chol, resid)
        if self.reml:
            return value + (n - p) * math.log(2 * math.pi) + np.linalg.slogdet(information)[1]
        return value + n * math.log(2 * math.pi)

    def vcov_beta(self, psi):
        return np.linalg.inv(self.gls(psi)[1])

    def fit(self):
        """Minimise over a log-Cholesky parameterisation, then return psi."""
        q = self.q

        def to_psi(eta):
            chol = np.zeros((q, q))
            chol[self.tril] = eta[:-1]
            chol[np.diag_indices(q)] = np.exp(np.diag(chol))
            return np.append((chol @ chol.T)[self.tril], math.exp(eta[-1]))

        def objective(eta):
            try:
                return self.minus2loglik(to_psi(eta))
            except (np.linalg.LinAlgError, ValueError):
                return np.inf

        start = np.zeros(len(self.tril[0]) + 1)
        start[-1] = math.log(np.var(self.y) / 2)
        eta = optimize.minimize(objective, start, method="BFGS", options={"gtol": 1e-9}).x
        eta = optimize.minimize(objective, eta, method="Nelder-Mead",
                                options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 3000}).x
        return to_psi(eta)


def richardson(estimate, h=1e-3):
    """Richardson extrapolation of a central-difference ``estimate(h)`` (error O(h²) → O(h⁴))."""
    return (4 * estimate(h / 2) - estimate(h)) / 3


def dense_satterthwaite(model: DenseLMM, psi) -> np.ndarray:
    """Satterthwaite df of each coefficient: A = 2 H⁻¹ (H = Hessian of −2 log L in psi).

    H and the Jacobian of vcov(β) by central differences with one Richardson step, in psi
    scaled to unit size.
    """
    psi = np.asarray(psi, float)
    scale = np.maximum(np.abs(psi), 1e-3)
    size = psi.size
    unit = np.eye(size)

    def f(u):
        return model.minus2loglik(u * scale)

    centre = psi / scale

    def second(i, j, h):
        ei, ej = unit[i] * h, unit[j] * h
        return (f(centre + ei + ej) - f(centre + ei - ej) - f(centre - ei + ej)
                + f(centre - ei - ej)) / (4 * h * h)

    hessian = np.array([[richardson(lambda h, i=i, j=j: second(i, j, h)) for j in range(size)]
                        for i in range(size)])
    hessian = hessian / np.outer(scale, scale)
    varpar_cov = 2 * np.linalg.inv(hessian)

    def first(i, h):
        step = unit[i] * h * scale[i]
        return (model.vcov_beta(psi + step) - model.vcov_beta(psi - step)) / (2 * h * scale[i])

    jacobian = np.array([richardson(lambda h, i=i: first(i, h)) for i in range(size)])
    vcov = model.vcov_beta(psi)
    gradients = np.diagonal(jacobian, axis1=1, axis2=2)
    return np.array([2 * vcov[j, j] ** 2 / (gradients[:, j] @ varpar_cov @ gradients[:, j])
                     for j in range(vcov.shape[0])])


# --------------------------------------------------------------------------- helpers
def assert_close(actual, expected, rtol=RTOL, atol=ATOL, what=""):
    assert actual == pytest.approx(expected, rel=rtol, abs=atol), what


# --------------------------------------------------------------------------- R reference
@pytest.mark.parametrize("name", ["sleepstudy_intercept", "sleepstudy_slope"])
def test_fixed_effects_match_lmertest(sleepstudy, lmm_reference, name):
    reference = lmm_reference[name]
    fit = mixedlm(reference["formula"], sleepstudy)
    assert fit.converged and not fit.singular
    assert fit.n_obs == reference["n_obs"]
    assert fit.n_groups == 18
    assert list(fit.fixed.index) == [row["term"] for row in reference["fixed"]]
    for row in reference["fixed"]:
        ours = fit.fixed.loc[row["term"]]
        for column in ("estimate", "se", "t"):
            assert_close(ours[column], row[column], what=f"{row['term']} {column}")
        assert_close(ours["df"], row["df"], rtol=DF_RTOL, atol=0, what=f"{row['term']} df")
        assert ours["p"] == pytest.approx(row["p"], rel=P_RTOL, abs=P_ATOL)


@pytest.mark.parametrize("name", ["sleepstudy_intercept", "sleepstudy_slope"])
def test_variance_components_match_lme4(sleepstudy, lmm_reference, name):
    reference = lmm_reference[name]
    table = mixedlm(reference["formula"], sleepstudy).varcomp
    assert list(table.columns) == ["group", "var1", "var2", "vcov", "sdcor"]
    assert len(table) == len(reference["varcomp"])
    for ours, theirs in zip(table.to_dict("records"), reference["varcomp"], strict=True):
        assert (ours["group"], ours["var1"], ours["var2"]) == (theirs["grp"], theirs["var1"], theirs["var2"])
        assert_close(ours["vcov"], theirs["vcov"], what=str(theirs))
        assert_close(ours["sdcor"], theirs["sdcor"], what=str(theirs))


@pytest.mark.parametrize("name", ["sleepstudy_intercept", "sleepstudy_slope"])
def test_logliks_match_lme4(sleepstudy, lmm_reference, name):
    reference = lmm_reference[name]
    remlfit = mixedlm(reference["formula"], sleepstudy)
    mlfit = mixedlm(reference["formula"], sleepstudy, reml=False)
    assert remlfit.reml and not mlfit.reml
    assert_close(remlfit.loglik, reference["reml_loglik"], rtol=LOGLIK_RTOL)
    assert_close(mlfit.loglik, reference["ml_loglik"], rtol=LOGLIK_RTOL)
    # At lme4's optimum the log-likelihoods agree far below the tolerance.
    assert remlfit.loglik == pytest.approx(reference["reml_loglik"], rel=1e-9)
    assert mlfit.loglik == pytest.approx(reference["ml_loglik"], rel=1e-9)


def test_within_subject_df_is_exact(sleepstudy):
    # Balanced random intercept, Days within subject: 180 − 18 − 1 (lmerTest prints 161.0000).
    fit = mixedlm("Reaction ~ Days + (1 | Subject)", sleepstudy)
    assert fit.fixed.loc["Days", "df"] == pytest.approx(161, rel=1e-8)


# --------------------------------------------------------------------------- published output
def test_orthodont_matches_printed_lme4(orthodont):
    # Printed lme4 output of lmer(distance ~ age + Sex + (age | Subject), Orthodont) in the blog
    # post "Recurrent themes in my work: covariance" (section "When can you expect covariance
    # matrices to creep in?"): REML criterion 435.2339; SDs 2.7970, 0.2264, corr −0.77, residual 1.3100; fixed
    # (Intercept) 17.6352, age 0.6602, SexFemale −2.1455 (R's level order Male, Female there; with
    # alphabetical levels the contrast is SexMale = +2.1455 and the intercept 17.6352 − 2.1455).
    fit = mixedlm("distance ~ age + Sex + (age | Subject)", orthodont)
    assert list(fit.fixed.index) == ["(Intercept)", "age", "SexMale"]
    assert -2 * fit.loglik == pytest.approx(435.2339, abs=5e-5)
    estimate = fit.fixed["estimate"]
    assert estimate["age"] == pytest.approx(0.6602, abs=5e-5)
    assert estimate["SexMale"] == pytest.approx(2.1455, abs=5e-5)
    assert estimate["(Intercept)"] == pytest.approx(17.6352 - 2.1455, abs=1e-4)
    sdcor = fit.varcomp["sdcor"].to_numpy()
    assert sdcor[[0, 1, 3]] == pytest.approx([2.7970, 0.2264, 1.3100], abs=5e-5)
    assert sdcor[2] == pytest.approx(-0.77, abs=5e-3)
    # Balanced design, 27 subjects: the age slope is estimated from the subjects' slopes
    # (G − 1 = 26 df) and Sex from the subjects' intercepts regressed on Sex (G − 2 = 25 df).
    assert fit.fixed.loc["SexMale", "df"] == pytest.approx(25, rel=1e-6)
    assert fit.fixed.loc["age", "df"] == pytest.approx(26, rel=1e-6)


def test_chickweight_matches_printed_lme4(chickweight):
    # Printed lme4 output in Gerrit Gort's R course, "Mixed models"
    # (rcursus.dairyconsult.nl/gerrit/regression/mixed_models.html), REML fits on ChickWeight:
    #   weight ~ Diet + Time + (1 | Chick): REML criterion 5584.004; SD 22.92, residual 28.27;
    #     fixed 11.244, 16.210, 36.543, 30.013, 8.717.
    #   weight ~ Diet + Time + (Time | Chick): REML criterion 4803.754; SDs 12.40, 3.76,
    #     corr −0.98, residual 12.78.
    intercept = mixedlm("weight ~ Diet + Time + (1 | Chick)", chickweight)
    assert intercept.n_obs == 578 and intercept.n_groups == 50
    assert -2 * intercept.loglik == pytest.approx(5584.004, abs=5e-4)
    assert intercept.fixed["estimate"].to_numpy() == pytest.approx(
        [11.244, 16.210, 36.543, 30.013, 8.717], abs=5e-4)
    assert intercept.varcomp["sdcor"].to_numpy() == pytest.approx([22.92, 28.27], abs=5e-3)
    slope = mixedlm("weight ~ Diet + Time + (Time | Chick)", chickweight)
    assert slope.converged and not slope.singular
    assert -2 * slope.loglik == pytest.approx(4803.754, abs=5e-4)
    assert slope.varcomp["sdcor"].to_numpy() == pytest.approx([12.40, 3.76, -0.98, 12.78], abs=5e-3)


def test_chickweight_ml_interaction_matches_printed_lme4(chickweight):
    # Printed lme4 output in "A beginner's guide to lmer" (RPubs 63556):
    # lmer(weight ~ Time * Diet + (1 + Time | Chick), ChickWeight, REML = FALSE):
    # logLik −2400.1, deviance 4800.2.
    fit = mixedlm("weight ~ Time * Diet + (1 + Time | Chick)", chickweight, reml=False)
    assert fit.loglik == pytest.approx(-2400.1, abs=0.05)
    assert -2 * fit.loglik == pytest.approx(4800.2, abs=0.05)
    assert list(fit.fixed.index) == [
        "(Intercept)", "Time", "Diet2", "Diet3", "Diet4", "Time:Diet2", "Time:Diet3", "Time:Diet4"]


# --------------------------------------------------------------------------- generality
@pytest.mark.parametrize("reml", [True, False])
def test_unbalanced_slopes_match_statsmodels(reml):
    data = simulated_slopes()
    fit = mixedlm("y ~ x + arm + (x | site)", data, reml=reml)
    assert fit.converged and not fit.singular
    assert list(fit.fixed.index) == ["(Intercept)", "x", "armdrug", "armplacebo"]
    with warnings.catch_warnings():
        # statsmodels reports scipy's "precision loss" at gtol=1e-10 as a ConvergenceWarning
        # although the gradient is zero to the printed digits; the comparison below checks it.
        warnings.simplefilter("ignore", ConvergenceWarning)
        peer = smf.mixedlm("y ~ x + arm", data, groups=data["site"], re_formula="~x").fit(
            reml=reml, method=["bfgs"], gtol=1e-10, maxiter=10000)
    peer_fixed = peer.fe_params.rename({"Intercept": "(Intercept)", "arm[T.drug]": "armdrug",
                                        "arm[T.placebo]": "armplacebo"})
    # (statsmodels' bse_fe come from the joint observed information of all parameters, not
    # lme4's (XᵀV⁻¹X)⁻¹, so SEs are checked against the dense reference below instead.)
    for term in fit.fixed.index:
        assert_close(fit.fixed.loc[term, "estimate"], peer_fixed[term], rtol=1e-6)
    assert fit.loglik == pytest.approx(peer.llf, rel=1e-9)
    assert fit.loglik >= peer.llf - 1e-9
    cov_re = peer.cov_re.to_numpy()
    expected = [cov_re[0, 0], cov_re[1, 1], cov_re[0, 1], peer.scale]
    assert fit.varcomp["vcov"].to_numpy() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("reml", [True, False])
def test_unbalanced_slopes_match_dense_reference(reml):
    data = simulated_slopes(seed=11, n_groups=15)
    fit = mixedlm("y ~ x + arm + (x | site)", data, reml=reml)
    design = pd.get_dummies(data["arm"], drop_first=True, dtype=float)
    x = np.column_stack([np.ones(len(data)), data["x"], design])
    dense = DenseLMM(data["y"], x, np.column_stack([np.ones(len(data)), data["x"]]), data["site"], reml)
    psi = dense.fit()
    assert fit.loglik == pytest.approx(-0.5 * dense.minus2loglik(psi), rel=1e-9)
    assert fit.loglik >= -0.5 * dense.minus2loglik(psi) - 1e-7
    _, _, beta = dense.gls(psi)
    assert fit.fixed["estimate"].to_numpy() == pytest.approx(beta, rel=1e-5)
    assert fit.fixed["se"].to_numpy() == pytest.approx(np.sqrt(np.diag(dense.vcov_beta(psi))), rel=1e-4)
    sigma_b, sigma2 = dense.unpack(psi)
    assert fit.varcomp["vcov"].to_numpy() == pytest.approx(
        [sigma_b[0, 0], sigma_b[1, 1], sigma_b[0, 1], sigma2], rel=1e-4)
    # Satterthwaite from numerical derivatives of the dense deviance in (Σ_b, σ²): at an interior
    # optimum the df do not depend on the parameterisation, so they must equal lmerTest's (θ, σ).
    assert fit.fixed["df"].to_numpy() == pytest.approx(dense_satterthwaite(dense, psi), rel=1e-4)


def test_two_slopes_match_dense_reference():
    rng = np.random.default_rng(5)
    sizes = rng.integers(4, 10, 20)
    group = np.repeat(np.arange(20), sizes)
    n = group.size
    x, z = rng.normal(size=n), rng.uniform(-1, 1, n)
    effects = rng.multivariate_normal([0, 0, 0], [[1.0, 0.3, 0.1], [0.3, 0.8, -0.2], [0.1, -0.2, 0.5]], 20)
    y = 1 + 0.7 * x - 0.4 * z + (effects[group] * np.column_stack([np.ones(n), x, z])).sum(1) + rng.normal(0, 0.6, n)
    data = pd.DataFrame({"y": y, "x": x, "z": z, "g": group})
    fit = mixedlm("y ~ x + z + (1 + x + z | g)", data)
    assert fit.converged
    assert list(fit.varcomp["var1"]) == ["(Intercept)", "x", "z", "(Intercept)", "(Intercept)", "x", None]
    assert list(fit.varcomp["var2"]) == [None, None, None, "x", "z", "z", None]
    columns = np.column_stack([np.ones(n), x, z])
    dense = DenseLMM(y, columns, columns, group, reml=True)
    psi = dense.fit()
    assert fit.loglik == pytest.approx(-0.5 * dense.minus2loglik(psi), rel=1e-9)
    _, _, beta = dense.gls(psi)
    assert fit.fixed["estimate"].to_numpy() == pytest.approx(beta, rel=1e-5)
    sigma_b, sigma2 = dense.unpack(psi)
    expected = [sigma_b[0, 0], sigma_b[1, 1], sigma_b[2, 2], sigma_b[0, 1], sigma_b[0, 2], sigma_b[1, 2], sigma2]
    assert fit.varcomp["vcov"].to_numpy() == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert fit.fixed["df"].to_numpy() == pytest.approx(dense_satterthwaite(dense, psi), rel=1e-4)


def test_balanced_random_intercept_df_closed_form():
    # y_ij = β0 + β_w w_j + β_b x_i + b_i + e_ij, G groups × m, w centred within every group.
    # REML factorises into a between-group part (group means on (1, x): G − 2 df for
    # λ1 = σ² + mσ_b²) and a within part (G(m − 1) − 1 df for σ²). vcov(β0, β_b) ∝ λ1 and
    # vcov(β_w) ∝ σ², each estimated by one scaled χ², so Satterthwaite returns exactly
    # G − 2 = 10 and G(m − 1) − 1 = 47 (when the REML σ_b² is interior).
    rng = np.random.default_rng(2)
    n_groups, per_group = 12, 5
    group = np.repeat(np.arange(n_groups), per_group)
    within = np.tile(np.arange(per_group) - 2.0, n_groups)
    between = rng.normal(size=n_groups)[group]
    y = 1 + 0.5 * within + 0.8 * between + rng.normal(0, 2, n_groups)[group] + rng.normal(0, 1, group.size)
    fit = mixedlm("y ~ within + between + (1 | g)",
                  pd.DataFrame({"y": y, "within": within, "between": between, "g": group}))
    assert not fit.singular
    assert fit.fixed["df"].to_numpy() == pytest.approx([10, 47, 10], rel=1e-8)


def test_random_slope_only_and_equivalent_spellings(sleepstudy):
    slope_only = mixedlm("Reaction ~ Days + (0 + Days | Subject)", sleepstudy)
    assert mixedlm("Reaction ~ Days + (-1 + Days | Subject)", sleepstudy).loglik == pytest.approx(
        slope_only.loglik, rel=1e-12)
    assert list(slope_only.varcomp["var1"]) == ["Days", None]
    both = mixedlm("Reaction ~ Days + (Days | Subject)", sleepstudy)
    spelled = mixedlm("Reaction ~ Days + (1 + Days | Subject)", sleepstudy)
    assert both.loglik == spelled.loglik
    pd.testing.assert_frame_equal(both.fixed, spelled.fixed)
    # No fixed terms but the intercept: "y ~ (1 | g)".
    empty = mixedlm("Reaction ~ (1 | Subject)", sleepstudy)
    assert list(empty.fixed.index) == ["(Intercept)"]


def test_slope_only_matches_dense_reference(sleepstudy):
    fit = mixedlm("Reaction ~ Days + (0 + Days | Subject)", sleepstudy, reml=False)
    x = np.column_stack([np.ones(len(sleepstudy)), sleepstudy["Days"]])
    dense = DenseLMM(sleepstudy["Reaction"], x, sleepstudy[["Days"]], sleepstudy["Subject"], reml=False)
    psi = dense.fit()
    assert fit.loglik == pytest.approx(-0.5 * dense.minus2loglik(psi), rel=1e-9)
    assert fit.varcomp["vcov"].to_numpy() == pytest.approx(psi, rel=1e-4)


def test_singular_fit_is_flagged_and_matches_linear_model():
    # No between-group variation at all: REML puts σ_b² on the boundary, and the REML
    # criterion is the linear model's: log|XᵀX| + (n − p)(1 + log(2π RSS / (n − p))).
    rng = np.random.default_rng(8)
    group = np.repeat(np.arange(10), 6)

    def within_group_centred(values):
        return values - pd.Series(values).groupby(group).transform("mean").to_numpy()

    # x and the noise have the same mean in every group, so the groups do not differ at all.
    x = within_group_centred(rng.normal(size=group.size))
    y = 3 + 2 * x + within_group_centred(rng.normal(size=group.size))
    data = pd.DataFrame({"y": y, "x": x, "g": group})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = mixedlm("y ~ x + (1 | g)", data)
    assert fit.singular and fit.converged
    assert fit.varcomp.loc[0, "vcov"] == pytest.approx(0, abs=1e-10)
    assert any("singular" in note for note in fit.notes)
    design = np.column_stack([np.ones(group.size), x])
    rss = float(np.sum((y - design @ np.linalg.lstsq(design, y, rcond=None)[0]) ** 2))
    n, p = design.shape
    reml_criterion = np.linalg.slogdet(design.T @ design)[1] + (n - p) * (1 + math.log(2 * math.pi * rss / (n - p)))
    assert fit.loglik == pytest.approx(-0.5 * reml_criterion, rel=1e-10)
    assert fit.varcomp.loc[1, "vcov"] == pytest.approx(rss / (n - p), rel=1e-8)


# --------------------------------------------------------------------------- data handling
def test_missing_values_are_dropped_listwise(sleepstudy):
    data = sleepstudy.copy()
    data.loc[[0, 5], "Reaction"] = np.nan
    data.loc[7, "Days"] = np.nan
    data["unused"] = np.nan  # a column the formula does not use does not matter
    fit = mixedlm("Reaction ~ Days + (Days | Subject)", data)
    assert fit.n_obs == 177
    complete = mixedlm("Reaction ~ Days + (Days | Subject)", data.dropna(subset=["Reaction", "Days"]))
    assert fit.loglik == complete.loglik


def test_categorical_levels_follow_r(orthodont):
    data = orthodont.assign(Sex=orthodont["Sex"].str.lower(), group=np.where(orthodont["age"] > 10, "b", "A"))
    fit = mixedlm("distance ~ age + Sex + group + (1 | Subject)", data)
    # C-locale order: "A" < "b"; "female" < "male".
    assert list(fit.fixed.index) == ["(Intercept)", "age", "Sexmale", "groupb"]
    logical = mixedlm("distance ~ age + old + (1 | Subject)", orthodont.assign(old=orthodont["age"] > 10))
    assert list(logical.fixed.index) == ["(Intercept)", "age", "oldTRUE"]


def test_result_is_a_frozen_dataclass_with_to_dict(sleepstudy):
    fit = mixedlm("Reaction ~ Days + (Days | Subject)", sleepstudy)
    assert isinstance(fit, MixedModel)
    with pytest.raises(AttributeError):
        fit.loglik = 0.0  # type: ignore[misc]
    plain = fit.to_dict()
    json.dumps(plain)
    assert plain["fixed"][1]["term"] == "Days"
    assert plain["varcomp"][0]["var2"] is None
    assert set(plain) >= {"formula", "fixed", "varcomp", "loglik", "reml", "n_obs", "n_groups",
                          "converged", "singular"}


def test_no_warnings_on_reference_fits(sleepstudy, chickweight):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixedlm("Reaction ~ Days + (Days | Subject)", sleepstudy, reml=False)
        mixedlm("weight ~ Time + (Time | Chick)", chickweight)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("Reaction ~ Days", "no random-effects term"),
        ("Reaction ~ Days + (1 | mm(Subject))", "two or more member columns"),
        ("Reaction ~ Days + (1 | mm(Subject, Days, weights = cbind(Days)))", "one weight column per member"),
        ("Reaction ~ Days + (1 | log(Subject))", "grouping 'log\\(Subject\\)'"),
        ("Reaction ~ Days + (1 | Subject | Days)", r"\(expr \| g\)"),
        ("Reaction ~ Days + ( | Subject)", "nothing left"),
        ("Reaction Days (1 | Subject)", "response ~ terms"),
        ("Reaction ~ Days + (1 | Subject) - 1", "separate"),
    ],
)
def test_unsupported_formulas_raise(sleepstudy, formula, message):
    with pytest.raises(ValueError, match=message) as error:
        mixedlm(formula, sleepstudy)
    assert "supported" in str(error.value)


def test_missing_column_raises(sleepstudy):
    with pytest.raises(ValueError, match=r"\['Night'\].*not in the data"):
        mixedlm("Reaction ~ Night + (1 | Subject)", sleepstudy)
    with pytest.raises(ValueError, match="Patient"):
        mixedlm("Reaction ~ Days + (1 | Patient)", sleepstudy)


def test_single_level_group_raises(sleepstudy):
    with pytest.raises(ValueError, match="1 level"):
        mixedlm("Reaction ~ Days + (1 | Subject)", sleepstudy[sleepstudy["Subject"] == 308])


def test_all_missing_raises(sleepstudy):
    with pytest.raises(ValueError, match="no complete rows"):
        mixedlm("Reaction ~ Days + (1 | Subject)", sleepstudy.assign(Reaction=np.nan))


def test_too_few_observations_raise(sleepstudy):
    one_per_subject = sleepstudy[sleepstudy["Days"] == 0]
    with pytest.raises(ValueError, match="too few"):
        mixedlm("Reaction ~ 1 + (1 | Subject)", one_per_subject)


def test_rank_deficient_design_drops_columns_as_lme4(sleepstudy):
    # lme4 (chkRank.drop.cols) drops Twice = 2·Days and says so; so does the model frame
    from alliance.stats._lmm_formula import build_model_frame

    data = sleepstudy.assign(Twice=2 * sleepstudy["Days"])
    frame = build_model_frame("Reaction ~ Days + Twice + (1 | Subject)", data)
    assert frame.fixed_names == ("(Intercept)", "Days")
    assert frame.notes == ("fixed-effect model matrix is rank deficient so dropping 1 column / coefficient: Twice",)
    fit = mixedlm("Reaction ~ Days + Twice + (1 | Subject)", data)
    assert fit.fixed.index.tolist() == ["(Intercept)", "Days"]


def test_exact_fit_raises(sleepstudy):
    with pytest.raises(ValueError, match="exactly"):
        mixedlm("Line ~ Days + (1 | Subject)", sleepstudy.assign(Line=3 + 2 * sleepstudy["Days"]))


def test_non_dataframe_raises():
    with pytest.raises(TypeError, match="DataFrame"):
        mixedlm("y ~ x + (1 | g)", {"y": [1.0], "x": [1.0], "g": [1]})  # type: ignore[arg-type]
