"""Kenward–Roger inference for :func:`alliance.stats.mixedlm`, as pbkrtest (and lmerTest's ``ddf = "Kenward-Roger"``).

Kenward & Roger (1997) adjust vcov(β) for the uncertainty of the variance parameters and give an
F test with a scaled statistic and approximate denominator df. With V = Σᵢ φᵢ Gᵢ the marginal
covariance of y (φ: each random-effect variance and covariance, and the residual variance;
Gᵢ = ∂V/∂φᵢ), Φ = (XᵀV⁻¹X)⁻¹, Pᵢ = −XᵀV⁻¹GᵢV⁻¹X, Qᵢⱼ = XᵀV⁻¹GᵢV⁻¹GⱼV⁻¹X and W = 2 I_E⁻¹ (I_E
the expected REML information, tr(V⁻¹GᵢV⁻¹Gⱼ) − 2 tr(Φ Qᵢⱼ) + tr(Φ Pᵢ Φ Pⱼ)), the adjusted
covariance is Φ_A = Φ + 2 Φ [Σᵢⱼ Wᵢⱼ (Qᵢⱼ − Pᵢ Φ Pⱼ)] Φ; the df follow Halekoh & Højsgaard (2014,
section 3), as pbkrtest's ``vcovAdj`` and ``Lb_ddf`` compute them.

This needs V as a dense n × n matrix, as pbkrtest does: it is refused above 5,000 observations.

References
----------
Kenward MG, Roger JH (1997). Small sample inference for fixed effects from restricted maximum
likelihood. Biometrics 53(3):983-997. Halekoh U, Højsgaard S (2014). A Kenward-Roger
approximation and parametric bootstrap methods for tests in linear mixed models — the R package
pbkrtest. J Stat Softw 59(9):1-32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_OBSERVATIONS = 5000


@dataclass(frozen=True)
class KenwardRoger:
    phi: np.ndarray            # unadjusted vcov(β)
    phi_adjusted: np.ndarray   # Φ_A
    p: list                    # Pᵢ
    w: np.ndarray              # W

    def ddf(self, contrast: np.ndarray) -> tuple[float, float]:
        """(denominator df, F scaling λ) for a contrast of full row rank (pbkrtest's Lb_ddf / KRmodcomp)."""
        matrix = np.atleast_2d(contrast)
        q = matrix.shape[0]
        theta = matrix.T @ np.linalg.solve(matrix @ self.phi @ matrix.T, matrix)
        tv = theta @ self.phi
        us = [tv @ p @ self.phi for p in self.p]
        a1 = a2 = 0.0
        n = len(us)
        for i in range(n):
            for j in range(i, n):
                e = 1.0 if i == j else 2.0
                a1 += e * self.w[i, j] * np.trace(us[i]) * np.trace(us[j])
                a2 += e * self.w[i, j] * np.sum(us[i] * us[j].T)
        b = (a1 + 6 * a2) / (2 * q)
        g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
        c1 = g / (3 * q + 2 * (1 - g))
        c2 = (q - g) / (3 * q + 2 * (1 - g))
        c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
        v0 = 1 + c1 * b
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        v1, v2 = 1 - c2 * b, 1 - c3 * b
        rho = (1 / q) * ((1 - a2 / q) / v1) ** 2 * v0 / v2
        df2 = 4 + (q + 2) / (q * rho - 1)
        scaling = 1.0 if abs(df2 - 2) < 1e-2 else df2 * (1 - a2 / q) / (df2 - 2)
        return float(df2), float(scaling)


def kenward_roger(x: np.ndarray, blocks_z: list[list[np.ndarray]], covariances: list[np.ndarray],
                  residual_variance: float) -> KenwardRoger:
    """The Kenward–Roger pieces of a fitted model.

    Parameters
    ----------
    x : ndarray (n × p)
    blocks_z : list of list of ndarray
        Per random-effects term, per column a of the term, the n × m matrix of Z's columns for a
        (one column per level).
    covariances : list of ndarray
        Per term, its k × k covariance matrix (σ² T Tᵀ).
    residual_variance : float
    """
    n = x.shape[0]
    if n > MAX_OBSERVATIONS:
        raise ValueError(f"Kenward-Roger needs the n x n marginal covariance; {n} observations are more than "
                         f"{MAX_OBSERVATIONS} (use Satterthwaite df, the default)")
    g = []
    v = residual_variance * np.eye(n)
    for columns, covariance in zip(blocks_z, covariances, strict=True):
        k = len(columns)
        for b in range(k):
            for a in range(b, k):
                product = columns[a] @ columns[b].T
                gi = product if a == b else product + product.T
                g.append(gi)
                v += covariance[a, b] * gi if a != b else covariance[a, a] * gi
    g.append(np.eye(n))
    v_inv = np.linalg.inv(v)
    v_inv = 0.5 * (v_inv + v_inv.T)
    phi = np.linalg.inv(x.T @ v_inv @ x)
    tt = v_inv @ x
    hh = [gi @ v_inv for gi in g]
    oo = [h @ x for h in hh]
    p = [-(o.T @ tt) for o in oo]
    p = [0.5 * (m + m.T) for m in p]
    count = len(g)
    q = {}
    for r in range(count):
        for s in range(r, count):
            q[r, s] = oo[r].T @ v_inv @ oo[s]
    information = np.zeros((count, count))
    for i in range(count):
        for j in range(i, count):
            k_trace = np.sum(hh[i].T * hh[j])
            information[i, j] = information[j, i] = (k_trace - 2 * np.sum(phi * q[i, j])
                                                     + np.sum((phi @ p[i]) * (p[j] @ phi)))
    eigenvalues = np.linalg.eigvalsh(information)
    w = 2 * (np.linalg.inv(information) if np.min(np.abs(eigenvalues)) > 1e-10 else np.linalg.pinv(information))
    w = 0.5 * (w + w.T)
    u = np.zeros_like(phi)
    for i in range(count - 1):
        for j in range(i + 1, count):
            u += w[i, j] * (q[i, j] - p[i] @ phi @ p[j])
    u = u + u.T
    for i in range(count):
        u += w[i, i] * (q[i, i] - p[i] @ phi @ p[i])
    phi_adjusted = phi + 2 * phi @ u @ phi
    return KenwardRoger(phi=phi, phi_adjusted=phi_adjusted, p=p, w=w)
