"""REDCap's project XML (CDISC ODM 1.3, metadata and data) read as a :class:`~.files.RedcapExport`.

REDCap's "Download metadata & data (XML)" (API: ``content=project``, ``returnMetadataOnly=false``)
writes one ODM file with REDCap's own attributes in the ``https://projectredcap.org``
namespace. What each part becomes:

=====================================================  ==========================================
ODM (and REDCap's extensions)                          :class:`~.files.RedcapExport`
=====================================================  ==========================================
``MetaDataVersion/@redcap:RecordIdField``              ``record_id``
``FormDef`` → ``ItemGroupDef`` → ``ItemDef``           ``dictionary``, one row a field, in form order
``ItemDef/@redcap:FieldType``                          ``Field Type`` (``select`` → ``dropdown``,
                                                       ``textarea`` → ``notes``, the dictionary's words)
``ItemDef/Question/TranslatedText``                    ``Field Label``
``CodeListRef`` → ``CodeList/CodeListItem``            ``Choices`` ``code, label | …`` (checkboxes:
                                                       ``@redcap:CheckboxChoices``)
``field___code`` ItemDefs (``@redcap:Variable``)       one checkbox row ``field``
``StudyEventDef`` (``@redcap:UniqueEventName`` …)      ``events``, ``arms``; its ``FormRef`` → ``form_events``
``redcap:RepeatingInstrument`` / ``RepeatingEvent``    ``repeating``
``SubjectData/@SubjectKey``                            the record id column
``SubjectData/@redcap:DataAccessGroup``                ``redcap_data_access_group``
``StudyEventData/@redcap:UniqueEventName``             ``redcap_event_name``; ``@StudyEventRepeatKey``
                                                       the instance of a repeating event
``FormData/@FormRepeatKey``                            ``redcap_repeat_instance`` of a repeating form
``ItemData/@ItemOID``, ``@Value``                      the cell; ``ItemDataBase64Binary`` (a file
                                                       upload) its ``@redcap:DocName``
=====================================================  ==========================================

The records are the rows REDCap's flat CSV export gives: one per record × event (× repeat
instance), the record id first, then ``redcap_event_name`` (a longitudinal project),
``redcap_repeat_instrument`` and ``redcap_repeat_instance`` (a project that repeats anything),
``redcap_data_access_group`` (when the file names groups), then the fields form by form with each
``<form>_complete``.

What the XML cannot give back: a line break inside a value is written in the ``Value`` attribute
as it is, and XML's attribute-value normalisation (XML 1.0 §3.3.3) makes every parser read it as a
space; ``redcap_survey_identifier`` is not in the file.

The file is parsed by ``defusedxml`` (expat): a document type declaration (DTD), an entity
declaration or an external reference is refused, so that neither an "XML bomb" (entities that
expand to gigabytes) nor a reference to a local file or a URL can be read; and a file larger
than :data:`~alliance.study.csv_input.MAX_CSV_BYTES` (256 MiB, the limit of the CSV files) is
refused before it is read.

References
----------
CDISC (2013). Operational Data Model (ODM), version 1.3.2. Clinical Data Interchange Standards
Consortium. https://www.cdisc.org/standards/data-exchange/odm

REDCap API documentation, "Export Entire Project as REDCap XML File".
"""

from __future__ import annotations

import xml.sax
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.handler import ContentHandler, feature_namespaces

import numpy as np
import pandas as pd
from defusedxml import DefusedXmlException
from defusedxml.expatreader import create_parser

from ...csv_input import MAX_CSV_BYTES
from ...errors import DataProblem, StudyDataError
from .files import RedcapExport
from .schema import _SYSTEM, DICTIONARY_COLUMNS, EVENT, REPEAT_INSTANCE, REPEAT_INSTRUMENT, RedcapFiles

__all__ = ["MAX_XML_BYTES", "ODM_NAMESPACE", "REDCAP_NAMESPACE", "is_odm", "read_project_xml"]

ODM_NAMESPACE = "http://www.cdisc.org/ns/odm/v1.3"
REDCAP_NAMESPACE = "https://projectredcap.org"
MAX_XML_BYTES = MAX_CSV_BYTES
DATA_ACCESS_GROUP = "redcap_data_access_group"
# ODM's field types where the data dictionary has its own words.
_FIELD_TYPES = {"select": "dropdown", "textarea": "notes"}
# ODM's validation types where the data dictionary has its own words (the UI's "Integer", "Number").
_VALIDATION_TYPES = {"int": "integer", "float": "number"}
# Dictionary columns read from an ItemDef's REDCap attribute of the same meaning.
_ATTRIBUTES = {
    "Section Header": "SectionHeader", "Field Note": "FieldNote",
    "Text Validation Type OR Show Slider Number": "TextValidationType", "Identifier?": "Identifier",
    "Branching Logic (Show field only if...)": "BranchingLogic", "Required Field?": "RequiredField",
    "Custom Alignment": "CustomAlignment", "Question Number (surveys only)": "QuestionNumber",
    "Matrix Group Name": "MatrixGroupName", "Matrix Ranking?": "MatrixRanking", "Field Annotation": "FieldAnnotation",
}


class _Stop(Exception):
    """Raised by a handler that has seen what it wanted."""


@dataclass
class _Item:
    oid: str
    attributes: dict[str, str]
    label: str = ""
    code_list: str | None = None
    range_min: str = ""
    range_max: str = ""


@dataclass
class _CodeList:
    attributes: dict[str, str]
    items: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Row:
    line: int
    cells: dict[str, str]


class _Handler(ContentHandler):
    """One pass over the file: the metadata into small tables, the data into rows with their lines."""

    def __init__(self, *, root_only: bool = False) -> None:
        super().__init__()
        self.root_only = root_only
        self.locator = None
        self.root: tuple[str | None, str] | None = None
        self.record_id: str | None = None
        self.metadata = False
        self.event_defs: list[dict[str, str]] = []
        self.form_refs: list[tuple[str, str]] = []            # (unique event name, form)
        self.forms: list[tuple[str, str, list[str]]] = []     # (OID, form name, item group OIDs)
        self.groups: dict[str, list[str]] = {}                # item group OID → item OIDs
        self.items: dict[str, _Item] = {}
        self.code_lists: dict[str, _CodeList] = {}
        self.repeating: list[tuple[str, str, str]] = []       # (unique event name, form, custom label)
        self.repeating_given = False
        self.rows: list[_Row] = []
        self.groups_named = False
        self._text: list[str] | None = None
        self._item: _Item | None = None
        self._code_list: _CodeList | None = None
        self._code: str | None = None
        self._comparator: str | None = None
        self._subject: dict[str, str] = {}
        self._event: dict[str, str] = {}
        self._row: _Row | None = None
        self._group: list[str] | None = None
        self._form: list[str] | None = None

    def setDocumentLocator(self, locator) -> None:  # noqa: N802 (the SAX interface's name)
        self.locator = locator

    def _line(self) -> int:
        return int(self.locator.getLineNumber()) if self.locator is not None else 0

    def startElementNS(self, name, qname, attrs) -> None:  # noqa: N802
        uri, local = name
        if self.root is None:
            self.root = (uri, local)
            if self.root_only or (uri, local) != (ODM_NAMESPACE, "ODM"):
                raise _Stop
        plain = {k[1]: v for k, v in attrs.items() if k[0] is None}
        own = {k[1]: v for k, v in attrs.items() if k[0] == REDCAP_NAMESPACE}
        if uri == ODM_NAMESPACE:
            self._odm_start(local, plain, own)
        elif uri == REDCAP_NAMESPACE:
            if local == "RepeatingInstrumentsAndEvents":
                self.repeating_given = True
            elif local == "RepeatingInstrument":
                self.repeating.append((own.get("UniqueEventName", ""), own.get("RepeatInstrument", ""),
                                       own.get("CustomLabel", "")))
            elif local == "RepeatingEvent":
                self.repeating.append((own.get("UniqueEventName", ""), "", own.get("CustomLabel", "")))

    def _odm_start(self, local: str, plain: dict[str, str], own: dict[str, str]) -> None:
        if local == "MetaDataVersion":
            self.metadata = True
            self.record_id = own.get("RecordIdField") or None
        elif local == "StudyEventDef":
            self.event_defs.append({"oid": plain.get("OID", ""), "name": plain.get("Name", ""), **own})
        elif local == "FormRef" and self.event_defs:
            unique = self.event_defs[-1].get("UniqueEventName", "")
            self.form_refs.append((unique, own.get("FormName") or plain.get("FormOID", "").removeprefix("Form.")))
        elif local == "FormDef":
            self._form = []
            self.forms.append((plain.get("OID", ""), own.get("FormName", ""), self._form))
        elif local == "ItemGroupRef" and self._form is not None:
            self._form.append(plain.get("ItemGroupOID", ""))
        elif local == "ItemGroupDef":
            self._group = self.groups.setdefault(plain.get("OID", ""), [])
        elif local == "ItemRef" and self._group is not None:
            self._group.append(plain.get("ItemOID", ""))
        elif local == "ItemDef":
            self._item = _Item(plain.get("OID", ""), own)
            self.items[self._item.oid] = self._item
        elif local == "CodeListRef" and self._item is not None:
            self._item.code_list = plain.get("CodeListOID")
        elif local == "RangeCheck":
            self._comparator = plain.get("Comparator")
        elif local == "CodeList":
            self._code_list = _CodeList(own)
            self.code_lists[plain.get("OID", "")] = self._code_list
        elif local == "CodeListItem":
            self._code = plain.get("CodedValue", "")
        elif local in ("TranslatedText", "CheckValue"):
            self._text = []
        elif local == "SubjectData":
            self._subject = {"key": plain.get("SubjectKey", ""), "line": str(self._line())}
            if "DataAccessGroup" in own:
                self._subject["group"] = own["DataAccessGroup"]
                self.groups_named = True
            self._event = {}
        elif local == "StudyEventData":
            self._event = {"event": own.get("UniqueEventName") or plain.get("StudyEventOID", "").removeprefix("Event."),
                           "repeat": plain.get("StudyEventRepeatKey", "1")}
        elif local == "FormData":
            self._row = _Row(self._line(), {"__form": plain.get("FormOID", ""),
                                            "__form_repeat": plain.get("FormRepeatKey", "1"),
                                            "__record": self._subject.get("key", ""),
                                            "__group": self._subject.get("group", ""),
                                            "__event": self._event.get("event", ""),
                                            "__event_repeat": self._event.get("repeat", "1")})
            self.rows.append(self._row)
        elif local == "ItemData" and self._row is not None:
            self._row.cells[plain.get("ItemOID", "")] = plain.get("Value", "")
        elif local == "ItemDataBase64Binary" and self._row is not None:
            # A file upload: the flat export names the file; its content is not kept.
            self._row.cells[plain.get("ItemOID", "")] = own.get("DocName", "")

    def characters(self, content: str) -> None:
        if self._text is not None:
            self._text.append(content)

    def endElementNS(self, name, qname) -> None:  # noqa: N802
        uri, local = name
        if uri != ODM_NAMESPACE:
            return
        if local == "TranslatedText" and self._text is not None:
            text = "".join(self._text)
            if self._code is not None and self._code_list is not None:
                self._code_list.items.append((self._code, text))
            elif self._item is not None and self._comparator is None:
                self._item.label = text
            self._text = None
        elif local == "CheckValue" and self._text is not None:
            if self._item is not None and self._comparator in ("GE", "GT"):
                self._item.range_min = "".join(self._text).strip()
            elif self._item is not None and self._comparator in ("LE", "LT"):
                self._item.range_max = "".join(self._text).strip()
            self._text = None
        elif local == "RangeCheck":
            self._comparator = None
        elif local == "CodeListItem":
            self._code = None
        elif local == "CodeList":
            self._code_list = None
        elif local == "ItemDef":
            self._item = None
        elif local == "ItemGroupDef":
            self._group = None
        elif local == "FormDef":
            self._form = None
        elif local == "FormData":
            self._row = None


