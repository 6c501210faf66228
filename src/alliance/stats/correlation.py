"""Pearson and Spearman correlation, and partial correlation, with p-values as R reports them.

Written here rather than taken from scipy because the product promises R's numbers: R's
``cor.test`` gives Spearman p-values from the exact null distribution (n ≤ 9) or the Edgeworth
series of Best & Roberts (1975, algorithm AS 89) when there are no ties, where scipy uses a
t approximation; and R's Fisher-z interval is not part of scipy's Spearman result.

Missing data: :func:`correlation` uses pairwise-complete observations (a pair is dropped when
either value is missing); :func:`partial_correlation` uses listwise deletion over x, y and all
covariates, as ``ppcor::pcor.test`` requires complete data.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats

from ._inputs import check_confidence, check_method, complete_pairs, numeric_columns
from .missing import FimlCorrelationMatrix, fiml_correlations
from .results import Result

__all__ = ["Correlation", "PartialCorrelation", "correlation", "correlation_matrix", "partial_correlation"]

METHODS = ("pearson", "spearman")
SPEARMAN_VARIANCE_FACTOR = 1.06  # Fieller, Hartley & Pearson (1957): var(z_rho) ≈ 1.06 / (n − 3)
EXACT_SPEARMAN_LIMIT = 1290  # R's cor.test: AS 89 for n ≤ 1290 (n(n² − 1) fits an int)
ENUMERATION_LIMIT = 9  # R's prho.c enumerates all permutations for n ≤ 9, Edgeworth above
# Edgeworth-series coefficients of AS 89 (Best & Roberts 1975, Table 1)
EDGEWORTH = (0.2274, 0.2531, 0.1745, 0.0758, 0.1033, 0.3932, 0.0879, 0.0151, 0.0072, 0.0831, 0.0131, 4.6e-4)


@dataclass(frozen=True)
class Correlation(Result):
    """Result of :func:`correlation`.

    Attributes
    ----------
    n : int
        Number of complete pairs used.
    r : float
        Pearson r or Spearman rho.
    p : float
        Two-sided p-value.
    ci_low, ci_high : float
        Fisher-z confidence interval (NaN when ``n ≤ 3``).
    method : str
        ``"pearson"`` or ``"spearman"``.
    p_method : str
        How ``p`` was computed: ``"t"``, ``"exact"`` (all permutations, n ≤ 9) or
        ``"edgeworth"`` (AS 89 series).
    confidence : float
        Confidence level of the interval.
    """

    n: int
    r: float
    p: float
    ci_low: float
    ci_high: float
    method: str
    p_method: str = "t"
    confidence: float = 0.95


@dataclass(frozen=True)
class PartialCorrelation(Result):
    """Result of :func:`partial_correlation`.

    Attributes
    ----------
    n : int
        Number of complete rows (listwise over x, y and covariates).
    r : float
        Partial correlation of x and y given the covariates.
    p : float
        Two-sided p-value from t with ``n − 2 − k`` degrees of freedom.
    ci_low, ci_high : float
        Fisher-z confidence interval (NaN when ``n − 3 − k ≤ 0``).
    covariates : tuple of str
        The covariates partialled out (k of them).
    method : str
        ``"pearson"`` or ``"spearman"``.
    df : int
        ``n − 2 − k``.
    confidence : float
        Confidence level of the interval.
    """

    n: int
    r: float
    p: float
    ci_low: float
    ci_high: float
    covariates: tuple[str, ...]
    method: str = "pearson"
    df: int = 0
    confidence: float = 0.95


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two complete vectors; ``ValueError`` if either is constant."""
    x_centred = x - x.mean()
    y_centred = y - y.mean()
    x_ss = float(x_centred @ x_centred)
    y_ss = float(y_centred @ y_centred)
    if x_ss == 0.0 or y_ss == 0.0:
        raise ValueError("a variable is constant over the complete pairs; its correlation is undefined")
    return float(np.clip((x_centred @ y_centred) / np.sqrt(x_ss * y_ss), -1.0, 1.0))


def _t_test_p(r: float, df: int) -> float:
    """Two-sided p of H0: rho = 0 from ``t = r √(df / (1 − r²))``."""
    if abs(r) >= 1.0:
        return 0.0
    t_value = r * np.sqrt(df / (1.0 - r * r))
    return float(min(2.0 * stats.t.sf(abs(t_value), df), 1.0))


