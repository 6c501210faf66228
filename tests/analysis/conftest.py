"""Small, fixed studies built by hand for the analysis and report tests.

``make_study`` draws item answers for every instrument and timepoint of a protocol from a seeded
generator: one latent "alliance/benefit" trait per participant raises alliance and acute scores and
lowers depression after treatment, so correlations have a direction but the numbers are arbitrary.
The tests never compare with hard-coded statistics: every expected number is the direct
``alliance.stats`` call on the same columns.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from alliance import instruments
from alliance.protocol import Protocol, default_protocol, parse_protocol
from alliance.study import Study

RESPONSE_COLUMNS = ["participant_id", "timepoint", "instrument", "item", "value", "rater", "administered_at"]
FIXED_TIME = "2026-01-01T00:00:00+00:00"


def _level(instrument_id: str, timepoint, trait: float, rng: np.random.Generator) -> float:
    """Where on its range (0..1) a participant answers this instrument at this timepoint."""
    if instrument_id == "grid_hamd17":
        base = 0.6 if timepoint.kind == "baseline" else 0.32 - 0.12 * trait
    else:
        base = 0.62 + 0.12 * trait + (0.05 if timepoint.kind in ("follow_up", "integration") else 0.0)
    return base + rng.normal(0.0, 0.05)


def make_study(protocol: Protocol | None = None, n: int = 12, seed: int = 7,
               last_timepoint: dict[str, str] | None = None,
               missing: set[tuple[str, str]] | None = None) -> Study:
    """A study of ``n`` participants with every item answered except where told otherwise.

    Parameters
    ----------
    protocol : Protocol, optional
        Default: the built-in Levin 2024 protocol.
    last_timepoint : dict, optional
        participant id → the last timepoint they attended (dropout after it).
    missing : set of (participant id, timepoint id), optional
        Single missed assessments.
    """
    protocol = protocol or default_protocol()
    rng = np.random.default_rng(seed)
    arms = [arm.id for arm in protocol.arms]
    ids = [f"P{i:02d}" for i in range(1, n + 1)]
    participants = pd.DataFrame({"participant_id": ids, "arm": [arms[i % len(arms)] for i in range(n)]})
    traits = rng.normal(size=n)
    ordered = sorted(protocol.timepoints, key=lambda tp: tp.order)
    position = {tp.id: index for index, tp in enumerate(ordered)}
    rows = []
    for participant, trait in zip(ids, traits, strict=True):
        stop = position[(last_timepoint or {}).get(participant, ordered[-1].id)]
        for timepoint in ordered:
            if position[timepoint.id] > stop or (participant, timepoint.id) in (missing or set()):
                continue
            for instrument_id in timepoint.instruments:
                definition = instruments.get(instrument_id)
                level = _level(instrument_id, timepoint, trait, rng)
                for item in definition.items:
                    share = float(np.clip(level + rng.normal(0.0, 0.15), 0.0, 1.0))
                    value = item.min + share * (item.max - item.min)
                    if item.step:
                        value = item.min + round((value - item.min) / item.step) * item.step
                    rows.append((participant, timepoint.id, instrument_id, item.id, float(value), pd.NA, pd.NA))
    responses = pd.DataFrame(rows, columns=RESPONSE_COLUMNS)
    responses = responses.astype({"participant_id": str, "timepoint": str, "instrument": str, "item": str,
                                  "value": float})
    return Study(protocol=protocol, participants=participants, responses=responses)


def protocol_variant(without_instrument: str | None = None, single_arm: bool = False,
                     analysis: dict | None = None) -> Protocol:
    """The Levin protocol without an instrument, with one arm, or with an analysis section."""
    raw = copy.deepcopy(default_protocol().to_dict())
    if without_instrument:
        for timepoint in raw["timepoints"]:
            timepoint["instruments"] = [i for i in timepoint["instruments"] if i != without_instrument]
    if single_arm:
        raw["arms"] = raw["arms"][:1]
    if analysis is not None:
        raw["analysis"] = analysis
    return parse_protocol(raw, origin="test protocol")


@pytest.fixture(scope="session")
def levin_study() -> Study:
    """12 participants, P02 drops out after session 1, P03 misses week 4, P04 misses the prep WAI-SR."""
    return make_study(last_timepoint={"P02": "session1"}, missing={("P03", "week4"), ("P04", "prep")})


@pytest.fixture(scope="session")
def levin_results(levin_study):
    from alliance.analysis import run_analysis

    return run_analysis(levin_study, created_utc=FIXED_TIME)
