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

from .dictionary_rules import check_dictionary, unique_event_name
from .directory import read_export
from .exporting import RedcapProject, redcap_from_study, write_redcap
from .files import API_DICTIONARY_COLUMNS, RedcapExport, choices, read_dictionary, read_records
from .importing import read_redcap, read_redcap_export, study_from_export, study_from_redcap
from .mapping import FieldMap, Recode, RedcapMapping, parse_mapping
from .odm import read_project_xml
from .schema import (
    ADVERSE_EVENT_FIELDS,
    ADVERSE_EVENT_FORM,
    DICTIONARY_COLUMNS,
    DOSING_FIELDS,
    DOSING_FORM,
    EVENT,
    MEDICATION_FIELDS,
    MEDICATION_FORM,
    PARTICIPANT_FORM,
    RECORD_ID,
    REPEAT_INSTANCE,
    REPEAT_INSTRUMENT,
    SAFETY_FORMS,
    VITAL_SIGN_FIELDS,
    VITAL_SIGN_FORM,
    RedcapFiles,
    SafetyForm,
)

__all__ = [
    "ADVERSE_EVENT_FIELDS",
    "ADVERSE_EVENT_FORM",
    "API_DICTIONARY_COLUMNS",
    "DICTIONARY_COLUMNS",
    "DOSING_FIELDS",
    "DOSING_FORM",
    "EVENT",
    "FieldMap",
    "MEDICATION_FIELDS",
    "MEDICATION_FORM",
    "PARTICIPANT_FORM",
    "RECORD_ID",
    "REPEAT_INSTANCE",
    "REPEAT_INSTRUMENT",
    "Recode",
    "RedcapExport",
    "RedcapFiles",
    "RedcapMapping",
    "RedcapProject",
    "SAFETY_FORMS",
    "SafetyForm",
    "VITAL_SIGN_FIELDS",
    "VITAL_SIGN_FORM",
    "check_dictionary",
    "choices",
    "parse_mapping",
    "read_dictionary",
    "read_export",
    "read_project_xml",
    "read_records",
    "read_redcap",
    "read_redcap_export",
    "redcap_from_study",
    "study_from_export",
    "study_from_redcap",
    "unique_event_name",
    "write_redcap",
]
