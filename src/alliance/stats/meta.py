"""Meta-analysis: pooling one effect over trials or sites, equal to metafor's ``rma``.

Levin et al. (2024) call for replication of the alliance → outcome association in other settings; a
consortium of PAT sites pools it the way a meta-analysis does: random effects, Fisher's z for
correlations, heterogeneity as tau² and I², the Knapp–Hartung test for few studies.

Why written here: the estimators are short closed forms and one scoring iteration, and the product
must equal R's ``metafor::rma`` (Viechtbauer 2010) — the reference reviewers know — including its
REML iteration, its I² for random-effects models (from tau², not from Q), its Knapp–Hartung scaling
(not truncated at 1) and its prediction interval. ``statsmodels.stats.meta_analysis.combine_effects``
(statsmodels 0.15) gives DerSimonian–Laird (``method_re="chi2"``) and an iterated Paule–Mandel estimate
but no REML and no prediction interval. On ``dat.bcg`` its DL tau², its fixed- and random-effects
estimates and intervals, and its WLS-scaled t interval (``conf_int(use_t=True)``, the Knapp–Hartung
interval) equal metafor's DL results to about 1e-15; it is not used inside so that REML, DL and FE
go through one code path, checked against metafor in ``tests/stats/reference/meta.R``.

================================  =================================================================
function                          R equivalent
================================  =================================================================
:func:`meta_analysis`             ``rma(yi, vi, method = "REML" | "DL" | "FE", test = "z" | "knha")``
                                  and ``predict()`` for the prediction interval
:func:`pool_correlations`         ``escalc("ZCOR", ri, ni)``, ``rma(...)``, ``predict(m, transf =
                                  transf.ztor)``
================================  =================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _dist

from .results import Result

__all__ = ["MetaAnalysis", "PooledCorrelation", "meta_analysis", "pool_correlations"]

METHODS = ("REML", "DL", "FE")
TESTS = ("z", "knha")
_THRESHOLD = 1e-12  # REML scoring stops when a step changes tau² by less (metafor's default: 1e-5)
_MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class MetaAnalysis(Result):
    """A pooled estimate (:func:`meta_analysis`).

    Attributes
    ----------
    k : int
        Number of studies.
    method, test : str
        Estimator of tau² (``REML``, ``DL``, ``FE``) and test (``z`` or ``knha``).
    estimate, se, ci_low, ci_high : float
        Pooled estimate, its standard error (Knapp–Hartung-scaled with ``knha``) and CI.
    statistic : float
        z, or t with ``df`` = k − 1 degrees of freedom (``knha``).
    df : int or None
    p : float
        Two-sided p of the pooled estimate.
    tau2, tau : float
        Between-study variance and SD (0 for ``FE``).
    tau2_se : float or None
        Standard error of tau² (REML: inverse Fisher information; None for DL and FE).
    i2, h2 : float
        I² (percent) and H²: for random-effects models from tau² and the typical within-study
        variance (Higgins & Thompson 2002, as metafor), for ``FE`` from Q.
    q, q_df, q_p : float, int, float
        Cochran's Q test of heterogeneity.
    pi_low, pi_high : float or None
        Prediction interval for the effect in a new study (None for ``FE``).
    weights : tuple of float
        Each study's share of the total weight (sums to 1).
    confidence : float
    converged : bool
        Whether the REML iteration converged (always True for DL and FE).
    notes : tuple of str
        What a reader should know about the estimate (few studies, tau² at its bound).
    """

    k: int
    method: str
    test: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    statistic: float
    df: int | None
    p: float
    tau2: float
    tau: float
    tau2_se: float | None
    i2: float
    h2: float
    q: float
    q_df: int
    q_p: float
    pi_low: float | None
    pi_high: float | None
    weights: tuple[float, ...]
    confidence: float
    converged: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PooledCorrelation(Result):
    """Correlations pooled on Fisher's z (:func:`pool_correlations`).

    Attributes
    ----------
    k, n_total : int
        Studies and participants.
    r, ci_low, ci_high : float
        The pooled correlation and its CI, back-transformed from z with tanh.
    pi_low, pi_high : float or None
        The prediction interval, back-transformed.
    p : float
    studies : tuple of dict
        Per study: ``r, n, z, vi, ci_low, ci_high, weight``.
    meta : MetaAnalysis
        The analysis on the z scale (tau² and I² there).
    notes : tuple of str
    """

    k: int
    n_total: int
    r: float
    ci_low: float
    ci_high: float
    pi_low: float | None
    pi_high: float | None
    p: float
    studies: tuple[dict, ...]
    meta: MetaAnalysis
    notes: tuple[str, ...] = ()


def _vector(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    for index, value in enumerate(array):
        if not np.isfinite(value):
            raise ValueError(f"{name}[{index}] is {float(value)!r}; allowed: a finite number")
    return array


def _reml_tau2(yi: np.ndarray, vi: np.ndarray, start: float) -> tuple[float, bool]:
    """Fisher scoring of the restricted likelihood over tau² ≥ 0 (Viechtbauer 2005, eq. 11–12).

    Step halving keeps tau² non-negative, as metafor's ``rma.uni``; at the bound the score is
    negative and tau² stays at 0.
    """
    tau2 = max(start, 0.0)
    for _ in range(_MAX_ITERATIONS):
        w = 1.0 / (vi + tau2)
        projection = np.diag(w) - np.outer(w, w) / w.sum()
        py = projection @ yi
        step = (py @ py - np.trace(projection)) / np.sum(projection * projection)
        while tau2 + step < 0:
            step /= 2.0
            if abs(step) < _THRESHOLD:
                return 0.0 if tau2 < _THRESHOLD else tau2, True
        tau2 += step
        if abs(step) < _THRESHOLD:
            return max(tau2, 0.0), True
    return max(tau2, 0.0), False


def meta_analysis(yi, vi, method: str = "REML", test: str = "z", confidence: float = 0.95) -> MetaAnalysis:
    """Fixed- or random-effects meta-analysis of effect sizes with known sampling variances.

    Parameters
    ----------
    yi : array-like
        One effect size per study (e.g. Fisher's z, a log risk ratio).
    vi : array-like
        Their sampling variances (> 0).
    method : {"REML", "DL", "FE", "EE"}
        Estimator of the between-study variance tau²: restricted maximum likelihood (default, as
        metafor), DerSimonian–Laird, or none (fixed / equal effects; ``"EE"`` is metafor's newer
        name for ``"FE"`` and gives the same result, reported as ``"FE"``).
    test : {"z", "knha"}
        Normal test, or the Knapp–Hartung t-test with k − 1 df (recommended for few studies).
    confidence : float
        Level of the CI and the prediction interval.

    Returns
    -------
    MetaAnalysis

    Raises
    ------
    ValueError
        Fewer than two studies, lengths that differ, a variance that is not positive, a value
        that is not finite, an unknown method or test.

    Notes
    -----
    With w_i = 1 / (v_i + τ²): μ̂ = Σ w_i y_i / Σ w_i and SE(μ̂) = (Σ w_i)^(-1/2).
    Q = Σ (y_i − μ̂_FE)² / v_i on k − 1 df. DL: τ² = max(0, (Q − (k − 1)) / (Σ w − Σ w² / Σ w)) with
    w = 1/v. REML maximises the restricted likelihood by Fisher scoring,
    τ² ← τ² + (y'PPy − tr P) / tr(PP) with P = W − W11'W / 1'W1, SE(τ²) = (2 / tr(PP))^(1/2).
    Knapp–Hartung: SE_KH = SE · (Σ w_i (y_i − μ̂)² / (k − 1))^(1/2), t on k − 1 df (the factor is not
    truncated at 1, as metafor's default). I² = 100 τ² / (τ² + ṽ), H² = (τ² + ṽ) / ṽ with the typical
    within-study variance ṽ = (k − 1) Σ w / ((Σ w)² − Σ w²), w = 1/v; for FE, I² = 100 (Q − (k − 1)) / Q
    (at least 0) and H² = Q / (k − 1). Prediction interval μ̂ ± c (SE² + τ²)^(1/2), c the normal or t
    quantile of the test.

    References
    ----------
    .. [1] DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Control Clin Trials
       7(3):177-188.
    .. [2] Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the
       random-effects model. J Educ Behav Stat 30(3):261-293.
    .. [3] Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression with a
       single covariate. Stat Med 22(17):2693-2710.
    .. [4] Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis. Stat Med
       21(11):1539-1558.
    .. [5] Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat
       Softw 36(3):1-48.

    Examples
    --------
    >>> from alliance.stats import meta_analysis
    >>> result = meta_analysis([0.30, 0.10, 0.55], [0.02, 0.03, 0.04], test="knha")
    >>> round(result.estimate, 3), result.df
    (0.3, 2)
    """
    if method == "EE":  # metafor's newer name for the equal-effects ("FE") model
        method = "FE"
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)} (or EE, the same as FE)")
    if test not in TESTS:
        raise ValueError(f"test {test!r} is not one of {', '.join(TESTS)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence!r} is not between 0 and 1")
    yi, vi = _vector(yi, "yi"), _vector(vi, "vi")
    if len(yi) != len(vi):
        raise ValueError(f"yi has {len(yi)} values and vi {len(vi)}; allowed: one variance per effect")
    k = len(yi)
    if k < 2:
        raise ValueError(f"{k} stud{'y' if k == 1 else 'ies'}; allowed: at least 2 to pool")
    for index, value in enumerate(vi):
        if value <= 0:
            raise ValueError(f"vi[{index}] is {float(value)!r}; allowed: a sampling variance > 0")
    w_fixed = 1.0 / vi
    mu_fixed = np.sum(w_fixed * yi) / w_fixed.sum()
    q = float(np.sum(w_fixed * (yi - mu_fixed) ** 2))
    q_df = k - 1
    scaling = w_fixed.sum() - np.sum(w_fixed ** 2) / w_fixed.sum()
    converged, tau2_se = True, None
    if method == "FE":
        tau2 = 0.0
    else:
        tau2_dl = max(0.0, (q - q_df) / scaling)
        if method == "DL":
            tau2 = tau2_dl
        else:
            tau2, converged = _reml_tau2(yi, vi, tau2_dl)
            w = 1.0 / (vi + tau2)
            projection = np.diag(w) - np.outer(w, w) / w.sum()
            tau2_se = float(np.sqrt(2.0 / np.sum(projection * projection)))
    w = 1.0 / (vi + tau2)
    estimate = float(np.sum(w * yi) / w.sum())
    se = float(np.sqrt(1.0 / w.sum()))
    df = None
    if test == "knha":
        df = k - 1
        se *= float(np.sqrt(np.sum(w * (yi - estimate) ** 2) / df))
        statistic = estimate / se
        p = float(2 * _dist.t.sf(abs(statistic), df))
        critical = float(_dist.t.ppf(0.5 + confidence / 2, df))
    else:
        statistic = estimate / se
        p = float(2 * _dist.norm.sf(abs(statistic)))
        critical = float(_dist.norm.ppf(0.5 + confidence / 2))
    if method == "FE":
        i2 = max(0.0, 100.0 * (q - q_df) / q) if q > 0 else 0.0
        h2 = q / q_df
        pi_low = pi_high = None
    else:
        typical = q_df * w_fixed.sum() / (w_fixed.sum() ** 2 - np.sum(w_fixed ** 2))
        i2 = 100.0 * tau2 / (tau2 + typical)
        h2 = (tau2 + typical) / typical
        half = critical * np.sqrt(se ** 2 + tau2)
        pi_low, pi_high = estimate - half, estimate + half
    notes = []
    if k == 2:
        notes.append("Only 2 studies: tau² is estimated from a single contrast and very imprecise.")
    elif k < 5 and method != "FE":
        notes.append(f"Only {k} studies: tau² and I² are imprecise.")
    if method != "FE" and tau2 == 0.0:
        notes.append("tau² is at its lower bound 0: no heterogeneity beyond sampling error was estimated, "
                     "so the random-effects estimate equals the fixed-effect one.")
    if test == "z" and method != "FE" and k < 10:
        notes.append("With fewer than 10 studies the Knapp-Hartung test (test='knha') keeps the nominal level "
                     "better than the z-test.")
    if not converged:
        notes.append("The REML iteration did not converge; tau² is the last value reached.")
    return MetaAnalysis(
        k=k, method=method, test=test, estimate=estimate, se=se, ci_low=estimate - critical * se,
        ci_high=estimate + critical * se, statistic=float(statistic), df=df, p=p, tau2=float(tau2),
        tau=float(np.sqrt(tau2)), tau2_se=tau2_se, i2=float(i2), h2=float(h2), q=q, q_df=q_df,
        q_p=float(_dist.chi2.sf(q, q_df)), pi_low=None if pi_low is None else float(pi_low),
        pi_high=None if pi_high is None else float(pi_high), weights=tuple(float(x) for x in w / w.sum()),
        confidence=confidence, converged=converged, notes=tuple(notes),
    )


def pool_correlations(r, n, method: str = "REML", test: str = "z", confidence: float = 0.95) -> PooledCorrelation:
    """Pool Pearson correlations of several studies on Fisher's z scale.

    Parameters
    ----------
    r : array-like
        One correlation per study, in (−1, 1).
    n : array-like
        Sample sizes (whole numbers ≥ 4).
    method, test, confidence
        As :func:`meta_analysis`.

    Returns
    -------
    PooledCorrelation

    Raises
    ------
    ValueError
        Naming the study (index) and the value when a correlation is outside (−1, 1), a sample size
        is not a whole number of at least 4, or the lengths differ.

    Notes
    -----
    z_i = atanh(r_i) with sampling variance 1 / (n_i − 3) (metafor's ``escalc(measure="ZCOR")``);
    the pooled z, its CI and the prediction interval are back-transformed with tanh
    (``transf.ztor``).

    References
    ----------
    .. [1] Fisher RA (1921). On the "probable error" of a coefficient of correlation deduced from a
       small sample. Metron 1:3-32.
    .. [2] Hedges LV, Olkin I (1985). Statistical methods for meta-analysis. Academic Press.
    .. [3] Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat
       Softw 36(3):1-48.

    Examples
    --------
    >>> from alliance.stats import pool_correlations
    >>> pooled = pool_correlations([-0.65, -0.40, -0.25], [24, 60, 120])
    >>> round(pooled.r, 3)
    -0.404
    """
    r_values, n_values = _vector(r, "r"), _vector(n, "n")
    if len(r_values) != len(n_values):
        raise ValueError(f"r has {len(r_values)} values and n {len(n_values)}; allowed: one n per correlation")
    for index, value in enumerate(r_values):
        if not -1 < value < 1:
            raise ValueError(f"r[{index}] is {float(value)!r}; allowed: a correlation strictly between -1 and 1")
    for index, value in enumerate(n_values):
        if value != int(value) or value < 4:
            raise ValueError(f"n[{index}] is {float(value)!r}; allowed: a whole number of at least 4 (Fisher's z needs n > 3)")
    z = np.arctanh(r_values)
    vi = 1.0 / (n_values - 3.0)
    meta = meta_analysis(z, vi, method=method, test=test, confidence=confidence)
    half = float(_dist.norm.ppf(0.5 + confidence / 2))
    studies = tuple(
        {"r": float(ri), "n": int(ni), "z": float(zi), "vi": float(v),
         "ci_low": float(np.tanh(zi - half * np.sqrt(v))), "ci_high": float(np.tanh(zi + half * np.sqrt(v))),
         "weight": weight}
        for ri, ni, zi, v, weight in zip(r_values, n_values, z, vi, meta.weights, strict=True)
    )
    return PooledCorrelation(
        k=meta.k, n_total=int(n_values.sum()), r=float(np.tanh(meta.estimate)),
        ci_low=float(np.tanh(meta.ci_low)), ci_high=float(np.tanh(meta.ci_high)),
        pi_low=None if meta.pi_low is None else float(np.tanh(meta.pi_low)),
        pi_high=None if meta.pi_high is None else float(np.tanh(meta.pi_high)),
        p=meta.p, studies=studies, meta=meta, notes=meta.notes,
    )
