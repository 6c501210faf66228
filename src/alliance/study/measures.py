"""Measures: a study's scale scores, one number per participant and ``INSTRUMENT.SCALE@TIMEPOINT``.

A measure is one number per participant: an instrument's scale score (or its ``_pct``
percent-of-maximum form) at a timepoint (names: :class:`alliance.protocol.Measure`), e.g. ``wai_sr.total@prep``, ``grid_hamd17.total@week4``,
``meq30.total_pct@peak``. Derived timepoints (``peak``) are computed here per participant and per
scale column from the timepoints they summarise. Scores come from
:func:`alliance.instruments.score`, the only scoring path.

A facilitator-rated instrument (``wai_sr_t``) has one score per facilitator; its measure is the
mean over the participant's facilitators with a score (the participant-level facilitator view of
the alliance, as dyadic studies aggregate it), and :func:`scores` keeps each facilitator's row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.instruments import Instrument
from alliance.protocol import Measure, Protocol

from .administrations import item_matrix

MEASURE_COLUMNS = ("participant_id", "measure", "value")


def score_columns(instrument: Instrument) -> tuple[str, ...]:
    """The numeric score columns of an instrument: each scale, and ``<scale>_pct`` where declared."""
    columns: list[str] = []
    for scale in instrument.scales:
        columns.append(scale.id)
        if scale.percent_of_max:
            columns.append(f"{scale.id}_pct")
    return tuple(columns)


def protocol_measures(protocol: Protocol) -> tuple[str, ...]:
    """Every measure a protocol defines, in protocol order, derived timepoints last.

    Parameters
    ----------
    protocol : Protocol

    Returns
    -------
    tuple of str
        For each timepoint, each instrument given there, each score column; then the same for
        each derived timepoint over the instruments of the timepoints it is derived from.
    """
    names = []
    for timepoint_id in protocol.timepoint_ids + protocol.derived_ids:
        for instrument_id in protocol.instruments_at(timepoint_id):
            names += [str(Measure(instrument_id, c, timepoint_id)) for c in score_columns(bank.get(instrument_id))]
    return tuple(names)


@dataclass(frozen=True)
class _Block:
    """The scores of one instrument: one row per administration."""

    instrument: Instrument
    keys: pd.DataFrame
    scores: pd.DataFrame


def _score_blocks(protocol: Protocol, responses: pd.DataFrame) -> list[_Block]:
    values = responses["value"].to_numpy(dtype=float, na_value=np.nan)
    instrument = responses["instrument"]
    blocks = []
    for instrument_id in protocol.instruments:
        positions = np.flatnonzero((instrument == instrument_id).to_numpy(bool))
        if not len(positions):
            continue
        inst = bank.get(instrument_id)
        matrix = item_matrix(responses, positions, inst, values)
        blocks.append(_Block(inst, matrix.keys, bank.score(inst, matrix.frame(inst))))
    return blocks


def _participant_level(block: _Block) -> _Block:
    """One row per participant × timepoint: facilitator-rated scores averaged over facilitators."""
    if "rater" not in block.keys.columns:
        return block
    columns = list(score_columns(block.instrument))
    table = block.scores[columns].astype(float)
    table.insert(0, "participant_id", block.keys["participant_id"].to_numpy())
    table.insert(1, "timepoint", block.keys["timepoint"].to_numpy())
    mean = table.groupby(["participant_id", "timepoint"], sort=False).mean()  # skips missing scores
    keys = mean.index.to_frame(index=False)
    return _Block(block.instrument, keys, mean.reset_index(drop=True))


def _sort(frame: pd.DataFrame, orders: Iterable[tuple[str, list]]) -> pd.DataFrame:
    """Sort by columns in a given order of their values (unknown values last), stably."""
    codes = []
    for column, order in orders:
        position = pd.Categorical(frame[column], categories=list(dict.fromkeys(order))).codes.astype(np.int64)
        codes.append(np.where(position < 0, len(order), position))
    if not codes or not len(frame):
        return frame.reset_index(drop=True)
    return frame.iloc[np.lexsort(codes[::-1])].reset_index(drop=True)


def scores(protocol: Protocol, responses: pd.DataFrame, participant_ids: Iterable[str]) -> pd.DataFrame:
    """Score every administration in validated responses.

    Parameters
    ----------
    protocol : Protocol
    responses : DataFrame
        Validated tidy responses (``value`` numeric).
    participant_ids : iterable of str
        The participants in table order (rows are sorted in this order).

    Returns
    -------
    DataFrame
        One row per participant × timepoint × instrument (× facilitator for a facilitator-rated
        instrument), columns ``participant_id``, ``timepoint``, ``instrument``, ``rater`` (the
        facilitator id of a facilitator-rated score, missing otherwise; present when the protocol
        has such an instrument) and then every output column of
        :func:`alliance.instruments.score` of the instruments present (scales, ``_pct``,
        ``_band``, criteria, flags), missing where a column is not one of that instrument's.
    """
    frames = [pd.concat([b.keys.assign(instrument=b.instrument.id), b.scores], axis=1)
              for b in _score_blocks(protocol, responses)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in ("participant_id", "timepoint", "instrument")})
    table = pd.concat(frames, ignore_index=True)
    if "rater" in table.columns:
        rater = table.pop("rater").astype("string")
        table.insert(3, "rater", rater)
    orders = [("participant_id", list(participant_ids)), ("timepoint", list(protocol.timepoint_ids)),
              ("instrument", list(protocol.instruments))]
    if "rater" in table.columns:
        orders.append(("rater", sorted(table["rater"].dropna().astype(str).unique())))
    return _sort(table, orders)


def measures(protocol: Protocol, responses: pd.DataFrame, participant_ids: Iterable[str],
             wide: bool = False) -> pd.DataFrame:
    """Scale scores as measures ``INSTRUMENT.SCALE@TIMEPOINT``, with the derived timepoints.

    Parameters
    ----------
    protocol : Protocol
    responses : DataFrame
        Validated tidy responses.
    participant_ids : iterable of str
        The participants in table order.
    wide : bool
        False: long table ``participant_id, measure, value``, one row per non-missing score.
        True: one row per participant (index ``participant_id``, every participant of the table),
        one column per measure of :func:`protocol_measures`, NaN where missing.

    Returns
    -------
    DataFrame

    Notes
    -----
    A derived timepoint's score is the rule (max, min or mean) over the participant's non-missing
    scores at its source timepoints, per scale column: a participant with only one dosing session
    scored has that session's score as ``peak``; with none, ``peak`` is missing. A score is missing
    when the scale's missing-item rule is not met (``docs/instruments.md``).
    """
    participant_ids = list(participant_ids)
    pieces = []
    derived_pieces = []
    for block in map(_participant_level, _score_blocks(protocol, responses)):
        columns = score_columns(block.instrument)
        participant = block.keys["participant_id"].astype("string")
        timepoint = block.keys["timepoint"].astype("string")
        for column in columns:
            prefix = Measure(block.instrument.id, column).prefix()
            pieces.append(pd.DataFrame({"participant_id": participant, "measure": prefix + timepoint,
                                        "value": block.scores[column].to_numpy(dtype=float)}))
        for derived in protocol.derived:
            rows = timepoint.isin(derived.from_timepoints).to_numpy(bool)
            if not rows.any():
                continue
            table = block.scores.loc[rows, list(columns)].astype(float)
            table.insert(0, "participant_id", participant[rows].to_numpy())
            summary = table.groupby("participant_id", sort=False).agg(derived.rule)
            for column in columns:
                derived_pieces.append(pd.DataFrame({
                    "participant_id": summary.index.astype("string"),
                    "measure": str(Measure(block.instrument.id, column, derived.id)),
                    "value": summary[column].to_numpy(dtype=float),
                }))
    long = (pd.concat(pieces + derived_pieces, ignore_index=True) if pieces
            else pd.DataFrame({"participant_id": pd.Series(dtype="string"), "measure": pd.Series(dtype="string"),
                               "value": pd.Series(dtype=float)}))
    names = protocol_measures(protocol)
    if wide:
        table = long.pivot(index="participant_id", columns="measure", values="value")
        table = table.reindex(index=pd.Index(participant_ids, dtype="string", name="participant_id"),
                              columns=list(names))
        table.columns.name = None
        return table.astype(float)
    long = long[long["value"].notna()]
    long["measure"] = long["measure"].astype("string")
    return _sort(long, [("participant_id", participant_ids), ("measure", list(names))])
