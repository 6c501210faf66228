"""REDCap: import a data dictionary + flat records export, export a project REDCap accepts.

Import reads three things:

- the **data dictionary** CSV (REDCap's 18 columns, ``Variable / Field Name`` … ``Field
  Annotation``), for each field's form and type (checkbox fields export as ``field___code``);
- the **records** CSV, REDCap's flat export with raw codes: the record id field,
  ``redcap_event_name`` (longitudinal projects), ``redcap_repeat_instrument`` and
  ``redcap_repeat_instance`` (repeating instruments), ``<form>_complete``, then the fields;
- a **mapping** (YAML, schema in ``docs/data.md``): REDCap events → timepoints, arms → protocol
  arms, fields → item ids (a field named like an item id, ``wai_sr_3``, maps to it by itself),
  value recodings where REDCap codes differ from the instrument's (1-5 in REDCap, 0-4 in the
  instrument), participant fields, the fields of the dosing sessions and safety tables, fields to
  ignore.

Every REDCap column must be accounted for: a column not in the dictionary, or a field neither
mapped nor ignored, is an error, as is a row with answers whose event has no mapping. Answers are
then validated like ``responses.csv``, and messages name the records file's line and the REDCap
field.

Export writes what REDCap's Data Import Tool and API take: a data dictionary (one form per
instrument: radio fields ``code, label | …`` from the item anchors, sliders for visual-analogue
items, a ``participant`` form with the covariates, identifiers flagged), the records (one row per
participant × event, events named ``<timepoint>_arm_<n>``, ``<form>_complete`` = 2 where the form
has data; dosing sessions as instances of the repeating form ``dosing`` on the arm's first event,
with ``redcap_repeat_instrument``/``redcap_repeat_instance``), the arms, events (``day_offset``
in days from the arm's first event, as REDCap defines it), instrument-event designations and
repeating forms of a longitudinal project, and the mapping that reads the export back — so that
a round trip keeps participants (with ``enrolled_on``), answers and dosing sessions.

The safety tables are repeating forms on the arm's first event too, one instance per row
(:data:`SAFETY_FORMS`): ``adverse_events`` (fields ``ae_<column>``), ``vital_signs``
(``vital_<column>``) and ``concomitant_medications`` (``medication_<column>``). Their fields take
REDCap's types for the contract's allowed values: the CTCAE grade a radio 1-5, ``serious`` and
``expected`` yes/no (codes 1 / 0), the ICH E2A seriousness criteria a checkbox (one
``ae_seriousness___<criterion>`` column each), relatedness a radio and action and outcome
dropdowns whose codes are the contract's words, dates ``date_ymd``, measures numbers within the
plausible ranges. The import reads them back through the same checks as the CSV files, each
message naming the records file's line, the REDCap field and the record and instance; a round trip
keeps every table (rows grouped by participant; the seriousness criteria in ICH E2A order).

Values go out as written, so that they come back the same: a date or time column gets REDCap's
validation (``date_ymd``, ``datetime_ymd``, ``time``, …) only when every value has that form, and
otherwise is a text field whose note says the form (a date-time written ``2024-03-01T10:30`` is not
REDCap's ``2024-03-01 10:30``).

References
----------
Harris PA, Taylor R, Thielke R, Payne J, Gonzalez N, Conde JG (2009). Research electronic data
capture (REDCap). J Biomed Inform 42(2):377-381.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from alliance import instruments as bank
from alliance.instruments import Instrument, Item
from alliance.monitoring.schedule import planned_dates
from alliance.protocol import Protocol, default_protocol
from alliance.protocol.yaml_input import read_yaml_file

from ..administrations import refuse_facilitator_rated
from ..adverse_events import ACTIONS, ADVERSE_EVENT_COLUMNS, OUTCOMES, RELATEDNESS, SERIOUSNESS_CRITERIA
from ..errors import DataProblem, StudyDataError
from ..io import read_table, write_table
from ..medications import MEDICATION_COLUMNS
from ..tidy import Study, check_study, format_number, format_numbers, sort_responses
from ..validation import DOSING_COLUMNS, DOSING_DAY_COLUMNS, Locator
from ..vital_signs import MIN_MINUTES_AFTER_DOSE, PLAUSIBLE_RANGES, VITAL_SIGN_COLUMNS

DICTIONARY_COLUMNS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
    "Matrix Ranking?", "Field Annotation",
)
_FIELD, _FORM, _TYPE = DICTIONARY_COLUMNS[0], DICTIONARY_COLUMNS[1], DICTIONARY_COLUMNS[3]
EVENT = "redcap_event_name"
REPEAT_INSTRUMENT = "redcap_repeat_instrument"
REPEAT_INSTANCE = "redcap_repeat_instance"
_SYSTEM = (EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE, "redcap_data_access_group", "redcap_survey_identifier")
_ARM_SUFFIX = re.compile(r"^(?P<event>.+)_arm_(?P<arm>\d+)$")
PARTICIPANT_FORM = "participant"
RECORD_ID = "record_id"
_ADMINISTRATION = ("rater", "administered_at")
_DAY_ZERO = date(2000, 1, 1)  # any date: events.csv holds differences of planned dates
_MAPPING_KEYS = ("record_id", "events", "arms", "repeating", "forms", "fields", "participant_fields",
                 "administration_fields", "dosing_fields", "adverse_event_fields", "vital_sign_fields",
                 "medication_fields", "ignore")
# The repeating form that holds dosing sessions (one instance per session), and the fields that
# map to the dosing sessions table by their name alone.
DOSING_FORM = "dosing"
DOSING_FIELDS = {"dosing_session": "session", "dosing_date": "date", "dosing_compound": "compound",
                 "dosing_amount": "amount", "dosing_unit": "unit", "dosing_started_at": "started_at",
                 "dosing_ended_at": "ended_at", "dosing_present": "present",
                 "dosing_rescue_medication": "rescue_medication", "dosing_setting_notes": "setting_notes",
                 "dosing_music_notes": "music_notes"}
# The safety tables: each a repeating form on the arm's first event (one instance per row of the
# table), its fields named <prefix>_<column> so that they map back by their name alone.
ADVERSE_EVENT_FORM = "adverse_events"
ADVERSE_EVENT_FIELDS = {"ae_id": "ae_id", **{f"ae_{c}": c for c in ADVERSE_EVENT_COLUMNS[2:]}}
VITAL_SIGN_FORM = "vital_signs"
VITAL_SIGN_FIELDS = {f"vital_{c}": c for c in VITAL_SIGN_COLUMNS[1:]}
MEDICATION_FORM = "concomitant_medications"
MEDICATION_FIELDS = {f"medication_{c}": c for c in MEDICATION_COLUMNS[1:]}


@dataclass(frozen=True)
class SafetyForm:
    """How one safety table of the tidy contract is a repeating REDCap form.

    Attributes
    ----------
    table : str
        The :class:`~alliance.study.Study` attribute, ``check_study`` argument and locator key.
    form : str
        The repeating form's name.
    section : str
        The mapping file's section naming its fields (field → column).
    fields : dict
        The default field names (field → column), mapped without a section.
    columns : tuple of str
        The table's contract columns.
    label : str
        REDCap's custom label of an instance (piped fields).
    file : str
        The table's file in the tidy contract, for messages.
    """

    table: str
    form: str
    section: str
    fields: dict[str, str]
    columns: tuple[str, ...]
    label: str
    file: str


SAFETY_FORMS = (
    SafetyForm("adverse_events", ADVERSE_EVENT_FORM, "adverse_event_fields", ADVERSE_EVENT_FIELDS,
               ADVERSE_EVENT_COLUMNS, "[ae_id] [ae_term]", "adverse_events.csv"),
    SafetyForm("vital_signs", VITAL_SIGN_FORM, "vital_sign_fields", VITAL_SIGN_FIELDS, VITAL_SIGN_COLUMNS,
               "Session [vital_session], [vital_measured_at]", "vital_signs.csv"),
    SafetyForm("concomitant_medications", MEDICATION_FORM, "medication_fields", MEDICATION_FIELDS,
               MEDICATION_COLUMNS, "[medication_name] from [medication_start]", "concomitant_medications.csv"),
)
# A REDCap yes/no (or true/false) field's raw codes, as the contract's yes / no.
_YES_NO_CODES = {"1": "yes", "0": "no"}
# Participant fields that map to a contract column by their name alone.
_OWN_PARTICIPANT_FIELDS = {"enrolled_on": "enrolled_on"}


# --------------------------------------------------------------------------------------------
# The mapping file
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recode:
    """How REDCap codes become instrument values: a code → value table, or a shift (value = code + shift)."""

    table: dict[str, str] = field(default_factory=dict)
    shift: float | None = None

    def apply(self, codes: pd.Series) -> tuple[pd.Series, np.ndarray]:
        """Recode text codes; returns the values and a mask of codes the table does not hold."""
        if self.table:
            normal = _normal_code(codes)
            values = normal.map(self.table).astype("string")
            return values, (codes.notna() & values.isna()).to_numpy(bool)
        if self.shift is not None:
            numbers = pd.to_numeric(codes, errors="coerce")
            shifted = format_numbers(numbers + self.shift)
            # A code that is not a number is left as it is for the validation to name.
            return shifted.fillna(codes), np.zeros(len(codes), dtype=bool)
        return codes, np.zeros(len(codes), dtype=bool)

    def to_dict(self) -> dict:
        if self.table:
            return {"recode": dict(self.table)}
        return {"shift": self.shift} if self.shift is not None else {}


@dataclass(frozen=True)
class FieldMap:
    """A REDCap field read as an item."""

    item: str
    instrument: str
    recode: Recode = Recode()


@dataclass(frozen=True)
class RedcapMapping:
    """The parsed mapping YAML (schema: ``docs/data.md``, section REDCap)."""

    record_id: str | None = None
    events: dict[str, str] = field(default_factory=dict)
    arms: dict[int, str] = field(default_factory=dict)
    repeating: dict[str, dict[int, str]] = field(default_factory=dict)
    forms: dict[str, Recode] = field(default_factory=dict)
    fields: dict[str, FieldMap] = field(default_factory=dict)
    participant_fields: dict[str, tuple[str, Recode]] = field(default_factory=dict)
    administration_fields: dict[str, tuple[str, str]] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    dosing_fields: dict[str, str] = field(default_factory=dict)
    adverse_event_fields: dict[str, tuple[str, Recode]] = field(default_factory=dict)
    vital_sign_fields: dict[str, tuple[str, Recode]] = field(default_factory=dict)
    medication_fields: dict[str, tuple[str, Recode]] = field(default_factory=dict)

    def safety_fields(self, form: SafetyForm) -> dict[str, tuple[str, Recode]]:
        """The mapping's section for one safety form (field → column and recoding)."""
        return getattr(self, form.section)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.record_id:
            out["record_id"] = self.record_id
        out["events"] = dict(self.events)
        if self.arms:
            out["arms"] = dict(self.arms)
        if self.repeating:
            out["repeating"] = {k: dict(v) for k, v in self.repeating.items()}
        if self.forms:
            out["forms"] = {k: v.to_dict() for k, v in self.forms.items()}
        if self.fields:
            out["fields"] = {k: ({"item": v.item, **v.recode.to_dict()} if v.recode.to_dict() else v.item)
                             for k, v in self.fields.items()}
        if self.participant_fields:
            out["participant_fields"] = {k: ({"column": c, **r.to_dict()} if r.to_dict() else c)
                                         for k, (c, r) in self.participant_fields.items()}
        if self.administration_fields:
            out["administration_fields"] = {k: {"instrument": i, "column": c}
                                            for k, (i, c) in self.administration_fields.items()}
        if self.dosing_fields:
            out["dosing_fields"] = dict(self.dosing_fields)
        for form in SAFETY_FORMS:
            if self.safety_fields(form):
                out[form.section] = {k: ({"column": c, **r.to_dict()} if r.to_dict() else c)
                                     for k, (c, r) in self.safety_fields(form).items()}
        if self.ignore:
            out["ignore"] = list(self.ignore)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def _count(problems: list) -> str:
    return f"{len(problems)} {'problem' if len(problems) == 1 else 'problems'}"


