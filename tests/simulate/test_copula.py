"""Beta marginals, the NORTA correlation solve and the nearest correlation matrix."""

from __future__ import annotations

import numpy as np
import pytest

from alliance.simulate.copula import (
    BetaMarginal,
    CalibrationError,
    latent_correlation,
    nearest_correlation,
    pearson_from_latent,
)


def test_beta_marginal_has_the_asked_moments():
    marginal = BetaMarginal(0, 52, 8.5, 5.7)
    draws = marginal.from_normal(np.random.default_rng(1).standard_normal(400_000))
    assert draws.min() >= 0 and draws.max() <= 52
    assert draws.mean() == pytest.approx(8.5, abs=0.05)
    assert draws.std() == pytest.approx(5.7, abs=0.05)


def test_impossible_marginals_are_refused():
    with pytest.raises(CalibrationError, match="outside|inside"):
        BetaMarginal(0, 10, 12, 1)
    with pytest.raises(CalibrationError, match="largest possible SD"):
        BetaMarginal(0, 10, 5, 6)


def test_solved_latent_correlation_gives_the_target_pearson():
    first, second = BetaMarginal(12, 60, 46, 6.5), BetaMarginal(0, 52, 8.5, 5.7)
    rho = latent_correlation(-0.65, first, second)
    # Check by simulation, independent of the quadrature used to solve.
    z = np.random.default_rng(5).multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=400_000)
    x, y = first.from_normal(z[:, 0]), second.from_normal(z[:, 1])
    assert np.corrcoef(x, y)[0, 1] == pytest.approx(-0.65, abs=0.005)
    # Skewed marginals need a stronger latent correlation than the target.
    assert rho < -0.65


def test_symmetric_marginals_keep_the_correlation_nearly_unchanged():
    marginal = BetaMarginal(0, 1, 0.5, 0.15)
    assert pearson_from_latent(0.5, marginal, marginal) == pytest.approx(0.5, abs=0.01)


def test_unreachable_correlation_is_refused():
    skewed, mirrored = BetaMarginal(0, 1, 0.05, 0.1), BetaMarginal(0, 1, 0.95, 0.1)
    with pytest.raises(CalibrationError, match="out of reach"):
        latent_correlation(0.99, skewed, mirrored)


def test_nearest_correlation():
    good = np.array([[1, 0.5], [0.5, 1.0]])
    assert nearest_correlation(good) is good
    bad = np.array([[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1.0]])
    fixed = nearest_correlation(bad)
    assert np.linalg.eigvalsh(fixed).min() > 0
    np.testing.assert_allclose(np.diag(fixed), 1.0)
    np.testing.assert_allclose(fixed, fixed.T)
