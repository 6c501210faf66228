"""Cronbach's alpha against psych::alpha, and one-factor omega against known loadings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from alliance.stats.reliability import cronbach_alpha, omega
from tests.stats.conftest import ESTIMATE_ABS, ESTIMATE_REL, assert_close


@pytest.mark.parametrize("name", ["bfi_agreeableness", "bfi_neuroticism"])
def test_alpha_matches_psych(reference, reference_data, name):
    expected = next(entry for entry in reference["alpha"] if entry["name"] == name)
    items = reference_data("bfi")[expected["items"]]
    result = cronbach_alpha(items, reverse=expected["reverse"])
    assert_close(result.alpha, expected["raw_alpha"], ESTIMATE_REL, ESTIMATE_ABS, what="raw alpha")
    assert_close(result.std_alpha, expected["std_alpha"], ESTIMATE_REL, ESTIMATE_ABS, what="std alpha")
    assert result.n_complete == expected["n_complete"]
    assert result.k == len(expected["items"])
    assert result.n == 2800  # every bfi row answers at least one of these items


def test_alpha_uses_pairwise_not_listwise_covariances(reference, reference_data):
    # bfi has missing answers: listwise deletion would give a different (wrong) alpha
    expected = next(entry for entry in reference["alpha"] if entry["name"] == "bfi_agreeableness")
    items = reference_data("bfi")[expected["items"]]
    listwise = cronbach_alpha(items.dropna(), reverse=expected["reverse"])
    assert abs(listwise.alpha - expected["raw_alpha"]) > 1e-4


def test_alpha_feldt_interval_matches_psych_printout(reference_data):
    # psych::alpha(bfi[1:5], keys = "A1") prints Feldt 95% limits "0.69 0.7 0.72"
    result = cronbach_alpha(reference_data("bfi")[["A1", "A2", "A3", "A4", "A5"]], reverse=["A1"])
    assert round(result.ci_low, 2) == 0.69
    assert round(result.ci_high, 2) == 0.72


def test_alpha_hand_worked():
    # q3 reversed with max + min over all items = 5 + 1 = 6: q3 → 1 2 3 4 4.
    # Item variances (n − 1): q1 = 2.5, q2 = 1.7, q3 = 1.7; covariances: q1q2 = 7.0/4 = 1.75,
    # q1q3 = 8.0/4 = 2.0, q2q3 = 6.2/4 = 1.55. Σ C = 5.9 + 2·5.3 = 16.5, tr C = 5.9.
    # alpha = 3/2 · (1 − 5.9/16.5) = 0.9636364
    items = pd.DataFrame({"q1": [1, 2, 3, 4, 5], "q2": [2, 2, 3, 5, 4], "q3": [5, 4, 3, 2, 2]})
    result = cronbach_alpha(items, reverse=["q3"])
    covariance = np.cov(np.array([[1, 2, 3, 4, 5], [2, 2, 3, 5, 4], [1, 2, 3, 4, 4]]))
    assert_close(result.alpha, 1.5 * (1 - 5.9 / 16.5), 1e-12)
    assert_close(result.alpha, 1.5 * (1 - np.trace(covariance) / covariance.sum()), 1e-12)
    # standardized alpha from the same matrix as correlations
    scale = 1 / np.sqrt(np.diag(covariance))
    correlation = covariance * np.outer(scale, scale)
    assert_close(result.std_alpha, 1.5 * (1 - 3 / correlation.sum()), 1e-12)
    assert result.reverse == ("q3",)


def test_alpha_pairwise_covariance_hand_worked():
    # q1 and q2 share rows 1–4 only; their covariance uses the means of those rows (R's
    # cov(use = "pairwise")), each variance uses all the rows where the item was answered.
    items = pd.DataFrame(
        {
            "q1": [1.0, 2.0, 3.0, 4.0, 5.0, np.nan],
            "q2": [2.0, 1.0, 4.0, 3.0, np.nan, 6.0],
            "q3": [1.0, 3.0, 2.0, 5.0, 4.0, 6.0],
        }
    )
    frame = items.to_numpy()
    pairs = [(0, 1), (0, 2), (1, 2)]
    covariance = np.zeros((3, 3))
    for i in range(3):
        present = ~np.isnan(frame[:, i])
        covariance[i, i] = np.var(frame[present, i], ddof=1)
    for i, j in pairs:
        both = ~np.isnan(frame[:, i]) & ~np.isnan(frame[:, j])
        covariance[i, j] = covariance[j, i] = np.cov(frame[both, i], frame[both, j])[0, 1]
    result = cronbach_alpha(items)
    assert_close(result.alpha, 1.5 * (1 - np.trace(covariance) / covariance.sum()), 1e-12)
    assert result.n == 6 and result.n_complete == 4


def test_alpha_feldt_formula():
    # Feldt: (1 − α)/(1 − α̂) ~ F(n − 1, (n − 1)(k − 1)); limits 1 − (1 − α̂)·F quantiles
    from scipy import stats

    rng = np.random.default_rng(5)
    common = rng.normal(size=120)
    items = pd.DataFrame({f"q{j}": common + rng.normal(size=120) for j in range(4)})
    result = cronbach_alpha(items, confidence=0.90)
    assert_close(result.ci_low, 1 - (1 - result.alpha) * stats.f.ppf(0.95, 119, 357), 1e-12)
    assert_close(result.ci_high, 1 - (1 - result.alpha) * stats.f.ppf(0.05, 119, 357), 1e-12)
    assert result.ci_low < result.alpha < result.ci_high


def test_alpha_rejects_bad_input():
    items = pd.DataFrame({"q1": [1, 2, 3], "q2": [2, 3, 3]})
    with pytest.raises(ValueError, match="not columns"):
        cronbach_alpha(items, reverse=["q9"])
    with pytest.raises(ValueError, match="at least 2 items"):
        cronbach_alpha(items[["q1"]])
    with pytest.raises(ValueError, match="zero variance"):
        cronbach_alpha(pd.DataFrame({"q1": [1, 2, 3], "q2": [2, 2, 2]}))
    with pytest.raises(ValueError, match="no answers"):
        cronbach_alpha(pd.DataFrame({"q1": [np.nan, np.nan], "q2": [np.nan, np.nan]}))
    with pytest.raises(ValueError, match="DataFrame"):
        cronbach_alpha(np.ones((3, 3)))


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.int64, st.tuples(st.integers(5, 30), st.integers(2, 6)), elements=st.integers(1, 5)),
    st.floats(0.5, 4.0),
)
def test_std_alpha_invariant_to_rescaling_an_item(answers, factor):
    items = pd.DataFrame(answers.astype(float), columns=[f"q{j}" for j in range(answers.shape[1])])
    if (items.std() == 0).any():
        return
    original = cronbach_alpha(items)
    rescaled_items = items.copy()
    rescaled_items["q0"] = rescaled_items["q0"] * factor
    rescaled = cronbach_alpha(rescaled_items)
    assert rescaled.std_alpha == pytest.approx(original.std_alpha, rel=1e-9, abs=1e-9)


def _one_factor_correlation(loadings: np.ndarray) -> np.ndarray:
    matrix = np.outer(loadings, loadings)
    np.fill_diagonal(matrix, 1.0)
    return matrix


def _items_with_correlation(correlation: np.ndarray, n: int = 400, seed: int = 11) -> pd.DataFrame:
    """Data whose sample correlation matrix is exactly ``correlation`` (whitened, then coloured)."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, correlation.shape[0]))
    raw -= raw.mean(axis=0)
    whitened = raw @ np.linalg.inv(np.linalg.cholesky(np.cov(raw, rowvar=False)).T)
    data = whitened @ np.linalg.cholesky(correlation).T
    return pd.DataFrame(data * 2.0 + 3.0, columns=[f"q{j}" for j in range(correlation.shape[0])])


