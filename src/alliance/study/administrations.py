"""From tidy responses (one row per answered item) to item matrices (one row per administration).

An administration is one participant answering one instrument at one timepoint. The scoring
engine validates and scores an (administrations × items) matrix in a few numpy operations, so the
study layer turns the long responses into one such matrix per instrument, remembering for each
cell which response row it came from (to name that row in an error message).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alliance.instruments import Instrument


@dataclass(frozen=True)
class ItemMatrix:
    """The answers to one instrument, one row per administration.

    Attributes
    ----------
    keys : DataFrame
        ``participant_id`` and ``timepoint`` of each administration (default index).
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
        no (participant, timepoint, item) may appear twice among them.
    instrument : Instrument
        The instrument definition (gives the item order).
    values : ndarray
        The answers of every row of ``responses`` (float, or object for text still to validate).

    Returns
    -------
    ItemMatrix
        Administrations in order of (participant, timepoint) first appearance.
    """
    positions = np.asarray(positions, dtype=np.int64)
    participant_codes, participants = pd.factorize(responses["participant_id"].iloc[positions])
    timepoint_codes, timepoints = pd.factorize(responses["timepoint"].iloc[positions])
    combined = participant_codes.astype(np.int64) * max(len(timepoints), 1) + timepoint_codes
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
    return ItemMatrix(keys, matrix, source)
