"""A directory holding a REDCap export — CSV files or the ODM project XML — read as one :class:`~.files.RedcapExport`.

Apart from :mod:`.files` (one file at a time) and :mod:`.odm` (the project XML) because it chooses
between the two: both read into the same :class:`~.files.RedcapExport`.

References
----------
REDCap API documentation ("Export Records", "Export Metadata", "Export Events", "Export Arms",
"Export Instrument-Event Mappings", "Export Repeating Instruments and Events", "Export Entire
Project as REDCap XML File"), shown on each REDCap server at ``/api/help/``.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DataProblem, StudyDataError
from .files import (
    RedcapExport,
    read_arms,
    read_dictionary,
    read_events,
    read_form_events,
    read_records,
    read_repeating,
)
from .odm import is_odm, read_project_xml
from .schema import RedcapFiles

# --------------------------------------------------------------------------------------------
# A directory
# --------------------------------------------------------------------------------------------

# Each file of a CSV export: the names it is found under, the first the one read_export's messages use.
_DICTIONARY_NAMES = ("data_dictionary.csv", "dictionary.csv")
_RECORDS_NAMES = ("records.csv", "data.csv")
_EVENTS_NAMES = ("events.csv", "event.csv")
_ARMS_NAMES = ("arms.csv", "arm.csv")
_FORM_EVENTS_NAMES = ("instrument_event_mapping.csv",)
_REPEATING_NAMES = ("repeating_instruments.csv",)
SOURCES = ("csv", "xml")


def _one_of(directory: Path, names: tuple[str, ...], what: str) -> Path | None:
    found = [directory / name for name in names if (directory / name).is_file()]
    if len(found) > 1:
        raise StudyDataError([DataProblem(str(found[1]), None, None, None, f"one {what} file",
                                          f"is a second {what} file beside {found[0].name}: which to read cannot "
                                          "be told")], f"two {what} files in {directory}")
    return found[0] if found else None


def _odm_file(directory: Path) -> Path | None:
    """project.xml, else the one ``*.xml`` whose root element is ``ODM``."""
    if (directory / "project.xml").is_file():
        return directory / "project.xml"
    candidates = sorted(p for p in directory.glob("*.xml") if p.is_file() and is_odm(p))
    if len(candidates) > 1:
        raise StudyDataError([DataProblem(str(candidates[1]), None, None, None, "one ODM project XML file",
                                          f"is a second ODM file beside {candidates[0].name}: which to read cannot "
                                          "be told")], f"two ODM files in {directory}")
    return candidates[0] if candidates else None


def read_export(directory: str | Path, *, delimiter: str | None = None, source: str | None = None) -> RedcapExport:
    """Read a directory holding a REDCap export: CSV files, or the ODM project XML.

    Parameters
    ----------
    directory : str or Path
        Holding ``data_dictionary.csv`` (or ``dictionary.csv``), ``records.csv`` (or
        ``data.csv``) and, optionally, ``events.csv`` (or ``event.csv``), ``arms.csv`` (or
        ``arm.csv``), ``instrument_event_mapping.csv`` and ``repeating_instruments.csv``; or
        REDCap's "project XML" (``project.xml``, or the one ``*.xml`` whose root is ``ODM``).
    delimiter : str, optional
        The records' and dictionary's delimiter (``, ; \\t | ^``; a mapping's ``delimiter:``);
        by default found from each header line.
    source : {"csv", "xml"}, optional
        Which export to read when the directory holds both; without it both is an error.

    Returns
    -------
    RedcapExport

    Raises
    ------
    StudyDataError
        No export in the directory (the files looked for); CSV records and an ODM file both, with
        no ``source``; a CSV export without its data dictionary; every problem of the files.

    References
    ----------
    REDCap API documentation ("Export Records", "Export Metadata", "Export Events", "Export Arms",
    "Export Instrument-Event Mappings", "Export Repeating Instruments and Events", "Export Entire
    Project as REDCap XML File").
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise StudyDataError([DataProblem(str(directory), None, None, None, "a directory of REDCap export files",
                                          "is not a directory")], "no REDCap export directory")
    if source is not None and source not in SOURCES:
        raise StudyDataError([DataProblem(str(directory), None, "source", source, "csv or xml",
                                          "is not a kind of REDCap export")], "no such export")
    records_path = _one_of(directory, _RECORDS_NAMES, "records")
    xml_path = _odm_file(directory) if source != "csv" else None
    if source is None and records_path is not None and xml_path is not None:
        raise StudyDataError([DataProblem(str(xml_path), None, None, None,
                                          f"one export, or source='csv' / source='xml' to say which ({records_path.name}"
                                          f" and the data dictionary, or {xml_path.name})",
                                          f"is an ODM project export beside the CSV records {records_path}: the two "
                                          "may differ, and which to read cannot be told")],
                             f"two REDCap exports in {directory}")
    if source == "xml" or (records_path is None and xml_path is not None):
        if xml_path is None:
            raise StudyDataError([DataProblem(str(directory / "project.xml"), None, None, None,
                                              "REDCap's project XML (CDISC ODM)", "the file does not exist")],
                                 "no ODM project XML in the directory")
        return read_project_xml(xml_path)
    if records_path is None:
        raise StudyDataError([DataProblem(str(directory / _RECORDS_NAMES[0]), None, None, None,
                                          f"{' or '.join(_RECORDS_NAMES)} with {' or '.join(_DICTIONARY_NAMES)}, or "
                                          "REDCap's project XML (project.xml)", "the file does not exist")],
                             f"no REDCap export in {directory}")
    dictionary_path = _one_of(directory, _DICTIONARY_NAMES, "data dictionary")
    if dictionary_path is None:
        raise StudyDataError([DataProblem(str(directory / _DICTIONARY_NAMES[0]), None, None, None,
                                          f"{' or '.join(_DICTIONARY_NAMES)} beside {records_path.name}",
                                          "the file does not exist")], "a file of the REDCap export is missing")
    dictionary = read_dictionary(dictionary_path, delimiter=delimiter)
    events_path = _one_of(directory, _EVENTS_NAMES, "events")
    arms_path = _one_of(directory, _ARMS_NAMES, "arms")
    form_events_path = _one_of(directory, _FORM_EVENTS_NAMES, "instrument-event mappings")
    repeating_path = _one_of(directory, _REPEATING_NAMES, "repeating instruments")
    events = read_events(events_path) if events_path else None
    arms = read_arms(arms_path) if arms_path else None
    records, lines = read_records(records_path, dictionary, delimiter=delimiter, events=events, arms=arms)
    return RedcapExport(dictionary=dictionary, records=records, record_lines=lines,
                        files=RedcapFiles(str(dictionary_path), str(records_path)), events=events, arms=arms,
                        form_events=read_form_events(form_events_path) if form_events_path else None,
                        repeating=read_repeating(repeating_path) if repeating_path else None)
