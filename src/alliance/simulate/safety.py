"""The safety record of a synthetic trial: adverse events, C-SSRS and CEQ answers, dosing-day vital signs.

Drawn from a random stream of their own (spawned from the trial's seed), after everything else,
so that adding safety data to a protocol or a scenario leaves the rest of a seeded trial — its
scores, and every analysis of them — unchanged. The rates are the scenario's ``safety:`` section
(``levin2024_scenario.yaml``), each with its source there; where no reachable source gave a rate,
the file says so and the value is our assumption.

Which instruments are simulated here rather than by the calibrated score model: those named under
``safety.instruments`` (in the default scenario the CEQ and the two C-SSRS forms). A C-SSRS item is
answered yes with its probability (independently, then made consistent with the form's skip rule:
a yes to a more severe ideation type implies yes to "active thoughts"); the CEQ's total is drawn
from a beta distribution with the scenario's mean and SD and spread over its items as the score
model does for every other instrument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alliance import instruments

from .copula import BetaMarginal
from .items import items_for_scores, primary_scale

__all__ = ["SafetyRecord", "safety_instruments", "simulate_safety"]

MINUTES = (0, 30, 60, 90, 120, 180, 240, 300, 360)
"""Vital-sign readings on a dosing day, minutes after the dose (a common schedule; our choice)."""


@dataclass(frozen=True)
class SafetyRecord:
    responses: pd.DataFrame
    adverse_events: pd.DataFrame | None
    vital_signs: pd.DataFrame | None


def safety_instruments(scenario) -> set[str]:
    """Instruments the scenario simulates with the safety record, not with the score model."""
    return set((scenario.safety or {}).get("instruments", {}) or {})


def simulate_safety(protocol, scenario, participants: pd.DataFrame, dates: dict[str, np.ndarray],
                    present: dict[str, np.ndarray], dosing_sessions: pd.DataFrame | None,
                    rng: np.random.Generator) -> SafetyRecord:
    """Draw the safety record.

    Parameters
    ----------
    protocol, scenario
    participants : DataFrame
        ``participant_id`` in order.
    dates : dict
        Timepoint id → each participant's planned date (ISO text), as the trial drew them.
    present : dict
        Timepoint id → whether each participant was still in the study (not dropped out).
    dosing_sessions : DataFrame or None
        The trial's dosing sessions (``participant_id, session, date``).
    rng : numpy.random.Generator
        The safety stream.

    Returns
    -------
    SafetyRecord
    """
    spec: dict[str, Any] = scenario.safety or {}
    ids = participants["participant_id"].astype(str).to_numpy()
    frames = []
    for timepoint in protocol.timepoints:
        for instrument_id in timepoint.instruments:
            config = (spec.get("instruments") or {}).get(instrument_id)
            if config is None:
                continue
            inst = instruments.get(instrument_id)
            given = present[timepoint.id].copy()
            if not given.any():
                continue
            if "yes_probability" in config:
                answers = _yes_no_answers(inst, config["yes_probability"], int(given.sum()), rng)
            else:
                scale = primary_scale(inst)
                low, high = scale.range
                marginal = BetaMarginal(low, high, low + (high - low) * config["mean_pct"] / 100.0,
                                        (high - low) * config["sd_pct"] / 100.0)
                totals = marginal.from_normal(rng.standard_normal(int(given.sum())))
                answers = items_for_scores(inst, totals, rng)
            frames.append(pd.DataFrame({
                "participant_id": np.repeat(ids[given], len(inst.item_ids)),
                "timepoint": timepoint.id, "instrument": inst.id,
                "item": np.tile(inst.item_ids, int(given.sum())),
                "value": answers.reshape(-1),
                "rater": pd.NA, "administered_at": np.repeat(dates[timepoint.id][given], len(inst.item_ids)),
            }))
    responses = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["participant_id", "timepoint", "instrument", "item", "value", "rater", "administered_at"])
    events = _adverse_events(spec.get("adverse_events"), dosing_sessions, rng)
    vitals = _vital_signs(spec.get("vital_signs"), dosing_sessions, rng)
    return SafetyRecord(responses, events, vitals)


def _yes_no_answers(inst, probabilities: dict[str, float], n: int, rng) -> np.ndarray:
    answers = np.zeros((n, len(inst.item_ids)))
    for j, item in enumerate(inst.item_ids):
        number = item.rsplit("_", 1)[1]
        p = float(probabilities.get(number, 0.0))
        answers[:, j] = (rng.random(n) < p).astype(float)
    # the form's logic: an active-ideation type (items 3-5) comes after "active thoughts" (item 2) = yes
    index = {item.rsplit("_", 1)[1]: j for j, item in enumerate(inst.item_ids)}
    if "2" in index:
        for later in ("3", "4", "5"):
            if later in index:
                answers[:, index["2"]] = np.maximum(answers[:, index["2"]], answers[:, index[later]])
    # ratings the form asks only with ideation (intensity items) stay 0 here: not simulated
    return answers


def _adverse_events(spec: dict[str, Any] | None, dosing: pd.DataFrame | None, rng) -> pd.DataFrame | None:
    if not spec or dosing is None or not len(dosing):
        return None
    rows = []
    counter = 0
    for pid, date in dosing[["participant_id", "date"]].itertuples(index=False):
        day = pd.Timestamp(str(date))
        for term, config in spec["terms"].items():
            if rng.random() >= float(config["per_session"]):
                continue
            counter += 1
            onset = day + pd.Timedelta(days=int(config.get("onset_days", 0)))
            length = int(rng.integers(0, int(config.get("max_days", 1)) + 1))
            grade = 1 if rng.random() < float(spec["grade_1_share"]) else 2
            rows.append({"participant_id": str(pid), "ae_id": f"AE-{counter:04d}", "term": term,
                         "onset": onset.date().isoformat(),
                         "resolved_on": (onset + pd.Timedelta(days=length)).date().isoformat(),
                         "severity": str(grade), "serious": "no", "seriousness": pd.NA,
                         "relatedness": str(config.get("relatedness", "probable")), "expected": "yes",
                         "action": "none", "outcome": "recovered", "code": pd.NA})
    participants = dosing["participant_id"].astype(str).drop_duplicates().to_numpy()
    for pid in participants:
        if rng.random() < float(spec.get("serious_per_participant", 0.0)):
            counter += 1
            first = pd.Timestamp(str(dosing.loc[dosing["participant_id"].astype(str) == pid, "date"].min()))
            onset = first + pd.Timedelta(days=int(rng.integers(1, 43)))
            rows.append({"participant_id": str(pid), "ae_id": f"AE-{counter:04d}", "term": "Hospitalisation for "
                         "worsening depression", "onset": onset.date().isoformat(),
                         "resolved_on": (onset + pd.Timedelta(days=int(rng.integers(2, 10)))).date().isoformat(),
                         "severity": "3", "serious": "yes", "seriousness": "hospitalisation",
                         "relatedness": "unlikely", "expected": "no", "action": "none", "outcome": "recovered",
                         "code": pd.NA})
    from alliance.study.adverse_events import normalize_adverse_events

    columns = ["participant_id", "ae_id", "term", "onset", "resolved_on", "severity", "serious", "seriousness",
               "relatedness", "expected", "action", "outcome", "code"]
    return normalize_adverse_events(pd.DataFrame(rows, columns=columns, dtype="string"))


def _vital_signs(spec: dict[str, Any] | None, dosing: pd.DataFrame | None, rng) -> pd.DataFrame | None:
    if not spec or dosing is None or not len(dosing):
        return None
    rows = []
    peak_minute = float(spec.get("peak_minute", 90))
    for pid, session, date in dosing[["participant_id", "session", "date"]].itertuples(index=False):
        base = {m: rng.normal(spec["baseline"][m]["mean"], spec["baseline"][m]["sd"])
                for m in ("systolic_bp", "diastolic_bp", "heart_rate")}
        rise = {m: max(0.0, rng.normal(spec["rise"][m]["mean"], spec["rise"][m]["sd"]))
                for m in ("systolic_bp", "diastolic_bp", "heart_rate")}
        start = pd.Timestamp(str(date)) + pd.Timedelta(hours=9)
        for minute in MINUTES:
            # rises to its peak near peak_minute and is back near baseline by the end of the day
            shape = (minute / peak_minute) * np.exp(1 - minute / peak_minute) if minute > 0 else 0.0
            reading = {m: base[m] + rise[m] * shape + rng.normal(0, spec.get("reading_sd", 4.0))
                       for m in base}
            if reading["diastolic_bp"] >= reading["systolic_bp"] - 10:
                reading["diastolic_bp"] = reading["systolic_bp"] - 10
            rows.append({"participant_id": str(pid), "session": int(session),
                         "measured_at": (start + pd.Timedelta(minutes=minute)).isoformat(timespec="minutes"),
                         "minutes_after_dose": minute,
                         **{m: float(np.round(v)) for m, v in reading.items()}})
    return pd.DataFrame(rows)
