"""The planned tests, fitted to thousands of simulated trials at once.

Why our own code: a power analysis refits every planned test to every simulated trial — at
20 sample sizes × 2,000 trials that is 40,000 mixed models and 40,000 mediation models per
rate of attrition. One :mod:`alliance.stats` call per trial (what R's ``simr`` does) costs
milliseconds; here each test is reduced to sufficient statistics and closed forms evaluated
for a whole batch of trials in vectorized numpy, so a batch of 1,000 trials costs about as
much as a few single fits. Every function takes arrays whose leading axis is the trial and
whose second axis is the participant, with a boolean ``observed`` mask for missing data, and
returns one value per trial. Each one gives the same numbers as the :mod:`alliance.stats`
function it stands in for on the same data (checked trial by trial in
``tests/simulate/test_batched.py``):

=======================================  =========================================================
here                                     per trial
=======================================  =========================================================
:func:`pearson_correlation`              :func:`alliance.stats.correlation` (pairwise complete)
:func:`paired_difference`                :func:`alliance.stats.paired_ttest` (pairwise complete)
:func:`random_intercept_trend`           :func:`alliance.stats.mixedlm` ``value ~ time + (1|participant)``
:func:`mediation_paths`                  :func:`alliance.stats.mediation` point estimates (listwise)
:func:`mediation_bootstrap_interval`     the percentile bootstrap of :func:`alliance.stats.mediation`
=======================================  =========================================================

A trial whose test cannot be computed (too few participants, a constant variable, an
unidentifiable mixed model) gets ``computed = False`` and NaN statistics, exactly where the
:mod:`alliance.stats` function raises ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = [
    "CorrelationBatch",
    "MediationBatch",
    "PairedBatch",
    "TrendBatch",
    "mediation_bootstrap_interval",
    "mediation_monte_carlo_interval",
    "mediation_monte_carlo_p",
    "mediation_paths",
    "paired_difference",
    "pearson_correlation",
    "random_intercept_trend",
]

MINIMUM_PAIRS = 3  # alliance.stats: correlation and paired t-test need 3 complete pairs
MINIMUM_MEDIATION = 5  # alliance.stats.mediation: x, m, y need width + 2 = 5 complete rows
SINGULAR_THETA = 1e-4  # lme4's isSingular() tolerance, as alliance.stats.mixed
HESSIAN_EIGEN_TOLERANCE = 1e-8  # lmerTest: Hessian eigenvalues within ±1e-8 count as zero
# REML search grid for γ = σ²_participant / σ²_residual: 0 and 10^-8 … 10^8.
_GAMMA_GRID = np.concatenate([[0.0], np.logspace(-8.0, 8.0, 33)])
_NEWTON_STEPS = 100


def _two_sided_t(t_value: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p of a t statistic (``df`` may be infinite: the normal limit)."""
    return 2.0 * special.stdtr(df, -np.abs(t_value))


@dataclass(frozen=True)
class CorrelationBatch:
    """Pearson correlations of many trials (each attribute has one value per trial).

    Attributes
    ----------
    n : ndarray of int
        Complete pairs.
    r, t, df, p : ndarray
        Pearson r, ``t = r √(df / (1 − r²))``, ``df = n − 2``, two-sided p.
    computed : ndarray of bool
        At least 3 pairs and neither variable constant.
    """

    n: np.ndarray
    r: np.ndarray
    t: np.ndarray
    df: np.ndarray
    p: np.ndarray
    computed: np.ndarray


def pearson_correlation(x: np.ndarray, y: np.ndarray, observed: np.ndarray) -> CorrelationBatch:
    """Pearson correlation with its exact t-test, over pairwise-complete participants.

    Parameters
    ----------
    x, y : ndarray, shape (trials, participants)
        Values; entries where ``observed`` is False are ignored (may be NaN).
    observed : ndarray of bool, same shape
        Participant has both x and y.

    Returns
    -------
    CorrelationBatch

    Notes
    -----
    :math:`r = S_{xy}/\\sqrt{S_{xx}S_{yy}}` with sums of centred cross-products over the
    complete pairs; :math:`t = r\\sqrt{(n-2)/(1-r^2)}` on :math:`n - 2` df (R's ``cor.test``).
    """
    weight = observed.astype(float)
    n = weight.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(observed, x, 0.0)
        y = np.where(observed, y, 0.0)
        xc = np.where(observed, x - (x.sum(axis=1) / n)[:, None], 0.0)
        yc = np.where(observed, y - (y.sum(axis=1) / n)[:, None], 0.0)
        sxx, syy, sxy = (xc * xc).sum(axis=1), (yc * yc).sum(axis=1), (xc * yc).sum(axis=1)
        computed = (n >= MINIMUM_PAIRS) & (sxx > 0) & (syy > 0)
        r = np.clip(np.where(computed, sxy / np.sqrt(sxx * syy), np.nan), -1.0, 1.0)
        df = np.where(computed, n - 2.0, np.nan)
        t_value = r * np.sqrt(df / (1.0 - r * r))
        p = np.where(np.abs(r) >= 1.0, 0.0, _two_sided_t(t_value, df))
    return CorrelationBatch(n=n.astype(int), r=r, t=t_value, df=df, p=np.where(computed, p, np.nan),
                            computed=computed)


