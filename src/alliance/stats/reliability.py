"""Internal-consistency reliability of a multi-item scale: Cronbach's alpha and McDonald's omega.

Alpha follows ``psych::alpha`` exactly (pairwise-complete covariances, reverse keying, raw and
standardized alpha) so that a WAI-SR or MEQ30 reliability reported here equals the one a
psychologist gets in R. Omega total comes from a one-factor maximum-likelihood factor analysis,
fitted here with scipy (the same objective and parametrisation as R's ``factanal``) because no
well-kept Python library fits it on a pairwise correlation matrix without pulling in a heavy
dependency.

Missing data follows psych 2.2.9 by default: alpha's covariances, and omega's correlations, come
from the rows where both items were answered (``cov``/``cor(x, use = "pairwise")``), and alpha's
Feldt interval counts every row of the data (psych's ``nsub <- dim(x)[1]``, rows without any answer
included). The conventions of alliance before issue 13 stay available as options:
``omega(..., missing="cov2cor", total="model")`` and ``cronbach_alpha(..., interval_n="answered")``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ._inputs import check_confidence, numeric_columns
from .results import Result

__all__ = ["CronbachAlpha", "Omega", "cronbach_alpha", "omega"]

MINIMUM_UNIQUENESS = 0.005  # lower bound on uniquenesses, as R's factanal (Heywood cases)


@dataclass(frozen=True)
class CronbachAlpha(Result):
    """Result of :func:`cronbach_alpha`.

    Attributes
    ----------
    alpha : float
        Raw alpha from the covariance matrix (psych ``raw_alpha``).
    std_alpha : float
        Standardized alpha from the correlation matrix (psych ``std.alpha``).
    ci_low, ci_high : float
        Feldt (1965) confidence interval of ``alpha``.
    n : int
        The n of the interval: every row of ``items`` (psych), or with ``interval_n="answered"``
        the rows with at least one answered item.
    n_complete : int
        Rows with every item answered.
    k : int
        Number of items.
    reverse : tuple of str
        Items that were reverse-keyed.
    confidence : float
        Confidence level of the interval.
    """

    alpha: float
    std_alpha: float
    ci_low: float
    ci_high: float
    n: int
    n_complete: int
    k: int
    reverse: tuple[str, ...] = ()
    confidence: float = 0.95


@dataclass(frozen=True, eq=False)
class Omega(Result):
    """Result of :func:`omega`.

    Attributes
    ----------
    omega_total : float
        McDonald's omega total of the single-factor model (psych's ``omega.tot`` by default).
    omega_hierarchical : float
        psych's ``omega_h`` of the one-factor solution, :math:`(\\sum_j |\\lambda_j|)^2 / V_t`
        (psych warns it is not meaningful for one factor; reported to match its output).
    n : int
        Rows with at least one answered item.
    k : int
        Number of items.
    loadings : DataFrame
        Indexed by ``item``; columns ``loading`` (standardized loading λ) and ``uniqueness`` (ψ).
    method : str
        ``"ml"``: one-factor maximum likelihood on the pairwise correlation matrix.
    converged : bool
        Whether the optimizer reported convergence.
    missing, total : str
        The conventions used (see :func:`omega`).
    """

    omega_total: float
    n: int
    k: int
    loadings: pd.DataFrame
    method: str = "ml"
    converged: bool = True
    omega_hierarchical: float = float("nan")
    missing: str = "pairwise"
    total: str = "psych"


def _item_matrix(
    items: pd.DataFrame, reverse: Iterable[str]
) -> tuple[np.ndarray, list[str], tuple[str, ...]]:
    """Validate the items, drop empty rows and reverse-key the listed items (max + min − x)."""
    if not isinstance(items, pd.DataFrame):
        raise ValueError(
            f"items must be a pandas DataFrame with one column per item; got {type(items).__name__}"
        )
    names = [str(column) for column in items.columns]
    if len(names) < 2:
        raise ValueError(f"need at least 2 items; got {len(names)}")
    reversed_items = (reverse,) if isinstance(reverse, str) else tuple(reverse)
    unknown = [item for item in reversed_items if item not in items.columns]
    if unknown:
        raise ValueError(f"reverse-keyed items {unknown} are not columns of items; columns: {names}")
    frame = numeric_columns(items, list(items.columns), what="items")
    values = frame.to_numpy()
    values = values[~np.isnan(values).all(axis=1)]
    if values.shape[0] == 0:
        raise ValueError("items contain no answers (every value is missing)")
    if reversed_items:
        # psych::alpha: x <- max(x) + min(x) - x, with min and max over the whole item matrix
        scale_sum = np.nanmax(values) + np.nanmin(values)
        flip = np.isin(items.columns, reversed_items)
        values[:, flip] = scale_sum - values[:, flip]
    return values, names, reversed_items


def _pairwise_covariance(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Covariance matrix from pairwise-complete observations, as R's ``cov(x, use = "pairwise")``.

    Each entry uses the rows where both items are present, with means over those rows.
    """
    present = ~np.isnan(values)
    # centring by the column means first only improves numerical accuracy (covariance is shift-invariant)
    centred = np.where(present, values - np.nanmean(values, axis=0), 0.0)
    mask = present.astype(float)
    pair_counts = mask.T @ mask
    if (pair_counts < 2).any():
        first, second = np.argwhere(pair_counts < 2)[0]
        raise ValueError(
            f"items {names[first]!r} and {names[second]!r} are answered together in fewer than 2 rows; "
            "their covariance is undefined"
        )
    sums = centred.T @ mask  # sums[i, j]: sum of item i over rows where item j is present too
    cross = centred.T @ centred
    covariance = (cross - sums * sums.T / pair_counts) / (pair_counts - 1)
    zero_variance = [name for name, variance in zip(names, np.diag(covariance), strict=True) if variance <= 0]
    if zero_variance:
        raise ValueError(
            f"{'item' if len(zero_variance) == 1 else 'items'} {', '.join(map(str, zero_variance))} "
            f"{'has' if len(zero_variance) == 1 else 'have'} zero variance (every answer the same); "
            "remove them before computing reliability"
        )
    return covariance


