"""Confidence intervals for the parameters of a linear mixed model: profile likelihood and Wald.

:func:`alliance.stats.mixed.confint` calls :func:`profile_intervals` or :func:`wald_intervals`
with a :class:`Criterion` (θ → the pieces of the deviance, from either fitter) and the layout of
the random-effects terms. Our own code because it is the product (R-exact statistics): lme4's
``confint(m, method = "profile")`` is the interval R users report for variance components.

Parameters on lme4's "sdcor" scale, ψ = (per term: the SDs and correlations of its random effects,
column by column of the lower triangle of the covariance, as θ is stored; then σ). From ψ,
θ = vech(diag(sd/σ) · chol(R)) with R the correlation matrix, so the covariance of a term's
random effects is σ² T Tᵀ with T = diag(sd/σ) chol(R). With β profiled out, the ML deviance of
the variance parameters is (Bates et al. 2015, eq. 34 with σ kept)

    f(ψ) = log|L_θ|² + n log(2πσ²) + r²(θ)/σ²,

and the profile of ψ_j is ζ(v) = sign(v − ψ̂_j) √(min_{ψ: ψ_j = v} f(ψ) − f(ψ̂)), ψ̂ the ML
estimate. For a fixed effect β_j, r² with β_j held at b and the other coefficients profiled out is
r²(θ) + (b − β̂_j(θ))² / [(R_XᵀR_X)⁻¹]_jj (the penalized residual is quadratic in β with Hessian
R_XᵀR_X), and σ is profiled out: f_b(θ) = log|L_θ|² + n(1 + log(2π r²_b(θ)/n)), minimised over θ.

The interval at level 1 − α is {v : |ζ(v)| ≤ z_{1−α/2}}, its ends the roots of ζ(v) = ±z found
here by bracketing and Brent's method, each ζ a re-optimisation of the other parameters
(projected quasi-Newton, warm-started from the points already profiled). lme4 instead evaluates
ζ on a grid and inverts an interpolation spline (``?profile.merMod``), so the two agree to the
spline's accuracy: about 1e-4 relative, 2e-3 for a correlation next to ±1 (measured in
``tests/stats/test_confint.py``). As lme4 does, the profile is of the ML
deviance also for a REML fit (lme4's ``profile`` refits the model by ML first). When ζ has not
reached the cutoff where an SD reaches 0 (or a correlation ±1), that bound is the interval's end:
lme4 reports 0 there too.

The Wald intervals of variance components are our addition (lme4's ``method = "Wald"`` gives NA
for them): ψ̂ ± z · SE with Cov(ψ̂) = 2 H⁻¹, H the Hessian of the fitted criterion (REML or ML
deviance, σ not profiled) in ψ at the fit, by Richardson extrapolation; a lower end below 0 of an
SD or σ is set to 0 and correlations are clipped to [−1, 1].

References
----------
Bates D, Mächler M, Bolker B, Walker S (2015). Fitting Linear Mixed-Effects Models Using lme4.
J Stat Softw 67(1):1-48 (the profiled deviance; profile ζ and profile confidence intervals in its
output section). Bates DM (2010). lme4: Mixed-effects modeling with R (book draft), chapter 1:
profile ζ plots, ζ = signed square root of the change in deviance. lme4's documentation of
``profile.merMod`` and ``confint.merMod``: ζ on the "sdcor" scale, the ML refit of a REML model,
the interpolation spline through the ζ grid, 0 as the lower end at a boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg as la
from scipy import optimize, stats

from ._lmm_sparse import richardson_hessian


@dataclass(frozen=True)
class CovarianceTerm:
    """One random-effects term: lme4's group name (``Subject``), its columns and where its θ starts."""

    group: str
    names: tuple[str, ...]
    theta_start: int

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def n_theta(self) -> int:
        return self.k * (self.k + 1) // 2

    def entries(self):
        """(row, column) of each θ / ψ entry of the term: lower triangle, column by column."""
        return [(row, col) for col in range(self.k) for row in range(col, self.k)]


