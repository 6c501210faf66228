"""Reading and writing files. Everything else in ``alliance`` works on DataFrames in memory.

The tidy contract on disk (``docs/data.md``) is a directory::

    protocol.yaml          optional; the built-in Levin 2024 protocol when absent
    participants.csv       one row per participant
    responses.csv          one row per answered item
    dosing_sessions.csv    optional
    adverse_events.csv     optional
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from alliance.problems import utf8_problem
from alliance.protocol import default_protocol, load_protocol, write_protocol

from .csv_input import MAX_CSV_BYTES, scan_csv
from .errors import DataProblem, StudyDataError
from .tidy import Study, check_study, format_numbers
from .validation import Locator

PROTOCOL_FILE = "protocol.yaml"
PARTICIPANTS_FILE = "participants.csv"
RESPONSES_FILE = "responses.csv"
DOSING_FILE = "dosing_sessions.csv"
ADVERSE_EVENTS_FILE = "adverse_events.csv"
VITAL_SIGNS_FILE = "vital_signs.csv"
MEDICATIONS_FILE = "concomitant_medications.csv"


# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SPREADSHEET_MARK = "'"
MARKED_FORMULA_START = tuple(SPREADSHEET_MARK + c for c in FORMULA_START)
_PLAIN_NUMBER = r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"


def read_csv_text(path: str | Path) -> pd.DataFrame:
    """Read a CSV file with every cell as text, empty cells as missing.

    Cells are kept as text so that the code validating them can say exactly which cell is not a
    number, instead of pandas guessing a type for the whole column.

    Parameters
    ----------
    path : str or Path
        A UTF-8 (optionally with BOM) comma-separated file with a header line.

    Returns
    -------
    DataFrame
        String columns; an empty cell is ``<NA>``. A cell written as ``'=…`` (the mark
        :func:`write_table` puts before ``= + - @``, tab or carriage return) is read without the ``'``.

    Raises
    ------
    StudyDataError
        For a file that is not UTF-8, a header that names a column twice, or a row with more or
        fewer fields than the header (a file cut off), with the file and the row
        (:func:`alliance.study.csv_input.check_csv`; pandas would rename ``site`` to ``site.1``
        and pad a short row with missing cells).
    """
    return read_csv_lines(path)[0]


def read_csv_lines(path: str | Path) -> tuple[pd.DataFrame, np.ndarray | None]:
    """:func:`read_csv_text`, and the line number in the file of each row read.

    Returns
    -------
    frame : DataFrame
    lines : ndarray of int or None
        Line numbers (the header is line 1) of the rows, counting the blank lines pandas skips
        and the lines of quoted cells that span several; ``None`` for an empty file.
    """
    size = Path(path).stat().st_size
    if size > MAX_CSV_BYTES:  # refused before it is read into memory
        raise StudyDataError([DataProblem(str(path), None, None, None, f"at most {MAX_CSV_BYTES:,} bytes ({MAX_CSV_BYTES / 2**20:g} MiB)",
                                          f"is {size:,} bytes, larger than a study file can be")],
                             f"{path} is too large")
    data = Path(path).read_bytes()
    problems, lines = scan_csv(data, str(path))
    if problems:
        raise StudyDataError(problems, f"{path} cannot be read as a CSV table")
    frame = pd.read_csv(io.BytesIO(data), dtype="string", keep_default_na=False, na_values=[""],
                        encoding="utf-8-sig")
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in frame.columns:
        # Undo the mark write_table puts before a cell a spreadsheet would run as a formula.
        marked = frame[column].str.startswith(MARKED_FORMULA_START).fillna(False)
        if marked.any():
            frame.loc[marked, column] = frame.loc[marked, column].str.slice(1)
    if lines is not None and len(lines) != len(frame):
        lines = None  # pandas read the rows otherwise than counted: fall back to row positions
    return frame, lines


def read_table(path: Path, *, lines: bool = False, delimiter: str = ","):
    """:func:`read_csv_text`, with an unreadable file reported as a :class:`StudyDataError`.

    With ``lines``, the pair :func:`read_csv_lines` returns. ``delimiter`` is the one character
    between cells: ``,`` (the default, the checks of :func:`~alliance.study.csv_input.scan_csv`)
    or another REDCap's export offers (``;``, tab, ``|``, ``^``: :func:`read_delimited_lines`).
    """
    try:
        if delimiter != ",":
            table = read_delimited_lines(path, delimiter)
            return table if lines else table[0]
        return read_csv_lines(path) if lines else read_csv_text(path)
    except FileNotFoundError:
        raise StudyDataError([DataProblem(str(path), None, None, None, "", "the file does not exist")],
                             "a file of the study is missing") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise StudyDataError([DataProblem(str(path), None, None, None, "a UTF-8 CSV file with a header line",
                                          f"cannot be read as CSV ({error})")], "a file cannot be read") from None


def read_delimited_lines(path: str | Path, delimiter: str) -> tuple[pd.DataFrame, np.ndarray | None]:
    """:func:`read_csv_lines` for a file whose cells are separated by ``delimiter``, not a comma.

    The same checks and the same result: at most :data:`~alliance.study.csv_input.MAX_CSV_BYTES`,
    UTF-8 (a byte-order mark allowed), each column named once, every row as many fields as the
    header, quoted cells (RFC 4180 quoting, with ``delimiter`` in place of the comma) closed, blank
    lines skipped, and each row's line number. The file is parsed by the ``csv`` module:
    :func:`~alliance.study.csv_input.scan_csv` counts commas only, and these files are rare and
    small enough (REDCap exports) for a second, slower pass not to matter.
    """
    size = Path(path).stat().st_size
    if size > MAX_CSV_BYTES:
        raise StudyDataError([DataProblem(str(path), None, None, None, f"at most {MAX_CSV_BYTES:,} bytes ({MAX_CSV_BYTES / 2**20:g} MiB)",
                                          f"is {size:,} bytes, larger than a study file can be")],
                             f"{path} is too large")
    data = Path(path).read_bytes()
    not_utf8 = utf8_problem(data, str(path))
    if not_utf8 is not None:
        raise StudyDataError([not_utf8], f"{path} cannot be read as a CSV table")
    text = data.decode("utf-8-sig")
    named = {"\t": "tab", ";": "semicolon", "|": "pipe", "^": "caret"}.get(delimiter, repr(delimiter))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    starts: list[int] = []
    start = 1
    try:
        for row in reader:
            if row:  # a blank line, which pandas skips too
                rows.append(row)
                starts.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        closed = "unexpected end of data" not in str(error)
        raise StudyDataError([DataProblem(
            str(path), reader.line_num, None, None,
            f"{named}-separated cells, quoted (\"…\") when they hold a {named}, a quote or a line break",
            f"cannot be read as CSV ({error})" if closed else
            "opens a quoted cell that never closes: the file looks cut off")],
            f"{path} cannot be read as a CSV table") from None
    if not rows:
        raise pd.errors.EmptyDataError("No columns to parse from file")
    header = [name.strip() for name in rows[0]]
    problems = []
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in seen:
            problems.append(DataProblem(str(path), starts[0], name, name, "each column named once in the header",
                                        f"names a column twice (columns {seen[name]} and {position})"))
        seen.setdefault(name, position)
    for row, line in zip(rows[1:], starts[1:], strict=True):
        if len(row) != len(header) and len(problems) < 100:
            problems.append(DataProblem(str(path), line, None, None, f"{len(header)} {named}-separated fields on every row",
                                        f"has {len(row)} fields; the header has {len(header)}"))
    if problems:
        raise StudyDataError(problems, f"{path} cannot be read as a CSV table")
    frame = pd.DataFrame(rows[1:], columns=header, dtype="string") if len(rows) > 1 else \
        pd.DataFrame({name: pd.Series([], dtype="string") for name in header})
    frame = frame.replace("", pd.NA)
    for column in frame.columns:
        marked = frame[column].str.startswith(MARKED_FORMULA_START).fillna(False)
        if marked.any():
            frame.loc[marked, column] = frame.loc[marked, column].str.slice(1)
    return frame, np.asarray(starts[1:], dtype=np.int64)


def spreadsheet_safe(values: pd.Series) -> pd.Series:
    """Text cells a spreadsheet would run as a formula, with a leading ``'`` so it shows them as text.

    Parameters
    ----------
    values : Series
        A text column.

    Returns
    -------
    Series
        Cells starting with ``= + - @``, a tab or a carriage return get a leading ``'``; plain
        numbers written as text (``-3.5``) and missing cells are left as they are.

    Notes
    -----
    The neutralisation OWASP recommends for CSV files that may be opened in a spreadsheet.
    :func:`read_csv_text` removes the mark again, so a study written by :func:`save` reads back
    unchanged.

    References
    ----------
    OWASP Foundation. CSV Injection. https://owasp.org/www-community/attacks/CSV_Injection
    """
    text = values.astype("string")
    risky = text.str.startswith(FORMULA_START).fillna(False).to_numpy(bool)
    if not risky.any():
        return values
    # Only the few cells that start like a formula are matched against the number pattern.
    risky[risky] = ~text[risky].str.fullmatch(_PLAIN_NUMBER).fillna(False).to_numpy(bool)
    if not risky.any():
        return values
    out = values.astype(object).copy()
    out[risky] = SPREADSHEET_MARK + text[risky].astype(str)
    return out


def write_table(frame: pd.DataFrame, path: Path, *, spreadsheet: bool = True) -> None:
    """Write a table as UTF-8 CSV, numbers in their shortest exact form (``3``, ``0.1``).

    With ``spreadsheet`` (the default), text cells a spreadsheet would run as a formula are
    neutralised (:func:`spreadsheet_safe`); pass ``False`` for files only programs read.
    """
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_numeric_dtype(out[column]) and not pd.api.types.is_bool_dtype(out[column]):
            out[column] = format_numbers(out[column])
        elif spreadsheet:
            out[column] = spreadsheet_safe(out[column])
    out.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


def load(directory: str | Path) -> Study:
    """Read and validate a study directory in the tidy contract (``docs/data.md``).

    Parameters
    ----------
    directory : str or Path
        Holding ``participants.csv``, ``responses.csv``, optionally ``protocol.yaml`` (default:
        the built-in Levin 2024 protocol), ``dosing_sessions.csv``, ``adverse_events.csv``,
        ``vital_signs.csv`` and ``concomitant_medications.csv``.

    Returns
    -------
    Study
        Validated; ``responses.value`` is float.

    Raises
    ------
    StudyDataError
        Listing every problem found in any of the files, each with the file, the row (line
        number), the column, the value and the allowed values. ``ProtocolError`` (a
        ``StudyDataError``) for a bad ``protocol.yaml``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise StudyDataError([DataProblem(str(directory), None, None, None, "a directory of study files",
                                          "is not a directory")], "no study directory")
    protocol_path = directory / PROTOCOL_FILE
    protocol = load_protocol(protocol_path) if protocol_path.exists() else default_protocol()
    participants, participant_lines = read_table(directory / PARTICIPANTS_FILE, lines=True)
    responses, response_lines = read_table(directory / RESPONSES_FILE, lines=True)
    dosing_path = directory / DOSING_FILE
    dosing, dosing_lines = read_table(dosing_path, lines=True) if dosing_path.exists() else (None, None)
    events_path = directory / ADVERSE_EVENTS_FILE
    events, event_lines = read_table(events_path, lines=True) if events_path.exists() else (None, None)
    vitals_path = directory / VITAL_SIGNS_FILE
    vitals, vital_lines = read_table(vitals_path, lines=True) if vitals_path.exists() else (None, None)
    medications_path = directory / MEDICATIONS_FILE
    medications, medication_lines = (read_table(medications_path, lines=True) if medications_path.exists()
                                     else (None, None))
    # Messages name the line an editor shows, also after blank lines and multi-line cells.
    locators = {
        "participants": Locator(str(directory / PARTICIPANTS_FILE), rows=participant_lines),
        "responses": Locator(str(directory / RESPONSES_FILE), rows=response_lines),
        "dosing_sessions": Locator(str(dosing_path), rows=dosing_lines),
        "adverse_events": Locator(str(events_path), rows=event_lines),
        "vital_signs": Locator(str(vitals_path), rows=vital_lines),
        "concomitant_medications": Locator(str(medications_path), rows=medication_lines),
    }
    problems, values = check_study(protocol, participants, responses, dosing, locators, adverse_events=events,
                                   vital_signs=vitals, concomitant_medications=medications)
    if problems:
        raise StudyDataError(problems, f"{len(problems)} {'problem' if len(problems) == 1 else 'problems'} "
                                       f"in the study data in {directory}; nothing was loaded")
    for column in ("rater", "administered_at"):
        if column not in responses.columns:
            responses[column] = pd.Series(pd.NA, index=responses.index, dtype="string")
    return Study(protocol=protocol, participants=participants, responses=responses.assign(value=values),
                 dosing_sessions=dosing, adverse_events=events, vital_signs=vitals,
                 concomitant_medications=medications)


