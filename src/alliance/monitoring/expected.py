"""Expected-response curves: is one participant on track, given their first score?

Measurement-based care (the OQ-Analyst; Lambert et al. 2001, 2002) compares a client's scores
with the trajectory expected for clients who *started where they did*, and a band around it
(Finch, Lambert & Schaalje 2001). Here, for each monitored scale of the protocol's
``expected_response:`` section (default: the plan's alliance total, WAI-SR over the preparation
session and after dosing; and its outcome, GRID-HAMD from baseline over follow-up):

1. **Model** (:func:`fit_expected`). On reference long scores, the project's own lme4-equivalent
   mixed model :func:`alliance.stats.mixedlm` is fitted by REML::

       value ~ 0 + timepoint + (1 + time | participant_id)

   with one mean per timepoint (the trajectory is not forced to be a line: GRID-HAMD falls
   between baseline and week 1 and then stays) and a correlated random intercept and slope in
   ``time``, the timepoint's planned day in weeks after the scale's first timepoint (from the
   protocol's anchors and offsets, :func:`alliance.monitoring.schedule.anchored_dates`, for the
   protocol's first arm). Why this covariance: it is the growth-curve structure of the
   expected-treatment-response models (Finch et al. 2001 fit random intercepts and slopes), it
   lets scores further apart in time correlate less and the spread change over time, and it
   has four parameters whatever the number of timepoints, estimable with a few hundred
   reference participants. An unstructured covariance (``(0 + timepoint | participant_id)``)
   would fit any pattern but is not identifiable next to the residual in lme4's
   parametrisation and is noisy with a study's own 20 participants. When the slope model is
   singular (a slope variance estimated at zero or a correlation at ±1) or cannot be fitted,
   the random-intercept model ``(1 | participant_id)`` (compound symmetry) is used and the
   result says so (:attr:`ExpectedModel.structure`, :attr:`ExpectedModel.notes`).
2. **Band** (:meth:`ExpectedModel.band`). With μ the fitted timepoint means, G the
   random-effect covariance, Z_k = (1, t_k) and V = Z G Zᵀ + σ²I the marginal covariance, a
   later score y_k given the first y_1 is normal with (Anderson 2003, theorem 2.5.1)

       mean_k = μ_k + V_k1 / V_11 · (y_1 − μ_1),   var_k = V_kk − V_k1² / V_11 + aᵀ Cov(μ̂) a,

   a = e_k − (V_k1/V_11) e_1. The last term is the uncertainty of the estimated means (small:
   about 1/n of the rest at a reference of 400, but a study's own 20 participants make it
   matter); the uncertainty of the variance components is not propagated. The band is
   mean_k + q_low,k sd_k to mean_k + q_high,k sd_k, sd_k = √var_k, with one of two
   calibrations (the protocol's ``expected_response.calibration``; :attr:`ExpectedModel.calibration`,
   :attr:`ExpectedModel.quantiles` record the one used):

   - ``normal``: q = ∓z_{(1+level)/2}, the conditional normal's band. Exact for Gaussian scores;
     on the calibrated simulator, whose scores are beta on the scale's range (GRID-HAMD after
     treatment skewed right, WAI-SR skewed left), it covers .933 and .938 with the misses piled
     on the adverse side (6.6% of GRID-HAMD scores above, 4.2% of WAI-SR scores below), so
     on-track participants are called "not on track" about twice as often as a 95% band promises.
   - ``empirical`` (default): q_low,k and q_high,k are the (1 − level)/2 and (1 + level)/2
     sample quantiles (``numpy.quantile``, linear interpolation, Hyndman & Fan 1996 type 7) of
     the reference participants' own standardized conditional residuals
     z_ik = (y_ik − mean_ik | y_i1) / sd_ik at timepoint k: the model gives the centre and the
     scale, the reference data give the tails, so the band follows skew without assuming a
     distribution. The idea of deriving the limits from reference data is that of the
     empirically-derived methods (Lambert et al. 2002 compared empirically-derived and
     rationally-derived methods of identifying patients at risk of treatment failure); this
     residual-quantile construction is this module's, not theirs. The residuals are cross-fitted
     (:data:`CROSS_FIT_FOLDS` = 5 folds of participants, a fixed assignment): each participant's
     residuals come from the model fitted without their fold, since residuals from the fit that
     has seen them understate a new participant's spread (on the data of the tests the
     difference is small: coverage .951 vs .951 on Gaussian data, .961 vs .951 and .961 vs .959
     on the simulator's WAI-SR and GRID-HAMD). A tail quantile needs data: the empirical band is
     used only with at least :func:`empirical_minimum` (level) reference participants with a
     first and a later score — max(200, 10 / (1 − level)), i.e. at least 5 expected residuals
     beyond each quantile, 200 at 0.95 — and each timepoint uses its own residuals when it has
     that many, otherwise the residuals pooled over the later timepoints (said in the notes).
     With fewer participants (a study reference of 20: its 2.5% quantile would be its most
     extreme residual) the normal band is used and the notes say why. The band's width still
     does not depend on y_1; the quantiles are per timepoint, not per starting score.
3. **Assessment** (:func:`assess`). Each later score is inside, below or above its band; the
   adverse side — below for a scale where higher is better (the alliance), above for one where
   lower is better (depression) — makes the participant "not on track"; the other side is
   "better than expected", noted, not alarmed. Directions come from the instrument definition
   when it declares one (``direction``), otherwise from the plan's roles; a scale with neither
   treats both sides as adverse and says so.

Reference data (:func:`expected_model` chooses, by the protocol's ``expected_response.reference``):
``study`` — the study's own participants with a score at the scale's last timepoint, when there
are at least ``min_reference_participants`` of them (otherwise the synthetic reference, said in
the notes); a site's reference CSV (:func:`load_reference_file`, bounded and checked); or
``synthetic`` — the calibrated synthetic trial (:func:`synthetic_reference`:
:func:`alliance.simulate.simulate_trial` with the Levin 2024 scenario, :data:`SYNTHETIC_N`
participants, seed :data:`SYNTHETIC_SEED`), labelled "calibrated synthetic trial (not real
participants)". Fits are cached in-process (:data:`CACHE_SIZE` of them) by protocol hash,
measure, reference kind and the :func:`fingerprint` of the reference rows, so a web page reuses a
fit until the data change.

Pure: no Django, no environment, no files opened except by :func:`load_reference_file`, which
takes a path.

References
----------
Lambert MJ, Whipple JL, Smart DW, Vermeersch DA, Nielsen SL, Hawkins EJ (2001). The effects of
providing therapists with feedback on patient progress during psychotherapy: are outcomes
enhanced? Psychotherapy Research 11(1):49-68.

Lambert MJ, Whipple JL, Bishop MJ, Vermeersch DA, Gray GV, Finch AE (2002). Comparison of
empirically-derived and rationally-derived methods for identifying patients at risk for
treatment failure. Clinical Psychology & Psychotherapy 9(3):149-164.

Finch AE, Lambert MJ, Schaalje BG (2001). Psychotherapy quality control: the statistical
generation of recovery curves for integration into an early warning system. Clinical Psychology
& Psychotherapy 8(4):231-242.

Anderson TW (2003). An Introduction to Multivariate Statistical Analysis, 3rd ed. Wiley.

Hyndman RJ, Fan Y (1996). Sample quantiles in statistical packages. The American Statistician
50(4):361-365.

Bates D, Mächler M, Bolker B, Walker S (2015). Fitting Linear Mixed-Effects Models Using lme4.
Journal of Statistical Software 67(1):1-48.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from alliance import instruments as bank
from alliance.problems import DataProblem, StudyDataError, utf8_problem
from alliance.protocol import Measure, Protocol
from alliance.stats.mixed import mixedlm
from alliance.stats.results import Result, to_plain

from .schedule import anchored_dates

__all__ = [
    "CACHE_SIZE", "CROSS_FIT_FOLDS", "EMPIRICAL_MIN_PARTICIPANTS", "MAX_REFERENCE_BYTES", "MAX_REFERENCE_ROWS", "SCORE_COLUMNS", "SYNTHETIC_LABEL", "SYNTHETIC_N",
    "SYNTHETIC_SEED", "Assessment", "ExpectedModel", "ExpectedResponseError", "MonitoredScale", "ReferenceFileError",
    "TimepointAssessment", "assess", "assess_participant", "clear_cache", "empirical_minimum", "expected_model",
    "fingerprint",
    "fit_expected", "load_reference_file", "long_scores", "monitored_scale", "parse_reference_csv",
    "study_reference", "synthetic_reference",
]

SCORE_COLUMNS = ("participant_id", "timepoint", "instrument", "scale", "value")
SYNTHETIC_LABEL = "calibrated synthetic trial (not real participants)"
# 400 participants: the means' uncertainty is then ~1/400 of the band's variance, and the trial
# is simulated and scored in about 3 s, once per process (docs/monitor.md gives the timing).
SYNTHETIC_N = 400
SYNTHETIC_SEED = 20240301
MAX_REFERENCE_BYTES = 20 * 1024 * 1024
MAX_REFERENCE_ROWS = 200_000
CACHE_SIZE = 32
# The empirical band needs at least this many reference participants with a first and a later
# score (and per-timepoint quantiles this many residuals at the timepoint; fewer: pooled over the
# later timepoints). 200 puts 5 expected residuals beyond each 2.5% / 97.5% quantile of a 95%
# band; the rule is max(200, 10 / (1 − level)), so a 99% band needs 1,000 (:func:`empirical_minimum`).
EMPIRICAL_MIN_PARTICIPANTS = 200
# Residuals of the empirical band are cross-fitted: each fold's participants are predicted from a
# fit on the other folds (K = 5), with a fixed assignment of participants to folds.
CROSS_FIT_FOLDS = 5
CROSS_FIT_SEED = 20021
STATUSES = ("on track", "not on track", "not assessable")
_SLOPE = "random intercept and slope"
_INTERCEPT = "random intercept"


class ExpectedResponseError(ValueError):
    """No expected-response curve can be made: no usable reference, or too few reference data."""


class ReferenceFileError(StudyDataError):
    """A reference CSV that cannot be used; ``problems`` name file, row, column, value and what is allowed."""

    def __init__(self, problems):
        count = len(problems)
        super().__init__(problems, f"{count} {'problem' if count == 1 else 'problems'} in the reference file; "
                                   "it was not used")


# ---------------------------------------------------------------------------------------------
# What is monitored
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MonitoredScale(Result):
    """A scale watched by expected-response curves, with what the protocol says about it.

    Attributes
    ----------
    measure : str
        ``INSTRUMENT.SCALE``, e.g. ``grid_hamd17.total``.
    label : str
        For sentences: the instrument's short name and the scale (``GRID-HAMD-17 total``).
    timepoints : tuple of str
        The protocol timepoints that give the instrument, in protocol order; the first is the one
        the band is conditional on.
    weeks : tuple of float
        Each timepoint's planned day after the first one, in weeks (the model's ``time``).
    direction : str
        ``higher_is_better``, ``lower_is_better`` or ``unknown``.
    scale_range : tuple of float
        The scale's (minimum, maximum) from the instrument definition.
    """

    measure: str
    label: str
    timepoints: tuple[str, ...]
    weeks: tuple[float, ...]
    direction: str
    scale_range: tuple[float, float]

    @property
    def instrument(self) -> str:
        return Measure.parse(self.measure, timepoint="forbidden").instrument

    @property
    def scale(self) -> str:
        return Measure.parse(self.measure, timepoint="forbidden").scale


def monitored_scale(protocol: Protocol, measure: str) -> MonitoredScale:
    """The timepoints, planned weeks, direction and range of one scale in a protocol.

    Parameters
    ----------
    protocol : Protocol
    measure : str
        ``INSTRUMENT.SCALE``.

    Returns
    -------
    MonitoredScale

    Notes
    -----
    Planned days come from the protocol's anchors and offsets for its first arm (the delayed arm
    of a waiting-list trial waits before treatment: its baseline lies further from the
    follow-ups; the timepoint means absorb the mean, and ``time`` only shapes the covariance).
    """
    parsed = Measure.parse(measure, timepoint="forbidden")
    instrument = bank.get(parsed.instrument)
    scale = instrument.scale(parsed.scale)
    timepoints = protocol.timepoints_with(parsed.instrument)
    planned = anchored_dates(protocol, protocol.arms[0].id, date(2000, 1, 1))
    first = planned[timepoints[0]] if timepoints else None
    weeks = tuple((planned[t] - first).days / 7.0 for t in timepoints) if first is not None else ()
    return MonitoredScale(measure=str(Measure(parsed.instrument, parsed.scale)),
                          label=f"{instrument.short_name} {parsed.scale.replace('_', ' ')}",
                          timepoints=tuple(timepoints), weeks=weeks,
                          direction=_direction(protocol, instrument, parsed),
                          scale_range=(float(scale.range[0]), float(scale.range[1])))


def _direction(protocol: Protocol, instrument, measure: Measure) -> str:
    declared = getattr(instrument, "direction", None)
    if declared in ("higher_is_better", "lower_is_better"):
        return declared
    roles = protocol.analysis.roles if protocol.analysis is not None else {}
    if (roles.get("alliance") or {}).get("instrument") == measure.instrument:
        return "higher_is_better"
    outcome = (roles.get("outcome") or {}).get("measure")
    if outcome and Measure.parse(str(outcome), timepoint="optional").without_timepoint() == measure:
        return "lower_is_better"
    return "unknown"


# ---------------------------------------------------------------------------------------------
# The fitted model and its band
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExpectedModel(Result):
    """The expected trajectory of one scale and the marginal covariance of its scores.

    Attributes
    ----------
    scale : MonitoredScale
    timepoints : tuple of str
        The timepoints with reference data (the first is the conditioning one).
    weeks : tuple of float
        Their ``time`` in the model.
    mean : tuple of float
        Fitted mean μ_k per timepoint.
    covariance : tuple of tuple of float
        V = Z G Zᵀ + σ²I over ``timepoints``.
    mean_covariance : tuple of tuple of float
        Cov(μ̂), the fixed effects' vcov (REML).
    structure : str
        ``random intercept and slope`` or ``random intercept`` (the fallback).
    variance_components : dict
        ``intercept_var``, ``slope_var``, ``intercept_slope_cov`` (per week; 0 for the fallback),
        ``residual_var``.
    formula : str
    reference : str
        ``synthetic``, ``study`` or ``file``.
    reference_label : str
        In words, e.g. "calibrated synthetic trial (not real participants)".
    n_reference : int
        Reference participants with at least one score of the scale.
    n_observations : int
    notes : tuple of str
        The fallback, timepoints without reference data, the reference choice, the calibration.
    calibration : str
        ``empirical`` (limits from the reference's standardized residuals) or ``normal``
        (mean ± z·sd), the one used.
    level : float
        The level at which :attr:`quantiles` are recorded (the protocol's).
    quantiles : dict
        Later timepoint → (q_low, q_high): the band at ``level`` is mean_k + q_low·sd_k to
        mean_k + q_high·sd_k (normal: ∓z_{(1+level)/2}).
    quantile_basis : dict
        Later timepoint → ``timepoint`` (its own residuals), ``pooled`` (all later timepoints'
        residuals: too few at this one) or ``normal``.
    standardized_residuals : dict
        Later timepoint → the reference participants' cross-fitted standardized residuals
        z_ik = (y_ik − mean_ik | y_i1) / sd_ik, aligned with :attr:`residual_participants`
        (NaN: no score there); empty for the normal calibration.
    residual_participants : tuple of str
        The reference participants with a first and a later score, in the order of the residuals.
    """

    scale: MonitoredScale
    timepoints: tuple[str, ...]
    weeks: tuple[float, ...]
    mean: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    mean_covariance: tuple[tuple[float, ...], ...]
    structure: str
    variance_components: dict
    formula: str
    reference: str
    reference_label: str
    n_reference: int
    n_observations: int
    notes: tuple[str, ...] = ()
    calibration: str = "normal"
    level: float = 0.95
    quantiles: dict = field(default_factory=dict)
    quantile_basis: dict = field(default_factory=dict)
    standardized_residuals: dict = field(default_factory=dict)
    residual_participants: tuple[str, ...] = ()

    def standard_limits(self, level: float = 0.95) -> np.ndarray:
        """(q_low, q_high) per later timepoint at ``level``, shape (K − 1, 2), on the sd scale.

        Normal: (−z, z) with z = Φ⁻¹((1 + level)/2). Empirical: the (1 − level)/2 and
        (1 + level)/2 sample quantiles (``numpy.quantile``'s default, Hyndman & Fan 1996 type 7)
        of the residuals named by :attr:`quantile_basis` (the timepoint's own, or all pooled).
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level {level!r} is not strictly between 0 and 1")
        later = self.timepoints[1:]
        if self.calibration != "empirical":
            z = stats.norm.ppf(0.5 + level / 2.0)
            return np.tile([-z, z], (len(later), 1))
        if level == self.level:
            return np.array([self.quantiles[t] for t in later], dtype=float)
        by_tp = {t: _observed(r) for t, r in self.standardized_residuals.items()}
        pooled = np.concatenate(list(by_tp.values()))
        probabilities = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
        return np.array([np.quantile(by_tp[t] if self.quantile_basis[t] == "timepoint" else pooled, probabilities)
                         for t in later])

    def band(self, first_value, level: float = 0.95) -> dict[str, np.ndarray]:
        """The conditional mean and band of the later timepoints given first score(s).

        Parameters
        ----------
        first_value : float or array-like of float
            The score(s) at ``timepoints[0]``.
        level : float
            Coverage of the band.

        Returns
        -------
        dict
            ``expected``, ``low``, ``high`` (arrays of shape (n, K − 1), or (K − 1,) for one
            score; unclipped), ``sd`` (K − 1,), ``timepoints`` (the K − 1 later ones) and
            ``calibration``.

        Notes
        -----
        mean_k = μ_k + V_k1/V_11 (y_1 − μ_1); var_k = V_kk − V_k1²/V_11 + aᵀ Cov(μ̂) a with
        a = e_k − (V_k1/V_11) e_1 (module docstring); low, high = mean_k + (q_low, q_high) sd_k
        with the quantiles of :meth:`standard_limits`.
        """
        limits = self.standard_limits(level)
        y1 = np.asarray(first_value, dtype=float)
        slope, sd = _conditional(np.asarray(self.covariance), np.asarray(self.mean_covariance))
        mu = np.asarray(self.mean)
        expected = mu[1:] + slope * (y1[..., None] - mu[0])
        return {"timepoints": self.timepoints[1:], "expected": expected, "low": expected + limits[:, 0] * sd,
                "high": expected + limits[:, 1] * sd, "sd": sd, "calibration": self.calibration}


def _observed(residuals) -> np.ndarray:
    values = np.asarray(residuals, dtype=float)
    return values[~np.isnan(values)]


def _conditional(v: np.ndarray, mean_cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Regression slope V_k1/V_11 and conditional sd of each later score given the first."""
    slope = v[1:, 0] / v[0, 0]
    variance = np.diag(v)[1:] - slope * v[1:, 0]
    # aᵀ C a for a = e_k − slope_k e_1: C_kk − 2 slope_k C_k1 + slope_k² C_11.
    variance = variance + np.diag(mean_cov)[1:] - 2.0 * slope * mean_cov[1:, 0] + slope**2 * mean_cov[0, 0]
    return slope, np.sqrt(variance)


def empirical_minimum(level: float) -> int:
    """Fewest reference participants (and residuals per timepoint) for an empirical band at ``level``.

    max(:data:`EMPIRICAL_MIN_PARTICIPANTS`, 10 / (1 − level)): at least 5 expected residuals
    beyond each of the two quantiles. 200 at 0.95, 1,000 at 0.99.

    Examples
    --------
    >>> empirical_minimum(0.95), empirical_minimum(0.99), empirical_minimum(0.8)
    (200, 1000, 200)
    """
    return max(EMPIRICAL_MIN_PARTICIPANTS, math.ceil(10.0 / (1.0 - level) - 1e-9))


def fit_expected(reference_scores: pd.DataFrame, protocol: Protocol, measure: str, *, reference: str = "synthetic",
                 reference_label: str | None = None, notes: tuple[str, ...] = (), calibration: str | None = None,
                 level: float | None = None) -> ExpectedModel:
    """Fit the expected-response model of one scale on reference long scores.

    Parameters
    ----------
    reference_scores : DataFrame
        Long scores ``participant_id, timepoint, instrument, scale, value``; rows of other scales
        and timepoints are ignored; several rows of one participant at one timepoint (a
        facilitator-rated scale) are averaged.
    protocol : Protocol
        Gives the scale's timepoints and their planned days.
    measure : str
        ``INSTRUMENT.SCALE``.
    reference : str
        ``synthetic``, ``study`` or ``file`` (recorded in the result).
    reference_label : str, optional
        The reference in words (default: :data:`SYNTHETIC_LABEL` for ``synthetic``).
    notes : tuple of str
        Remarks to carry into the result (how the reference was chosen).
    calibration : str, optional
        ``empirical`` or ``normal`` (default: the protocol's ``expected_response.calibration``).
        ``empirical`` with fewer than :func:`empirical_minimum` reference participants with a
        first and a later score gives the normal band, and the notes say so.
    level : float, optional
        The level at which the quantiles are recorded (default: the protocol's
        ``expected_response.level``); :meth:`ExpectedModel.band` takes any level.

    Returns
    -------
    ExpectedModel

    Raises
    ------
    ExpectedResponseError
        Fewer than two timepoints with reference data, or a model that cannot be fitted.

    Notes
    -----
    REML fit of ``value ~ 0 + timepoint + (1 + time | participant_id)``; the fallback
    ``value ~ 0 + timepoint + (1 | participant_id)`` when that fit is singular or fails. The
    empirical calibration refits the same formula on each of :data:`CROSS_FIT_FOLDS` folds' complement
    to get out-of-fold standardized residuals. See the module docstring for the band.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alliance.protocol import default_protocol
    >>> rng = np.random.default_rng(3)
    >>> tps = ["prep", "post_session1", "week1"]
    >>> person = rng.normal(0, 5, 60)
    >>> rows = [(f"P{i}", t, "wai_sr", "total", 45 + k + person[i] + rng.normal(0, 2))
    ...         for i in range(60) for k, t in enumerate(tps)]
    >>> scores = pd.DataFrame(rows, columns=["participant_id", "timepoint", "instrument", "scale", "value"])
    >>> model = fit_expected(scores, default_protocol(), "wai_sr.total", reference="file",
    ...                      reference_label="example")
    >>> model.timepoints, model.n_reference
    (('prep', 'post_session1', 'week1'), 60)
    >>> model.calibration   # 60 participants: too few for empirical 2.5% and 97.5% quantiles
    'normal'
    """
    scale = monitored_scale(protocol, measure)
    label = reference_label or (SYNTHETIC_LABEL if reference == "synthetic" else reference)
    notes = list(notes)
    config = protocol.expected_response
    calibration = config.calibration if calibration is None else calibration
    level = config.level if level is None else float(level)
    data = _scale_rows(reference_scores, scale)
    present = [t for t in scale.timepoints if t in set(data["timepoint"])]
    absent = [t for t in scale.timepoints if t not in present]
    if absent:
        notes.append(f"the reference has no {scale.label} score at {', '.join(absent)}: no band there")
    if len(present) < 2 or present[0] != scale.timepoints[0]:
        raise ExpectedResponseError(
            f"the reference ({label}) has {scale.label} scores at {', '.join(present) or 'no timepoint'}; "
            f"a curve needs the first timepoint ({scale.timepoints[0] if scale.timepoints else 'none'}) "
            "and a later one")
    weeks = dict(zip(scale.timepoints, scale.weeks, strict=True))
    data = data[data["timepoint"].isin(present)].assign(time=lambda d: d["timepoint"].map(weeks))
    formula = "value ~ 0 + timepoint + (1 + time | participant_id)"
    structure = _SLOPE
    fit = None
    try:
        fit = mixedlm(formula, data)
    except ValueError as error:
        notes.append(f"the random intercept and slope model could not be fitted ({error}); "
                     "fell back to a random intercept only")
    if fit is not None and (fit.singular or not fit.converged):
        why = "singular (a variance at zero or a correlation at ±1)" if fit.singular else "not converged"
        notes.append(f"the random intercept and slope model was {why}; fell back to a random intercept only "
                     "(equal correlation between every pair of timepoints)")
        fit = None
    if fit is None:
        structure = _INTERCEPT
        formula = "value ~ 0 + timepoint + (1 | participant_id)"
        try:
            fit = mixedlm(formula, data)
        except ValueError as error:
            raise ExpectedResponseError(f"no expected-response model for {scale.label} on the reference "
                                        f"({label}): {error}") from error
        if fit.singular:
            notes.append("the random-intercept variance is estimated at zero: later scores do not depend on "
                         "the first one in this reference")
    components = _components(fit.varcomp, structure)
    mean, v, mean_cov = _model_arrays(fit, structure, present, weeks)
    wide = data.pivot(index="participant_id", columns="timepoint", values="value").reindex(columns=present)
    calibrated = _calibrate(data, wide, formula, structure, present, weeks, (mean, v, mean_cov), calibration, level,
                            scale, notes)
    return ExpectedModel(scale=scale, timepoints=tuple(present), weeks=tuple(weeks[t] for t in present),
                         mean=tuple(mean.tolist()), covariance=tuple(map(tuple, v.tolist())),
                         mean_covariance=tuple(map(tuple, mean_cov.tolist())), structure=structure,
                         variance_components=components, formula=formula, reference=reference,
                         reference_label=label, n_reference=int(data["participant_id"].nunique()),
                         n_observations=int(len(data)), notes=tuple(notes), **calibrated)


def _model_arrays(fit, structure: str, present: list[str], weeks: dict[str, float]):
    """μ̂, V = Z G Zᵀ + σ²I and Cov(μ̂) over the present timepoints, from a fit."""
    components = _components(fit.varcomp, structure)
    z = np.column_stack([np.ones(len(present)), [weeks[t] for t in present]])
    g = np.array([[components["intercept_var"], components["intercept_slope_cov"]],
                  [components["intercept_slope_cov"], components["slope_var"]]])
    v = z @ g @ z.T + components["residual_var"] * np.eye(len(present))
    names = [f"timepoint{t}" for t in present]
    mean = fit.fixed.loc[names, "estimate"].to_numpy(dtype=float)
    mean_cov = fit.vcov.loc[names, names].to_numpy(dtype=float)
    return mean, v, mean_cov


def _standardized(wide: pd.DataFrame, mean: np.ndarray, v: np.ndarray, mean_cov: np.ndarray) -> np.ndarray:
    """(y_ik − mean_ik | y_i1) / sd_ik for the rows of ``wide`` (NaN where a score is missing)."""
    slope, sd = _conditional(v, mean_cov)
    values = wide.to_numpy(dtype=float)
    expected = mean[1:] + slope * (values[:, [0]] - mean[0])
    return (values[:, 1:] - expected) / sd


def _cross_fitted(data: pd.DataFrame, wide: pd.DataFrame, formula: str, structure: str, present: list[str],
                  weeks: dict[str, float]) -> tuple[np.ndarray, str]:
    """Out-of-fold standardized residuals of ``wide``'s rows (K-fold cross-fitting), and a note.

    In-sample residuals slightly under-state the spread a new participant meets (the fit has
    seen them); each fold is predicted from the model fitted on the other folds instead.
    """
    ids = wide.index.to_numpy()
    fold = np.empty(len(ids), dtype=int)
    fold[np.random.default_rng(CROSS_FIT_SEED).permutation(len(ids))] = np.arange(len(ids)) % CROSS_FIT_FOLDS
    out = np.full((len(ids), len(present) - 1), np.nan)
    participant = data["participant_id"].to_numpy()
    for k in range(CROSS_FIT_FOLDS):
        held = ids[fold == k]
        try:
            fit = mixedlm(formula, data[~np.isin(participant, held)])
            arrays = _model_arrays(fit, structure, present, weeks)
        except (ValueError, KeyError) as error:
            return None, f"fold {k + 1} of {CROSS_FIT_FOLDS} could not be fitted ({error})"
        out[fold == k] = _standardized(wide[fold == k], *arrays)
    return out, f"{CROSS_FIT_FOLDS}-fold cross-fitted"


def _calibrate(data, wide, formula, structure, present, weeks, arrays, calibration, level, scale, notes) -> dict:
    """The calibration fields of :class:`ExpectedModel`; appends its note to ``notes``."""
    if calibration not in ("empirical", "normal"):
        raise ValueError(f"calibration {calibration!r} is not one of empirical, normal")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level {level!r} is not strictly between 0 and 1")
    later = present[1:]
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    normal = {"calibration": "normal", "level": level, "quantiles": {t: (-z, z) for t in later},
              "quantile_basis": {t: "normal" for t in later}, "standardized_residuals": {}}
    if calibration == "normal":
        notes.append("normal band (calibration: normal): mean ± z·sd")
        return normal
    needed = empirical_minimum(level)
    usable = wide[wide[present[0]].notna() & wide[later].notna().any(axis=1)]
    tail = (1.0 - level) / 2.0
    if len(usable) < needed:
        notes.append(f"normal band: the reference has {len(usable)} participants with a first and a later "
                     f"{scale.label} score, fewer than the {needed} that empirical {tail:.1%} and {1 - tail:.1%} "
                     f"quantiles need (at least 5 expected beyond each); mean ± z·sd assumes normal scores")
        return normal
    residuals, how = _cross_fitted(data, usable, formula, structure, present, weeks)
    if residuals is None:
        notes.append(f"the cross-fitted residuals could not be computed ({how}); in-sample residuals used, "
                     "which slightly under-state the spread")
        residuals, how = _standardized(usable, *arrays), "in-sample"
    by_tp = {t: _observed(residuals[:, k]) for k, t in enumerate(later)}
    pooled = np.concatenate(list(by_tp.values()))
    basis = {t: "timepoint" if len(r) >= needed else "pooled" for t, r in by_tp.items()}
    quantiles = {t: tuple(float(q) for q in np.quantile(by_tp[t] if basis[t] == "timepoint" else pooled,
                                                       [tail, 1.0 - tail])) for t in later}
    few = [t for t in later if basis[t] == "pooled"]
    note = (f"empirical band: the {tail:.1%} and {1 - tail:.1%} quantiles of the reference's {how} standardized "
            f"residuals ({len(usable)} participants), per timepoint")
    if few:
        note += (f"; pooled over the later timepoints at {', '.join(few)} (fewer than {needed} residuals there)")
    notes.append(note)
    return {"calibration": "empirical", "level": level, "quantiles": quantiles, "quantile_basis": basis,
            "standardized_residuals": {t: tuple(residuals[:, k].tolist()) for k, t in enumerate(later)},
            "residual_participants": tuple(str(i) for i in usable.index)}


def _scale_rows(scores: pd.DataFrame, scale: MonitoredScale) -> pd.DataFrame:
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ExpectedResponseError(f"scores lack the columns {', '.join(missing)}; "
                                    f"long scores have {', '.join(SCORE_COLUMNS)}")
    rows = scores[(scores["instrument"] == scale.instrument) & (scores["scale"] == scale.scale)
                  & scores["timepoint"].isin(scale.timepoints)]
    rows = rows.assign(value=pd.to_numeric(rows["value"], errors="coerce"),
                       participant_id=rows["participant_id"].astype(str), timepoint=rows["timepoint"].astype(str))
    rows = rows[rows["value"].notna()]
    return (rows.groupby(["participant_id", "timepoint"], as_index=False, sort=True)["value"].mean()
            .loc[:, ["participant_id", "timepoint", "value"]])


def _components(varcomp: pd.DataFrame, structure: str) -> dict[str, float]:
    def pick(var1, var2=None) -> float:
        rows = varcomp[(varcomp["group"] == "participant_id") & (varcomp["var1"] == var1)]
        rows = rows[rows["var2"].isna()] if var2 is None else rows[rows["var2"] == var2]
        return float(rows["vcov"].iloc[0]) if len(rows) else 0.0

    residual = float(varcomp.loc[varcomp["group"] == "Residual", "vcov"].iloc[0])
    out = {"intercept_var": pick("(Intercept)"), "slope_var": 0.0, "intercept_slope_cov": 0.0,
           "residual_var": residual}
    if structure == _SLOPE:
        out["slope_var"] = pick("time")
        out["intercept_slope_cov"] = pick("(Intercept)", "time")
    return out


# ---------------------------------------------------------------------------------------------
# Assessing one participant
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TimepointAssessment(Result):
    """One timepoint of a participant's curve.

    Attributes
    ----------
    timepoint : str
    expected, low, high : float or None
        The conditional mean and band (unclipped); ``None`` at the first timepoint.
    low_shown, high_shown : float or None
        The band clipped to the scale's range, for display.
    observed : float or None
        The participant's score (``None``: none yet).
    status : str
        ``first`` (the conditioning score), ``inside``, ``below``, ``above``, ``not observed``,
        ``no band`` (no reference data at this timepoint).
    adverse : bool
        Outside the band on the side that counts as worse.
    """

    timepoint: str
    expected: float | None
    low: float | None
    high: float | None
    low_shown: float | None
    high_shown: float | None
    observed: float | None
    status: str
    adverse: bool = False


@dataclass(frozen=True)
class Assessment(Result):
    """Whether one participant is on track on one scale.

    Attributes
    ----------
    participant_id : str
    measure : str
        ``INSTRUMENT.SCALE``.
    status : str
        ``on track``, ``not on track`` or ``not assessable``.
    reasons : tuple of str
        In words with numbers: each score outside its band, or why nothing can be said.
    points : tuple of TimepointAssessment
        Every timepoint of the scale, in protocol order.
    first_timepoint : str
    first_value : float or None
    level : float
    reference : str
        ``synthetic``, ``study``, ``file`` or ``none``.
    reference_label : str
    n_reference : int
    structure : str
        The covariance model used (empty without a model).
    notes : tuple of str
        Better-than-expected scores, clipping for display, the model's notes.
    calibration : str
        The band's calibration, ``empirical`` or ``normal`` (empty without a model).
    """

    participant_id: str
    measure: str
    status: str
    reasons: tuple[str, ...]
    points: tuple[TimepointAssessment, ...]
    first_timepoint: str
    first_value: float | None
    level: float
    reference: str
    reference_label: str
    n_reference: int
    structure: str = ""
    notes: tuple[str, ...] = ()
    calibration: str = ""

    def to_dict(self) -> dict:
        return to_plain(self)

    def table(self) -> pd.DataFrame:
        """The points as a DataFrame (one row per timepoint; the columns of :class:`TimepointAssessment`)."""
        return pd.DataFrame([to_plain(p) for p in self.points])


def assess(scores: pd.DataFrame, participant_id: str, model: ExpectedModel | None, *,
           protocol: Protocol | None = None, measure: str | None = None, level: float = 0.95) -> Assessment:
    """Compare one participant's scores with the expected band given their first score.

    Parameters
    ----------
    scores : DataFrame
        Long scores (``participant_id, timepoint, instrument, scale, value``); only this
        participant's rows of the model's scale are used.
    participant_id : str
    model : ExpectedModel or None
        ``None`` (no reference could be fitted): the result is "not assessable"; then
        ``protocol`` and ``measure`` name the scale.
    protocol : Protocol, optional
        Needed only without a model.
    measure : str, optional
        Needed only without a model.
    level : float
        Coverage of the band (the protocol's ``expected_response.level``).

    Returns
    -------
    Assessment

    Examples
    --------
    >>> import pandas as pd
    >>> from alliance.protocol import default_protocol
    >>> none = assess(pd.DataFrame(columns=list(SCORE_COLUMNS)), "P001", None,
    ...               protocol=default_protocol(), measure="grid_hamd17.total")
    >>> none.status, none.reasons
    ('not assessable', ('no reference data for GRID-HAMD-17 total',))
    """
    if model is None:
        if protocol is None or measure is None:
            raise ValueError("assess without a model needs the protocol and the measure")
        scale = monitored_scale(protocol, measure)
        return _not_assessable(participant_id, scale, level, (f"no reference data for {scale.label}",),
                               _empty_points(scale, scores, participant_id))
    scale = model.scale
    own = _scale_rows(scores[scores["participant_id"].astype(str) == str(participant_id)], scale)
    observed = dict(zip(own["timepoint"], own["value"].astype(float), strict=True))
    first_tp = model.timepoints[0]
    label = _timepoint_words(protocol, first_tp)
    if first_tp not in observed:
        return _not_assessable(participant_id, scale, level,
                               (f"no {scale.label} score at {label}, the first timepoint of the scale: "
                                "the band is conditional on it",), _empty_points(scale, scores, participant_id),
                               model)
    y1 = observed[first_tp]
    band = model.band(y1, level)
    lo, hi = scale.scale_range
    by_tp = {t: k for k, t in enumerate(band["timepoints"])}
    points, reasons, notes = [], [], []
    given = f"given {_number(y1)} at {label}"
    for t in scale.timepoints:
        value = observed.get(t)
        if t == first_tp:
            points.append(TimepointAssessment(t, None, None, None, None, None, value, "first"))
            continue
        if t not in by_tp:
            points.append(TimepointAssessment(t, None, None, None, None, None, value, "no band"))
            continue
        k = by_tp[t]
        expected, low, high = (float(band[x][k]) for x in ("expected", "low", "high"))
        low_shown, high_shown = max(low, lo), min(high, hi)
        words = _timepoint_words(protocol, t)
        if low < lo or high > hi:
            side = ([f"below {_number(lo)}, the scale's minimum"] if low < lo else []) + \
                   ([f"above {_number(hi)}, the scale's maximum"] if high > hi else [])
            notes.append(f"the band at {words} ({low:.1f} to {high:.1f}) goes {' and '.join(side)}; "
                         f"shown clipped to {low_shown:.1f} to {high_shown:.1f}")
        if value is None:
            status, adverse = "not observed", False
        elif value < low:
            status = "below"
            adverse = scale.direction in ("higher_is_better", "unknown")
        elif value > high:
            status = "above"
            adverse = scale.direction in ("lower_is_better", "unknown")
        else:
            status, adverse = "inside", False
        if status in ("below", "above"):
            sentence = (f"{scale.label} {_number(value)} at {words} is {status} the expected band "
                        f"({low:.1f} to {high:.1f}, given {_number(y1)} at {label})")
            if adverse:
                reasons.append(sentence)
            else:
                notes.append(sentence + ": better than expected")
        points.append(TimepointAssessment(t, expected, low, high, low_shown, high_shown, value, status, adverse))
    if scale.direction == "unknown":
        notes.append(f"neither the instrument nor the plan says whether higher {scale.label} is better: "
                     "a score outside the band on either side counts")
    later = [p for p in points if p.status in ("inside", "below", "above")]
    if reasons:
        status = "not on track"
    elif later:
        status = "on track"
        last = later[-1]
        reasons.append(f"every later {scale.label} score is inside or on the better side of its band; the last, "
                       f"{_number(last.observed)} at {_timepoint_words(protocol, last.timepoint)}, against "
                       f"{last.low:.1f} to {last.high:.1f} ({given})")
    else:
        status = "not assessable"
        reasons.append(f"no {scale.label} score after {label} yet ({given}; the expected band is shown)")
    return Assessment(participant_id=str(participant_id), measure=scale.measure, status=status,
                      reasons=tuple(reasons), points=tuple(points), first_timepoint=first_tp, first_value=y1,
                      level=level, reference=model.reference, reference_label=model.reference_label,
                      n_reference=model.n_reference, structure=model.structure,
                      notes=tuple(notes) + model.notes, calibration=model.calibration)


def _not_assessable(participant_id, scale: MonitoredScale, level, reasons, points,
                    model: ExpectedModel | None = None) -> Assessment:
    return Assessment(participant_id=str(participant_id), measure=scale.measure, status="not assessable",
                      reasons=tuple(reasons), points=points,
                      first_timepoint=scale.timepoints[0] if scale.timepoints else "", first_value=None,
                      level=level, reference=model.reference if model else "none",
                      reference_label=model.reference_label if model else "",
                      n_reference=model.n_reference if model else 0,
                      structure=model.structure if model else "", notes=model.notes if model else (),
                      calibration=model.calibration if model else "")


def _empty_points(scale: MonitoredScale, scores: pd.DataFrame, participant_id: str) -> tuple:
    own = _scale_rows(scores[scores["participant_id"].astype(str) == str(participant_id)], scale) \
        if all(c in scores.columns for c in SCORE_COLUMNS) else pd.DataFrame(columns=["timepoint", "value"])
    observed = dict(zip(own["timepoint"], own["value"].astype(float), strict=True))
    return tuple(TimepointAssessment(t, None, None, None, None, None, observed.get(t),
                                     "not observed" if t not in observed else "no band")
                 for t in scale.timepoints)


def _timepoint_words(protocol: Protocol | None, timepoint_id: str) -> str:
    if protocol is None or timepoint_id not in protocol.timepoint_ids:
        return timepoint_id
    label = protocol.timepoint(timepoint_id).label
    return label[:1].lower() + label[1:] if label[:2] != label[:2].upper() else label


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


# ---------------------------------------------------------------------------------------------
# References, caching, and the one entry point for an app
# ---------------------------------------------------------------------------------------------

def long_scores(administration_scores: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Long scores from :meth:`alliance.study.Study.scores` (one row per administration, one column per scale).

    Returns
    -------
    DataFrame
        ``participant_id, timepoint, instrument, scale, value``: one row per non-missing scale
        score of the protocol's instruments.
    """
    frames = []
    for instrument_id in protocol.instruments:
        rows = administration_scores[administration_scores["instrument"] == instrument_id]
        scales = [s.id for s in bank.get(instrument_id).scales if s.id in rows.columns]
        if rows.empty or not scales:
            continue
        melted = rows.melt(id_vars=["participant_id", "timepoint", "instrument"], value_vars=scales,
                           var_name="scale", value_name="value")
        frames.append(melted)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "value" else object) for c in SCORE_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    out["value"] = pd.to_numeric(out["value"], errors="coerce")
    return out[out["value"].notna()].loc[:, list(SCORE_COLUMNS)].reset_index(drop=True)


_SYNTHETIC: OrderedDict = OrderedDict()
_FITS: OrderedDict = OrderedDict()
_LOCK = threading.Lock()


def synthetic_reference(protocol: Protocol, n: int = SYNTHETIC_N, seed: int = SYNTHETIC_SEED) -> pd.DataFrame:
    """Long scores of the calibrated synthetic trial: ``simulate_trial(protocol, n, seed)`` with the Levin 2024 scenario.

    Cached per process (by the hash of the protocol's design, n and seed). Not real participants: the scenario
    (``alliance/simulate/levin2024_scenario.yaml``) reproduces the published means, SDs and
    correlations, with beta marginals on each scale's range, dropout and skipped assessments.

    Raises
    ------
    ExpectedResponseError
        When the scenario cannot simulate this protocol (a measure it has no marginal for).
    """
    from alliance.simulate import simulate_trial  # the simulator is heavy; imported when needed
    from alliance.simulate.copula import CalibrationError

    # Keyed by the design alone: the trial depends on arms, timepoints and instruments, not on
    # alert rules or this section.
    design = json.dumps(protocol.design_dict(), sort_keys=True, default=str)
    key = (hashlib.sha256(design.encode("utf-8")).hexdigest(), n, seed)
    with _LOCK:
        if key in _SYNTHETIC:
            return _SYNTHETIC[key]
    try:
        trial = simulate_trial(protocol, n=n, seed=seed)
    except (CalibrationError, KeyError, ValueError) as error:
        raise ExpectedResponseError(f"the calibrated synthetic trial cannot be simulated for protocol "
                                    f"{protocol.id}: {error}") from error
    frame = long_scores(trial.scores(), protocol)
    with _LOCK:
        _SYNTHETIC[key] = frame
        while len(_SYNTHETIC) > 4:
            _SYNTHETIC.popitem(last=False)
    return frame


def study_reference(scores: pd.DataFrame, scale: MonitoredScale) -> pd.DataFrame:
    """The study's completed participants' rows of one scale: those with a score at its last timepoint."""
    rows = scores[(scores["instrument"] == scale.instrument) & (scores["scale"] == scale.scale)
                  & scores["timepoint"].isin(scale.timepoints)
                  & pd.to_numeric(scores["value"], errors="coerce").notna()]
    completed = set(rows.loc[rows["timepoint"] == scale.timepoints[-1], "participant_id"].astype(str))
    return rows[rows["participant_id"].astype(str).isin(completed)].loc[:, list(SCORE_COLUMNS)]


def fingerprint(scores: pd.DataFrame) -> str:
    """SHA-256 of long scores, independent of row order (the key under which a fit is reused).

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"participant_id": ["P1", "P2"], "timepoint": ["prep", "prep"],
    ...                   "instrument": ["wai_sr"] * 2, "scale": ["total"] * 2, "value": [40.0, 50.0]})
    >>> fingerprint(a) == fingerprint(a.iloc[::-1])
    True
    """
    frame = scores.loc[:, list(SCORE_COLUMNS)].astype({"participant_id": str, "timepoint": str, "instrument": str,
                                                       "scale": str})
    frame = frame.assign(value=pd.to_numeric(frame["value"], errors="coerce").astype(float))
    frame = frame.sort_values(list(SCORE_COLUMNS), kind="mergesort").reset_index(drop=True)
    return hashlib.sha256(frame.to_csv(index=False, float_format="%.17g").encode("utf-8")).hexdigest()


def clear_cache() -> None:
    """Forget every cached fit and synthetic trial (tests; a process that must free memory)."""
    with _LOCK:
        _FITS.clear()
        _SYNTHETIC.clear()


def expected_model(protocol: Protocol, measure: str, *, study_scores: pd.DataFrame | None = None,
                   reference_scores: pd.DataFrame | None = None,
                   reference_origin: str | None = None) -> ExpectedModel:
    """The expected-response model of one scale, with the protocol's reference; cached.

    Parameters
    ----------
    protocol : Protocol
        Its ``expected_response.reference`` chooses the reference.
    measure : str
        ``INSTRUMENT.SCALE``.
    study_scores : DataFrame, optional
        The study's long scores (for ``reference: study``).
    reference_scores : DataFrame, optional
        The reference file's scores, read by :func:`load_reference_file` (for a file reference).
    reference_origin : str, optional
        The file's name, for the label (default: the protocol's ``reference``).

    Returns
    -------
    ExpectedModel
        Cached by (protocol hash, measure, reference kind, :func:`fingerprint` of the rows used):
        the same data give the same object without refitting.

    Raises
    ------
    ExpectedResponseError
        A file reference without its scores, or a reference the model cannot be fitted on.
    """
    config = protocol.expected_response
    scale = monitored_scale(protocol, measure)
    kind, notes = config.reference_kind, []
    rows: pd.DataFrame | None = None
    label = SYNTHETIC_LABEL
    if kind == "study":
        rows = study_reference(study_scores, scale) if study_scores is not None else None
        completed = 0 if rows is None else rows["participant_id"].nunique()
        if completed >= config.min_reference_participants:
            label = f"this study's {completed} participants with a score at {scale.timepoints[-1]}"
        else:
            notes.append(f"the study has {completed} participants with a {scale.label} score at "
                         f"{scale.timepoints[-1]}, fewer than the {config.min_reference_participants} needed to be "
                         f"its own reference; using the {SYNTHETIC_LABEL}")
            kind, rows = "synthetic", None
    elif kind == "file":
        if reference_scores is None:
            raise ExpectedResponseError(f"the protocol's reference is the file {config.reference!r}, "
                                        "which was not given (read it with load_reference_file)")
        rows = reference_scores
        label = f"reference file {reference_origin or config.reference}"
    if kind == "synthetic":
        rows = synthetic_reference(protocol)
    rows = rows[(rows["instrument"] == scale.instrument) & (rows["scale"] == scale.scale)]
    key = (protocol.sha256, scale.measure, kind, fingerprint(rows))
    with _LOCK:
        if key in _FITS:
            _FITS.move_to_end(key)
            return _FITS[key]
    model = fit_expected(rows, protocol, scale.measure, reference=kind, reference_label=label, notes=tuple(notes))
    with _LOCK:
        _FITS[key] = model
        while len(_FITS) > CACHE_SIZE:
            _FITS.popitem(last=False)
    return model


def assess_participant(protocol: Protocol, scores: pd.DataFrame, participant_id: str, *,
                       reference_scores: pd.DataFrame | None = None,
                       reference_origin: str | None = None) -> tuple[Assessment, ...]:
    """Every monitored scale of the protocol (``expected_response.measures``) for one participant.

    Parameters
    ----------
    protocol : Protocol
    scores : DataFrame
        The study's long scores (the participant's rows, and the reference when it is ``study``).
    participant_id : str
    reference_scores : DataFrame, optional
        A reference file's scores (:func:`load_reference_file`), when the protocol names one.
    reference_origin : str, optional
        The reference file's name, for the label.

    Returns
    -------
    tuple of Assessment
        One per measure; a scale without a usable reference is "not assessable", with the reason.
    """
    config = protocol.expected_response
    out = []
    for measure in config.measures:
        try:
            model = expected_model(protocol, measure, study_scores=scores, reference_scores=reference_scores,
                                   reference_origin=reference_origin)
        except ExpectedResponseError as error:
            assessment = assess(scores, participant_id, None, protocol=protocol, measure=measure, level=config.level)
            out.append(_with_reason(assessment, str(error)))
            continue
        out.append(assess(scores, participant_id, model, protocol=protocol, level=config.level))
    return tuple(out)


def _with_reason(assessment: Assessment, reason: str) -> Assessment:
    return replace(assessment, reasons=(reason,))


# ---------------------------------------------------------------------------------------------
# The reference file
# ---------------------------------------------------------------------------------------------

def load_reference_file(path: str | Path, protocol: Protocol, max_bytes: int = MAX_REFERENCE_BYTES) -> pd.DataFrame:
    """Read a site's reference CSV of long scores, bounded and checked (:func:`parse_reference_csv`).

    Parameters
    ----------
    path : str or Path
    protocol : Protocol
        Timepoints, instruments and scales are checked against it and the instrument bank.
    max_bytes : int
        Files larger than this are refused unread (default 20 MiB).

    Returns
    -------
    DataFrame
        ``participant_id, timepoint, instrument, scale, value``.

    Raises
    ------
    ReferenceFileError
        Naming the file, row, column and value of every problem, and what is allowed.
    """
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ReferenceFileError([DataProblem(name, None, None, None, f"at most {max_bytes:,} bytes",
                                                  f"is {size:,} bytes")])
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise ReferenceFileError([DataProblem(name, None, None, None, "a readable CSV file",
                                              f"cannot be read ({error.strerror or error})")]) from error
    if len(data) > max_bytes:
        raise ReferenceFileError([DataProblem(name, None, None, None, f"at most {max_bytes:,} bytes",
                                              "grew beyond the limit while being read")])
    return parse_reference_csv(data, protocol, name)


def parse_reference_csv(data: bytes, protocol: Protocol, origin: str = "reference.csv",
                        max_rows: int = MAX_REFERENCE_ROWS) -> pd.DataFrame:
    """Check and decode the bytes of a reference CSV (header ``participant_id,timepoint,instrument,scale,value``).

    Every value is decoded and checked: a non-empty participant id; a timepoint of the protocol
    that gives the instrument; an instrument of the bank; one of its scales; a finite number in
    the scale's range. Every problem is collected (rows are the file's lines, the header line 1)
    and raised together.

    Raises
    ------
    ReferenceFileError
    """
    problem = utf8_problem(data, origin)
    if problem is not None:
        raise ReferenceFileError([problem])
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ReferenceFileError([DataProblem(origin, None, None, None, ", ".join(SCORE_COLUMNS),
                                              "is empty: no header")]) from None
    except csv.Error as error:
        raise ReferenceFileError([DataProblem(origin, 1, None, None, "a CSV header", f"is not CSV ({error})")]) \
            from None
    header = [h.strip() for h in header]
    problems: list[DataProblem] = []
    for column in [c for c in header if c not in SCORE_COLUMNS]:
        problems.append(DataProblem(origin, 1, column, None, ", ".join(SCORE_COLUMNS), "is not a column of long scores"))
    for column in [c for c in SCORE_COLUMNS if c not in header]:
        problems.append(DataProblem(origin, 1, column, None, ", ".join(SCORE_COLUMNS), "is missing"))
    if problems:
        raise ReferenceFileError(problems)
    where = {c: header.index(c) for c in SCORE_COLUMNS}
    records = []
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(records) >= max_rows:
                problems.append(DataProblem(origin, line, None, None, f"at most {max_rows:,} rows",
                                            "is beyond the row limit"))
                break
            if len(row) != len(header):
                problems.append(DataProblem(origin, line, None, None, f"{len(header)} fields, as the header",
                                            f"has {len(row)} fields"))
                continue
            record = _reference_row(row, where, protocol, origin, line, problems)
            if record is not None:
                records.append(record)
    except csv.Error as error:
        problems.append(DataProblem(origin, reader.line_num, None, None, "CSV", f"is not CSV ({error})"))
    if problems:
        raise ReferenceFileError(problems)
    return pd.DataFrame.from_records(records, columns=list(SCORE_COLUMNS))


def _reference_row(row, where, protocol: Protocol, origin: str, line: int, problems: list) -> tuple | None:
    def bad(column, value, reason, allowed):
        problems.append(DataProblem(origin, line, column, value, allowed, reason))

    participant, timepoint, instrument_id, scale_id, raw = (row[where[c]].strip() for c in SCORE_COLUMNS)
    before = len(problems)
    if not participant:
        bad("participant_id", None, "is empty", "a participant id")
    instrument = None
    if instrument_id not in protocol.instruments:
        bad("instrument", instrument_id, f"is not an instrument of protocol {protocol.id}",
            ", ".join(protocol.instruments))
    else:
        instrument = bank.get(instrument_id)
        if not protocol.administers(timepoint, instrument_id):
            bad("timepoint", timepoint, f"is not a timepoint of protocol {protocol.id} that gives {instrument_id}",
                ", ".join(protocol.timepoints_with(instrument_id)))
    scale = None
    if instrument is not None:
        scales = [s.id for s in instrument.scales]
        if scale_id not in scales:
            bad("scale", scale_id, f"is not a scale of {instrument_id}", ", ".join(scales))
        else:
            scale = instrument.scale(scale_id)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        bad("value", raw, "is not a finite number", "a number (leave the row out for a missing score)")
    elif scale is not None and not scale.range[0] <= value <= scale.range[1]:
        bad("value", raw, f"is outside the range of {instrument_id}.{scale_id}",
            f"{_number(scale.range[0])} to {_number(scale.range[1])}")
    if len(problems) > before:
        return None
    return (participant, timepoint, instrument_id, scale_id, value)