def _normal_code(codes: pd.Series) -> pd.Series:
    """Codes as text with numbers written one way (``1``, ``1.0`` and `` 1`` are the same code)."""
    text = codes.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    return format_numbers(numbers).fillna(text)


def _code_key(value: Any) -> str:
    text = str(value).strip()
    try:
        return format_number(float(text))
    except ValueError:
        return text


def parse_mapping(raw: Any, protocol: Protocol, origin: str = "mapping.yaml") -> RedcapMapping:
    """Check a mapping (parsed YAML) against the protocol and the instrument bank.

    Parameters
    ----------
    raw : dict
        The mapping read from the YAML file (``None`` for an empty file: every field named
        like an item, events named like timepoints).
    protocol : Protocol
    origin : str
        The file name for messages.

    Returns
    -------
    RedcapMapping

    Raises
    ------
    StudyDataError
        Every problem, naming the file and the key.
    """
    problems: list[DataProblem] = []

    def problem(key: str, value: Any, reason: str, allowed: str) -> None:
        problems.append(DataProblem(origin, None, key, value, allowed, reason, where="key"))

    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        raise StudyDataError([DataProblem(origin, None, None, None, "a mapping of keys", "is not a mapping")],
                             "the REDCap mapping cannot be used")
    for key in raw:
        if key not in _MAPPING_KEYS:
            problem(str(key), None, "is not a key of the REDCap mapping", ", ".join(_MAPPING_KEYS))

    def section(key: str) -> dict:
        value = raw.get(key) or {}
        if not isinstance(value, dict):
            problem(key, None, "expected a mapping", "a mapping")
            return {}
        return value

    timepoints = ", ".join(protocol.timepoint_ids)
    events = {}
    for event, timepoint in section("events").items():
        if timepoint not in protocol.timepoint_ids:
            problem(f"events.{event}", timepoint, "is not a timepoint of the protocol", timepoints)
        events[str(event)] = str(timepoint)
    arms = {}
    for number, arm in section("arms").items():
        if not str(number).isdigit():
            problem(f"arms.{number}", number, "is not a REDCap arm number", "1, 2, …")
            continue
        if arm not in protocol.arm_ids:
            problem(f"arms.{number}", arm, "is not an arm of the protocol", ", ".join(protocol.arm_ids))
        arms[int(number)] = str(arm)
    repeating = {}
    for form, instances in section("repeating").items():
        if not isinstance(instances, dict):
            problem(f"repeating.{form}", None, "expected a mapping", "repeat instance → timepoint")
            continue
        repeating[str(form)] = {}
        for instance, timepoint in instances.items():
            if timepoint not in protocol.timepoint_ids:
                problem(f"repeating.{form}.{instance}", timepoint, "is not a timepoint of the protocol", timepoints)
            if not str(instance).isdigit():
                problem(f"repeating.{form}.{instance}", instance, "is not a repeat instance", "1, 2, …")
                continue
            repeating[str(form)][int(instance)] = str(timepoint)

    def recode(value: dict, key: str) -> Recode:
        table, shift = value.get("recode"), value.get("shift")
        if table is not None and shift is not None:
            problem(key, None, "gives both recode and shift", "one of recode (code: value) or shift (a number)")
        if table is not None:
            if not isinstance(table, dict) or not table:
                problem(f"{key}.recode", table, "is not a table of codes", "REDCap code: value")
                return Recode()
            return Recode({_code_key(k): _code_key(v) for k, v in table.items()})
        if shift is not None:
            if isinstance(shift, bool) or not isinstance(shift, int | float):
                problem(f"{key}.shift", shift, "is not a number", "a number added to each code")
                return Recode()
            return Recode(shift=float(shift))
        return Recode()

    forms = {}
    for form, value in section("forms").items():
        if not isinstance(value, dict):
            problem(f"forms.{form}", value, "expected a mapping", "recode: or shift:")
            continue
        for key in value:
            if key not in ("recode", "shift"):
                problem(f"forms.{form}.{key}", None, "is not a key of a form entry", "recode, shift")
        forms[str(form)] = recode(value, f"forms.{form}")

    instrument_of = {item: inst.id for inst in bank.list_instruments() for item in inst.item_ids}
    fields = {}
    for name, value in section("fields").items():
        entry = {"item": value} if isinstance(value, str) else value
        if not isinstance(entry, dict) or "item" not in entry:
            problem(f"fields.{name}", value, "is not a field entry", "an item id, or {item: …, recode: …}")
            continue
        for key in entry:
            if key not in ("item", "recode", "shift"):
                problem(f"fields.{name}.{key}", None, "is not a key of a field entry", "item, recode, shift")
        item = str(entry["item"])
        if item not in instrument_of:
            problem(f"fields.{name}.item", item, "is not an item of an instrument in the bank",
                    "an item id such as wai_sr_1")
            continue
        fields[str(name)] = FieldMap(item, instrument_of[item], recode(entry, f"fields.{name}"))

    participant_fields = {}
    for name, value in section("participant_fields").items():
        entry = {"column": value} if isinstance(value, str) else value
        if not isinstance(entry, dict) or "column" not in entry:
            problem(f"participant_fields.{name}", value, "is not a participant field entry",
                    "a participants column, or {column: …, recode: …}")
            continue
        participant_fields[str(name)] = (str(entry["column"]), recode(entry, f"participant_fields.{name}"))

    administration_fields = {}
    for name, value in section("administration_fields").items():
        if not isinstance(value, dict) or value.get("column") not in _ADMINISTRATION \
                or value.get("instrument") not in protocol.instruments:
            problem(f"administration_fields.{name}", value, "is not an administration field entry",
                    "{instrument: <an instrument of the protocol>, column: rater | administered_at}")
            continue
        administration_fields[str(name)] = (str(value["instrument"]), str(value["column"]))

    dosing_fields = {}
    dosing_columns = [c for c in DOSING_COLUMNS if c != "participant_id"]
    for name, value in section("dosing_fields").items():
        if value not in dosing_columns:
            problem(f"dosing_fields.{name}", value, "is not a column of the dosing sessions table",
                    ", ".join(dosing_columns))
            continue
        dosing_fields[str(name)] = str(value)
    safety_fields = {}
    for form in SAFETY_FORMS:
        allowed = [c for c in form.columns if c != "participant_id"]
        safety_fields[form.section] = {}
        for name, value in section(form.section).items():
            entry = {"column": value} if isinstance(value, str) else value
            if not isinstance(entry, dict) or "column" not in entry:
                problem(f"{form.section}.{name}", value, f"is not a {form.section} entry",
                        f"a column of {form.file}, or {{column: …, recode: …}}")
                continue
            for key in entry:
                if key not in ("column", "recode", "shift"):
                    problem(f"{form.section}.{name}.{key}", None, f"is not a key of a {form.section} entry",
                            "column, recode, shift")
            if entry["column"] not in allowed:
                problem(f"{form.section}.{name}", entry["column"], f"is not a column of {form.file}",
                        ", ".join(allowed))
                continue
            other = next((f for f, (c, _) in safety_fields[form.section].items() if c == entry["column"]), None)
            if other is not None:  # one cell per column: a second field would overwrite the first
                problem(f"{form.section}.{name}", entry["column"], f"is the column field {other} maps to",
                        "one field per column")
                continue
            safety_fields[form.section][str(name)] = (str(entry["column"]), recode(entry, f"{form.section}.{name}"))
    ignore = raw.get("ignore") or []
    if not isinstance(ignore, list):
        problem("ignore", ignore, "expected a list", "REDCap field names or patterns (consent_*)")
        ignore = []
    record_id = raw.get("record_id")
    if problems:
        raise StudyDataError(problems, f"{_count(problems)} in the REDCap mapping {origin}")
    return RedcapMapping(str(record_id) if record_id else None, events, arms, repeating, forms, fields,
                         participant_fields, administration_fields, tuple(map(str, ignore)), dosing_fields,
                         **safety_fields)


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RedcapFiles:
    """File names for messages."""

    dictionary: str = "data_dictionary.csv"
    records: str = "records.csv"
    mapping: str = "mapping.yaml"