@dataclass(frozen=True)
class PairedBatch:
    """Paired t-tests of many trials (one value per trial).

    Attributes
    ----------
    n : ndarray of int
        Complete pairs.
    mean_diff, t, df, p, cohen_dz : ndarray
        Mean of ``after − before``, its t statistic on ``n − 1`` df, two-sided p, and
        ``mean_diff / sd_diff``.
    computed : ndarray of bool
        At least 3 pairs and the differences not all equal.
    """

    n: np.ndarray
    mean_diff: np.ndarray
    t: np.ndarray
    df: np.ndarray
    p: np.ndarray
    cohen_dz: np.ndarray
    computed: np.ndarray


def paired_difference(before: np.ndarray, after: np.ndarray, observed: np.ndarray) -> PairedBatch:
    """Paired t-test of ``after − before`` over pairwise-complete participants.

    Parameters
    ----------
    before, after : ndarray, shape (trials, participants)
    observed : ndarray of bool, same shape
        Participant has both values.

    Returns
    -------
    PairedBatch

    Notes
    -----
    :math:`t = \\bar d / (s_d/\\sqrt n)` on :math:`n-1` df (Student 1908).
    """
    n = observed.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        difference = np.where(observed, after - before, 0.0)
        mean = difference.sum(axis=1) / n
        centred = np.where(observed, difference - mean[:, None], 0.0)
        sd = np.sqrt((centred * centred).sum(axis=1) / (n - 1.0))
        computed = (n >= MINIMUM_PAIRS) & (sd > 0)
        df = np.where(computed, n - 1.0, np.nan)
        t_value = np.where(computed, mean / (sd / np.sqrt(n)), np.nan)
        p = _two_sided_t(t_value, df)
        dz = np.where(computed, mean / sd, np.nan)
    return PairedBatch(n=n.astype(int), mean_diff=np.where(computed, mean, np.nan), t=t_value, df=df, p=p,
                       cohen_dz=dz, computed=computed)


@dataclass(frozen=True)
class TrendBatch:
    """The time slope of ``value ~ time + (1 | participant)`` fitted by REML, per trial.

    Attributes
    ----------
    n_obs, n_groups : ndarray of int
        Observations and participants with at least one observation.
    estimate, se, df, t, p : ndarray
        The slope, its standard error, Satterthwaite df (as lmerTest), t and two-sided p.
    sd_participant, sd_residual : ndarray
        REML estimates of the random-intercept and residual SDs.
    singular : ndarray of bool
        Boundary fit, θ = σ_participant/σ_residual below 1e-4 (lme4's ``isSingular``).
    computed : ndarray of bool
        At least two participants, more observations than participants, two distinct times.
    """

    n_obs: np.ndarray
    n_groups: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    t: np.ndarray
    p: np.ndarray
    sd_participant: np.ndarray
    sd_residual: np.ndarray
    singular: np.ndarray
    computed: np.ndarray


@dataclass(frozen=True)
class _TrendStatistics:
    """Per-trial sufficient statistics of the random-intercept trend model, 2 × 2 by components.

    With y and t centred by their trial means over the observations, X = [1, t]. Participants are
    pooled by their number of observations m = 1 … T, since the weight w(γ) = γ / (1 + mγ) of a
    participant in the GLS algebra depends on m only: for each m, P = Σ sᵢsᵢᵀ (sᵢ = Xᵢᵀ1),
    Q = Σ sᵢ(1ᵀyᵢ) and R = Σ (1ᵀyᵢ)². Arrays are (S,) or (S, T).
    """

    xtx00: np.ndarray
    xtx01: np.ndarray
    xtx11: np.ndarray
    xty0: np.ndarray
    xty1: np.ndarray
    yty: np.ndarray
    count: np.ndarray  # participants with m observations
    p00: np.ndarray
    p01: np.ndarray
    p11: np.ndarray
    q0: np.ndarray
    q1: np.ndarray
    r: np.ndarray
    nu: np.ndarray  # n_obs − 2 (REML)
    size: np.ndarray  # (T,) m = 1 … T

    def take(self, index: np.ndarray) -> _TrendStatistics:
        """The statistics of a subset of trials."""
        fields = {name: getattr(self, name)[index] for name in self.__dataclass_fields__ if name != "size"}
        return _TrendStatistics(**fields, size=self.size)

    def lifted(self, extra: int) -> _TrendStatistics:
        """Arrays with ``extra`` axes after the trial axis (to broadcast against a grid of γ)."""
        if extra == 0:
            return self

        def lift(array):
            return array.reshape(array.shape[:1] + (1,) * extra + array.shape[1:])

        fields = {name: lift(getattr(self, name)) for name in self.__dataclass_fields__ if name != "size"}
        return _TrendStatistics(**fields, size=self.size)


