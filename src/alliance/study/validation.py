"""Checks of the tidy tables against the protocol and the instrument bank.

Every check is vectorized over rows (pandas ``isin``, ``duplicated``); answers are validated by
the scoring engine (:func:`alliance.instruments.validate`), one call per instrument on an
(administrations × items) matrix, so the rules for a valid answer live in one place. Each problem
the engine finds in a matrix cell is mapped back to the response row it came from. Checks collect
every problem instead of stopping at the first.

Where a response row came from is described by a :class:`Locator`: for ``responses.csv`` the row
is the file's line number and the column is the contract column; an importer (wide CSV, REDCap)
passes its own file, line numbers and source columns, so that its users read their own file's
coordinates in the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.protocol import Protocol
from alliance.protocol.design import DOSE_UNITS, MAX_DOSE_AMOUNT

from .administrations import is_facilitator_rated, item_matrix, rater_column
from .errors import DataProblem

RESPONSE_COLUMNS = ("participant_id", "timepoint", "instrument", "item", "value", "rater", "administered_at")
REQUIRED_RESPONSE_COLUMNS = RESPONSE_COLUMNS[:5]
PARTICIPANT_COLUMNS = ("participant_id", "arm")
# The record of the dosing day, all optional: when the session ran, who was in the room, rescue
# medication given, notes on the setting and the music (docs/data.md, "dosing_sessions.csv").
DOSING_DAY_COLUMNS = ("started_at", "ended_at", "present", "rescue_medication", "setting_notes", "music_notes")
DOSING_COLUMNS = ("participant_id", "session", "date", "compound", "amount", "unit", *DOSING_DAY_COLUMNS)
REQUIRED_DOSING_COLUMNS = ("participant_id", "session")
# Free text of the dosing day: it may name people or places, so de-identified copies leave it out
# (Study.deidentified).
DOSING_NOTE_COLUMNS = ("rescue_medication", "setting_notes", "music_notes")
# A page of notes; longer is a paste of something else (a whole session transcript) or a file read
# into a cell.
MAX_NOTE_LENGTH = 2000
# Who is in the room: a bare id is a facilitator (the usual entry); other staff name their role.
PRESENT_ROLES = ("facilitator", "monitor", "physician", "other")
# A room of staff, not a list of everyone: at most 500 characters (the web app's column).
MAX_PRESENT_LENGTH = 500
# A dosing session lasts hours (psilocybin about 6-8 h); more than a day between start and end is a
# wrong date.
MAX_SESSION_HOURS = 24
TIME_OF_DAY_PATTERN = re.compile(r"\d{2}:\d{2}(:\d{2})?")
DATE_TIME_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?")
SESSION_TIME_ALLOWED = ("an ISO-8601 date-time (2024-03-01T09:30, 2024-03-01 09:30:00+01:00) or a time of day "
                        "HH:MM on the row's date (09:30)")
# Ids name files, URLs and REDCap records downstream: no '/', spaces, NUL or control characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ID_ALLOWED = "letters, digits, '_', '-' and '.', starting with a letter or digit, at most 64 characters"
# A rater is a staff id, user name or initials ("R02", "j.doe@site", "J. D."): one line of
# printable text, at most 200 characters (the web app's column).
RATER_PATTERN = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
RATER_ALLOWED = "one line of text without control characters, at most 200 characters (a staff id, user name or initials)"
# Free text (a site's name, a compound, a text covariate) may hold any printable character, and
# tabs and line breaks, but no NUL or other control character: they are invisible in every
# display, cut strings in C libraries and PostgreSQL refuses NUL in text.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TEXT_ALLOWED = "text without NUL or other control characters (tabs and line breaks are allowed)"
ENROLMENT_COLUMN = "enrolled_on"
# Enrolment dates a trial can have: a typo such as 0204-03-01 or 2204-03-01 is refused.
ENROLMENT_RANGE = ("1900-01-01", "2100-12-31")
# A covariate named ``age`` is in years: a number outside this range is a typo (53 → 530) or a
# date of birth in the wrong column.
AGE_RANGE = (0, 130)
# Participant columns that are text by contract; the others (not identifiers) are covariates.
_TEXT_COLUMNS = ("participant_id", "arm", "site", "facilitator_ids", ENROLMENT_COLUMN)


@dataclass(frozen=True)
class Locator:
    """Where the rows of a table came from.

    Attributes
    ----------
    file : str
        The file named in messages.
    rows : ndarray of int, optional
        The source line number of each row; by default ``position + first_row``.
    first_row : int
        Line number of the first row when ``rows`` is not given (2: the line after a CSV header).
    columns : mapping
        Contract column → the source column it came from: one name, or an array (or list) with
        one name per row (a wide file's item columns). Columns not listed are named as they are.
    """

    file: str
    rows: np.ndarray | None = None
    first_row: int = 2
    columns: Mapping[str, object] = field(default_factory=dict)

    def row(self, position: int) -> int:
        return int(self.rows[position]) if self.rows is not None else int(position) + self.first_row

    def column(self, name: str, position: int) -> str:
        source = self.columns.get(name, name)
        return str(source[position]) if isinstance(source, np.ndarray | list | tuple) else str(source)

    def problem(self, position: int, column: str, value: object, allowed: str, reason: str) -> DataProblem:
        return DataProblem(self.file, self.row(position), self.column(column, position), _plain(value), allowed, reason)


def _plain(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def is_text(series: pd.Series) -> bool:
    """True for the pandas ``string`` dtype with ``<NA>`` for missing (the contract's text dtype)."""
    return isinstance(series.dtype, pd.StringDtype) and series.dtype.na_value is pd.NA


def _text(series: pd.Series) -> pd.Series:
    return series if is_text(series) else series.astype("string")


def _missing_columns(frame: pd.DataFrame, required: Iterable[str], file: str) -> list[DataProblem]:
    absent = [c for c in required if c not in frame.columns]
    if not absent:
        return []
    return [DataProblem(file, None, ", ".join(absent), None, "the columns " + ", ".join(required),
                        "required columns are missing")]


def _table_columns(frame: pd.DataFrame, required: Iterable[str], allowed: Sequence[str], file: str,
                   table: str) -> list[DataProblem]:
    """Required columns that are missing, and columns the table does not have (one problem each kind)."""
    problems = _missing_columns(frame, required, file)
    unknown = [c for c in frame.columns if c not in allowed]
    if unknown:
        problems.append(DataProblem(file, None, ", ".join(map(str, unknown)), None, ", ".join(allowed),
                                    f"are not columns of the {table} table"))
    return problems


def _listed_participants(frame: pd.DataFrame, participant_ids: Iterable[str] | None, locator: Locator,
                         participants_file: str) -> list[DataProblem]:
    """``participant_id`` cells not listed in the participants table (or, without it, not an id)."""
    if participant_ids is None:  # a listed id was checked in the participants table
        return _ids(frame, "participant_id", locator, "participant id")
    participant = _text(frame["participant_id"])
    unlisted = (~participant.isin(list(participant_ids)) & participant.notna()).to_numpy(bool)
    return [locator.problem(p, "participant_id", participant.iloc[p], f"a participant_id listed in {participants_file}",
                            f"is not listed in {participants_file}") for p in np.flatnonzero(unlisted)]


def _empty(frame: pd.DataFrame, column: str, locator: Locator, what: str) -> list[DataProblem]:
    values = _text(frame[column])
    empty = values.isna() | (values.str.strip() == "")
    return [locator.problem(p, column, None, what, "is empty") for p in np.flatnonzero(empty.to_numpy(bool))]


def _iso_dates(frame: pd.DataFrame, column: str, locator: Locator) -> list[DataProblem]:
    values = _text(frame[column])
    present = values.notna().to_numpy(bool)
    if not present.any():
        return []
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
    bad = present & parsed.isna().to_numpy(bool)
    return [locator.problem(p, column, values.iloc[p], "an ISO-8601 date or date-time, e.g. 2024-03-01 or "
                            "2024-03-01T14:30:00", "is not an ISO-8601 date")
            for p in np.flatnonzero(bad)]


def _duplicates(keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Positions of rows repeating an earlier row's keys, and the position of that earlier row."""
    repeated = keys.duplicated(keep="first").to_numpy(bool)
    if not repeated.any():
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    group = keys.groupby(list(keys.columns), sort=False, dropna=False).ngroup().to_numpy()
    groups, first = np.unique(group, return_index=True)
    first_of_group = np.empty(group.max() + 1, dtype=np.int64)
    first_of_group[groups] = first
    positions = np.flatnonzero(repeated)
    return positions, first_of_group[group[positions]]


def _ids(frame: pd.DataFrame, column: str, locator: Locator, what: str = "id") -> list[DataProblem]:
    """Cells of an id column that do not match :data:`ID_PATTERN` (each distinct id is matched once)."""
    values = _text(frame[column])
    codes, uniques = values.factorize()  # a few thousand ids for a million rows
    bad = np.array([not ID_PATTERN.fullmatch(u) and bool(u.strip()) for u in uniques], dtype=bool)
    if not bad.any():
        return []
    positions = np.flatnonzero((codes >= 0) & bad[np.maximum(codes, 0)])
    return [locator.problem(p, column, values.iloc[p], ID_ALLOWED, f"is not a valid {what}") for p in positions]


def _pattern(frame: pd.DataFrame, column: str, locator: Locator, pattern: re.Pattern, allowed: str,
             what: str) -> list[DataProblem]:
    """Cells of a text column that do not match ``pattern`` (each distinct value matched once)."""
    values = _text(frame[column])
    codes, uniques = values.factorize()
    bad = np.array([not pattern.fullmatch(u) for u in uniques], dtype=bool)
    if not bad.any():
        return []
    positions = np.flatnonzero((codes >= 0) & bad[np.maximum(codes, 0)])
    return [locator.problem(p, column, values.iloc[p], allowed, f"is not a valid {what}") for p in positions]


def _facilitator_ids(frame: pd.DataFrame, locator: Locator) -> list[DataProblem]:
    """``facilitator_ids``: ``;``-separated ids, each matching :data:`ID_PATTERN`."""
    values = _text(frame["facilitator_ids"])
    codes, uniques = values.factorize()
    bad = np.array([any(not ID_PATTERN.fullmatch(part.strip()) for part in u.split(";") if part.strip())
                    for u in uniques], dtype=bool)
    if not bad.any():
        return []
    positions = np.flatnonzero((codes >= 0) & bad[np.maximum(codes, 0)])
    return [locator.problem(p, "facilitator_ids", values.iloc[p], f"facilitator ids separated by ';', each of "
                            f"{ID_ALLOWED}", "holds a facilitator id that is not valid") for p in positions]


def _control_characters(frame: pd.DataFrame, columns: Iterable[str], locator: Locator) -> list[DataProblem]:
    """Text cells holding NUL or another control character (free-text columns)."""
    problems = []
    for column in columns:
        if column not in frame.columns or not (is_text(frame[column]) or frame[column].dtype == object):
            continue
        values = frame[column].astype("string")
        codes, uniques = values.factorize()
        bad = np.array([bool(CONTROL_CHARACTERS.search(u)) for u in uniques], dtype=bool)
        if bad.any():
            positions = np.flatnonzero((codes >= 0) & bad[np.maximum(codes, 0)])
            problems += [locator.problem(p, column, values.iloc[p].encode("unicode_escape").decode("ascii"),
                                         TEXT_ALLOWED, "holds a control character") for p in positions]
    return problems


def _enrolment_dates(frame: pd.DataFrame, locator: Locator) -> list[DataProblem]:
    """``enrolled_on``: a calendar date written ``YYYY-MM-DD`` within :data:`ENROLMENT_RANGE`.

    Only spaces around the date are tolerated (the loader drops them); a tab, a line break or any
    other character is not a date — stripping it would store something other than what was read
    (found by the import mutation test: a vertical tab after the last date).
    """
    values = _text(frame[ENROLMENT_COLUMN]).str.strip(" ")
    present = values.notna().to_numpy(bool)
    if not present.any():
        return []
    shaped = values.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).to_numpy(bool)
    parsed = pd.to_datetime(values.where(shaped), format="%Y-%m-%d", errors="coerce")
    low, high = (pd.Timestamp(d) for d in ENROLMENT_RANGE)
    ok = shaped & parsed.notna().to_numpy(bool)
    ok[ok] = ((parsed[ok] >= low) & (parsed[ok] <= high)).to_numpy(bool)
    return [locator.problem(p, ENROLMENT_COLUMN, values.iloc[p],
                            f"a date written YYYY-MM-DD between {ENROLMENT_RANGE[0]} and {ENROLMENT_RANGE[1]}",
                            "is not an enrolment date") for p in np.flatnonzero(present & ~ok)]


def _identifier_dates(frame: pd.DataFrame, column: str, locator: Locator) -> list[DataProblem]:
    """An identifier column of type ``date`` (e.g. ``date_of_birth``): a calendar date written ``YYYY-MM-DD``."""
    values = _text(frame[column]).str.strip()
    present = (values.notna() & (values != "")).to_numpy(bool)
    if not present.any():
        return []
    shaped = values.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).to_numpy(bool)
    parsed = pd.to_datetime(values.where(shaped), format="%Y-%m-%d", errors="coerce")
    ok = shaped & parsed.notna().to_numpy(bool)
    return [locator.problem(p, column, values.iloc[p], "a date written YYYY-MM-DD, e.g. 1984-07-31",
                            "is not a date (the protocol gives this identifier type date)")
            for p in np.flatnonzero(present & ~ok)]


def _not_finite(values: pd.Series) -> np.ndarray:
    """Cells written as a number that is not finite (``inf``, ``-Infinity``, ``nan``, ``1e309``)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return np.isinf(values.to_numpy(dtype=float, na_value=np.nan))  # NaN is a missing value here
    text = _text(values).str.strip()
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.isinf(numbers) | text.str.lower().isin(["nan", "+nan", "-nan"]).to_numpy(bool)


def check_participants(protocol: Protocol, participants: pd.DataFrame,
                       locator: Locator | None = None) -> list[DataProblem]:
    """Check ``participants.csv``: ids present and unique, every arm an arm of the protocol.

    Also: facilitator ids, enrolment dates, no control characters, covariates finite, and each
    identifier column of type ``date`` (the protocol's ``identifiers:``) a ``YYYY-MM-DD`` date.

    Parameters
    ----------
    protocol : Protocol
    participants : DataFrame
        Columns ``participant_id``, ``arm`` and any optional columns.
    locator : Locator, optional
        Where the rows came from (default: ``participants.csv``, line numbers from 2).

    Returns
    -------
    list of DataProblem
    """
    locator = locator or Locator("participants.csv")
    problems = _missing_columns(participants, PARTICIPANT_COLUMNS, locator.file)
    if problems:
        return problems
    # a covariate's name is stored (and shown) as it is: a NUL or other control character in it is
    # refused like one in a cell (PostgreSQL cannot store a NUL in the study's column list)
    problems += [DataProblem(locator.file, locator.first_row - 1, str(c).encode("unicode_escape").decode("ascii"),
                             None, "a column name without control characters", "is a column name holding a "
                             "control character") for c in participants.columns if CONTROL_CHARACTERS.search(str(c))]
    problems += _empty(participants, "participant_id", locator, "a participant id")
    problems += _ids(participants, "participant_id", locator, "participant id")
    ids = _text(participants["participant_id"])
    repeated, first = _duplicates(ids.to_frame())
    problems += [locator.problem(p, "participant_id", ids.iloc[p], "each participant once",
                                 f"appears twice (also on row {locator.row(f)})")
                 for p, f in zip(repeated, first, strict=True)]
    arms = _text(participants["arm"])
    bad = ~arms.isin(protocol.arm_ids).to_numpy(bool)
    problems += [locator.problem(p, "arm", arms.iloc[p], ", ".join(protocol.arm_ids),
                                 f"is not an arm of protocol {protocol.id}") for p in np.flatnonzero(bad)]
    if "facilitator_ids" in participants.columns:
        problems += _facilitator_ids(participants, locator)
    if ENROLMENT_COLUMN in participants.columns:
        problems += _enrolment_dates(participants, locator)
    problems += _control_characters(participants, [c for c in participants.columns
                                                   if c not in ("participant_id", "facilitator_ids")], locator)
    problems += [problem for field in protocol.identifier_fields
                 if field.type == "date" and field.id in participants.columns
                 for problem in _identifier_dates(participants, field.id, locator)]
    for column in participants.columns:
        if column in _TEXT_COLUMNS or column in protocol.identifiers:
            continue
        values = participants[column]
        problems += [locator.problem(p, column, values.iloc[p], "a finite number, or text that is not a number",
                                     "is not a finite number") for p in np.flatnonzero(_not_finite(values))]
        if column == "age":
            numbers = pd.to_numeric(_text(values).str.strip(), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            outside = np.isfinite(numbers) & ((numbers < AGE_RANGE[0]) | (numbers > AGE_RANGE[1]))
            problems += [locator.problem(p, column, values.iloc[p], f"an age in years, {AGE_RANGE[0]} to {AGE_RANGE[1]}",
                                         "is not an age") for p in np.flatnonzero(outside)]
    return problems


def check_responses(protocol: Protocol, responses: pd.DataFrame, participant_ids: Iterable[str] | None,
                    locator: Locator | None = None,
                    participants_file: str = "participants.csv",
                    facilitators: Mapping[str, Iterable[str]] | None = None) -> tuple[list[DataProblem], np.ndarray]:
    """Check responses against the protocol, the instrument bank and the participants.

    Parameters
    ----------
    protocol : Protocol
    responses : DataFrame
        The tidy responses (``value`` as text or numbers).
    participant_ids : iterable of str, optional
        The participants listed in the participants table (``None`` skips that check).
    locator : Locator, optional
        Where each row came from (default: ``responses.csv``, line numbers from 2).
    participants_file : str
        The participants table's name, for the message about an unlisted participant.
    facilitators : mapping, optional
        Participant id → that participant's facilitator ids (``facilitator_ids``). Given, the
        ``rater`` of a facilitator-rated instrument must be one of them.

    Returns
    -------
    problems : list of DataProblem
    values : ndarray of float
        The answers as numbers (NaN where a value is missing or invalid).

    Notes
    -----
    Checked: required and unknown columns; empty participant, timepoint, instrument or item;
    participant not listed; unknown timepoint (a derived timepoint is not one where answers are
    given); instrument not in the bank or not given at that timepoint by the protocol; item not an
    item of the instrument; a second answer to the same (participant, timepoint, item); an empty
    value; answers the scoring engine refuses (not a number, out of range, off the item's step);
    ``administered_at`` not ISO-8601; rows of one administration (participant × timepoint ×
    instrument) with different ``rater`` or ``administered_at`` (it was given once, by one rater).
    A facilitator-rated instrument (``rater: facilitator``, ``wai_sr_t``) is one administration
    per facilitator: its rows must name the facilitator in ``rater`` (one of the participant's
    ``facilitator_ids`` when ``facilitators`` is given), and the second-answer and one-time rules
    apply per participant, timepoint and facilitator.
    """
    locator = locator or Locator("responses.csv")
    n = len(responses)
    problems = _missing_columns(responses, REQUIRED_RESPONSE_COLUMNS, locator.file)
    unknown = [c for c in responses.columns if c not in RESPONSE_COLUMNS]
    if unknown:
        problems.append(DataProblem(locator.file, None, ", ".join(map(str, unknown)), None,
                                    ", ".join(RESPONSE_COLUMNS), "are not columns of the responses table"))
    if any(p.reason == "required columns are missing" for p in problems):
        return problems, np.full(n, np.nan)

    for column, what in (("participant_id", "a participant id"), ("timepoint", "a timepoint id"),
                         ("instrument", "an instrument id"), ("item", "an item id")):
        problems += _empty(responses, column, locator, what)
    participant = _text(responses["participant_id"])
    timepoint = _text(responses["timepoint"])
    instrument = _text(responses["instrument"])
    item = _text(responses["item"])
    structural = (participant.isna() | timepoint.isna() | instrument.isna() | item.isna()).to_numpy(bool)

    if participant_ids is not None:
        unlisted = (~participant.isin(list(participant_ids)) & participant.notna()).to_numpy(bool)
        problems += [locator.problem(p, "participant_id", participant.iloc[p],
                                     f"a participant_id listed in {participants_file}",
                                     f"is not listed in {participants_file}") for p in np.flatnonzero(unlisted)]
    else:  # a listed id was checked in the participants table
        problems += _ids(responses, "participant_id", locator, "participant id")

    known_timepoint = timepoint.isin(protocol.timepoint_ids).to_numpy(bool)
    for p in np.flatnonzero(~known_timepoint & timepoint.notna().to_numpy(bool)):
        value = timepoint.iloc[p]
        reason = f"is not a timepoint of protocol {protocol.id}"
        if value in protocol.derived_ids:
            sources = ", ".join(protocol.derived_timepoint(value).from_timepoints)
            reason = f"is a derived timepoint (computed from {sources}); answers are given at real timepoints"
        problems.append(locator.problem(p, "timepoint", value, ", ".join(protocol.timepoint_ids), reason))

    in_bank = {i.id for i in bank.list_instruments()}
    pairs = timepoint.fillna("") + "\x1f" + instrument.fillna("")
    allowed_pairs = [f"{t.id}\x1f{i}" for t in protocol.timepoints for i in t.instruments]
    given = pairs.isin(allowed_pairs).to_numpy(bool)
    for p in np.flatnonzero(~given & ~structural & known_timepoint):
        value = instrument.iloc[p]
        at = protocol.timepoint(timepoint.iloc[p])
        reason = (f"is not given at timepoint {at.id!r} by protocol {protocol.id}" if value in in_bank
                  else "is not an instrument in the bank")
        problems.append(locator.problem(p, "instrument", value, f"at {at.id}: {', '.join(at.instruments)}", reason))

    item_pairs = instrument.fillna("") + "\x1f" + item.fillna("")
    valid_items = [f"{i}\x1f{item_id}" for i in protocol.instruments for item_id in bank.get(i).item_ids]
    known_item = item_pairs.isin(valid_items).to_numpy(bool)
    for p in np.flatnonzero(~known_item & given & ~structural):
        inst = bank.get(instrument.iloc[p])
        problems.append(locator.problem(p, "item", item.iloc[p], f"{inst.item_ids[0]} … {inst.item_ids[-1]}",
                                        f"is not an item of {inst.id}"))

    by_facilitator = instrument.isin([i for i in protocol.instruments
                                      if is_facilitator_rated(bank.get(i))]).to_numpy(bool)
    keys = pd.DataFrame({"participant_id": participant, "timepoint": timepoint, "item": item})
    rater_key = None
    if by_facilitator.any():
        rater = rater_column(responses)
        # A facilitator-rated administration is keyed by its facilitator; other rows by nothing more.
        rater_key = rater.where(pd.Series(by_facilitator, index=rater.index), "").fillna("")
        keys["rater"] = rater_key
        problems += _facilitator_raters(rater, participant, instrument, locator,
                                        by_facilitator & ~structural & given, facilitators, participants_file)
    repeated, first = _duplicates(keys)
    duplicate = np.zeros(n, dtype=bool)
    duplicate[repeated] = True
    problems += [locator.problem(
        p, "item", item.iloc[p],
        "one answer per participant, timepoint, item and facilitator" if by_facilitator[p]
        else "one answer per participant, timepoint and item",
        f"is a second answer of participant {participant.iloc[p]!r} at {timepoint.iloc[p]!r}"
        + (f" by facilitator {rater_key.iloc[p]!r}" if by_facilitator[p] and rater_key is not None else "")
        + f" (first on row {locator.row(f)})")
        for p, f in zip(repeated, first, strict=True)]

    value_problems, values = _check_values(responses, locator, given & known_item & ~duplicate & ~structural)
    problems += value_problems
    if "administered_at" in responses.columns:
        problems += _iso_dates(responses, "administered_at", locator)
    if "rater" in responses.columns:
        problems += _pattern(responses, "rater", locator, RATER_PATTERN, RATER_ALLOWED, "rater")
    problems += _one_rater_and_time(responses, participant, timepoint, instrument, locator, ~structural, rater_key)
    return problems, values


def _facilitator_raters(rater: pd.Series, participant: pd.Series, instrument: pd.Series, locator: Locator,
                        checkable: np.ndarray, facilitators: Mapping[str, Iterable[str]] | None,
                        participants_file: str) -> list[DataProblem]:
    """Rows of a facilitator-rated instrument without a rater, or whose rater is not one of the
    participant's facilitators."""
    problems = []
    allowed = {str(k): {str(f) for f in v} for k, v in (facilitators or {}).items()}
    positions = np.flatnonzero(checkable)
    missing = rater.isna().to_numpy(bool)
    for p in positions[missing[positions]]:
        ids = sorted(allowed.get(participant.iloc[p], ()))
        problems.append(locator.problem(
            p, "rater", None, f"the id of the facilitator who rated ({', '.join(ids) or 'see facilitator_ids'})",
            f"is empty: {instrument.iloc[p]} is rated by each facilitator, and the rater names which one"))
    if facilitators is None:
        return problems
    pairs = (participant.fillna("") + "\x1f" + rater.fillna("")).to_numpy(dtype=object)
    checked: dict[str, bool] = {}
    for p in positions[~missing[positions]]:
        pair = pairs[p]
        if pair not in checked:
            checked[pair] = rater.iloc[p] in allowed.get(participant.iloc[p], set())
        if not checked[pair]:
            ids = sorted(allowed.get(participant.iloc[p], ()))
            problems.append(locator.problem(
                p, "rater", rater.iloc[p],
                f"a facilitator of participant {participant.iloc[p]!r}: {', '.join(ids)}" if ids
                else f"a facilitator listed for participant {participant.iloc[p]!r} in {participants_file}",
                f"is not one of the facilitators of participant {participant.iloc[p]!r} (facilitator_ids in "
                f"{participants_file})"))
    return problems


def _one_rater_and_time(responses: pd.DataFrame, participant: pd.Series, timepoint: pd.Series,
                        instrument: pd.Series, locator: Locator, checkable: np.ndarray,
                        rater_key: pd.Series | None = None) -> list[DataProblem]:
    """Rows of one administration that name another rater or time than the administration's first row.

    One administration (participant × timepoint × instrument) was given once, by one rater, at
    one time; the tidy table repeats ``rater`` and ``administered_at`` on each of its item rows,
    so they must agree (a missing value and a given one disagree too).
    """
    columns = [c for c in ("rater", "administered_at") if c in responses.columns]
    positions = np.flatnonzero(checkable)
    if not columns or not len(positions):
        return []
    # Integer codes instead of joined strings: this runs on every row of a large import.
    key = np.zeros(len(positions), dtype=np.int64)
    parts = (participant, timepoint, instrument) + (() if rater_key is None else (rater_key,))
    for part in parts:
        part_codes, uniques = part.factorize()  # on the column's own (Arrow) array: no object copy
        key = key * (len(uniques) + 1) + part_codes[positions]
    codes, _ = pd.factorize(key)
    _, first = np.unique(codes, return_index=True)  # each administration's first row (a position in `positions`)
    problems = []
    for column in columns:
        column_codes, _ = _text(responses[column]).factorize()  # missing: -1, unlike any value
        value_codes = column_codes[positions]
        if not (value_codes != value_codes[first[codes]]).any():
            continue
        text = _text(responses[column]).to_numpy(dtype=object, na_value="")[positions]
        for k in np.flatnonzero(value_codes != value_codes[first[codes]]):
            p, f = positions[k], positions[first[codes[k]]]
            problems.append(locator.problem(
                p, column, text[k] or None,
                f"{text[first[codes[k]]] or 'missing'!r} as on row {locator.row(f)}, the administration's first row",
                f"differs within the {instrument.iloc[p]} administration of participant {participant.iloc[p]!r} at "
                f"{timepoint.iloc[p]!r}: one administration has one {column}"))
    return problems


def _check_values(responses: pd.DataFrame, locator: Locator, checkable: np.ndarray) -> tuple[list[DataProblem], np.ndarray]:
    """Validate answers with the scoring engine, one item matrix per instrument."""
    raw = responses["value"]
    problems: list[DataProblem] = []
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.to_numpy(dtype=float, na_value=np.nan, copy=True)
        text = None
        is_number = ~np.isnan(values)
        empty = np.isnan(values)
    else:
        text = _text(raw).str.strip()
        empty = (text.isna() | (text == "")).to_numpy(bool)
        values = pd.to_numeric(text.mask(empty), errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)
        is_number = ~np.isnan(values)
    problems += [locator.problem(p, "value", None, "a number (leave out the row of an unanswered item)",
                                 "is empty") for p in np.flatnonzero(empty)]

    instrument = _text(responses["instrument"])
    for instrument_id in pd.unique(instrument[checkable & ~empty]):
        inst = bank.get(instrument_id)
        positions = np.flatnonzero(checkable & ~empty & (instrument == instrument_id).to_numpy(bool))
        not_numbers = positions[~is_number[positions]]
        # The engine names a non-number only if it sees the text; give it text where there is any.
        cells = values if not len(not_numbers) else _object_values(values, text, positions)
        matrix = item_matrix(responses, positions, inst, cells)
        try:
            bank.validate(inst, matrix.frame(inst), first_row=0)
        except bank.ScoringError as error:
            for engine_problem in error.problems:
                j = inst.item_ids.index(engine_problem.column)
                position = int(matrix.source[engine_problem.row, j])
                shown = text.iloc[position] if text is not None else values[position]
                problems.append(locator.problem(position, "value", shown,
                                                f"{engine_problem.allowed} ({inst.id} item {inst.item_ids[j]})",
                                                engine_problem.reason))
                values[position] = np.nan
    values[~checkable] = np.nan
    return problems, values


def _object_values(values: np.ndarray, text: pd.Series, positions: np.ndarray) -> np.ndarray:
    cells = values.astype(object)
    cells[positions] = text.iloc[positions].to_numpy(dtype=object)
    return cells


PRESENT_ALLOWED = (f"ids separated by ';', each ID (a facilitator) or role:ID with role "
                   f"{', '.join(PRESENT_ROLES)} (F1;F2;monitor:M1), at most {MAX_PRESENT_LENGTH} characters; "
                   f"an id is {ID_ALLOWED}")


def present_entries(cell: str) -> list[tuple[str, str]]:
    """The ``(role, id)`` pairs of a ``present`` cell, as written (``F1;monitor:M1``).

    A bare id is a facilitator; spaces around entries, roles and ids are dropped, empty entries
    (``F1;;F2``, a trailing ``;``) skipped. Nothing is checked here: :func:`check_dosing_sessions`
    does that.

    Examples
    --------
    >>> present_entries("F1; F2;monitor:M1")
    [('facilitator', 'F1'), ('facilitator', 'F2'), ('monitor', 'M1')]
    """
    entries = []
    for part in str(cell).split(";"):
        if not part.strip():
            continue
        role, colon, staff = part.partition(":")
        entries.append((role.strip(), staff.strip()) if colon else ("facilitator", part.strip()))
    return entries


def _present_reason(cell: str) -> str | None:
    """Why a ``present`` cell is refused (its first wrong entry), or ``None``."""
    if len(cell) > MAX_PRESENT_LENGTH:
        return f"is {len(cell):,} characters long"
    seen = set()
    for role, staff in present_entries(cell):
        if role not in PRESENT_ROLES:
            return f"names the role {role!r}, not one of {', '.join(PRESENT_ROLES)}"
        if not staff:
            return f"names the role {role!r} without an id"
        if not ID_PATTERN.fullmatch(staff):
            return f"names {staff!r}, which is not a valid staff id"
        if staff in seen:  # one person, one entry: a repeat is a typo for someone else
            return f"names {staff!r} twice"
        seen.add(staff)
    return None


def _present(dosing: pd.DataFrame, locator: Locator) -> list[DataProblem]:
    """``present``: who was in the room (:data:`PRESENT_ALLOWED`); each distinct cell checked once."""
    values = _text(dosing["present"])
    codes, uniques = values.factorize()
    reasons = [_present_reason(u) for u in uniques]
    return [locator.problem(p, "present", _shown(values.iloc[p], 120), PRESENT_ALLOWED, reasons[codes[p]])
            for p in np.flatnonzero(codes >= 0) if reasons[codes[p]] is not None]


def _shown(text: str, length: int = 60) -> str:
    return text if len(text) <= length else text[:length] + "…"


def _long_text(frame: pd.DataFrame, columns: Iterable[str], locator: Locator, limit: int) -> list[DataProblem]:
    """Free-text cells longer than ``limit`` characters (the value shown is the text's beginning)."""
    problems = []
    for column in columns:
        if column not in frame.columns:
            continue
        values = _text(frame[column])
        long = (values.str.len() > limit).fillna(False).to_numpy(bool)
        problems += [locator.problem(p, column, _shown(values.iloc[p]), f"free text of at most {limit:,} characters",
                                     f"is {len(values.iloc[p]):,} characters long") for p in np.flatnonzero(long)]
    return problems


def _session_times(dosing: pd.DataFrame, locator: Locator) -> list[DataProblem]:
    """``started_at`` and ``ended_at``: a date-time, or a time of day on the row's ``date``; end after start.

    A time of day alone (``09:30``) is on the session's date, so it needs the row's ``date``; a
    session that runs past midnight writes its end as a date-time. A start written as a date-time
    is on the row's date (as written, before any UTC offset), and the end comes after the start
    and at most :data:`MAX_SESSION_HOURS` hours later. Times with and without a UTC offset are
    compared as instants, a time without an offset read as UTC.
    """
    date_text = _text(dosing["date"]).str.strip() if "date" in dosing.columns \
        else pd.Series(pd.NA, index=dosing.index, dtype="string")
    no_date = (date_text.isna() | (date_text == "")).fillna(True).to_numpy(bool)
    day = date_text.str.slice(0, 10).where(date_text.str.match(r"\d{4}-\d{2}-\d{2}").fillna(False).to_numpy(bool))
    day_valid = pd.to_datetime(day, format="%Y-%m-%d", errors="coerce").notna().to_numpy(bool)
    problems: list[DataProblem] = []
    moments, texts = {}, {}
    for column in ("started_at", "ended_at"):
        if column not in dosing.columns:
            moments[column] = pd.Series(pd.NaT, index=dosing.index, dtype="datetime64[ns, UTC]")
            continue
        text = _text(dosing[column]).str.strip(" ").replace("", pd.NA)  # spaces around a time are not kept
        texts[column] = text
        present = text.notna().to_numpy(bool)
        clock = text.str.fullmatch(TIME_OF_DAY_PATTERN.pattern).fillna(False).to_numpy(bool)
        full = text.str.fullmatch(DATE_TIME_PATTERN.pattern).fillna(False).to_numpy(bool)
        candidate = text.where(full, (day + "T" + text).where(clock & day_valid))
        parsed = pd.Series(pd.to_datetime(candidate, format="ISO8601", errors="coerce", utc=True), index=dosing.index)
        # a time of day is checked on a day of its own, also when the row has no date to put it on
        clock_ok = pd.to_datetime("2000-01-01T" + text.where(clock), format="ISO8601",
                                  errors="coerce").notna().to_numpy(bool)
        full_ok = full & parsed.notna().to_numpy(bool)
        problems += [locator.problem(p, column, text.iloc[p], SESSION_TIME_ALLOWED,
                                     "is not a date-time or a time of day")
                     for p in np.flatnonzero(present & ~full_ok & ~(clock & clock_ok))]
        problems += [locator.problem(p, column, text.iloc[p], "a date-time (2024-03-01T09:30), or the session's date "
                                     "in the column date", "is a time of day, and the row has no date to put it on")
                     for p in np.flatnonzero(clock & clock_ok & no_date)]
        if column == "started_at":
            other_day = full_ok & day_valid & (text.str.slice(0, 10) != day).fillna(False).to_numpy(bool)
            problems += [locator.problem(p, column, text.iloc[p], f"a time on {day.iloc[p]} (the row's date)",
                                         "is not on the session's date") for p in np.flatnonzero(other_day)]
        moments[column] = parsed
    both = (moments["started_at"].notna() & moments["ended_at"].notna()).to_numpy(bool)
    duration = (moments["ended_at"] - moments["started_at"]).to_numpy()
    limit = np.timedelta64(MAX_SESSION_HOURS, "h")
    for p in np.flatnonzero(both):
        started, ended = texts["started_at"].iloc[p], texts["ended_at"].iloc[p]
        if duration[p] <= np.timedelta64(0, "s"):
            problems.append(locator.problem(p, "ended_at", ended, f"a time after {started} (a session past midnight: "
                                            "its end as a date-time, 2024-03-02T01:30)", "is not after started_at"))
        elif duration[p] > limit:
            problems.append(locator.problem(p, "ended_at", ended, f"a time after {started} and at most "
                                            f"{MAX_SESSION_HOURS} hours later",
                                            f"is more than {MAX_SESSION_HOURS} hours after started_at"))
    return problems


def check_dosing_sessions(protocol: Protocol, dosing: pd.DataFrame, participant_ids: Iterable[str] | None,
                          locator: Locator | None = None,
                          participants_file: str = "participants.csv") -> list[DataProblem]:
    """Check ``dosing_sessions.csv``: participant listed, session a protocol session, valid dose, the day's record.

    Parameters
    ----------
    protocol : Protocol
    dosing : DataFrame
        Columns ``participant_id, session``, optional ``date, compound, amount, unit`` and the
        dosing-day record :data:`DOSING_DAY_COLUMNS`.
    participant_ids : iterable of str, optional
        The participants listed in the participants table.
    locator : Locator, optional
        Where the rows came from (default ``dosing_sessions.csv``).
    participants_file : str
        The participants table's name.

    Returns
    -------
    list of DataProblem

    Notes
    -----
    Checked: required and unknown columns; participant empty or not listed; a session the protocol
    does not dose, or twice for a participant; ``date`` not ISO-8601; ``amount`` not a number ≥ 0
    and below the protocol's bound; ``unit`` not a dose unit; control characters in ``compound``
    and the notes. The dosing-day record: ``started_at`` and ``ended_at`` as
    :func:`_session_times` checks them (a date-time, or a time of day on the row's date; the start
    on the row's date; the end after the start, at most :data:`MAX_SESSION_HOURS` hours later);
    ``present`` as :data:`PRESENT_ALLOWED` (roles :data:`PRESENT_ROLES`, ids :data:`ID_PATTERN`,
    nobody twice, at most :data:`MAX_PRESENT_LENGTH` characters); ``rescue_medication``, ``setting_notes`` and ``music_notes`` free text of at
    most :data:`MAX_NOTE_LENGTH` characters (empty: none).
    """
    locator = locator or Locator("dosing_sessions.csv")
    problems = _table_columns(dosing, REQUIRED_DOSING_COLUMNS, DOSING_COLUMNS, locator.file, "dosing sessions")
    if any(p.reason == "required columns are missing" for p in problems):
        return problems
    problems += _empty(dosing, "participant_id", locator, "a participant id")
    participant = _text(dosing["participant_id"])
    problems += _listed_participants(dosing, participant_ids, locator, participants_file)
    sessions = sorted(t.dose.session for t in protocol.dosing_timepoints if t.dose is not None)
    session_text = _text(dosing["session"]).str.strip()
    session = pd.to_numeric(session_text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    allowed = ", ".join(map(str, sessions)) if sessions else "a whole number ≥ 1"
    ok = ~np.isnan(session) & (session >= 1) & (np.mod(np.nan_to_num(session), 1) == 0)
    if sessions:
        ok &= np.isin(session, sessions)
    problems += [locator.problem(p, "session", session_text.iloc[p], allowed,
                                 f"is not a dosing session of protocol {protocol.id}") for p in np.flatnonzero(~ok)]
    repeated, first = _duplicates(pd.DataFrame({"participant_id": participant, "session": session_text}))
    problems += [locator.problem(p, "session", session_text.iloc[p], "one row per participant and session",
                                 f"appears twice for participant {participant.iloc[p]!r} (also on row {locator.row(f)})")
                 for p, f in zip(repeated, first, strict=True)]
    if "date" in dosing.columns:
        problems += _iso_dates(dosing, "date", locator)
    if "amount" in dosing.columns:
        amount_text = _text(dosing["amount"]).str.strip()
        amount = pd.to_numeric(amount_text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = amount_text.notna().to_numpy(bool) & ~(np.isfinite(amount) & (amount >= 0) & (amount < MAX_DOSE_AMOUNT))
        problems += [locator.problem(p, "amount", amount_text.iloc[p], f"a number ≥ 0 and < {MAX_DOSE_AMOUNT:,}",
                                     "is not a dose amount") for p in np.flatnonzero(bad)]
    problems += _control_characters(dosing, ["compound", *DOSING_NOTE_COLUMNS], locator)
    if "unit" in dosing.columns:
        unit = _text(dosing["unit"])
        bad = (unit.notna() & ~unit.isin(DOSE_UNITS)).to_numpy(bool)
        problems += [locator.problem(p, "unit", unit.iloc[p], ", ".join(DOSE_UNITS), "is not a dose unit")
                     for p in np.flatnonzero(bad)]
    if "started_at" in dosing.columns or "ended_at" in dosing.columns:
        problems += _session_times(dosing, locator)
    if "present" in dosing.columns:
        problems += _present(dosing, locator)
    problems += _long_text(dosing, DOSING_NOTE_COLUMNS, locator, MAX_NOTE_LENGTH)
    return problems
