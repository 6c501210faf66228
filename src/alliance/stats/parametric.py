"""Paired comparisons of two repeated measurements: the paired t-test and the Wilcoxon signed-rank test.

Both follow R (``t.test(after, before, paired = TRUE)`` and ``wilcox.test(after, before,
paired = TRUE)``) to the reported digits, so a trial analysed here and in R reports the same
numbers. The Wilcoxon test is grouped here with its parametric counterpart because both answer
the same question (did a measure change between two timepoints?) on the same data shape.

Missing data: a participant with a missing value at either timepoint is dropped (pairwise
deletion over the two columns, which for two columns is the same as listwise deletion).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from ._inputs import check_confidence, complete_pairs
from .results import Result

__all__ = ["PairedTest", "WilcoxonTest", "paired_ttest", "wilcoxon"]


@dataclass(frozen=True)
class PairedTest(Result):
    """Result of :func:`paired_ttest`.

    Attributes
    ----------
    n : int
        Number of complete pairs used.
    mean_diff : float
        Mean of ``after − before``.
    t, df, p : float
        t statistic, degrees of freedom (``n − 1``) and two-sided p-value.
    ci_low, ci_high : float
        Confidence interval of ``mean_diff``.
    cohen_dz : float
        ``mean_diff / SD(after − before)``.
    cohen_dav : float
        ``mean_diff / ((SD(before) + SD(after)) / 2)``.
    confidence : float
        Confidence level of the interval.
    """

    n: int
    mean_diff: float
    t: float
    df: float
    p: float
    ci_low: float
    ci_high: float
    cohen_dz: float
    cohen_dav: float
    confidence: float = 0.95


@dataclass(frozen=True)
class WilcoxonTest(Result):
    """Result of :func:`wilcoxon`.

    Attributes
    ----------
    n : int
        Number of non-zero differences ranked (pairs with a missing value and pairs with
        ``after == before`` are dropped, as in R).
    statistic : float
        V: the sum of the ranks of the positive differences ``after − before``.
    p : float
        Two-sided p-value.
    rank_biserial : float
        Matched-pairs rank-biserial correlation ``(V − (T − V)) / T``, ``T = n(n+1)/2``.
    method : str
        ``"exact"`` or ``"normal approximation with continuity correction"``.
    """

    n: int
    statistic: float
    p: float
    rank_biserial: float
    method: str


def paired_ttest(before, after, confidence: float = 0.95) -> PairedTest:
    """Paired (dependent-samples) t-test of ``after − before``, two-sided.

    Parameters
    ----------
    before, after : array-like of float
        The same participants measured at two timepoints, in the same order. NaN marks a missing
        value; a pair with a missing value on either side is dropped (pairwise deletion).
    confidence : float, default 0.95
        Confidence level of the interval for the mean difference.

    Returns
    -------
    PairedTest
        ``n, mean_diff, t, df, p, ci_low, ci_high, cohen_dz, cohen_dav``.

    Notes
    -----
    With differences :math:`d_i = \\text{after}_i - \\text{before}_i`, :math:`i = 1..n`:

    .. math::

        t = \\frac{\\bar d}{s_d / \\sqrt{n}}, \\quad df = n - 1, \\quad
        p = 2\\,P(T_{df} \\ge |t|), \\quad
        \\bar d \\pm t_{df,\\,(1+c)/2}\\; s_d / \\sqrt{n}

    Effect sizes (Lakens 2013): :math:`d_z = \\bar d / s_d` and
    :math:`d_{av} = \\bar d / ((s_\\text{before} + s_\\text{after}) / 2)`, all SDs with ``n − 1``.
    Equals R's ``t.test(after, before, paired = TRUE)``.

    References
    ----------
    Student (1908). The probable error of a mean. *Biometrika* 6(1), 1–25.
    Lakens D (2013). Calculating and reporting effect sizes to facilitate cumulative science: a
    practical primer for t-tests and ANOVAs. *Frontiers in Psychology* 4:863.

    Examples
    --------
    >>> from alliance.stats import paired_ttest
    >>> result = paired_ttest([3.0, 4.0, 5.0, 4.5], [4.0, 4.5, 6.0, 6.5])
    >>> result.n, round(result.mean_diff, 3), round(result.t, 3)
    (4, 1.125, 3.576)
    """
    level = check_confidence(confidence)
    first, second = complete_pairs(before, after, "before", "after")
    differences = second - first
    n = differences.size
    mean_diff = float(differences.mean())
    sd_diff = float(differences.std(ddof=1))
    if sd_diff == 0.0:
        raise ValueError(
            "the differences after − before are all equal (zero variance); the t statistic is undefined"
        )
    df = n - 1
    standard_error = sd_diff / np.sqrt(n)
    t_value = mean_diff / standard_error
    p_value = float(2.0 * stats.t.sf(abs(t_value), df))
    quantile = float(stats.t.ppf((1.0 + level) / 2.0, df))
    mean_sd = (float(first.std(ddof=1)) + float(second.std(ddof=1))) / 2.0
    return PairedTest(
        n=int(n),
        mean_diff=mean_diff,
        t=float(t_value),
        df=float(df),
        p=min(p_value, 1.0),
        ci_low=float(mean_diff - quantile * standard_error),
        ci_high=float(mean_diff + quantile * standard_error),
        cohen_dz=mean_diff / sd_diff,
        cohen_dav=mean_diff / mean_sd if mean_sd > 0 else float("nan"),
        confidence=level,
    )


EXACT_LIMIT = 50  # R: exact = (n < 50) unless there are ties or zeros


@lru_cache(maxsize=64)
def _signed_rank_counts(n: int) -> np.ndarray:
    """Number of subsets of {1..n} with each rank sum 0..n(n+1)/2 (the null distribution of V × 2^n)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    top = 0
    for rank in range(1, n + 1):
        top += rank
        # each rank is either positive (adds `rank` to V) or negative (adds nothing)
        counts[rank : top + 1] = counts[rank : top + 1] + counts[: top + 1 - rank].copy()
    return counts


