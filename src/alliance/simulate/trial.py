"""A calibrated synthetic trial: participants, item-level answers, arms, dosing, dropout.

No raw data of the Levin et al. (2024) trial are public. This generator makes trials that look
like it in the population — the published correlations between alliance, the acute experience and
depression, the GRID-HAMD course, the increase of alliance — so the whole system can be run,
tested and demonstrated, and so that power analyses can plan the next trial.

How a trial is drawn:

1. Every measure the protocol collects is a variable: the primary scale of each instrument at each
   timepoint (``wai_sr.total@prep``), except that instruments given at dosing sessions are drawn
   once as their per-participant peak (``meq30.total@peak``), since that is what the study
   analyses and what the scenario calibrates.
2. The variables are drawn jointly from beta marginals joined by a normal copula whose
   correlations are solved so the scores have the scenario's Pearson correlations
   (:mod:`alliance.simulate.copula`).
3. The non-peak dosing session lies below the peak by a half-normal gap.
4. Item answers that add up to each score are drawn (:mod:`alliance.simulate.items`).
5. Dropout, skipped assessments and blank items are applied; dates follow the protocol.

A facilitator-rated instrument (``wai_sr_t``) is drawn as its participant-level score and then
given once per facilitator of the participant, shifted by that facilitator's leniency and a dyad
term (the scenario's ``items.facilitator_rater_sd`` and ``facilitator_dyad_sd``); its ``rater``
is the facilitator id.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from alliance import instruments
from alliance.protocol import Measure

from .copula import BetaMarginal, CalibrationError, latent_correlation, nearest_correlation
from .items import item_sd_for_alpha, items_for_scores, primary_scale
from .safety import safety_instruments, simulate_safety
from .scenario import Scenario, levin2024_scenario

_FIRST_ENROLMENT = date(2017, 8, 1)


@dataclass(frozen=True)
class Variable:
    """One calibrated score: a measure, its instrument, scale, timepoint and marginal."""

    measure: str          # INSTRUMENT.SCALE@TIMEPOINT (timepoint may be a derived one, e.g. peak)
    instrument: str
    scale: str
    timepoint: str
    marginal: BetaMarginal


@dataclass(frozen=True)
class ScoreModel:
    """The joint distribution of a protocol's primary-scale scores under a scenario.

    Attributes
    ----------
    variables : tuple of Variable
        One per measure, in protocol order.
    latent : ndarray
        The normal-copula correlation matrix.
    """

    variables: tuple[Variable, ...]
    latent: np.ndarray

    @property
    def measures(self) -> tuple[str, ...]:
        return tuple(v.measure for v in self.variables)

    def draw(self, rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
        """Draw scores.

        Parameters
        ----------
        rng : numpy.random.Generator
        size : tuple of int
            Leading shape, e.g. ``(n_trials, n_participants)``.

        Returns
        -------
        ndarray
            Shape ``size + (len(variables),)``, each column on its measure's scale.
        """
        z = rng.standard_normal((*size, len(self.variables))) @ np.linalg.cholesky(self.latent).T
        out = np.empty_like(z)
        for i, variable in enumerate(self.variables):
            out[..., i] = variable.marginal.from_normal(z[..., i])
        return out


def _marginal(scenario: Scenario, measure: str, low: float, high: float) -> BetaMarginal:
    moments = scenario.marginals.get(measure, scenario.default_marginal)
    width = high - low
    if "mean" in moments:
        return BetaMarginal(low, high, moments["mean"], moments["sd"])
    return BetaMarginal(low, high, low + width * moments["mean_pct"] / 100.0, width * moments["sd_pct"] / 100.0)


def _peak_of(protocol) -> dict[str, str]:
    """Dosing timepoint id → the derived timepoint (max rule) that summarises it, if any."""
    peak = {}
    for derived in protocol.derived:
        if derived.rule == "max":
            for timepoint in derived.from_timepoints:
                peak[timepoint] = derived.id
    return peak


def score_model(protocol, scenario: Scenario) -> ScoreModel:
    """The calibrated joint distribution of every primary-scale score a protocol collects.

    Parameters
    ----------
    protocol : alliance.protocol.Protocol
    scenario : Scenario

    Returns
    -------
    ScoreModel
        Instruments given at dosing sessions appear once, at their derived peak timepoint.
        Pairs the scenario does not name: the same scale at two timepoints gets the scenario's
        default retest correlation; any other pair is uncorrelated.
    """
    peak_of = _peak_of(protocol)
    variables: dict[str, Variable] = {}
    simulated_apart = safety_instruments(scenario)  # drawn with the safety record (simulate.safety)
    for timepoint in protocol.timepoints:
        for instrument_id in timepoint.instruments:
            if instrument_id in simulated_apart:
                continue
            inst = instruments.get(instrument_id)
            scale = primary_scale(inst)
            where = peak_of.get(timepoint.id, timepoint.id) if timepoint.kind == "dosing" else timepoint.id
            measure = str(Measure(inst.id, scale.id, where))
            if measure not in variables:
                variables[measure] = Variable(measure, inst.id, scale.id, where,
                                              _marginal(scenario, measure, *scale.range))
    ordered = tuple(variables.values())
    targets = target_correlations(ordered, scenario)
    latent = np.eye(len(ordered))
    for i, j in itertools.combinations(range(len(ordered)), 2):
        latent[i, j] = latent[j, i] = latent_correlation(targets[i, j], ordered[i].marginal, ordered[j].marginal)
    require_positive_definite(latent, ordered)
    return ScoreModel(ordered, latent)


_MODEL_CACHE: dict[tuple[str, str], ScoreModel] = {}
_MODEL_CACHE_SIZE = 8


def cached_score_model(protocol, scenario: Scenario) -> ScoreModel:
    """:func:`score_model`, remembered per (protocol, scenario) in this process.

    Solving the copula correlations takes a couple of seconds; a session that simulates several
    trials or power analyses of one protocol and scenario (the tests, a notebook, the demo) solves
    them once. The key is the protocol's sha256 and the scenario's canonical JSON.
    """
    import json

    from alliance.stats.results import to_plain

    protocol_key = getattr(protocol, "sha256", None) or repr(protocol)
    key = (str(protocol_key), json.dumps(to_plain(scenario.to_dict()), sort_keys=True))
    if key not in _MODEL_CACHE:
        if len(_MODEL_CACHE) >= _MODEL_CACHE_SIZE:
            _MODEL_CACHE.pop(next(iter(_MODEL_CACHE)))
        _MODEL_CACHE[key] = score_model(protocol, scenario)
    return _MODEL_CACHE[key]


def target_correlations(variables: tuple[Variable, ...], scenario: Scenario) -> np.ndarray:
    """The Pearson correlations the scores should have: the scenario's, or the default rule.

    Parameters
    ----------
    variables : tuple of Variable
    scenario : Scenario

    Returns
    -------
    ndarray
        Pairs the scenario does not name: the same scale at two timepoints gets the scenario's
        default retest correlation; any other pair is uncorrelated.
    """
    targets = np.eye(len(variables))
    for i, j in itertools.combinations(range(len(variables)), 2):
        a, b = variables[i], variables[j]
        target = scenario.correlation(a.measure, b.measure)
        if target is None:
            same_scale = (a.instrument, a.scale) == (b.instrument, b.scale)
            target = scenario.default_retest_correlation if same_scale else 0.0
        targets[i, j] = targets[j, i] = target
    return targets


def require_positive_definite(matrix: np.ndarray, variables: tuple[Variable, ...]) -> None:
    """Refuse correlations no population can have, naming the pairs that would have to move.

    Raises
    ------
    CalibrationError
        When ``matrix`` is not positive definite.
    """
    nearest = nearest_correlation(matrix)
    if nearest is matrix:
        return
    # Say which pairs would have to move rather than quietly simulating different ones.
    change = np.abs(nearest - matrix)
    worst = np.dstack(np.unravel_index(np.argsort(-change, axis=None), change.shape))[0]
    pairs = [(variables[i].measure, variables[j].measure) for i, j in worst if i < j][:5]
    raise CalibrationError(
        "the scenario's correlations cannot hold together (the matrix is not positive definite); "
        "change these pairs consistently: " + "; ".join(f"{x} ~ {y}" for x, y in pairs))


def _allocate_arms(protocol, scenario: Scenario, n: int, rng: np.random.Generator) -> np.ndarray:
    arm_ids = [arm.id for arm in protocol.arms]
    ratio = scenario.arms.get("allocation") or {}
    weights = np.array([float(ratio.get(a, 0.0)) for a in arm_ids])
    if weights.sum() == 0:
        weights = np.ones(len(arm_ids))
    counts = np.floor(n * weights / weights.sum()).astype(int)
    remainders = n * weights / weights.sum() - counts
    for index in np.argsort(-remainders, kind="stable")[: n - counts.sum()]:
        counts[index] += 1
    arms = np.repeat(np.array(arm_ids, dtype=object), counts)
    return rng.permutation(arms)


def simulate_trial(protocol=None, n: int = 24, seed: int | None = None, scenario: Scenario | None = None):
    """Simulate a trial with item-level data for every instrument and timepoint of a protocol.

    Parameters
    ----------
    protocol : alliance.protocol.Protocol, optional
        The design; the built-in Levin 2024 protocol when omitted.
    n : int
        Number of participants enrolled.
    seed : int, optional
        Seed for :func:`numpy.random.default_rng`; the same seed gives the same trial.
    scenario : Scenario, optional
        Population parameters; :func:`levin2024_scenario` when omitted.

    Returns
    -------
    alliance.study.Study
        Participants (with arm, site, facilitators, sex, age), responses (one row per answered
        item, with ``administered_at`` dates from the protocol), and dosing sessions.

    Notes
    -----
    Correlations between the primary scales hold in the population; any one trial shows
    sampling error around them (at n = 24, about ±0.15 for r = .5).

    References
    ----------
    Levin AW et al. (2024). PLoS ONE 19(3):e0300501. Cario MC, Nelson BL (1997), NORTA.
    """
    from alliance.protocol import default_protocol
    from alliance.study import Study

    if n < 2:
        raise CalibrationError("a trial needs at least 2 participants")
    protocol = protocol if protocol is not None else default_protocol()
    scenario = scenario if scenario is not None else levin2024_scenario()
    rng = np.random.default_rng(seed)

    model = cached_score_model(protocol, scenario)
    drawn = model.draw(rng, (n,))
    scores = {measure: drawn[:, i] for i, measure in enumerate(model.measures)}
    variables = model.variables

    participant_ids = [f"P{i + 1:03d}" if n < 1000 else f"P{i + 1:05d}" for i in range(n)]
    arms = _allocate_arms(protocol, scenario, n, rng)
    participants = _participants(participant_ids, arms, rng)

    ordered = protocol.timepoints
    dosing = [t for t in ordered if t.kind == "dosing"]
    dates, enrolment = _dates(protocol, ordered, dosing, arms, rng)
    participants.insert(participants.columns.get_loc("facilitator_ids") + 1, "enrolled_on", enrolment)
    session_scores = _session_scores(protocol, scenario, variables, scores, dosing, rng)

    # Dropout: a participant leaves after a random timepoint (never before the first); later
    # timepoints are missing. Then single assessments are skipped at random.
    missing = scenario.missing
    drops = rng.random(n) < missing.get("dropout_probability", 0.0)
    last_index = np.where(drops, rng.integers(0, max(len(ordered) - 1, 1), size=n), len(ordered) - 1)

    leniency: dict[str, float] = {}
    if any(instruments.get(i).rater == "facilitator" for i in protocol.instruments):
        # Drawn only then, so a protocol without one keeps its random stream (and its seeds' trials).
        facilitator_ids = sorted({f for ids in participants["facilitator_ids"] for f in ids.split(";")})
        leniency = dict(zip(facilitator_ids, rng.normal(0.0, scenario.items.get("facilitator_rater_sd", 0.05),
                                                        len(facilitator_ids)), strict=True))
    frames = []
    simulated_apart = safety_instruments(scenario)
    for t_index, timepoint in enumerate(ordered):
        present = last_index >= t_index
        for instrument_id in timepoint.instruments:
            if instrument_id in simulated_apart:  # before any draw: the score stream stays as it was
                continue
            inst = instruments.get(instrument_id)
            scale = primary_scale(inst)
            measure = str(Measure(inst.id, scale.id, timepoint.id))
            target = session_scores.get(measure, scores.get(measure))
            skipped = rng.random(n) < missing.get("administration_probability", 0.0)
            given = present & ~skipped
            if not given.any():
                continue
            who = np.asarray(participant_ids, dtype=object)[given]
            when = dates[timepoint.id][given]
            raters = None
            target = target[given]
            if inst.rater == "facilitator":
                who, when, raters, target = _facilitator_ratings(participants, given, when, target, scale,
                                                                 leniency, scenario, rng)
            subscale_sd = scenario.items.get("subscale_sd", 0.07)
            item_sd = scenario.items.get("item_sd", 0.10)
            if inst.id in scenario.reliability:  # calibrated to the published alpha (scenario file)
                item_sd = item_sd_for_alpha(inst, target, scenario.reliability[inst.id], subscale_sd)
            answers = items_for_scores(inst, target, rng, subscale_sd, item_sd)
            blank_rate = missing.get(f"{inst.rater}_item_probability", 0.0)
            answers[rng.random(answers.shape) < blank_rate] = np.nan
            frames.append(_long(inst, timepoint.id, who, answers, when, raters))
    responses = pd.concat(frames, ignore_index=True)
    dosing_sessions = _dosing_sessions(participant_ids, dosing, dates, last_index, ordered)
    # The safety record comes last, from its own stream: a seeded trial's scores do not depend on it.
    safety_rng = np.random.default_rng([int(seed), 16] if seed is not None else rng.integers(2**32))
    present = {t.id: last_index >= i for i, t in enumerate(ordered)}
    safety = simulate_safety(protocol, scenario, participants, dates, present, dosing_sessions, safety_rng)
    if len(safety.responses):
        responses = pd.concat([responses, safety.responses.astype({"value": float})], ignore_index=True)
    return Study(protocol=protocol, participants=participants, responses=responses,
                 dosing_sessions=dosing_sessions, adverse_events=safety.adverse_events,
                 vital_signs=safety.vital_signs)


def _participants(participant_ids: list[str], arms: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(participant_ids)
    facilitators = [f"F{i}" for i in range(1, 7)]
    pairs = [rng.choice(facilitators, size=2, replace=False) for _ in range(n)]
    return pd.DataFrame({
        "participant_id": participant_ids,
        "arm": arms.astype(str),
        "site": "site-1",
        "facilitator_ids": [";".join(sorted(p)) for p in pairs],
        # Davis 2021: mean age 39.8 (SD 12.2), 67% women.
        "sex": np.where(rng.random(n) < 0.67, "female", "male"),
        "age": np.clip(np.round(rng.normal(39.8, 12.2, n)), 21, 75).astype(int),
    })


def _dates(protocol, ordered, dosing, arms: np.ndarray,
           rng: np.random.Generator) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per timepoint, each participant's assessment date, and each one's enrolment date (ISO strings).

    Enrolment is spread over two years. Each dosing session happens on a day drawn within its
    window around the planned date, and everything anchored to it follows the actual date
    (:func:`alliance.monitoring.schedule.planned_dates`).
    """
    from alliance.monitoring.schedule import planned_dates

    n = len(arms)
    enrolment = [_FIRST_ENROLMENT + timedelta(days=int(d)) for d in np.sort(rng.integers(0, 730, n))]
    columns: dict[str, list[str]] = {t.id: [] for t in ordered}
    for i in range(n):
        actual: dict[str, date] = {}
        for timepoint in dosing:
            planned = planned_dates(protocol, arms[i], enrolment[i], actual)[timepoint.id]
            before, after = timepoint.window_days
            actual[timepoint.id] = planned + timedelta(days=int(rng.integers(-before, after + 1)))
        for timepoint_id, day in planned_dates(protocol, arms[i], enrolment[i], actual).items():
            columns[timepoint_id].append(day.isoformat())
    return ({t: np.array(days, dtype=object) for t, days in columns.items()},
            [day.isoformat() for day in enrolment])


