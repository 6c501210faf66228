"""Adverse events: the ``adverse_events.csv`` table of the tidy contract, and its checks.

One row per adverse event (``docs/data.md``, "Adverse events"):

=================  ==========================================================================
column             allowed
=================  ==========================================================================
``participant_id`` a participant of ``participants.csv``
``ae_id``          the event's id, unique in the study (e.g. ``AE-001``)
``term``           what happened, in words (a site's coding dictionary term goes in ``code``)
``onset``          ISO-8601 date (or date-time) the event began
``resolved_on``    ISO-8601 date it resolved; empty while ongoing; not before ``onset``
``severity``       CTCAE grade 1-5 (1 mild, 2 moderate, 3 severe, 4 life-threatening, 5 death)
``serious``        yes / no
``seriousness``    ``;``-separated criteria of a serious event: :data:`SERIOUSNESS_CRITERIA`
``relatedness``    to the study treatment: :data:`RELATEDNESS`
``expected``       yes / no (listed in the investigator's brochure)
``action``         taken with the study treatment: :data:`ACTIONS`
``outcome``        :data:`OUTCOMES`
``code``           optional: the term's code in the site's dictionary (e.g. MedDRA)
=================  ==========================================================================

Rules beyond the single cells, each refused with file, row, column, value and what is allowed: a
serious event names at least one seriousness criterion, and a non-serious one none; an event is not
resolved before its onset; grade 5 (death) goes with the outcome ``fatal`` and the criterion
``death``, and back; an ``ae_id`` appears once.

References
----------
Seriousness criteria: ICH E2A (1994), Clinical safety data management: definitions and standards
for expedited reporting, section II.B. Severity grades: National Cancer Institute (2017), Common
Terminology Criteria for Adverse Events (CTCAE) v5.0, "Grades". Outcome and action terms follow
CDISC SDTM's AEOUT and AEACN codelists (our lower-case spellings).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .errors import DataProblem
from .validation import (
    Locator,
    _control_characters,
    _duplicates,
    _empty,
    _ids,
    _iso_dates,
    _listed_participants,
    _table_columns,
    _text,
)

__all__ = [
    "ACTIONS", "ADVERSE_EVENT_COLUMNS", "OUTCOMES", "RELATEDNESS", "REQUIRED_ADVERSE_EVENT_COLUMNS",
    "SERIOUSNESS_CRITERIA", "check_adverse_events", "normalize_adverse_events",
]

ADVERSE_EVENT_COLUMNS = ("participant_id", "ae_id", "term", "onset", "resolved_on", "severity", "serious",
                         "seriousness", "relatedness", "expected", "action", "outcome", "code")
REQUIRED_ADVERSE_EVENT_COLUMNS = ("participant_id", "ae_id", "term", "onset", "severity", "serious")
SERIOUSNESS_CRITERIA = ("death", "life_threatening", "hospitalisation", "disability", "congenital_anomaly",
                        "important_medical_event")
"""ICH E2A: results in death, is life-threatening, requires or prolongs hospitalisation, results in
persistent or significant disability, is a congenital anomaly, or is another important medical event."""
RELATEDNESS = ("not_related", "unlikely", "possible", "probable", "definite")
ACTIONS = ("none", "session_interrupted", "dose_reduced", "treatment_withdrawn", "not_applicable", "unknown")
OUTCOMES = ("recovered", "recovering", "not_recovered", "recovered_with_sequelae", "fatal", "unknown")
_YES = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}


def normalize_adverse_events(events: pd.DataFrame) -> pd.DataFrame:
    """The table with contract dtypes: text as ``string``, ``severity`` Int64, yes/no as ``boolean``.

    A column that does not convert (a grade ``"severe"``) is kept as text, for
    :func:`check_adverse_events` to name.
    """
    out = events.copy()
    for column in out.columns:
        text = _text(out[column])
        if column == "severity":
            numbers = pd.to_numeric(text.str.strip(), errors="coerce")
            whole = numbers.notna().sum() == text.notna().sum() and (numbers.dropna() % 1 == 0).all()
            out[column] = numbers.astype("Int64") if whole else text
        elif column in ("serious", "expected"):
            mapped = text.str.strip().str.lower().map(_YES)
            out[column] = mapped.astype("boolean") if mapped.notna().sum() == text.notna().sum() else text
        else:
            out[column] = text
    ordered = [c for c in ADVERSE_EVENT_COLUMNS if c in out.columns]
    return out[ordered + [c for c in out.columns if c not in ADVERSE_EVENT_COLUMNS]].reset_index(drop=True)


def check_adverse_events(events: pd.DataFrame, participant_ids: Iterable[str] | None,
                         locator: Locator | None = None,
                         participants_file: str = "participants.csv") -> list[DataProblem]:
    """Check ``adverse_events.csv`` (columns and rules: the module docstring).

    Parameters
    ----------
    events : DataFrame
    participant_ids : iterable of str, optional
        The participants of the participants table (``None``: only the id's form is checked).
    locator : Locator, optional
        Where the rows came from (default ``adverse_events.csv``, rows as CSV lines).
    participants_file : str
        Named in the message about an unlisted participant.

    Returns
    -------
    list of DataProblem
        Every problem found, each with file, row, column, value, what is allowed and why.
    """
    locator = locator or Locator("adverse_events.csv")
    problems = _table_columns(events, REQUIRED_ADVERSE_EVENT_COLUMNS, ADVERSE_EVENT_COLUMNS, locator.file, "adverse events")
    if any(p.reason == "required columns are missing" for p in problems):
        return problems
    for column, what in (("participant_id", "a participant id"), ("ae_id", "an adverse event id"),
                         ("term", "the event in words"), ("onset", "the date the event began")):
        problems += _empty(events, column, locator, what)
    problems += _listed_participants(events, participant_ids, locator, participants_file)
    problems += _ids(events, "ae_id", locator, "adverse event id")
    ae_id = _text(events["ae_id"])
    repeated, first = _duplicates(pd.DataFrame({"ae_id": ae_id}).dropna())
    kept = ae_id.dropna().index.to_numpy()
    problems += [locator.problem(int(kept[p]), "ae_id", ae_id.iloc[int(kept[p])], "each ae_id once in the study",
                                 f"appears twice (also on row {locator.row(int(kept[f]))})")
                 for p, f in zip(repeated, first, strict=True)]

    problems += _iso_dates(events, "onset", locator)
    onset = pd.to_datetime(_text(events["onset"]), format="ISO8601", errors="coerce", utc=True)
    if "resolved_on" in events.columns:
        problems += _iso_dates(events, "resolved_on", locator)
        resolved = pd.to_datetime(_text(events["resolved_on"]), format="ISO8601", errors="coerce", utc=True)
        # a date-only resolution on the day of a timed onset is not "before" it
        early = (resolved.dt.normalize() < onset.dt.normalize()).fillna(False).to_numpy(bool)
        problems += [locator.problem(p, "resolved_on", _text(events["resolved_on"]).iloc[p],
                                     f"a date on or after the onset ({_text(events['onset']).iloc[p]})",
                                     "is before the event's onset") for p in np.flatnonzero(early)]

    severity_text = _text(events["severity"]).str.strip()
    severity = pd.to_numeric(severity_text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~(np.isin(severity, [1, 2, 3, 4, 5]))
    problems += [locator.problem(p, "severity", severity_text.iloc[p],
                                 "a CTCAE grade 1-5 (1 mild, 2 moderate, 3 severe, 4 life-threatening, 5 death)",
                                 "is empty" if pd.isna(severity_text.iloc[p]) else "is not a CTCAE grade")
                 for p in np.flatnonzero(bad)]

    serious = _yes_no(events, "serious", locator, problems, required=True)
    if "expected" in events.columns:
        _yes_no(events, "expected", locator, problems, required=False)
    criteria = [set() for _ in range(len(events))]
    misspelt = [False] * len(events)  # told once: as an unknown criterion, not also as "empty"
    if "seriousness" in events.columns:
        text = _text(events["seriousness"])
        for p, cell in enumerate(text):
            if pd.isna(cell) or not str(cell).strip():
                continue
            named = [c.strip() for c in str(cell).split(";") if c.strip()]
            wrong = [c for c in named if c not in SERIOUSNESS_CRITERIA]
            if wrong:
                problems.append(locator.problem(p, "seriousness", cell, "; ".join(SERIOUSNESS_CRITERIA) +
                                                " (;-separated)", f"names {', '.join(map(repr, wrong))}, "
                                                "not a seriousness criterion of ICH E2A"))
            criteria[p] = set(named) - set(wrong)
            misspelt[p] = bool(wrong)
    for p, is_serious in enumerate(serious):
        if is_serious is True and not criteria[p] and not misspelt[p]:
            problems.append(locator.problem(p, "seriousness", None, "at least one of " + ", ".join(SERIOUSNESS_CRITERIA),
                                            "is empty for a serious event (serious = yes)"))
        elif is_serious is False and criteria[p]:
            problems.append(locator.problem(p, "serious", _text(events["serious"]).iloc[p],
                                            "yes (the row names seriousness criteria) or no criteria",
                                            "is no, but seriousness names " + ", ".join(sorted(criteria[p]))))

    for column, allowed in (("relatedness", RELATEDNESS), ("action", ACTIONS), ("outcome", OUTCOMES)):
        if column in events.columns:
            values = _text(events[column]).str.strip()
            wrong = (values.notna() & ~values.isin(allowed)).to_numpy(bool)
            problems += [locator.problem(p, column, values.iloc[p], ", ".join(allowed), f"is not an allowed {column}")
                         for p in np.flatnonzero(wrong)]
    outcome = _text(events["outcome"]).str.strip() if "outcome" in events.columns else pd.Series(pd.NA, index=events.index)
    for p in range(len(events)):
        grade5, fatal = bool(severity[p] == 5), isinstance(outcome.iloc[p], str) and outcome.iloc[p] == "fatal"
        if grade5 and not fatal:
            problems.append(locator.problem(p, "outcome", outcome.iloc[p], "fatal (grade 5 is death; CTCAE v5.0)",
                                            "does not match severity 5"))
        elif fatal and not grade5 and not np.isnan(severity[p]):
            problems.append(locator.problem(p, "severity", severity_text.iloc[p], "5 (outcome fatal)",
                                            "does not match the outcome fatal"))
        if (grade5 or fatal) and serious[p] is True and "death" not in criteria[p]:
            problems.append(locator.problem(p, "seriousness", _text(events["seriousness"]).iloc[p]
                                            if "seriousness" in events.columns else None,
                                            "criteria including death", "does not name death for a fatal event"))
        elif (grade5 or fatal) and serious[p] is False:
            problems.append(locator.problem(p, "serious", _text(events["serious"]).iloc[p], "yes (a fatal event "
                                            "is serious; ICH E2A)", "is no for a fatal event"))
    problems += _control_characters(events, ["term", "code"], locator)
    return problems


def _yes_no(events, column, locator, problems, required) -> list:
    text = _text(events[column])
    values = []
    for p, cell in enumerate(text):
        if pd.isna(cell) or not str(cell).strip():
            if required:
                problems.append(locator.problem(p, column, None, "yes or no", "is empty"))
            values.append(None)
            continue
        answer = _YES.get(str(cell).strip().lower())
        if answer is None:
            problems.append(locator.problem(p, column, cell, "yes or no", "is not yes or no"))
        values.append(answer)
    return values
