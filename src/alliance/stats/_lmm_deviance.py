"""Profiled (REML) deviance of a one-grouping-factor LMM with exact first and second derivatives.

Model (Bates et al. 2015): y = Xβ + Zb + ε, b_i = Λ u_i, u_i ~ N(0, σ²I), ε ~ N(0, σ²I), where
Λ is the q × q lower-triangular relative covariance factor, its lower triangle stored column by
column in θ (lme4's order). With D = ΛΛᵀ and W_i = I + Z_i D Z_iᵀ, the marginal covariance of
group i is σ²W_i. Everything is computed from per-group sufficient statistics (ZᵢᵀZᵢ, ZᵢᵀXᵢ,
Zᵢᵀyᵢ) in batched q × q algebra, never forming W.

Per group, with S = ZᵢᵀZᵢ (push-through identity, Woodbury):

    ZᵢᵀWᵢ⁻¹ = (I + S D)⁻¹ Zᵢᵀ,    log|Wᵢ| = log|I + ΛᵀSΛ|

so S̃ = ZᵢᵀWᵢ⁻¹Zᵢ, Bᵢ = ZᵢᵀWᵢ⁻¹Xᵢ and ZᵢᵀWᵢ⁻¹yᵢ come from one batched solve, and

    C = XᵀW⁻¹X = XᵀX − Σ ZXᵢᵀ D Bᵢ,     β̂ = C⁻¹ XᵀW⁻¹y,     r² = (y − Xβ̂)ᵀ W⁻¹ (y − Xβ̂),

C being lme4's RXᵀRX and r² its penalized residual sum of squares. The deviance as a function
of the variance parameters (θ, σ), the quantity lmerTest differentiates (its ``devfun_vp``), is

    f(θ, σ) = log|W| + n' log(2πσ²) + r²/σ²  [+ log|C| for REML],   n' = n (ML) or n − p (REML),

and profiling σ² = r²/n' out gives lme4's objective
``log|W| [+ log|C|] + n'(1 + log(2π r²/n'))``.

Derivatives are taken with respect to D first (dD symmetric) and chained to θ through
dD = dΛ Λᵀ + Λ dΛᵀ. With aᵢ = ZᵢᵀWᵢ⁻¹(yᵢ − Xᵢβ̂):

    d log|W|  = Σ tr(S̃ᵢ dD)
    d log|C|  = −Σ tr(Bᵢ C⁻¹ Bᵢᵀ dD)
    d r²      = −Σ aᵢᵀ dD aᵢ                      (β̂ minimises r², so dβ̂ does not enter)

and the second derivatives used for the Hessian follow from dS̃ᵢ = −S̃ᵢ dD S̃ᵢ,
dBᵢ = −S̃ᵢ dD Bᵢ, daᵢ = −S̃ᵢ dD aᵢ − Bᵢ dβ̂ and C dβ̂ = −Σ Bᵢᵀ dD aᵢ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def theta_indices(n_random: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each θ entry: the lower triangle of Λ, column by column (lme4)."""
    cols, rows = np.triu_indices(n_random)
    return rows, cols


@dataclass
class _State:
    """Quantities at one θ shared by the deviance, its derivatives and vcov(β)."""

    factor: np.ndarray  # Λ, (q, q)
    relative_cov: np.ndarray  # D = ΛΛᵀ, (q, q)
    log_det_w: float  # Σ log|I + ΛᵀSᵢΛ|
    log_det_c: float  # log|XᵀW⁻¹X|
    s_tilde: np.ndarray  # ZᵢᵀWᵢ⁻¹Zᵢ, (G, q, q)
    b: np.ndarray  # ZᵢᵀWᵢ⁻¹Xᵢ, (G, q, p)
    a: np.ndarray  # ZᵢᵀWᵢ⁻¹(yᵢ − Xᵢβ̂), (G, q)
    c_inv: np.ndarray  # (XᵀW⁻¹X)⁻¹, (p, p)
    beta: np.ndarray  # β̂(θ) for the centred response, (p,)
    pwrss: float  # r²(θ)