def _trend_statistics(values: np.ndarray, observed: np.ndarray,
                      time: np.ndarray) -> tuple[_TrendStatistics, np.ndarray, np.ndarray, np.ndarray]:
    t_count = values.shape[2]
    weight = observed.astype(float)
    n_obs = weight.sum(axis=(1, 2))
    safe_n = np.maximum(n_obs, 1.0)
    y = np.where(observed, values, 0.0)
    y_mean = y.sum(axis=(1, 2)) / safe_n
    t_mean = (weight * time).sum(axis=(1, 2)) / safe_n
    yc = np.where(observed, values - y_mean[:, None, None], 0.0)
    tc = np.where(observed, time - t_mean[:, None, None], 0.0)
    per_participant = weight.sum(axis=2)  # (S, n)
    t_sum = tc.sum(axis=2)  # (S, n): second component of sᵢ
    y_sum = yc.sum(axis=2)  # (S, n)
    size = np.arange(1, t_count + 1, dtype=float)
    one_hot = (per_participant[:, :, None] == size).astype(float)  # (S, n, T)

    def pooled(values_per_participant):
        return np.einsum("snm,sn->sm", one_hot, values_per_participant)

    stats = _TrendStatistics(
        xtx00=n_obs, xtx01=tc.sum(axis=(1, 2)), xtx11=(tc * tc).sum(axis=(1, 2)),
        xty0=yc.sum(axis=(1, 2)), xty1=(tc * yc).sum(axis=(1, 2)), yty=(yc * yc).sum(axis=(1, 2)),
        count=one_hot.sum(axis=1),
        p00=pooled(per_participant * per_participant), p01=pooled(per_participant * t_sum),
        p11=pooled(t_sum * t_sum), q0=pooled(per_participant * y_sum), q1=pooled(t_sum * y_sum),
        r=pooled(y_sum * y_sum), nu=n_obs - 2.0, size=size,
    )
    n_groups = (per_participant > 0).sum(axis=1)
    distinct_times = (weight.sum(axis=1) > 0).sum(axis=1)
    return stats, n_obs, n_groups, distinct_times


