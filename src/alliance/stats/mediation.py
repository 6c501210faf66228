"""Simple mediation (x → m → y) with OLS paths and a vectorized bootstrap of the indirect effect.

Why our own code: the companion analyses (alliance → acute experience → depression) bootstrap the
indirect effect with thousands of resamples, for many models and, in the simulation package, for
many synthetic trials. Peer libraries (pingouin, statsmodels' ``Mediation``) refit every resample
in a Python loop. Here resamples are solved together, thousands per chunk: each resample is a
vector of counts (how often each participant was drawn), the cross-product matrices of all
resamples are one matrix product of those counts with the per-participant outer products, and
the small normal equations are solved as one batch. The result equals refitting OLS on each
resample (to rounding; the tests compare with a plain loop).

Missing data: listwise deletion over x, m, y and the covariates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._inputs import check_confidence, check_method, numeric_columns
from .missing import fiml_mediation
from .results import Result

__all__ = ["Mediation", "mediation"]

CI_METHODS = ("percentile", "bca")
# Resamples are drawn and solved in chunks of about CHUNK_ELEMENTS indices (≈400 KB): chunks that
# stay in the CPU cache run several times faster than one large draw. Within a chunk the count ×
# outer-product matrix product runs as a stack of slices of about SLICE_ELEMENTS multiply-adds:
# one large skinny product is split over BLAS threads, which costs more than it saves and is
# an order of magnitude slower when the CPUs are shared.
CHUNK_ELEMENTS = 50_000
SLICE_ELEMENTS = 200_000
# A resample is degenerate (e.g. x constant in it) when the determinant of its scaled predictor
# cross-products falls below this fraction of the full sample's.
SINGULAR_RATIO = 1e-8


@dataclass(frozen=True)
class Mediation(Result):
    """Result of :func:`mediation`.

    Attributes
    ----------
    n : int
        Complete rows used.
    a : float
        Effect of x on m (``m ~ x + covariates``).
    b : float
        Effect of m on y adjusted for x (``y ~ m + x + covariates``).
    c_prime : float
        Direct effect of x on y (same model as ``b``).
    total : float
        ``c_prime + a·b``, equal to the x coefficient of ``y ~ x + covariates``.
    indirect : float
        ``a·b``.
    indirect_se : float
        Standard deviation of the bootstrap indirect effects.
    indirect_ci_low, indirect_ci_high : float
        Bootstrap confidence interval of the indirect effect.
    p_indirect : float
        Two-sided bootstrap p-value of the indirect effect (at least ``1 / n_boot``).
    n_boot : int
        Resamples requested.
    ci_method : str
        ``"percentile"`` or ``"bca"``.
    confidence : float
        Confidence level of the interval.
    n_boot_degenerate : int
        Resamples whose regressions were singular (e.g. x constant in the resample); they are
        left out of the SE, interval and p-value.
    """

    n: int
    a: float
    b: float
    c_prime: float
    total: float
    indirect: float
    indirect_se: float
    indirect_ci_low: float
    indirect_ci_high: float
    p_indirect: float
    n_boot: int
    ci_method: str
    confidence: float = 0.95
    n_boot_degenerate: int = 0


def _standardized_design(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns ``[1, x, covariates..., m, y]`` each centred and scaled to unit SD, and the SDs.

    Scaling keeps the cross-product matrices well conditioned; the slopes are converted back
    to the original units afterwards.
    """
    scale = values.std(axis=0, ddof=1)
    if (scale == 0).any():
        raise ValueError("x, m, y and every covariate must vary over the complete rows; a column is constant")
    standardized = (values - values.mean(axis=0)) / scale
    return np.column_stack([np.ones(values.shape[0]), standardized]), scale


def _scaled_determinant(gram: np.ndarray) -> np.ndarray:
    """Determinant of the predictor block (all but the last column) scaled to a unit diagonal."""
    predictors = gram[..., :-1, :-1]  # intercept, x, covariates, m
    diagonal = np.sqrt(np.clip(np.diagonal(predictors, axis1=-2, axis2=-1), 1e-300, None))
    return np.linalg.det(predictors / (diagonal[..., :, None] * diagonal[..., None, :]))


