"""The tidy data contract: a :class:`Study` is a protocol plus three tables.

- ``participants``: one row per participant — ``participant_id``, ``arm``, optional ``site``,
  ``facilitator_ids`` (``;``-separated), covariates and identifier columns.
- ``responses``: one row per answered item — ``participant_id, timepoint, instrument, item,
  value, rater, administered_at``.
- ``dosing_sessions`` (optional): ``participant_id, session, date, compound, amount, unit`` and the
  dosing-day record ``started_at, ended_at, present, rescue_medication, setting_notes, music_notes``.
- ``adverse_events`` (optional): one row per adverse event (:mod:`alliance.study.adverse_events`).
- ``vital_signs`` (optional): one row per reading on a dosing day (:mod:`alliance.study.vital_signs`).
- ``concomitant_medications`` (optional): one row per medication taken (:mod:`alliance.study.medications`).

The contract is documented for users in ``docs/data.md``. Tables are kept with fixed dtypes
(text as pandas ``string``, ``value`` as float) so that a study read from files and the same
study built in memory compare equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.protocol import Protocol

from . import measures as _measures
from .adverse_events import check_adverse_events, normalize_adverse_events
from .errors import DataProblem, StudyDataError
from .medications import check_medications, normalize_medications
from .validation import (
    DOSING_COLUMNS,
    DOSING_NOTE_COLUMNS,
    RESPONSE_COLUMNS,
    Locator,
    check_dosing_sessions,
    check_participants,
    check_responses,
    is_text,
)
from .vital_signs import check_vital_signs, normalize_vital_signs

_PARTICIPANT_TEXT = ("participant_id", "arm", "site", "facilitator_ids", "enrolled_on")
_DOSING_TEXT = ("participant_id", "date", "compound", "unit")


def format_numbers(values: pd.Series) -> pd.Series:
    """Numbers as the shortest text that reads back to the same float (``3`` not ``3.0``).

    Parameters
    ----------
    values : Series
        Numeric.

    Returns
    -------
    Series of string
        Missing where the number is missing.
    """
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    text = pd.Series(numbers.astype(str), index=values.index, dtype="string")
    text = text.str.replace(r"\.0$", "", regex=True)
    return text.mask(np.isnan(numbers))


def format_number(value: float) -> str:
    """One number as :func:`format_numbers` writes it."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _as_text(series: pd.Series) -> pd.Series:
    if is_text(series):
        return series
    if pd.api.types.is_float_dtype(series) or pd.api.types.is_integer_dtype(series):
        return format_numbers(series)
    return series.astype("string")


def _as_number(series: pd.Series, keep_text: bool) -> pd.Series:
    """A covariate column as Int64 / float64 when every value is a number written plainly."""
    if pd.api.types.is_bool_dtype(series):
        return series
    if pd.api.types.is_numeric_dtype(series):
        numbers = series.astype(float)
    elif keep_text:
        return series.astype("string")
    else:
        text = series.astype("string")
        numbers = pd.to_numeric(text, errors="coerce")
        # Only a lossless reading: "00123" (an id) or "1.50" stay text.
        if (numbers.isna() != text.isna()).any() or not (format_numbers(numbers) == text).fillna(True).all():
            return text
        numbers = numbers.astype(float)
    values = numbers.to_numpy(dtype=float, na_value=np.nan)
    finite = values[~np.isnan(values)]
    if np.all(np.mod(finite, 1) == 0) and np.all(np.abs(finite) < 2**53):
        return pd.Series(pd.array(values, dtype="Int64"), index=series.index, name=series.name)
    return pd.Series(values, index=series.index, name=series.name)


