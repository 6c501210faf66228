"""Correlated scores with bounded, skewed marginals: beta marginals joined by a normal copula.

A scale score lives in a bounded range and after treatment is often skewed (most GRID-HAMD scores
near the floor, a few high). We draw each score from a beta distribution on the scale's range with
the target mean and SD, and join the scores through a multivariate normal (a Gaussian copula). The
Pearson correlations that come out differ from the normal ones, so for every pair we solve for the
normal correlation that produces the target Pearson correlation of the scores ("NORTA", Cario &
Nelson 1997), by two-dimensional Gauss–Hermite quadrature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import optimize, stats

_NODES, _WEIGHTS = hermegauss(48)
_WEIGHTS = _WEIGHTS / np.sqrt(2.0 * np.pi)


class CalibrationError(ValueError):
    """A scenario asks for something no distribution can give (a mean outside the range, …)."""


@dataclass(frozen=True)
class BetaMarginal:
    """A beta distribution stretched onto ``[low, high]`` with a given mean and SD.

    Parameters
    ----------
    low, high : float
        The range of the scale.
    mean, sd : float
        The target moments, in the scale's units.
    """

    low: float
    high: float
    mean: float
    sd: float

    def __post_init__(self) -> None:
        width = self.high - self.low
        mu = (self.mean - self.low) / width
        var = (self.sd / width) ** 2
        if not 0 < mu < 1:
            raise CalibrationError(f"mean {self.mean:g} must lie strictly inside the range {self.low:g}–{self.high:g}")
        if not 0 < var < mu * (1 - mu):
            raise CalibrationError(
                f"SD {self.sd:g} is impossible for mean {self.mean:g} on {self.low:g}–{self.high:g} "
                f"(the largest possible SD is {np.sqrt(mu * (1 - mu)) * width:.3g})"
            )

    @property
    def shape(self) -> tuple[float, float]:
        """The beta parameters (a, b)."""
        width = self.high - self.low
        mu = (self.mean - self.low) / width
        var = (self.sd / width) ** 2
        common = mu * (1 - mu) / var - 1
        return mu * common, (1 - mu) * common

    def from_normal(self, z: np.ndarray) -> np.ndarray:
        """Map standard-normal draws to this marginal (the probability integral transform)."""
        a, b = self.shape
        return self.low + (self.high - self.low) * stats.beta.ppf(stats.norm.cdf(z), a, b)


def pearson_from_latent(rho: float, first: BetaMarginal, second: BetaMarginal) -> float:
    """The Pearson correlation of two marginals joined by a normal copula with correlation ``rho``.

    Parameters
    ----------
    rho : float
        Correlation of the underlying normal variables.
    first, second : BetaMarginal

    Returns
    -------
    float
        corr(F1⁻¹(Φ(Z1)), F2⁻¹(Φ(Z2))), by 48 × 48-point Gauss–Hermite quadrature.
    """
    x = _NODES[:, None]
    y = _NODES[None, :]
    w = _WEIGHTS[:, None] * _WEIGHTS[None, :]
    g1 = first.from_normal(np.broadcast_to(x, w.shape))
    g2 = second.from_normal(rho * x + np.sqrt(max(1 - rho * rho, 0.0)) * y)
    m1, m2 = (w * g1).sum(), (w * g2).sum()
    cov = (w * (g1 - m1) * (g2 - m2)).sum()
    return float(cov / np.sqrt((w * (g1 - m1) ** 2).sum() * (w * (g2 - m2) ** 2).sum()))


def latent_correlation(target: float, first: BetaMarginal, second: BetaMarginal) -> float:
    """Solve for the normal-copula correlation that gives a target Pearson correlation.

    Parameters
    ----------
    target : float
        The Pearson correlation wanted between the two scores.
    first, second : BetaMarginal

    Returns
    -------
    float
        The latent correlation.

    Raises
    ------
    CalibrationError
        When the target lies beyond what these two marginals can reach.

    References
    ----------
    Cario MC, Nelson BL (1997). Modeling and generating random vectors with arbitrary marginal
    distributions and correlation matrix. Northwestern University technical report.
    """
    if target == 0:
        return 0.0
    bound = 0.9999
    low_r, high_r = pearson_from_latent(-bound, first, second), pearson_from_latent(bound, first, second)
    if not low_r <= target <= high_r:
        raise CalibrationError(f"correlation {target:g} is out of reach for these marginals ({low_r:.3f} to {high_r:.3f})")
    return float(optimize.brentq(lambda r: pearson_from_latent(r, first, second) - target, -bound, bound, xtol=1e-10))


def nearest_correlation(matrix: np.ndarray, min_eigenvalue: float = 1e-6, iterations: int = 200) -> np.ndarray:
    """The nearest positive-definite correlation matrix (alternating projections).

    Parameters
    ----------
    matrix : ndarray
        A symmetric matrix with unit diagonal that may not be positive definite.
    min_eigenvalue : float
        The smallest eigenvalue the result may have.
    iterations : int
        Upper bound on projection rounds.

    Returns
    -------
    ndarray
        The input itself when it is already positive definite.

    References
    ----------
    Higham NJ (2002). Computing the nearest correlation matrix — a problem from finance. IMA J
    Numer Anal 22(3):329–343.
    """
    if np.linalg.eigvalsh(matrix).min() >= min_eigenvalue:
        return matrix
    y = matrix.copy()
    correction = np.zeros_like(matrix)
    for _ in range(iterations):
        r = y - correction
        values, vectors = np.linalg.eigh(r)
        x = (vectors * np.maximum(values, min_eigenvalue)) @ vectors.T
        correction = x - r
        y = x.copy()
        np.fill_diagonal(y, 1.0)
        if np.linalg.eigvalsh(y).min() >= min_eigenvalue / 2:
            break
    return y