def _paths_from_cross_products(
    gram: np.ndarray, minimum_determinant: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardized a, b, c' from a batch of cross-product matrices ``Z'WZ`` (shape ``(..., p, p)``).

    Z's columns are ``[1, x, covariates..., m, y]``. Returns ``a, b, c_prime, valid``; matrices
    whose scaled determinant is below ``minimum_determinant`` are degenerate: their entries are
    NaN and ``valid`` is False.
    """
    p = gram.shape[-1]
    mediator, outcome = p - 2, p - 1
    valid = _scaled_determinant(gram) > minimum_determinant
    # replace degenerate matrices by the identity so one batched solve runs; their results are discarded
    safe = gram if valid.all() else np.where(valid[..., None, None], gram, np.eye(p))
    a_coefficients = np.linalg.solve(safe[..., :mediator, :mediator], safe[..., :mediator, mediator, None])[
        ..., 0
    ]
    y_coefficients = np.linalg.solve(safe[..., :outcome, :outcome], safe[..., :outcome, outcome, None])[
        ..., 0
    ]
    nan = np.where(valid, 1.0, np.nan)
    return (
        a_coefficients[..., 1] * nan,
        y_coefficients[..., mediator] * nan,
        y_coefficients[..., 1] * nan,
        valid,
    )


def _minimum_determinant(design: np.ndarray) -> float:
    """Degeneracy threshold for resamples of ``design``: SINGULAR_RATIO × the full sample's determinant."""
    return SINGULAR_RATIO * float(_scaled_determinant(design.T @ design))


def _slice_rows(n: int, p: int) -> int:
    """Resamples per slice of the batched count × outer-product product."""
    return max(1, SLICE_ELEMENTS // (n * p * p))


def _chunk_rows(n: int, p: int) -> int:
    """Resamples drawn per chunk: a whole number of slices, about CHUNK_ELEMENTS indices."""
    slice_rows = _slice_rows(n, p)
    return slice_rows * max(1, CHUNK_ELEMENTS // (n * slice_rows))


def _bootstrap_indirect(design: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Standardized indirect effects a·b for each row of an index matrix (shape ``(B, n)``).

    Each row of ``indices`` lists the participants drawn in one resample. The cross-product
    matrix of a resample is Σᵢ wᵢ zᵢzᵢᵀ with wᵢ the number of times participant i was drawn, so
    all B matrices are one product ``W @ O`` of the (B × n) count matrix with the (n × p²) outer
    products. Degenerate resamples give NaN.
    """
    n, p = design.shape
    rows = indices.shape[0]
    offsets = (np.arange(rows) * n)[:, None]
    outer = (design[:, :, None] * design[:, None, :]).reshape(n, p * p)
    slice_rows = _slice_rows(n, p)
    counts = np.zeros((rows + (-rows % slice_rows), n))  # zero rows pad the last slice
    counts[:rows] = np.bincount((indices + offsets).ravel(), minlength=rows * n).reshape(rows, n)
    gram = np.matmul(counts.reshape(-1, slice_rows, n), outer).reshape(-1, p, p)[:rows]
    a, b, _, _ = _paths_from_cross_products(gram, _minimum_determinant(design))
    return a * b


def _jackknife_indirect(design: np.ndarray) -> np.ndarray:
    """Standardized indirect effect with each participant left out in turn (n values)."""
    gram = design.T @ design
    leave_one_out = gram[None, :, :] - design[:, :, None] * design[:, None, :]
    a, b, _, _ = _paths_from_cross_products(leave_one_out, _minimum_determinant(design))
    return a * b


def _bca_levels(
    boot: np.ndarray, estimate: float, jackknife: np.ndarray, level: float
) -> tuple[float, float]:
    """Bias-corrected and accelerated quantile levels (Efron 1987)."""
    below = np.mean(boot < estimate)
    if below <= 0.0 or below >= 1.0:
        raise ValueError(
            "the BCa interval is undefined: every bootstrap indirect effect lies on one side of the "
            "estimate; use ci='percentile'"
        )
    bias = stats.norm.ppf(below)
    jackknife = jackknife[np.isfinite(jackknife)]
    deviation = jackknife.mean() - jackknife
    spread = np.sum(deviation**2)
    acceleration = np.sum(deviation**3) / (6.0 * spread**1.5) if spread > 0 else 0.0
    z = stats.norm.ppf([(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    adjusted = stats.norm.cdf(bias + (bias + z) / (1.0 - acceleration * (bias + z)))
    return float(adjusted[0]), float(adjusted[1])


def mediation(
    data: pd.DataFrame,
    x: str,
    m: str,
    y: str,
    covariates: str | Sequence[str] | None = None,
    n_boot: int = 5000,
    ci: str = "percentile",
    confidence: float = 0.95,
    seed=None,
    missing: str = "listwise",
):
    """Simple mediation model x → m → y with OLS paths and a bootstrap test of the indirect effect.

    Parameters
    ----------
    data : DataFrame
        One row per participant.
    x, m, y : str
        Columns of the predictor, the mediator and the outcome.
    covariates : str or sequence of str, optional
        Columns adjusted for in both regressions.
    n_boot : int, default 5000
        Number of bootstrap resamples (at least 100).
    ci : {"percentile", "bca"}
        Percentile or bias-corrected and accelerated (BCa) interval.
    confidence : float, default 0.95
        Confidence level of the interval.
    seed : int, numpy.random.Generator or None
        Passed to ``numpy.random.default_rng``; the same seed on the same data gives the same
        result.
    missing : {"listwise", "fiml"}
        ``listwise`` (default): the complete rows, OLS paths, bootstrap test. ``fiml``: every row with
        any of the variables, full-information ML paths (x and covariates modelled, as lavaan's
        ``fixed.x = FALSE``) with delta-method standard errors and Wald tests; returns
        :class:`alliance.stats.missing.FimlMediation` (``n_boot``, ``ci`` and ``seed`` are unused).

    Returns
    -------
    Mediation or FimlMediation
        ``n, a, b, c_prime, total, indirect, indirect_se, indirect_ci_low, indirect_ci_high,
        p_indirect, n_boot, ci_method``.

    Notes
    -----
    Rows with a missing value in any used column are dropped (listwise deletion). The paths are
    OLS estimates (equal to the ML estimates of the same path model in lavaan):

    .. math::

        m = i_1 + a x + \\gamma_1^T w + e_1, \\qquad
        y = i_2 + c' x + b m + \\gamma_2^T w + e_2,

    indirect effect :math:`ab`, total effect :math:`c = c' + ab` (the x coefficient of
    ``y ~ x + w``, an OLS identity). Bootstrap: an (n_boot × n) index matrix is drawn with
    ``numpy.random.default_rng(seed)`` (row chunks of a size fixed by n and the number of
    columns, to bound memory); every resample is refitted by OLS (in batches, see the module
    docstring) giving :math:`ab^*_1..ab^*_B`. Resamples whose regressions are singular (e.g. x
    constant) are counted in ``n_boot_degenerate`` and left out, so B is the number fitted.

    * ``indirect_se`` = SD of :math:`ab^*` (``ddof = 1``).
    * percentile interval: the :math:`(1-c)/2` and :math:`(1+c)/2` quantiles of :math:`ab^*`
      (linear interpolation, R's ``quantile`` type 7).
    * BCa: quantile levels :math:`\\Phi(z_0 + (z_0 + z_q)/(1 - \\hat a (z_0 + z_q)))` with
      :math:`z_0 = \\Phi^{-1}(\\#\\{ab^* < ab\\}/B)` and the jackknife acceleration
      :math:`\\hat a = \\sum d_i^3 / (6 (\\sum d_i^2)^{3/2})`, :math:`d_i = \\overline{ab}_{(\\cdot)} - ab_{(i)}`.
    * ``p_indirect`` = :math:`2 \\min(\\#\\{ab^* \\le 0\\}, \\#\\{ab^* \\ge 0\\}) / B`, bounded below
      by :math:`1/B` (a bootstrap cannot show a smaller p) and above by 1.

    References
    ----------
    Baron RM, Kenny DA (1986). The moderator–mediator variable distinction in social
    psychological research. *Journal of Personality and Social Psychology* 51(6), 1173–1182.
    Preacher KJ, Hayes AF (2008). Asymptotic and resampling strategies for assessing and
    comparing indirect effects in multiple mediator models. *Behavior Research Methods* 40(3),
    879–891.
    Efron B (1987). Better bootstrap confidence intervals. *Journal of the American Statistical
    Association* 82(397), 171–185.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alliance.stats import mediation
    >>> rng = np.random.default_rng(0)
    >>> alliance = rng.normal(size=200)
    >>> experience = 0.5 * alliance + rng.normal(size=200)
    >>> depression = -0.4 * experience + rng.normal(size=200)
    >>> data = pd.DataFrame({"alliance": alliance, "experience": experience, "depression": depression})
    >>> result = mediation(data, "alliance", "experience", "depression", n_boot=2000, seed=1)
    >>> round(result.indirect, 3), result.indirect_ci_high < 0
    (-0.147, True)
    """
    check_method(missing, ("listwise", "fiml"), what="missing")
    check_method(ci, CI_METHODS, what="ci")
    level = check_confidence(confidence)
    if missing == "fiml":
        names = () if covariates is None else (covariates,) if isinstance(covariates, str) else tuple(covariates)
        if len({x, m, y, *names}) != 3 + len(names):
            raise ValueError(f"x ({x!r}), m ({m!r}), y ({y!r}) and the covariates {list(names)} must be distinct")
        return fiml_mediation(numeric_columns(data, [x, *names, m, y]), x, m, y, names, confidence=level)
    if int(n_boot) != n_boot or n_boot < 100:
        raise ValueError(f"n_boot must be an integer of at least 100; got {n_boot!r}")
    n_boot = int(n_boot)
    covariate_names = (
        () if covariates is None else (covariates,) if isinstance(covariates, str) else tuple(covariates)
    )
    columns = [x, *covariate_names, m, y]
    if len(set(columns)) != len(columns):
        raise ValueError(
            f"x ({x!r}), m ({m!r}), y ({y!r}) and the covariates {list(covariate_names)} must be distinct"
        )
    values = numeric_columns(data, columns).dropna().to_numpy()
    n, width = values.shape
    if n < width + 2:
        raise ValueError(f"need at least {width + 2} complete rows for this mediation model; found {n}")
    design, scale = _standardized_design(values)
    if np.linalg.matrix_rank(design[:, :-1]) < width:
        raise ValueError("x, the covariates and m are collinear over the complete rows")

    # point estimates by least squares on the full sample (standardized units)
    a_std = np.linalg.lstsq(design[:, :-2], design[:, -2], rcond=None)[0][1]
    y_coefficients = np.linalg.lstsq(design[:, :-1], design[:, -1], rcond=None)[0]
    b_std, c_prime_std = y_coefficients[-1], y_coefficients[1]
    x_scale, m_scale, y_scale = scale[0], scale[-2], scale[-1]
    a = a_std * m_scale / x_scale
    b = b_std * y_scale / m_scale
    c_prime = c_prime_std * y_scale / x_scale
    indirect = a * b
    to_original = y_scale / x_scale  # a·b in standardized units × this = a·b in original units

    rng = np.random.default_rng(seed)
    chunk = _chunk_rows(n, design.shape[1])
    pieces = []
    for start in range(0, n_boot, chunk):
        indices = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        pieces.append(_bootstrap_indirect(design, indices))
    boot_all = np.concatenate(pieces) * to_original
    finite = np.isfinite(boot_all)
    boot = boot_all[finite]
    degenerate = int(n_boot - boot.size)
    if boot.size < 100:
        raise ValueError(
            f"only {boot.size} of {n_boot} bootstrap resamples could be fitted; the data are too sparse"
        )

    if ci == "percentile":
        levels = ((1.0 - level) / 2.0, (1.0 + level) / 2.0)
    else:
        levels = _bca_levels(boot, indirect, _jackknife_indirect(design) * to_original, level)
    ci_low, ci_high = np.quantile(boot, levels)
    tail = min(np.mean(boot <= 0.0), np.mean(boot >= 0.0))
    p_indirect = min(1.0, max(2.0 * tail, 1.0 / boot.size))
    return Mediation(
        n=int(n),
        a=float(a),
        b=float(b),
        c_prime=float(c_prime),
        total=float(c_prime + indirect),
        indirect=float(indirect),
        indirect_se=float(boot.std(ddof=1)),
        indirect_ci_low=float(ci_low),
        indirect_ci_high=float(ci_high),
        p_indirect=float(p_indirect),
        n_boot=n_boot,
        ci_method=ci,
        confidence=level,
        n_boot_degenerate=degenerate,
    )