@dataclass
class _Columns:
    """What each records column is."""

    items: dict[str, FieldMap] = field(default_factory=dict)            # field → item
    checkboxes: dict[str, list[str]] = field(default_factory=dict)      # field → its ___ columns
    participant: dict[str, tuple[str, Recode]] = field(default_factory=dict)
    administration: dict[str, tuple[str, str]] = field(default_factory=dict)
    dosing: dict[str, str] = field(default_factory=dict)                # field → dosing sessions column
    # safety table → {field → (column, recoding)}
    safety: dict[str, dict[str, tuple[str, Recode]]] = field(default_factory=dict)


def _classify(dictionary: pd.DataFrame, records: pd.DataFrame, mapping: RedcapMapping, protocol: Protocol,
              record_id: str, files: RedcapFiles, problems: list[DataProblem]) -> _Columns:
    form_of = dict(zip(dictionary[_FIELD].astype(str), dictionary[_FORM].astype(str), strict=True))
    type_of = dict(zip(dictionary[_FIELD].astype(str), dictionary[_TYPE].astype(str).str.strip(), strict=True))
    forms = set(form_of.values())
    system = set(_SYSTEM) | {f"{form}_complete" for form in forms} | {f"{form}_timestamp" for form in forms}
    in_bank = {item for inst in bank.list_instruments() for item in inst.item_ids}
    instrument_of = {item: inst.id for inst in bank.list_instruments() for item in inst.item_ids}
    own_administration = {f"{i}_{c}": (i, c) for i in protocol.instruments for c in _ADMINISTRATION}
    columns = _Columns()
    for column in records.columns:
        name = str(column)
        if name == record_id or name in system:
            continue
        field_name = name
        if "___" in name and type_of.get(name.split("___", 1)[0]) == "checkbox":
            field_name = name.split("___", 1)[0]
        elif name not in form_of:
            problems.append(DataProblem(files.records, 1, name, None,
                                        f"fields of {files.dictionary}, redcap_* columns, <form>_complete",
                                        f"is not a field of the data dictionary {files.dictionary}"))
            continue
        if any(fnmatch.fnmatchcase(field_name, pattern) for pattern in mapping.ignore):
            continue
        if field_name in mapping.participant_fields:
            columns.participant[field_name] = mapping.participant_fields[field_name]
            continue
        if field_name in mapping.dosing_fields:
            columns.dosing[field_name] = mapping.dosing_fields[field_name]
            continue
        if field_name in _OWN_PARTICIPANT_FIELDS and field_name not in mapping.fields:
            columns.participant[field_name] = (_OWN_PARTICIPANT_FIELDS[field_name], Recode())
            continue
        if field_name in DOSING_FIELDS and not mapping.dosing_fields and field_name not in mapping.fields:
            columns.dosing[field_name] = DOSING_FIELDS[field_name]
            continue
        safety = _safety_target(field_name, mapping)
        if safety is not None:
            form, target = safety
            columns.safety.setdefault(form.table, {})[field_name] = target
            if field_name != name:
                columns.checkboxes.setdefault(field_name, []).append(name)
            continue
        if field_name in mapping.administration_fields:
            columns.administration[field_name] = mapping.administration_fields[field_name]
            continue
        if field_name in own_administration:
            columns.administration[field_name] = own_administration[field_name]
            continue
        target = mapping.fields.get(field_name)
        if target is None and field_name in in_bank:
            target = FieldMap(field_name, instrument_of[field_name])
        if target is None:
            safety_form = next((f for f in SAFETY_FORMS if f.form == form_of.get(field_name)), None)
            allowed = (f"list the field in {files.mapping} under {safety_form.section}: (a column of "
                       f"{safety_form.file}: {', '.join(safety_form.columns[1:])}) or ignore:" if safety_form
                       else f"list the field in {files.mapping} under fields: (item), participant_fields:, "
                       "administration_fields: or ignore:")
            problems.append(DataProblem(files.records, 1, name, None, allowed,
                                        f"REDCap field of form {form_of.get(field_name)!r} has no mapping"))
            continue
        form_recode = mapping.forms.get(form_of.get(field_name, ""))
        if form_recode is not None and not target.recode.table and target.recode.shift is None:
            target = FieldMap(target.item, target.instrument, form_recode)
        columns.items[field_name] = target
        if field_name != name:
            columns.checkboxes.setdefault(field_name, []).append(name)
    return columns


def _safety_target(field_name: str, mapping: RedcapMapping) -> tuple[SafetyForm, tuple[str, Recode]] | None:
    """The safety table and column a field maps to: by the mapping's section, else by its default name.

    A default name (``ae_severity``) maps by itself only while the mapping has no section for its
    table and does not map the field as an item; a section, once given, names every field of it.
    """
    for form in SAFETY_FORMS:
        section = mapping.safety_fields(form)
        if field_name in section:
            return form, section[field_name]
        if not section and field_name in form.fields and field_name not in mapping.fields:
            return form, (form.fields[field_name], Recode())
    return None


def _timepoints(records: pd.DataFrame, mapping: RedcapMapping, protocol: Protocol) -> np.ndarray:
    """The timepoint of each records row (``None`` where no mapping gives one).

    An event maps through ``events:`` by its unique name (``prep_arm_2``) or by the name without
    the arm (``prep``); an event not listed there whose name without the arm is a timepoint id
    maps to that timepoint. A repeat instance listed under ``repeating:`` overrides the event.
    """
    timepoint = pd.Series(None, index=records.index, dtype=object)
    if EVENT in records.columns:
        events = records[EVENT].astype("string")
        stripped = events.str.replace(r"_arm_\d+$", "", regex=True)
        for candidate in (events.map(mapping.events), stripped.map(mapping.events),
                          stripped.where(stripped.isin(protocol.timepoint_ids))):
            timepoint = timepoint.where(timepoint.notna(), candidate.astype(object))
    if REPEAT_INSTRUMENT in records.columns and mapping.repeating:
        form = records[REPEAT_INSTRUMENT].astype("string")
        instance = pd.to_numeric(records[REPEAT_INSTANCE], errors="coerce") if REPEAT_INSTANCE in records.columns \
            else pd.Series(np.nan, index=records.index)
        for name, instances in mapping.repeating.items():
            for number, target in instances.items():
                rows = ((form == name) & (instance == number)).fillna(False).to_numpy(bool)
                timepoint[rows] = target
    return timepoint.where(timepoint.notna(), None).to_numpy(dtype=object)