def _refuse(path: Path, reason: str, allowed: str, line: int | None = None) -> StudyDataError:
    return StudyDataError([DataProblem(str(path), line, None, None, allowed, reason)],
                          f"{path} cannot be read as REDCap's project XML")


def _parse(path: Path, handler: _Handler) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise StudyDataError([DataProblem(str(path), None, None, None, "", "the file does not exist")],
                             "a file of the REDCap export is missing") from None
    if size > MAX_XML_BYTES:
        raise _refuse(path, f"is {size:,} bytes, larger than a study file can be",
                      f"at most {MAX_XML_BYTES:,} bytes ({MAX_XML_BYTES / 2**20:g} MiB)")
    parser = create_parser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser.setFeature(feature_namespaces, True)
    parser.setContentHandler(handler)
    try:
        parser.parse(str(path))
    except _Stop:
        return
    except DefusedXmlException as error:
        line = handler._line() or None
        raise _refuse(path, f"declares a document type or entities ({error}), which REDCap's export never does: "
                            "refused, as entities can expand to gigabytes or read other files",
                      "REDCap's project XML (CDISC ODM) without a DOCTYPE", line) from None
    except xml.sax.SAXParseException as error:
        raise _refuse(path, f"is not well-formed XML ({error.getMessage()}, column {error.getColumnNumber()})",
                      "REDCap's project XML (CDISC ODM 1.3)", error.getLineNumber()) from None


def is_odm(path: str | Path) -> bool:
    """Whether a file's root element is CDISC ODM's ``ODM`` (only the start of the file is read)."""
    handler = _Handler(root_only=True)
    try:
        _parse(Path(path), handler)
    except StudyDataError:
        return False
    return handler.root == (ODM_NAMESPACE, "ODM")


def read_project_xml(path: str | Path) -> RedcapExport:
    """Read REDCap's project XML (CDISC ODM 1.3 with metadata and data) as a REDCap export.

    Parameters
    ----------
    path : str or Path
        The file REDCap's "Download metadata & data (XML)" or the API's ``content=project``
        (``returnMetadataOnly=false``) writes; a metadata-only file gives no records.

    Returns
    -------
    RedcapExport
        The dictionary, records (raw codes), events, arms, form-event designations and repeating
        forms the file holds; ``record_lines`` the line of the ``FormData`` element each row starts
        at (the first of the row's forms, in the file's order); ``files`` the XML file for both the
        dictionary and the records.

    Raises
    ------
    StudyDataError
        A file larger than :data:`MAX_XML_BYTES`; not well-formed XML (with its line); a DTD,
        entity or external reference; a root element other than ODM's (naming it); no
        ``MetaDataVersion``.

    Notes
    -----
    A row is a record (``SubjectData``) × event (``StudyEventData``, longitudinal projects) ×
    repeat: a form REDCap's ``redcap:RepeatingInstrument`` names for the event is a row of its own
    per ``FormRepeatKey`` (``redcap_repeat_instrument`` the form); every form of an event
    ``redcap:RepeatingEvent`` names shares the row of its ``StudyEventRepeatKey``
    (``redcap_repeat_instrument`` empty); other forms share the event's row. Values are written
    as ODM holds them: raw codes, checkboxes ``field___code`` 1 / 0.

    References
    ----------
    CDISC (2013). Operational Data Model (ODM), version 1.3.2, §3.1.3 (MetaDataVersion), §3.1.4
    (ClinicalData).
    """
    path = Path(path)
    handler = _Handler()
    _parse(path, handler)
    if handler.root != (ODM_NAMESPACE, "ODM"):
        uri, local = handler.root or (None, "")
        found = f"<{local}>" + (f" in namespace {uri}" if uri else " (no namespace)")
        raise _refuse(path, f"is XML whose root element is {found}, not CDISC ODM's <ODM>",
                      f"REDCap's project XML: root <ODM xmlns=\"{ODM_NAMESPACE}\">", 1)
    if not handler.metadata:
        raise _refuse(path, "is ODM without a MetaDataVersion: the fields, forms and events are not in it",
                      "REDCap's project XML with metadata (\"Download metadata & data\", or the API's "
                      "content=project)")
    dictionary, columns = _dictionary(handler)
    events, arms, form_events = _events(handler)
    repeating = _repeating(handler, longitudinal=events is not None)
    records, lines = _records(handler, columns, events is not None, repeating)
    return RedcapExport(dictionary=dictionary, records=records, record_lines=lines,
                        files=RedcapFiles(str(path), str(path)), events=events, arms=arms, form_events=form_events,
                        repeating=repeating, record_id=handler.record_id)