def normalize_participants(participants: pd.DataFrame, identifiers: tuple[str, ...] = ()) -> pd.DataFrame:
    """The participants table with contract dtypes.

    ``participant_id``, ``arm``, ``site``, ``facilitator_ids`` and identifier columns are text;
    a covariate is a number (``Int64`` when all values are whole, else float) when every value
    is written as a plain number, and text otherwise.
    """
    out = participants.copy()
    for column in out.columns:
        if column in _PARTICIPANT_TEXT or column in identifiers:
            out[column] = _as_text(out[column])
        else:
            out[column] = _as_number(out[column], keep_text=False)
    if "enrolled_on" in out.columns:
        # a date is the date: spaces around it are not kept (storage keeps the date, and the study
        # read must be the study stored); any other character is left for validation to refuse
        out["enrolled_on"] = out["enrolled_on"].str.strip(" ").replace("", pd.NA)
    return out.reset_index(drop=True)


def normalize_responses(responses: pd.DataFrame) -> pd.DataFrame:
    """The responses table with contract columns and dtypes (``value`` left as text if not numeric)."""
    out = responses.copy()
    for column in ("rater", "administered_at"):
        if column not in out.columns:
            out[column] = pd.Series(pd.NA, index=out.index, dtype="string")
    for column in out.columns:
        if column == "value":
            kind = pd.api.types.infer_dtype(out[column], skipna=True)
            if kind in ("empty", "floating", "integer", "mixed-integer-float", "decimal"):
                out[column] = out[column].to_numpy(dtype=float, na_value=np.nan)
            else:
                out[column] = out[column].astype("string")
        else:
            out[column] = _as_text(out[column])
    ordered = [c for c in RESPONSE_COLUMNS if c in out.columns] + [c for c in out.columns if c not in RESPONSE_COLUMNS]
    return out[ordered].reset_index(drop=True)


def normalize_dosing_sessions(dosing: pd.DataFrame) -> pd.DataFrame:
    """The dosing sessions table with contract dtypes (``session`` Int64, ``amount`` float, the rest text)."""
    out = dosing.copy()
    for column in out.columns:
        if column == "session":
            numbers = pd.to_numeric(_as_text(out[column]), errors="coerce")
            if numbers.notna().sum() == out[column].notna().sum() and (numbers.dropna() % 1 == 0).all():
                out[column] = numbers.astype("Int64")
            else:
                out[column] = _as_text(out[column])
        elif column == "amount":
            numbers = pd.to_numeric(_as_text(out[column]), errors="coerce")
            out[column] = numbers.astype(float) if numbers.notna().sum() == out[column].notna().sum() \
                else _as_text(out[column])
        elif column in ("started_at", "ended_at"):
            # a time is the time: spaces around it are not kept (as enrolled_on), other characters
            # are left for validation to refuse
            out[column] = _as_text(out[column]).str.strip(" ").replace("", pd.NA)
        else:
            out[column] = _as_text(out[column])
    ordered = [c for c in DOSING_COLUMNS if c in out.columns] + [c for c in out.columns if c not in DOSING_COLUMNS]
    return out[ordered].reset_index(drop=True)


def sort_responses(responses: pd.DataFrame, protocol: Protocol, participant_ids=None) -> pd.DataFrame:
    """Responses in canonical order: participant, timepoint (protocol order), instrument, rater, item number.

    The rater is a sort key only when the protocol has a facilitator-rated instrument (its
    administrations are one per facilitator, in order of facilitator id).

    Parameters
    ----------
    responses : DataFrame
    protocol : Protocol
    participant_ids : sequence of str, optional
        Participant order (default: order of first appearance).

    Returns
    -------
    DataFrame
        The same rows, re-ordered, with a fresh index.
    """
    if participant_ids is None:
        participant_ids = pd.unique(responses["participant_id"])
    items = [item for i in protocol.instruments for item in bank.get(i).item_ids]
    orders = [("participant_id", list(participant_ids)), ("timepoint", list(protocol.timepoint_ids)),
              ("instrument", list(protocol.instruments))]
    if "rater" in responses.columns and any(bank.get(i).rater == "facilitator" for i in protocol.instruments):
        # Each facilitator's rating is its own administration: keep its items together.
        orders.append(("rater", sorted(responses["rater"].dropna().astype(str).unique())))
    return _measures._sort(responses, orders + [("item", items)])