def _pairwise_correlation(values: np.ndarray, names: list[str]) -> np.ndarray:
    """R's ``cor(x, use = "pairwise")``: each r_ij is Pearson's r on the rows where both items are present.

    Unlike ``cov2cor`` of the pairwise covariances, the standard deviations of r_ij use the same
    rows as its covariance, so every entry is a correlation of one data set.
    """
    _pairwise_covariance(values, names)  # the same checks (shared rows, zero variance)
    present = ~np.isnan(values)
    k = values.shape[1]
    correlation = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            both = present[:, i] & present[:, j]
            a, b = values[both, i], values[both, j]
            a, b = a - a.mean(), b - b.mean()
            denominator = np.sqrt((a @ a) * (b @ b))
            if denominator == 0:
                raise ValueError(
                    f"items {names[i]!r} and {names[j]!r} do not vary on the rows where both are answered; "
                    "their correlation is undefined"
                )
            correlation[i, j] = correlation[j, i] = (a @ b) / denominator
    return correlation


def _to_correlation(covariance: np.ndarray) -> np.ndarray:
    scale = 1.0 / np.sqrt(np.diag(covariance))
    return covariance * np.outer(scale, scale)


def cronbach_alpha(
    items: pd.DataFrame,
    reverse: Iterable[str] = (),
    confidence: float = 0.95,
    *,
    interval_n: Literal["rows", "answered"] = "rows",
) -> CronbachAlpha:
    """Cronbach's alpha of a scale, raw and standardized, with a Feldt confidence interval.

    Parameters
    ----------
    items : DataFrame
        One column per item, one row per response; NaN marks an unanswered item.
    reverse : iterable of str, default ()
        Columns to reverse-key before scoring.
    confidence : float, default 0.95
        Confidence level of the Feldt interval.
    interval_n : {"rows", "answered"}, default "rows"
        The n of the Feldt interval: ``"rows"`` counts every row of ``items``, as psych 2.2.9
        (``alpha`` calls ``alpha.ci(raw_alpha, nsub, nvar)`` with ``nsub <- dim(x)[1]``);
        ``"answered"`` counts the rows with at least one answer (alliance before issue 13).

    Returns
    -------
    CronbachAlpha
        ``alpha, std_alpha, ci_low, ci_high, n, n_complete, k``.

    Notes
    -----
    As ``psych::alpha(items, keys = reverse)``:

    * reverse-keyed items become :math:`\\max + \\min - x`, with the observed minimum and maximum
      over *all* items (psych's rule); for the covariances this only flips their sign.
    * :math:`C` is the pairwise-complete covariance matrix (rows with missing answers are kept).
    * raw :math:`\\alpha = \\frac{k}{k-1}\\left(1 - \\frac{\\operatorname{tr} C}{\\sum_{ij} C_{ij}}\\right)`;
      standardized :math:`\\alpha_s = \\frac{k}{k-1}\\left(1 - \\frac{k}{\\sum_{ij} R_{ij}}\\right)` with
      :math:`R` the correlation matrix of the same :math:`C`.

    The interval is Feldt's (1965), from :math:`(1-\\alpha)/(1-\\hat\\alpha) \\sim F(n-1, (n-1)(k-1))`:
    :math:`[1 - (1-\\hat\\alpha) F_{1-q},\\; 1 - (1-\\hat\\alpha) F_{q}]`, :math:`q = (1-c)/2`, with n
    every row of the data frame as psych (``interval_n="rows"``), or the rows with at least one
    answer (``interval_n="answered"``); the two differ only when some rows are entirely empty.
    psych drops zero-variance items with a warning; here they raise ``ValueError``.

    References
    ----------
    Cronbach LJ (1951). Coefficient alpha and the internal structure of tests. *Psychometrika*
    16(3), 297–334.
    Feldt LS (1965). The approximate sampling distribution of Kuder–Richardson reliability
    coefficient twenty. *Psychometrika* 30(3), 357–370.
    Revelle W (2022). psych: Procedures for Psychological, Psychometric, and Personality
    Research. R package version 2.2.9.

    Examples
    --------
    >>> import pandas as pd
    >>> from alliance.stats import cronbach_alpha
    >>> items = pd.DataFrame({"q1": [1, 2, 3, 4, 5], "q2": [2, 2, 3, 5, 4], "q3": [5, 4, 3, 2, 2]})
    >>> result = cronbach_alpha(items, reverse=["q3"])
    >>> round(result.alpha, 4), result.k
    (0.9636, 3)
    """
    level = check_confidence(confidence)
    if interval_n not in ("rows", "answered"):
        raise ValueError(f"interval_n must be 'rows' (psych) or 'answered'; got {interval_n!r}")
    values, names, reversed_items = _item_matrix(items, reverse)
    covariance = _pairwise_covariance(values, names)
    k = len(names)
    n = len(items) if interval_n == "rows" else values.shape[0]
    n_complete = int((~np.isnan(values)).all(axis=1).sum())
    spearman_brown = k / (k - 1.0)
    alpha = spearman_brown * (1.0 - np.trace(covariance) / covariance.sum())
    std_alpha = spearman_brown * (1.0 - k / _to_correlation(covariance).sum())
    if n > 1:
        tail = (1.0 - level) / 2.0
        df_between, df_within = n - 1, (n - 1) * (k - 1)
        ci_low = 1.0 - (1.0 - alpha) * stats.f.ppf(1.0 - tail, df_between, df_within)
        ci_high = 1.0 - (1.0 - alpha) * stats.f.ppf(tail, df_between, df_within)
    else:
        ci_low = ci_high = float("nan")
    return CronbachAlpha(
        alpha=float(alpha),
        std_alpha=float(std_alpha),
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        n=int(n),
        n_complete=n_complete,
        k=k,
        reverse=reversed_items,
        confidence=level,
    )


