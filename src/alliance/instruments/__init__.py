"""The instrument bank and its scoring engine.

Instruments are declared as data, one YAML file per instrument in this folder (schema:
``docs/instruments.md``); this package reads them and scores item answers.

Examples
--------
>>> import pandas as pd
>>> from alliance import instruments
>>> answers = pd.DataFrame({f"gad7_{i}": [1] for i in range(1, 8)})
>>> instruments.score("gad7", answers)["total"].tolist()
[7.0]
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
import yaml

from .definition import (
    Band,
    Criterion,
    Flag,
    Group,
    Instrument,
    InstrumentDefinitionError,
    Item,
    Licence,
    MissingRule,
    OutcomeRule,
    Scale,
    parse_instrument,
)
from .engine import Problem, ScoringError, score_frame, score_matrix, validate

__all__ = [
    "Band", "Criterion", "Flag", "Group", "Instrument", "InstrumentDefinitionError", "Item", "Licence",
    "MissingRule", "OutcomeRule", "Problem", "Scale", "ScoringError", "UnknownInstrumentError",
    "get", "list_instruments", "parse_instrument", "remission", "response", "score", "score_matrix",
    "validate",
]


class UnknownInstrumentError(LookupError):
    """No instrument with this id is in the bank."""

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return str(self.args[0])


@cache
def _bank() -> dict[str, Instrument]:
    bank = {}
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            raw = yaml.safe_load(entry.read_text(encoding="utf-8"))
            instrument = parse_instrument(raw, origin=f"instruments/{entry.name}")
            if instrument.id != entry.name.removesuffix(".yaml"):
                raise InstrumentDefinitionError(
                    f"instruments/{entry.name}: id {instrument.id!r} must equal the file name"
                )
            bank[instrument.id] = instrument
    return bank


def list_instruments() -> list[Instrument]:
    """All instruments in the bank, sorted by id.

    Returns
    -------
    list of Instrument
    """
    return list(_bank().values())


def get(instrument_id: str) -> Instrument:
    """The definition of one instrument.

    Parameters
    ----------
    instrument_id : str
        For example ``"wai_sr"``.

    Returns
    -------
    Instrument

    Raises
    ------
    UnknownInstrumentError
        Naming the instruments that exist.
    """
    bank = _bank()
    if instrument_id not in bank:
        raise UnknownInstrumentError(
            f"unknown instrument {instrument_id!r}; instruments are {', '.join(bank)}"
        )
    return bank[instrument_id]


def _resolve(instrument: str | Instrument) -> Instrument:
    return instrument if isinstance(instrument, Instrument) else get(instrument)


def score(instrument: str | Instrument, data: pd.DataFrame, *, source: str | None = None,
          first_row: int = 1) -> pd.DataFrame:
    """Score item answers: one row per input row, one column per scale, band, criterion and flag.

    Parameters
    ----------
    instrument : str or Instrument
        An instrument id (``"wai_sr"``) or a definition.
    data : DataFrame
        One row per administration, item columns named ``<instrument>_<n>``. Other columns are
        ignored. Empty cells are missing answers.
    source : str, optional
        A file name to name in error messages.
    first_row : int
        Number given to the first row in error messages (2 makes them a CSV file's line numbers).

    Returns
    -------
    DataFrame
        Same index as ``data``. Columns: each scale's score (float, NaN where the missing-item rule
        is not met); ``<scale>_pct`` for percent-of-maximum scales; ``<scale>_band`` (ordered
        categorical) for scales with bands; each criterion and flag as pandas ``boolean``.

    Raises
    ------
    ScoringError
        Before scoring anything, listing every unknown or absent item column and every answer that
        is not a number, is out of range or is off the item's step — with row, column, value and
        the allowed values.

    Notes
    -----
    Reverse-keyed items are scored as ``min + max − answer``. A ``sum`` scale with up to
    ``max_missing`` missing items is prorated: ``sum(answered) × n_items / n_answered``. A ``mean``
    scale is the mean of the answered items. A ``max_of_groups`` scale is the sum over its groups of
    the highest answer in each group (QIDS-SR-16, Rush et al. 2003).

    References
    ----------
    Each scale's key is cited in its instrument's YAML file (``source`` keys).
    """
    return score_frame(_resolve(instrument), data, source=source, first_row=first_row)


def _outcome(instrument: Instrument, name: str):
    if name not in instrument.outcomes:
        raise UnknownInstrumentError(f"{instrument.id} defines no {name} rule; it defines {sorted(instrument.outcomes)}")
    return instrument.outcomes[name]


def response(baseline, current, instrument: str | Instrument = "grid_hamd17") -> pd.Series:
    """Treatment response: a reduction from baseline of at least the instrument's percent.

    Parameters
    ----------
    baseline, current : array-like
        Scale scores at baseline and at the follow-up, aligned.
    instrument : str or Instrument
        Whose ``outcomes.response`` rule to apply (GRID-HAMD-17: at least 50%).

    Returns
    -------
    Series of boolean
        Missing where either score is missing or the baseline is 0 (no reduction is defined).

    References
    ----------
    The rule's source is cited in the instrument's YAML file (Davis et al. 2021 for GRID-HAMD-17).
    """
    rule = _outcome(_resolve(instrument), "response")
    index = getattr(current, "index", None)
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(current, dtype=float)
    unknown = np.isnan(b) | np.isnan(c) | (b == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        reduction = np.round((b - c) / np.where(b == 0, 1.0, b) * 100.0, 10)
    met = reduction >= rule.reduction_from_baseline_percent
    return pd.Series(pd.arrays.BooleanArray(met & ~unknown, unknown), index=index, name="response")


def remission(score_value, instrument: str | Instrument = "grid_hamd17") -> pd.Series:
    """Remission: a score at or below the instrument's remission threshold.

    Parameters
    ----------
    score_value : array-like
        Scale scores.
    instrument : str or Instrument
        Whose ``outcomes.remission`` rule to apply (GRID-HAMD-17: total ≤ 7).

    Returns
    -------
    Series of boolean
        Missing where the score is missing.
    """
    rule = _outcome(_resolve(instrument), "remission")
    index = getattr(score_value, "index", None)
    s = np.asarray(score_value, dtype=float)
    unknown = np.isnan(s)
    with np.errstate(invalid="ignore"):
        met = s <= rule.at_most
    return pd.Series(pd.arrays.BooleanArray(met & ~unknown, unknown), index=index, name="remission")
