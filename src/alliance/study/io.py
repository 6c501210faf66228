"""Reading and writing files. Everything else in ``alliance`` works on DataFrames in memory.

The tidy contract on disk (``docs/data.md``) is a directory::

    protocol.yaml          optional; the built-in Levin 2024 protocol when absent
    participants.csv       one row per participant
    responses.csv          one row per answered item
    dosing_sessions.csv    optional
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alliance.protocol import default_protocol, load_protocol, write_protocol

from .errors import DataProblem, StudyDataError
from .tidy import Study, check_study, format_numbers
from .validation import Locator

PROTOCOL_FILE = "protocol.yaml"
PARTICIPANTS_FILE = "participants.csv"
RESPONSES_FILE = "responses.csv"
DOSING_FILE = "dosing_sessions.csv"


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
        String columns; an empty cell is ``<NA>``.
    """
    frame = pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def read_table(path: Path) -> pd.DataFrame:
    """:func:`read_csv_text`, with an unreadable file reported as a :class:`StudyDataError`."""
    try:
        return read_csv_text(path)
    except FileNotFoundError:
        raise StudyDataError([DataProblem(str(path), None, None, None, "", "the file does not exist")],
                             "a file of the study is missing") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise StudyDataError([DataProblem(str(path), None, None, None, "a UTF-8 CSV file with a header line",
                                          f"cannot be read as CSV ({error})")], "a file cannot be read") from None


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write a table as UTF-8 CSV, numbers in their shortest exact form (``3``, ``0.1``)."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_numeric_dtype(out[column]) and not pd.api.types.is_bool_dtype(out[column]):
            out[column] = format_numbers(out[column])
    out.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


def load(directory: str | Path) -> Study:
    """Read and validate a study directory in the tidy contract (``docs/data.md``).

    Parameters
    ----------
    directory : str or Path
        Holding ``participants.csv``, ``responses.csv``, optionally ``protocol.yaml`` (default:
        the built-in Levin 2024 protocol) and ``dosing_sessions.csv``.

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
    participants = read_table(directory / PARTICIPANTS_FILE)
    responses = read_table(directory / RESPONSES_FILE)
    dosing_path = directory / DOSING_FILE
    dosing = read_table(dosing_path) if dosing_path.exists() else None
    locators = {
        "participants": Locator(str(directory / PARTICIPANTS_FILE)),
        "responses": Locator(str(directory / RESPONSES_FILE)),
        "dosing_sessions": Locator(str(dosing_path)),
    }
    problems, values = check_study(protocol, participants, responses, dosing, locators)
    if problems:
        raise StudyDataError(problems, f"{len(problems)} {'problem' if len(problems) == 1 else 'problems'} "
                                       f"in the study data in {directory}; nothing was loaded")
    for column in ("rater", "administered_at"):
        if column not in responses.columns:
            responses[column] = pd.Series(pd.NA, index=responses.index, dtype="string")
    return Study(protocol=protocol, participants=participants, responses=responses.assign(value=values),
                 dosing_sessions=dosing)


def save(study: Study, directory: str | Path) -> None:
    """Write a study as a tidy contract directory (``docs/data.md``).

    Parameters
    ----------
    study : Study
    directory : str or Path
        Created if needed. Writes ``protocol.yaml``, ``participants.csv``, ``responses.csv`` and,
        when the study has them, ``dosing_sessions.csv``; existing files of those names are replaced.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_protocol(study.protocol, directory / PROTOCOL_FILE)
    write_table(study.participants, directory / PARTICIPANTS_FILE)
    write_table(study.responses, directory / RESPONSES_FILE)
    if study.dosing_sessions is not None:
        write_table(study.dosing_sessions, directory / DOSING_FILE)


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
    for name in (PROTOCOL_FILE, PARTICIPANTS_FILE, RESPONSES_FILE, DOSING_FILE):
        path = directory / name
        if path.is_file():
            hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes
