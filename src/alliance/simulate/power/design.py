"""The simulation design: the planned tests resolved against the protocol and the score model.

:func:`build_design` turns a protocol, a scenario and a list of tests into a picklable
:class:`SimulationDesign`: the Cholesky factor of the latent correlations, the transform of each
measure the tests use (a tabulated beta quantile function, the exact one, or a normal), the
timepoint after which each measure is complete (for attrition), and each test with the columns it
reads and the population value of its effect. The calibrated score model is cached per
(protocol, scenario) in this process.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from alliance.protocol import Measure

from ..copula import BetaMarginal, pearson_from_latent
from ..scenario import Scenario
from ..trial import (
    ScoreModel,
    cached_score_model,
    require_positive_definite,
    target_correlations,
)
from .spec import DISTRIBUTIONS, MEDIATION_CI, PowerSpecificationError, PowerTest, _parse_test

__all__ = ["SimulationDesign", "build_design"]

_QUANTILE_NODES = 4097
_QUANTILE_Z = 8.5  # standard normal draws beyond ±8.5 (probability 2e-17) are clamped


@dataclass(frozen=True)
class _QuantileTable:
    """A beta marginal's quantile function of a normal score, tabulated for fast draws.

    ``BetaMarginal.from_normal`` costs an inverse incomplete beta function per value (≈2 µs);
    a power analysis transforms millions. The quantile function Q(z) = F⁻¹(Φ(z)) is tabulated at
    4,097 normal scores on [−8.5, 8.5] with its derivative Q'(z) = φ(z)/f(Q(z)) and interpolated
    by cubic Hermite splines: error below 1e-9 of the scale's range (checked in the tests).
    """

    low: float
    high: float
    start: float
    step: float
    values: np.ndarray
    slopes: np.ndarray

    @classmethod
    def build(cls, marginal: BetaMarginal) -> _QuantileTable:
        a, b = marginal.shape
        z = np.linspace(-_QUANTILE_Z, _QUANTILE_Z, _QUANTILE_NODES)
        values = marginal.from_normal(z)
        width = marginal.high - marginal.low
        density = stats.beta.pdf((values - marginal.low) / width, a, b) / width
        with np.errstate(divide="ignore", invalid="ignore"):
            slopes = np.where(density > 0, stats.norm.pdf(z) / density, 0.0)
        slopes = np.where(np.isfinite(slopes), slopes, 0.0)
        return cls(marginal.low, marginal.high, float(z[0]), float(z[1] - z[0]), values, slopes)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        position = (np.clip(z, -_QUANTILE_Z, _QUANTILE_Z) - self.start) / self.step
        index = np.clip(position.astype(np.int64), 0, self.values.size - 2)
        s = position - index
        s2 = s * s
        s3 = s2 * s
        value = ((2 * s3 - 3 * s2 + 1) * self.values[index] + (s3 - 2 * s2 + s) * self.step * self.slopes[index]
                 + (3 * s2 - 2 * s3) * self.values[index + 1] + (s3 - s2) * self.step * self.slopes[index + 1])
        return np.clip(value, self.low, self.high)


@dataclass(frozen=True)
class _ResolvedTest:
    spec: PowerTest
    columns: tuple[int, ...]  # into the design's simulated columns, in the order of spec.measures
    effect: float
    effect_measure: str


@dataclass(frozen=True)
class SimulationDesign:
    """Everything a worker needs to simulate and test trial blocks (picklable, no protocol object).

    Attributes
    ----------
    measures : tuple of str
        Every measure of the score model, in its order.
    factor : ndarray
        Cholesky factor of the latent normal correlation matrix (all measures).
    columns : tuple of int
        The measures the tests use (indices into ``measures``).
    transforms : tuple
        Per used column: a :class:`_QuantileTable` (beta marginals), a ``BetaMarginal`` (exact
        quantiles) or ``(mean, sd)`` (normal marginals).
    positions : ndarray of int
        Per used column: the index, in protocol order, of the timepoint after which the measure
        is complete (dropout after an earlier timepoint loses it).
    n_timepoints : int
        Timepoints of the protocol (dropout happens after one of the first ``n_timepoints − 1``).
    tests : tuple of _ResolvedTest
    alpha, mediation_ci, n_boot
        Test settings.
    """

    measures: tuple[str, ...]
    factor: np.ndarray
    columns: tuple[int, ...]
    transforms: tuple[Any, ...]
    positions: np.ndarray
    n_timepoints: int
    tests: tuple[_ResolvedTest, ...]
    alpha: float
    mediation_ci: str
    n_boot: int


def _target_latent(model: ScoreModel, scenario: Scenario) -> np.ndarray:
    """Normal-marginal latent correlations: the scenario's Pearson targets with score_model's rule.

    For normal marginals the Pearson correlation of the scores is the latent one, so no NORTA
    step is needed. Unnamed pairs follow :func:`alliance.simulate.score_model`: the scenario's
    retest correlation for the same scale at two timepoints, zero otherwise. As there, a set of
    correlations no population can have is an error, not silently replaced.
    """
    latent = target_correlations(model.variables, scenario)
    require_positive_definite(latent, model.variables)
    return latent


def _timepoint_positions(protocol) -> dict[str, int]:
    """Timepoint id (and derived id) → index in protocol order after which it is complete."""
    position = {timepoint: index for index, timepoint in enumerate(protocol.timepoint_ids)}
    for derived in protocol.derived:
        sources = [position[t] for t in derived.from_timepoints if t in position]
        if sources:
            position[derived.id] = max(sources)
    return position


def _resolve_tests(raw_tests: Sequence[Any], model: ScoreModel, protocol) -> list[PowerTest]:
    available = set(model.measures)
    resolved = []
    for index, raw in enumerate(raw_tests):
        where = f"power.tests[{index}]"
        entry = _parse_test(raw, where)
        kind = entry["test"]
        if kind == "mixed_model":
            scale = entry["y"]
            if not Measure.is_name(scale, timepoint="forbidden"):
                raise PowerSpecificationError(f"{where}.y = {scale!r}: give the scale without a timepoint (e.g. wai_sr.total)")
            timepoints = entry.get("timepoints")
            if timepoints is None:
                of_scale = Measure.parse(scale, timepoint="forbidden")
                timepoints = [t.id for t in protocol.timepoints if str(of_scale.at(t.id)) in available]
            test = PowerTest("mixed_model", "time", scale, None, tuple(timepoints))
            if len(test.timepoints) < 2:
                raise PowerSpecificationError(f"{where}: {scale} is given at {len(test.timepoints)} timepoint(s) of "
                                              "the protocol; a time effect needs at least 2")
        else:
            test = PowerTest(kind, entry["x"], entry["y"], entry.get("m"))
        missing = [m for m in test.measures if m not in available]
        if missing:
            raise PowerSpecificationError(
                f"{where}: {', '.join(missing)} is not a measure of the protocol's score model; available: "
                f"{', '.join(model.measures)}")
        if len(set(test.measures)) != len(test.measures):
            raise PowerSpecificationError(f"{where}: the measures of a test must differ; got {list(test.measures)}")
        resolved.append(test)
    if not resolved:
        raise PowerSpecificationError("power.tests is empty; give at least one test")
    return resolved


def _population(model: ScoreModel, latent: np.ndarray,
                distribution: str) -> tuple[np.ndarray, np.ndarray, Callable[[int, int], float]]:
    """Means of the scores, and their Pearson correlation by pair of model indices."""
    means = np.array([v.marginal.mean for v in model.variables])
    sds = np.array([v.marginal.sd for v in model.variables])

    def correlation(i: int, j: int) -> float:
        if i == j:
            return 1.0
        if distribution == "normal":
            return float(latent[i, j])
        return pearson_from_latent(float(latent[i, j]), model.variables[i].marginal, model.variables[j].marginal)

    return means, sds, correlation


def _effect(test: PowerTest, index: dict[str, int], means, sds, correlation) -> tuple[float, str]:
    """The population value of each test's effect under the scenario."""
    ids = [index[m] for m in test.measures]
    if test.test == "correlation":
        return correlation(*ids), "r"
    if test.test == "paired":
        i, j = ids
        sd_change = math.sqrt(sds[i] ** 2 + sds[j] ** 2 - 2 * correlation(i, j) * sds[i] * sds[j])
        return float((means[j] - means[i]) / sd_change), "cohen_dz"
    if test.test == "mixed_model":
        t = np.arange(len(ids), dtype=float)
        t -= t.mean()
        return float(t @ means[ids] / (t @ t)), "slope_per_timepoint"
    i, k, j = ids  # x, m, y
    cov = np.array([[sds[p] * sds[q] * correlation(p, q) for q in (i, k, j)] for p in (i, k, j)])
    a = cov[0, 1] / cov[0, 0]
    c_prime, b = np.linalg.solve(cov[:2, :2], cov[:2, 2])
    return float(a * b), "indirect_ab"


