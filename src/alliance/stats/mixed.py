"""Linear mixed models giving lme4/lmerTest's answers: one grouping factor, or any random-effects terms.

Why our own implementation rather than statsmodels' ``MixedLM``:

* **R-exact inference.** Trial reports are checked against R, where mixed models are fitted
  with ``lme4::lmer`` and tested with lmerTest's Satterthwaite degrees of freedom. statsmodels
  reports z-tests without denominator degrees of freedom, and its optimiser stops at a looser
  tolerance. Here the fixed-effect table (estimate, SE, Satterthwaite df, t, p), the variance
  components and the (RE)ML log-likelihood follow lme4/lmerTest to their printed digits.
* **Speed.** Trial designs have a single grouping factor (participant, dosing session), so
  the profiled deviance reduces to per-group q × q algebra on sufficient statistics, evaluated
  in batched numpy with an exact gradient and Hessian. That is one to two orders of magnitude
  faster than a general-purpose fitter (see ``benchmarks/bench_mixedlm.py``), which matters
  for simulation studies and bootstraps that refit thousands of times.

The fixed-effects part of the formula is parsed by ``formulaic``; only the ``(… | group)`` term
is split off by hand (:mod:`alliance.stats._lmm_formula`). The deviance and its derivatives are
in :mod:`alliance.stats._lmm_deviance`.

Several terms — crossed ``(1|participant) + (1|facilitator)``, nested ``(1|site/participant)``,
uncorrelated ``(x || g)``, multiple membership ``(1 | mm(f1, f2))`` — are fitted by lme4's sparse
formulation in :mod:`alliance.stats._lmm_sparse` (terms parsed by
:mod:`alliance.stats._lmm_terms`). Every fit runs with one BLAS thread (threadpoolctl): the work
is many small operations, where a second thread costs CPU and time (measured in :func:`mixedlm`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from ._lmm_deviance import ProfiledDeviance
from ._lmm_formula import build_model_frame
from ._lmm_sparse import (
    SparseDeviance,
    build_sparse_frame,
    optimize_theta,
    random_effects,
    richardson_hessian,
    richardson_jacobian,
    unique_group_names,
)
from ._lmm_terms import split_random
from .results import Result

__all__ = ["MixedModel", "emmeans", "emmeans_contrasts", "anova", "confint", "kenward_roger", "kenward_roger_test",
           "mixedlm"]

# lme4's isSingular(): a diagonal element of θ below this counts as on the boundary.
SINGULAR_TOLERANCE = 1e-4
# lmerTest's as_lmerModLmerTest(tol = 1e-8): Hessian eigenvalues within ±tol count as zero.
HESSIAN_EIGEN_TOLERANCE = 1e-8
# Convergence: largest projected gradient of the deviance with respect to θ.
GRADIENT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class MixedModel(Result):
    """Result of :func:`mixedlm`.

    Attributes
    ----------
    formula : str
        The model formula as given.
    fixed : DataFrame
        One row per fixed-effect term (index ``term``, R's names such as ``(Intercept)``,
        ``Days``, ``SexMale``) with columns ``estimate``, ``se``, ``df`` (Satterthwaite, as
        lmerTest), ``t`` and ``p`` (two-sided, t distribution with ``df``).
    varcomp : DataFrame
        The layout of R's ``as.data.frame(VarCorr(m))``: columns ``group``, ``var1``, ``var2``,
        ``vcov``, ``sdcor``. Rows: each random-effect variance (``var2`` None, ``sdcor`` the SD),
        then each covariance (``vcov`` the covariance, ``sdcor`` the correlation; pairs in the
        order (1, 2), (1, 3), (2, 3) …), then ``Residual``.
    loglik : float
        REML log-likelihood if ``reml`` else the ML log-likelihood, as R's ``logLik``.
    reml : bool
        Whether the model was fitted by REML.
    n_obs : int
        Observations used (complete rows).
    n_groups : int
        Levels of the grouping factor among the complete rows (with several random terms: of
        the first term in lme4's order, the one with the most levels).
    converged : bool
        The optimiser reached a point where the projected gradient is below 1e-6 and the
        Hessian of the free parameters is positive definite.
    singular : bool
        Boundary fit: some diagonal element of θ is below 1e-4 (lme4's ``isSingular``); a
        variance is (close to) zero or a correlation is ±1.
    theta : tuple of float
        The relative covariance factor θ (lower triangle of Λ, column by column, as lme4's
        ``getME(m, "theta")``).
    notes : tuple of str
        Plain-language remarks on the fit: non-convergence, singularity, and lmerTest's
        warnings about the Hessian of the variance parameters.
    groups : dict
        Levels of each grouping factor among the complete rows, as lme4's ``ngrps(m)``
        (names as lme4 prints them: ``cask:batch``; ``mm(f1, f2)`` for a multiple membership).
    vcov : DataFrame
        vcov(β), as lme4's ``vcov(m)`` (rows and columns: the fixed-effect terms).
    singular_terms : tuple of str
        The random-effects terms (group names) with a θ diagonal on its boundary: lme4's
        ``isSingular`` per term.
    """

    formula: str
    fixed: pd.DataFrame
    varcomp: pd.DataFrame
    loglik: float
    reml: bool
    n_obs: int
    n_groups: int
    converged: bool
    singular: bool
    theta: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()
    groups: dict[str, int] = field(default_factory=dict)
    vcov: pd.DataFrame | None = None
    singular_terms: tuple[str, ...] = ()
    # What contrasts need (lmerTest's Jac_list and vcov_varpar); not part of to_dict().
    _jacobian: np.ndarray | None = field(default=None, repr=False, compare=False)
    _varpar_cov: np.ndarray | None = field(default=None, repr=False, compare=False)
    _ranef: object = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        out = super().to_dict()
        for private in ("_jacobian", "_varpar_cov", "_ranef"):
            out.pop(private, None)
        return out

    def ranef(self) -> pd.DataFrame | None:
        """Conditional modes and SDs of the random effects, as ``as.data.frame(ranef(m, condVar = TRUE))``.

        Columns ``grpvar, term, grp, condval, condsd`` (e.g. each facilitator's effect, for a
        caterpillar plot), rows in R's order (by term, then column, then level). Computed on
        request (a fit in a simulation does not pay for it), for every model shape. With the
        sparse fitter (several terms, ``||``, ``a:b``, ``a/b``, ``mm()``) ``condsd`` is NaN beyond
        4,000 random effects; a model with one plain term is computed per group.
        """
        return None if self._ranef is None else self._ranef()

    def _contrast_matrix(self, contrast) -> tuple[np.ndarray, list[str]]:
        names = list(self.fixed.index)
        if isinstance(contrast, dict):
            contrast = [contrast]
        if isinstance(contrast, pd.DataFrame):
            missing = [c for c in contrast.columns if c not in names]
            if missing:
                raise ValueError(f"contrast names {missing}, which are not fixed-effect terms; allowed: {names}")
            matrix = contrast.reindex(columns=names, fill_value=0.0).to_numpy(dtype=float)
            return matrix, [str(i) for i in contrast.index]
        if isinstance(contrast, list) and contrast and isinstance(contrast[0], dict):
            return self._contrast_matrix(pd.DataFrame(contrast).fillna(0.0))
        matrix = np.atleast_2d(np.asarray(contrast, dtype=float))
        if matrix.shape[1] != len(names):
            raise ValueError(f"a contrast needs {len(names)} coefficients (one per fixed effect: {names}), "
                             f"got {matrix.shape[1]}")
        return matrix, [str(i) for i in range(matrix.shape[0])]

    def contrast(self, contrast) -> pd.DataFrame:
        """Estimate, SE, Satterthwaite df, t and p of each row of a contrast, as lmerTest's ``contest1D``.

        Parameters
        ----------
        contrast : array-like (k × p), dict (term → weight), list of dicts, or DataFrame (columns: terms)

        Returns
        -------
        DataFrame
            Index: the contrast's rows; columns ``estimate, se, df, t, p``. The df of row l is
            ``2 (l V lᵀ)² / (gᵀ A g)`` with ``g_m = l (∂V/∂varpar_m) lᵀ`` (Kuznetsova et al. 2017).
        """
        matrix, index = self._contrast_matrix(contrast)
        beta = self.fixed["estimate"].to_numpy()
        v = self.vcov.to_numpy()
        estimate = matrix @ beta
        variance = np.einsum("ij,jk,ik->i", matrix, v, matrix)
        gradients = np.einsum("ij,mjk,ik->im", matrix, self._jacobian, matrix)
        denominator = np.einsum("im,mn,in->i", gradients, self._varpar_cov, gradients)
        df = np.where(denominator > 0, 2.0 * variance**2 / np.where(denominator > 0, denominator, 1.0), np.inf)
        se = np.sqrt(variance)
        t = estimate / se
        return pd.DataFrame({"estimate": estimate, "se": se, "df": df, "t": t,
                             "p": 2.0 * stats.t.sf(np.abs(t), df)}, index=pd.Index(index, name="contrast"))

    def test(self, contrast) -> dict:
        """The F test of a (multi-row) contrast = 0, as lmerTest's ``contestMD``: ``num_df, den_df, F, p``.

        The contrast's covariance L V Lᵀ = P D Pᵀ is split into q = rank independent t statistics
        (eigenvalues above √ε × the largest); each gets its Satterthwaite df ν_m, and the F's
        denominator df is 2E/(E − q) with E = Σ ν_m/(ν_m − 2) (2 if any ν_m ≤ 2; the mean when all
        ν_m agree within 1e-8), lmerTest's ``get_Fstat_ddf``.
        """
        matrix, _ = self._contrast_matrix(contrast)
        beta = self.fixed["estimate"].to_numpy()
        covariance = matrix @ self.vcov.to_numpy() @ matrix.T
        values, vectors = np.linalg.eigh(covariance)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        keep = values > max(np.sqrt(np.finfo(float).eps) * values[0], 0.0)
        q = int(keep.sum())
        rotated = (vectors[:, keep].T @ matrix)
        gradients = np.einsum("ij,mjk,ik->im", rotated, self._jacobian, rotated)
        nu = 2.0 * values[keep] ** 2 / np.einsum("im,mn,in->i", gradients, self._varpar_cov, gradients)
        if q == 1:
            den_df = float(nu[0])
        elif np.all(np.abs(np.diff(nu)) < 1e-8):
            den_df = float(np.mean(nu))
        elif np.any(nu <= 2):
            den_df = 2.0
        else:
            e = float(np.sum(nu / (nu - 2.0)))
            den_df = 2.0 * e / (e - q)
        f_value = float(np.sum((rotated @ beta) ** 2 / values[keep]) / q)
        return {"num_df": q, "den_df": den_df, "F": f_value, "p": float(stats.f.sf(f_value, q, den_df))}


def _optimize_theta(deviance: ProfiledDeviance) -> tuple[np.ndarray, bool]:
    """Minimise the profiled deviance over θ (diagonal of Λ ≥ 0).

    L-BFGS-B with the exact gradient from lme4's start (Λ = I), then Newton steps with the
    exact Hessian on the free coordinates to reach machine-precision stationarity.
    Returns θ and whether the final point passed the convergence checks.
    """
    diagonal = deviance.is_diagonal
    bounds = [(0.0, None) if is_diag else (None, None) for is_diag in diagonal]
    theta = np.where(diagonal, 1.0, 0.0)
    for _restart in range(3):
        # A moderately tight L-BFGS-B run gets close; Newton steps with the exact Hessian then
        # converge quadratically. Where Newton cannot run (a flat or indefinite direction),
        # a second, very tight L-BFGS-B run does the polishing instead.
        for tolerance in (1e-6, 1e-11):
            fit = optimize.minimize(
                deviance.profiled, theta, jac=True, method="L-BFGS-B", bounds=bounds,
                options={"maxiter": 5000, "maxfun": 10000, "ftol": tolerance**2, "gtol": tolerance,
                         "maxcor": 20},
            )
            theta = _newton_polish(deviance, np.asarray(fit.x, dtype=float))
            if _projected_gradient(deviance, theta) <= 1e-3 * GRADIENT_TOLERANCE:
                break
        # The deviance is even in each diagonal θ entry, so its gradient there vanishes at 0:
        # a zero diagonal can be a saddle. Move off it when the curvature says so.
        at_zero = diagonal & (theta == 0.0)
        if not at_zero.any():
            break
        curvature = np.diag(deviance.profiled_hessian(theta))
        uphill = at_zero & (curvature < 0)
        if not uphill.any():
            break
        theta = theta.copy()
        theta[uphill] = 0.1
    return theta, _is_converged(deviance, theta)


def _free(deviance: ProfiledDeviance, theta: np.ndarray) -> np.ndarray:
    return ~(deviance.is_diagonal & (theta <= 0.0))


def _newton_polish(deviance: ProfiledDeviance, theta: np.ndarray, max_steps: int = 50) -> np.ndarray:
    diagonal = deviance.is_diagonal
    theta = np.where(diagonal, np.maximum(theta, 0.0), theta)
    value, gradient = deviance.profiled(theta)
    for _step in range(max_steps):
        free = _free(deviance, theta)
        hessian = deviance.profiled_hessian(theta)[np.ix_(free, free)]
        try:
            chol = np.linalg.cholesky(hessian)
        except np.linalg.LinAlgError:
            break
        step = np.zeros_like(theta)
        step[free] = -np.linalg.solve(chol.T, np.linalg.solve(chol, gradient[free]))
        accepted = False
        for scale in (1.0, 0.5, 0.25, 0.125, 0.0625):
            trial = theta + scale * step
            trial = np.where(diagonal, np.maximum(trial, 0.0), trial)
            trial_value, trial_gradient = deviance.profiled(trial)
            if trial_value <= value + 1e-12 * abs(value):
                accepted = True
                break
        if not accepted:
            break
        moved = np.max(np.abs(trial - theta))
        theta, value, gradient = trial, trial_value, trial_gradient
        if moved <= 1e-12 * (1.0 + np.max(np.abs(theta))):
            break
    # A diagonal entry that is zero to optimiser precision is set to exactly zero (lme4 reports
    # boundary fits with θ = 0) when that does not worsen the deviance beyond rounding.
    for index in np.flatnonzero(diagonal & (theta > 0.0) & (theta < 1e-6)):
        trial = theta.copy()
        trial[index] = 0.0
        if deviance.profiled(trial)[0] <= value + 1e-10 * abs(value):
            theta = trial
            value = deviance.profiled(theta)[0]
    return theta


def _projected_gradient(deviance: ProfiledDeviance, theta: np.ndarray) -> float:
    """Largest gradient component that could still lower the deviance within the bounds."""
    _, gradient = deviance.profiled(theta)
    projected = np.where(deviance.is_diagonal & (theta <= 0.0), np.minimum(gradient, 0.0), gradient)
    return float(np.max(np.abs(projected))) if np.all(np.isfinite(projected)) else np.inf


def _is_converged(deviance: ProfiledDeviance, theta: np.ndarray) -> bool:
    if _projected_gradient(deviance, theta) > GRADIENT_TOLERANCE:
        return False
    free = _free(deviance, theta)
    if not free.any():
        return True
    eigenvalues = np.linalg.eigvalsh(deviance.profiled_hessian(theta)[np.ix_(free, free)])
    return bool(eigenvalues.min() > -1e-8 * max(1.0, abs(eigenvalues).max()))


def _satterthwaite(deviance: ProfiledDeviance, theta: np.ndarray, sigma: float) -> tuple[np.ndarray, list[str]]:
    """Satterthwaite df for each fixed effect, as lmerTest's ``contest1D``.

    A = 2 H⁻¹ (Moore–Penrose, eigenvalues ≤ 1e-8 dropped) with H the Hessian of the deviance in
    varpar = (θ, σ); for the unit contrast L = e_j: g_m = Lᵀ (∂vcov(β)/∂varpar_m) L and
    df = 2 (Lᵀ vcov(β) L)² / (gᵀ A g).
    """
    notes = []
    hessian = deviance.varpar_hessian(theta, sigma)
    eigenvalues, eigenvectors = np.linalg.eigh(hessian)
    negative = eigenvalues < -HESSIAN_EIGEN_TOLERANCE
    positive = eigenvalues > HESSIAN_EIGEN_TOLERANCE
    if negative.any():
        notes.append(
            f"Hessian of the variance parameters has {int(negative.sum())} negative eigenvalue(s) "
            f"{np.array2string(eigenvalues[negative], precision=2)}: the model failed to converge "
            "(lmerTest warns the same); Satterthwaite df use the positive part only"
        )
    zero = ~negative & ~positive
    if zero.any():
        notes.append(
            f"Hessian of the variance parameters has {int(zero.sum())} eigenvalue(s) close to zero; "
            "Satterthwaite df use its generalized inverse (lmerTest warns the same)"
        )
    vectors = eigenvectors[:, positive]
    varpar_cov = 2.0 * (vectors / eigenvalues[positive]) @ vectors.T
    jacobian = deviance.covbeta_jacobian(theta, sigma)
    vcov = deviance.vcov_beta(theta, sigma)
    variances = np.diag(vcov)
    gradients = np.diagonal(jacobian, axis1=1, axis2=2)  # (n_varpar, p)
    denominators = np.einsum("mj,mk,kj->j", gradients, varpar_cov, gradients)
    df = np.full_like(variances, np.inf)
    ok = denominators > 0
    df[ok] = 2.0 * variances[ok] ** 2 / denominators[ok]
    return df, notes, varpar_cov, jacobian


def _varcomp_table(frame, theta: np.ndarray, sigma: float, factor: np.ndarray) -> pd.DataFrame:
    covariance = sigma**2 * (factor @ factor.T)
    sd = np.sqrt(np.diag(covariance))
    names = frame.random_names
    group = frame.group_name
    rows = [
        {"group": group, "var1": name, "var2": None, "vcov": covariance[i, i], "sdcor": sd[i]}
        for i, name in enumerate(names)
    ]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            denominator = sd[i] * sd[j]
            correlation = covariance[i, j] / denominator if denominator > 0 else np.nan
            rows.append(
                {"group": group, "var1": names[i], "var2": names[j],
                 "vcov": covariance[i, j], "sdcor": correlation}
            )
    rows.append({"group": "Residual", "var1": None, "var2": None, "vcov": sigma**2, "sdcor": sigma})
    # dtype=object keeps None (R's NA) in var1/var2 instead of pandas' string NaN.
    table = pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"], dtype=object)
    return table.astype({"vcov": float, "sdcor": float})


def mixedlm(formula: str, data: pd.DataFrame, reml: bool = True) -> MixedModel:
    """Fit a linear mixed model, as ``lmerTest::lmer``.

    Parameters
    ----------
    formula : str
        lme4 syntax, e.g. ``"y ~ x + (1 | g)"``, ``"y ~ x + (x | g)"`` (correlated intercept
        and slope, same as ``(1 + x | g)``), ``"y ~ x + (0 + x | g)"`` (slope only), any number
        of terms: crossed ``(1 | participant) + (1 | facilitator)``, nested ``(1 | site/participant)``
        (= ``(1 | site) + (1 | participant:site)``), an interaction ``(1 | a:b)``, uncorrelated
        ``(x || g)``, and multiple membership ``(1 | mm(f1, f2))`` — each row's effect the mean
        of its members' (weight 1/k over its k non-missing members), or
        ``mm(f1, f2, weights = cbind(w1, w2))``. The fixed part is parsed with treatment coding;
        string and logical columns are factors with R's level order (sorted, C locale; FALSE
        before TRUE) and terms get R's names (``SexMale``). Random terms are ordered as lme4
        orders them (decreasing number of levels), which fixes the order of ``theta`` and
        ``varcomp``.
    data : DataFrame
        One row per observation. Rows with a missing value in any column the formula uses
        are dropped (listwise, like lme4's ``na.omit``).
    reml : bool, default True
        Fit by restricted maximum likelihood (R's default) or by maximum likelihood.

    Returns
    -------
    MixedModel
        Fixed-effect table with Satterthwaite df and p-values, variance components in the
        layout of ``as.data.frame(VarCorr(m))``, log-likelihood and convergence flags.

    Raises
    ------
    ValueError
        Unsupported formula, missing column, no complete rows, a grouping column with fewer
        than two levels, too few observations for the random effects, a rank-deficient
        fixed-effects design.

    Notes
    -----
    With Λ the lower-triangular relative covariance factor (random-effect covariance
    σ²ΛΛᵀ) and θ its lower triangle, lme4 minimises the profiled deviance (Bates et al. 2015,
    eqs. 34 and 41)

    .. math:: d(\\theta) = \\log|L_\\theta|^2 [+ \\log|R_X|^2]
              + n'\\left(1 + \\log\\frac{2\\pi r^2(\\theta)}{n'}\\right),

    where :math:`|L_\\theta|^2 = |I + \\Lambda^T Z^T Z \\Lambda|`, :math:`R_X^T R_X = X^T W^{-1} X`,
    :math:`r^2` is the penalized residual sum of squares and :math:`n' = n - p` for REML
    (the bracketed term) or :math:`n` for ML; β and σ² = r²/n' are profiled out. With a single
    grouping factor every term is a sum over groups of q × q algebra on ZᵢᵀZᵢ, ZᵢᵀXᵢ and Zᵢᵀyᵢ,
    computed once and evaluated in batched numpy. θ is optimised by L-BFGS-B (diagonal of
    Λ ≥ 0) with the exact gradient, then polished by Newton steps with the exact Hessian.

    Satterthwaite df follow lmerTest (Kuznetsova et al. 2017): with varpar = (θ, σ) and
    :math:`f` the deviance with σ not profiled, :math:`A = 2H^{-1}` where :math:`H = \\nabla^2 f`
    at the optimum (generalized inverse over eigenvalues above 1e-8), and for coefficient j,
    :math:`\\nu_j = 2\\,V_{jj}^2 / (g_j^T A g_j)` with :math:`V = \\sigma^2 (R_X^T R_X)^{-1}`
    = vcov(β) and :math:`g_{j,m} = \\partial V_{jj}/\\partial \\mathrm{varpar}_m`. lmerTest gets H and
    the Jacobian by numDeriv's Richardson extrapolation; here both are analytic (formulas in
    :mod:`alliance.stats._lmm_deviance`), which agrees with lmerTest to its numerical accuracy.
    For an ML fit (``reml=False``) the df come from the ML deviance and the ML σ, exactly as
    lmerTest does for a model fitted with ``REML = FALSE``.

    References
    ----------
    Bates D, Mächler M, Bolker B, Walker S (2015). Fitting Linear Mixed-Effects Models Using
    lme4. Journal of Statistical Software 67(1), 1–48. doi:10.18637/jss.v067.i01

    Kuznetsova A, Brockhoff PB, Christensen RHB (2017). lmerTest Package: Tests in Linear Mixed
    Effects Models. Journal of Statistical Software 82(13), 1–26. doi:10.18637/jss.v082.i13

    Satterthwaite FE (1946). An Approximate Distribution of Estimates of Variance Components.
    Biometrics Bulletin 2(6), 110–114.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alliance.stats.mixed import mixedlm
    >>> rng = np.random.default_rng(1)
    >>> participant = np.repeat(np.arange(20), 5)
    >>> week = np.tile(np.arange(5.0), 20)
    >>> alliance = 4 + 0.3 * week + rng.normal(0, 0.5, 20)[participant] + rng.normal(0, 0.3, 100)
    >>> data = pd.DataFrame({"alliance": alliance, "week": week, "participant": participant})
    >>> fit = mixedlm("alliance ~ week + (1 | participant)", data)
    >>> fit.fixed.index.tolist()
    ['(Intercept)', 'week']
    >>> round(float(fit.fixed.loc["week", "df"]), 3)  # within-participant: 100 - 20 - 1
    79.0
    >>> fit.varcomp["var1"].tolist()
    ['(Intercept)', None]
    """
    # One BLAS thread: the fit is many small operations, where a second thread only adds
    # synchronisation — measured on 2 cores, 20,000 groups × 5 visits (y ~ t + (1|g)): 0.21 s wall
    # and 0.42 s CPU with OpenBLAS's 2 threads, 0.10 s and 0.10 s with one; crossed 2,000 × 200:
    # 0.21 → 0.15 s (benchmarks/bench_mixedlm.py).
    with threadpool_limits(limits=1, user_api="blas"):
        if _needs_general_fitter(formula):
            return _fit_general(formula, data, reml)
        return _fit_one_term(formula, data, reml)


def _fit_one_term(formula: str, data: pd.DataFrame, reml: bool) -> MixedModel:
    """One random-effects term with one grouping column: per-group batched algebra."""
    frame = build_model_frame(formula, data)
    deviance = ProfiledDeviance(
        frame.response, frame.fixed_design, frame.random_design, frame.group_starts, reml=reml
    )
    theta, converged = _optimize_theta(deviance)
    objective, _ = deviance.profiled(theta)
    sigma = deviance.sigma(theta)
    estimates = deviance.fixed_effects(theta)
    vcov = deviance.vcov_beta(theta, sigma)
    se = np.sqrt(np.diag(vcov))
    df, notes, varpar_cov, jacobian = _satterthwaite(deviance, theta, sigma)
    t_values = estimates / se
    p_values = 2.0 * stats.t.sf(np.abs(t_values), df)
    fixed = pd.DataFrame(
        {"estimate": estimates, "se": se, "df": df, "t": t_values, "p": p_values},
        index=pd.Index(frame.fixed_names, name="term"),
    )
    singular = bool(np.any(theta[deviance.is_diagonal] < SINGULAR_TOLERANCE))
    notes = list(frame.notes) + list(notes)
    if singular:
        notes.insert(0, "boundary (singular) fit: a random-effect variance is (near) zero or a "
                        "correlation is ±1")
    if not converged:
        notes.insert(0, "the optimiser did not converge: the gradient of the deviance is not zero "
                        "or its Hessian is not positive definite; estimates are unreliable")
    return MixedModel(
        formula=formula,
        fixed=fixed,
        varcomp=_varcomp_table(frame, theta, sigma, deviance.factor(theta)),
        loglik=-0.5 * objective,
        reml=bool(reml),
        n_obs=frame.n_obs,
        n_groups=frame.n_groups,
        converged=converged,
        singular=singular,
        theta=tuple(float(value) for value in theta),
        notes=tuple(notes),
        groups={frame.group_name: frame.n_groups},
        vcov=pd.DataFrame(vcov, index=list(frame.fixed_names), columns=list(frame.fixed_names)),
        singular_terms=(frame.group_name,) if singular else (),
        _jacobian=jacobian, _varpar_cov=varpar_cov,
        _ranef=lambda: _one_term_random_effects(deviance, theta, sigma, frame),
    )


def _one_term_random_effects(deviance: ProfiledDeviance, theta: np.ndarray, sigma: float, frame) -> pd.DataFrame:
    """Conditional modes and SDs for one plain term, per group (lme4's ``ranef(m, condVar = TRUE)``).

    With D = ΛΛᵀ, the conditional mode of group i is bᵢ = D Zᵢᵀ Wᵢ⁻¹ (yᵢ − Xᵢβ̂) = D aᵢ and its
    conditional covariance σ² Λ (ΛᵀZᵢᵀZᵢΛ + I)⁻¹ Λᵀ (Bates et al. 2015, section 3.4), the
    per-group blocks of what :func:`alliance.stats._lmm_sparse.random_effects` computes for Z.
    """
    st = deviance.state(theta)
    lam = st.factor
    modes = st.a @ st.relative_cov.T                                   # (G, q)
    inner = np.eye(deviance.n_random) + lam.T @ deviance.zz @ lam      # (G, q, q)
    cond_cov = sigma**2 * (lam @ np.linalg.solve(inner, np.broadcast_to(lam.T, inner.shape)))
    cond_sd = np.sqrt(np.clip(np.diagonal(cond_cov, axis1=1, axis2=2), 0.0, None))
    levels = list(frame.group_levels) or [str(i) for i in range(frame.n_groups)]
    n_groups = len(levels)
    return pd.DataFrame({
        "grpvar": frame.group_name,
        "term": np.repeat(list(frame.random_names), n_groups),
        "grp": levels * len(frame.random_names),
        "condval": modes.T.ravel(),
        "condsd": cond_sd.T.ravel(),
    }, columns=["grpvar", "term", "grp", "condval", "condsd"])


def _needs_general_fitter(formula: str) -> bool:
    """Several random terms, ``||``, an interaction, nesting or membership: the sparse fitter."""
    if not isinstance(formula, str) or formula.count("~") != 1:
        return False
    rhs = formula.split("~")[1]
    _, terms = split_random(rhs, formula)   # its ValueError names the term
    simple = len(terms) == 1 and not terms[0].membership and len(terms[0].factors) == 1
    return not simple or "||" in rhs


def _fit_general(formula: str, data: pd.DataFrame, reml: bool) -> MixedModel:
    """Any random-effects terms, on lme4's sparse formulation (:mod:`alliance.stats._lmm_sparse`)."""
    frame = build_sparse_frame(formula, data)
    deviance = SparseDeviance(frame, reml=reml)
    lower = frame.lower
    theta, converged = optimize_theta(deviance, lower)
    objective = deviance.profiled(theta)
    sigma = deviance.sigma(theta)
    estimates = deviance.pieces(theta)["beta"]
    vcov = deviance.vcov_beta(theta, sigma)
    se = np.sqrt(np.diag(vcov))
    varpar = np.r_[theta, sigma]
    hessian = richardson_hessian(deviance.varpar_deviance, varpar)
    eigenvalues, eigenvectors = np.linalg.eigh(hessian)
    positive = eigenvalues > HESSIAN_EIGEN_TOLERANCE
    notes = list(frame.notes)
    if (eigenvalues < -HESSIAN_EIGEN_TOLERANCE).any():
        notes.append("Hessian of the variance parameters has negative eigenvalue(s): the model failed to "
                     "converge (lmerTest warns the same); Satterthwaite df use the positive part only")
    elif (~positive).any():
        notes.append("Hessian of the variance parameters has eigenvalue(s) close to zero; Satterthwaite df "
                     "use its generalized inverse (lmerTest warns the same)")
    vectors = eigenvectors[:, positive]
    varpar_cov = 2.0 * (vectors / eigenvalues[positive]) @ vectors.T
    full_jacobian = richardson_jacobian(lambda vp: deviance.vcov_beta(vp[:-1], vp[-1]), varpar)
    jacobian = np.diagonal(full_jacobian, axis1=1, axis2=2)
    denominators = np.einsum("mj,mk,kj->j", jacobian, varpar_cov, jacobian)
    df = np.full(len(estimates), np.inf)
    ok = denominators > 0
    df[ok] = 2.0 * np.diag(vcov)[ok] ** 2 / denominators[ok]
    t_values = estimates / se
    fixed = pd.DataFrame({"estimate": estimates, "se": se, "df": df, "t": t_values,
                          "p": 2.0 * stats.t.sf(np.abs(t_values), df)},
                         index=pd.Index(frame.fixed_names, name="term"))
    singular = bool(np.any(theta[np.isfinite(lower)] < SINGULAR_TOLERANCE))
    zero = [b.term.name for b in frame.blocks
            if np.any(np.diag(deviance.relative_factor(theta, b)) < SINGULAR_TOLERANCE)]
    if singular:
        notes.insert(0, "boundary (singular) fit: a random-effect variance is (near) zero or a correlation is "
                        f"±1 (in {', '.join(dict.fromkeys(zero))})")
    if not converged:
        notes.insert(0, "the optimiser did not converge: the gradient of the deviance is not zero; estimates "
                        "are unreliable")
    names = unique_group_names([b.term.name for b in frame.blocks])
    rows = []
    for name, block in zip(names, frame.blocks, strict=True):
        t = deviance.relative_factor(theta, block)
        covariance = sigma**2 * (t @ t.T)
        sd = np.sqrt(np.diag(covariance))
        rows += [{"group": name, "var1": v, "var2": None, "vcov": covariance[i, i], "sdcor": sd[i]}
                 for i, v in enumerate(block.names)]
        for i in range(block.k):
            for j in range(i + 1, block.k):
                denominator = sd[i] * sd[j]
                rows.append({"group": name, "var1": block.names[i], "var2": block.names[j],
                             "vcov": covariance[i, j],
                             "sdcor": covariance[i, j] / denominator if denominator > 0 else np.nan})
    rows.append({"group": "Residual", "var1": None, "var2": None, "vcov": sigma**2, "sdcor": sigma})
    varcomp = pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"], dtype=object)
    groups = {}
    for block in frame.blocks:
        groups.setdefault(block.term.name, block.n_levels)
    deviance._cache.clear()   # the model keeps the deviance for ranef(); not the derivatives' cache
    return MixedModel(
        formula=formula, fixed=fixed, varcomp=varcomp.astype({"vcov": float, "sdcor": float}),
        loglik=-0.5 * objective, reml=bool(reml), n_obs=frame.n_obs, n_groups=frame.blocks[0].n_levels,
        converged=converged, singular=singular, theta=tuple(float(v) for v in theta), notes=tuple(notes),
        groups=groups,
        _ranef=lambda: random_effects(deviance, theta, sigma, [b.term.name for b in frame.blocks]),
        vcov=pd.DataFrame(vcov, index=list(frame.fixed_names), columns=list(frame.fixed_names)),
        singular_terms=tuple(dict.fromkeys(zero)), _jacobian=full_jacobian, _varpar_cov=varpar_cov)


def emmeans(fit: MixedModel, data: pd.DataFrame, specs: str | list[str], by: str | list[str] | None = None,
            level: float = 0.95) -> pd.DataFrame:
    """Estimated marginal means of a fitted model, as ``emmeans::emmeans(m, ~ specs | by)``.

    The reference grid crosses every level of every factor of the fixed part; numeric covariates
    are held at their mean (emmeans' default). Each mean is the row of X of its cell, averaged with
    equal weights over the factors not in ``specs`` or ``by``; its SE and Satterthwaite df come from
    :meth:`MixedModel.contrast` (emmeans' ``lmer.df = "satterthwaite"``, which asks lmerTest).

    Parameters
    ----------
    fit : MixedModel
    data : DataFrame
        The data the model was fitted to.
    specs, by : str or list of str
        Factor columns of the fixed part.
    level : float
        Confidence level of ``lower``/``upper`` (t quantile with the row's df).

    Returns
    -------
    DataFrame
        One row per cell of ``specs`` × ``by``: the factor columns, ``emmean, se, df, lower, upper``.

    Raises
    ------
    ValueError
        When a column is not a factor of the fixed part, or the formula uses a transformation
        that depends on the data (``poly``, ``scale``), whose value on a reference grid is not
        defined this way.

    References
    ----------
    Searle SR, Speed FM, Milliken GA (1980). Population marginal means in the linear model: an
    alternative to least squares means. Am Stat 34(4):216-221. Lenth RV (2024). emmeans:
    Estimated Marginal Means, aka Least-Squares Means (R package).
    """
    rows, grid = _grid_rows(fit, data, specs, by)
    found = fit.contrast(pd.DataFrame(rows, columns=fit.fixed.index))
    half = stats.t.ppf(0.5 + level / 2, found["df"].to_numpy()) * found["se"].to_numpy()
    out = grid.reset_index(drop=True).copy()
    out["emmean"] = found["estimate"].to_numpy()
    out["se"] = found["se"].to_numpy()
    out["df"] = found["df"].to_numpy()
    out["lower"], out["upper"] = out["emmean"] - half, out["emmean"] + half
    return out


def emmeans_contrasts(fit: MixedModel, data: pd.DataFrame, specs: str, by: str | list[str] | None = None, *,
                      method: str = "pairwise", reference: int = 0, adjust: str = "holm") -> pd.DataFrame:
    """Contrasts of marginal means within each ``by`` group, as ``emmeans::contrast(emm, method, adjust=)``.

    ``method="pairwise"``: every pair (earlier level − later level, emmeans' order);
    ``"trt.vs.ctrl"``: each level − the ``reference`` level (index, 0 = the first). p-values are
    adjusted within each ``by`` group (``adjust``: ``holm``, ``bh``, ``bonferroni``, …, or
    ``none``), as emmeans does.

    Returns
    -------
    DataFrame
        ``by`` columns, ``contrast`` (``"a - b"``), ``estimate, se, df, t, p`` (adjusted).
    """
    from .multiplicity import adjust_pvalues

    by_list = [by] if isinstance(by, str) else list(by or [])
    rows, grid = _grid_rows(fit, data, [specs], by_list or None)
    grid = grid.reset_index(drop=True)
    out = []
    groups = grid.groupby(by_list, sort=False) if by_list else [((), grid)]
    for key, cells in groups:
        index = cells.index.to_numpy()
        labels = cells[specs].astype(str).tolist()
        if method == "pairwise":
            pairs = [(i, j) for i in range(len(index)) for j in range(i + 1, len(index))]
        elif method == "trt.vs.ctrl":
            pairs = [(i, reference) for i in range(len(index)) if i != reference]
        else:
            raise ValueError(f"method {method!r} is not supported; allowed: pairwise, trt.vs.ctrl")
        matrix = np.array([rows[index[i]] - rows[index[j]] for i, j in pairs])
        found = fit.contrast(pd.DataFrame(matrix, columns=fit.fixed.index))
        p = found["p"].to_numpy()
        if adjust != "none":
            p = np.asarray(adjust_pvalues(p, method=adjust))
        key = key if isinstance(key, tuple) else (key,)
        for (i, j), (_, row), p_adj in zip(pairs, found.iterrows(), p, strict=True):
            out.append({**dict(zip(by_list, key, strict=True)), "contrast": f"{labels[i]} - {labels[j]}",
                        "estimate": row["estimate"], "se": row["se"], "df": row["df"], "t": row["t"], "p": p_adj})
    return pd.DataFrame(out)


def _grid_rows(fit: MixedModel, data: pd.DataFrame, specs, by) -> tuple[np.ndarray, pd.DataFrame]:
    import itertools

    from ._lmm_formula import _as_r_factors
    from ._lmm_sparse import _design, _variables

    specs = [specs] if isinstance(specs, str) else list(specs)
    by = [by] if isinstance(by, str) else list(by or [])
    lhs, rhs = (part.strip() for part in fit.formula.split("~"))
    fixed_chunks, _ = split_random(rhs, fit.formula)
    fixed_rhs = " + ".join(fixed_chunks) if fixed_chunks else "1"
    if re.search(r"\b(poly|scale)\s*\(", fixed_rhs):
        raise ValueError(f"marginal means of {fit.formula!r}: poly() and scale() depend on the data, so their "
                         "value on a reference grid is not defined here; use plain columns")
    variables = _variables(fixed_rhs)
    frame = _as_r_factors(data[variables + _variables(lhs)].dropna().reset_index(drop=True), skip="")
    factors = [v for v in variables if isinstance(frame[v].dtype, pd.CategoricalDtype)]
    for name in specs + by:
        if name not in factors:
            raise ValueError(f"{name!r} is not a factor of the fixed part of {fit.formula!r}; factors: {factors}")
    numeric = {v: float(frame[v].mean()) for v in variables if v not in factors}
    levels = {f: list(frame[f].cat.categories) for f in factors}
    cells = pd.DataFrame(list(itertools.product(*[levels[f] for f in factors])), columns=factors)
    for name, value in numeric.items():
        cells[name] = value
    for name in _variables(lhs):
        cells[name] = frame[name].iloc[0]
    combined = pd.concat([frame, cells[frame.columns]], ignore_index=True)
    for f in factors:
        combined[f] = pd.Categorical(combined[f], categories=levels[f])
    matrix, names, _ = _design(fixed_rhs, combined)
    if list(names) != list(fit.fixed.index):
        raise ValueError(f"the data do not give the fitted model's terms {list(fit.fixed.index)} (got {list(names)}); "
                         "pass the data the model was fitted to")
    cell_rows = matrix[len(frame):]
    keys = specs + by
    grouped = cells.assign(_row=range(len(cells))).groupby(keys, sort=False, observed=True)["_row"].apply(list)
    grid = grouped.index.to_frame(index=False)
    rows = np.array([cell_rows[members].mean(axis=0) for members in grouped])
    for name in keys:
        grid[name] = pd.Categorical(grid[name], categories=levels[name])
    # emmeans' order: by groups in level order, the first spec varying fastest within them
    order = grid.sort_values(by + specs[::-1], kind="stable").index.to_numpy()
    return rows[order], grid.loc[order].reset_index(drop=True)


def _kr_state(fit: MixedModel, data: pd.DataFrame):
    from ._lmm_kr import kenward_roger
    from ._lmm_sparse import build_sparse_frame, relative_factor

    if not fit.reml:
        raise ValueError("Kenward-Roger is defined for REML fits; refit with reml=True")
    frame = build_sparse_frame(fit.formula, data)
    if list(frame.fixed_names) != list(fit.fixed.index):
        raise ValueError("the data do not give the fitted model's terms; pass the data the model was fitted to")
    sigma2 = float(fit.varcomp["vcov"].iloc[-1])
    theta = np.asarray(fit.theta)
    z = frame.z.tocsc()
    blocks_z, covariances = [], []
    for block in frame.blocks:
        t = relative_factor(theta, block)
        covariances.append(sigma2 * (t @ t.T))
        columns = []
        for a in range(block.k):
            picks = block.offset + np.arange(block.n_levels) * block.k + a
            columns.append(z[:, picks].toarray())
        blocks_z.append(columns)
    return kenward_roger(frame.fixed_design, blocks_z, covariances, sigma2)


def kenward_roger(fit: MixedModel, data: pd.DataFrame) -> pd.DataFrame:
    """The fixed-effect table with Kenward–Roger SEs and df, as ``summary(m, ddf = "Kenward-Roger")``.

    Parameters
    ----------
    fit : MixedModel
        A REML fit.
    data : DataFrame
        The data it was fitted to (at most 5,000 observations: the method needs the dense n × n
        marginal covariance, as pbkrtest does).

    Returns
    -------
    DataFrame
        Index ``term``; ``estimate, se`` (from the adjusted vcov Φ_A), ``df``, ``t``, ``p``.

    References
    ----------
    Kenward MG, Roger JH (1997). Biometrics 53(3):983-997. Halekoh U, Højsgaard S (2014). J Stat
    Softw 59(9):1-32 (pbkrtest).
    """
    state = _kr_state(fit, data)
    p = len(fit.fixed)
    beta = fit.fixed["estimate"].to_numpy()
    se = np.sqrt(np.diag(state.phi_adjusted))
    df = np.array([state.ddf(np.eye(p)[j])[0] for j in range(p)])
    t = beta / se
    return pd.DataFrame({"estimate": beta, "se": se, "df": df, "t": t, "p": 2 * stats.t.sf(np.abs(t), df)},
                        index=fit.fixed.index)


def kenward_roger_test(fit: MixedModel, data: pd.DataFrame, contrast) -> dict:
    """The Kenward–Roger F test of a contrast = 0, as ``pbkrtest::KRmodcomp`` / lmerTest's anova with KR.

    Returns ``num_df, den_df, F`` (the scaled statistic) and ``p``.
    """
    matrix, _ = fit._contrast_matrix(contrast)
    state = _kr_state(fit, data)
    q = np.linalg.matrix_rank(matrix)
    beta = fit.fixed["estimate"].to_numpy()
    estimate = matrix @ beta
    unscaled = float(estimate @ np.linalg.solve(matrix @ state.phi_adjusted @ matrix.T, estimate) / q)
    den_df, scaling = state.ddf(matrix)
    f_value = scaling * unscaled
    return {"num_df": int(q), "den_df": den_df, "F": f_value, "p": float(stats.f.sf(f_value, q, den_df))}


def anova(fit: MixedModel, data: pd.DataFrame, ddf: str = "satterthwaite") -> pd.DataFrame:
    """Type III F tests of each fixed-effect term, as ``lmerTest::anova(m, type = 3)``.

    A type III hypothesis tests a term averaged over the levels of the factors it interacts with,
    whatever the coding (SAS's type III; Goodnight 1980). It is written here in the model's
    treatment-coded coefficients by re-expressing the fixed part with sum-to-zero contrasts for
    every factor (numeric covariates as they are): with X_sum = X T⁻¹ on the same column space,
    the term's coefficients of the sum-coded model are T β, so its hypothesis is L_sum T β = 0.
    Each is then tested by :meth:`MixedModel.test` (Satterthwaite, lmerTest's default) or
    :func:`kenward_roger_test` (``ddf="kenward-roger"``).

    Parameters
    ----------
    fit : MixedModel
    data : DataFrame
        The data the model was fitted to.
    ddf : {"satterthwaite", "kenward-roger"}

    Returns
    -------
    DataFrame
        Indexed by R's term labels (``week``, ``arm``, ``week:arm``): ``num_df, den_df, F, p``.

    References
    ----------
    Goodnight JH (1980). Tests of hypotheses in fixed effects linear models. Commun Stat Theory
    Methods 9(2):167-180. Kuznetsova A, Brockhoff PB, Christensen RHB (2017). lmerTest Package.
    J Stat Softw 82(13):1-26.
    """
    from formulaic import model_matrix

    from ._lmm_formula import _as_r_factors
    from ._lmm_sparse import _design, _variables

    if ddf not in ("satterthwaite", "kenward-roger"):
        raise ValueError(f"ddf {ddf!r} is not supported; allowed: satterthwaite, kenward-roger")
    lhs, rhs = (part.strip() for part in fit.formula.split("~"))
    fixed_chunks, _ = split_random(rhs, fit.formula)
    fixed_rhs = " + ".join(fixed_chunks) if fixed_chunks else "1"
    variables = _variables(fixed_rhs)
    frame = _as_r_factors(data[variables + _variables(lhs)].dropna().reset_index(drop=True), skip="")
    factors = [v for v in variables if isinstance(frame[v].dtype, pd.CategoricalDtype)]
    treatment, names, _ = _design(fixed_rhs, frame)
    if list(names) != list(fit.fixed.index):
        raise ValueError("the data do not give the fitted model's terms; pass the data the model was fitted to")
    summed_rhs = fixed_rhs
    for factor in factors:
        summed_rhs = re.sub(rf"(?<![\w.]){re.escape(factor)}(?![\w.(])", f"C({factor}, contr.sum)", summed_rhs)
    summed = model_matrix(f"~ {summed_rhs}", frame, na_action="raise")
    # treatment = summed @ T  ⇒  β_sum = T β
    transform, *_ = np.linalg.lstsq(np.asarray(summed, dtype=float), treatment, rcond=None)
    rows = {}
    for term, indices in summed.model_spec.term_indices.items():
        label = re.sub(r"C\(([\w.]+), contr\.sum\)", r"\1", str(term))
        if label == "1":
            continue
        matrix = transform[indices]
        found = fit.test(matrix) if ddf == "satterthwaite" else kenward_roger_test(fit, data, matrix)
        rows[label] = found
    return pd.DataFrame.from_dict(rows, orient="index")[["num_df", "den_df", "F", "p"]].rename_axis("term")


def confint(fit: MixedModel, data: pd.DataFrame, level: float = 0.95, method: str = "profile",
            parm: list[str] | None = None) -> pd.DataFrame:
    """Confidence intervals of the variance components and fixed effects, as lme4's ``confint``.

    ``method="profile"`` (the default, R's): profile-likelihood intervals, as
    ``confint(m, method = "profile", oldNames = FALSE)``. ``method="wald"``: fixed effects
    β̂ ± z·SE, as ``method = "Wald"``; for the variance components a Wald interval on the SD scale
    from the Hessian of the fitted criterion in (SD, correlation, σ) — our addition: lme4 gives NA
    there. Profile is the one to report; the Wald interval of an SD near 0 is poor.

    Parameters
    ----------
    fit : MixedModel
        Any model :func:`mixedlm` fits (one term, several, crossed, nested, ``||``, ``mm()``).
    data : DataFrame
        The data it was fitted to (the model is rebuilt from it, as :func:`kenward_roger`).
    level : float, default 0.95
    method : {"profile", "wald"}
    parm : list of str, optional
        Only these rows (names as in the result); default all.

    Returns
    -------
    DataFrame
        Index: lme4's row names — per random-effects term ``sd_(Intercept)|Subject``,
        ``cor_Days.(Intercept)|Subject``, ``sd_Days|Subject`` (column by column of the covariance's
        lower triangle), then ``sigma``, then the fixed effects (``(Intercept)``, ``Days``).
        Columns ``estimate`` (the fitted model's: REML for a REML fit), ``lower``, ``upper``. The
        DataFrame's ``attrs["notes"]`` lists remarks in words (an undefined correlation, an ML
        optimum improved on while profiling).

    Raises
    ------
    ValueError
        Unknown ``method`` or ``parm``, a level outside (0, 1), or data that do not give the fitted
        model (its fixed-effect terms or its log-likelihood at the fitted θ).

    Notes
    -----
    With ψ = (SDs, correlations, σ) and f(ψ) the ML deviance with β profiled out, the profile of
    ψ_j is ζ(v) = sign(v − ψ̂_j) √(min_{ψ_j = v} f(ψ) − f(ψ̂)) (ψ̂ the ML estimate); the
    interval is {v : |ζ(v)| ≤ z_{(1+level)/2}}, its ends found by root finding on ζ, each
    evaluation re-optimising the other parameters. For β_j the other coefficients and σ are
    profiled out analytically and θ is re-optimised. As lme4, the profile is taken of the ML
    deviance also for a REML fit (lme4's ``profile`` refits by ML), so a REML fit's interval is
    centred on the ML estimate. An SD whose profile has not reached the cutoff at 0 gets the lower
    end 0 (lme4's answer at a boundary); a correlation likewise ±1 (also lme4's answer). lme4 interpolates a spline
    through a grid of ζ values, so its ends agree with these to about 3e-4 relative, 2e-3 for a
    correlation next to ±1 (measured in ``tests/stats/test_confint.py``). Formulas:
    :mod:`alliance.stats._lmm_profile`.

    References
    ----------
    Bates D, Mächler M, Bolker B, Walker S (2015). Fitting Linear Mixed-Effects Models Using
    lme4. J Stat Softw 67(1):1-48 (the profiled deviance; profile ζ and confidence intervals).
    Bates DM (2010). lme4: Mixed-effects modeling with R (book draft), chapter 1 (profile ζ
    plots). lme4's documentation of ``profile.merMod`` and ``confint.merMod`` (ζ on the "sdcor"
    scale; REML models refitted by ML; a spline through the ζ grid; 0 at a boundary).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alliance.stats.mixed import confint, mixedlm
    >>> rng = np.random.default_rng(1)
    >>> participant = np.repeat(np.arange(20), 5)
    >>> alliance = 4 + rng.normal(0, 0.5, 20)[participant] + rng.normal(0, 0.3, 100)
    >>> data = pd.DataFrame({"alliance": alliance, "participant": participant})
    >>> fit = mixedlm("alliance ~ 1 + (1 | participant)", data)
    >>> table = confint(fit, data)
    >>> table.index.tolist()
    ['sd_(Intercept)|participant', 'sigma', '(Intercept)']
    >>> bool((table["lower"] < table["estimate"]).all() and (table["estimate"] < table["upper"]).all())
    True
    """
    from ._lmm_profile import (
        CovarianceTerm,
        Criterion,
        parameter_names,
        profile_intervals,
        psi_of,
        wald_intervals,
    )

    if method not in ("profile", "wald"):
        raise ValueError(f"method {method!r} is not supported; allowed: profile, wald")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    with threadpool_limits(limits=1, user_api="blas"):
        if _needs_general_fitter(fit.formula):
            frame = build_sparse_frame(fit.formula, data)
            fixed_names = list(frame.fixed_names)
            terms = [CovarianceTerm(b.term.name, tuple(b.names), b.theta_start) for b in frame.blocks]
            lower = frame.lower

            def make(reml):
                return SparseDeviance(frame, reml=reml)

            def optimum(deviance):
                return optimize_theta(deviance, lower)[0]
        else:
            frame = build_model_frame(fit.formula, data)
            fixed_names = list(frame.fixed_names)
            terms = [CovarianceTerm(frame.group_name, tuple(frame.random_names), 0)]

            def make(reml):
                return ProfiledDeviance(frame.response, frame.fixed_design, frame.random_design,
                                        frame.group_starts, reml=reml)
            lower = np.where(make(fit.reml).is_diagonal, 0.0, -np.inf)

            def optimum(deviance):
                return _optimize_theta(deviance)[0]
        if fixed_names != list(fit.fixed.index):
            raise ValueError("the data do not give the fitted model's terms; pass the data the model was fitted to")
        theta = np.asarray(fit.theta, dtype=float)
        fitted = Criterion(make(fit.reml))
        found = -0.5 * fitted.profiled(theta)
        if not abs(found - fit.loglik) <= 1e-6 * max(1.0, abs(fit.loglik)):
            raise ValueError(f"the data give log-likelihood {found:.10g} at the fitted θ, the model has "
                             f"{fit.loglik:.10g}; pass the data the model was fitted to")
        sigma = fitted.sigma(theta)
        wald = wald_intervals(fitted, terms, theta, sigma, level) if method == "wald" else None
        estimates = pd.concat([pd.Series(psi_of(theta, sigma, terms), index=parameter_names(terms)),
                               fit.fixed["estimate"]])
        wanted = list(estimates.index) if parm is None else list(parm)
        unknown = [p for p in wanted if p not in estimates.index]
        if unknown:
            raise ValueError(f"parm names {unknown}, which are not parameters of the model; allowed: "
                             f"{list(estimates.index)}")
        notes: list[str] = []
        if method == "wald":
            z = float(stats.norm.ppf(0.5 + level / 2.0))
            half = z * fit.fixed["se"]
            table = pd.concat([wald[["lower", "upper"]],
                               pd.DataFrame({"lower": fit.fixed["estimate"] - half,
                                             "upper": fit.fixed["estimate"] + half})]).loc[wanted]
            if wald["se"].isna().any():
                notes.append("no Wald SE for " + ", ".join(wald.index[wald["se"].isna()])
                             + ": undefined there (a correlation of a zero SD) or a flat direction of the Hessian")
        else:
            ml = Criterion(make(False)) if fit.reml else fitted
            ml_theta = optimum(ml.deviance) if fit.reml else theta
            table, notes = profile_intervals(ml, terms, ml_theta, lower, fixed_names, level, wanted)
    out = pd.DataFrame({"estimate": estimates.loc[wanted].to_numpy(dtype=float),
                        "lower": table["lower"].to_numpy(dtype=float),
                        "upper": table["upper"].to_numpy(dtype=float)},
                       index=pd.Index(wanted, name="parameter"))
    out.attrs["notes"] = list(notes)
    return out

