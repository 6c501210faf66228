"""Importers and exporters between the tidy contract and the formats trial teams already use.

Each module has pure converters on DataFrames and, at its edge, functions that read or write
files:

- :mod:`~alliance.study.formats.wide`: wide CSV, one row per participant × timepoint, item columns.
- :mod:`~alliance.study.formats.redcap`: REDCap data dictionary + flat records export + mapping YAML.
- :mod:`~alliance.study.formats.statistical`: SPSS ``.sav`` and Stata ``.dta`` of the wide measures.
- :mod:`~alliance.study.formats.parquet`: the tidy tables as Parquet.

Every importer validates with the same checks as :func:`alliance.study.load`, naming the rows and
columns of the file that was imported.
"""

from __future__ import annotations

from pathlib import Path

from alliance.protocol import Protocol

from ..errors import DataProblem, StudyDataError
from ..tidy import Study

WRITE_FORMATS = ("csv", "wide", "redcap", "parquet", "spss", "stata")
READ_FORMATS = ("csv", "wide", "redcap", "parquet")
WIDE_FILE = "wide.csv"


def _unknown(fmt: str, allowed: tuple[str, ...]) -> StudyDataError:
    return StudyDataError([DataProblem("format", None, None, fmt, ", ".join(allowed), "is not a format")],
                          "unknown format")


def write_study(study: Study, out: str | Path, fmt: str = "csv", *, spreadsheet: bool = True) -> Path:
    """Export a study in one of the formats (what ``alliance export --format`` calls).

    Parameters
    ----------
    study : Study
    out : str or Path
        A directory for ``csv`` (the tidy contract), ``wide`` (``wide.csv``, ``participants.csv``,
        ``protocol.yaml``), ``redcap`` (see :func:`~alliance.study.formats.redcap.write_redcap`) and
        ``parquet``; a file for ``spss`` (``.sav``) and ``stata`` (``.dta``) — given a directory,
        ``measures.sav`` / ``measures.dta`` in it.
    fmt : str
        One of :data:`WRITE_FORMATS`.
    spreadsheet : bool
        In CSV files, neutralise text cells a spreadsheet would run as a formula (OWASP; see
        :func:`alliance.study.io.write_table`); ``False`` for programs that read the files.

    Returns
    -------
    Path
        The directory or file written.
    """
    from alliance.protocol import write_protocol

    from ..io import save, write_table
    from . import parquet, redcap, statistical, wide

    out = Path(out)
    if fmt == "csv":
        save(study, out, spreadsheet=spreadsheet)
    elif fmt == "wide":
        out.mkdir(parents=True, exist_ok=True)
        wide.write_wide_csv(study, out / WIDE_FILE, spreadsheet=spreadsheet)
        write_table(study.participants, out / "participants.csv", spreadsheet=spreadsheet)
        write_protocol(study.protocol, out / "protocol.yaml")
    elif fmt == "redcap":
        redcap.write_redcap(study, out, spreadsheet=spreadsheet)
    elif fmt == "parquet":
        parquet.write_parquet(study, out)
    elif fmt in ("spss", "stata"):
        suffix = ".sav" if fmt == "spss" else ".dta"
        path = out / f"measures{suffix}" if out.is_dir() else out
        path.parent.mkdir(parents=True, exist_ok=True)
        (statistical.write_spss if fmt == "spss" else statistical.write_stata)(study, path)
        return path
    else:
        raise _unknown(fmt, WRITE_FORMATS)
    return out


def read_study(path: str | Path, fmt: str = "csv", protocol: Protocol | None = None) -> Study:
    """Import a study from one of the formats (what ``alliance import`` can call).

    Parameters
    ----------
    path : str or Path
        A directory: ``csv`` (the tidy contract), ``parquet``, ``wide`` (``wide.csv`` and
        ``participants.csv``), ``redcap`` (``data_dictionary.csv`` and ``records.csv`` with
        REDCap's events, arms and repeating-forms exports beside them, or REDCap's ``project.xml``;
        optional ``mapping.yaml``; :func:`~alliance.study.formats.redcap.read_redcap_export`).
    fmt : str
        One of :data:`READ_FORMATS`.
    protocol : Protocol, optional
        For ``wide`` and ``redcap``: default ``protocol.yaml`` in the directory, else the built-in
        Levin 2024 protocol. (``csv`` and ``parquet`` read ``protocol.yaml`` themselves.)

    Returns
    -------
    Study
        Validated.
    """
    from alliance.protocol import default_protocol, load_protocol

    from ..io import load
    from . import parquet, redcap, wide

    path = Path(path)
    if fmt == "csv":
        return load(path)
    if fmt == "parquet":
        return parquet.read_parquet(path)
    if fmt not in READ_FORMATS:
        raise _unknown(fmt, READ_FORMATS)
    if protocol is None:
        protocol = load_protocol(path / "protocol.yaml") if (path / "protocol.yaml").exists() else default_protocol()
    if fmt == "wide":
        return wide.read_wide_csv(path / WIDE_FILE, path / "participants.csv", protocol)
    return redcap.read_redcap_export(path, protocol=protocol)