def _scaled_eigen(uniqueness: np.ndarray, correlation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors of Ψ^{-1/2} R Ψ^{-1/2}."""
    scale = 1.0 / np.sqrt(uniqueness)
    eigenvalues, eigenvectors = np.linalg.eigh(correlation * np.outer(scale, scale))
    return eigenvalues[::-1], eigenvectors[:, ::-1]


def _one_factor_loadings(uniqueness: np.ndarray, correlation: np.ndarray) -> np.ndarray:
    """ML loadings given the uniquenesses: λ = Ψ^{1/2} v₁ √max(e₁ − 1, 0) (Lawley & Maxwell 1971)."""
    eigenvalues, eigenvectors = _scaled_eigen(uniqueness, correlation)
    return np.sqrt(uniqueness) * eigenvectors[:, 0] * np.sqrt(max(eigenvalues[0] - 1.0, 0.0))


def _discrepancy(uniqueness: np.ndarray, correlation: np.ndarray) -> float:
    """ML discrepancy minimised over Ψ with the loadings concentrated out (factanal's objective)."""
    eigenvalues, _ = _scaled_eigen(uniqueness, correlation)
    rest = eigenvalues[1:]
    return float(-np.sum(np.log(rest) - rest) - 1.0 + correlation.shape[0])


def _discrepancy_gradient(uniqueness: np.ndarray, correlation: np.ndarray) -> np.ndarray:
    loadings = _one_factor_loadings(uniqueness, correlation)
    residual = loadings**2 + uniqueness - np.diag(correlation)
    return residual / uniqueness**2


def _fit_one_factor(correlation: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """One-factor ML factor analysis of a correlation matrix: loadings, uniquenesses, converged."""
    k = correlation.shape[0]
    smallest_eigenvalue = float(np.linalg.eigvalsh(correlation)[0])
    if smallest_eigenvalue <= 1e-10:
        # pairwise-complete correlations need not form a positive definite matrix
        raise ValueError(
            "the item correlation matrix is not positive definite (smallest eigenvalue "
            f"{smallest_eigenvalue:.3g}); omega cannot be estimated by maximum likelihood"
        )
    precision_diagonal = np.diag(np.linalg.inv(correlation))
    start = np.clip((1.0 - 0.5 / k) / precision_diagonal, MINIMUM_UNIQUENESS, 1.0)
    fit = optimize.minimize(
        _discrepancy,
        start,
        args=(correlation,),
        jac=_discrepancy_gradient,
        method="L-BFGS-B",
        bounds=[(MINIMUM_UNIQUENESS, 1.0)] * k,
        # ftol = 0: stop on the projected gradient only, so an exact one-factor matrix is
        # recovered to ~1e-13 rather than to the default relative-reduction tolerance (~1e-8)
        options={"ftol": 0.0, "gtol": 1e-14, "maxiter": 5000},
    )
    uniqueness = fit.x
    gradient = _discrepancy_gradient(uniqueness, correlation)
    at_lower = uniqueness <= MINIMUM_UNIQUENESS * (1 + 1e-9)
    at_upper = uniqueness >= 1.0 - 1e-12
    projected = np.where((at_lower & (gradient > 0)) | (at_upper & (gradient < 0)), 0.0, gradient)
    # L-BFGS-B may end in a line-search stop at machine precision; judge the optimum itself
    converged = bool(fit.success or np.max(np.abs(projected)) < 1e-6)
    loadings = _one_factor_loadings(uniqueness, correlation)
    if loadings.sum() < 0:  # the sign of a factor is arbitrary; point it along the scale
        loadings = -loadings
    return loadings, uniqueness, converged


def omega(
    items: pd.DataFrame,
    reverse: Iterable[str] = (),
    *,
    missing: Literal["pairwise", "cov2cor"] = "pairwise",
    total: Literal["psych", "model"] = "psych",
) -> Omega:
    """McDonald's omega total from a one-factor maximum-likelihood factor analysis.

    Parameters
    ----------
    items : DataFrame
        One column per item (at least 3), one row per response; NaN marks an unanswered item.
    reverse : iterable of str, default ()
        Columns to reverse-key first (max + min − x over all items, as :func:`cronbach_alpha`).
    missing : {"pairwise", "cov2cor"}, default "pairwise"
        How the correlation matrix treats missing answers. ``"pairwise"``: R's
        ``cor(x, use = "pairwise")``, what ``psych::omega`` uses on raw data (psych 2.2.9,
        ``omega``: ``m <- cor(m, use = "pairwise")``). ``"cov2cor"``: ``cov2cor`` of the pairwise
        covariances (alliance before issue 13).
    total : {"psych", "model"}, default "psych"
        The omega-total formula. ``"psych"``: :math:`1 - \\sum_j u^2_j / V_t` with
        :math:`u^2_j = 1 - \\lambda_j^2` and :math:`V_t` the sum of the observed correlation matrix,
        items flipped to positive loadings (psych's ``omegah``: ``om.tot <- (Vt - uniq)/Vt``).
        ``"model"``: McDonald's model-implied :math:`(\\sum\\lambda)^2 / ((\\sum\\lambda)^2 + \\sum\\psi)`
        (alliance before issue 13).

    Returns
    -------
    Omega
        ``omega_total, omega_hierarchical, n, k, loadings, method, converged``.

    Notes
    -----
    The pairwise-complete correlation matrix :math:`R` is fitted by :math:`R \\approx \\lambda\\lambda^T + \\Psi`
    with maximum likelihood, as R's ``factanal(factors = 1)``: for given uniquenesses
    :math:`\\Psi` the loadings are :math:`\\lambda = \\Psi^{1/2} v_1 \\sqrt{e_1 - 1}` from the leading
    eigenpair of :math:`\\Psi^{-1/2} R \\Psi^{-1/2}`, and :math:`\\Psi` minimises
    :math:`-\\sum_{j \\ge 2}(\\log e_j - e_j) - 1 + k` by L-BFGS-B with :math:`0.005 \\le \\psi_j \\le 1`.
    Then

    .. math:: \\omega_t = 1 - \\frac{\\sum_j (1 - \\lambda_j^2)}{V_t}, \\quad
              \\omega_h = \\frac{(\\sum_j |\\lambda_j|)^2}{V_t}, \\quad V_t = \\sum_{ij} s_i s_j R_{ij},

    :math:`s_j` the sign of :math:`\\lambda_j`: ``psych::omega(x, nfactors = 1, fm = "ml")``'s
    ``omega.tot`` and ``omega_h`` (its default ``fm = "minres"`` is a different factoring). With
    ``total="model"``, :math:`\\omega_t = \\omega_h = (\\sum_j \\lambda_j)^2 / ((\\sum_j \\lambda_j)^2 +
    \\sum_j \\psi_j)`, McDonald's (1999) model-implied form.

    References
    ----------
    McDonald RP (1999). *Test Theory: A Unified Treatment*. Mahwah, NJ: Erlbaum.
    Lawley DN, Maxwell AE (1971). *Factor Analysis as a Statistical Method*, 2nd ed. London:
    Butterworths.
    Jöreskog KG (1967). Some contributions to maximum likelihood factor analysis.
    *Psychometrika* 32(4), 443–482.
    Revelle W (2022). psych: Procedures for Psychological, Psychometric, and Personality
    Research. R package version 2.2.9 (``omega``, ``omegah``, ``schmid``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alliance.stats import omega
    >>> rng = np.random.default_rng(1)
    >>> factor = rng.normal(size=500)
    >>> items = pd.DataFrame({f"q{j}": 0.7 * factor + rng.normal(scale=0.7, size=500) for j in range(1, 5)})
    >>> result = omega(items)
    >>> result.k, round(result.omega_total, 2)
    (4, 0.77)
    """
    values, names, _ = _item_matrix(items, reverse)
    k = len(names)
    if k < 3:
        raise ValueError(f"omega needs at least 3 items to identify a one-factor model; got {k}")
    if missing not in ("pairwise", "cov2cor"):
        raise ValueError(f"missing must be 'pairwise' (psych) or 'cov2cor'; got {missing!r}")
    if total not in ("psych", "model"):
        raise ValueError(f"total must be 'psych' or 'model'; got {total!r}")
    if missing == "pairwise":
        correlation = _pairwise_correlation(values, names)
    else:
        correlation = _to_correlation(_pairwise_covariance(values, names))
    loadings, uniqueness, converged = _fit_one_factor(correlation)
    if total == "psych":
        signs = np.where(loadings < 0, -1.0, 1.0)   # psych's flip = TRUE
        variance_total = float(signs @ correlation @ signs)
        omega_total = 1.0 - float(np.sum(1.0 - loadings**2)) / variance_total
        omega_hierarchical = float(np.abs(loadings).sum() ** 2) / variance_total
    else:
        loading_sum = loadings.sum()
        omega_total = omega_hierarchical = loading_sum**2 / (loading_sum**2 + uniqueness.sum())
    table = pd.DataFrame({"loading": loadings, "uniqueness": uniqueness}, index=pd.Index(names, name="item"))
    return Omega(
        omega_total=float(omega_total), n=int(values.shape[0]), k=k, loadings=table, converged=converged,
        omega_hierarchical=float(omega_hierarchical), missing=missing, total=total,
    )
