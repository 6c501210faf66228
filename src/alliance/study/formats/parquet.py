"""The tidy tables as Parquet files (pyarrow): typed, compressed, fast to read in R, Python, Spark.

A Parquet study directory mirrors the CSV one: ``protocol.yaml``, ``participants.parquet``,
``responses.parquet`` and, when present, ``dosing_sessions.parquet``, ``adverse_events.parquet``,
``vital_signs.parquet`` and ``concomitant_medications.parquet``. Reading it validates it as
:func:`alliance.study.load` does; a problem's row is the record's position in the file, from 1.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alliance.protocol import default_protocol, load_protocol, write_protocol

from ..errors import DataProblem, StudyDataError
from ..io import PROTOCOL_FILE
from ..tidy import Study, check_study
from ..validation import Locator

TABLES = ("participants", "responses", "dosing_sessions", "adverse_events", "vital_signs",
          "concomitant_medications")
_OPTIONAL = ("dosing_sessions", "adverse_events", "vital_signs", "concomitant_medications")


def write_parquet(study: Study, directory: str | Path) -> None:
    """Write a study's tables as Parquet files and its protocol as YAML.

    Parameters
    ----------
    study : Study
    directory : str or Path
        Created if needed.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_protocol(study.protocol, directory / PROTOCOL_FILE)
    study.participants.to_parquet(directory / "participants.parquet", index=False, engine="pyarrow")
    study.responses.to_parquet(directory / "responses.parquet", index=False, engine="pyarrow")
    if study.dosing_sessions is not None:
        study.dosing_sessions.to_parquet(directory / "dosing_sessions.parquet", index=False, engine="pyarrow")
    for name in _OPTIONAL[1:]:
        table = getattr(study, name)
        if table is not None:
            table.to_parquet(directory / f"{name}.parquet", index=False, engine="pyarrow")


def read_parquet(directory: str | Path) -> Study:
    """Read and validate a Parquet study directory.

    Parameters
    ----------
    directory : str or Path

    Returns
    -------
    Study

    Raises
    ------
    StudyDataError
        As :func:`alliance.study.load`, rows numbered from 1.
    """
    directory = Path(directory)
    protocol_path = directory / PROTOCOL_FILE
    protocol = load_protocol(protocol_path) if protocol_path.exists() else default_protocol()
    tables: dict[str, pd.DataFrame | None] = {}
    for name in TABLES:
        path = directory / f"{name}.parquet"
        if not path.exists():
            if name not in _OPTIONAL:
                raise StudyDataError([DataProblem(str(path), None, None, None, "", "the file does not exist")],
                                     "a file of the study is missing")
            tables[name] = None
            continue
        try:
            tables[name] = pd.read_parquet(path, engine="pyarrow")
        except (OSError, ValueError) as error:
            raise StudyDataError([DataProblem(str(path), None, None, None, "a Parquet file",
                                              f"cannot be read ({error})")], "a file cannot be read") from None
    locators = {name: Locator(str(directory / f"{name}.parquet"), first_row=1) for name in TABLES}
    problems, values = check_study(protocol, tables["participants"], tables["responses"], tables["dosing_sessions"],
                                   locators, adverse_events=tables["adverse_events"],
                                   vital_signs=tables["vital_signs"],
                                   concomitant_medications=tables["concomitant_medications"])
    if problems:
        count = f"{len(problems)} {'problem' if len(problems) == 1 else 'problems'}"
        raise StudyDataError(problems, f"{count} in the study data in {directory}; nothing was loaded")
    return Study(protocol=protocol, participants=tables["participants"],
                 responses=tables["responses"].assign(value=values), dosing_sessions=tables["dosing_sessions"],
                 adverse_events=tables["adverse_events"], vital_signs=tables["vital_signs"],
                 concomitant_medications=tables["concomitant_medications"])
