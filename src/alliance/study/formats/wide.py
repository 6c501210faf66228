"""Wide CSV: one row per participant × timepoint, one column per item.

Columns: ``participant_id``, ``timepoint``, then for each instrument of the protocol
``<instrument>_rater`` and ``<instrument>_administered_at`` (only when the study has them) and the
item columns (``wai_sr_1`` … ``wai_sr_12``). An empty item cell is an unanswered item. This is
the shape of a spreadsheet filled in by hand and of many statistics packages' input; it holds the
same information as the tidy responses as long as each administration has one rater and one
administration time (an export refuses a study where they differ within one administration).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.protocol import Protocol, default_protocol

from ..administrations import refuse_facilitator_rated
from ..errors import DataProblem, StudyDataError
from ..io import read_table, write_table
from ..tidy import Study, check_study, sort_responses
from ..validation import RESPONSE_COLUMNS, Locator

KEY_COLUMNS = ("participant_id", "timepoint")
_PER_ADMINISTRATION = ("rater", "administered_at")


def wide_from_responses(responses: pd.DataFrame, protocol: Protocol, participant_ids=None) -> pd.DataFrame:
    """Tidy responses → wide table.

    Parameters
    ----------
    responses : DataFrame
        Valid tidy responses.
    protocol : Protocol
        Gives the column order (every item of every protocol instrument) and the row order.
    participant_ids : sequence of str, optional
        Row order of participants (default: order of first appearance).

    Returns
    -------
    DataFrame
        One row per participant × timepoint with any answer; float item columns.

    Raises
    ------
    StudyDataError
        When an administration has more than one rater or administration time, or the responses
        hold a facilitator-rated instrument (one administration per facilitator).
    """
    refuse_facilitator_rated(responses, "a wide CSV", "one row per participant and timepoint")
    responses = sort_responses(responses, protocol, participant_ids)
    keys = responses[list(KEY_COLUMNS)].drop_duplicates().reset_index(drop=True)
    row_of = pd.MultiIndex.from_frame(keys).get_indexer(pd.MultiIndex.from_frame(responses[list(KEY_COLUMNS)]))
    items = [item for i in protocol.instruments for item in bank.get(i).item_ids]
    column_of = pd.Categorical(responses["item"], categories=items).codes
    matrix = np.full((len(keys), len(items)), np.nan)
    matrix[row_of, column_of] = responses["value"].to_numpy(dtype=float, na_value=np.nan)

    columns: dict[str, object] = {c: keys[c] for c in KEY_COLUMNS}
    problems = []
    offset = 0
    for instrument_id in protocol.instruments:
        inst = bank.get(instrument_id)
        mine = (responses["instrument"] == instrument_id).to_numpy(bool)
        for field in _PER_ADMINISTRATION:
            values = responses.loc[mine, field]
            if values.isna().all():
                continue
            per_row = pd.DataFrame({"row": row_of[mine], "value": values.to_numpy()})
            distinct = per_row.drop_duplicates()
            clash = distinct["row"].duplicated(keep=False)
            for row in pd.unique(distinct.loc[clash, "row"]):
                problems.append(DataProblem(
                    "responses", None, field, sorted(map(str, distinct.loc[distinct["row"] == row, "value"].dropna())),
                    f"one {field} per administration",
                    f"differs within the {instrument_id} administration of participant "
                    f"{keys.at[row, 'participant_id']!r} at {keys.at[row, 'timepoint']!r}"))
            column = pd.Series(pd.NA, index=keys.index, dtype="string")
            first = per_row.drop_duplicates("row")
            column.iloc[first["row"].to_numpy()] = first["value"].to_numpy()
            columns[f"{instrument_id}_{field}"] = column
        for j, item_id in enumerate(inst.item_ids):
            columns[item_id] = matrix[:, offset + j]
        offset += len(inst.items)
    if problems:
        raise StudyDataError(problems, "the wide format holds one rater and one administration time per "
                                       "instrument and timepoint")
    return pd.DataFrame(columns)


def responses_from_wide(wide: pd.DataFrame, protocol: Protocol, file: str = "wide.csv",
                        lines: np.ndarray | None = None) -> tuple[pd.DataFrame, Locator, list[DataProblem]]:
    """Wide table → tidy responses, with where each response came from.

    Parameters
    ----------
    wide : DataFrame
        As read by :func:`alliance.study.read_csv_text` (text cells) or numbers.
    protocol : Protocol
    file : str
        The file name for messages.
    lines : ndarray of int, optional
        The file's line number of each row (:func:`alliance.study.io.read_csv_lines`); by default
        row position + 2.

    Returns
    -------
    responses : DataFrame
        One row per non-empty item cell (values not yet validated).
    locator : Locator
        The wide file's line number and item column of each response, for
        :func:`alliance.study.tidy.check_study`.
    problems : list of DataProblem
        Header problems: missing key columns, columns that are neither items of a bank
        instrument nor ``<instrument>_rater`` / ``<instrument>_administered_at``.
    """
    problems = []
    absent = [c for c in KEY_COLUMNS if c not in wide.columns]
    if absent:
        problems.append(DataProblem(file, 1, ", ".join(absent), None, "participant_id, timepoint, item columns",
                                    "required columns are missing"))
    instrument_of: dict[str, str] = {}
    for inst in bank.list_instruments():
        for item_id in inst.item_ids:
            instrument_of[item_id] = inst.id
    bank_ids = [inst.id for inst in bank.list_instruments()]
    item_columns = []
    per_administration: dict[tuple[str, str], str] = {}
    for column in wide.columns:
        name = str(column)
        if name in KEY_COLUMNS:
            continue
        if name in instrument_of:
            item_columns.append(name)
            continue
        owner = next((i for i in bank_ids for f in _PER_ADMINISTRATION if name == f"{i}_{f}"), None)
        if owner is not None:
            per_administration[(owner, name[len(owner) + 1:])] = name
            continue
        prefix = next((i for i in protocol.instruments if name.startswith(f"{i}_") and name[len(i) + 1:].isdigit()),
                      None)
        if prefix is not None:
            inst = bank.get(prefix)
            allowed, reason = f"{inst.item_ids[0]} … {inst.item_ids[-1]}", f"is not an item of {inst.id}"
        else:
            allowed = ("participant_id, timepoint, item columns (e.g. wai_sr_1), <instrument>_rater, "
                       "<instrument>_administered_at")
            reason = "is not a column of the wide format"
        problems.append(DataProblem(file, 1, name, None, allowed, reason))
    if absent:
        return pd.DataFrame(columns=list(RESPONSE_COLUMNS)), Locator(file), problems

    n_rows, k = len(wide), len(item_columns)
    cells = wide[item_columns].astype("string")
    if k:
        present = cells.apply(lambda c: c.str.strip() != "").fillna(False).to_numpy(bool)
    else:
        present = np.zeros((n_rows, 0), dtype=bool)
    row_index, column_index = np.nonzero(present)
    columns = np.asarray(item_columns, dtype=object)[column_index]
    instruments = np.asarray([instrument_of[c] for c in item_columns], dtype=object)[column_index]
    responses = pd.DataFrame({
        "participant_id": wide["participant_id"].astype("string").to_numpy()[row_index],
        "timepoint": wide["timepoint"].astype("string").to_numpy()[row_index],
        "instrument": instruments,
        "item": columns,
        "value": cells.to_numpy(dtype=object)[row_index, column_index],
    })
    for field in _PER_ADMINISTRATION:
        values = np.full(len(responses), None, dtype=object)
        for (owner, name), column in per_administration.items():
            if name == field:
                mine = instruments == owner
                values[mine] = wide[column].astype("string").to_numpy(dtype=object)[row_index[mine]]
        responses[field] = pd.array(values, dtype="string")
    responses = responses.astype({c: "string" for c in responses.columns})
    line_of = np.asarray(lines, dtype=np.int64) if lines is not None else np.arange(len(wide), dtype=np.int64) + 2
    locator = Locator(file, rows=line_of[row_index], columns={"value": columns, "item": columns,
                                                              "instrument": columns})
    return responses, locator, problems


def study_from_wide(wide: pd.DataFrame, participants: pd.DataFrame, protocol: Protocol | None = None,
                    file: str = "wide.csv", participants_file: str = "participants.csv",
                    lines: np.ndarray | None = None) -> Study:
    """Build and validate a study from a wide table and a participants table.

    Parameters
    ----------
    wide : DataFrame
    participants : DataFrame
        The tidy participants table.
    protocol : Protocol, optional
        Default: the built-in Levin 2024 protocol.
    file, participants_file : str
        File names for messages.
    lines : ndarray of int, optional
        The wide file's line number of each row (default: position + 2).

    Returns
    -------
    Study

    Raises
    ------
    StudyDataError
        Every problem, located in the wide file's lines and item columns.
    """
    protocol = protocol or default_protocol()
    responses, locator, problems = responses_from_wide(wide, protocol, file, lines)
    if not problems:
        more, values = check_study(protocol, participants, responses, None,
                                   {"responses": locator, "participants": Locator(participants_file)})
        problems += more
    if problems:
        raise StudyDataError(problems, f"{len(problems)} {'problem' if len(problems) == 1 else 'problems'} "
                                       f"in {file}; nothing was imported")
    return Study(protocol=protocol, participants=participants, responses=responses.assign(value=values))


def read_wide_csv(path: str | Path, participants: str | Path | pd.DataFrame,
                  protocol: Protocol | None = None) -> Study:
    """Import a wide CSV file (edge function: reads the files, then :func:`study_from_wide`).

    Parameters
    ----------
    path : str or Path
        The wide CSV.
    participants : str, Path or DataFrame
        ``participants.csv`` or the participants table.
    protocol : Protocol, optional

    Returns
    -------
    Study
    """
    participants_file = "participants"
    if not isinstance(participants, pd.DataFrame):
        participants_file = str(participants)
        participants = read_table(Path(participants))
    table, lines = read_table(Path(path), lines=True)
    return study_from_wide(table, participants, protocol, str(path), participants_file, lines)


def write_wide_csv(study: Study, path: str | Path, *, spreadsheet: bool = True) -> None:
    """Export a study's responses as a wide CSV file.

    Parameters
    ----------
    study : Study
    path : str or Path
    spreadsheet : bool
        Neutralise text cells a spreadsheet would run as a formula (:func:`alliance.study.io.write_table`).
    """
    write_table(wide_from_responses(study.responses, study.protocol, study.participant_ids), Path(path),
                spreadsheet=spreadsheet)