def _fisher_interval(r: float, standard_error: float, level: float) -> tuple[float, float]:
    """``tanh(atanh(r) ± z_{(1+level)/2} · SE)``; NaN when the SE is undefined."""
    if not np.isfinite(standard_error):
        return float("nan"), float("nan")
    if abs(r) >= 1.0:
        return r, r
    z = np.arctanh(r)
    half_width = stats.norm.ppf((1.0 + level) / 2.0) * standard_error
    return float(np.tanh(z - half_width)), float(np.tanh(z + half_width))


@lru_cache(maxsize=ENUMERATION_LIMIT)
def _permutation_rank_distances(n: int) -> np.ndarray:
    """S = Σ (i − π(i))² for every permutation π of n ranks (n ≤ 9: at most 362,880 values)."""
    flat = itertools.chain.from_iterable(itertools.permutations(range(n)))
    permutations = np.fromiter(flat, dtype=np.int16, count=math.factorial(n) * n).reshape(-1, n)
    return ((permutations - np.arange(n, dtype=np.int16)) ** 2).sum(axis=1, dtype=np.int64)


def _spearman_tail(n: int, s: float, lower_tail: bool) -> float:
    """P(S ≥ s), or P(S < s) when ``lower_tail``, for S = Σ d² under independence (AS 89 as in R)."""
    probability = 0.0 if lower_tail else 1.0
    if s <= 0:
        return probability
    maximum = n * (n * n - 1) / 3.0
    if s > maximum:
        return 1.0 - probability
    if n <= ENUMERATION_LIMIT:
        distances = _permutation_rank_distances(n)
        at_least = int(np.count_nonzero(distances >= s))
        total = distances.size
        return (total - at_least) / total if lower_tail else at_least / total
    c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12 = EDGEWORTH
    b = 1.0 / n
    x = (6.0 * (s - 1) * b / (n * n - 1.0) - 1.0) * np.sqrt(n - 1.0)
    y = x * x
    u = (
        x
        * b
        * (
            c1
            + b * (c2 + c3 * b)
            + y
            * (-c4 + b * (c5 + c6 * b) - y * b * (c7 + c8 * b - y * (c9 - c10 * b + y * b * (c11 - c12 * y))))
        )
    )
    correction = u / np.exp(y / 2.0)
    if lower_tail:
        value = -correction + stats.norm.cdf(x)
    else:
        value = correction + stats.norm.sf(x)
    return float(min(max(value, 0.0), 1.0))


def _spearman_p(rho: float, n: int, has_ties: bool) -> tuple[float, str]:
    """Two-sided p of Spearman's rho exactly as R's ``cor.test(method = "spearman")`` defaults."""
    if has_ties or n > EXACT_SPEARMAN_LIMIT:
        return _t_test_p(rho, n - 2), "t"
    s = (n**3 - n) * (1.0 - rho) / 6.0
    if s > (n**3 - n) / 6.0:
        tail = _spearman_tail(n, float(np.round(s)), lower_tail=False)
    else:
        # P(S < round(s) + 2) = P(S ≤ round(s)) because S is even without ties
        tail = _spearman_tail(n, float(np.round(s)) + 2.0, lower_tail=True)
    return min(2.0 * tail, 1.0), "exact" if n <= ENUMERATION_LIMIT else "edgeworth"


def correlation(x, y, method: str = "pearson", confidence: float = 0.95) -> Correlation:
    """Pearson or Spearman correlation with a two-sided test and a Fisher-z confidence interval.

    Parameters
    ----------
    x, y : array-like of float
        Paired observations of equal length. NaN marks a missing value; pairs with a missing
        value on either side are dropped (pairwise-complete observations). At least 3 complete
        pairs are required.
    method : {"pearson", "spearman"}
        Product-moment or rank correlation.
    confidence : float, default 0.95
        Confidence level of the interval.

    Returns
    -------
    Correlation
        ``n, r, p, ci_low, ci_high, method, p_method``.

    Notes
    -----
    **Pearson** (as R's ``cor.test``): :math:`t = r\\sqrt{(n-2)/(1-r^2)}` on ``n − 2`` df;
    interval :math:`\\tanh(\\operatorname{atanh} r \\pm z_{(1+c)/2}/\\sqrt{n-3})`.

    **Spearman**: rho is Pearson's r of the average ranks. The p-value follows R's
    ``cor.test``: without ties, from :math:`S = (n^3-n)(1-\\rho)/6` with algorithm AS 89
    (exact enumeration for n ≤ 9, Edgeworth series for 9 < n ≤ 1290); with ties or n > 1290,
    the t approximation above. R computes no interval for Spearman; here it is Fisher's z with
    :math:`SE = \\sqrt{1.06/(n-3)}` (Fieller, Hartley & Pearson 1957). Intervals need n > 3
    and are NaN otherwise.

    References
    ----------
    Fisher RA (1921). On the "probable error" of a coefficient of correlation deduced from a
    small sample. *Metron* 1, 3–32.
    Best DJ, Roberts DE (1975). Algorithm AS 89: the upper tail probabilities of Spearman's rho.
    *Applied Statistics* 24(3), 377–379.
    Fieller EC, Hartley HO, Pearson ES (1957). Tests for rank correlation coefficients. I.
    *Biometrika* 44(3/4), 470–481.

    Examples
    --------
    >>> from alliance.stats import correlation
    >>> result = correlation([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 1.0, 4.0, 3.0, 5.0])
    >>> round(result.r, 3), round(result.p, 4)
    (0.8, 0.1041)
    >>> spearman = correlation([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 1.0, 4.0, 3.0, 5.0], method="spearman")
    >>> round(spearman.r, 3), round(spearman.p, 4), spearman.p_method
    (0.8, 0.1333, 'exact')
    """
    check_method(method, METHODS)
    level = check_confidence(confidence)
    first, second = complete_pairs(x, y, "x", "y")
    n = first.size
    if method == "pearson":
        r = _pearson(first, second)
        p_value, p_method = _t_test_p(r, n - 2), "t"
        standard_error = 1.0 / np.sqrt(n - 3) if n > 3 else float("nan")
    else:
        first_ranks = stats.rankdata(first)
        second_ranks = stats.rankdata(second)
        r = _pearson(first_ranks, second_ranks)
        has_ties = np.unique(first).size < n or np.unique(second).size < n
        p_value, p_method = _spearman_p(r, n, has_ties)
        standard_error = np.sqrt(SPEARMAN_VARIANCE_FACTOR / (n - 3)) if n > 3 else float("nan")
    ci_low, ci_high = _fisher_interval(r, standard_error, level)
    return Correlation(
        n=int(n),
        r=r,
        p=float(p_value),
        ci_low=ci_low,
        ci_high=ci_high,
        method=method,
        p_method=p_method,
        confidence=level,
    )


