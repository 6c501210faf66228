"""Concomitant medications: the ``concomitant_medications.csv`` table of the tidy contract, and its checks.

One row per medication a participant took (``docs/data.md``, "concomitant_medications.csv");
columns (required **bold**):

==================  =========================================================================
column              allowed
==================  =========================================================================
``participant_id``  a participant of ``participants.csv``
``name``            the medication, as the participant's record names it (``Sertraline``)
``dose``            free text (``50 mg daily``); may be empty when not known
``start``           ISO-8601 date ``YYYY-MM-DD``, the first day taken
``stop``            ISO-8601 date ``YYYY-MM-DD``, the last day taken, not before ``start``;
                    empty while ongoing
``indication``      optional column: why it is taken, free text
==================  =========================================================================

``participant_id``, ``name``, ``dose``, ``start`` and ``stop`` are required columns; ``name`` and
``start`` are required cells. Dates are calendar dates (days, between 1900-01-01 and 2100-12-31),
because a washout is counted in days (:func:`alliance.monitoring.safety_checks.washout_findings`).
The same medication may appear on several rows (stopped and restarted). Every problem is refused
with file, row, column, value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .errors import DataProblem
from .validation import (
    ENROLMENT_RANGE,
    Locator,
    _control_characters,
    _duplicates,
    _empty,
    _listed_participants,
    _table_columns,
    _text,
)

__all__ = ["DATE_RANGE", "MEDICATION_COLUMNS", "REQUIRED_MEDICATION_COLUMNS", "check_medications", "medication_dates",
           "normalize_medications"]

MEDICATION_COLUMNS = ("participant_id", "name", "dose", "start", "stop", "indication")
REQUIRED_MEDICATION_COLUMNS = ("participant_id", "name", "dose", "start", "stop")
# The dates a trial's record can hold (as enrolled_on): 0204-03-01 or 2204-03-01 is a typo.
DATE_RANGE = ENROLMENT_RANGE
DATE_ALLOWED = f"a date written YYYY-MM-DD between {DATE_RANGE[0]} and {DATE_RANGE[1]}"


def normalize_medications(medications: pd.DataFrame) -> pd.DataFrame:
    """The table with contract dtypes: every column text (``string``), dates with outer spaces removed."""
    out = medications.copy()
    for column in out.columns:
        out[column] = _text(out[column])
        if column in ("start", "stop"):
            out[column] = out[column].str.strip().replace("", pd.NA)
    ordered = [c for c in MEDICATION_COLUMNS if c in out.columns]
    return out[ordered + [c for c in out.columns if c not in MEDICATION_COLUMNS]].reset_index(drop=True)


def medication_dates(values: pd.Series) -> pd.Series:
    """A date column as datetimes (midnight); ``NaT`` where empty or not a date of :data:`DATE_RANGE`."""
    text = _text(values).str.strip()
    shaped = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False)
    parsed = pd.to_datetime(text.where(shaped), format="%Y-%m-%d", errors="coerce")
    low, high = (pd.Timestamp(d) for d in DATE_RANGE)
    return parsed.where((parsed >= low) & (parsed <= high))


def check_medications(medications: pd.DataFrame, participant_ids: Iterable[str] | None,
                      locator: Locator | None = None,
                      participants_file: str = "participants.csv") -> list[DataProblem]:
    """Check ``concomitant_medications.csv`` (columns and rules: the module docstring).

    Parameters
    ----------
    medications : DataFrame
    participant_ids : iterable of str, optional
        The participants of the participants table (``None``: only the id's form is checked).
    locator : Locator, optional
        Where the rows came from (default ``concomitant_medications.csv``, rows as CSV lines).
    participants_file : str
        Named in the message about an unlisted participant.

    Returns
    -------
    list of DataProblem
        Every problem found, each with file, row, column, value, what is allowed and why.
    """
    locator = locator or Locator("concomitant_medications.csv")
    problems = _table_columns(medications, REQUIRED_MEDICATION_COLUMNS, MEDICATION_COLUMNS, locator.file, "concomitant medications")
    if any(p.reason == "required columns are missing" for p in problems):
        return problems
    for column, what in (("participant_id", "a participant id"), ("name", "the medication's name"),
                         ("start", "the first day the medication was taken")):
        problems += _empty(medications, column, locator, what)
    problems += _listed_participants(medications, participant_ids, locator, participants_file)

    dates = {}
    for column in ("start", "stop"):
        text = _text(medications[column]).str.strip()
        present = (text.notna() & (text != "")).to_numpy(bool)
        dates[column] = medication_dates(medications[column])
        bad = present & dates[column].isna().to_numpy(bool)
        problems += [locator.problem(p, column, text.iloc[p], DATE_ALLOWED, "is not a date")
                     for p in np.flatnonzero(bad)]
    early = (dates["stop"] < dates["start"]).fillna(False).to_numpy(bool)
    start_text = _text(medications["start"]).str.strip()
    problems += [locator.problem(p, "stop", _text(medications["stop"]).iloc[p],
                                 f"a date on or after the start ({start_text.iloc[p]}), or empty while ongoing",
                                 "is before the medication's start") for p in np.flatnonzero(early)]
    problems += _control_characters(medications, ["name", "dose", "indication"], locator)
    # one row per participant, medication and start date (the record's key when it is stored)
    keys = pd.DataFrame({c: _text(medications[c]).str.strip().str.lower() if c == "name" else _text(medications[c])
                         for c in ("participant_id", "name", "start")})
    complete = keys.notna().all(axis=1).to_numpy(bool)
    kept = np.flatnonzero(complete)
    repeated, first = _duplicates(keys[complete].reset_index(drop=True))
    problems += [locator.problem(int(kept[p]), "name", _text(medications["name"]).iloc[int(kept[p])],
                                 "one row per participant, medication and start date",
                                 f"appears twice for participant {keys['participant_id'].iloc[int(kept[p])]!r} "
                                 f"from {keys['start'].iloc[int(kept[p])]} (also on row {locator.row(int(kept[f]))})")
                 for p, f in zip(repeated, first, strict=True)]
    return problems
