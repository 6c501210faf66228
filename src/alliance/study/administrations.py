"""From tidy responses (one row per answered item) to item matrices (one row per administration).

An administration is one participant answering one instrument at one timepoint — or, for an
instrument whose ``rater`` is ``facilitator`` (``wai_sr_t``), one facilitator rating one
participant at one timepoint, so the facilitator id in ``rater`` is part of its key. The scoring
engine validates and scores an (administrations × items) matrix in a few numpy operations, so the
study layer turns the long responses into one such matrix per instrument, remembering for each
cell which response row it came from (to name that row in an error message).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.instruments import Instrument

from .errors import DataProblem, StudyDataError


@dataclass(frozen=True)
class ItemMatrix:
    """The answers to one instrument, one row per administration.

    Attributes
    ----------
    keys : DataFrame
        ``participant_id`` and ``timepoint`` of each administration (default index), and
        ``rater`` (the facilitator id) for a facilitator-rated instrument.
    values : ndarray
        (n_administrations, n_items) in the instrument's item order; NaN (or ``None`` for a text
        matrix) where the item was not answered.
    source : ndarray of int
        Same shape: the position, in the responses table, of the row each answer came from
        (-1 where the item was not answered).
    """

    keys: pd.DataFrame
    values: np.ndarray
    source: np.ndarray

    def frame(self, instrument: Instrument) -> pd.DataFrame:
        """The matrix as a DataFrame with the instrument's item columns (what the engine takes)."""
        return pd.DataFrame(self.values, columns=list(instrument.item_ids))


def item_matrix(responses: pd.DataFrame, positions: np.ndarray, instrument: Instrument,
                values: np.ndarray) -> ItemMatrix:
    """Gather the answers to one instrument into an (administrations × items) matrix.

    Parameters
    ----------
    responses : DataFrame
        Tidy responses with ``participant_id``, ``timepoint`` and ``item`` columns.
    positions : ndarray of int
        Positions of the rows that belong to ``instrument``; their items must be items of it and
        no (participant, timepoint, item) — for a facilitator-rated instrument (participant,
        timepoint, rater, item) — may appear twice among them.
    instrument : Instrument
        The instrument definition (gives the item order).
    values : ndarray
        The answers of every row of ``responses`` (float, or object for text still to validate).

    Returns
    -------
    ItemMatrix
        Administrations in order of (participant, timepoint[, rater]) first appearance.
    """
    positions = np.asarray(positions, dtype=np.int64)
    participant_codes, participants = pd.factorize(responses["participant_id"].iloc[positions])
    timepoint_codes, timepoints = pd.factorize(responses["timepoint"].iloc[positions])
    combined = participant_codes.astype(np.int64) * max(len(timepoints), 1) + timepoint_codes
    by_rater = is_facilitator_rated(instrument)
    if by_rater:
        rater_codes, raters = pd.factorize(rater_column(responses).iloc[positions], use_na_sentinel=False)
        combined = combined * max(len(raters), 1) + rater_codes
    unique, first, administration = np.unique(combined, return_index=True, return_inverse=True)
    item_codes = pd.Categorical(responses["item"].iloc[positions], categories=list(instrument.item_ids)).codes
    shape = (len(unique), len(instrument.items))
    if values.dtype == object:
        matrix = np.full(shape, None, dtype=object)
    else:
        matrix = np.full(shape, np.nan)
    matrix[administration, item_codes] = values[positions]
    source = np.full(shape, -1, dtype=np.int64)
    source[administration, item_codes] = positions
    keys = pd.DataFrame({
        "participant_id": participants[participant_codes[first]],
        "timepoint": timepoints[timepoint_codes[first]],
    })
    if by_rater:
        keys["rater"] = pd.array(raters[rater_codes[first]], dtype="string")
    return ItemMatrix(keys, matrix, source)


def facilitator_rated_in(responses: pd.DataFrame) -> list[Instrument]:
    """The facilitator-rated instruments that have answers in ``responses`` (for formats that cannot hold them)."""
    present = pd.unique(responses["instrument"].dropna().astype(str)) if len(responses) else []
    return [bank.get(i) for i in present if is_facilitator_rated(bank.get(i))]


def refuse_facilitator_rated(responses: pd.DataFrame, format_name: str, holds: str) -> None:
    """Raise :class:`StudyDataError` when ``responses`` hold a facilitator-rated instrument.

    Such an instrument has one administration per facilitator, which a format with one row (or
    one REDCap event record) per participant and timepoint cannot hold without losing ratings.
    """
    found = facilitator_rated_in(responses)
    if found:
        problems = [DataProblem("responses", None, "instrument", inst.id,
                                "instruments with one administration per participant and timepoint",
                                f"is rated by each of a participant's facilitators ({inst.short_name}); "
                                f"{format_name} holds {holds}, so it would keep one facilitator's rating")
                    for inst in found]
        raise StudyDataError(problems, f"the study cannot be written as {format_name}; use the tidy CSV "
                                       "or Parquet export, which keep every facilitator's rating")


def is_facilitator_rated(instrument: Instrument) -> bool:
    """Whether each of a participant's facilitators gives the instrument (``rater: facilitator``)."""
    return instrument.rater == "facilitator"


def rater_column(responses: pd.DataFrame) -> pd.Series:
    """The ``rater`` column as trimmed text, missing where absent or empty."""
    if "rater" not in responses.columns:
        return pd.Series(pd.NA, index=responses.index, dtype="string")
    text = responses["rater"].astype("string").str.strip()
    return text.mask(text == "")