def _signed_rank_cdf(statistic: float, n: int) -> float:
    """P(V ≤ statistic) under H0 for n untied non-zero differences (R's ``psignrank``)."""
    counts = _signed_rank_counts(n)
    upto = int(np.floor(statistic + 1e-7))
    if upto < 0:
        return 0.0
    return float(counts[: upto + 1].sum() / counts.sum())


def wilcoxon(before, after) -> WilcoxonTest:
    """Wilcoxon signed-rank test of ``after − before``, two-sided, as R's ``wilcox.test``.

    Parameters
    ----------
    before, after : array-like of float
        The same participants at two timepoints. A pair with a missing value on either side is
        dropped (pairwise deletion); pairs with a zero difference are then dropped too (R's rule).

    Returns
    -------
    WilcoxonTest
        ``n, statistic, p, rank_biserial, method``.

    Notes
    -----
    Differences :math:`d_i = \\text{after}_i - \\text{before}_i \\ne 0` are ranked by
    :math:`|d_i|` (ties get average ranks); :math:`V = \\sum_{d_i > 0} R_i`.

    * Exact p-value when ``n < 50`` and there are neither ties nor zero differences:
      :math:`p = \\min(1, 2 P(V \\le v))` if :math:`v \\le n(n+1)/4`, else
      :math:`\\min(1, 2 P(V \\ge v))`, from the exact null distribution of V.
    * Otherwise the normal approximation with continuity correction:
      :math:`z = (v - n(n+1)/4 - \\operatorname{sign}(\\cdot)\\,0.5) / \\sigma`,
      :math:`\\sigma^2 = n(n+1)(2n+1)/24 - \\sum (t^3 - t)/48` over tie groups of size t.

    This is R's ``wilcox.test(after, before, paired = TRUE)`` with its defaults
    (``exact = NULL``, ``correct = TRUE``). The effect size is the matched-pairs rank-biserial
    correlation :math:`r = (V - (T - V)) / T`, :math:`T = n(n+1)/2` (Kerby 2014).

    References
    ----------
    Wilcoxon F (1945). Individual comparisons by ranking methods. *Biometrics Bulletin* 1(6), 80–83.
    Kerby DS (2014). The simple difference formula: an approach to teaching nonparametric
    correlation. *Comprehensive Psychology* 3, 11.IT.3.1.

    Examples
    --------
    >>> from alliance.stats import wilcoxon
    >>> result = wilcoxon([1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 4.5, 2.0, 8.0, 10.0])
    >>> result.statistic, round(result.p, 4), result.method
    (13.0, 0.1875, 'exact')
    """
    first, second = complete_pairs(before, after, "before", "after")
    differences = second - first
    has_zeros = bool((differences == 0).any())
    differences = differences[differences != 0]
    n = differences.size
    if n == 0:
        raise ValueError("all differences after − before are zero; the signed-rank test is undefined")
    ranks = stats.rankdata(np.abs(differences))
    statistic = float(ranks[differences > 0].sum())
    has_ties = np.unique(ranks).size != n
    if n < EXACT_LIMIT and not has_ties and not has_zeros:
        method = "exact"
        if statistic > n * (n + 1) / 4:
            tail = 1.0 - _signed_rank_cdf(statistic - 1, n)
        else:
            tail = _signed_rank_cdf(statistic, n)
        p_value = min(2.0 * tail, 1.0)
    else:
        method = "normal approximation with continuity correction"
        _, tie_sizes = np.unique(ranks, return_counts=True)
        centred = statistic - n * (n + 1) / 4
        sigma = np.sqrt(n * (n + 1) * (2 * n + 1) / 24 - np.sum(tie_sizes**3 - tie_sizes) / 48)
        if sigma == 0:
            raise ValueError(
                "all differences are tied at the same magnitude; the normal approximation is undefined"
            )
        z = (centred - np.sign(centred) * 0.5) / sigma
        p_value = float(min(2.0 * min(stats.norm.cdf(z), stats.norm.sf(z)), 1.0))
    total = n * (n + 1) / 2
    return WilcoxonTest(
        n=int(n),
        statistic=statistic,
        p=float(p_value),
        rank_biserial=float((statistic - (total - statistic)) / total),
        method=method,
    )
