"""Ordinary least-squares regression with R's ``lm`` + ``summary.lm`` + ``confint`` results.

Why our own and not statsmodels' OLS: the formula must mean what it means in R (``I(x^2)``,
``factor()``, ``poly()``, columns named like functions) and the coefficient names must be R's,
so that a plan's regression lines up with R output term for term; the package already has R's
formula grammar (:mod:`alliance.stats._r_formula`), and the least-squares step itself is one QR
decomposition. Checked against R 4.2.2 (``tests/stats/reference/regression.R``).

Missing data: rows with a missing value in any variable of the formula are dropped (R's default
``na.action = na.omit``). Columns that are linear combinations of earlier ones are dropped (R
reports them as ``NA`` coefficients) and named in ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from . import _r_formula
from ._inputs import check_confidence
from .results import Result

__all__ = ["LinearRegression", "linear_regression"]


@dataclass(frozen=True)
class LinearRegression(Result):
    """Result of :func:`linear_regression`.

    Attributes
    ----------
    formula : str
    coefficients : DataFrame
        Index ``term`` (R's names); columns ``estimate``, ``se``, ``t``, ``p`` (two-sided),
        ``ci_low``, ``ci_high`` — ``coef(summary(m))`` and ``confint(m, level = confidence)``.
    n : int
        Rows used (complete cases).
    df_residual : int
    sigma : float
        Residual standard error.
    r_squared, adj_r_squared : float
    f, f_df1, f_df2, f_p : float
        The overall F test against the intercept-only model (NaN without intercept or predictors).
    confidence : float
    notes : tuple of str
    """

    formula: str
    coefficients: pd.DataFrame
    n: int
    df_residual: int
    sigma: float
    r_squared: float
    adj_r_squared: float
    f: float
    f_df1: float
    f_df2: float
    f_p: float
    confidence: float = 0.95
    notes: tuple[str, ...] = ()


def linear_regression(formula: str, data: pd.DataFrame, confidence: float = 0.95) -> LinearRegression:
    """Fit a linear model by least squares, as R's ``lm(formula, data)``.

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + x2"`` in R's syntax (``docs/mixed_models.md`` lists the supported terms).
    data : DataFrame
    confidence : float, default 0.95
        Level of the coefficient intervals.

    Returns
    -------
    LinearRegression

    Raises
    ------
    ValueError
        For an unsupported term (named), a missing column, or fewer complete rows than
        coefficients + 1.

    References
    ----------
    R Core Team (2022). R 4.2.2, ``?lm``, ``?summary.lm``, ``?confint``. Chambers JM, Hastie TJ
    (1992). *Statistical Models in S*, ch. 4.
    """
    check_confidence(confidence)
    if "~" not in formula:
        raise ValueError(f"formula {formula!r} needs a response: 'y ~ x1 + x2'")
    lhs, rhs = (part.strip() for part in formula.split("~", 1))
    names = _r_formula.variables(lhs) + _r_formula.variables(rhs)
    missing = [v for v in names if v not in data.columns]
    if missing:
        raise ValueError(f"formula {formula!r}: {', '.join(map(repr, missing))} not among the data's columns")
    frame = data[list(dict.fromkeys(names))]
    complete = frame.notna().all(axis=1).to_numpy(bool)
    frame = frame[complete].reset_index(drop=True)
    y = _r_formula.response(lhs, frame)
    built = _r_formula.design(rhs, frame)
    x, terms = built.matrix, list(built.names)
    n, p = x.shape
    if n <= p:
        raise ValueError(f"linear_regression needs more complete rows ({n}) than coefficients ({p})")
    q, r = np.linalg.qr(x)
    beta = np.linalg.solve(r, q.T @ y)
    residuals = y - x @ beta
    df = n - p
    rss = float(residuals @ residuals)
    sigma2 = rss / df
    r_inv = np.linalg.inv(r)
    se = np.sqrt(np.einsum("ij,ij->i", r_inv, r_inv) * sigma2)
    t = beta / se
    pvalues = 2 * stats.t.sf(np.abs(t), df)
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    table = pd.DataFrame({"estimate": beta, "se": se, "t": t, "p": pvalues, "ci_low": beta - half,
                          "ci_high": beta + half}, index=pd.Index(terms, name="term"))
    intercept = "(Intercept)" in terms
    centred = y - y.mean() if intercept else y
    tss = float(centred @ centred)
    r2 = 1 - rss / tss if tss > 0 else float("nan")
    df_model = p - (1 if intercept else 0)
    adj = 1 - (1 - r2) * (n - (1 if intercept else 0)) / df
    if df_model > 0:
        f = ((tss - rss) / df_model) / sigma2
        f_p = float(stats.f.sf(f, df_model, df))
    else:
        f, f_p = float("nan"), float("nan")
    notes = []
    if built.dropped:
        notes.append(_r_formula.rank_deficiency_note(built.dropped))
    if not complete.all():
        notes.append(f"{int((~complete).sum())} rows with a missing value were left out (na.omit)")
    if df < 10:
        notes.append(f"only {df} residual degrees of freedom: estimates are imprecise")
    return LinearRegression(formula=formula, coefficients=table, n=n, df_residual=df, sigma=float(np.sqrt(sigma2)),
                            r_squared=float(r2), adj_r_squared=float(adj), f=float(f), f_df1=float(df_model),
                            f_df2=float(df), f_p=f_p, confidence=confidence, notes=tuple(notes))