def _session_scores(protocol, scenario, variables, scores, dosing, rng) -> dict[str, np.ndarray]:
    """Scores at each dosing session, such that their maximum is the drawn peak."""
    peak_of = _peak_of(protocol)
    out: dict[str, np.ndarray] = {}
    by_measure = {v.measure: v for v in variables}
    p_last = scenario.dosing.get("peak_at_last_session_probability", 0.65)
    gap_sd = scenario.dosing.get("other_session_gap_sd", 0.6)
    groups: dict[str, list] = {}
    for t in dosing:
        if t.id in peak_of:
            groups.setdefault(peak_of[t.id], []).append(t)
    for derived, sessions in groups.items():
        if not sessions:
            continue
        n = next(iter(scores.values())).shape[0]
        # Which session holds the peak: the last one with probability p_last, the others evenly.
        if len(sessions) == 1:
            peak_session = np.zeros(n, dtype=int)
        else:
            others = (1 - p_last) / (len(sessions) - 1)
            probs = [others] * (len(sessions) - 1) + [p_last]
            peak_session = rng.choice(len(sessions), size=n, p=probs)
        # In protocol order, not set order: the draws below depend on it, and a set's order of
        # strings changes between processes (hash randomization), so one seed gave different trials.
        apart = safety_instruments(scenario)
        instrument_ids = dict.fromkeys(i for t in sessions for i in t.instruments if i not in apart)
        for instrument_id in instrument_ids:
            inst = instruments.get(instrument_id)
            scale = primary_scale(inst)
            peak_measure = str(Measure(inst.id, scale.id, derived))
            variable = by_measure[peak_measure]
            peak = scores[peak_measure]
            for k, t in enumerate(sessions):
                gap = np.abs(rng.normal(0.0, gap_sd * variable.marginal.sd, n))
                value = np.where(peak_session == k, peak, np.maximum(peak - gap, scale.range[0]))
                out[str(Measure(inst.id, scale.id, t.id))] = value
    return out