def save(study: Study, directory: str | Path, *, spreadsheet: bool = True) -> None:
    """Write a study as a tidy contract directory (``docs/data.md``).

    Parameters
    ----------
    study : Study
    directory : str or Path
        Created if needed. Writes ``protocol.yaml``, ``participants.csv``, ``responses.csv`` and,
        when the study has them, ``dosing_sessions.csv``, ``adverse_events.csv``, ``vital_signs.csv``
        and ``concomitant_medications.csv``; existing files of those names are replaced.
    spreadsheet : bool
        Neutralise text cells a spreadsheet would run as a formula (:func:`write_table`; :func:`load`
        reads them back unchanged either way).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_protocol(study.protocol, directory / PROTOCOL_FILE)
    write_table(study.participants, directory / PARTICIPANTS_FILE, spreadsheet=spreadsheet)
    write_table(study.responses, directory / RESPONSES_FILE, spreadsheet=spreadsheet)
    if study.dosing_sessions is not None:
        write_table(study.dosing_sessions, directory / DOSING_FILE, spreadsheet=spreadsheet)
    if study.adverse_events is not None:
        events = study.adverse_events.copy()
        for column in ("serious", "expected"):  # yes / no in the file, as the contract writes them
            if column in events.columns and pd.api.types.is_bool_dtype(events[column]):
                events[column] = events[column].map({True: "yes", False: "no"}).astype("string")
        write_table(events, directory / ADVERSE_EVENTS_FILE, spreadsheet=spreadsheet)
    if study.vital_signs is not None:
        write_table(study.vital_signs, directory / VITAL_SIGNS_FILE, spreadsheet=spreadsheet)
    if study.concomitant_medications is not None:
        write_table(study.concomitant_medications, directory / MEDICATIONS_FILE, spreadsheet=spreadsheet)


def file_hashes(directory: str | Path) -> dict[str, str]:
    """SHA-256 of each tidy-contract file in a study directory, for the provenance of results.

    Parameters
    ----------
    directory : str or Path

    Returns
    -------
    dict
        File name → hex digest, for the contract files that exist.
    """
    import hashlib

    directory = Path(directory)
    hashes = {}
    for name in (PROTOCOL_FILE, PARTICIPANTS_FILE, RESPONSES_FILE, DOSING_FILE, ADVERSE_EVENTS_FILE,
                 VITAL_SIGNS_FILE, MEDICATIONS_FILE):
        path = directory / name
        if path.is_file():
            hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes
