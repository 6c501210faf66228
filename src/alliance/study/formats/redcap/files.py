"""A REDCap export as teams export it: every file, delimiter, header style and raw-or-label choice, normalised.

REDCap's Data Export Tool and its API write the same project in several ways; each is read here
into one :class:`RedcapExport` (text cells, raw codes, UI dictionary headers), so that the import
(:func:`~.importing.study_from_export`) meets one form only:

=======================  ==============================================================================
export option            read as
=======================  ==============================================================================
data dictionary          the UI download's 18 headers (``Variable / Field Name`` …) or the API's
                         snake_case ones (``field_name`` …), :func:`read_dictionary`
delimiter                ``,`` ``;`` tab ``|`` ``^``: found from the header line, or given
raw or label values      labels (``Female``, ``Yes``, ``Checked``, ``Enrollment (Arm 1: Drug A)``, a
                         form's label) back to raw codes through the dictionary, :func:`read_records`
checkbox labels          ``exportCheckboxLabel``: the choice's label when ticked, empty when not → 1/0
variable or label        label headers (``Record ID``, ``Gender``) are refused: the dictionary's
headers                  labels need not be unique, so columns cannot be told apart by them
events, arms, forms      ``events.csv`` / ``arms.csv`` / ``instrument_event_mapping.csv`` /
                         ``repeating_instruments.csv`` (the API's exports), :func:`.directory.read_export`
CDISC ODM project XML    metadata and data in one file, :func:`.odm.read_project_xml`
=======================  ==============================================================================

Every refusal names the file, the line, the column, the value, what is allowed and why.

References
----------
REDCap API documentation ("Export Records": ``rawOrLabel``, ``rawOrLabelHeaders``,
``exportCheckboxLabel``, ``csvDelimiter``; "Export Metadata", "Export Events", "Export Arms",
"Export Instrument-Event Mappings", "Export Repeating Instruments and Events"), shown on each
REDCap server at ``/api/help/``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...csv_input import MAX_CSV_BYTES
from ...errors import DataProblem, StudyDataError
from ...io import read_table
from .schema import _FIELD, _FORM, _SYSTEM, _TYPE, DICTIONARY_COLUMNS, EVENT, REPEAT_INSTRUMENT, RedcapFiles

__all__ = ["API_DICTIONARY_COLUMNS", "DELIMITER_NAMES", "RedcapExport", "choices", "read_dictionary",
           "read_records"]

# The API's "Export Metadata" headers, in the order of the UI download's (DICTIONARY_COLUMNS).
API_DICTIONARY_COLUMNS = (
    "field_name", "form_name", "section_header", "field_type", "field_label", "select_choices_or_calculations",
    "field_note", "text_validation_type_or_show_slider_number", "text_validation_min", "text_validation_max",
    "identifier", "branching_logic", "required_field", "custom_alignment", "question_number",
    "matrix_group_name", "matrix_ranking", "field_annotation",
)
_FROM_API = dict(zip(API_DICTIONARY_COLUMNS, DICTIONARY_COLUMNS, strict=True))
_CHOICES = DICTIONARY_COLUMNS[5]
_LABEL = DICTIONARY_COLUMNS[4]
# The delimiters REDCap's export offers (its "CSV delimiter" option), in the order they are tried.
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", "^": "caret"}
_ALLOWED_DELIMITERS = ", ".join(f"{name} ({c!r})" for c, name in DELIMITER_NAMES.items())
# Fields whose values a label export writes as a choice's label.
_CHOICE_TYPES = ("radio", "dropdown", "select", "yesno", "truefalse")
# REDCap's fixed choices (the ODM export writes them as these code lists too).
_YES_NO = {"1": "Yes", "0": "No"}
_TRUE_FALSE = {"1": "True", "0": "False"}
_FORM_STATUS = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}
_CHECKED = {"1": "Checked", "0": "Unchecked"}
# A label export's event: "<event name> (Arm <n>: <arm name>)", the name REDCap also gives each
# StudyEventDef of its ODM export (tests/study/data/redcap/*/project.xml).
_EVENT_LABEL = re.compile(r"^(?P<event>.*) \(Arm (?P<arm>\d+): (?P<arm_name>.*)\)$", re.DOTALL)
# A label header of a checkbox column: "<field label> (choice=<choice label>)".
_CHECKBOX_LABEL_HEADER = re.compile(r"^.* \(choice=.*\)$", re.DOTALL)
_LISTED = 12  # choices listed in a message


@dataclass(frozen=True)
class RedcapExport:
    """One REDCap project export, normalised: what the import needs, however it was exported.

    Attributes
    ----------
    dictionary : DataFrame
        The data dictionary with the UI headers (:data:`~.schema.DICTIONARY_COLUMNS`), text
        cells, ``""`` for empty.
    records : DataFrame
        The flat records, pandas ``string`` dtype, raw codes, ``<NA>`` for empty cells: the
        record id field, ``redcap_event_name`` (longitudinal), ``redcap_repeat_instrument`` and
        ``redcap_repeat_instance`` (when the project repeats anything), the fields,
        ``<form>_complete``.
    record_lines : ndarray of int64
        The source line of each records row (the CSV file's line, the XML element's line).
    files : RedcapFiles
        The files read, for messages.
    events : DataFrame or None
        ``unique_event_name``, ``event_name``, ``arm_num`` (int), ``day_offset`` (float, NaN when
        not exported), ``custom_event_label``; ``None`` for a classic project or when not exported.
    arms : DataFrame or None
        ``arm_num`` (int), ``name``.
    form_events : DataFrame or None
        ``arm_num`` (int), ``unique_event_name``, ``form``: which forms each event holds.
    repeating : DataFrame or None
        ``event_name`` (the unique event name; ``""`` in a classic project), ``form_name`` (``""``
        when the whole event repeats), ``custom_form_label``.
    record_id : str or None
        The record id field when the export names it (ODM's ``redcap:RecordIdField``).
    """

    dictionary: pd.DataFrame
    records: pd.DataFrame
    record_lines: np.ndarray
    files: RedcapFiles = field(default_factory=RedcapFiles)
    events: pd.DataFrame | None = None
    arms: pd.DataFrame | None = None
    form_events: pd.DataFrame | None = None
    repeating: pd.DataFrame | None = None
    record_id: str | None = None

    def to_dict(self) -> dict:
        """Counts of what was read, and the files it came from."""
        record_id = self.record_id or (str(self.dictionary[_FIELD].iloc[0]) if len(self.dictionary) else None)
        records = (int(self.records[record_id].nunique()) if record_id in self.records.columns
                   else None)
        return {"fields": len(self.dictionary), "forms": int(self.dictionary[_FORM].nunique()),
                "records": records, "rows": len(self.records), "columns": len(self.records.columns),
                "events": None if self.events is None else len(self.events),
                "arms": None if self.arms is None else len(self.arms),
                "form_events": None if self.form_events is None else len(self.form_events),
                "repeating": None if self.repeating is None else len(self.repeating),
                "record_id": record_id, "files": asdict(self.files)}


# --------------------------------------------------------------------------------------------
# Header lines and delimiters
# --------------------------------------------------------------------------------------------

def _header_line(path: Path) -> str:
    """The file's first non-blank line as text (a quoted cell may span lines); ``""`` for an empty file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise StudyDataError([DataProblem(str(path), None, None, None, "", "the file does not exist")],
                             "a file of the REDCap export is missing") from None
    if size > MAX_CSV_BYTES:
        raise StudyDataError([DataProblem(str(path), None, None, None,
                                          f"at most {MAX_CSV_BYTES:,} bytes ({MAX_CSV_BYTES / 2**20:g} MiB)",
                                          f"is {size:,} bytes, larger than a study file can be")],
                             f"{path} is too large")
    with path.open("rb") as handle:
        head = handle.read(1 << 20)  # a header longer than 1 MiB is not a REDCap header
    text = head.decode("utf-8-sig", errors="replace").lstrip("\r\n")
    end, quoted = len(text), False
    for position, character in enumerate(text):
        if character == '"':
            quoted = not quoted
        elif character in "\r\n" and not quoted:
            end = position
            break
    return text[:end]


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return [name.strip() for name in next(csv.reader(io.StringIO(line, newline=""), delimiter=delimiter), [])]
    except csv.Error:
        return [name.strip() for name in line.split(delimiter)]


