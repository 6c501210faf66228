"""Logistic regression by maximum likelihood or by Firth's penalised likelihood, as R reports it.

The safety question of issue 16 ("alliance vs harm": is alliance at the last preparation session
associated with an adverse event?) has few participants and fewer events, where maximum
likelihood is biased away from zero and fails outright under separation. Firth's (1993)
penalised likelihood gives finite, less biased estimates there (Heinze & Schemper 2002).

Why our own and not statsmodels: statsmodels' ``Logit`` has no Firth estimator, and the product
promises R's numbers — ``glm(family = binomial)`` for ``method="ml"``, ``brglm2::brglmFit(type =
"AS_mean")`` for ``method="firth"`` (equal to Firth's estimator for logistic regression), and
logistf's profile penalised-likelihood intervals and penalised likelihood-ratio p-values. Each fit
is a few Newton steps on a p × p system, so writing them here costs little and fixes tolerance,
step-halving and separation handling to what is documented below. Checked against R 4.2.2 and
brglm2 0.9 (``tests/stats/reference/logistic.R``).

Separation is detected exactly, not from symptoms: a linear programme (Konis 2007, as in R's
``detectseparation``) finds whether some direction b has (2y − 1)·x'b ≥ 0 for every row with
at least one inequality strict; if so the maximum-likelihood estimate does not exist.

Missing data: rows with a missing value in y or any covariate are dropped (listwise, as R's
``na.omit``); their number is in the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from ._inputs import check_confidence, check_method
from .results import Result

__all__ = ["LogisticRegression", "logistic_regression"]

METHODS = ("ml", "firth")
MAX_ITERATIONS = {"ml": 100, "firth": 500}
TOLERANCE = 1e-12  # on the largest coefficient step, relative to (1 + |coefficient|)
MAX_STEP = 5.0  # logistf's maxstep: no coefficient moves by more than this in one Firth step
MAX_HALVINGS = 25
RANK_TOLERANCE = 1e-7  # R's qr() tolerance for a column counted as a linear combination of others
SEPARATION_TOLERANCE = 1e-7


@dataclass(frozen=True)
class LogisticRegression(Result):
    """Result of :func:`logistic_regression`.

    Attributes
    ----------
    method : str
        ``"ml"`` or ``"firth"``.
    coefficients : DataFrame
        Index ``term`` (``"(Intercept)"`` then the covariates); columns ``estimate`` (log odds),
        ``se``, ``z``, ``p`` (two-sided Wald), ``ci_low``, ``ci_high`` (Wald), ``odds_ratio``,
        ``or_ci_low``, ``or_ci_high`` (the Wald interval exponentiated). For ``"firth"`` also
        ``lr_statistic`` and ``p_lr`` (penalised likelihood-ratio test of the coefficient = 0),
        ``profile_ci_low``, ``profile_ci_high`` (profile penalised-likelihood interval) and
        ``or_profile_ci_low``, ``or_profile_ci_high`` — the inference logistf reports by default.
    n : int
        Rows used (complete cases).
    n_events : int
        Rows with y = 1.
    n_dropped : int
        Rows left out for a missing value.
    loglik : float
        Log-likelihood at the estimate (unpenalised, also for Firth).
    penalised_loglik : float
        ``loglik + ½ log det I(b)`` at the estimate for Firth; NaN for ML.
    converged : bool
    iterations : int
    separation : bool
        Complete or quasi-complete separation in the data (then the ML estimate does not exist).
    separation_kind : str
        ``"none"``, ``"quasi-complete"`` or ``"complete"``.
    confidence : float
    notes : tuple of str
    """

    method: str
    coefficients: pd.DataFrame
    n: int
    n_events: int
    n_dropped: int
    loglik: float
    penalised_loglik: float
    converged: bool
    iterations: int
    separation: bool
    separation_kind: str
    confidence: float = 0.95
    notes: tuple[str, ...] = ()


def _response(y) -> np.ndarray:
    """y as a float vector of 0/1 with NaN for missing; ``ValueError`` for any other value."""
    if isinstance(y, pd.Series | pd.Index):
        values = y.to_numpy(dtype=object)
    else:
        values = np.asarray(y, dtype=object)
    if values.ndim != 1:
        raise ValueError(f"y must be one-dimensional; got an array of shape {values.shape}")
    out = np.empty(values.size)
    for index, value in enumerate(values):
        if value is None or value is pd.NA or (isinstance(value, float | np.floating) and np.isnan(value)):
            out[index] = np.nan
        elif isinstance(value, bool | np.bool_) or (isinstance(value, int | float | np.number) and value in (0, 1)):
            out[index] = float(value)
        else:
            raise ValueError(f"y must be binary (0/1 or True/False, NaN for missing); found {value!r} at row {index}")
    return out


def _design(X, names) -> tuple[np.ndarray, list[str]]:
    """Covariates as a float matrix (n × k) and their names."""
    if isinstance(X, pd.Series):
        X = X.to_frame(name=X.name if X.name is not None else "x")
    if isinstance(X, pd.DataFrame):
        columns = [str(column) for column in X.columns]
        try:
            matrix = X.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            raise ValueError(f"X must be numeric; found dtypes {dict(X.dtypes.astype(str))}") from None
    else:
        try:
            matrix = np.asarray(X, dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"X must be numeric; could not convert it to numbers ({error})") from None
        if matrix.ndim == 1:
            matrix = matrix[:, None]
        if matrix.ndim != 2:
            raise ValueError(f"X must be one- or two-dimensional; got an array of shape {matrix.shape}")
        columns = ["x"] if matrix.shape[1] == 1 else [f"x{index + 1}" for index in range(matrix.shape[1])]
    if names is not None:
        names = [str(name) for name in names]
        if len(names) != matrix.shape[1]:
            raise ValueError(f"names has {len(names)} entries and X {matrix.shape[1]} columns; they must match")
        columns = names
    if len(set(columns)) != len(columns) or "(Intercept)" in columns:
        raise ValueError(f"covariate names must be unique and not '(Intercept)'; got {columns}")
    if np.isinf(matrix).any():
        raise ValueError("X contains infinite values; only finite numbers or missing (NaN) are allowed")
    return matrix, columns


def _check_rank(x: np.ndarray, terms: list[str]) -> None:
    """``ValueError`` naming the first column that is a linear combination of earlier ones (R's qr rule)."""
    scaled = x / np.linalg.norm(x, axis=0)
    for column in range(1, x.shape[1]):
        _, r = np.linalg.qr(scaled[:, : column + 1])
        if abs(r[column, column]) < RANK_TOLERANCE:
            others = ", ".join(terms[:column])
            raise ValueError(f"covariate {terms[column]!r} is constant or collinear with {others}: "
                             "X must have full column rank; drop or combine collinear covariates")


def _separation(x: np.ndarray, y: np.ndarray) -> str:
    """``"none"``, ``"quasi-complete"`` or ``"complete"``: Konis's (2007) linear programmes."""
    signed = (2 * y - 1)[:, None] * (x / np.abs(x).max(axis=0))
    k = x.shape[1]
    # max Σ s_i x_i'b  subject to  s_i x_i'b ≥ 0, −1 ≤ b ≤ 1: positive only under separation
    fit = optimize.linprog(-signed.sum(axis=0), A_ub=-signed, b_ub=np.zeros(len(y)), bounds=[(-1, 1)] * k,
                           method="highs")
    if not fit.success or -fit.fun <= SEPARATION_TOLERANCE:
        return "none"
    # max t  subject to  s_i x_i'b ≥ t, −1 ≤ b ≤ 1, t ≤ 1: positive only under complete separation
    a_ub = np.hstack([-signed, np.ones((len(y), 1))])
    objective = np.zeros(k + 1)
    objective[-1] = -1.0
    margin = optimize.linprog(objective, A_ub=a_ub, b_ub=np.zeros(len(y)), bounds=[(-1, 1)] * k + [(None, 1)],
                              method="highs")
    return "complete" if margin.success and -margin.fun > SEPARATION_TOLERANCE else "quasi-complete"


def _loglik(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    eta = x @ beta
    return float(y @ eta - np.logaddexp(0.0, eta).sum())


def _fisher(x: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fitted probabilities and the Fisher information X'WX, W = diag(p(1 − p))."""
    p = special.expit(x @ beta)
    return p, x.T @ (x * (p * (1 - p))[:, None])


def _penalised(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    """Firth's penalised log-likelihood l(b) + ½ log det I(b); −inf where I(b) is singular."""
    _, information = _fisher(x, beta)
    sign, logdet = np.linalg.slogdet(information)
    return _loglik(x, y, beta) + 0.5 * logdet if sign > 0 else -np.inf


def _score(x: np.ndarray, y: np.ndarray, beta: np.ndarray, firth: bool) -> tuple[np.ndarray, np.ndarray]:
    """Score (Firth's modified score when ``firth``) and the Fisher information at ``beta``."""
    p, information = _fisher(x, beta)
    residual = y - p
    if firth:
        # hat values h_i = w_i x_i' I⁻¹ x_i; U*(b) = X'(y − p + h (½ − p)) is the gradient of the
        # penalised log-likelihood (Firth 1993, eq. 4.1 for the canonical link)
        hat = p * (1 - p) * np.einsum("ij,ij->i", x @ np.linalg.inv(information), x)
        residual = residual + hat * (0.5 - p)
    return x.T @ residual, information


def _penalised_curvature(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """−∂²l*/∂b∂b' for Firth's penalised log-likelihood: I(b) minus the Hessian of ½ log det I(b).

    With w = p(1 − p), c = w(1 − 2p), M_r = X' diag(c x_r) X and Q = I⁻¹, the penalty's Hessian
    is ½[Σ_i w_i(1 − 6w_i) x_ir x_is x_i'Qx_i − tr(Q M_r Q M_s)].
    """
    p, information = _fisher(x, beta)
    w = p * (1 - p)
    inverse = np.linalg.inv(information)
    leverage = np.einsum("ij,jk,ik->i", x, inverse, x)
    second = x.T @ (x * (w * (1 - 6 * w) * leverage)[:, None])
    m = np.einsum("i,ir,ij,ik->rjk", w * (1 - 2 * p), x, x, x)
    qm = np.einsum("ab,rbc->rac", inverse, m)
    first = np.einsum("rab,sba->rs", qm, qm)
    return information - 0.5 * (second - first)


def _maximise(x, y, start, firth: bool, free=None, max_iterations=100):
    """Fisher scoring with step-halving on the (penalised) log-likelihood over the ``free`` coefficients.

    For ML this is Newton–Raphson (= IRLS; the observed and expected information coincide for the
    logit link). For Firth the step is Newton's on l* where l* is locally concave, else
    I(b)⁻¹ U*(b) (logistf's and brglm2's quasi-Newton step); it is capped at ``MAX_STEP`` and
    halved until the penalised log-likelihood does not decrease.
    Returns (estimate, converged, iterations); stops unconverged where the information is singular.
    """
    objective = _penalised if firth else _loglik
    beta = start.astype(float).copy()
    free = np.arange(x.shape[1]) if free is None else free
    current = objective(x, y, beta)
    for iteration in range(1, max_iterations + 1):
        try:  # the information is numerically singular once fitted probabilities reach 0 or 1
            score, information = _score(x, y, beta, firth)
            step = np.linalg.solve(information[np.ix_(free, free)], score[free])
            if firth:
                # Newton's step on l* where its curvature is negative definite: the Fisher step alone
                # converges slowly (oscillating) far out on a profile, where the penalty's curvature
                # is not negligible
                curvature = _penalised_curvature(x, beta)[np.ix_(free, free)]
                if np.all(np.linalg.eigvalsh(curvature) > 0):
                    step = np.linalg.solve(curvature, score[free])
        except np.linalg.LinAlgError:
            return beta, False, iteration
        if firth and np.abs(step).max() > MAX_STEP:
            step *= MAX_STEP / np.abs(step).max()
        for _ in range(MAX_HALVINGS):
            trial = beta.copy()
            trial[free] += step
            value = objective(x, y, trial)
            if value >= current - 1e-12 * abs(current) or not np.isfinite(current):
                break
            step /= 2
        if not np.isfinite(value):
            return beta, False, iteration
        beta, current = trial, value
        if np.all(np.abs(step) <= TOLERANCE * (1 + np.abs(beta[free]))):
            return beta, True, iteration
    return beta, False, max_iterations


def _profile(x, y, beta, j, value, firth=True):
    """Maximum of the penalised log-likelihood over the other coefficients with coefficient j = ``value``.

    The penalty keeps the full design matrix (logistf; Heinze & Schemper 2002, section 2.2), so the
    restricted fit solves the modified score equations of the free coefficients only.
    """
    start = beta.copy()
    start[j] = value
    free = np.delete(np.arange(x.shape[1]), j)
    fitted, converged, _ = _maximise(x, y, start, firth, free=free, max_iterations=MAX_ITERATIONS["firth"])
    return _penalised(x, y, fitted), fitted, converged


def _profile_inference(x, y, beta, se, confidence):
    """Penalised likelihood-ratio statistic, its p and the profile interval of every coefficient."""
    top = _penalised(x, y, beta)
    cut = stats.chi2.ppf(confidence, 1) / 2
    rows, failed = [], []
    for j in range(x.shape[1]):
        value, _, converged = _profile(x, y, beta, j, 0.0)
        statistic = max(2 * (top - value), 0.0)
        ends = []
        for direction in (-1.0, 1.0):
            warm = {"beta": beta}

            def drop(v, j=j, warm=warm):
                # start from the last converged profile fit (close to v during the root search)
                profiled, fitted, converged = _profile(x, y, warm["beta"], j, v)
                if not converged and warm["beta"] is not beta:
                    profiled, fitted, converged = _profile(x, y, beta, j, v)
                if converged:
                    warm["beta"] = fitted
                warm["converged"] = converged
                return top - profiled - cut

            width = se[j]
            bracket = beta[j] + direction * width
            while drop(bracket) < 0 and width < 1e6:
                width *= 2
                bracket = beta[j] + direction * width
            if width >= 1e6:
                ends.append(direction * np.inf)
                failed.append(j)
                continue
            warm["beta"] = beta
            low, high = sorted((beta[j], bracket))
            end = optimize.brentq(drop, low, high, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500)
            drop(end)
            if not warm["converged"]:
                failed.append(j)
            ends.append(end)
        if not converged:
            failed.append(j)
        rows.append((statistic, float(stats.chi2.sf(statistic, 1)), ends[0], ends[1]))
    return np.array(rows), sorted(set(failed))


def logistic_regression(y, X, *, method: str = "ml", names=None, confidence: float = 0.95) -> LogisticRegression:
    """Logistic regression of a binary outcome on covariates, by maximum likelihood or Firth's method.

    Parameters
    ----------
    y : array-like of 0/1 or bool
        The outcome (e.g. any adverse event). NaN/None marks a missing value.
    X : DataFrame, Series or array-like (n × k or length n)
        Covariates; an intercept is added. NaN marks a missing value.
    method : {"ml", "firth"}, default "ml"
        ``"ml"``: maximum likelihood, R's ``glm(y ~ X, family = binomial)``. ``"firth"``: Firth's
        (1993) penalised likelihood (Jeffreys-prior penalty), R's ``brglm2::brglmFit(type =
        "AS_mean")`` and ``logistf::logistf``; recommended with few events or under separation.
    names : sequence of str, optional
        Covariate names; default the DataFrame's columns, the Series' name, or ``x``/``x1, x2, …``.
    confidence : float, default 0.95
        Level of the intervals.

    Returns
    -------
    LogisticRegression
        Which p and intervals are given: for both methods ``p`` and ``ci_low``/``ci_high`` are Wald
        (estimate ± z·SE, SE from the inverse Fisher information at the estimate — what
        ``summary(glm)`` and ``summary(brglmFit)`` print). For Firth also ``p_lr`` and
        ``profile_ci_low``/``profile_ci_high``, the penalised likelihood-ratio p and profile
        penalised-likelihood interval, which Heinze & Schemper (2002) recommend over Wald's with
        small samples and which ``logistf`` reports by default; prefer those for Firth.

    Raises
    ------
    ValueError
        If y is not binary, fewer than 2 events or 2 non-events remain, X is not numeric or not of
        full column rank (a constant or collinear covariate, named), lengths differ, or no more
        complete rows than coefficients remain.

    Notes
    -----
    With p_i = 1 / (1 + exp(−x_i'b)), the log-likelihood is l(b) = Σ y_i log p_i + (1 − y_i)
    log(1 − p_i) and the Fisher information I(b) = X'WX, W = diag(p_i (1 − p_i)). ML solves
    U(b) = X'(y − p) = 0 by Newton–Raphson (step I⁻¹U, halved while l decreases) until every step
    is below 1e-12·(1 + |b|), i.e. to glm with ``epsilon = 1e-14``. Firth maximises
    l*(b) = l(b) + ½ log det I(b), solving the modified score U*(b) = X'(y − p + h(½ − p)) = 0,
    h_i the diagonal of W^½ X I⁻¹ X' W^½ (the hat values), by the step I⁻¹U* (capped at 5,
    halved while l* decreases). SE = √diag I(b̂)⁻¹; z = b̂/SE; p = 2Φ(−|z|). For Firth the
    penalised LR statistic of b_j = 0 is 2(l*(b̂) − max l* with b_j = 0), with the penalty
    computed from the full X (logistf's convention), referred to χ²(1); the profile interval is
    {b_j : 2(l*(b̂) − max l* with b_j fixed) ≤ χ²₁(confidence)}.

    Under complete or quasi-complete separation (detected by a linear programme, Konis 2007) the
    ML estimates diverge: ``separation`` is True, the fit stops unconverged at huge estimates and
    SEs (as glm does) and ``notes`` recommends ``method="firth"``, whose estimates stay finite.

    References
    ----------
    Firth D (1993). Bias reduction of maximum likelihood estimates. *Biometrika* 80(1):27–38.
    Heinze G, Schemper M (2002). A solution to the problem of separation in logistic regression.
    *Statistics in Medicine* 21(16):2409–2419. Kosmidis I, Firth D (2021). Jeffreys-prior penalty,
    finiteness and shrinkage in binomial-response generalized linear models. *Biometrika*
    108(1):71–82. Konis K (2007). *Linear programming algorithms for detecting separated data in
    binary logistic regression models*. DPhil thesis, University of Oxford. Albert A, Anderson JA
    (1984). On the existence of maximum likelihood estimates in logistic regression models.
    *Biometrika* 71(1):1–10.

    Examples
    --------
    >>> from alliance.stats import logistic_regression
    >>> event = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    >>> alliance = [60, 58, 55, 53, 50, 49, 47, 45, 41, 38]
    >>> ml = logistic_regression(event, alliance, names=["alliance"])
    >>> ml.separation, ml.separation_kind
    (True, 'complete')
    >>> firth = logistic_regression(event, alliance, method="firth", names=["alliance"])
    >>> firth.converged, float(round(firth.coefficients.loc["alliance", "estimate"], 3))
    (True, -0.402)
    >>> float(round(firth.coefficients.loc["alliance", "p_lr"], 4))
    0.0083
    """
    check_method(method, METHODS)
    confidence = check_confidence(confidence)
    outcome = _response(y)
    covariates, columns = _design(X, names)
    if covariates.shape[0] != outcome.size:
        raise ValueError(f"y has {outcome.size} rows and X {covariates.shape[0]}; they must have the same length")
    complete = ~(np.isnan(outcome) | np.isnan(covariates).any(axis=1))
    dropped = int((~complete).sum())
    outcome, covariates = outcome[complete], covariates[complete]
    n = outcome.size
    events = int(outcome.sum())
    if events < 2 or n - events < 2:
        raise ValueError(f"logistic regression needs at least 2 events and 2 non-events among the {n} complete "
                         f"rows; found {events} events and {n - events} non-events")
    terms = ["(Intercept)", *columns]
    x = np.column_stack([np.ones(n), covariates])
    if n <= x.shape[1]:
        raise ValueError(f"logistic_regression needs more complete rows ({n}) than coefficients ({x.shape[1]})")
    _check_rank(x, terms)

    firth = method == "firth"
    separation = _separation(x, outcome)
    start = np.zeros(x.shape[1])
    start[0] = special.logit(events / n)
    beta, converged, iterations = _maximise(x, outcome, start, firth, max_iterations=MAX_ITERATIONS[method])
    _, information = _fisher(x, beta)
    with np.errstate(invalid="ignore", divide="ignore"):
        try:
            se = np.sqrt(np.diag(np.linalg.inv(information)))
        except np.linalg.LinAlgError:
            se = np.full(x.shape[1], np.inf)
        z = beta / se
    p = 2 * stats.norm.sf(np.abs(z))
    half = stats.norm.ppf(0.5 + confidence / 2) * se
    table = pd.DataFrame({"estimate": beta, "se": se, "z": z, "p": p, "ci_low": beta - half, "ci_high": beta + half},
                         index=pd.Index(terms, name="term"))
    with np.errstate(over="ignore"):
        table["odds_ratio"] = np.exp(table["estimate"])
        table["or_ci_low"] = np.exp(table["ci_low"])
        table["or_ci_high"] = np.exp(table["ci_high"])

    notes = []
    if dropped:
        notes.append(f"{dropped} rows with a missing value in y or X were left out (listwise)")
    if separation != "none" and not firth:
        notes.append(f"{separation} separation: a combination of the covariates predicts the outcome "
                     "perfectly, so the maximum-likelihood estimates do not exist (they diverge; the "
                     "estimates, SEs and p shown are meaningless); use method='firth' "
                     "(Heinze & Schemper 2002)")
    elif separation != "none":
        notes.append(f"{separation} separation in the data: the Firth estimates are finite, but prefer the "
                     "profile intervals and p_lr to the Wald ones")
    if not converged and not (separation != "none" and not firth):
        notes.append(f"the {method} fit did not converge in {iterations} iterations")
    fitted = special.expit(x @ beta)
    if not firth and separation == "none" and (fitted.min() < 1e-10 or fitted.max() > 1 - 1e-10):
        notes.append("fitted probabilities numerically 0 or 1 occurred")
    if min(events, n - events) < 10 * (x.shape[1] - 1):
        covariates = x.shape[1] - 1
        notes.append(f"Only {min(events, n - events)} participants have the rarer outcome for {covariates} "
                     f"covariate{'s' if covariates != 1 else ''} (fewer than 10 per covariate): the estimates are "
                     "imprecise" + ("." if firth else "; Firth's method is less biased."))

    penalised = float("nan")
    if firth:
        penalised = _penalised(x, outcome, beta)
        profile, failed = _profile_inference(x, outcome, beta, se, confidence)
        table["lr_statistic"] = profile[:, 0]
        table["p_lr"] = profile[:, 1]
        table["profile_ci_low"] = profile[:, 2]
        table["profile_ci_high"] = profile[:, 3]
        with np.errstate(over="ignore"):
            table["or_profile_ci_low"] = np.exp(table["profile_ci_low"])
            table["or_profile_ci_high"] = np.exp(table["profile_ci_high"])
        if failed:
            notes.append("the profile penalised likelihood of " + ", ".join(terms[j] for j in failed)
                         + " did not converge or has no finite interval end")

    return LogisticRegression(method=method, coefficients=table, n=n, n_events=events, n_dropped=dropped,
                              loglik=_loglik(x, outcome, beta), penalised_loglik=float(penalised),
                              converged=bool(converged), iterations=int(iterations),
                              separation=separation != "none", separation_kind=separation,
                              confidence=confidence, notes=tuple(notes))