def _score_model(protocol, scenario: Scenario) -> ScoreModel:
    return cached_score_model(protocol, scenario)


def build_design(protocol, scenario: Scenario, tests: Sequence[Any], *, distribution: str = "beta",
                 alpha: float = 0.05, mediation_ci: str = "monte_carlo", n_boot: int = 1000,
                 exact_quantiles: bool = False, model: ScoreModel | None = None) -> SimulationDesign:
    """Prepare a simulation design: the calibrated score model, the tests and their effects.

    Parameters
    ----------
    protocol : alliance.protocol.Protocol
    scenario : Scenario
    tests : sequence of PowerTest or mapping
    distribution : {"beta", "normal"}
        ``"beta"``: the calibrated bounded marginals of :func:`score_model`. ``"normal"``: normal
        marginals with the same means and SDs and the scenario's correlations (for checks
        against analytic power, which assumes normality).
    alpha : float
        Two-sided level of every test.
    mediation_ci : {"monte_carlo", "bootstrap"}
    n_boot : int
        Bootstrap resamples per trial when ``mediation_ci="bootstrap"``.
    exact_quantiles : bool
        Transform with ``BetaMarginal.from_normal`` instead of the tabulated quantile function
        (slower; equal to ``ScoreModel.draw`` on the same stream, up to rounding).
    model : ScoreModel, optional
        A score model already built for this protocol and scenario.

    Returns
    -------
    SimulationDesign
    """
    if distribution not in DISTRIBUTIONS:
        raise PowerSpecificationError(f"distribution = {distribution!r}; allowed: {', '.join(DISTRIBUTIONS)}")
    if mediation_ci not in MEDIATION_CI:
        raise PowerSpecificationError(f"mediation_ci = {mediation_ci!r}; allowed: {', '.join(MEDIATION_CI)}")
    if not 0 < alpha < 1:
        raise PowerSpecificationError(f"alpha = {alpha!r} must lie strictly between 0 and 1")
    if int(n_boot) != n_boot or n_boot < 100:
        raise PowerSpecificationError(f"n_boot = {n_boot!r} must be an integer of at least 100")
    model = model if model is not None else _score_model(protocol, scenario)
    specs = _resolve_tests(tests, model, protocol)
    latent = model.latent if distribution == "beta" else _target_latent(model, scenario)
    index = {m: i for i, m in enumerate(model.measures)}
    used = sorted({index[m] for spec in specs for m in spec.measures})
    column_of = {model_index: k for k, model_index in enumerate(used)}
    means, sds, correlation = _population(model, latent, distribution)
    resolved = []
    for spec in specs:
        effect, measure = _effect(spec, index, means, sds, correlation)
        resolved.append(_ResolvedTest(spec, tuple(column_of[index[m]] for m in spec.measures), effect, measure))
    if distribution == "normal":
        transforms = tuple((float(means[i]), float(sds[i])) for i in used)
    elif exact_quantiles:
        transforms = tuple(model.variables[i].marginal for i in used)
    else:
        transforms = tuple(_QuantileTable.build(model.variables[i].marginal) for i in used)
    position = _timepoint_positions(protocol)
    return SimulationDesign(
        measures=model.measures,
        factor=np.linalg.cholesky(latent),
        columns=tuple(used),
        transforms=transforms,
        positions=np.array([position[model.variables[i].timepoint] for i in used]),
        n_timepoints=len(protocol.timepoints),
        tests=tuple(resolved),
        alpha=float(alpha),
        mediation_ci=mediation_ci,
        n_boot=int(n_boot),
    )