def _reml_profile(stats: _TrendStatistics, gamma: np.ndarray, order: int = 2) -> dict[str, np.ndarray]:
    """Profiled REML deviance in γ and its first two derivatives, for γ of shape (S,) or (S, G).

    Notation of :func:`random_intercept_trend`: M = XᵀW⁻¹X, b = XᵀW⁻¹y, c = yᵀW⁻¹y with
    W = I + γJ per participant, each its ordinary sum minus Σ_m w_m(γ)·(pooled term); the 2 × 2
    algebra is written out by components (much faster than batched matrix calls at this size).
    """
    st = stats.lifted(gamma.ndim - 1)
    g = gamma[..., None]
    size = stats.size
    denominator = 1.0 + size * g  # (S[, G], T)

    def pooled(weight):
        return ((weight * st.p00).sum(-1), (weight * st.p01).sum(-1), (weight * st.p11).sum(-1),
                (weight * st.q0).sum(-1), (weight * st.q1).sum(-1), (weight * st.r).sum(-1))

    w0 = g / denominator
    p00, p01, p11, q0, q1, r0 = pooled(w0)
    m00, m01, m11 = st.xtx00 - p00, st.xtx01 - p01, st.xtx11 - p11
    b0, b1 = st.xty0 - q0, st.xty1 - q1
    c = st.yty - r0
    det = m00 * m11 - m01 * m01
    i00, i01, i11 = m11 / det, -m01 / det, m00 / det
    u0, u1 = i00 * b0 + i01 * b1, i01 * b0 + i11 * b1
    r2 = c - (b0 * u0 + b1 * u1)
    nu = st.nu
    log_det_w = (st.count * np.log(denominator)).sum(-1)
    out = {"deviance": log_det_w + np.log(det) + nu * np.log(r2), "r2": r2, "beta": u1, "inverse_11": i11}
    if order == 0:
        return out
    n00, n01, n11, e0, e1, c1 = (-v for v in pooled(1.0 / denominator**2))
    r2_1 = c1 - 2.0 * (e0 * u0 + e1 * u1) + (u0 * u0 * n00 + 2.0 * u0 * u1 * n01 + u1 * u1 * n11)
    a00, a01 = i00 * n00 + i01 * n01, i00 * n01 + i01 * n11  # A = M⁻¹M'
    a10, a11 = i01 * n00 + i11 * n01, i01 * n01 + i11 * n11
    log_det_1 = a00 + a11
    log_det_w1 = (st.count * size / denominator).sum(-1)
    out.update({"d1": log_det_w1 + log_det_1 + nu * r2_1 / r2, "r2_1": r2_1, "log_det_1": log_det_1,
                "log_det_w1": log_det_w1,
                # d(M⁻¹)₁₁/dγ = −(M⁻¹M'M⁻¹)₁₁
                "d_inverse_11": -(i01 * i01 * n00 + 2.0 * i01 * i11 * n01 + i11 * i11 * n11)})
    if order == 1:
        return out
    o00, o01, o11, f0, f1, c2 = (-v for v in pooled(-2.0 * size / denominator**3))
    g0 = e0 - (n00 * u0 + n01 * u1)
    g1 = e1 - (n01 * u0 + n11 * u1)
    r2_2 = (c2 - 2.0 * (f0 * u0 + f1 * u1) + (u0 * u0 * o00 + 2.0 * u0 * u1 * o01 + u1 * u1 * o11)
            - 2.0 * (g0 * g0 * i00 + 2.0 * g0 * g1 * i01 + g1 * g1 * i11))
    log_det_2 = (i00 * o00 + 2.0 * i01 * o01 + i11 * o11) - (a00 * a00 + 2.0 * a01 * a10 + a11 * a11)
    log_det_w2 = -(st.count * size**2 / denominator**2).sum(-1)
    out.update({"d2": log_det_w2 + log_det_2 + nu * (r2_2 / r2 - (r2_1 / r2) ** 2), "r2_2": r2_2,
                "log_det_2": log_det_2, "log_det_w2": log_det_w2})
    return out


def _reml_gamma(stats: _TrendStatistics, active: np.ndarray) -> np.ndarray:
    """The REML estimate of γ = θ² for each trial (NaN where not ``active``).

    The optimiser of :func:`alliance.stats.mixedlm` descends from lme4's start θ = 1; here the
    local minimum reached from γ = 1 is bracketed on a log grid of γ (the derivative of the
    profiled deviance changes sign from − to + across it, or γ = 0 when the derivative is
    non-negative all the way down) and solved by Newton's method safeguarded by bisection,
    iterating only on the trials not yet converged.
    """
    s_count = stats.nu.shape[0]
    grid = np.broadcast_to(_GAMMA_GRID, (s_count, _GAMMA_GRID.size))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        slope = _reml_profile(stats, grid, order=1)["d1"]  # (S, G)
    start = int(np.searchsorted(_GAMMA_GRID, 1.0))
    rising = slope >= 0  # NaN counts as not rising
    columns = np.arange(_GAMMA_GRID.size)
    # descending from γ = 1: the last grid point below it where the slope is still negative
    below = np.where(~rising & (columns <= start), columns, -1).max(axis=1)
    # ascending from γ = 1: the first grid point above it where the slope turns non-negative
    above = np.where(rising & (columns > start), columns, _GAMMA_GRID.size).min(axis=1)
    going_down = rising[:, start]
    low_index = np.where(going_down, below, above - 1)
    gamma = np.full(s_count, np.nan)
    boundary = active & going_down & (below < 0)
    gamma[boundary] = 0.0
    todo = np.flatnonzero(active & ~boundary & (low_index >= 0) & (low_index + 1 < _GAMMA_GRID.size))
    low = _GAMMA_GRID[low_index[todo]]
    high = _GAMMA_GRID[low_index[todo] + 1]
    x = 0.5 * (low + high)
    subset = stats.take(todo)
    for _ in range(_NEWTON_STEPS):
        if todo.size == 0:
            break
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            profile = _reml_profile(subset, x, order=2)
            d1, d2 = profile["d1"], profile["d2"]
            low = np.where(d1 < 0, x, low)
            high = np.where(d1 >= 0, x, high)
            newton = x - d1 / d2
        inside = (d2 > 0) & (newton > low) & (newton < high)
        proposal = np.where(inside, newton, 0.5 * (low + high))
        converged = (np.abs(proposal - x) <= 1e-15 * proposal) | (high - low <= 4e-16 * high) | (d1 == 0)
        x = proposal
        if converged.any():
            gamma[todo[converged]] = x[converged]
            keep = ~converged
            todo, x, low, high = todo[keep], x[keep], low[keep], high[keep]
            subset = subset.take(keep)
    gamma[todo] = x  # not converged within the step limit: the last iterate (never seen in practice)
    return gamma