def test_omega_recovers_known_one_factor_structure():
    # R = λλᵀ + diag(1 − λ²) with λ = (.8, .7, .6, .5, .4) fits one factor exactly, so ML must
    # return λ and ψ = 1 − λ² = (.36, .51, .64, .75, .84). Then
    # ω = (Σλ)² / ((Σλ)² + Σψ) = 3.0² / (9 + 3.1) = 9 / 12.1 = 0.7438017.
    loadings = np.array([0.8, 0.7, 0.6, 0.5, 0.4])
    items = _items_with_correlation(_one_factor_correlation(loadings))
    result = omega(items)
    assert result.converged
    assert result.k == 5 and result.n == 400
    np.testing.assert_allclose(result.loadings["loading"].to_numpy(), loadings, atol=1e-8)
    np.testing.assert_allclose(result.loadings["uniqueness"].to_numpy(), 1 - loadings**2, atol=1e-8)
    assert_close(result.omega_total, 9 / 12.1, 1e-8)
    assert result.method == "ml"


def test_omega_reverse_keying_restores_the_loading_sign():
    loadings = np.array([0.8, 0.7, -0.6, 0.5])
    items = _items_with_correlation(_one_factor_correlation(loadings))
    # flipping q2 by max + min − x makes every loading positive; Σλ = 2.6, Σψ = .36 + .51 + .64
    # + .75 = 2.26, so ω = 6.76 / (6.76 + 2.26) = 0.7494457
    result = omega(items, reverse=["q2"])
    np.testing.assert_allclose(result.loadings["loading"].to_numpy(), np.abs(loadings), atol=1e-8)
    assert_close(result.omega_total, 6.76 / 9.02, 1e-8)


