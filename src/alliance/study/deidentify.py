"""De-identification of a study: identifier columns dropped, each participant's dates shifted.

Dates are shifted per participant by a whole number of days that only the data holder knows, the
usual "date shifting" of de-identified clinical data: every date of one participant moves by the
same amount, so intervals between a participant's own dates (days from dosing session to
follow-up) are exactly kept, while the calendar dates no longer point to a person. The offsets
are chosen and kept secret by the caller (the web app keeps them in its database so that every
export of a participant is shifted the same way).

Shifted are the contract's date columns: ``participants.enrolled_on``, ``responses.administered_at``
``dosing_sessions.date``, ``started_at`` and ``ended_at`` (when written as date-times; a time of
day alone, ``09:30``, is on the shifted ``date`` and stays as it is), and the dates of the safety
tables (``adverse_events.onset`` and ``resolved_on``, ``vital_signs.measured_at``,
``concomitant_medications.start`` and ``stop``). Participant columns the protocol lists as
``identifiers`` are dropped, and so is the free text of the dosing day (``rescue_medication``,
``setting_notes``, ``music_notes``: it may name people or places)
(:meth:`alliance.study.Study.deidentified`); a date kept among the covariates is not shifted, so
a protocol lists such a column (e.g. ``date_of_birth``) as an identifier.

References
----------
Hripcsak G, Mirhaji P, Low AF, Malin BA (2016). Preserving temporal relations in clinical data
while maintaining privacy. J Am Med Inform Assoc 23(6):1040-1045.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta

import pandas as pd

from .errors import DataProblem, StudyDataError
from .tidy import Study
from .validation import TIME_OF_DAY_PATTERN


def shift_iso_text(text: str, days: int) -> str:
    """Shift an ISO-8601 date or date-time written as text by whole days, keeping its form.

    Parameters
    ----------
    text : str
        ``2024-03-01`` or ``2024-03-01T14:30:00+01:00`` (the time and offset are kept as written).
    days : int

    Returns
    -------
    str

    Examples
    --------
    >>> shift_iso_text("2024-02-27T09:15:00", 3)
    '2024-03-01T09:15:00'
    """
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        # Another ISO-8601 spelling (e.g. 20240301): read it whole and write the extended form.
        moment = pd.Timestamp(text) + pd.Timedelta(days=days)
        return moment.date().isoformat() if len(text) <= 8 else moment.isoformat()
    return (day + timedelta(days=days)).isoformat() + text[10:]


def _shift_column(frame: pd.DataFrame, column: str, offsets: Mapping[str, int]) -> pd.Series:
    values = frame[column]
    shifted = [None if pd.isna(v) else str(v) if TIME_OF_DAY_PATTERN.fullmatch(str(v))
               else shift_iso_text(str(v), int(offsets[str(pid)]))
               for pid, v in zip(frame["participant_id"], values, strict=True)]
    return pd.Series(shifted, index=frame.index, dtype="string")


def shift_dates(study: Study, offsets: Mapping[str, int]) -> Study:
    """A copy of the study without identifier columns and with every participant's dates shifted.

    Parameters
    ----------
    study : Study
    offsets : mapping of str to int
        Participant id → days to add to each of that participant's dates (negative moves them
        earlier). Every participant of the study needs one.

    Returns
    -------
    Study
        Identifier columns and the dosing day's notes dropped (:meth:`Study.deidentified`); the
        date columns of the module docstring shifted.

    Raises
    ------
    StudyDataError
        When a participant has no offset.
    """
    missing = [pid for pid in study.participant_ids if pid not in offsets]
    if missing:
        raise StudyDataError([DataProblem("participants", None, "participant_id", pid, "an offset for every participant",
                                          "has no date shift") for pid in missing], "cannot shift dates")
    out = study.deidentified()
    participants = out.participants
    if "enrolled_on" in participants.columns:
        participants = participants.copy()
        participants["enrolled_on"] = _shift_column(participants, "enrolled_on", offsets)
    responses = out.responses.copy()
    if "administered_at" in responses.columns:
        responses["administered_at"] = _shift_column(responses, "administered_at", offsets)
    shifted = {}
    for attribute, columns in (("dosing_sessions", ("date", "started_at", "ended_at")),
                               ("adverse_events", ("onset", "resolved_on")),
                               ("vital_signs", ("measured_at",)), ("concomitant_medications", ("start", "stop"))):
        frame = getattr(out, attribute)
        if frame is not None:
            frame = frame.copy()
            for column in columns:
                if column in frame.columns:
                    frame[column] = _shift_column(frame, column, offsets)
        shifted[attribute] = frame
    return replace(out, participants=participants, responses=responses, **shifted)