def _delimiter(path: Path, given: str | None, fits, wanted: str) -> str:
    """The delimiter of a file: ``given``, else the one that splits its header into names ``fits`` accepts.

    Of several that fit, the one giving the most columns: a header of one column fits them all.
    """
    line = _header_line(path)
    if given is not None:
        if given not in DELIMITER_NAMES:
            raise StudyDataError([DataProblem(str(path), None, None, given, _ALLOWED_DELIMITERS,
                                              "is not a delimiter REDCap exports with")], "no such delimiter")
        others = [c for c in DELIMITER_NAMES if c != given and fits(_split(line, c))]
        if fits(_split(line, given)) or not others:
            return given
        raise StudyDataError([DataProblem(
            str(path), 1, None, _shorten(line), f"{DELIMITER_NAMES[others[0]]} ({others[0]!r}), which splits it "
            f"into {wanted}; or delimiter: {others[0]!r}",
            f"is not split into {wanted} by the {DELIMITER_NAMES[given]} ({given!r}) given")],
            f"{path} is not separated by {given!r}")
    fitting = [c for c in DELIMITER_NAMES if fits(_split(line, c))]
    if not fitting:
        raise StudyDataError([DataProblem(
            str(path), 1, None, _shorten(line), f"a header line of {wanted}, separated by one of {_ALLOWED_DELIMITERS}",
            f"is a header line that none of REDCap's delimiters splits into {wanted}")],
            f"{path} is not a REDCap export this reader knows")
    return max(fitting, key=lambda c: len(_split(line, c)))  # max keeps the first of equals


def _shorten(text: str, width: int = 120) -> str:
    return text if len(text) <= width else text[:width] + "…"


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text, ``""`` for empty: a dictionary's cells are read, never missing."""
    return frame.astype("string").fillna("").astype(object)


# --------------------------------------------------------------------------------------------
# Data dictionary
# --------------------------------------------------------------------------------------------

def _is_dictionary_header(names: list[str]) -> bool:
    return bool(names) and (DICTIONARY_COLUMNS[0] in names or API_DICTIONARY_COLUMNS[0] in names)


def read_dictionary(path: str | Path, *, delimiter: str | None = None) -> pd.DataFrame:
    """Read a REDCap data dictionary: the UI download or the API's metadata export.

    Parameters
    ----------
    path : str or Path
        The CSV file: UTF-8 with or without BOM, LF or CRLF line ends, at most
        :data:`~alliance.study.csv_input.MAX_CSV_BYTES`.
    delimiter : str, optional
        One of ``, ; \\t | ^``; by default the one that splits the header into dictionary columns.

    Returns
    -------
    DataFrame
        The 18 columns :data:`~.schema.DICTIONARY_COLUMNS` in that order, text cells, ``""`` for
        empty (a column the file lacks, beyond the required ones, is empty).

    Raises
    ------
    StudyDataError
        A header with neither the UI's nor the API's field name, form name and field type
        columns (file, line 1, the columns missing, the two header styles); a column of neither
        style; every problem :func:`alliance.study.io.read_table` finds.

    Notes
    -----
    The two header styles are REDCap's own: the Data Dictionary page downloads
    ``Variable / Field Name, Form Name, …`` and the API's "Export Metadata" writes
    ``field_name, form_name, …`` (the same 18 columns in the same order). A file in the API style
    written by R's ``write.csv`` has ``NA`` for empty cells; in that style a cell ``NA`` is read
    as empty, since no dictionary column has ``NA`` as a meaningful value REDCap would write.

    References
    ----------
    REDCap API documentation, "Export Metadata (Data Dictionary)".
    """
    path = Path(path)
    delimiter = _delimiter(path, delimiter, _is_dictionary_header, "data dictionary columns (Variable / Field "
                           "Name, … or field_name, …)")
    frame = read_table(path, delimiter=delimiter)
    names = [str(c) for c in frame.columns]
    api = API_DICTIONARY_COLUMNS[0] in names and DICTIONARY_COLUMNS[0] not in names
    style, other = (API_DICTIONARY_COLUMNS, DICTIONARY_COLUMNS) if api else (DICTIONARY_COLUMNS, API_DICTIONARY_COLUMNS)
    required = (style[0], style[1], style[3])
    absent = [c for c in required if c not in names]
    styles = (f"the UI download's headers ({', '.join(DICTIONARY_COLUMNS)}) or the API's ({', '.join(API_DICTIONARY_COLUMNS)})")
    if absent:
        raise StudyDataError([DataProblem(str(path), 1, ", ".join(absent), None, styles,
                                          "required data dictionary columns are missing")],
                             "not a REDCap data dictionary")
    unknown = [c for c in names if c not in style]
    if unknown:
        mixed = [c for c in unknown if c in other]
        reason = ("mixes the two header styles" if mixed else "is not a column of a REDCap data dictionary")
        raise StudyDataError([DataProblem(str(path), 1, c, None, styles, reason) for c in unknown],
                             "not a REDCap data dictionary")
    text = _text_frame(frame)
    if api:
        text = text.replace("NA", "").rename(columns=_FROM_API)
    for column in DICTIONARY_COLUMNS:
        if column not in text.columns:
            text[column] = ""
    text = text[list(DICTIONARY_COLUMNS)]
    for column in (_FIELD, _FORM, _TYPE):
        text[column] = text[column].str.strip()
    return text.reset_index(drop=True)