class ProfiledDeviance:
    """Deviance, gradient and Hessian of an LMM with a single grouping factor.

    Parameters
    ----------
    response, fixed_design, random_design : ndarray
        y (n,), X (n, p), Z (n, q) with rows sorted by group.
    group_starts : ndarray
        First row of each group.
    reml : bool
        REML (True) or ML criterion.
    """

    def __init__(self, response, fixed_design, random_design, group_starts, reml: bool):
        x = np.asarray(fixed_design, dtype=float)
        z = np.asarray(random_design, dtype=float)
        y = np.asarray(response, dtype=float)
        # β is profiled out, so r²(θ) is unchanged if y is replaced by its OLS residual; doing so
        # keeps the sufficient statistics small and avoids cancellation in yᵀy − … .
        self.ols_beta = np.linalg.lstsq(x, y, rcond=None)[0]
        residual = y - x @ self.ols_beta
        if float(residual @ residual) <= 1e-24 * max(float(y @ y), 1e-300):
            raise ValueError(
                "the fixed effects reproduce the response exactly; there is no residual variance "
                "to split into random-effect and residual parts"
            )
        y = residual
        self.n_obs, self.n_fixed = x.shape
        self.n_random = z.shape[1]
        self.reml = bool(reml)
        self.n_eff = self.n_obs - self.n_fixed if self.reml else self.n_obs
        self.zz = np.add.reduceat(z[:, :, None] * z[:, None, :], group_starts, axis=0)
        self.zx = np.add.reduceat(z[:, :, None] * x[:, None, :], group_starts, axis=0)
        self.zy = np.add.reduceat(z * y[:, None], group_starts, axis=0)
        self.xx = x.T @ x
        self.xy = x.T @ y
        self.yy = float(y @ y)
        self.rows, self.cols = theta_indices(self.n_random)
        self.n_theta = self.rows.size
        self.is_diagonal = self.rows == self.cols
        self._cache_key: bytes | None = None
        self._cache: _State | None = None

    # ------------------------------------------------------------------ core evaluation
    def factor(self, theta: np.ndarray) -> np.ndarray:
        """Λ(θ)."""
        lam = np.zeros((self.n_random, self.n_random))
        lam[self.rows, self.cols] = theta
        return lam

    def state(self, theta) -> _State:
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes()
        if key == self._cache_key and self._cache is not None:
            return self._cache
        q, p = self.n_random, self.n_fixed
        lam = self.factor(theta)
        d = lam @ lam.T
        eye = np.eye(q)
        m = eye + lam.T @ self.zz @ lam
        log_det_w = 2.0 * float(np.log(np.diagonal(np.linalg.cholesky(m), axis1=1, axis2=2)).sum())
        rhs = np.concatenate([self.zz, self.zx, self.zy[:, :, None]], axis=2)
        solved = np.linalg.solve(eye + self.zz @ d, rhs)
        s_tilde = solved[:, :, :q]
        s_tilde = 0.5 * (s_tilde + np.swapaxes(s_tilde, 1, 2))
        b = solved[:, :, q:q + p]
        zwy = solved[:, :, q + p]
        # Sums over groups go through tensordot (BLAS); einsum is slow on long batches.
        zxd = np.swapaxes(self.zx, 1, 2) @ d  # ZXᵢᵀ D
        c = self.xx - np.tensordot(zxd, b, axes=([0, 2], [0, 1]))
        c = 0.5 * (c + c.T)
        xwy = self.xy - np.tensordot(zxd, zwy, axes=([0, 2], [0, 1]))
        ywy = self.yy - float(np.tensordot(self.zy @ d, zwy, axes=2))
        c_chol = np.linalg.cholesky(c)
        log_det_c = 2.0 * float(np.log(np.diagonal(c_chol)).sum())
        c_chol_inv = np.linalg.inv(c_chol)
        c_inv = c_chol_inv.T @ c_chol_inv
        beta = c_inv @ xwy
        pwrss = ywy - float(xwy @ beta)
        a = zwy - b @ beta
        st = _State(lam, d, log_det_w, log_det_c, s_tilde, b, a, c_inv, beta, pwrss)
        self._cache_key, self._cache = key, st
        return st

    def _directions(self, lam: np.ndarray) -> np.ndarray:
        """dD/dθ_m = E_m Λᵀ + Λ E_mᵀ for every θ entry, shape (m, q, q)."""
        q = self.n_random
        out = np.zeros((self.n_theta, q, q))
        for m, (j, k) in enumerate(zip(self.rows, self.cols, strict=True)):
            out[m, j, :] += lam[:, k]
            out[m, :, j] += lam[:, k]
        return out

    def _chain(self, grad_d: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """Gradient in θ from a symmetric gradient in D: ∂f/∂θ_m = 2 (G Λ)[j_m, k_m]."""
        return 2.0 * (grad_d @ lam)[self.rows, self.cols]

    def _grad_d_parts(self, st: _State) -> tuple[np.ndarray, np.ndarray]:
        """D-gradients of log|W| (+ log|C|) and of r²."""
        grad_logdet = st.s_tilde.sum(axis=0)
        if self.reml:
            grad_logdet = grad_logdet - np.tensordot(st.b @ st.c_inv, st.b, axes=([0, 2], [0, 2]))
        grad_pwrss = -(st.a.T @ st.a)
        return grad_logdet, grad_pwrss

    # ------------------------------------------------------------------ profiled objective
    def profiled(self, theta) -> tuple[float, np.ndarray]:
        """lme4's objective (−2 × (RE)ML log-likelihood, σ and β profiled out) and its θ-gradient."""
        st = self.state(theta)
        n = self.n_eff
        deviance = st.log_det_w + n * (1.0 + np.log(2.0 * np.pi * st.pwrss / n))
        if self.reml:
            deviance += st.log_det_c
        grad_logdet, grad_pwrss = self._grad_d_parts(st)
        gradient = self._chain(grad_logdet + (n / st.pwrss) * grad_pwrss, st.factor)
        return float(deviance), gradient

    def sigma(self, theta) -> float:
        """Profiled residual standard deviation σ̂(θ) = sqrt(r²/n')."""
        return float(np.sqrt(self.state(theta).pwrss / self.n_eff))

    def fixed_effects(self, theta) -> np.ndarray:
        """β̂(θ) on the original response scale."""
        return self.ols_beta + self.state(theta).beta

    def vcov_beta(self, theta, sigma: float) -> np.ndarray:
        """vcov(β) = σ² (RXᵀRX)⁻¹ as lme4's ``vcov``."""
        return sigma**2 * self.state(theta).c_inv

    # ------------------------------------------------------------------ (θ, σ) derivatives
    def varpar_hessian(self, theta, sigma: float) -> np.ndarray:
        """Exact Hessian of f(θ, σ) (lmerTest's ``devfun_vp``) in varpar = (θ, σ)."""
        st = self.state(theta)
        lam, s_tilde, b, a, c_inv = st.factor, st.s_tilde, st.b, st.a, st.c_inv
        dirs = self._directions(lam)  # (m, q, q)
        inv_s2 = 1.0 / sigma**2
        # log|W|: −Σ tr(S̃ dD_a S̃ dD_b)
        everything = ([1, 2, 3], [1, 2, 3])
        sd = s_tilde[None] @ dirs[:, None]  # S̃ dD_m, (m, G, q, q)
        hess = -np.tensordot(sd, np.swapaxes(sd, 2, 3), axes=everything)
        # r²/σ²: (2/σ²)[Σ (dD_a a)ᵀ S̃ (dD_b a) − h_aᵀ C⁻¹ h_b],  h_m = Σ Bᵀ dD_m a
        da = np.swapaxes(np.tensordot(dirs, a, axes=([2], [1])), 1, 2)  # dD_m aᵢ, (m, G, q)
        h = np.tensordot(da, b, axes=([1, 2], [0, 1]))
        sda = (s_tilde[None] @ da[..., None])[..., 0]
        hess += 2.0 * inv_s2 * (np.tensordot(da, sda, axes=([1, 2], [1, 2])) - h @ c_inv @ h.T)
        if self.reml:
            # log|C|: −tr(C⁻¹U_b C⁻¹U_a) + 2 sym Σ tr(C⁻¹ (dD_b B)ᵀ S̃ (dD_a B)),  U_m = Σ Bᵀ dD_m B
            db = dirs[:, None] @ b[None]  # dD_m Bᵢ, (m, G, q, p)
            u = np.tensordot(db, b, axes=([1, 2], [0, 1]))  # U_m (symmetric), (m, p, p)
            cu = c_inv @ u
            hess -= np.tensordot(cu, np.swapaxes(cu, 1, 2), axes=([1, 2], [1, 2]))
            sdb_c = (s_tilde[None] @ db) @ c_inv  # S̃ dD_a B C⁻¹
            cross = np.tensordot(sdb_c, db, axes=everything)
            hess += cross + cross.T
        # second derivative of D itself: d²D/dθ_a dθ_b = E_a E_bᵀ + E_b E_aᵀ
        grad_logdet, grad_pwrss = self._grad_d_parts(st)
        grad_d = grad_logdet + inv_s2 * grad_pwrss
        same_col = self.cols[:, None] == self.cols[None, :]
        hess += 2.0 * same_col * grad_d[self.rows[None, :], self.rows[:, None]]
        # σ block
        n = self.n_eff
        d_pwrss = self._chain(grad_pwrss, lam)
        full = np.empty((self.n_theta + 1, self.n_theta + 1))
        full[:-1, :-1] = 0.5 * (hess + hess.T)
        full[:-1, -1] = full[-1, :-1] = -2.0 * d_pwrss / sigma**3
        full[-1, -1] = -2.0 * n / sigma**2 + 6.0 * st.pwrss / sigma**4
        return full

    def varpar_gradient(self, theta, sigma: float) -> np.ndarray:
        """Gradient of f(θ, σ) in varpar = (θ, σ) (zero at an interior optimum)."""
        st = self.state(theta)
        grad_logdet, grad_pwrss = self._grad_d_parts(st)
        g_theta = self._chain(grad_logdet + grad_pwrss / sigma**2, st.factor)
        g_sigma = 2.0 * self.n_eff / sigma - 2.0 * st.pwrss / sigma**3
        return np.append(g_theta, g_sigma)

    def profiled_hessian(self, theta) -> np.ndarray:
        """Exact Hessian of the profiled objective: Schur complement of the σ block at σ̂(θ)."""
        full = self.varpar_hessian(theta, self.sigma(theta))
        return full[:-1, :-1] - np.outer(full[:-1, -1], full[-1, :-1]) / full[-1, -1]

    def covbeta_jacobian(self, theta, sigma: float) -> np.ndarray:
        """∂ vcov(β) / ∂ varpar, shape (n_theta + 1, p, p) (lmerTest's ``Jac_list``).

        vcov(β) = σ² C⁻¹, dC = −Σ Bᵀ dD B, hence ∂/∂θ_m = σ² C⁻¹ U_m C⁻¹ and ∂/∂σ = 2σ C⁻¹.
        """
        st = self.state(theta)
        dirs = self._directions(st.factor)
        u = np.tensordot(dirs[:, None] @ st.b[None], st.b, axes=([1, 2], [0, 1]))
        jac = np.empty((self.n_theta + 1, self.n_fixed, self.n_fixed))
        jac[:-1] = sigma**2 * st.c_inv @ u @ st.c_inv
        jac[-1] = 2.0 * sigma * st.c_inv
        return jac