@pytest.mark.parametrize("missing", ["pairwise", "cov2cor"])
def test_omega_loadings_match_statsmodels_ml_factor_analysis(reference_data, missing):
    # an independent ML implementation on the same correlation matrix: pandas' corr() is
    # pairwise Pearson (R's cor(use = "pairwise")), cov() is pairwise covariances (then cov2cor)
    from statsmodels.multivariate.factor import Factor

    items = reference_data("bfi")[["N1", "N2", "N3", "N4", "N5"]]
    result = omega(items, missing=missing)
    if missing == "pairwise":
        correlation = items.corr().to_numpy()
    else:
        covariance = items.cov()
        scale = 1 / np.sqrt(np.diag(covariance))
        correlation = covariance.to_numpy() * np.outer(scale, scale)
    theirs = Factor(corr=correlation, n_factor=1, method="ml", nobs=len(items)).fit()
    np.testing.assert_allclose(
        result.loadings["loading"].to_numpy(), np.abs(theirs.loadings.ravel()), atol=1e-5
    )
    np.testing.assert_allclose(result.loadings["uniqueness"].to_numpy(), theirs.uniqueness, atol=1e-5)


def _formulas_reliability(name: str) -> dict:
    import json

    from tests.stats.conftest import REFERENCE_DIRECTORY

    with open(REFERENCE_DIRECTORY / "formulas.json", encoding="utf-8") as handle:
        entries = json.load(handle)["reliability"]
    entry = next(entry for entry in entries if entry["name"] == name)
    reverse = entry["reverse"]
    entry["reverse"] = [reverse] if isinstance(reverse, str) else list(reverse)
    return entry


@pytest.mark.parametrize("name", ["bfi_agreeableness", "bfi_neuroticism"])
def test_omega_matches_psych_one_factor_ml(reference_data, name):
    # psych::omega(x, nfactors = 1, fm = "ml") on bfi with missing answers (formulas.json):
    # correlations cor(x, use = "pairwise"), omega.tot = 1 − Σ(1 − λ²)/ΣR, omega_h = (Σλ)²/ΣR.
    # psych's own ML optimiser stops at about 3e-6 in the loadings, hence 1e-5.
    expected = _formulas_reliability(name)
    result = omega(reference_data("bfi")[expected["items"]], reverse=expected["reverse"])
    assert result.missing == "pairwise" and result.total == "psych"
    assert_close(result.omega_total, expected["omega_total"], 1e-5, what="omega total")
    assert_close(result.omega_hierarchical, expected["omega_hierarchical"], 1e-5, what="omega_h")
    np.testing.assert_allclose(result.loadings["loading"].to_numpy(), expected["loadings"], atol=1e-5)
    np.testing.assert_allclose(1 - result.loadings["loading"].to_numpy() ** 2, expected["u2"], atol=1e-5)


def test_omega_previous_conventions_remain_available(reference_data):
    # alliance before issue 13: cov2cor of pairwise covariances and the model-implied omega;
    # on N1–N5 that is 0.8155702, psych's omega.tot is 0.8181735
    items = reference_data("bfi")[["N1", "N2", "N3", "N4", "N5"]]
    old = omega(items, missing="cov2cor", total="model")
    loadings, uniqueness = old.loadings["loading"], old.loadings["uniqueness"]
    assert_close(old.omega_total, loadings.sum() ** 2 / (loadings.sum() ** 2 + uniqueness.sum()), 1e-12)
    assert_close(old.omega_total, 0.8155702, 1e-6)
    assert old.omega_hierarchical == old.omega_total
    assert abs(omega(items).omega_total - old.omega_total) > 1e-3
    with pytest.raises(ValueError, match="missing must be 'pairwise'"):
        omega(items, missing="listwise")
    with pytest.raises(ValueError, match="total must be 'psych' or 'model'"):
        omega(items, total="other")