def study_from_redcap(dictionary: pd.DataFrame, records: pd.DataFrame, mapping: RedcapMapping | dict | None,
                      protocol: Protocol | None = None, participants: pd.DataFrame | None = None,
                      files: RedcapFiles = RedcapFiles(), record_lines: np.ndarray | None = None) -> Study:
    """Build and validate a study from a REDCap data dictionary, records export and mapping.

    Parameters
    ----------
    dictionary : DataFrame
        The data dictionary (text cells).
    records : DataFrame
        The flat records export with raw codes (text cells).
    mapping : RedcapMapping or dict
        The mapping, parsed or as read from YAML (schema: ``docs/data.md``).
    protocol : Protocol, optional
        Default: the built-in Levin 2024 protocol.
    participants : DataFrame, optional
        A tidy participants table. Without it, participants are the records' ids, each one's arm
        from its events' REDCap arm (``arms:``; default arm *n* = the protocol's *n*-th arm) or
        from a participant field mapped to ``arm``, and the other ``participant_fields``.
    files : RedcapFiles
        File names for messages.
    record_lines : ndarray of int, optional
        The records file's line number of each row (:func:`alliance.study.io.read_csv_lines`);
        by default row position + 2.

    Returns
    -------
    Study

    Raises
    ------
    StudyDataError
        Every problem: a records column not in the dictionary, a field with no mapping, a row
        with answers whose event (or repeat instance) has no mapping, a code the recoding does
        not cover, more than one box ticked in a checkbox field, and every problem
        :func:`alliance.study.load` finds, located by records line and REDCap field (for the
        safety tables also the record and repeat instance).
    """
    protocol = protocol or default_protocol()
    if not isinstance(mapping, RedcapMapping):
        mapping = parse_mapping(mapping, protocol, files.mapping)
    lines = (np.asarray(record_lines, dtype=np.int64) if record_lines is not None
             else np.arange(len(records), dtype=np.int64) + 2)
    problems: list[DataProblem] = []
    absent = [c for c in (_FIELD, _FORM, _TYPE) if c not in dictionary.columns]
    if absent:
        raise StudyDataError([DataProblem(files.dictionary, 1, ", ".join(absent), None, ", ".join(DICTIONARY_COLUMNS),
                                          "required data dictionary columns are missing")],
                             "not a REDCap data dictionary")
    record_id = mapping.record_id or (str(dictionary[_FIELD].iloc[0]) if len(dictionary) else RECORD_ID)
    if record_id not in records.columns:
        raise StudyDataError([DataProblem(files.records, 1, record_id, None,
                                          "the record id field (the first field of the data dictionary, or "
                                          "record_id: in the mapping)", "the record id column is missing")],
                             "not a REDCap records export of this data dictionary")
    columns = _classify(dictionary, records, mapping, protocol, record_id, files, problems)
    timepoint = _timepoints(records, mapping, protocol)
    record = records[record_id].astype("string")

    pieces = []
    for name, target in columns.items.items():
        if name in columns.checkboxes:
            codes, more = _checkbox_codes(records, columns.checkboxes[name])
            for position in np.flatnonzero(more):
                problems.append(DataProblem(files.records, int(lines[position]), name, None,
                                            "one box ticked (an item has one answer)",
                                            "has more than one box ticked"))
        else:
            codes = records[name].astype("string").str.strip().replace("", pd.NA)
        values, unmapped = target.recode.apply(codes)
        present = codes.notna().to_numpy(bool) & ~unmapped
        for position in np.flatnonzero(unmapped):
            problems.append(DataProblem(files.records, int(lines[position]), name, codes.iloc[position],
                                        "codes " + ", ".join(target.recode.table),
                                        f"is a code the recoding in {files.mapping} does not cover"))
        rows = np.flatnonzero(present)
        pieces.append(pd.DataFrame({
            "row": rows, "field": name, "instrument": target.instrument, "item": target.item,
            "value": values.to_numpy(dtype=object)[rows],
        }))
    answers = (pd.concat(pieces, ignore_index=True) if pieces
               else pd.DataFrame(columns=["row", "field", "instrument", "item", "value"]))
    answers = answers.sort_values(["row"], kind="stable").reset_index(drop=True)

    unmapped_rows = np.unique(answers["row"].to_numpy(dtype=np.int64)[
        pd.isna(timepoint[answers["row"].to_numpy(dtype=np.int64)])]) if len(answers) else []
    event_names = records[EVENT].astype("string") if EVENT in records.columns else None
    for row in unmapped_rows:
        if event_names is None:
            problems.append(DataProblem(files.records, int(lines[row]), REPEAT_INSTANCE, None,
                                        f"map repeat instances under repeating: in {files.mapping}",
                                        "the records have no redcap_event_name and this row's repeat instance "
                                        "has no mapping"))
        else:
            allowed = ", ".join(mapping.events) if mapping.events else "event names equal to timepoint ids"
            problems.append(DataProblem(files.records, int(lines[row]), EVENT, event_names.iloc[row],
                                        f"{allowed} (events: in {files.mapping})",
                                        "is a REDCap event with no mapping to a timepoint"))

    rows = answers["row"].to_numpy(dtype=np.int64)
    responses = pd.DataFrame({
        "participant_id": record.to_numpy(dtype=object)[rows],
        "timepoint": timepoint[rows] if len(rows) else np.array([], dtype=object),
        "instrument": answers["instrument"].to_numpy(dtype=object),
        "item": answers["item"].to_numpy(dtype=object),
        "value": answers["value"].to_numpy(dtype=object),
    }).astype("string")
    for column in _ADMINISTRATION:
        values = np.full(len(responses), None, dtype=object)
        for name, (instrument_id, target) in columns.administration.items():
            if target == column:
                mine = (responses["instrument"] == instrument_id).to_numpy(bool)
                values[mine] = records[name].astype("string").to_numpy(dtype=object)[rows[mine]]
        responses[column] = pd.array(values, dtype="string")

    own_arm_problems = len(problems)
    if participants is None:
        participants, participants_locator = _participants(records, record_id, mapping, protocol, columns,
                                                           files, problems, lines)
    else:
        participants_locator = Locator("participants")
    no_arm = len(problems) > own_arm_problems
    # Rows whose timepoint is unknown are reported above; check the others as responses.csv is checked.
    mapped = responses["timepoint"].notna().to_numpy(bool)
    field_names = answers["field"].to_numpy(dtype=object)[mapped]
    locator = Locator(files.records, rows=lines[rows[mapped]], columns={
        "participant_id": record_id, "timepoint": EVENT, "value": field_names, "item": field_names,
        "instrument": field_names})
    dosing, dosing_locator = _dosing_sessions(records, record, columns, files, lines)
    type_of = dict(zip(dictionary[_FIELD].astype(str), dictionary[_TYPE].astype(str).str.strip(), strict=True))
    safety, safety_locators = {}, {}
    for form in SAFETY_FORMS:
        safety[form.table], safety_locators[form.table] = _safety_table(form, records, record, columns, type_of,
                                                                        files, lines, problems)
    more, values = check_study(protocol, participants, responses[mapped].reset_index(drop=True), dosing,
                               {"responses": locator, "participants": participants_locator,
                                "dosing_sessions": dosing_locator, **safety_locators}, **safety)
    problems += [p for p in more if not (no_arm and p.file == participants_locator.file and p.value is None
                                         and p.column == participants_locator.column("arm", 0))]
    if problems:
        raise StudyDataError(problems, f"{_count(problems)} in the REDCap import; nothing was imported")
    return Study(protocol=protocol, participants=participants,
                 responses=sort_responses(responses.assign(value=values), protocol, list(pd.unique(record.dropna()))),
                 dosing_sessions=dosing, **safety)


@dataclass(frozen=True)
class _RecordLocator(Locator):
    """A :class:`Locator` of rows read from REDCap records whose messages also name each row's record.

    ``records`` holds, per row, ``record 'P001', adverse_events instance 2``: the records file's
    line and the field say where the cell is, the record and instance say which entry it is in
    REDCap's own screens.
    """

    records: np.ndarray | None = None

    def problem(self, position: int, column: str, value: object, allowed: str, reason: str) -> DataProblem:
        found = super().problem(position, column, value, allowed, reason)
        return found if self.records is None else replace(found, reason=f"{found.reason} ({self.records[position]})")