def _dictionary(handler: _Handler) -> tuple[pd.DataFrame, list[str]]:
    """The dictionary's rows and every records column (fields, checkbox columns, timestamps, form status)."""
    rows: list[dict[str, str]] = []
    columns: list[str] = []
    folded: set[str] = set()
    for _, form, groups in handler.forms:
        for group in groups:
            for oid in handler.groups.get(group, []):
                item = handler.items.get(oid)
                if item is None or oid in columns or oid in _SYSTEM:
                    continue  # the system columns (DAG, survey identifier) have their own place
                columns.append(oid)
                variable = item.attributes.get("Variable", oid)
                if oid in (f"{form}_complete", f"{form}_timestamp"):
                    continue  # REDCap's own columns of every form (and survey), not dictionary fields
                if variable in folded:
                    continue  # a further box of a checkbox field
                folded.add(variable)
                rows.append(_dictionary_row(handler, item, variable, form))
    frame = pd.DataFrame(rows, columns=list(DICTIONARY_COLUMNS)).fillna("").astype(object)
    return frame, columns


def _dictionary_row(handler: _Handler, item: _Item, variable: str, form: str) -> dict[str, str]:
    kind = item.attributes.get("FieldType", "text")
    kind = _FIELD_TYPES.get(kind, kind)
    code_list = handler.code_lists.get(item.code_list or "")
    if kind == "checkbox" and code_list is not None:
        choices = code_list.attributes.get("CheckboxChoices", "")
    elif kind in ("yesno", "truefalse"):
        choices = ""  # REDCap's fixed codes: the dictionary leaves them out
    elif code_list is not None:
        choices = " | ".join(f"{code}, {label}" for code, label in code_list.items)
    else:
        choices = item.attributes.get("Calculation") or item.attributes.get("SliderLabels", "")
    row = {column: item.attributes.get(attribute, "") for column, attribute in _ATTRIBUTES.items()}
    validation = DICTIONARY_COLUMNS[7]
    row[validation] = _VALIDATION_TYPES.get(row[validation], row[validation])
    row.update({DICTIONARY_COLUMNS[0]: variable, DICTIONARY_COLUMNS[1]: form, DICTIONARY_COLUMNS[3]: kind,
                DICTIONARY_COLUMNS[4]: item.label, DICTIONARY_COLUMNS[5]: choices,
                DICTIONARY_COLUMNS[8]: item.range_min, DICTIONARY_COLUMNS[9]: item.range_max})
    return row


def _events(handler: _Handler) -> tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
    if not handler.event_defs:
        return None, None, None
    defs = handler.event_defs
    arm_num = [int(d.get("ArmNum") or 1) for d in defs]
    events = pd.DataFrame({
        "unique_event_name": [d.get("UniqueEventName") or d["oid"].removeprefix("Event.") for d in defs],
        "event_name": [d.get("EventName", d["name"]) for d in defs],
        "arm_num": np.asarray(arm_num, dtype=np.int64),
        "day_offset": pd.to_numeric(pd.Series([d.get("DayOffset", "") for d in defs]), errors="coerce").astype(float),
        "custom_event_label": [d.get("CustomEventLabel", "") for d in defs],
    })
    arms = (pd.DataFrame({"arm_num": arm_num, "name": [d.get("ArmName", "") for d in defs]})
            .drop_duplicates("arm_num").sort_values("arm_num").reset_index(drop=True))
    arms["arm_num"] = arms["arm_num"].astype(np.int64)
    arm_of = dict(zip(events["unique_event_name"], events["arm_num"], strict=True))
    form_events = pd.DataFrame({"arm_num": np.asarray([arm_of.get(e, 0) for e, _ in handler.form_refs], dtype=np.int64),
                                "unique_event_name": [e for e, _ in handler.form_refs],
                                "form": [f for _, f in handler.form_refs]})
    return events, arms, form_events