def _facilitator_ratings(participants: pd.DataFrame, given: np.ndarray, when: np.ndarray, target: np.ndarray,
                         scale, leniency: dict[str, float], scenario: Scenario, rng: np.random.Generator):
    """One score per participant × facilitator: the drawn score + leniency + a dyad term, in range."""
    low, high = scale.range
    dyad_sd = scenario.items.get("facilitator_dyad_sd", 0.07)
    who, dates, raters, scores = [], [], [], []
    for pid, ids, day, score in zip(participants["participant_id"].to_numpy()[given],
                                    participants["facilitator_ids"].to_numpy()[given], when, target, strict=True):
        for facilitator in ids.split(";"):
            shift = (leniency[facilitator] + rng.normal(0.0, dyad_sd)) * (high - low)
            who.append(pid)
            dates.append(day)
            raters.append(facilitator)
            scores.append(float(np.clip(score + shift, low, high)))
    return (np.asarray(who, dtype=object), np.asarray(dates, dtype=object), np.asarray(raters, dtype=object),
            np.asarray(scores))


def _long(inst, timepoint_id: str, participant_ids: np.ndarray, answers: np.ndarray,
          administered_at: np.ndarray, raters: np.ndarray | None = None) -> pd.DataFrame:
    n, k = answers.shape
    frame = pd.DataFrame({
        "participant_id": np.repeat(participant_ids, k),
        "timepoint": timepoint_id,
        "instrument": inst.id,
        "item": np.tile(np.array(inst.item_ids, dtype=object), n),
        "value": answers.reshape(-1),
        "rater": inst.rater if raters is None else np.repeat(raters, k),
        "administered_at": np.repeat(administered_at, k),
    })
    return frame[frame["value"].notna()].reset_index(drop=True)


def _dosing_sessions(participant_ids, dosing, dates, last_index, ordered) -> pd.DataFrame:
    rows = []
    position = {t.id: i for i, t in enumerate(ordered)}
    for number, timepoint in enumerate(dosing, start=1):
        dose = timepoint.dose
        for i, pid in enumerate(participant_ids):
            if last_index[i] >= position[timepoint.id]:
                rows.append({
                    "participant_id": pid,
                    "session": getattr(dose, "session", number) if dose is not None else number,
                    "date": dates[timepoint.id][i],
                    "compound": getattr(dose, "compound", None) if dose is not None else None,
                    "amount": getattr(dose, "amount", None) if dose is not None else None,
                    "unit": getattr(dose, "unit", None) if dose is not None else None,
                })
    return pd.DataFrame(rows, columns=["participant_id", "session", "date", "compound", "amount", "unit"])