def _record_names(records: pd.DataFrame, record: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``record 'P001', adverse_events instance 2`` (or ``…, event baseline_arm_1``) for each row."""
    def column(name: str) -> np.ndarray:
        values = records[name].astype("string") if name in records.columns else pd.Series(pd.NA, index=records.index)
        return values.to_numpy(dtype=object, na_value=None)[rows]

    ids, forms, instances, events = (record.to_numpy(dtype=object, na_value=None)[rows], column(REPEAT_INSTRUMENT),
                                     column(REPEAT_INSTANCE), column(EVENT))
    names = []
    for rid, form, instance, event in zip(ids, forms, instances, events, strict=True):
        name = f"record {rid!r}"
        if instance:
            name += f", {form + ' ' if form else ''}instance {instance}"
        elif event:
            name += f", event {event}"
        names.append(name)
    return np.asarray(names, dtype=object)


def _safety_table(form: SafetyForm, records: pd.DataFrame, record: pd.Series, columns: _Columns,
                  type_of: dict[str, str], files: RedcapFiles, lines: np.ndarray,
                  problems: list[DataProblem]) -> tuple[pd.DataFrame | None, Locator]:
    """One safety table from its fields: a row for each records row that has any of them.

    A checkbox field (``ae_seriousness___death`` …) gives its ticked codes joined by ``;`` in the
    order of its columns (REDCap's choice order); a yes/no field's codes 1 and 0 are ``yes`` and
    ``no``; a recoding in the mapping applies to each code. Cells are kept as written otherwise
    (free text keeps its spaces), for the table's own checks to judge as they judge the CSV file.
    Without any field of the table the study has no such table.
    """
    fields = columns.safety.get(form.table)
    if not fields:
        return None, Locator(files.records)
    cells: dict[str, pd.Series] = {}
    source = {"participant_id": str(record.name)}
    present = np.zeros(len(records), dtype=bool)
    for name, (column, recode) in fields.items():
        if name in columns.checkboxes:
            values = _ticked_codes(records, columns.checkboxes[name], recode, files, lines, problems)
        else:
            codes = records[name].astype("string").replace("", pd.NA)
            if recode.table or recode.shift is not None:
                values, unmapped = recode.apply(codes)
                problems += [DataProblem(files.records, int(lines[p]), name, codes.iloc[p],
                                         "codes " + ", ".join(recode.table),
                                         f"is a code the recoding in {files.mapping} does not cover")
                             for p in np.flatnonzero(unmapped)]
            elif type_of.get(name) in ("yesno", "truefalse"):
                values = codes.str.strip().map(_YES_NO_CODES).astype("string").fillna(codes)
            else:
                values = codes
        cells[column] = values
        source[column] = name
        present |= values.notna().to_numpy(bool)
    rows = np.flatnonzero(present)
    table = {"participant_id": record.to_numpy(dtype=object)[rows]}
    table.update({c: cells[c].to_numpy(dtype=object, na_value=None)[rows] for c in form.columns if c in cells})
    frame = pd.DataFrame(table).astype("string")
    return frame, _RecordLocator(files.records, rows=lines[rows], columns=source,
                                 records=_record_names(records, record, rows))


def _ticked_codes(records: pd.DataFrame, columns: list[str], recode: Recode, files: RedcapFiles,
                  lines: np.ndarray, problems: list[DataProblem]) -> pd.Series:
    """A checkbox field's ticked codes per row, ``;``-joined (missing when none is ticked), recoded."""
    codes = [c.split("___", 1)[1] for c in columns]
    ticked = np.column_stack([(records[c].astype("string").str.strip() == "1").fillna(False).to_numpy(bool)
                              for c in columns])
    targets: list[str | None] = []
    for j, code in enumerate(codes):
        target: str | None = code
        if recode.table:
            target = recode.table.get(_code_key(code))
            if target is None:
                problems += [DataProblem(files.records, int(lines[p]), columns[j], "1",
                                         "codes " + ", ".join(recode.table),
                                         f"is a ticked box whose code {code!r} the recoding in {files.mapping} "
                                         "does not cover") for p in np.flatnonzero(ticked[:, j])]
        elif recode.shift is not None:
            number = pd.to_numeric(pd.Series([code]), errors="coerce").iloc[0]
            target = code if pd.isna(number) else format_number(float(number) + recode.shift)
        targets.append(target)
    values = [";".join(t for t, on in zip(targets, row, strict=True) if on and t is not None) or None
              for row in ticked]
    return pd.Series(values, index=records.index, dtype="string")


def _dosing_sessions(records: pd.DataFrame, record: pd.Series, columns: _Columns,
                     files: RedcapFiles, lines: np.ndarray) -> tuple[pd.DataFrame | None, Locator]:
    """The dosing sessions table from the dosing fields: one session per row that has any of them.

    Without a field mapped to ``session``, a row's session is its ``redcap_repeat_instance`` (the
    dosing form repeats once per session). Without any dosing field the study has no dosing table.
    """
    if not columns.dosing:
        return None, Locator(files.records)
    # the dosing-day record is kept as written (free text keeps its spaces; a time's are dropped on
    # reading, as from the CSV file), the other cells without spaces around them, as before
    cells = {name: (records[name].astype("string").replace("", pd.NA) if columns.dosing[name] in DOSING_DAY_COLUMNS
                    else records[name].astype("string").str.strip().replace("", pd.NA)) for name in columns.dosing}
    present = np.zeros(len(records), dtype=bool)
    for values in cells.values():
        present |= values.notna().to_numpy(bool)
    rows = np.flatnonzero(present)
    table: dict[str, object] = {"participant_id": record.to_numpy(dtype=object)[rows]}
    source = {"participant_id": str(record.name)}
    if "session" not in columns.dosing.values():
        instance = (records[REPEAT_INSTANCE].astype("string") if REPEAT_INSTANCE in records.columns
                    else pd.Series(pd.NA, index=records.index, dtype="string"))
        table["session"] = instance.to_numpy(dtype=object)[rows]
        source["session"] = REPEAT_INSTANCE
    for name, column in columns.dosing.items():
        table[column] = cells[name].to_numpy(dtype=object)[rows]
        source[column] = name
    ordered = [c for c in DOSING_COLUMNS if c in table]
    frame = pd.DataFrame({c: table[c] for c in ordered}).astype("string")
    return frame, Locator(files.records, rows=lines[rows], columns=source)


def _checkbox_codes(records: pd.DataFrame, columns: list[str]) -> tuple[pd.Series, np.ndarray]:
    """The ticked code of a checkbox field per row (missing when none), and rows with several ticked."""
    codes = [c.split("___", 1)[1] for c in columns]
    ticked = np.column_stack([(records[c].astype("string").str.strip() == "1").fillna(False).to_numpy(bool)
                              for c in columns])
    count = ticked.sum(axis=1)
    first = ticked.argmax(axis=1)
    values = np.where(count == 1, np.asarray(codes, dtype=object)[first], None)
    return pd.Series(values, index=records.index, dtype="string"), count > 1


def _participants(records: pd.DataFrame, record_id: str, mapping: RedcapMapping, protocol: Protocol,
                  columns: _Columns, files: RedcapFiles, problems: list[DataProblem],
                  lines: np.ndarray) -> tuple[pd.DataFrame, Locator]:
    record = records[record_id].astype("string")
    first_rows = np.flatnonzero(~record.duplicated().to_numpy(bool) & record.notna().to_numpy(bool))
    table = pd.DataFrame({"participant_id": record.iloc[first_rows].to_numpy()})
    arm_by_number = mapping.arms or {n + 1: a for n, a in enumerate(protocol.arm_ids)}
    arm_column = EVENT
    arm = pd.Series(pd.NA, index=records.index, dtype="string")
    if EVENT in records.columns:
        number = records[EVENT].astype("string").str.extract(r"_arm_(\d+)$")[0]
        arm = pd.to_numeric(number, errors="coerce").map(arm_by_number).astype("string")
    for name, (column, recode) in columns.participant.items():
        values, unmapped = recode.apply(records[name].astype("string").str.strip().replace("", pd.NA))
        for position in np.flatnonzero(unmapped):
            problems.append(DataProblem(files.records, int(lines[position]), name, records[name].iloc[position],
                                        "codes " + ", ".join(recode.table),
                                        f"is a code the recoding in {files.mapping} does not cover"))
        per_record = values.groupby(record, sort=False).first()
        if column == "arm":
            arm, arm_column = values, name
            continue
        table[column] = per_record.reindex(table["participant_id"]).to_numpy()
    per_record_arm = arm.groupby(record, sort=False).first()
    table.insert(1, "arm", per_record_arm.reindex(table["participant_id"]).astype("string").to_numpy())
    locator = Locator(files.records, rows=lines[first_rows], columns={"participant_id": record_id, "arm": arm_column})
    for position in np.flatnonzero(table["arm"].isna().to_numpy(bool)):
        problems.append(locator.problem(position, "arm", None,
                                        f"REDCap arms mapped under arms: in {files.mapping}, or a participant "
                                        "field mapped to the column arm",
                                        f"record {table.at[position, 'participant_id']!r} has no arm"))
    return table, locator


def read_redcap(dictionary: str | Path, records: str | Path, mapping: str | Path | None = None,
                protocol: Protocol | None = None, participants: pd.DataFrame | None = None) -> Study:
    """Import a REDCap project export (edge function: reads the files, then :func:`study_from_redcap`).

    Parameters
    ----------
    dictionary, records : str or Path
        The data dictionary CSV and the flat records CSV (raw codes).
    mapping : str or Path, optional
        The mapping YAML (none: fields named like items, events named like timepoints).
    protocol : Protocol, optional
    participants : DataFrame, optional

    Returns
    -------
    Study
    """
    # The one bounded YAML reader (size, aliases, nesting, UTF-8): a ProtocolError names the file.
    raw = read_yaml_file(mapping) if mapping is not None else None
    files = RedcapFiles(str(dictionary), str(records), str(mapping or "mapping"))
    protocol = protocol or default_protocol()
    table, lines = read_table(Path(records), lines=True)
    return study_from_redcap(read_table(Path(dictionary)), table, parse_mapping(raw, protocol, files.mapping),
                             protocol, participants, files, lines)


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RedcapProject:
    """A study as a REDCap project: what :func:`write_redcap` writes, one DataFrame per file."""

    dictionary: pd.DataFrame
    records: pd.DataFrame
    arms: pd.DataFrame
    events: pd.DataFrame
    form_events: pd.DataFrame
    mapping: RedcapMapping
    repeating: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["event_name", "form_name", "custom_form_label"]))