def choices(dictionary: pd.DataFrame, name: str) -> dict[str, str]:
    """A field's choices, code → label, as REDCap defines them (``code, label | code, label``).

    yes/no and true/false fields have REDCap's fixed codes 1 / 0 (labels Yes / No, True / False);
    other fields their ``Choices, Calculations, OR Slider Labels`` cell, split at ``|`` and at the
    first comma of each choice. A field with no choices gives ``{}``.

    References
    ----------
    REDCap Data Dictionary help, "Choices, Calculations, OR Slider Labels".
    """
    row = dictionary.loc[dictionary[_FIELD] == name]
    if row.empty:
        return {}
    kind = str(row[_TYPE].iloc[0]).strip()
    if kind == "yesno":
        return dict(_YES_NO)
    if kind == "truefalse":
        return dict(_TRUE_FALSE)
    if kind not in (*_CHOICE_TYPES, "checkbox"):
        return {}
    return _parse_choices(str(row[_CHOICES].iloc[0]))


def _parse_choices(cell: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for choice in cell.split("|"):
        if not choice.strip():
            continue
        code, _, label = choice.partition(",")
        out[code.strip()] = label.strip()
    return out


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Labels:
    """What a label export may write in a column, and the code each label stands for."""

    codes: dict[str, str]                   # code → label
    empty_is: str | None = None             # exportCheckboxLabel: an empty cell is this code on the form's rows

    def by_label(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for code, label in self.codes.items():
            out.setdefault(label, []).append(code)
        return out


def _record_id_of(dictionary: pd.DataFrame) -> str:
    return str(dictionary[_FIELD].iloc[0]) if len(dictionary) else "record_id"


def read_records(path: str | Path, dictionary: pd.DataFrame, *, delimiter: str | None = None,
                 events: pd.DataFrame | None = None, arms: pd.DataFrame | None = None,
                 record_id: str | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a REDCap flat records export, raw or label, as raw codes.

    Parameters
    ----------
    path : str or Path
        The records CSV (REDCap's "CSV / Microsoft Excel (raw data)" or "(labels)", or the API's
        ``content=record&type=flat&format=csv``), with variable names as column headers.
    dictionary : DataFrame
        The data dictionary (:func:`read_dictionary`), for the record id, the choices and labels.
    delimiter : str, optional
        One of ``, ; \\t | ^``; by default the one that splits the header with the record id field
        first.
    events, arms : DataFrame, optional
        The project's events and arms (:class:`RedcapExport`), needed only to read a label
        export's ``redcap_event_name`` (``Enrollment (Arm 1: Drug A)``) back to unique event names.
    record_id : str, optional
        The record id field (default: the dictionary's first field).

    Returns
    -------
    records : DataFrame
        pandas ``string`` columns, raw codes, ``<NA>`` for empty cells.
    lines : ndarray of int64
        The file's line number of each row (the header is line 1).

    Raises
    ------
    StudyDataError
        A header no delimiter splits with the record id first; a header of field labels (an
        export with label headers); a label that is unknown, or that two codes share, naming the
        line, column, value and the codes and labels allowed; event labels without events; every
        problem :func:`alliance.study.io.read_table` finds.

    Notes
    -----
    A column is read as labels when its values are not all codes but all are labels: radio,
    dropdown, yes/no (Yes / No → 1 / 0), true/false (True / False → 1 / 0) fields through their
    choices; ``<form>_complete`` through REDCap's form status (Incomplete / Unverified / Complete →
    0 / 1 / 2); a checkbox column ``field___code`` from ``Checked`` / ``Unchecked`` (a label
    export) or from the choice's label / empty (``exportCheckboxLabel``: empty is 0 on the rows
    that hold the field's form — its ``<form>_complete`` set or another of its boxes ticked — and
    stays empty elsewhere, like a raw export's cells of forms an event does not hold; a column with
    no box ticked is read so when another checkbox column of the file holds a choice's label);
    ``redcap_repeat_instrument`` from the form's label, matched to the dictionary's form names by
    REDCap's rule for naming a form from its label (lower case, runs of other characters ``_``);
    ``redcap_event_name`` from ``<event name> (Arm <n>: <arm name>)`` through ``events`` (and
    ``arms``, which must agree on the arm's name when given). A column whose values are all codes is
    raw, also when its codes are labels too; a column that holds no label is left for the import to
    judge.

    References
    ----------
    REDCap API documentation, "Export Records" (``rawOrLabel``, ``rawOrLabelHeaders``,
    ``exportCheckboxLabel``, ``csvDelimiter``).
    """
    path = Path(path)
    record_id = record_id or _record_id_of(dictionary)
    id_label = ""
    if record_id in set(dictionary[_FIELD]):
        id_label = str(dictionary.loc[dictionary[_FIELD] == record_id, _LABEL].iloc[0]).strip()

    def fits(names: list[str]) -> bool:
        return bool(names) and names[0] in {record_id, id_label} - {""}

    delimiter = _delimiter(path, delimiter, fits, f"columns with the record id field {record_id!r} first")
    records, lines = read_table(path, lines=True, delimiter=delimiter)
    records = records.astype("string")
    lines = np.asarray(lines if lines is not None else np.arange(len(records)) + 2, dtype=np.int64)
    _refuse_label_headers(path, records, dictionary, record_id)
    problems: list[DataProblem] = []
    records = _raw_codes(path, records, dictionary, lines, events, arms, problems)
    if problems:
        raise StudyDataError(problems, f"{len(problems)} {'problem' if len(problems) == 1 else 'problems'} reading "
                                       f"the labels of {path} as REDCap's raw codes; nothing was imported")
    return records, lines


def _columns_of(dictionary: pd.DataFrame) -> set[str]:
    """Every column a variable-name header may have."""
    names = set(dictionary[_FIELD])
    forms = set(dictionary[_FORM])
    names |= {f"{form}_complete" for form in forms} | {f"{form}_timestamp" for form in forms} | set(_SYSTEM)
    for name, kind, cell in zip(dictionary[_FIELD], dictionary[_TYPE], dictionary[_CHOICES], strict=True):
        if kind == "checkbox":
            names |= {f"{name}___{_checkbox_suffix(code)}" for code in _parse_choices(str(cell))}
    return names


def _checkbox_suffix(code: str) -> str:
    # A checkbox code's column: REDCap writes a negative code's "-" as "_" (code -1 → field____1).
    return code.lower().replace("-", "_").replace(".", "_")


def _refuse_label_headers(path: Path, records: pd.DataFrame, dictionary: pd.DataFrame, record_id: str) -> None:
    known = _columns_of(dictionary)
    labels = {str(label).strip() for label in dictionary[_LABEL]} - {""}
    names = [str(c) for c in records.columns]
    as_labels = [n for n in names if n not in known and (n in labels or _CHECKBOX_LABEL_HEADER.match(n))]
    if names and names[0] != record_id or as_labels:
        found = as_labels[0] if as_labels else names[0]
        raise StudyDataError([DataProblem(
            str(path), 1, found, None,
            "an export with variable names as column headers (REDCap: 'CSV / Microsoft Excel (raw data)' or the "
            "API's rawOrLabelHeaders=raw)",
            "is a field's label, not its variable name: the header row holds labels, which need not be unique "
            "or stable, so the columns cannot be matched to the data dictionary")],
            f"{path} was exported with labels as column headers")


def _form_status_columns(dictionary: pd.DataFrame) -> set[str]:
    return {f"{form}_complete" for form in dictionary[_FORM]}


def _labels_of(column: str, dictionary: pd.DataFrame, type_of: dict[str, str],
               choice_cells: dict[str, str]) -> tuple[str, _Labels] | None:
    """What a label export writes in ``column`` (and the field it belongs to), or None for a column without labels."""
    if column in _form_status_columns(dictionary):
        return column, _Labels(dict(_FORM_STATUS))
    kind = type_of.get(column)
    if kind in ("yesno", "truefalse"):
        return column, _Labels(dict(_YES_NO if kind == "yesno" else _TRUE_FALSE))
    if kind in _CHOICE_TYPES:
        return column, _Labels(_parse_choices(choice_cells[column]))
    if "___" in column:
        field_name, _, suffix = column.rpartition("___")
        if type_of.get(field_name) == "checkbox":
            codes = _parse_choices(choice_cells[field_name])
            code = next((c for c in codes if _checkbox_suffix(c) == suffix), None)
            if code is not None:
                return field_name, _Labels({"1": codes[code]}, empty_is="0")
    return None


def _raw_codes(path: Path, records: pd.DataFrame, dictionary: pd.DataFrame, lines: np.ndarray,
               events: pd.DataFrame | None, arms: pd.DataFrame | None, problems: list[DataProblem]) -> pd.DataFrame:
    type_of = dict(zip(dictionary[_FIELD], dictionary[_TYPE].str.strip(), strict=True))
    choice_cells = dict(zip(dictionary[_FIELD], dictionary[_CHOICES].astype(str), strict=True))
    form_of = dict(zip(dictionary[_FIELD], dictionary[_FORM], strict=True))
    out = records.copy()
    exported_labels: list[str] = []  # exportCheckboxLabel columns, read once the other columns are raw
    ticked_labels = False
    for column in records.columns:
        name = str(column)
        if name == EVENT:
            out[name] = _event_codes(path, records[name], lines, events, arms, problems)
            continue
        if name == REPEAT_INSTRUMENT:
            out[name] = _form_codes(path, records[name], lines, dictionary, problems)
            continue
        target = _labels_of(name, dictionary, type_of, choice_cells)
        if target is None:
            continue
        field_name, labels = target
        values = records[name].str.strip()
        present = set(values.dropna())
        if labels.empty_is is not None:  # a checkbox column
            if not present:
                exported_labels.append(name)  # no box ticked: read as the file's other checkbox columns are
                continue
            if present <= set(_CHECKED):
                continue
            if present <= set(_CHECKED.values()):
                out[name] = values.map({v: k for k, v in _CHECKED.items()}, na_action="ignore").astype("string")
                continue
            if present <= {labels.codes["1"]}:
                # exportCheckboxLabel; a column with no box ticked is so only if another column says so
                # (a raw export writes 0 for every unticked box of a form a row holds).
                exported_labels.append(name)
                ticked_labels = ticked_labels or bool(present)
                continue
            allowed = f"1 / 0, Checked / Unchecked, or the choice's label {labels.codes['1']!r} and empty"
            _unknown(path, records[name], lines, name, present - set(_CHECKED) - set(_CHECKED.values())
                     - {labels.codes["1"]}, allowed, f"is not a value of checkbox field {field_name!r}", problems)
            continue
        codes = set(labels.codes)
        by_label = labels.by_label()
        if present <= codes or not present & (set(by_label) - codes):
            continue  # raw (codes only), or no label at all: the import judges the codes
        allowed = _choices_text(labels.codes)
        unknown = present - set(by_label)
        if unknown:
            _unknown(path, records[name], lines, name, unknown, allowed,
                     f"is neither a code nor a label of field {field_name!r}, in a column of labels", problems)
            continue
        shared = {label for label in present if len(by_label[label]) > 1}
        if shared:
            for label in sorted(shared):
                at = int(np.flatnonzero((values == label).fillna(False).to_numpy(bool))[0])
                problems.append(DataProblem(str(path), int(lines[at]), name, label, allowed,
                                            f"is the label of codes {', '.join(by_label[label])} of field "
                                            f"{field_name!r}: which was answered cannot be told; export raw data"))
            continue
        out[name] = values.map({label: c[0] for label, c in by_label.items()}, na_action="ignore").astype("string")
    for name in exported_labels if ticked_labels else []:
        field_name = name.rpartition("___")[0]
        boxes = [c for c in out.columns if str(c).startswith(f"{field_name}___")]
        status = f"{form_of.get(field_name)}_complete"
        on_form = records[boxes].notna().any(axis=1)
        if status in records.columns:
            on_form |= records[status].notna()
        ticked = records[name].notna()
        out[name] = pd.Series(np.where(ticked, "1", np.where(on_form, "0", None)), index=records.index,
                              dtype="string")
    return out


def _choices_text(codes: dict[str, str]) -> str:
    shown = [f"{code} ({label})" for code, label in list(codes.items())[:_LISTED]]
    more = f", … ({len(codes)} in all)" if len(codes) > _LISTED else ""
    return "codes with their labels: " + ", ".join(shown) + more


def _unknown(path: Path, values: pd.Series, lines: np.ndarray, column: str, unknown: set[str], allowed: str,
             reason: str, problems: list[DataProblem]) -> None:
    stripped = values.str.strip()
    for value in sorted(unknown)[:_LISTED]:
        at = int(np.flatnonzero((stripped == value).fillna(False).to_numpy(bool))[0])
        problems.append(DataProblem(str(path), int(lines[at]), column, value, allowed, reason))


def _event_codes(path: Path, values: pd.Series, lines: np.ndarray, events: pd.DataFrame | None,
                 arms: pd.DataFrame | None, problems: list[DataProblem]) -> pd.Series:
    """``redcap_event_name`` as unique event names: labels ``<event> (Arm <n>: <arm>)`` through the events."""
    stripped = values.str.strip()
    present = set(stripped.dropna())
    unique = set(events["unique_event_name"]) if events is not None else set()
    if events is not None and present <= unique:
        return values
    labelled = {v for v in present if _EVENT_LABEL.match(v)}
    if events is None:
        if not labelled:
            return values  # unique names (checked by the import against the mapping)
        at = int(np.flatnonzero(stripped.isin(labelled).fillna(False).to_numpy(bool))[0])
        first = stripped.iloc[at]
        problems.append(DataProblem(str(path), int(lines[at]), EVENT, first,
                                    "unique event names (a raw export), or the events (events.csv) and arms "
                                    "(arms.csv) exported beside the records",
                                    "is an event's label (a label export): without the project's events it cannot "
                                    "be read as a unique event name"))
        return values
    arm_names = (dict(zip(arms["arm_num"].astype(int), arms["name"].astype(str), strict=True))
                 if arms is not None else {})
    by_label: dict[str, str] = {}
    for unique_name, event_name, arm in zip(events["unique_event_name"], events["event_name"], events["arm_num"],
                                            strict=True):
        by_label.setdefault(f"{event_name} (Arm {int(arm)}: {arm_names.get(int(arm), '')})", unique_name)
    allowed = ("unique event names or event labels: " + ", ".join(list(by_label)[:_LISTED])
               + (f", … ({len(by_label)} in all)" if len(by_label) > _LISTED else ""))
    mapping: dict[str, str] = {}
    for value in sorted(present - unique):
        match = _EVENT_LABEL.match(value)
        found = None
        if match:
            candidates = events[(events["event_name"] == match["event"]) & (events["arm_num"] == int(match["arm"]))]
            arm_ok = not arm_names or arm_names.get(int(match["arm"])) == match["arm_name"]
            if len(candidates) == 1 and arm_ok:
                found = str(candidates["unique_event_name"].iloc[0])
            elif len(candidates) > 1:
                at = int(np.flatnonzero((stripped == value).fillna(False).to_numpy(bool))[0])
                problems.append(DataProblem(str(path), int(lines[at]), EVENT, value, allowed,
                                            f"is the label of events {', '.join(candidates['unique_event_name'])}: "
                                            "which cannot be told; export raw data"))
                continue
        if found is None:
            at = int(np.flatnonzero((stripped == value).fillna(False).to_numpy(bool))[0])
            problems.append(DataProblem(str(path), int(lines[at]), EVENT, value, allowed,
                                        "is neither a unique event name nor the label of an event of the project"))
            continue
        mapping[value] = found
    return stripped.map(lambda v: mapping.get(v, v), na_action="ignore").astype("string")


def _form_name_from_label(label: str) -> str:
    # REDCap names a new instrument from its label: lower case, other characters "_", none doubled.
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def _form_codes(path: Path, values: pd.Series, lines: np.ndarray, dictionary: pd.DataFrame,
                problems: list[DataProblem]) -> pd.Series:
    """``redcap_repeat_instrument`` as form names: a label export's form labels by REDCap's naming rule."""
    forms = list(dict.fromkeys(dictionary[_FORM]))
    stripped = values.str.strip()
    present = set(stripped.dropna())
    if present <= set(forms):
        return values
    mapping = {}
    for value in sorted(present - set(forms)):
        name = _form_name_from_label(value)
        if name in forms:
            mapping[value] = name
            continue
        at = int(np.flatnonzero((stripped == value).fillna(False).to_numpy(bool))[0])
        problems.append(DataProblem(str(path), int(lines[at]), REPEAT_INSTRUMENT, value,
                                    f"a form of the data dictionary ({', '.join(forms[:_LISTED])}), or a label "
                                    "REDCap would name so; or a raw export",
                                    f"is neither a form of the data dictionary nor a form label that names one "
                                    f"({name!r})"))
    return stripped.map(lambda v: mapping.get(v, v), na_action="ignore").astype("string")


# --------------------------------------------------------------------------------------------
# Events, arms, instrument-event mappings, repeating forms
# --------------------------------------------------------------------------------------------

def _read_small(path: Path, required: tuple[str, ...], what: str) -> tuple[pd.DataFrame, np.ndarray]:
    def fits(names: list[str]) -> bool:
        return set(required) <= set(names)

    delimiter = _delimiter(path, None, fits, f"the columns of {what} ({', '.join(required)})")
    frame, lines = read_table(path, lines=True, delimiter=delimiter)
    lines = np.asarray(lines if lines is not None else np.arange(len(frame)) + 2, dtype=np.int64)
    return _text_frame(frame), lines


def _integers(path: Path, frame: pd.DataFrame, column: str, lines: np.ndarray, allowed: str,
              problems: list[DataProblem]) -> pd.Series:
    numbers = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = numbers.isna() | (numbers != numbers.round())
    for at in np.flatnonzero(bad.to_numpy(bool))[:_LISTED]:
        problems.append(DataProblem(str(path), int(lines[at]), column, frame[column].iloc[at], allowed,
                                    "is not a whole number"))
    return numbers.fillna(0).astype(np.int64)


def read_events(path: str | Path) -> pd.DataFrame:
    """The API's events export (``event_name, arm_num, unique_event_name, …``) as :attr:`RedcapExport.events`."""
    path = Path(path)
    frame, lines = _read_small(path, ("event_name", "arm_num", "unique_event_name"), "REDCap's events export")
    problems: list[DataProblem] = []
    arm = _integers(path, frame, "arm_num", lines, "an arm number (1, 2, …)", problems)
    offset = (pd.to_numeric(frame["day_offset"].str.strip(), errors="coerce") if "day_offset" in frame.columns
              else pd.Series(np.nan, index=frame.index))
    if problems:
        raise StudyDataError(problems, f"{path} is not REDCap's events export")
    return pd.DataFrame({"unique_event_name": frame["unique_event_name"].str.strip(),
                         "event_name": frame["event_name"].str.strip(), "arm_num": arm,
                         "day_offset": offset.astype(float),
                         "custom_event_label": frame.get("custom_event_label", pd.Series("", index=frame.index))})


def read_arms(path: str | Path) -> pd.DataFrame:
    """The API's arms export (``arm_num, name``) as :attr:`RedcapExport.arms`."""
    path = Path(path)
    frame, lines = _read_small(path, ("arm_num", "name"), "REDCap's arms export")
    problems: list[DataProblem] = []
    arm = _integers(path, frame, "arm_num", lines, "an arm number (1, 2, …)", problems)
    if problems:
        raise StudyDataError(problems, f"{path} is not REDCap's arms export")
    return pd.DataFrame({"arm_num": arm, "name": frame["name"].str.strip()})


def read_form_events(path: str | Path) -> pd.DataFrame:
    """The API's instrument-event mappings (``arm_num, unique_event_name, form``) as :attr:`RedcapExport.form_events`."""
    path = Path(path)
    frame, lines = _read_small(path, ("arm_num", "unique_event_name", "form"), "REDCap's instrument-event mappings")
    problems: list[DataProblem] = []
    arm = _integers(path, frame, "arm_num", lines, "an arm number (1, 2, …)", problems)
    if problems:
        raise StudyDataError(problems, f"{path} is not REDCap's instrument-event mappings")
    return pd.DataFrame({"arm_num": arm, "unique_event_name": frame["unique_event_name"].str.strip(),
                         "form": frame["form"].str.strip()})


def read_repeating(path: str | Path) -> pd.DataFrame:
    """REDCap's repeating instruments and events (``event_name, form_name, custom_form_label``).

    ``form_name`` is empty for a repeating event (every form of it repeats together), and
    ``event_name`` is empty in a classic project.
    """
    path = Path(path)
    frame, _ = _read_small(path, ("form_name", "custom_form_label"), "REDCap's repeating instruments and events")
    event = frame["event_name"] if "event_name" in frame.columns else pd.Series("", index=frame.index, dtype=object)
    return pd.DataFrame({"event_name": event.str.strip(), "form_name": frame["form_name"].str.strip(),
                         "custom_form_label": frame["custom_form_label"]})