def _residuals(values: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Residuals of an OLS regression of ``values`` on ``design`` (which includes the intercept)."""
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coefficients


def partial_correlation(
    data: pd.DataFrame,
    x: str,
    y: str,
    covariates: str | Sequence[str],
    method: str = "pearson",
    confidence: float = 0.95,
) -> PartialCorrelation:
    """Partial correlation of ``x`` and ``y`` controlling for ``covariates`` (residual method).

    Parameters
    ----------
    data : DataFrame
        One row per participant.
    x, y : str
        Column names of the two variables.
    covariates : str or sequence of str
        Column name(s) to partial out (k ≥ 0 of them).
    method : {"pearson", "spearman"}
        With ``"spearman"`` every column is replaced by its average ranks first (as ppcor).
    confidence : float, default 0.95
        Confidence level of the interval.

    Returns
    -------
    PartialCorrelation
        ``n, r, p, ci_low, ci_high, covariates, method, df``.

    Notes
    -----
    Rows with a missing value in x, y or any covariate are dropped (listwise deletion). x and y
    are each regressed by OLS on an intercept and the covariates; r is the Pearson correlation
    of the two residual vectors (equal to :math:`-P_{xy}/\\sqrt{P_{xx}P_{yy}}` from the inverse
    covariance matrix, which ``ppcor::pcor.test`` uses). The test is
    :math:`t = r\\sqrt{(n-2-k)/(1-r^2)}` on :math:`n-2-k` df, as ``ppcor::pcor.test``.
    ppcor reports no interval; here it is Fisher's z with :math:`SE = 1/\\sqrt{n-3-k}`
    (times :math:`\\sqrt{1.06}` for Spearman), NaN when ``n − 3 − k ≤ 0``.

    References
    ----------
    Fisher RA (1924). The distribution of the partial correlation coefficient. *Metron* 3, 329–332.
    Kim S (2015). ppcor: an R package for a fast calculation to semi-partial correlation
    coefficients. *Communications for Statistical Applications and Methods* 22(6), 665–674.

    Examples
    --------
    >>> import pandas as pd
    >>> from alliance.stats import partial_correlation
    >>> data = pd.DataFrame({"alliance": [3.1, 4.2, 2.8, 4.9, 3.7, 4.4, 2.5],
    ...                      "outcome": [12.0, 7.5, 14.0, 5.0, 9.5, 8.0, 15.5],
    ...                      "baseline": [22.0, 20.0, 24.0, 19.0, 23.0, 21.0, 25.0]})
    >>> result = partial_correlation(data, "alliance", "outcome", ["baseline"])
    >>> result.n, result.df
    (7, 4)
    """
    check_method(method, METHODS)
    level = check_confidence(confidence)
    covariate_names = (covariates,) if isinstance(covariates, str) else tuple(covariates)
    if x in covariate_names or y in covariate_names or x == y:
        raise ValueError(f"x ({x!r}), y ({y!r}) and the covariates {list(covariate_names)} must be distinct")
    columns = [x, y, *covariate_names]
    frame = numeric_columns(data, columns).dropna()
    n = len(frame)
    k = len(covariate_names)
    df = n - 2 - k
    if n < 3 or df < 1:
        raise ValueError(
            f"need at least {k + 3} complete rows for a partial correlation with {k} covariate(s); found {n}"
        )
    values = frame.to_numpy()
    if method == "spearman":
        values = np.column_stack([stats.rankdata(column) for column in values.T])
    design = np.column_stack([np.ones(n), values[:, 2:]])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise ValueError(
            f"the covariates {list(covariate_names)} are collinear (or constant) in the complete rows"
        )
    x_residuals = _residuals(values[:, 0], design)
    y_residuals = _residuals(values[:, 1], design)
    r = _pearson(x_residuals, y_residuals)
    variance_factor = SPEARMAN_VARIANCE_FACTOR if method == "spearman" else 1.0
    standard_error = np.sqrt(variance_factor / (n - 3 - k)) if n - 3 - k > 0 else float("nan")
    ci_low, ci_high = _fisher_interval(r, standard_error, level)
    return PartialCorrelation(
        n=int(n),
        r=r,
        p=_t_test_p(r, df),
        ci_low=ci_low,
        ci_high=ci_high,
        covariates=covariate_names,
        method=method,
        df=int(df),
        confidence=level,
    )


MISSING = ("pairwise", "listwise", "fiml")


def correlation_matrix(data: pd.DataFrame, columns: Sequence[str] | None = None, missing: str = "pairwise",
                       confidence: float = 0.95) -> FimlCorrelationMatrix | pd.DataFrame:
    """Pearson correlations of several variables, with a choice of how missing values are handled.

    Parameters
    ----------
    data : DataFrame
        One row per participant.
    columns : sequence of str, optional
        The variables (default: every column).
    missing : {"pairwise", "listwise", "fiml"}
        ``pairwise``: each pair from the rows where both are observed (:func:`correlation`);
        ``listwise``: from the rows complete on every column; ``fiml``: full-information maximum
        likelihood over every row with any of the columns (valid under missing at random), equal to
        lavaan's ``missing = "ml"``.
    confidence : float
        Level of the intervals.

    Returns
    -------
    DataFrame or FimlCorrelationMatrix
        For ``pairwise`` and ``listwise``: one row per pair with the :class:`Correlation` fields
        (``x, y, n, r, p, ci_low, ci_high``). For ``fiml``: a
        :class:`alliance.stats.missing.FimlCorrelationMatrix` (``r``, ``se``, ``z``, ``p``, intervals,
        the fitted means and covariance; ``.pair(x, y)`` gives one pair).

    Notes
    -----
    FIML: the ML covariance Σ̂ of the saturated normal model (EM), r_ij = σ̂_ij / (σ̂_ii σ̂_jj)^(1/2);
    SE by the delta method from the observed information; p from the Wald z = r / SE (as lavaan's
    ``standardizedSolution``; with small n this z-test is more liberal than the t-test of complete
    data); interval on Fisher's z with SE_z = SE / (1 − r²).

    References
    ----------
    .. [1] Enders CK (2010). Applied Missing Data Analysis. Guilford Press.
    .. [2] Rosseel Y (2012). lavaan: an R package for structural equation modeling. J Stat Softw
       48(2):1-36.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alliance.stats import correlation_matrix
    >>> data = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6], "y": [2.0, 1, 4, 3, np.nan, 5], "z": [1.0, 3, 2, 5, 4, 6]})
    >>> fiml = correlation_matrix(data, missing="fiml")
    >>> round(fiml.pair("x", "y")["r"], 3), fiml.n
    (0.843, 6)
    """
    check_method(missing, MISSING, what="missing")
    level = check_confidence(confidence)
    columns = list(data.columns if columns is None else columns)
    frame = numeric_columns(data, columns)
    if missing == "fiml":
        return fiml_correlations(frame, columns, confidence=level)
    if missing == "listwise":
        frame = frame.dropna()
    rows = []
    for x, y in itertools.combinations(columns, 2):
        result = correlation(frame[x], frame[y], confidence=level)
        rows.append({"x": x, "y": y, **{key: value for key, value in result.to_dict().items() if key != "method"}})
    return pd.DataFrame(rows)