def _field_name(column: str, taken: set[str]) -> str:
    """A legal REDCap field name: lower-case letters, digits, underscores, starting with a letter."""
    name = re.sub(r"[^a-z0-9_]+", "_", column.lower()).strip("_") or "field"
    if not name[0].isalpha():
        name = f"p_{name}"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _choices(item: Item) -> str:
    """REDCap radio choices ``code, label | …``: every allowed answer, labelled by its anchor if any."""
    codes = np.arange(item.min, item.max + item.step / 2, item.step)
    return " | ".join(f"{format_number(c)}, {item.anchors.get(float(c), format_number(c))}" for c in codes)


def _item_row(inst: Instrument, item: Item, whole_numbers: bool, first: bool) -> dict[str, str]:
    row = dict.fromkeys(DICTIONARY_COLUMNS, "")
    row.update({_FIELD: item.id, _FORM: inst.id, "Field Label": item.text or f"{inst.short_name} item {item.number}"})
    if first:
        row["Section Header"] = inst.name
    low, high = format_number(item.min), format_number(item.max)
    integral = float(item.min).is_integer() and float(item.max).is_integer()
    if item.step is not None and float(item.step).is_integer() and integral:
        row.update({_TYPE: "radio", "Choices, Calculations, OR Slider Labels": _choices(item)})
    elif item.step is None and integral and whole_numbers:
        labels = [item.anchors.get(item.min, low), "", item.anchors.get(item.max, high)]
        row.update({_TYPE: "slider", "Choices, Calculations, OR Slider Labels": " | ".join(labels),
                    "Text Validation Type OR Show Slider Number": "number",
                    "Text Validation Min": low, "Text Validation Max": high})
    else:
        row.update({_TYPE: "text", "Text Validation Type OR Show Slider Number": "number",
                    "Text Validation Min": low, "Text Validation Max": high,
                    "Field Note": item.allowed()})
    return row


def _text_row(name: str, form: str, label: str, validation: str = "", identifier: bool = False) -> dict[str, str]:
    row = dict.fromkeys(DICTIONARY_COLUMNS, "")
    row.update({_FIELD: name, _FORM: form, _TYPE: "text", "Field Label": label,
                "Text Validation Type OR Show Slider Number": validation, "Identifier?": "y" if identifier else ""})
    return row


def _field_row(name: str, form: str, label: str, field_type: str = "text", validation: str = "", choices: str = "",
               note: str = "", minimum: str = "", maximum: str = "") -> dict[str, str]:
    row = dict.fromkeys(DICTIONARY_COLUMNS, "")
    row.update({_FIELD: name, _FORM: form, _TYPE: field_type, "Field Label": label,
                "Choices, Calculations, OR Slider Labels": choices, "Field Note": note,
                "Text Validation Type OR Show Slider Number": validation, "Text Validation Min": minimum,
                "Text Validation Max": maximum})
    return row


