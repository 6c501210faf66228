"""Export a study as a REDCap project: data dictionary, records, arms, events, designations, mapping."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.instruments import Instrument, Item
from alliance.monitoring.schedule import planned_dates

from ...administrations import refuse_facilitator_rated
from ...adverse_events import ACTIONS, OUTCOMES, RELATEDNESS, SERIOUSNESS_CRITERIA
from ...errors import StudyDataError
from ...io import write_table
from ...tidy import Study, format_number, format_numbers, sort_responses
from ...vital_signs import MIN_MINUTES_AFTER_DOSE, PLAUSIBLE_RANGES
from .dictionary_rules import MAX_FIELD_NAME, check_dictionary, unique_event_name
from .mapping import Recode, RedcapMapping
from .schema import (
    _ADMINISTRATION,
    _DAY_ZERO,
    _FIELD,
    _FORM,
    _TYPE,
    DICTIONARY_COLUMNS,
    DOSING_FIELDS,
    DOSING_FORM,
    EVENT,
    PARTICIPANT_FORM,
    RECORD_ID,
    REPEAT_INSTANCE,
    REPEAT_INSTRUMENT,
    SAFETY_FORMS,
    SafetyForm,
)

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
    """A REDCap field name its upload takes as is (:func:`check_dictionary`), not in ``taken`` (then added to it).

    Lower-case letters, digits and single underscores, starting with a letter, at most 26
    characters: a longer name is cut, and a name already taken gets ``_2``, ``_3``, … within the 26.
    """
    name = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]+", "_", column.lower())).strip("_") or "field"
    if not name[0].isalpha():
        name = f"p_{name}"
    if name.endswith("_complete"):  # REDCap keeps <form>_complete for each form's status
        name = f"{name}_field"

    def fitted(stem: str, suffix: str = "") -> str:
        return stem[:MAX_FIELD_NAME - len(suffix)].rstrip("_") + suffix

    candidate, n = fitted(name), 2
    while candidate in taken:
        candidate, n = fitted(name, f"_{n}"), n + 1
    taken.add(candidate)
    return candidate


# The administration fields of each instrument's form: <instrument>_date and <instrument>_rater.
# Item ids are <instrument>_<number>, so these names are never an item's; a name that would pass
# REDCap's 26 characters is cut (and numbered if that makes it another's).
_ADMINISTRATION_FIELDS = {"administered_at": "date", "rater": "rater"}


def _administration_names(instruments: tuple[str, ...], taken: set[str]) -> dict[tuple[str, str], str]:
    """``(instrument, rater | administered_at)`` → the REDCap field, for every instrument of the protocol."""
    names = {}
    for instrument in instruments:
        for column, ending in _ADMINISTRATION_FIELDS.items():
            names[(instrument, column)] = _field_name(f"{instrument}_{ending}", taken)
    return names


def _event_names(protocol, arm_number: dict[str, int], offsets: dict[tuple[str, str], int]) -> dict[tuple[str, str], str]:
    """``(arm, timepoint)`` → REDCap's unique event name, derived from the timepoint's label.

    REDCap numbers equal names in its own order of events — by arm, day offset, then label
    (``Project::loadEvents``) — so the names are given in that order.
    """
    names: dict[tuple[str, str], str] = {}
    for arm in protocol.arms:
        given: list[str] = []
        for t in sorted(protocol.timepoints, key=lambda t: (offsets[(arm.id, t.id)], t.label)):
            names[(arm.id, t.id)] = unique_event_name(t.label, arm_number[arm.id], given)
            given.append(names[(arm.id, t.id)])
    return names


def _mapping_events(protocol, events: dict[tuple[str, str], str]) -> dict[str, str]:
    """The mapping's ``events:``: an event name without ``_arm_<n>`` where every arm's is the same, else each unique name."""
    out: dict[str, str] = {}
    for t in protocol.timepoints:
        unique = [events[(arm.id, t.id)] for arm in protocol.arms]
        stems = {re.sub(r"_arm_\d+$", "", name) for name in unique}
        if len(stems) == 1 and all(re.search(r"_arm_\d+$", name) for name in unique):
            out[stems.pop()] = t.id
        else:
            out.update(dict.fromkeys(unique, t.id))
    return out


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
    taken = {RECORD_ID} | {item for i in protocol.instruments for item in bank.get(i).item_ids} | set(DOSING_FIELDS) \
        | {name for form in SAFETY_FORMS for name in form.fields}
    administration = _administration_names(protocol.instruments, taken)
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
        given = responses.loc[responses["instrument"] == inst.id, "administered_at"] \
            if "administered_at" in responses.columns else pd.Series(dtype="string")
        validation = _time_validation(given, "date_ymd")
        rows.append(_field_row(administration[(inst.id, "administered_at")], inst.id, "Date administered",
                               validation=validation, note="" if validation else _DATE_NOTE))
        rows.append(_text_row(administration[(inst.id, "rater")], inst.id, "Rater"))
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
    offsets = {}
    for arm in protocol.arms:
        # REDCap's days offset counts from the arm's first event, not from each visit's own anchor;
        # the planned dates of one participant of the arm give it (any enrolment date will do).
        planned = planned_dates(protocol, arm.id, _DAY_ZERO)
        first = min(planned.values())
        offsets.update({(arm.id, t): (day - first).days for t, day in planned.items()})
    event_names = _event_names(protocol, arm_number, offsets)
    events, form_events, repeating = [], [], []
    for arm in protocol.arms:
        for t in protocol.timepoints:
            unique = event_names[(arm.id, t.id)]
            # REDCap's API columns of an event; it derives unique_event_name from event_name itself.
            events.append({"event_name": t.label, "arm_num": arm_number[arm.id], "day_offset": offsets[(arm.id, t.id)],
                           "offset_min": t.window_days[0], "offset_max": t.window_days[1],
                           "unique_event_name": unique, "custom_event_label": t.id})
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
    records = _records(study, dictionary, participant_fields, event_names, administration, set(repeating_forms))
    instances = []
    if dosing_fields:
        instances.append(_dosing_instances(study, dosing_fields))
    instances += [_safety_instances(study, form, safety_fields[form.table], dictionary)
                  for form in SAFETY_FORMS if form.table in safety_fields]
    if instances:
        records = _with_repeating(study, records, instances, repeating_forms, event_names)
    mapping = RedcapMapping(
        record_id=RECORD_ID,
        events=_mapping_events(protocol, event_names),
        arms={n: a for a, n in arm_number.items()},
        participant_fields=participant_fields,
        administration_fields={name: key for key, name in administration.items()},
        dosing_fields=dosing_fields,
        **{form.section: {name: (column, Recode()) for name, column in safety_fields[form.table].items()}
           for form in SAFETY_FORMS if form.table in safety_fields},
    )
    problems = check_dictionary(dictionary, record_id=RECORD_ID)
    if problems:  # a bug guard: the exporter's own names and types must pass REDCap's upload
        raise StudyDataError(problems, f"the exported data dictionary breaks {len(problems)} of REDCap's upload "
                             "rules (a bug in alliance's REDCap export; please report it)")
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
                    event_names: dict[tuple[str, str], str]) -> pd.DataFrame:
    """The records with the repeating forms' instances on the first event (dosing, then the safety forms).

    REDCap's flat export puts a repeating instrument's instances after the event's own row, with
    ``redcap_repeat_instrument`` and ``redcap_repeat_instance`` set; the other rows leave them
    empty. Here each participant's instances follow the first event's row, form by form, each
    form's in instance order.
    """
    arm_of = dict(zip(study.participants["participant_id"], study.participants["arm"], strict=True))
    first = study.protocol.timepoint_ids[0]
    extra = pd.concat(instances, ignore_index=True)
    extra.insert(1, EVENT, [event_names[(arm_of[pid], first)] for pid in extra[RECORD_ID]])
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
             event_names: dict[tuple[str, str], str], administration: dict[tuple[str, str], str],
             repeating_forms: set[str] = frozenset()) -> pd.DataFrame:
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
    event = [event_names[(arm_of[p], t)] for p, t in zip(keys["participant_id"], keys["timepoint"], strict=True)]
    out: dict[str, object] = {RECORD_ID: keys["participant_id"].to_numpy(), EVENT: np.asarray(event, dtype=object)}
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
        source_of = {administration[(form, c)]: c for c in _ADMINISTRATION if (form, c) in administration}
        for name in fields:
            column = np.full(len(keys), None, dtype=object)
            if name in source_of:
                if source_of[name] in responses.columns:
                    column[row_of[mine]] = responses.loc[mine, source_of[name]].to_numpy(dtype=object)
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