class Criterion:
    """The deviance of either fitter as a function of θ (and σ): log-determinants, r², β̂, (R_XᵀR_X)⁻¹.

    ``deviance`` is an :class:`~alliance.stats._lmm_deviance.ProfiledDeviance` (one plain term) or
    an :class:`~alliance.stats._lmm_sparse.SparseDeviance`; ``reml`` is read from it.
    """

    def __init__(self, deviance):
        self.deviance = deviance
        self.reml = bool(deviance.reml)
        self.sparse = hasattr(deviance, "pieces")
        self.n_obs = int(deviance.n if self.sparse else deviance.n_obs)
        self.n_fixed = int(deviance.p if self.sparse else deviance.n_fixed)
        self.n_prime = self.n_obs - self.n_fixed if self.reml else self.n_obs

    def parts(self, theta: np.ndarray):
        """(log-determinant term, r², β̂, (R_XᵀR_X)⁻¹) at θ, or None where the deviance is undefined."""
        theta = np.asarray(theta, dtype=float)
        if not np.all(np.isfinite(theta)):
            return None
        if self.sparse:
            got = self.deviance.pieces(theta)
            if not got["ok"]:
                return None
            logdet = got["logdet_l"] + (got["logdet_rx"] if self.reml else 0.0)
            c_inv = la.cho_solve((got["rx"], False), np.eye(self.n_fixed), check_finite=False)
            return logdet, float(got["pwrss"]), got["beta"], c_inv
        try:
            st = self.deviance.state(theta)
        except np.linalg.LinAlgError:
            return None
        if not st.pwrss > 0:
            return None
        logdet = st.log_det_w + (st.log_det_c if self.reml else 0.0)
        return logdet, float(st.pwrss), self.deviance.ols_beta + st.beta, st.c_inv

    def varpar(self, theta: np.ndarray, sigma: float) -> float:
        """f(θ, σ): the deviance with β profiled out and σ kept."""
        got = self.parts(theta)
        if got is None or not sigma > 0:
            return np.inf
        logdet, pwrss, _, _ = got
        return float(logdet + self.n_prime * np.log(2.0 * np.pi * sigma**2) + pwrss / sigma**2)

    def profiled(self, theta: np.ndarray) -> float:
        """The deviance with σ profiled out too (lme4's objective)."""
        got = self.parts(theta)
        if got is None:
            return np.inf
        logdet, pwrss, _, _ = got
        n = self.n_prime
        return float(logdet + n * (1.0 + np.log(2.0 * np.pi * pwrss / n)))

    def fixed_profiled(self, theta: np.ndarray, index: int, value: float) -> float:
        """ML deviance with β_index held at ``value``, the other β and σ profiled out."""
        got = self.parts(theta)
        if got is None:
            return np.inf
        logdet, pwrss, beta, c_inv = got
        pwrss = pwrss + (value - beta[index]) ** 2 / c_inv[index, index]
        n = self.n_prime
        return float(logdet + n * (1.0 + np.log(2.0 * np.pi * pwrss / n)))

    def sigma(self, theta: np.ndarray) -> float:
        return float(np.sqrt(self.parts(theta)[1] / self.n_prime))

    # Exact gradients where the fitter has them (one plain term, :mod:`._lmm_deviance`); the
    # sparse fitter's deviance is differentiated numerically by the optimiser instead.
    @property
    def has_gradient(self) -> bool:
        return not self.sparse

    def varpar_gradient(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """∂f/∂(θ, σ)."""
        return self.deviance.varpar_gradient(theta, sigma)

    def fixed_profiled_gradient(self, theta: np.ndarray, index: int, value: float) -> tuple[float, np.ndarray]:
        """:meth:`fixed_profiled` and its θ-gradient (one plain term).

        With R = r² + (b − β̂_j)²/c_jj (c = (R_XᵀR_X)⁻¹): dR = dr² − 2(b − β̂_j) dβ̂_j / c_jj
        − (b − β̂_j)² dc_jj / c_jj², where C dβ̂ = −Σ Bᵢᵀ dD aᵢ and dc = c (Σ Bᵢᵀ dD Bᵢ) c
        (:mod:`._lmm_deviance`); the deviance's gradient is d log|W| + (n′/R) dR.
        """
        dev = self.deviance
        st = dev.state(theta)
        if not st.pwrss > 0:
            return np.inf, np.zeros(len(theta))
        n = self.n_prime
        residual = value - (dev.ols_beta[index] + st.beta[index])
        c_jj = st.c_inv[index, index]
        pwrss = st.pwrss + residual**2 / c_jj
        grad_logdet, grad_pwrss = dev._grad_d_parts(st)
        d_logdet = dev._chain(grad_logdet, st.factor)
        d_pwrss = dev._chain(grad_pwrss, st.factor)
        dirs = dev._directions(st.factor)                                   # dD/dθ_m, (m, q, q)
        da = np.einsum("mqr,gr->mgq", dirs, st.a)
        h = np.einsum("mgq,gqp->mp", da, st.b)
        d_beta_j = -(h @ st.c_inv[:, index])
        u_j = np.einsum("gq,mqr,gr->m", st.b @ st.c_inv[:, index], dirs, st.b @ st.c_inv[:, index])
        d_total = d_pwrss - 2.0 * residual * d_beta_j / c_jj - residual**2 * u_j / c_jj**2
        deviance = st.log_det_w + n * (1.0 + np.log(2.0 * np.pi * pwrss / n))
        return float(deviance), d_logdet + (n / pwrss) * d_total


# -- ψ ↔ θ -----------------------------------------------------------------------------------------

def parameter_names(terms: list[CovarianceTerm]) -> list[str]:
    """lme4's row names of ``confint(m, oldNames = FALSE)``: ``sd_Days|Subject``, ``cor_Days.(Intercept)|Subject``."""
    names = []
    for term in terms:
        for row, col in term.entries():
            if row == col:
                names.append(f"sd_{term.names[row]}|{term.group}")
            else:
                names.append(f"cor_{term.names[row]}.{term.names[col]}|{term.group}")
    return names + ["sigma"]


def parameter_kinds(terms: list[CovarianceTerm]) -> list[str]:
    return [("sd" if row == col else "cor") for term in terms for row, col in term.entries()] + ["sigma"]


def psi_of(theta: np.ndarray, sigma: float, terms: list[CovarianceTerm]) -> np.ndarray:
    """ψ (SDs, correlations, σ) from θ and σ; a correlation with a zero SD is NaN (undefined)."""
    out = []
    for term in terms:
        t = _lower(np.asarray(theta)[term.theta_start:term.theta_start + term.n_theta], term)
        covariance = sigma**2 * (t @ t.T)
        sd = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
        for row, col in term.entries():
            if row == col:
                out.append(sd[row])
            else:
                product = sd[row] * sd[col]
                # clipped: at a correlation of ±1 rounding can put the ratio a few ulps beyond
                out.append(float(np.clip(covariance[row, col] / product, -1.0, 1.0)) if product > 0 else np.nan)
    return np.array(out + [sigma], dtype=float)


def theta_of(psi: np.ndarray, terms: list[CovarianceTerm], n_theta: int) -> tuple[np.ndarray, float]:
    """θ from ψ and a penalty (0 unless a term's correlations do not form a correlation matrix).

    An invalid set of correlations (possible with three or more columns) is replaced by the nearest
    positive semi-definite matrix with unit diagonal, and the penalty says how far it was, so that
    an optimiser is pushed back instead of meeting an undefined value.
    """
    sigma = psi[-1]
    theta = np.zeros(n_theta)
    penalty = 0.0
    position = 0
    for term in terms:
        values = psi[position:position + term.n_theta]
        position += term.n_theta
        sd = np.zeros(term.k)
        correlation = np.eye(term.k)
        for value, (row, col) in zip(values, term.entries(), strict=True):
            if row == col:
                sd[row] = value
            else:
                correlation[row, col] = correlation[col, row] = value
        factor, excess = _correlation_factor(correlation)
        penalty += excess
        t = (sd / sigma)[:, None] * factor
        theta[term.theta_start:term.theta_start + term.n_theta] = [t[row, col] for row, col in term.entries()]
    return theta, penalty


def _lower(values: np.ndarray, term: CovarianceTerm) -> np.ndarray:
    t = np.zeros((term.k, term.k))
    for value, (row, col) in zip(values, term.entries(), strict=True):
        t[row, col] = value
    return t


def _correlation_factor(correlation: np.ndarray) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of a correlation matrix (semi-definite allowed) and a penalty if invalid."""
    k = correlation.shape[0]
    if k == 1:
        return np.ones((1, 1)), 0.0
    if k == 2:
        r = correlation[1, 0]
        excess = max(abs(r) - 1.0, 0.0)
        r = float(np.clip(r, -1.0, 1.0))
        return np.array([[1.0, 0.0], [r, np.sqrt(1.0 - r * r)]]), 1e6 * excess**2
    values, vectors = np.linalg.eigh(correlation)
    excess = float(np.sum(np.clip(-values, 0.0, None) ** 2))
    if values.min() < 0:
        fixed = (vectors * np.clip(values, 0.0, None)) @ vectors.T
        d = np.sqrt(np.clip(np.diag(fixed), 1e-300, None))
        correlation = fixed / np.outer(d, d)
    # semi-definite Cholesky: a zero pivot leaves its column below at zero
    factor = np.zeros((k, k))
    for j in range(k):
        pivot = correlation[j, j] - factor[j, :j] @ factor[j, :j]
        factor[j, j] = np.sqrt(max(pivot, 0.0))
        if factor[j, j] > 1e-12:
            factor[j + 1:, j] = (correlation[j + 1:, j] - factor[j + 1:, :j] @ factor[j, :j]) / factor[j, j]
    return factor, 1e6 * excess


def psi_deviance(criterion: Criterion, terms: list[CovarianceTerm], n_theta: int):
    """f(ψ): the criterion's deviance with σ kept, as a function of ψ."""
    def deviance(psi: np.ndarray) -> float:
        psi = np.asarray(psi, dtype=float)
        if not psi[-1] > 0:
            return np.inf
        theta, penalty = theta_of(psi, terms, n_theta)
        return criterion.varpar(theta, psi[-1]) + penalty
    return deviance


def psi_deviance_gradient(criterion: Criterion, terms: list[CovarianceTerm], n_theta: int):
    """f(ψ) and ∂f/∂ψ = Jᵀ ∂f/∂(θ, σ) with J = ∂(θ, σ)/∂ψ.

    θ = vech(diag(sd/σ) chol(R)) is linear in each SD (∂θ/∂sd_r = row r of chol(R)/σ) and
    ∂θ/∂σ = −θ/σ; the correlations enter through chol(R), differentiated by central differences
    of that (cheap) map.
    """
    kinds = parameter_kinds(terms)
    rows_of = [row for term in terms for row, _ in term.entries()]
    term_of = [t for t, term in enumerate(terms) for _ in term.entries()]

    def value_and_gradient(psi: np.ndarray) -> tuple[float, np.ndarray]:
        psi = np.asarray(psi, dtype=float)
        if not psi[-1] > 0:
            return np.inf, np.zeros_like(psi)
        sigma = psi[-1]
        theta, penalty = theta_of(psi, terms, n_theta)
        value = criterion.varpar(theta, sigma) + penalty
        if not np.isfinite(value):
            return np.inf, np.zeros_like(psi)
        outer = criterion.varpar_gradient(theta, sigma)
        g_theta = outer[:-1]
        gradient = np.empty_like(psi)
        gradient[-1] = outer[-1] - g_theta @ theta / sigma
        for i, kind in enumerate(kinds[:-1]):
            term = terms[term_of[i]]
            block = slice(term.theta_start, term.theta_start + term.n_theta)
            if kind == "sd":
                # θ entries of row r of T, divided by sd_r, are ∂θ/∂sd_r (0/0 at sd_r = 0: recompute)
                unit = psi.copy()
                unit[i] = 1.0
                unit_theta, _ = theta_of(unit, terms, n_theta)
                in_row = np.array([row == rows_of[i] for row, _ in term.entries()])
                gradient[i] = float(g_theta[block][in_row] @ unit_theta[block][in_row])
            else:
                # central differences inside (−1, 1); one-sided at the bounds, beyond which chol(R)
                # is not defined
                h = 1e-7
                up, down = psi.copy(), psi.copy()
                up[i] = min(psi[i] + h, 1.0)
                down[i] = max(psi[i] - h, -1.0)
                theta_up, penalty_up = theta_of(up, terms, n_theta)
                theta_down, penalty_down = theta_of(down, terms, n_theta)
                gradient[i] = (g_theta @ (theta_up - theta_down) + penalty_up - penalty_down) / (up[i] - down[i])
        return float(value), gradient
    return value_and_gradient


# -- profiles --------------------------------------------------------------------------------------

class _Profile:
    """ζ(v) of one parameter: the others re-optimised with it held at v.

    Each re-optimisation is a projected quasi-Newton minimisation (:func:`_quasi_newton`) started
    from the straight-line extrapolation of the two nearest points already profiled, with the
    curvature carried over from the previous one (it changes slowly along the profile): a few
    iterations each, where a cold-started L-BFGS-B with numerical gradients needs many times the
    evaluations.
    """

    def __init__(self, objective, estimate: float, free_start: np.ndarray, bounds, scale: np.ndarray,
                 base: float, hessian: np.ndarray, with_gradient: bool = False):
        self.objective = objective          # objective(v, free) -> deviance (and its gradient)
        self.with_gradient = with_gradient
        self.estimate = estimate
        self.scale = scale
        self.lower = np.array([-np.inf if lo is None else lo / sc for (lo, _), sc in zip(bounds, scale, strict=True)])
        self.upper = np.array([np.inf if hi is None else hi / sc for (_, hi), sc in zip(bounds, scale, strict=True)])
        self.base = base
        self.solutions = [(estimate, np.asarray(free_start, dtype=float) / scale)]
        self.hessian = hessian * np.outer(scale, scale)   # in the scaled coordinates
        self.lowest = base

    def _start(self, v: float) -> np.ndarray:
        near = sorted(self.solutions, key=lambda item: abs(item[0] - v))
        if len(near) == 1 or near[0][0] == near[1][0]:
            return near[0][1]
        (v0, x0), (v1, x1) = near[0], near[1]
        guess = x0 + (x0 - x1) * (v - v0) / (v0 - v1)
        return np.clip(guess, self.lower, self.upper)

    def minimum(self, v: float) -> float:
        if self.scale.size == 0:
            value = self.objective(v, self.scale)
            return value[0] if self.with_gradient else value
        if self.with_gradient:
            def value_and_gradient(z):
                value, gradient = self.objective(v, z * self.scale)
                return value, gradient * self.scale
        else:
            def value_and_gradient(z):
                return self.objective(v, z * self.scale), None
        starts = [self._start(v), min(self.solutions, key=lambda item: abs(item[0] - v))[1]]
        best_value, best = np.inf, starts[0]
        for start in starts:
            value, x, hessian, ok = _quasi_newton(value_and_gradient, start, self.hessian, self.lower, self.upper)
            if not ok:   # fall back to L-BFGS-B from where it stopped
                value, x = _lbfgsb(value_and_gradient, x, self.lower, self.upper, self.with_gradient)
            if value < best_value:
                best_value, best = value, x
                if ok:
                    self.hessian = hessian
            if ok:
                break
        # The deviance is even in a θ on the diagonal (and in the SD of a one-column term), so at 0
        # its gradient vanishes and 0 can be a saddle the Newton steps never leave: probe off it.
        for i in np.flatnonzero(np.isfinite(self.lower) & (best <= self.lower)):
            for offset in (1e-2, 0.3, 1.0):
                trial = best.copy()
                trial[i] = self.lower[i] + offset
                if value_and_gradient(trial)[0] < best_value:
                    value, x, hessian, ok = _quasi_newton(value_and_gradient, trial, self.hessian, self.lower,
                                                          self.upper)
                    if not ok:
                        value, x = _lbfgsb(value_and_gradient, x, self.lower, self.upper, self.with_gradient)
                    if value < best_value:
                        best_value, best = value, x
                    break
        self.solutions.append((v, best))
        self.lowest = min(self.lowest, best_value)
        return best_value

    def zeta(self, v: float) -> float:
        value = self.minimum(v)
        return float(np.sign(v - self.estimate) * np.sqrt(max(value - self.base, 0.0)))


def _gradient(value_and_gradient, x, f0, lower, upper, h=1e-5):
    """Analytic gradient if given, else central differences (one-sided, second order, at a bound)."""
    _, analytic = value_and_gradient(x)
    if analytic is not None:
        return np.asarray(analytic, dtype=float)
    out = np.empty_like(x)
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = h
        if x[i] - h >= lower[i] and x[i] + h <= upper[i]:
            out[i] = (value_and_gradient(x + e)[0] - value_and_gradient(x - e)[0]) / (2 * h)
        elif x[i] - h < lower[i]:
            out[i] = (-3 * f0 + 4 * value_and_gradient(x + e)[0] - value_and_gradient(x + 2 * e)[0]) / (2 * h)
        else:
            out[i] = (3 * f0 - 4 * value_and_gradient(x - e)[0] + value_and_gradient(x - 2 * e)[0]) / (2 * h)
    return out


def _quasi_newton(value_and_gradient, x, hessian, lower, upper, max_iter=60, tolerance=1e-11):
    """Projected Newton steps on a BFGS-updated Hessian within box bounds.

    Coordinates on a bound whose gradient or Newton step points outward are held there; the rest
    take the Newton step of the positive-definite part of the Hessian, halved until the deviance goes
    down. Stops when the predicted decrease gᵀH⁻¹g/2 is below ``tolerance`` (in deviance units:
    ζ then is exact to about 1e-11). Returns (value, x, Hessian, converged).
    """
    x = np.clip(np.asarray(x, dtype=float), lower, upper)
    f = value_and_gradient(x)[0]
    if not np.isfinite(f):
        return f, x, hessian, False
    g = _gradient(value_and_gradient, x, f, lower, upper)
    h = 0.5 * (hessian + hessian.T)
    for _iteration in range(max_iter):
        held = ((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0))
        for _pass in range(len(x)):
            free = ~held
            if not free.any():
                return f, x, h, True
            values, vectors = np.linalg.eigh(h[np.ix_(free, free)])
            floor = 1e-10 * max(1.0, float(np.abs(values).max()))
            values = np.maximum(np.abs(values), floor)
            step = np.zeros_like(x)
            step[free] = -(vectors / values) @ (vectors.T @ g[free])
            # a coordinate on its bound whose Newton step leaves the box is held there too
            outward = free & (((x <= lower) & (step < 0)) | ((x >= upper) & (step > 0)))
            if not outward.any():
                break
            held = held | outward
        predicted = -float(g[free] @ step[free])
        if predicted < tolerance:
            return f, x, h, True
        scale = 1.0
        accepted = False
        while scale > 1e-10:
            trial = np.clip(x + scale * step, lower, upper)
            trial_f = value_and_gradient(trial)[0]
            if np.isfinite(trial_f) and trial_f <= f - 1e-4 * scale * predicted:
                accepted = True
                break
            scale *= 0.5
        if not accepted:
            # no decrease along the Newton direction: converged to the noise of the deviance, or stuck
            return f, x, h, predicted < 1e-7
        trial_g = _gradient(value_and_gradient, trial, trial_f, lower, upper)
        s_vec, y_vec = trial - x, trial_g - g
        sy = float(s_vec @ y_vec)
        if sy > 1e-12 * float(np.linalg.norm(s_vec) * np.linalg.norm(y_vec)):
            hs = h @ s_vec
            h = h - np.outer(hs, hs) / float(s_vec @ hs) + np.outer(y_vec, y_vec) / sy
        x, f, g = trial, trial_f, trial_g
    return f, x, h, False


def _lbfgsb(value_and_gradient, x, lower, upper, with_gradient):
    bounds = [(None if not np.isfinite(lo) else lo, None if not np.isfinite(hi) else hi)
              for lo, hi in zip(lower, upper, strict=True)]
    if with_gradient:
        fit = optimize.minimize(value_and_gradient, x, method="L-BFGS-B", jac=True, bounds=bounds,
                                options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 5000})
    else:
        fit = optimize.minimize(lambda z: value_and_gradient(z)[0], x, method="L-BFGS-B", jac="3-point",
                                bounds=bounds, options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 5000})
    return float(fit.fun), np.asarray(fit.x, dtype=float)