@pytest.mark.parametrize("name", ["bfi_agreeableness", "bfi_neuroticism"])
def test_alpha_interval_matches_psych_with_empty_rows(reference_data, name):
    # psych::alpha's Feldt interval uses n = nrow(x), rows without any answer included; the R
    # script appends 40 empty rows to bfi (2840 rows) and records psych's unrounded limits
    expected = _formulas_reliability(name)
    items = reference_data("bfi")[expected["items"]]
    plain = cronbach_alpha(items, reverse=expected["reverse"])
    assert_close(plain.ci_low, expected["alpha_ci"][0], 1e-10)
    assert_close(plain.ci_high, expected["alpha_ci"][1], 1e-10)
    padded = pd.concat([items, pd.DataFrame(np.nan, index=range(40), columns=items.columns)], ignore_index=True)
    result = cronbach_alpha(padded, reverse=expected["reverse"])
    assert result.n == expected["padded_n"] == 2840
    assert_close(result.alpha, expected["padded_alpha"], 1e-12)
    assert_close(result.ci_low, expected["padded_ci"][0], 1e-10)
    assert_close(result.ci_high, expected["padded_ci"][1], 1e-10)
    # the previous convention (rows with an answer) is an option, and differs here
    answered = cronbach_alpha(padded, reverse=expected["reverse"], interval_n="answered")
    assert answered.n == 2800
    assert_close(answered.ci_low, plain.ci_low, 1e-12)
    assert abs(answered.ci_low - expected["padded_ci"][0]) > 1e-5
    with pytest.raises(ValueError, match="interval_n must be 'rows'"):
        cronbach_alpha(items, interval_n="complete")


def test_pairwise_correlation_differs_from_cov2cor_hand_worked():
    # q1 and q2 share rows 1–4. cor(use = "pairwise"): r12 from those 4 rows alone, q1 = 1 2 3 4,
    # q2 = 2 1 4 3: deviations (−1.5 −.5 .5 1.5) and (−.5 −1.5 1.5 .5), Σ products = .75 + .75 + .75
    # + .75 = 3.0, Σ squares 5 and 5, r12 = 3/5 = 0.6. cov2cor divides the same covariance (3/3 = 1)
    # by the SDs over all answered rows: var(q1) over 1..5 = 2.5, var(q2) over 2 1 4 3 6 = 3.7,
    # r = 1/√(2.5·3.7) = 0.3288. omega on the first must use 0.6.
    from alliance.stats.reliability import _pairwise_correlation

    items = np.array([[1, 2, 1], [2, 1, 3], [3, 4, 2], [4, 3, 5], [5, np.nan, 4], [np.nan, 6, 6]], dtype=float)
    correlation = _pairwise_correlation(items, ["q1", "q2", "q3"])
    assert_close(correlation[0, 1], 0.6, 1e-12)
    assert_close(np.corrcoef(items[:4, 0], items[:4, 1])[0, 1], 0.6, 1e-12)


def test_omega_to_dict_lists_the_loadings():
    items = _items_with_correlation(_one_factor_correlation(np.array([0.7, 0.6, 0.5])))
    as_dict = omega(items).to_dict()
    assert [row["item"] for row in as_dict["loadings"]] == ["q0", "q1", "q2"]
    assert set(as_dict["loadings"][0]) == {"item", "loading", "uniqueness"}


def test_omega_needs_three_items():
    with pytest.raises(ValueError, match="at least 3 items"):
        omega(pd.DataFrame({"q1": [1.0, 2.0, 3.0, 4.0], "q2": [2.0, 1.0, 4.0, 3.0]}))


def test_omega_rejects_an_indefinite_pairwise_correlation_matrix():
    # q1–q2 and q1–q3 correlate +1 on their shared rows, q2–q3 −1 on theirs: no data set with all
    # three items observed could produce this matrix (its smallest eigenvalue is −1.2).
    answers = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    missing = np.full(6, np.nan)
    items = pd.DataFrame(
        {
            "q1": np.r_[answers, answers, missing],
            "q2": np.r_[answers, missing, answers],
            "q3": np.r_[missing, answers, 7 - answers],
        }
    )
    with pytest.raises(ValueError, match="not positive definite"):
        omega(items)