# REDCap's date and time validations, each with the one form of text it accepts.
_TIME_VALIDATIONS = (("date_ymd", r"\d{4}-\d{2}-\d{2}"), ("datetime_ymd", r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"),
                     ("datetime_seconds_ymd", r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"), ("time", r"\d{2}:\d{2}"),
                     ("time_hh_mm_ss", r"\d{2}:\d{2}:\d{2}"))


def _time_validation(values: pd.Series, empty: str) -> str:
    """The REDCap validation every value of a date or time column passes (``""``: none does; ``empty`` without values).

    The values are exported as written, so that the import gives back the same text: a column
    written ``2024-03-01T10:30`` (which REDCap's ``datetime_ymd``, ``2024-03-01 10:30``, would
    refuse) is a text field without validation, its form said in the field note.
    """
    text = values.dropna().astype(str)
    if not len(text):
        return empty
    return next((name for name, pattern in _TIME_VALIDATIONS if text.str.fullmatch(pattern).all()), "")


def _coded_choices(codes: tuple[str, ...], labels: dict[str, str] | None = None) -> str:
    """REDCap choices ``code, label | …`` with the contract's own words as codes (``not_related, Not related``)."""
    labels = labels or {}
    return " | ".join(f"{c}, {labels.get(c, c.replace('_', ' ').capitalize())}" for c in codes)


_SEVERITY_CHOICES = "1, 1 Mild | 2, 2 Moderate | 3, 3 Severe | 4, 4 Life-threatening | 5, 5 Death"
_SERIOUSNESS_LABELS = {"death": "Results in death", "life_threatening": "Is life-threatening",
                       "hospitalisation": "Requires or prolongs hospitalisation",
                       "disability": "Results in persistent or significant disability",
                       "congenital_anomaly": "Is a congenital anomaly or birth defect",
                       "important_medical_event": "Is another important medical event"}
_DATE_NOTE = "ISO-8601 date or date-time (2024-03-01, 2024-03-01T14:30)"
_SESSION_TIME_NOTE = "ISO-8601 date-time (2024-03-01T09:30), or HH:MM on the session's date"


def _dosing_day_row(name: str, column: str, values: pd.Series) -> dict[str, str]:
    """The data dictionary row of a dosing-day field (docs/data.md, dosing_sessions.csv)."""
    if column in ("started_at", "ended_at"):
        validation = _time_validation(values, "time")
        return _field_row(name, DOSING_FORM, "Started at" if column == "started_at" else "Ended at",
                          validation=validation, note="" if validation else _SESSION_TIME_NOTE)
    if column == "present":
        return _field_row(name, DOSING_FORM, "Present", note="IDs separated by ';', a facilitator's alone, other "
                          "staff as role:ID (monitor, physician, other): F1;F2;monitor:M1")
    if column == "rescue_medication":
        return _field_row(name, DOSING_FORM, "Rescue medication", note="What, how much, when; empty: none given")
    return _field_row(name, DOSING_FORM, "Setting notes" if column == "setting_notes" else "Music notes", "notes")


def _safety_row(form: SafetyForm, name: str, column: str, values: pd.Series) -> dict[str, str]:
    """The data dictionary row of a safety field: REDCap's type for the column's allowed values."""
    f = form.form
    if form.table == "adverse_events":
        if column in ("onset", "resolved_on"):
            validation = _time_validation(values, "date_ymd")
            label = "Onset" if column == "onset" else "Resolved on (empty while ongoing)"
            return _field_row(name, f, label, validation=validation, note="" if validation else _DATE_NOTE)
        rows = {
            "ae_id": _field_row(name, f, "Adverse event id", note="Unique in the study (AE-001)"),
            "term": _field_row(name, f, "Term (what happened)"),
            "severity": _field_row(name, f, "Severity (CTCAE v5.0 grade)", "radio", choices=_SEVERITY_CHOICES),
            "serious": _field_row(name, f, "Serious (ICH E2A)", "yesno"),
            "seriousness": _field_row(name, f, "Seriousness criteria (ICH E2A)", "checkbox",
                                      choices=_coded_choices(SERIOUSNESS_CRITERIA, _SERIOUSNESS_LABELS)),
            "relatedness": _field_row(name, f, "Relatedness to the study treatment", "radio",
                                      choices=_coded_choices(RELATEDNESS)),
            "expected": _field_row(name, f, "Expected (listed in the investigator's brochure)", "yesno"),
            "action": _field_row(name, f, "Action taken with the study treatment", "dropdown",
                                 choices=_coded_choices(ACTIONS)),
            "outcome": _field_row(name, f, "Outcome", "dropdown", choices=_coded_choices(OUTCOMES)),
            "code": _field_row(name, f, "Code in the site's dictionary (e.g. MedDRA)"),
        }
        return rows[column]
    if form.table == "vital_signs":
        if column in PLAUSIBLE_RANGES:
            low, high = PLAUSIBLE_RANGES[column]
            label = {"systolic_bp": "Systolic blood pressure (mmHg)", "diastolic_bp": "Diastolic blood pressure (mmHg)",
                     "heart_rate": "Heart rate (beats per minute)"}[column]
            return _field_row(name, f, label, validation="number", minimum=format_number(low),
                              maximum=format_number(high))
        if column == "measured_at":
            validation = _time_validation(values, "datetime_ymd")
            return _field_row(name, f, "Measured at", validation=validation,
                              note="" if validation else "ISO-8601 date-time (2024-03-01T10:30)")
        if column == "session":
            return _field_row(name, f, "Dosing session number", validation="integer")
        return _field_row(name, f, "Minutes after the dose (negative: before it)", validation="integer",
                          minimum=str(MIN_MINUTES_AFTER_DOSE))
    labels = {"name": "Medication", "dose": "Dose", "start": "Start (first day taken)",
              "stop": "Stop (last day taken; empty while ongoing)", "indication": "Indication"}
    return _field_row(name, f, labels[column], validation="date_ymd" if column in ("start", "stop") else "")


def redcap_from_study(study: Study) -> RedcapProject:
    """Convert a study to a longitudinal REDCap project.

    Parameters
    ----------
    study : Study
        A valid study.

    Returns
    -------
    RedcapProject
        Data dictionary (18 columns), records (raw codes), arms, events, instrument-event
        designations and the mapping that imports the records back.

    Notes
    -----
    Radio codes are the instrument's own values, so the mapping needs no recoding. A
    visual-analogue item becomes a slider when its bounds and every recorded answer are whole
    numbers (REDCap sliders record whole numbers), and otherwise a text field validated as a
    number within the item's range. Dosing sessions and the safety tables are repeating forms on
    the arm's first event (the module docstring); a safety instance is numbered 1, 2, … per
    participant in the table's order, a dosing instance by its session.
    """
    protocol, responses = study.protocol, study.responses
    refuse_facilitator_rated(responses, "a REDCap project", "one record per participant and event")
    participants = study.participants
    taken = {RECORD_ID} | {item for i in protocol.instruments for item in bank.get(i).item_ids} \
        | {f"{i}_{c}" for i in protocol.instruments for c in _ADMINISTRATION} | set(DOSING_FIELDS) \
        | {name for form in SAFETY_FORMS for name in form.fields}
    rows = [_text_row(RECORD_ID, PARTICIPANT_FORM, "Participant ID")]
    participant_fields: dict[str, tuple[str, Recode]] = {}
    for column in participants.columns:
        if column in ("participant_id", "arm"):
            continue
        name = _field_name(str(column), taken)
        series = participants[column]
        validation = ("integer" if pd.api.types.is_integer_dtype(series)
                      else "number" if pd.api.types.is_float_dtype(series)
                      else "date_ymd" if column == "enrolled_on" else "")
        rows.append(_text_row(name, PARTICIPANT_FORM, str(column), validation, column in protocol.identifiers))
        participant_fields[name] = (str(column), Recode())
    values = responses["value"].to_numpy(dtype=float, na_value=np.nan)
    fractional = set(responses.loc[np.mod(values, 1) != 0, "item"].astype(str))
    for instrument_id in protocol.instruments:
        inst = bank.get(instrument_id)
        rows.append(_text_row(f"{inst.id}_administered_at", inst.id, "Administered at (ISO-8601)"))
        rows.append(_text_row(f"{inst.id}_rater", inst.id, "Rater"))
        rows += [_item_row(inst, item, item.id not in fractional, j == 0) for j, item in enumerate(inst.items)]
    dosing_fields: dict[str, str] = {}
    if study.dosing_sessions is not None:
        # A repeating form on the arm's first event, one instance per dosing session.
        labels = {"session": ("Dosing session number", "integer"), "date": ("Date (ISO-8601)", ""),
                  "compound": ("Compound", ""), "amount": ("Amount", "number"), "unit": ("Unit", "")}
        for name, column in DOSING_FIELDS.items():
            if column == "session" or column in study.dosing_sessions.columns:
                rows.append(_text_row(name, DOSING_FORM, *labels[column]) if column in labels
                            else _dosing_day_row(name, column, study.dosing_sessions[column]))
                dosing_fields[name] = column
    safety_fields: dict[str, dict[str, str]] = {}
    for form in SAFETY_FORMS:
        table = getattr(study, form.table)
        if table is None:
            continue
        # A repeating form on the arm's first event, one instance per row of the table.
        safety_fields[form.table] = {name: column for name, column in form.fields.items() if column in table.columns}
        rows += [_safety_row(form, name, column, table[column]) for name, column in safety_fields[form.table].items()]
    dictionary = pd.DataFrame(rows, columns=list(DICTIONARY_COLUMNS))

    arm_number = {a.id: n + 1 for n, a in enumerate(protocol.arms)}
    arms = pd.DataFrame({"arm_num": list(arm_number.values()), "name": [a.label for a in protocol.arms]})
    events, form_events, repeating = [], [], []
    for arm in protocol.arms:
        # REDCap's days offset counts from the arm's first event, not from each visit's own anchor;
        # the planned dates of one participant of the arm give it (any enrolment date will do).
        planned = planned_dates(protocol, arm.id, _DAY_ZERO)
        first = min(planned.values())
        for t in protocol.timepoints:
            unique = f"{t.id}_arm_{arm_number[arm.id]}"
            events.append({"event_name": t.id, "arm_num": arm_number[arm.id],
                           "day_offset": (planned[t.id] - first).days, "offset_min": t.window_days[0],
                           "offset_max": t.window_days[1], "unique_event_name": unique})
            forms = ([PARTICIPANT_FORM] if t.id == protocol.timepoint_ids[0] else []) + list(t.instruments)
            if dosing_fields and t.id == protocol.timepoint_ids[0]:
                forms.append(DOSING_FORM)
                repeating.append({"event_name": unique, "form_name": DOSING_FORM,
                                  "custom_form_label": "Session [dosing_session]"})
            if t.id == protocol.timepoint_ids[0]:
                for form in SAFETY_FORMS:
                    if form.table in safety_fields:
                        forms.append(form.form)
                        repeating.append({"event_name": unique, "form_name": form.form,
                                          "custom_form_label": form.label})
            form_events += [{"arm_num": arm_number[arm.id], "unique_event_name": unique, "form": f} for f in forms]

    repeating_forms = ([DOSING_FORM] if dosing_fields else []) + [f.form for f in SAFETY_FORMS if f.table in safety_fields]
    records = _records(study, dictionary, participant_fields, arm_number, set(repeating_forms))
    instances = []
    if dosing_fields:
        instances.append(_dosing_instances(study, dosing_fields))
    instances += [_safety_instances(study, form, safety_fields[form.table], dictionary)
                  for form in SAFETY_FORMS if form.table in safety_fields]
    if instances:
        records = _with_repeating(study, records, instances, repeating_forms, arm_number)
    mapping = RedcapMapping(
        record_id=RECORD_ID,
        events={t: t for t in protocol.timepoint_ids},
        arms={n: a for a, n in arm_number.items()},
        participant_fields=participant_fields,
        dosing_fields=dosing_fields,
        **{form.section: {name: (column, Recode()) for name, column in safety_fields[form.table].items()}
           for form in SAFETY_FORMS if form.table in safety_fields},
    )
    return RedcapProject(dictionary, records, arms, pd.DataFrame(events), pd.DataFrame(form_events), mapping,
                         pd.DataFrame(repeating, columns=["event_name", "form_name", "custom_form_label"]))


def _dosing_instances(study: Study, dosing_fields: dict[str, str]) -> pd.DataFrame:
    """The dosing form's instances: one per dosing session, the session number as the instance."""
    dosing = study.dosing_sessions
    session = dosing["session"].astype("Int64").astype("string")
    extra = pd.DataFrame({RECORD_ID: dosing["participant_id"].astype("string"), REPEAT_INSTRUMENT: DOSING_FORM,
                          REPEAT_INSTANCE: session})
    for name, column in dosing_fields.items():
        values = dosing[column]
        extra[name] = (format_numbers(values) if column == "amount" and pd.api.types.is_numeric_dtype(values)
                       else session if column == "session" else values.astype("string"))
    extra[f"{DOSING_FORM}_complete"] = "2"
    return extra


def _safety_instances(study: Study, form: SafetyForm, fields: dict[str, str], dictionary: pd.DataFrame) -> pd.DataFrame:
    """A safety form's instances: one per row of its table, numbered 1, 2, … per participant in table order.

    Numbers are written in their shortest form, yes/no as REDCap's codes 1 / 0, and a checkbox
    field (the seriousness criteria) as one ``field___code`` column per choice, 1 where the row
    names the criterion and 0 where it does not.
    """
    table = getattr(study, form.table)
    type_of = dict(zip(dictionary[_FIELD], dictionary[_TYPE], strict=True))
    participant = table["participant_id"].astype("string")
    extra = pd.DataFrame({RECORD_ID: participant, REPEAT_INSTRUMENT: form.form,
                          REPEAT_INSTANCE: (participant.groupby(participant, sort=False).cumcount() + 1).astype("string")})
    for name, column in fields.items():
        values = table[column]
        if type_of[name] == "checkbox":  # the one checkbox of the safety forms: the seriousness criteria
            named = values.astype("string").fillna("").map(lambda cell: {c.strip() for c in cell.split(";")})
            for code in SERIOUSNESS_CRITERIA:
                extra[f"{name}___{code}"] = named.map(lambda criteria, code=code: "1" if code in criteria else "0")
        elif type_of[name] == "yesno" and pd.api.types.is_bool_dtype(values):
            extra[name] = values.map({True: "1", False: "0"}).astype("string")
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            extra[name] = format_numbers(values)
        else:
            extra[name] = values.astype("string")
    extra[f"{form.form}_complete"] = "2"
    return extra


def _with_repeating(study: Study, records: pd.DataFrame, instances: list[pd.DataFrame], forms: list[str],
                    arm_number: dict[str, int]) -> pd.DataFrame:
    """The records with the repeating forms' instances on the first event (dosing, then the safety forms).

    REDCap's flat export puts a repeating instrument's instances after the event's own row, with
    ``redcap_repeat_instrument`` and ``redcap_repeat_instance`` set; the other rows leave them
    empty. Here each participant's instances follow the first event's row, form by form, each
    form's in instance order.
    """
    arm_of = dict(zip(study.participants["participant_id"], study.participants["arm"], strict=True))
    first = study.protocol.timepoint_ids[0]
    extra = pd.concat(instances, ignore_index=True)
    extra.insert(1, EVENT, [f"{first}_arm_{arm_number[arm_of[pid]]}" for pid in extra[RECORD_ID]])
    records = records.copy()
    records.insert(2, REPEAT_INSTRUMENT, pd.NA)
    records.insert(3, REPEAT_INSTANCE, pd.NA)
    out = pd.concat([records, extra], ignore_index=True).astype("string")
    # Each participant's rows stay together in the records' order, an instance after its event's row.
    position = {pid: n for n, pid in enumerate(pd.unique(records[RECORD_ID]))}
    order = pd.DataFrame({"participant": out[RECORD_ID].map(position), "repeat": out[REPEAT_INSTANCE].notna(),
                          "row": np.arange(len(out))})
    first_rows = order[~order["repeat"]].groupby("participant")["row"].min()
    order["at"] = np.where(order["repeat"], order["participant"].map(first_rows) + 0.5, order["row"])
    order["form"] = out[REPEAT_INSTRUMENT].map({f: n for n, f in enumerate(forms)}).fillna(-1).to_numpy()
    order["instance"] = pd.to_numeric(out[REPEAT_INSTANCE], errors="coerce").fillna(0).to_numpy()
    ranked = order.sort_values(["participant", "at", "form", "instance"], kind="stable").index
    return out.loc[ranked].reset_index(drop=True)


def _records(study: Study, dictionary: pd.DataFrame, participant_fields: dict[str, tuple[str, Recode]],
             arm_number: dict[str, int], repeating_forms: set[str] = frozenset()) -> pd.DataFrame:
    """One row per participant × event with the participant form and the instruments' answers.

    The repeating forms (``repeating_forms``: dosing, the safety tables) are left out: their
    instances are rows of their own (:func:`_with_repeating`).
    """
    protocol = study.protocol
    participants = study.participants
    responses = sort_responses(study.responses, protocol, study.participant_ids)
    first_timepoint = protocol.timepoint_ids[0]
    # One row per participant × timepoint with data, plus the first timepoint for the participant form.
    keys = pd.concat([
        pd.DataFrame({"participant_id": participants["participant_id"], "timepoint": first_timepoint}),
        responses[["participant_id", "timepoint"]],
    ]).drop_duplicates()
    keys = keys.astype("string")
    keys = sort_responses(keys.assign(instrument=pd.NA, item=pd.NA), protocol, study.participant_ids)[
        ["participant_id", "timepoint"]]
    row_of = pd.MultiIndex.from_frame(keys).get_indexer(pd.MultiIndex.from_frame(responses[["participant_id", "timepoint"]]))
    arm_of = dict(zip(participants["participant_id"], participants["arm"], strict=True))
    event = keys["timepoint"] + "_arm_" + keys["participant_id"].map(arm_of).map(arm_number).astype("string")
    out: dict[str, object] = {RECORD_ID: keys["participant_id"].to_numpy(), EVENT: event.to_numpy()}
    on_first = (keys["timepoint"] == first_timepoint).to_numpy(bool)
    by_id = participants.set_index("participant_id")
    ordered_forms = list(dict.fromkeys(dictionary[_FORM]))
    text_values = format_numbers(responses["value"]).to_numpy(dtype=object)
    for form in ordered_forms:
        if form in repeating_forms:
            continue
        fields = dictionary.loc[dictionary[_FORM] == form, _FIELD].tolist()
        if form == PARTICIPANT_FORM:
            for name in fields[1:]:
                column = participant_fields[name][0]
                series = by_id[column]
                text = format_numbers(series) if pd.api.types.is_numeric_dtype(series) \
                    and not pd.api.types.is_bool_dtype(series) else series.astype("string")
                values = text.reindex(keys["participant_id"]).to_numpy(dtype=object)
                out[name] = np.where(on_first, values, None)
            out[f"{form}_complete"] = np.where(on_first, "2", None)
            continue
        mine = (responses["instrument"] == form).to_numpy(bool)
        has_form = np.zeros(len(keys), dtype=bool)
        has_form[row_of[mine]] = True
        for name in fields:
            column = np.full(len(keys), None, dtype=object)
            if name.endswith(("_administered_at", "_rater")) and name.startswith(f"{form}_"):
                source = name[len(form) + 1:]
                column[row_of[mine]] = responses.loc[mine, source].to_numpy(dtype=object)
            else:
                rows = mine & (responses["item"] == name).to_numpy(bool)
                column[row_of[rows]] = text_values[rows]
            out[name] = column
        out[f"{form}_complete"] = np.where(has_form, "2", None)
    records = pd.DataFrame(out).astype("string")
    return records


def write_redcap(study: Study, directory: str | Path, *, spreadsheet: bool = True) -> RedcapProject:
    """Export a study as REDCap files (edge function around :func:`redcap_from_study`).

    Writes ``data_dictionary.csv``, ``records.csv``, ``arms.csv``, ``events.csv``,
    ``instrument_event_mapping.csv``, and for a study with dosing sessions or safety tables
    ``repeating_instruments.csv`` (the repeating forms ``dosing``, ``adverse_events``,
    ``vital_signs`` and ``concomitant_medications`` on each arm's first event; REDCap's Data
    Import Tool / API formats) and
    ``mapping.yaml`` (reads the records back with :func:`read_redcap`).

    Parameters
    ----------
    study : Study
    directory : str or Path
        Created if needed.
    spreadsheet : bool
        Neutralise text cells a spreadsheet would run as a formula (:func:`alliance.study.io.write_table`);
        ``False`` for files uploaded to REDCap untouched, which would keep the ``'``.

    Returns
    -------
    RedcapProject
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    project = redcap_from_study(study)
    for frame, name in ((project.dictionary, "data_dictionary.csv"), (project.records, "records.csv"),
                        (project.arms, "arms.csv"), (project.events, "events.csv"),
                        (project.form_events, "instrument_event_mapping.csv")):
        write_table(frame, directory / name, spreadsheet=spreadsheet)
    if len(project.repeating):
        write_table(project.repeating, directory / "repeating_instruments.csv", spreadsheet=spreadsheet)
    (directory / "mapping.yaml").write_text(project.mapping.to_yaml(), encoding="utf-8")
    return project
