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
from .site import InstrumentBank, read_instruments_dir

__all__ = [
    "Band", "Criterion", "Flag", "Group", "Instrument", "InstrumentDefinitionError", "Item", "Licence",
    "InstrumentBank", "MissingRule", "OutcomeRule", "Problem", "Scale", "ScoringError", "UnknownInstrumentError",
    "add_instruments_dir", "get", "instrument_origin", "list_instruments", "site_folders", "parse_instrument", "remission", "response", "score", "score_matrix",
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


# Site folders joined to the bank in this process (add_instruments_dir): id -> (instrument, file).
# The bank is the process's one lookup, so every reader of a protocol, a study or an import sees a
# site's instruments once its folder is added; a folder is added, never swapped.
_SITE: dict[str, tuple[Instrument, str]] = {}
_FOLDERS: list[str] = []


def _current() -> dict[str, Instrument]:
    if not _SITE:
        return _bank()
    merged = {**_bank(), **{i: inst for i, (inst, _) in _SITE.items()}}
    return dict(sorted(merged.items()))


def add_instruments_dir(directory) -> tuple[str, ...]:
    """Add a site's folder of instrument files to the bank (``instruments_dir:``, ``ALLIANCE_INSTRUMENTS_DIR``).

    The folder is read and checked by :func:`alliance.instruments.site.read_instruments_dir` (the
    package schema, bounded YAML, ``id`` = file name, no silent replacement of a package
    instrument). Adding the same folder again is a no-op; a second folder may add other
    instruments, or the same ones with identical definitions, but never a different definition
    of an id already added.

    Parameters
    ----------
    directory : str or Path

    Returns
    -------
    tuple of str
        The ids the folder holds.

    Raises
    ------
    InstrumentDefinitionError
        Naming the file, the key, the value and what is allowed.

    References
    ----------
    Schema and rules: ``docs/instruments.md``, "Site instrument files".
    """
    from pathlib import Path

    folder = str(Path(directory).resolve())
    package = _bank()
    origins = {i: f"instruments/{i}.yaml" for i in package}
    site = read_instruments_dir(folder, package, origins)
    for instrument_id in site.site_ids:
        if instrument_id in _SITE and _SITE[instrument_id][0] != site.instruments[instrument_id]:
            raise InstrumentDefinitionError(
                f"{site.origins[instrument_id]}: id: {instrument_id!r} is already defined differently by "
                f"{_SITE[instrument_id][1]} (added earlier in this process); allowed: one definition per id — "
                "remove one of the files or give it another id")
    for instrument_id in site.site_ids:
        _SITE[instrument_id] = (site.instruments[instrument_id], site.origins[instrument_id])
    if folder not in _FOLDERS:
        _FOLDERS.append(folder)
    return site.site_ids


def site_folders() -> tuple[str, ...]:
    """The site folders added to the bank in this process, in the order they were added."""
    return tuple(_FOLDERS)


def instrument_origin(instrument_id: str) -> str:
    """The file an instrument's definition came from (``instruments/<id>.yaml`` for the package's)."""
    if instrument_id in _SITE:
        return _SITE[instrument_id][1]
    get(instrument_id)
    return f"instruments/{instrument_id}.yaml"


def _forget_site_instruments() -> None:
    # For tests: the bank as the package ships it.
    _SITE.clear()
    _FOLDERS.clear()


def list_instruments() -> list[Instrument]:
    """All instruments in the bank, sorted by id (with any site folder's, :func:`add_instruments_dir`).

    Returns
    -------
    list of Instrument
    """
    return list(_current().values())


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
    bank = _current()
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