def check_study(protocol: Protocol, participants: pd.DataFrame, responses: pd.DataFrame,
                dosing_sessions: pd.DataFrame | None = None,
                locators: Mapping[str, Locator] | None = None,
                adverse_events: pd.DataFrame | None = None, vital_signs: pd.DataFrame | None = None,
                concomitant_medications: pd.DataFrame | None = None) -> tuple[list[DataProblem], np.ndarray]:
    """Check the three tables together.

    Parameters
    ----------
    protocol : Protocol
    participants, responses : DataFrame
    dosing_sessions : DataFrame, optional
    locators : mapping, optional
        ``"participants"``, ``"responses"``, ``"dosing_sessions"``, ``"adverse_events"``,
        ``"vital_signs"``, ``"concomitant_medications"`` →
        :class:`Locator` (default: the contract file names, rows numbered as the CSV lines
        :func:`alliance.study.save` writes).
    adverse_events, vital_signs, concomitant_medications : DataFrame, optional

    Returns
    -------
    problems : list of DataProblem
    values : ndarray of float
        The responses' values as numbers.
    """
    locators = dict(locators or {})
    participants_locator = locators.get("participants", Locator("participants.csv"))
    problems = check_participants(protocol, participants, participants_locator)
    ids = (participants["participant_id"].dropna().astype(str).tolist()
           if "participant_id" in participants.columns else None)
    # Without a facilitator_ids column no rater of a facilitator-rated form can be checked, so none is accepted.
    response_problems, values = check_responses(protocol, responses, ids,
                                                locators.get("responses", Locator("responses.csv")),
                                                participants_locator.file, facilitator_map(participants) or {})
    problems += response_problems
    if dosing_sessions is not None:
        problems += check_dosing_sessions(protocol, dosing_sessions, ids,
                                          locators.get("dosing_sessions", Locator("dosing_sessions.csv")),
                                          participants_locator.file)
    if adverse_events is not None:
        problems += check_adverse_events(adverse_events, ids,
                                         locators.get("adverse_events", Locator("adverse_events.csv")),
                                         participants_locator.file)
    if vital_signs is not None:
        problems += check_vital_signs(protocol, vital_signs, ids,
                                      locators.get("vital_signs", Locator("vital_signs.csv")),
                                      participants_locator.file)
    if concomitant_medications is not None:
        problems += check_medications(concomitant_medications, ids,
                                      locators.get("concomitant_medications",
                                                   Locator("concomitant_medications.csv")),
                                      participants_locator.file)
    return problems, values


def facilitator_map(participants: pd.DataFrame) -> dict[str, list[str]] | None:
    """Participant id → facilitator ids (from ``facilitator_ids``, ``;``-separated, in order).

    ``None`` when the table has no ``facilitator_ids`` column (nothing to check a rater against).
    """
    if "facilitator_ids" not in participants.columns or "participant_id" not in participants.columns:
        return None
    out = {}
    for participant_id, ids in zip(participants["participant_id"].astype("string"),
                                   participants["facilitator_ids"].astype("string"), strict=True):
        if pd.isna(participant_id):
            continue
        out[str(participant_id)] = [] if pd.isna(ids) else [f.strip() for f in str(ids).split(";") if f.strip()]
    return out