def _repeating(handler: _Handler, *, longitudinal: bool) -> pd.DataFrame | None:
    if not handler.repeating_given:
        return None
    # A classic project's forms name REDCap's one hidden event; the repeating-forms file leaves it empty.
    return pd.DataFrame({"event_name": [e if longitudinal else "" for e, _, _ in handler.repeating],
                         "form_name": [f for _, f, _ in handler.repeating],
                         "custom_form_label": [label for _, _, label in handler.repeating]}, dtype=object)


def _forms_of_row(event: str, instrument: str, repeated: bool, forms: list[str], form_events: dict[str, list[str]],
                  repeating_forms: set[tuple[str, str]], repeating_events: set[str], longitudinal: bool) -> list[str]:
    """The forms a flat export's row holds: its repeating form, or the event's forms that do not repeat."""
    if instrument:
        return [instrument]
    on_event = form_events.get(event, []) if longitudinal else forms
    if repeated:
        return on_event
    return [form for form in on_event if (event, form) not in repeating_forms]


def _records(handler: _Handler, columns: list[str], longitudinal: bool,
             repeating: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
    form_name = {oid: name for oid, name, _ in handler.forms}
    forms = [name for _, name, _ in handler.forms]
    form_events: dict[str, list[str]] = {}
    for event, form in handler.form_refs:
        form_events.setdefault(event, []).append(form)
    repeating_forms = set()
    repeating_events = set()
    if repeating is not None:
        for event, form, _ in repeating.itertuples(index=False):
            if form:
                repeating_forms.add((event, form))
            else:
                repeating_events.add(event)
    record_id = handler.record_id or (columns[0] if columns else "record_id")
    system = [record_id] + ([EVENT] if longitudinal else [])
    if repeating is not None:
        system += [REPEAT_INSTRUMENT, REPEAT_INSTANCE]
    groups = handler.groups_named or DATA_ACCESS_GROUP in handler.items
    if groups:
        system.append(DATA_ACCESS_GROUP)
    order = system + [c for c in columns if c != record_id]
    rows: dict[tuple, dict[str, str]] = {}
    lines: dict[tuple, int] = {}
    for row in handler.rows:
        cells = row.cells
        form = form_name.get(cells["__form"], cells["__form"].removeprefix("Form."))
        event = cells["__event"] if longitudinal else ""
        if (event, form) in repeating_forms:
            instrument, instance = form, cells["__form_repeat"]
        elif longitudinal and event in repeating_events:
            instrument, instance = "", cells["__event_repeat"]
        else:
            instrument, instance = "", ""
        key = (cells["__record"], event, instrument, instance)
        out = rows.get(key)
        if out is None:
            out = {record_id: cells["__record"]}
            if longitudinal:
                out[EVENT] = event
            if repeating is not None:
                out[REPEAT_INSTRUMENT] = instrument
                out[REPEAT_INSTANCE] = instance
            if groups:
                out[DATA_ACCESS_GROUP] = cells["__group"]
            rows[key] = out
            lines[key] = row.line
        out.update({k: v for k, v in cells.items() if not k.startswith("__") and k != record_id})
    for (_, event, instrument, instance), out in rows.items():
        # The flat export gives each form a row holds its status, 0 (Incomplete) for a form without
        # data; ODM has no FormData for such a form.
        for form in _forms_of_row(event, instrument, bool(instance), forms, form_events, repeating_forms,
                                  repeating_events, longitudinal):
            out.setdefault(f"{form}_complete", "0")
    frame = pd.DataFrame(list(rows.values()), columns=order, dtype="string")
    frame = frame.replace("", pd.NA)
    return frame.reset_index(drop=True), np.asarray(list(lines.values()), dtype=np.int64)
