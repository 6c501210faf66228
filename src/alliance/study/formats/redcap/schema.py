"""REDCap's export schema as this package reads and writes it: column names, the dosing and safety forms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from ...adverse_events import ADVERSE_EVENT_COLUMNS
from ...medications import MEDICATION_COLUMNS
from ...tidy import format_number, format_numbers
from ...vital_signs import VITAL_SIGN_COLUMNS

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
_MAPPING_KEYS = ("record_id", "delimiter", "events", "arms", "ignore_arms", "join_arms", "timepoint", "repeating",
                 "forms", "fields", "participant_fields", "administration_fields", "dosing_fields",
                 "adverse_event_fields", "vital_sign_fields", "medication_fields", "ignore", "suggested")
# How a record id found in several REDCap arms is read (REDCap keeps one record per arm).
JOIN_ARMS = ("refuse", "separate", "join")
# The delimiters REDCap's export offers, and the words a mapping may give for them.
DELIMITERS = {",": ",", ";": ";", "\t": "\t", "\\t": "\t", "|": "|", "^": "^", "comma": ",", "semicolon": ";", "tab": "\t",
              "pipe": "|", "caret": "^"}
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


@dataclass(frozen=True)
class RedcapFiles:
    """File names for messages."""

    dictionary: str = "data_dictionary.csv"
    records: str = "records.csv"
    mapping: str = "mapping.yaml"
