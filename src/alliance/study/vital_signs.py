"""Vital signs of the dosing days: the ``vital_signs.csv`` table of the tidy contract, and its checks.

One row per reading (``docs/data.md``, "vital_signs.csv"); columns (required **bold**):

======================  =====================================================================
column                  allowed
======================  =====================================================================
``participant_id``      a participant of ``participants.csv``
``session``             a dosing session number of the protocol (``1``, ``2``)
``measured_at``         ISO-8601 date-time of the reading (``2024-03-01T10:30``; with seconds and
                        a UTC offset if wished); a date alone is not a time of day
``minutes_after_dose``  optional: whole minutes from the dose, ≥ -240 (negative: before it)
``systolic_bp``         mmHg, 50-300
``diastolic_bp``        mmHg, 20-200, below ``systolic_bp``
``heart_rate``          beats per minute, 20-250
======================  =====================================================================

A row holds at least one of the three measures (a table needs at least one of their columns).
The ranges are plausibility bounds, not clinical ones: a value outside them is a typo (``1200``
for ``120``, a swapped column) or a failed reading, refused with file, row, column, value and the
range; a diastolic pressure at or above the systolic one of the same reading is refused too. A
reading repeated (same participant, session and ``measured_at``) is refused as a second copy.
Which readings raise a finding during the session is the protocol's ``safety:`` section
(:mod:`alliance.protocol.safety`), evaluated by :mod:`alliance.monitoring.safety_checks`.

The minute bound: readings up to four hours before the dose (a pre-dose baseline on the morning
of the session) are the table's; earlier ones belong to a screening visit, not a dosing day.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from alliance.protocol import Protocol
from alliance.protocol.safety import VITAL_SIGN_MEASURES, VITAL_SIGN_UNITS

from .errors import DataProblem
from .validation import (
    Locator,
    _duplicates,
    _empty,
    _listed_participants,
    _table_columns,
    _text,
)

__all__ = ["MIN_MINUTES_AFTER_DOSE", "PLAUSIBLE_RANGES", "REQUIRED_VITAL_SIGN_COLUMNS", "VITAL_SIGN_COLUMNS",
           "check_vital_signs", "normalize_vital_signs"]

VITAL_SIGN_COLUMNS = ("participant_id", "session", "measured_at", "minutes_after_dose", *VITAL_SIGN_MEASURES)
REQUIRED_VITAL_SIGN_COLUMNS = ("participant_id", "session", "measured_at")
MIN_MINUTES_AFTER_DOSE = -240
PLAUSIBLE_RANGES = {"systolic_bp": (50.0, 300.0), "diastolic_bp": (20.0, 200.0), "heart_rate": (20.0, 250.0)}
"""Inclusive bounds of a reading that can be real; beyond them a value is a typo or a failed reading."""
_DATE_TIME = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?"
DATE_TIME_ALLOWED = "an ISO-8601 date-time, e.g. 2024-03-01T10:30 or 2024-03-01T10:30:00+01:00"


def normalize_vital_signs(vital_signs: pd.DataFrame) -> pd.DataFrame:
    """The table with contract dtypes: ``session`` and ``minutes_after_dose`` Int64, measures float, text as ``string``.

    A column that does not convert (a pressure ``"120/80"``) is kept as text, for
    :func:`check_vital_signs` to name.
    """
    out = vital_signs.copy()
    for column in out.columns:
        text = _text(out[column])
        if column in ("session", "minutes_after_dose", *VITAL_SIGN_MEASURES):
            text = _cells(text)
            numbers = pd.to_numeric(text, errors="coerce")
            converts = numbers.notna().sum() == text.notna().sum() and np.isfinite(numbers.dropna()).all()
            if column in VITAL_SIGN_MEASURES:
                out[column] = numbers.astype(float) if converts else text
            else:
                out[column] = numbers.astype("Int64") if converts and (numbers.dropna() % 1 == 0).all() else text
        else:
            out[column] = text
    ordered = [c for c in VITAL_SIGN_COLUMNS if c in out.columns]
    return out[ordered + [c for c in out.columns if c not in VITAL_SIGN_COLUMNS]].reset_index(drop=True)


def check_vital_signs(protocol: Protocol, vital_signs: pd.DataFrame, participant_ids: Iterable[str] | None,
                      locator: Locator | None = None,
                      participants_file: str = "participants.csv") -> list[DataProblem]:
    """Check ``vital_signs.csv`` (columns and rules: the module docstring).

    Parameters
    ----------
    protocol : Protocol
        Its dosing sessions are the allowed ``session`` numbers.
    vital_signs : DataFrame
    participant_ids : iterable of str, optional
        The participants of the participants table (``None``: only the id's form is checked).
    locator : Locator, optional
        Where the rows came from (default ``vital_signs.csv``, rows as CSV lines).
    participants_file : str
        Named in the message about an unlisted participant.

    Returns
    -------
    list of DataProblem
        Every problem found, each with file, row, column, value, what is allowed and why.
    """
    locator = locator or Locator("vital_signs.csv")
    problems = _table_columns(vital_signs, REQUIRED_VITAL_SIGN_COLUMNS, VITAL_SIGN_COLUMNS, locator.file, "vital signs")
    measures = [c for c in VITAL_SIGN_MEASURES if c in vital_signs.columns]
    if not measures:
        problems.append(DataProblem(locator.file, None, ", ".join(VITAL_SIGN_MEASURES), None,
                                    "at least one of the columns " + ", ".join(VITAL_SIGN_MEASURES),
                                    "required columns are missing"))
    if any(p.reason == "required columns are missing" for p in problems):
        return problems

    problems += _empty(vital_signs, "participant_id", locator, "a participant id")
    participant = _text(vital_signs["participant_id"])
    problems += _listed_participants(vital_signs, participant_ids, locator, participants_file)

    sessions = sorted(t.dose.session for t in protocol.dosing_timepoints if t.dose is not None)
    session_text = _cells(vital_signs["session"])
    session = pd.to_numeric(session_text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = np.isin(session, sessions) if sessions else np.zeros(len(session), dtype=bool)
    allowed = ", ".join(map(str, sessions)) if sessions else f"none: protocol {protocol.id} has no dosing session"
    problems += [locator.problem(p, "session", session_text.iloc[p], allowed,
                                 "is empty" if pd.isna(session_text.iloc[p])
                                 else f"is not a dosing session of protocol {protocol.id}")
                 for p in np.flatnonzero(~ok)]

    measured = _cells(vital_signs["measured_at"])
    shaped = measured.str.fullmatch(_DATE_TIME).fillna(False).to_numpy(bool)
    parsed = pd.to_datetime(measured.where(shaped), format="ISO8601", errors="coerce", utc=True)
    good_time = shaped & parsed.notna().to_numpy(bool)
    problems += [locator.problem(p, "measured_at", measured.iloc[p], DATE_TIME_ALLOWED,
                                 "is empty" if pd.isna(measured.iloc[p]) else "is not an ISO-8601 date-time")
                 for p in np.flatnonzero(~good_time)]
    keys = pd.DataFrame({"participant_id": participant, "session": session_text,
                         "measured_at": pd.Series(parsed, index=vital_signs.index).astype("string")})
    complete = keys.notna().all(axis=1).to_numpy(bool)
    repeated, first = _duplicates(keys[complete].reset_index(drop=True))
    kept = np.flatnonzero(complete)
    problems += [locator.problem(int(kept[p]), "measured_at", measured.iloc[int(kept[p])],
                                 "one row per participant, session and time of reading",
                                 f"appears twice for participant {participant.iloc[int(kept[p])]!r} in session "
                                 f"{session_text.iloc[int(kept[p])]} (also on row {locator.row(int(kept[f]))})")
                 for p, f in zip(repeated, first, strict=True)]

    if "minutes_after_dose" in vital_signs.columns:
        minutes_text = _cells(vital_signs["minutes_after_dose"])
        minutes = pd.to_numeric(minutes_text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = minutes_text.notna().to_numpy(bool) & ~(np.isfinite(minutes) & (minutes >= MIN_MINUTES_AFTER_DOSE)
                                                     & (np.mod(np.nan_to_num(minutes), 1) == 0))
        problems += [locator.problem(p, "minutes_after_dose", minutes_text.iloc[p],
                                     f"a whole number of minutes ≥ {MIN_MINUTES_AFTER_DOSE} "
                                     "(negative: before the dose), or empty", "is not minutes after the dose")
                     for p in np.flatnonzero(bad)]

    values = {}
    for column in measures:
        text = _cells(vital_signs[column])
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        low, high = PLAUSIBLE_RANGES[column]
        present = text.notna().to_numpy(bool)
        plausible = np.isfinite(number) & (number >= low) & (number <= high)
        unit = VITAL_SIGN_UNITS[column]
        problems += [locator.problem(p, column, text.iloc[p], f"a number {low:g}-{high:g} ({unit}), or empty",
                                     "is not a number" if np.isnan(number[p]) else "is out of the plausible range")
                     for p in np.flatnonzero(present & ~plausible)]
        values[column] = np.where(plausible, number, np.nan)
        values[f"{column}_present"] = present
    none = ~np.any([values[f"{c}_present"] for c in measures], axis=0)
    problems += [locator.problem(p, measures[0], None, "at least one of " + ", ".join(VITAL_SIGN_MEASURES),
                                 "is empty, and so are the row's other measures") for p in np.flatnonzero(none)]
    if "systolic_bp" in values and "diastolic_bp" in values:
        inverted = values["diastolic_bp"] >= values["systolic_bp"]  # False where either is NaN
        diastolic = _cells(vital_signs["diastolic_bp"])
        problems += [locator.problem(p, "diastolic_bp", diastolic.iloc[p],
                                     f"a diastolic pressure below the systolic ({values['systolic_bp'][p]:g} mmHg)",
                                     "is not below the reading's systolic pressure")
                     for p in np.flatnonzero(inverted)]
    return problems


def _cells(values: pd.Series) -> pd.Series:
    """A column as text, spaces around each cell removed, a blank cell missing."""
    return _text(values).str.strip().replace("", pd.NA)