def random_intercept_trend(values: np.ndarray, observed: np.ndarray, time: np.ndarray) -> TrendBatch:
    """REML fit of ``value ~ time + (1 | participant)`` with a Satterthwaite t-test of the slope.

    Parameters
    ----------
    values : ndarray, shape (trials, participants, timepoints)
    observed : ndarray of bool, same shape
        Whether each participant × timepoint was observed; any pattern of missing timepoints.
    time : ndarray, shape (timepoints,)
        The time covariate of each timepoint (e.g. 0, 1, 2).

    Returns
    -------
    TrendBatch

    Notes
    -----
    For participant i with :math:`m_i` observations, :math:`V_i = \\sigma^2(I + \\gamma J)` with
    :math:`\\gamma = \\sigma_b^2/\\sigma^2 = \\theta^2`, and
    :math:`V_i^{-1} = \\sigma^{-2}(I - w_i J)`, :math:`w_i = \\gamma/(1 + m_i\\gamma)`. Hence, with
    :math:`s_i = X_i^T 1`,

    .. math:: M = X^TW^{-1}X = X^TX - \\sum_i w_i s_i s_i^T,\\quad
              b = X^TW^{-1}y = X^Ty - \\sum_i w_i s_i (1^Ty_i),\\quad
              c = y^TW^{-1}y = y^Ty - \\sum_i w_i (1^Ty_i)^2,

    and because :math:`w_i` depends on :math:`m_i` only, the sums are pooled by m (one 2 × 2
    matrix per possible m): sufficient statistics of fixed size per trial whatever the missing
    pattern. The profiled REML deviance (Bates et al. 2015, eq. 41) is
    :math:`d(\\gamma) = \\sum_i\\log(1+m_i\\gamma) + \\log|M| + (N-2)\\log r^2 + \\text{const}`
    with :math:`r^2 = c - b^TM^{-1}b`; its first and second derivatives follow from
    :math:`w' = (1+m\\gamma)^{-2}`, :math:`w'' = -2m(1+m\\gamma)^{-3}` (e.g.
    :math:`(r^2)' = c' - 2b'^T\\hat\\beta + \\hat\\beta^TM'\\hat\\beta`). γ is found by safeguarded
    Newton iteration on d′ for all trials at once (see :func:`_reml_gamma`), β̂ = M⁻¹b,
    σ̂² = r²/(N − 2), var(β̂₁) = σ̂²(M⁻¹)₁₁. For balanced complete data this reproduces the
    ANOVA (within/between) estimators whenever they are positive.

    Satterthwaite's df, as lmerTest: with varpar = (θ, σ) and
    :math:`f(\\theta,\\sigma) = \\sum\\log(1+m_i\\theta^2) + \\log|M| + (N-2)\\log\\sigma^2 + r^2/\\sigma^2`,
    :math:`A = 2H^{-1}` (H the Hessian of f, generalized inverse over eigenvalues > 1e-8),
    :math:`g = \\partial\\,\\mathrm{var}(\\hat\\beta_1)/\\partial\\mathrm{varpar}` and
    :math:`\\nu = 2\\,\\mathrm{var}(\\hat\\beta_1)^2/(g^TAg)`. In γ-derivatives D = Σlog(1+mγ) + log|M|,
    R = r²: :math:`H_{\\theta\\theta} = 2(D' + R'/\\sigma^2) + 4\\gamma(D'' + R''/\\sigma^2)`,
    :math:`H_{\\theta\\sigma} = -4\\theta R'/\\sigma^3`, :math:`H_{\\sigma\\sigma} = -2(N-2)/\\sigma^2 + 6R/\\sigma^4`.

    References
    ----------
    Bates D, Mächler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models using
    lme4. Journal of Statistical Software 67(1). doi:10.18637/jss.v067.i01
    Kuznetsova A, Brockhoff PB, Christensen RHB (2017). lmerTest package: tests in linear mixed
    effects models. Journal of Statistical Software 82(13). doi:10.18637/jss.v082.i13
    """
    time = np.asarray(time, dtype=float)
    stats, n_obs, n_groups, distinct_times = _trend_statistics(values, observed, time)
    computed = (n_groups >= 2) & (n_obs > n_groups) & (distinct_times >= 2)
    gamma = _reml_gamma(stats, computed)
    computed &= np.isfinite(gamma)
    x = np.where(computed, gamma, 1.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        profile = _reml_profile(stats, x, order=2)
        # lme4 reports θ = 0 when a θ below 1e-6 does not beat 0 beyond rounding (as alliance.stats).
        tiny = computed & (x > 0) & (x < 1e-12)
        if tiny.any():
            at_zero = _reml_profile(stats, np.where(tiny, 0.0, x), order=2)
            snap = tiny & (at_zero["deviance"] <= profile["deviance"] + 1e-10 * np.abs(profile["deviance"]))
            if snap.any():
                x = np.where(snap, 0.0, x)
                profile = _reml_profile(stats, x, order=2)
        nu = stats.nu
        r2 = profile["r2"]
        sigma2 = r2 / nu
        sigma = np.sqrt(sigma2)
        theta = np.sqrt(x)
        variance = sigma2 * profile["inverse_11"]
        estimate = profile["beta"]
        d_1 = profile["log_det_w1"] + profile["log_det_1"]
        d_2 = profile["log_det_w2"] + profile["log_det_2"]
        h_tt = 2.0 * (d_1 + profile["r2_1"] / sigma2) + 4.0 * x * (d_2 + profile["r2_2"] / sigma2)
        h_ts = -4.0 * theta * profile["r2_1"] / (sigma2 * sigma)
        h_ss = -2.0 * nu / sigma2 + 6.0 * r2 / sigma2**2
        hessian = np.stack([np.stack([h_tt, h_ts], axis=-1), np.stack([h_ts, h_ss], axis=-1)], axis=-2)
        hessian = np.where(computed[:, None, None] & np.isfinite(hessian), hessian, np.eye(2))
        eigenvalues, eigenvectors = np.linalg.eigh(hessian)
        keep = eigenvalues > HESSIAN_EIGEN_TOLERANCE
        inverse_eigen = np.where(keep, 1.0 / np.where(keep, eigenvalues, 1.0), 0.0)
        varpar_cov = 2.0 * np.einsum("sik,sk,sjk->sij", eigenvectors, inverse_eigen, eigenvectors)
        gradient = np.stack([sigma2 * 2.0 * theta * profile["d_inverse_11"], 2.0 * sigma * profile["inverse_11"]],
                            axis=1)
        denominator = np.einsum("si,sij,sj->s", gradient, varpar_cov, gradient)
        df = np.where(denominator > 0, 2.0 * variance**2 / denominator, np.inf)
        se = np.sqrt(variance)
        t_value = estimate / se
        p = _two_sided_t(t_value, df)

    def keep_computed(array):
        return np.where(computed, array, np.nan)

    return TrendBatch(
        n_obs=n_obs.astype(int), n_groups=n_groups.astype(int),
        estimate=keep_computed(estimate), se=keep_computed(se), df=keep_computed(df), t=keep_computed(t_value),
        p=keep_computed(p), sd_participant=keep_computed(theta * sigma), sd_residual=keep_computed(sigma),
        singular=computed & (theta < SINGULAR_THETA), computed=computed,
    )


@dataclass(frozen=True)
class MediationBatch:
    """OLS paths of the simple mediation model x → m → y, per trial.

    Attributes
    ----------
    n : ndarray of int
        Participants complete on x, m and y.
    a, se_a : ndarray
        Slope of ``m ~ x`` and its OLS standard error.
    b, se_b, c_prime : ndarray
        Slopes of m and x in ``y ~ x + m`` and the SE of b.
    indirect : ndarray
        ``a · b``.
    computed : ndarray of bool
        At least 5 complete participants, x and m not collinear, non-zero residuals.
    """

    n: np.ndarray
    a: np.ndarray
    se_a: np.ndarray
    b: np.ndarray
    se_b: np.ndarray
    c_prime: np.ndarray
    indirect: np.ndarray
    computed: np.ndarray


def mediation_paths(x: np.ndarray, m: np.ndarray, y: np.ndarray, observed: np.ndarray) -> MediationBatch:
    """OLS paths a, b, c' and the standard errors of a and b, listwise over x, m, y.

    Parameters
    ----------
    x, m, y : ndarray, shape (trials, participants)
    observed : ndarray of bool, same shape
        Participant complete on x, m and y.

    Returns
    -------
    MediationBatch

    Notes
    -----
    From centred sums of cross-products S: :math:`a = S_{xm}/S_{xx}`,
    :math:`\\mathrm{se}_a^2 = (S_{mm} - aS_{xm})/((n-2)S_{xx})`; with
    :math:`\\Delta = S_{xx}S_{mm} - S_{xm}^2`, :math:`b = (S_{xx}S_{my} - S_{xm}S_{xy})/\\Delta`,
    :math:`c' = (S_{mm}S_{xy} - S_{xm}S_{my})/\\Delta`,
    :math:`\\mathrm{se}_b^2 = S_{xx}(S_{yy} - c'S_{xy} - bS_{my})/((n-3)\\Delta)`.
    """
    n = observed.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = []
        for values in (x, m, y):
            v = np.where(observed, values, 0.0)
            centred.append(np.where(observed, v - (v.sum(axis=1) / n)[:, None], 0.0))
        xc, mc, yc = centred
        sxx, smm, syy = (xc * xc).sum(1), (mc * mc).sum(1), (yc * yc).sum(1)
        sxm, sxy, smy = (xc * mc).sum(1), (xc * yc).sum(1), (mc * yc).sum(1)
        a = sxm / sxx
        det = sxx * smm - sxm * sxm
        b = (sxx * smy - sxm * sxy) / det
        c_prime = (smm * sxy - sxm * smy) / det
        sse_m = smm - a * sxm
        sse_y = syy - c_prime * sxy - b * smy
        computed = ((n >= MINIMUM_MEDIATION) & (sxx > 0) & (smm > 0) & (syy > 0)
                    & (det > 1e-10 * sxx * smm) & (sse_m > 0) & (sse_y > 0))
        se_a = np.sqrt(sse_m / ((n - 2.0) * sxx))
        se_b = np.sqrt(sxx * sse_y / ((n - 3.0) * det))

    def keep(array):
        return np.where(computed, array, np.nan)

    return MediationBatch(n=n.astype(int), a=keep(a), se_a=keep(se_a), b=keep(b), se_b=keep(se_b),
                          c_prime=keep(c_prime), indirect=keep(a * b), computed=computed)


def mediation_monte_carlo_p(paths: MediationBatch) -> np.ndarray:
    """Two-sided Monte Carlo p of the indirect effect, with infinitely many draws.

    Parameters
    ----------
    paths : MediationBatch

    Returns
    -------
    ndarray
        :math:`2\\min(P(a^*b^* < 0), P(a^*b^* > 0))` for :math:`a^* \\sim N(a, \\mathrm{se}_a^2)` and
        :math:`b^* \\sim N(b, \\mathrm{se}_b^2)` independent; NaN where not computed.

    Notes
    -----
    The Monte Carlo confidence interval of Preacher & Selig (2012) is the (α/2, 1 − α/2)
    percentile interval of :math:`a^*b^*` over many draws. It excludes zero exactly when less
    than α/2 of the draws fall on one side of zero. That mass has a closed form because the
    product is negative exactly when the two factors have opposite signs:
    :math:`P(a^*b^* < 0) = \\Phi(-a/\\mathrm{se}_a)\\Phi(b/\\mathrm{se}_b) + \\Phi(a/\\mathrm{se}_a)\\Phi(-b/\\mathrm{se}_b)`.
    So the test decision "the Monte Carlo CI excludes 0" is ``p < α`` with this p, exactly as
    with an infinite number of draws and with no Monte Carlo noise.

    References
    ----------
    Preacher KJ, Selig JP (2012). Advantages of Monte Carlo confidence intervals for indirect
    effects. Communication Methods and Measures 6(2), 77–98. doi:10.1080/19312458.2012.679848
    """
    za = paths.a / paths.se_a
    zb = paths.b / paths.se_b
    negative = special.ndtr(-za) * special.ndtr(zb) + special.ndtr(za) * special.ndtr(-zb)
    return np.minimum(1.0, 2.0 * np.minimum(negative, 1.0 - negative))


def mediation_monte_carlo_interval(paths: MediationBatch, rng: np.random.Generator, draws: int = 20_000,
                                   confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo confidence interval of the indirect effect (Preacher & Selig 2012), per trial.

    Parameters
    ----------
    paths : MediationBatch
    rng : numpy.random.Generator
        Draws ``a*`` then ``b*``, each of shape (trials, draws).
    draws : int
        Monte Carlo draws per trial.
    confidence : float

    Returns
    -------
    ci_low, ci_high : ndarray
        Percentiles (linear interpolation, R's type 7) of :math:`a^*b^*`.
    """
    shape = (paths.a.shape[0], int(draws))
    a_star = paths.a[:, None] + paths.se_a[:, None] * rng.standard_normal(shape)
    b_star = paths.b[:, None] + paths.se_b[:, None] * rng.standard_normal(shape)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(a_star * b_star, [tail, 1.0 - tail], axis=1)
    return low, high


def mediation_bootstrap_interval(x: np.ndarray, m: np.ndarray, y: np.ndarray, observed: np.ndarray,
                                 rng: np.random.Generator, n_boot: int = 1000, confidence: float = 0.95,
                                 chunk_elements: int = 4_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the indirect effect a·b, per trial, all resamples at once.

    Parameters
    ----------
    x, m, y : ndarray, shape (trials, participants)
    observed : ndarray of bool
        Participant complete on x, m and y (the bootstrap resamples these participants).
    rng : numpy.random.Generator
    n_boot : int
        Resamples per trial.
    confidence : float
    chunk_elements : int
        Bound on trials × resamples × participants held at once.

    Returns
    -------
    ci_low, ci_high : ndarray
        NaN where fewer than 5 participants are complete.

    Notes
    -----
    A resample is a vector of counts (how often each participant was drawn); its weighted
    cross-product matrix of [1, x, m, y] is the count vector times the participants' outer
    products, so all resamples of all trials are batched matrix products. Degenerate resamples
    (x constant, x and m collinear) are left out, as in :func:`alliance.stats.mediation`;
    quantiles are R's type 7.
    """
    s_count, n = x.shape
    complete = observed.sum(axis=1)
    order = np.argsort(~observed, axis=1, kind="stable")  # complete participants first
    design = np.stack([np.ones_like(x), np.where(observed, x, 0.0), np.where(observed, m, 0.0),
                       np.where(observed, y, 0.0)], axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        design[:, :, 1:] -= (design[:, :, 1:].sum(axis=1) / complete[:, None])[:, None, :]
    design = np.where(observed[:, :, None], design, 0.0)
    outer = (design[:, :, :, None] * design[:, :, None, :]).reshape(s_count, n, 16)
    tail = (1.0 - confidence) / 2.0
    ci_low = np.full(s_count, np.nan)
    ci_high = np.full(s_count, np.nan)
    step = max(1, chunk_elements // max(1, n_boot * n))
    position = np.arange(n)
    for start in range(0, s_count, step):
        rows = slice(start, min(start + step, s_count))
        k = complete[rows]
        size = k.shape[0]
        draw = np.floor(rng.random((size, n_boot, n)) * k[:, None, None]).astype(np.int64)
        chosen = np.take_along_axis(order[rows][:, None, :], np.minimum(draw, n - 1), axis=2)
        used = (position < k[:, None])[:, None, :]
        flat = ((np.arange(size)[:, None, None] * n_boot + np.arange(n_boot)[None, :, None]) * n + chosen)
        counts = np.bincount(flat.ravel(), weights=np.broadcast_to(used, flat.shape).ravel().astype(float),
                             minlength=size * n_boot * n).reshape(size, n_boot, n)
        gram = np.matmul(counts, outer[rows])  # (size, B, 16)
        w, sx, sm, sy = gram[..., 0], gram[..., 1], gram[..., 2], gram[..., 3]
        with np.errstate(invalid="ignore", divide="ignore"):
            sxx = gram[..., 5] - sx * sx / w
            sxm = gram[..., 6] - sx * sm / w
            sxy = gram[..., 7] - sx * sy / w
            smm = gram[..., 10] - sm * sm / w
            smy = gram[..., 11] - sm * sy / w
            det = sxx * smm - sxm * sxm
            scale = np.sqrt(np.abs(sxx * smm))
            valid = (sxx > 1e-12 * np.abs(gram[..., 5])) & (det > 1e-10 * scale * scale)
            indirect = np.where(valid, (sxm / sxx) * (sxx * smy - sxm * sxy) / det, np.nan)
        ordered = np.sort(indirect, axis=1)  # NaN last
        finite = np.isfinite(ordered).sum(axis=1)
        for level, target in ((tail, ci_low), (1.0 - tail, ci_high)):
            h = (finite - 1) * level
            lower = np.clip(np.floor(h).astype(int), 0, n_boot - 1)
            upper = np.clip(lower + 1, 0, n_boot - 1)
            fraction = h - np.floor(h)
            low_value = np.take_along_axis(ordered, lower[:, None], axis=1)[:, 0]
            high_value = np.take_along_axis(ordered, np.where(upper < finite, upper, lower)[:, None], axis=1)[:, 0]
            value = low_value + fraction * (high_value - low_value)
            target[rows] = np.where((k >= MINIMUM_MEDIATION) & (finite >= 2), value, np.nan)
    return ci_low, ci_high