def _limit(profile: _Profile, direction: int, cutoff: float, step: float, bound: float | None,
           return_bound: bool) -> float:
    """The end of the interval on one side: |ζ| = cutoff, or the parameter's bound if ζ stops short of it."""
    estimate = profile.estimate
    inside = estimate
    x = estimate + direction * step
    for _expansion in range(80):
        if bound is not None and direction * (x - bound) >= 0:
            x = bound
            z = abs(profile.zeta(x)) if x != estimate else 0.0
            if z < cutoff:
                return bound if return_bound else np.nan
            break
        z = abs(profile.zeta(x))
        if z >= cutoff:
            break
        factor = min(max(1.1 * cutoff / z, 1.25), 4.0) if z > 1e-6 else 4.0
        inside, x = x, estimate + (x - estimate) * factor
    else:
        return np.nan
    width = abs(x - inside)
    # 1e-9 of the scale: far below the 1e-4 at which lme4's spline reproduces the profile
    return float(optimize.brentq(lambda v: abs(profile.zeta(v)) - cutoff, inside, x,
                                 xtol=1e-9 * max(width, abs(x), 1e-300), rtol=1e-12, maxiter=200))


def profile_intervals(criterion: Criterion, terms: list[CovarianceTerm], theta: np.ndarray,
                      lower: np.ndarray, fixed_names: list[str], level: float,
                      parm: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Profile intervals of ψ and β from an ML criterion at its optimum θ̂ (lme4's ``confint``).

    Returns the table (index: lme4's names; columns ``lower, upper``) and notes in words.
    """
    if criterion.reml:
        raise ValueError("profiles are taken of the ML deviance (as lme4); pass an ML criterion")
    cutoff = float(stats.norm.ppf(0.5 + level / 2.0))
    n_theta = len(theta)
    sigma = criterion.sigma(theta)
    psi_hat = psi_of(theta, sigma, terms)
    names = parameter_names(terms)
    kinds = parameter_kinds(terms)
    deviance = psi_deviance(criterion, terms, n_theta)
    with_gradient = criterion.has_gradient
    target = psi_deviance_gradient(criterion, terms, n_theta) if with_gradient else deviance
    base = criterion.profiled(theta)
    wanted = list(names) + list(fixed_names) if parm is None else list(parm)
    notes: list[str] = []
    # Starting steps: the Wald SEs at the ML fit (in ψ, over the defined parameters).
    defined = np.isfinite(psi_hat)
    filled = np.where(defined, psi_hat, 0.0)
    se = np.full(len(psi_hat), np.nan)
    se[defined], curvature = _wald_se(deviance, filled, defined)
    # the curvature the profiles start from; an undefined correlation (zero SD) gets a unit one
    hessian = np.eye(len(psi_hat))
    hessian[np.ix_(defined, defined)] = curvature
    scale = np.array([abs(v) if kind != "cor" and abs(v) > 0 else (sigma if kind != "cor" else 1.0)
                      for v, kind in zip(filled, kinds, strict=True)])
    bounds_of = {"sd": (0.0, None), "cor": (-1.0, 1.0), "sigma": (1e-8 * sigma, None)}
    rows = {}
    lowest = base
    for j, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        if name not in wanted:
            continue
        if not defined[j]:
            rows[name] = (np.nan, np.nan)
            notes.append(f"{name}: the correlation is undefined (an SD of its term is 0); no interval")
            continue
        others = np.flatnonzero(np.arange(len(psi_hat)) != j)
        # The other correlations are optimised as angles, r = sin φ: the deviance depends on r
        # through √(1 − r²) (the Cholesky factor of R), which is not smooth at ±1 but cos φ is,
        # so Newton steps also converge when a correlation is near its bound.
        angle = np.array([kinds[i] == "cor" for i in others], dtype=bool)
        start = filled[others].copy()
        start[angle] = np.arcsin(np.clip(start[angle], -1.0, 1.0))
        jacobian = np.where(angle, np.maximum(np.cos(start), 0.1), 1.0)
        free_bounds = [(-np.pi / 2, np.pi / 2) if is_angle else bounds_of[kinds[i]]
                       for i, is_angle in zip(others, angle, strict=True)]

        def objective(v, free, j=j, others=others, angle=angle):
            psi = filled.copy()
            psi[j] = v
            psi[others] = np.where(angle, np.sin(free), free)
            if not with_gradient:
                return deviance(psi)
            value, gradient = target(psi)
            return value, np.where(angle, gradient[others] * np.cos(free), gradient[others])
        profile = _Profile(objective, filled[j], start, free_bounds, np.where(angle, 1.0, scale[others]), base,
                           hessian[np.ix_(others, others)] * np.outer(jacobian, jacobian), with_gradient)
        step = cutoff * se[j] if np.isfinite(se[j]) and se[j] > 0 else 0.5 * scale[j]
        low_bound, high_bound = bounds_of[kind]
        if kind == "cor":
            step = min(step, 0.5 * max(1.0 - abs(filled[j]), 1e-3))
        lo = _limit(profile, -1, cutoff, step, low_bound, return_bound=kind != "sigma")
        hi = _limit(profile, +1, cutoff, step, high_bound, return_bound=True)
        rows[name] = (lo, hi)
        lowest = min(lowest, profile.lowest)
    n_fixed = criterion.n_fixed
    _, pwrss, beta, c_inv = criterion.parts(theta)
    theta_scale = np.where(np.abs(theta) > 0, np.abs(theta), 1.0)
    theta_bounds = [(0.0, None) if np.isfinite(b) else (None, None) for b in lower]
    theta_hessian = None
    for index, name in enumerate(fixed_names[:n_fixed]):
        if name not in wanted:
            continue

        def objective(v, free, index=index):
            if with_gradient:
                return criterion.fixed_profiled_gradient(free, index, v)
            return criterion.fixed_profiled(free, index, v)
        if theta_hessian is None:
            theta_hessian = _positive_part(richardson_hessian(criterion.profiled, theta, d=0.01, r=2))
        profile = _Profile(objective, float(beta[index]), theta, theta_bounds, theta_scale, base, theta_hessian,
                           with_gradient)
        se_beta = np.sqrt(pwrss / criterion.n_prime * c_inv[index, index])
        rows[name] = (_limit(profile, -1, cutoff, cutoff * se_beta, None, True),
                      _limit(profile, +1, cutoff, cutoff * se_beta, None, True))
        lowest = min(lowest, profile.lowest)
    undefined = {name for name, ok in zip(names, defined, strict=True) if not ok}   # noted above
    missing = [name for name, ends in rows.items() if name not in undefined and np.isnan(ends).any()]
    if missing:
        notes.append(f"no interval end found for {', '.join(missing)}: the profile did not reach the cutoff "
                     "(NaN)")
    if lowest < base - 1e-6 * max(1.0, abs(base)):
        notes.append(f"profiling found a deviance {base - lowest:.3g} below the ML fit's: the ML optimum was not "
                     "reached, so the intervals are unreliable")
    unknown = [p for p in wanted if p not in rows and p not in names and p not in fixed_names]
    if unknown:
        raise ValueError(f"parm names {unknown}, which are not parameters of the model; allowed: "
                         f"{names + list(fixed_names)}")
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])
    return table.loc[[p for p in wanted if p in rows]], notes


def _positive_part(matrix: np.ndarray) -> np.ndarray:
    """The symmetric matrix with its eigenvalues made positive (|λ|, at least 1e-8 of the largest)."""
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    values = np.maximum(np.abs(values), 1e-8 * max(1e-300, float(np.abs(values).max())))
    return (vectors * values) @ vectors.T


def _wald_se(deviance, psi: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SEs of the free entries of ψ, √diag(2 H⁻¹) (positive part of H, the deviance's Hessian), and H."""
    def restricted(sub):
        full = psi.copy()
        full[free] = sub
        return deviance(full)
    hessian = richardson_hessian(restricted, psi[free], d=0.01)
    values, vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
    positive = values > 1e-8 * max(1.0, float(np.abs(values).max()))
    covariance = 2.0 * (vectors[:, positive] / values[positive]) @ vectors[:, positive].T
    se = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    # a direction the Hessian cannot see (zero eigenvalue) has no finite SE
    blind = np.abs(vectors[:, ~positive]).max(axis=1) > 1e-6 if (~positive).any() else np.zeros(len(se), bool)
    se[blind] = np.nan
    return se, hessian


def wald_intervals(criterion: Criterion, terms: list[CovarianceTerm], theta: np.ndarray, sigma: float,
                   level: float) -> pd.DataFrame:
    """Wald intervals of ψ on the SD scale from the fitted criterion's Hessian in ψ (our addition)."""
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    psi_hat = psi_of(theta, sigma, terms)
    kinds = parameter_kinds(terms)
    defined = np.isfinite(psi_hat)
    filled = np.where(defined, psi_hat, 0.0)
    se = np.full(len(psi_hat), np.nan)
    se[defined] = _wald_se(psi_deviance(criterion, terms, len(theta)), filled, defined)[0]
    lower, upper = psi_hat - z * se, psi_hat + z * se
    for j, kind in enumerate(kinds):
        if kind == "cor":
            lower[j], upper[j] = max(lower[j], -1.0), min(upper[j], 1.0)
        else:
            lower[j] = max(lower[j], 0.0)
    return pd.DataFrame({"estimate": psi_hat, "lower": lower, "upper": upper, "se": se},
                        index=parameter_names(terms))