@dataclass(eq=False)
class Study:
    """A protocol and its tidy tables (the contract: ``docs/data.md``).

    Parameters
    ----------
    protocol : Protocol
    participants : DataFrame
        ``participant_id``, ``arm``, optional ``site``, ``facilitator_ids``, covariates.
    responses : DataFrame
        ``participant_id, timepoint, instrument, item, value, rater, administered_at``; the last
        two may be left out (missing).
    dosing_sessions : DataFrame, optional
        ``participant_id, session, date, compound, amount, unit`` and, optionally, the dosing-day
        record (:data:`~alliance.study.validation.DOSING_DAY_COLUMNS`).
    adverse_events : DataFrame, optional
        One row per adverse event (:mod:`alliance.study.adverse_events`).
    vital_signs : DataFrame, optional
        One row per reading on a dosing day (:mod:`alliance.study.vital_signs`).
    concomitant_medications : DataFrame, optional
        One row per medication taken (:mod:`alliance.study.medications`).

    Notes
    -----
    Building a ``Study`` normalizes dtypes but does not validate; :func:`alliance.study.load`
    validates before returning, and :meth:`validate` checks a study built in memory.
    """

    protocol: Protocol
    participants: pd.DataFrame
    responses: pd.DataFrame
    dosing_sessions: pd.DataFrame | None = None
    adverse_events: pd.DataFrame | None = None
    vital_signs: pd.DataFrame | None = None
    concomitant_medications: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        self.participants = normalize_participants(self.participants, self.protocol.identifiers)
        self.responses = normalize_responses(self.responses)
        if self.dosing_sessions is not None:
            self.dosing_sessions = normalize_dosing_sessions(self.dosing_sessions)
        if self.adverse_events is not None:
            self.adverse_events = normalize_adverse_events(self.adverse_events)
        if self.vital_signs is not None:
            self.vital_signs = normalize_vital_signs(self.vital_signs)
        if self.concomitant_medications is not None:
            self.concomitant_medications = normalize_medications(self.concomitant_medications)

    def validate(self) -> None:
        """Check the tables against the protocol and the instrument bank.

        Raises
        ------
        StudyDataError
            Listing every problem with file, row (the line :func:`alliance.study.save` would
            write it on), column, value and the allowed values.
        """
        problems, _ = check_study(self.protocol, self.participants, self.responses, self.dosing_sessions,
                                  adverse_events=self.adverse_events, vital_signs=self.vital_signs,
                                  concomitant_medications=self.concomitant_medications)
        if problems:
            raise StudyDataError(problems)

    def _numeric_responses(self) -> pd.DataFrame:
        if self.responses["value"].dtype == float:
            return self.responses
        problems, values = check_study(self.protocol, self.participants, self.responses, self.dosing_sessions)
        if problems:
            raise StudyDataError(problems)
        return self.responses.assign(value=values)

    @property
    def participant_ids(self) -> list[str]:
        return self.participants["participant_id"].astype(str).tolist()

    @property
    def participants_without_answers(self) -> list[str]:
        """Ids of enrolled participants with no answer at all (in no analysis), sorted."""
        answered = {str(p) for p in self.responses["participant_id"].unique()}
        return sorted(set(self.participant_ids) - answered)

    def scores(self) -> pd.DataFrame:
        """Scale scores of every administration (see :func:`alliance.study.measures.scores`).

        Returns
        -------
        DataFrame
            One row per participant × timepoint × instrument (× facilitator for a
            facilitator-rated instrument): ``participant_id, timepoint, instrument``, ``rater``
            when the protocol has a facilitator-rated instrument, and the output columns of
            :func:`alliance.instruments.score`.
        """
        return _measures.scores(self.protocol, self._numeric_responses(), self.participant_ids)

    def measures(self, wide: bool = False) -> pd.DataFrame:
        """Scores as measures ``INSTRUMENT.SCALE@TIMEPOINT``, derived timepoints included.

        Parameters
        ----------
        wide : bool
            False: long ``participant_id, measure, value`` (non-missing scores only). True: one
            row per participant (index ``participant_id``), one column per protocol measure.

        Returns
        -------
        DataFrame
        """
        return _measures.measures(self.protocol, self._numeric_responses(), self.participant_ids, wide=wide)

    def deidentified(self) -> Study:
        """A copy without the participant columns the protocol lists as ``identifiers``, nor the dosing day's notes.

        The free text of the dosing-day record (``rescue_medication``, ``setting_notes``,
        ``music_notes``: :data:`~alliance.study.validation.DOSING_NOTE_COLUMNS`) is left out too:
        notes written on the day may name people, places or events that point to a participant,
        and no rule can tell which do. ``present`` (staff ids) is kept, as ``facilitator_ids`` is.
        """
        drop = [c for c in self.protocol.identifiers if c in self.participants.columns]
        dosing = self.dosing_sessions
        if dosing is not None:
            dosing = dosing.drop(columns=[c for c in DOSING_NOTE_COLUMNS if c in dosing.columns])
        return replace(self, participants=self.participants.drop(columns=drop), dosing_sessions=dosing)
