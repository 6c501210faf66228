"""Adjustment of p-values for multiple comparisons, identical to R's ``p.adjust``.

The study reports families of correlations (alliance at each timepoint with depression at each
follow-up); these adjustments let a report state family-wise (Holm, Hochberg, Bonferroni) or
false-discovery-rate (Benjamini–Hochberg, Benjamini–Yekutieli) control.
"""

from __future__ import annotations

import numpy as np

from ._inputs import check_method

__all__ = ["adjust_pvalues"]

METHODS = ("holm", "bh", "bonferroni", "hochberg", "by")


def adjust_pvalues(p, method: str = "holm") -> np.ndarray:
    """Adjust a family of p-values for multiple comparisons, as R's ``p.adjust``.

    Parameters
    ----------
    p : array-like of float
        The unadjusted p-values, each in [0, 1]. NaN marks a missing p-value: it stays NaN and
        does not count in the family size ``m`` (R's ``p.adjust`` does the same with ``NA``).
    method : {"holm", "bh", "bonferroni", "hochberg", "by"}
        ``"bh"`` is Benjamini–Hochberg (R's ``"BH"``/``"fdr"``), ``"by"`` Benjamini–Yekutieli.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order and shape (1-D), capped at 1.

    Notes
    -----
    With the m non-missing p-values sorted ascending, :math:`p_{(1)} \\le \\dots \\le p_{(m)}`:

    * Bonferroni: :math:`\\min(1, m p_i)`.
    * Holm: :math:`\\tilde p_{(i)} = \\min(1, \\max_{j \\le i} (m - j + 1) p_{(j)})`.
    * Hochberg: :math:`\\tilde p_{(i)} = \\min(1, \\min_{j \\ge i} (m - j + 1) p_{(j)})`.
    * Benjamini–Hochberg: :math:`\\tilde p_{(i)} = \\min(1, \\min_{j \\ge i} \\tfrac{m}{j} p_{(j)})`.
    * Benjamini–Yekutieli: as BH multiplied by :math:`\\sum_{k=1}^{m} 1/k`.

    References
    ----------
    Holm S (1979). A simple sequentially rejective multiple test procedure. *Scandinavian
    Journal of Statistics* 6(2), 65–70.
    Hochberg Y (1988). A sharper Bonferroni procedure for multiple tests of significance.
    *Biometrika* 75(4), 800–802.
    Benjamini Y, Hochberg Y (1995). Controlling the false discovery rate. *Journal of the Royal
    Statistical Society B* 57(1), 289–300.
    Benjamini Y, Yekutieli D (2001). The control of the false discovery rate in multiple testing
    under dependency. *Annals of Statistics* 29(4), 1165–1188.

    Examples
    --------
    >>> from alliance.stats import adjust_pvalues
    >>> adjust_pvalues([0.01, 0.04, 0.03], method="holm").round(4).tolist()
    [0.03, 0.06, 0.06]
    >>> adjust_pvalues([0.01, 0.04, 0.03], method="bh").round(4).tolist()
    [0.03, 0.04, 0.04]
    """
    check_method(method, METHODS)
    try:
        values = np.asarray(p, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("p must be a sequence of numbers in [0, 1] (NaN for missing)") from None
    if values.ndim != 1:
        raise ValueError(f"p must be one-dimensional; got shape {values.shape}")
    present = ~np.isnan(values)
    if ((values[present] < 0) | (values[present] > 1)).any():
        bad = values[present][(values[present] < 0) | (values[present] > 1)]
        raise ValueError(f"p-values must lie in [0, 1]; found {bad.tolist()}")
    adjusted = np.full(values.shape, np.nan)
    observed = values[present]
    m = observed.size
    if m == 0:
        return adjusted
    if method == "bonferroni":
        adjusted[present] = np.minimum(1.0, m * observed)
        return adjusted
    ascending = np.argsort(observed, kind="stable")
    sorted_p = observed[ascending]
    position = np.arange(1, m + 1)
    if method == "holm":
        step = np.maximum.accumulate((m - position + 1) * sorted_p)
    else:
        # step-up methods: running minimum from the largest p-value down
        multiplier = {
            "hochberg": m - position + 1.0,
            "bh": m / position,
            "by": m / position * np.sum(1.0 / position),
        }[method]
        step = np.minimum.accumulate((multiplier * sorted_p)[::-1])[::-1]
    result = np.empty(m)
    result[ascending] = np.minimum(1.0, step)
    adjusted[present] = result
    return adjusted
