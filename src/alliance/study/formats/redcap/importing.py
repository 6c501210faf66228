"""Import a REDCap project export: data dictionary + records + mapping → a validated study."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.protocol import Protocol, default_protocol
from alliance.protocol.yaml_input import read_yaml_file

from ...errors import DataProblem, StudyDataError
from ...tidy import Study, check_study, format_number, sort_responses
from ...validation import DOSING_COLUMNS, DOSING_DAY_COLUMNS, Locator
from .directory import read_export
from .files import RedcapExport, read_arms, read_dictionary, read_events, read_records
from .mapping import FieldMap, Recode, RedcapMapping, parse_mapping
from .schema import (
    _ADMINISTRATION,
    _FIELD,
    _FORM,
    _OWN_PARTICIPANT_FIELDS,
    _SYSTEM,
    _TYPE,
    _YES_NO_CODES,
    DICTIONARY_COLUMNS,
    DOSING_FIELDS,
    EVENT,
    RECORD_ID,
    REPEAT_INSTANCE,
    REPEAT_INSTRUMENT,
    SAFETY_FORMS,
    RedcapFiles,
    SafetyForm,
    _code_key,
    _count,
)

# An event's unique name without its arm: prep_arm_2 → prep.
_ARM_ENDING = re.compile(r"_arm_\d+$")

# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------

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
    # alliance's export names the date <instrument>_date (REDCap's 26 characters leave no room for
    # grid_hamd17_administered_at); read so without a mapping only on the instrument's own form.
    own_administration.update({f"{i}_date": (i, "administered_at") for i in protocol.instruments
                               if form_of.get(f"{i}_date") == i})
    columns = _Columns()
    # A system column is read past unless the mapping names it: the data access group as the site,
    # a survey's timestamp as an administration's date.
    named_system = (set(mapping.participant_fields) | set(mapping.administration_fields)) & system
    for column in records.columns:
        name = str(column)
        if name == record_id or (name in system and name not in named_system):
            continue
        field_name = name
        if "___" in name and type_of.get(name.split("___", 1)[0]) == "checkbox":
            field_name = name.split("___", 1)[0]
        elif name not in form_of and name not in named_system:
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
    _unknown_mapped_fields(mapping, set(form_of) | system | {record_id}, files, problems)
    return columns


def _unknown_mapped_fields(mapping: RedcapMapping, known: set[str], files: RedcapFiles,
                           problems: list[DataProblem]) -> None:
    """A mapping entry naming no field of the dictionary (a typo, most likely) is an error, not skipped.

    A field of the dictionary that the records do not hold (an export of some forms only) is not.
    """
    sections = {"fields": mapping.fields, "participant_fields": mapping.participant_fields,
                "administration_fields": mapping.administration_fields, "dosing_fields": mapping.dosing_fields}
    sections.update({form.section: mapping.safety_fields(form) for form in SAFETY_FORMS})
    for section, entries in sections.items():
        for name in entries:
            if name not in known:
                problems.append(DataProblem(files.mapping, None, section, name,
                                            f"fields of {files.dictionary} (or redcap_data_access_group, "
                                            "<form>_timestamp, …)",
                                            f"names no field of the data dictionary {files.dictionary}",
                                            where="key"))


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


def _text(records: pd.DataFrame, name: str) -> np.ndarray:
    """A records column as an object array of text (``None`` for empty cells and absent columns)."""
    if name not in records.columns:
        return np.full(len(records), None, dtype=object)
    return records[name].astype("string").str.strip().replace("", pd.NA).to_numpy(dtype=object, na_value=None)


def _arm_numbers(records: pd.DataFrame) -> np.ndarray:
    """Each row's REDCap arm: the ``<n>`` of its event's ``_arm_<n>``; 1 in a classic project.

    REDCap's unique event names always end in ``_arm_<n>`` (one arm: ``_arm_1``); a classic
    project has REDCap's one implicit arm. 0 marks an event that names no arm.
    """
    if EVENT not in records.columns:
        return np.ones(len(records), dtype=np.int64)
    number = records[EVENT].astype("string").str.extract(r"_arm_(\d+)$")[0]
    return pd.to_numeric(number, errors="coerce").fillna(0).to_numpy(dtype=np.int64)


def _arm_mapping(records: pd.DataFrame, mapping: RedcapMapping, protocol: Protocol) -> dict[int, str]:
    """REDCap arm number → protocol arm: ``arms:``, else arm *n* = the protocol's *n*-th arm (longitudinal only).

    A classic project says nothing of arms, so without ``arms:`` none is assumed: putting every
    record in the protocol's first arm would be silently wrong.
    """
    if mapping.arms or EVENT not in records.columns:
        return dict(mapping.arms)
    return {n + 1: a for n, a in enumerate(protocol.arm_ids)}


def _unmapped_arms(records: pd.DataFrame, record_id: str, arm: np.ndarray, by_number: dict[int, str],
                   ignored: tuple[int, ...], files: RedcapFiles, lines: np.ndarray,
                   problems: list[DataProblem]) -> np.ndarray:
    """One problem per REDCap arm the mapping does not map; returns the rows of mapped arms.

    Without this a third arm's records would vanish (or pile into another arm) without a word.
    """
    if EVENT not in records.columns:
        if not by_number:
            problems.append(DataProblem(
                files.records, 1, None, None,
                f"arms: {{1: <an arm of the protocol>}} in {files.mapping} (every record in that arm), or a "
                "participant field mapped to the column arm",
                "has no redcap_event_name column (a classic project): REDCap says nothing of arms, and no arm is "
                "assumed"))
            return np.zeros(len(records), dtype=bool)
        return np.ones(len(records), dtype=bool)
    keep = np.ones(len(records), dtype=bool)
    events = _text(records, EVENT)
    allowed = (f"arms {', '.join(map(str, sorted(by_number)))} (arms: in {files.mapping}), or the arm listed "
               "under ignore_arms:")
    for number in sorted(set(arm.tolist()) - set(by_number) - set(ignored) - {0}):
        rows = np.flatnonzero(arm == number)
        count = records[record_id].iloc[rows].nunique()
        problems.append(DataProblem(files.records, int(lines[rows[0]]), EVENT, events[rows[0]], allowed,
                                    f"is an event of REDCap arm {number}, which has no mapping to an arm of the "
                                    f"protocol ({count} {'record' if count == 1 else 'records'} in it)"))
        keep[rows] = False
    return keep


def _participant_ids(records: pd.DataFrame, record_id: str, arm: np.ndarray, mapping: RedcapMapping,
                     files: RedcapFiles, lines: np.ndarray, problems: list[DataProblem]) -> pd.Series:
    """Each row's participant: a REDCap record is (record id, arm), so an id in several arms is several records.

    ``join_arms: refuse`` (default) names each record id found in several arms; ``separate``
    gives each of its records the id ``<record>_arm_<n>``; ``join`` keeps one participant per
    record id (its arms must then agree on the protocol arm, :func:`_participants`).
    """
    record = records[record_id].astype("string")
    frame = pd.DataFrame({"record": record, "arm": arm})
    frame = frame[(frame["arm"] > 0) & frame["record"].notna()]
    arms_of = frame.drop_duplicates().groupby("record", sort=False)["arm"].agg(lambda s: sorted(s.tolist()))
    several = arms_of[arms_of.map(len) > 1]
    if several.empty or mapping.join_arms == "join":
        return record
    if mapping.join_arms == "refuse":
        events = _text(records, EVENT)
        for rid, arms in several.items():
            rows = np.flatnonzero((record == rid).fillna(False).to_numpy(bool) & (arm == arms[1]))
            listed = ", ".join(map(str, arms[:-1])) + f" and {arms[-1]}"
            problems.append(DataProblem(
                files.records, int(lines[rows[0]]), EVENT, events[rows[0]],
                f"join_arms: separate (one participant per record and arm: {rid}_arm_{arms[0]}, …) or join (one "
                f"participant per record id, its arms mapped to one arm of the protocol) in {files.mapping}",
                f"puts record {rid!r} in REDCap arm {arms[1]}: it is in arms {listed}, and REDCap keeps a record "
                f"per arm, so these are {len(arms)} records with one id"))
    # (refused: the import fails, but its records are kept apart so that no second error follows from it)
    in_several = record.isin(list(several.index)).fillna(False).to_numpy(bool)
    participant = record.where(~in_several, record + "_arm_" + pd.Series(arm, index=record.index).astype("string"))
    taken = set(record.dropna()) - set(several.index)
    clashes = in_several & participant.isin(list(taken)).fillna(False).to_numpy(bool)
    for position in np.flatnonzero(clashes if mapping.join_arms == "separate" else np.zeros(0, dtype=bool)):
        problems.append(DataProblem(files.records, int(lines[position]), record_id, record.iloc[position],
                                    "record ids that do not end in _arm_<n> where join_arms: separate adds it",
                                    f"would become participant {participant.iloc[position]!r} (join_arms: separate), "
                                    "which is the id of another record"))
    if clashes.any() and mapping.join_arms == "separate":
        # Two records would be one participant: every later check would only repeat that.
        raise StudyDataError(problems, f"{_count(problems)} in the REDCap import; nothing was imported")
    return participant


def _timepoints(records: pd.DataFrame, record_id: str, mapping: RedcapMapping, protocol: Protocol,
                files: RedcapFiles) -> tuple[np.ndarray, np.ndarray]:
    """The timepoint of each records row (``None`` where no mapping gives one), and why not.

    An event maps through ``events:`` by its unique name (``prep_arm_2``) or by the name without
    the arm (``prep``); an event not listed there whose name without the arm is a timepoint id
    maps to that timepoint; a classic project's rows take ``timepoint:`` (forms:
    ``{timepoint: …}`` per answer, in :func:`study_from_redcap`). A repeat instance — of a
    repeating instrument (``redcap_repeat_instrument`` set) or of a repeating event (instrument
    empty, instance set) — maps through ``repeating:`` by the form or the event: instance →
    timepoint, or a pattern ``prep_{n}``. A repeat with one instance in a record needs no entry
    (it is the event's); the instances of one with several do, and the second array holds, per
    row, ``(reason, allowed)`` for those that have none.
    """
    n = len(records)
    timepoint = np.full(n, None, dtype=object)
    event = _text(records, EVENT)
    stripped = np.asarray([None if e is None else _ARM_ENDING.sub("", e) for e in event], dtype=object)
    if EVENT in records.columns:
        known = set(protocol.timepoint_ids)
        for p in range(n):
            e, s = event[p], stripped[p]
            timepoint[p] = mapping.events.get(e) or mapping.events.get(s) or (s if s in known else None)
    elif mapping.timepoint:
        timepoint[:] = mapping.timepoint
    why = np.full(n, None, dtype=object)
    form = _text(records, REPEAT_INSTRUMENT)
    instance = pd.to_numeric(pd.Series(_text(records, REPEAT_INSTANCE)), errors="coerce").to_numpy(float)
    repeated = np.flatnonzero(~np.isnan(instance))
    if not len(repeated):
        return timepoint, why
    keys = pd.DataFrame({"record": _text(records, record_id), "event": event, "form": form,
                         "instance": instance}).fillna({"event": "", "form": ""})
    instances = keys.groupby(["record", "event", "form"], dropna=False)["instance"].transform("nunique").to_numpy()
    for p in repeated:
        names = [form[p]] if form[p] else [event[p], stripped[p]]
        what = (f"repeating instrument {form[p]!r}" + (f" (event {event[p]})" if event[p] else "") if form[p]
                else f"repeating event {event[p]!r}")
        k = int(instance[p])
        entry = next((mapping.repeating[m] for m in names if m in mapping.repeating), None)
        pattern = next((mapping.repeating_patterns[m] for m in names if m in mapping.repeating_patterns), None)
        key = names[0] if form[p] else stripped[p]
        if entry is not None:
            timepoint[p] = entry.get(k)
            if timepoint[p] is None:
                why[p] = (f"is instance {k} of the {what}, which repeating: {key} in {files.mapping} does not list",
                          f"instances {', '.join(map(str, sorted(entry)))} (repeating: {key}: in {files.mapping})")
        elif pattern is not None:
            target = pattern.replace("{n}", str(k))
            timepoint[p] = target if target in protocol.timepoint_ids else None
            if timepoint[p] is None:
                why[p] = (f"is instance {k} of the {what}, for which the pattern {pattern!r} gives {target!r}, not a "
                          "timepoint of the protocol", ", ".join(protocol.timepoint_ids))
        elif instances[p] > 1:
            timepoint[p] = None
            why[p] = (f"is instance {k} of the {what}, whose instances have no mapping to timepoints",
                      f"repeating: {key}: {{1: <timepoint>, 2: …}} or a pattern such as {key}_{{n}} in {files.mapping}")
    return timepoint, why


def study_from_export(export: RedcapExport, mapping: RedcapMapping | dict | None = None,
                      protocol: Protocol | None = None, participants: pd.DataFrame | None = None) -> Study:
    """Build and validate a study from a read REDCap export (:func:`~.directory.read_export`) and a mapping.

    Parameters
    ----------
    export : RedcapExport
        The dictionary, records and record lines as read from CSV files, ODM XML or the API.
    mapping : RedcapMapping or dict, optional
        The mapping, parsed or as read from YAML (schema: ``docs/data.md``).
    protocol : Protocol, optional
    participants : DataFrame, optional

    Returns
    -------
    Study

    See Also
    --------
    study_from_redcap : the same from the tables themselves.
    """
    return study_from_redcap(export.dictionary, export.records, mapping, protocol, participants, export.files,
                             export.record_lines, record_id=export.record_id)


def study_from_redcap(dictionary: pd.DataFrame, records: pd.DataFrame, mapping: RedcapMapping | dict | None,
                      protocol: Protocol | None = None, participants: pd.DataFrame | None = None,
                      files: RedcapFiles | None = None, record_lines: np.ndarray | None = None, *,
                      record_id: str | None = None) -> Study:
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
        A tidy participants table. Without it, participants are the records — a REDCap record is
        a record id *in an arm* (``join_arms:`` says how to read an id found in several arms) —
        each one's arm from its REDCap arm (``arms:``; in a longitudinal project by default arm
        *n* = the protocol's *n*-th arm) or from a participant field mapped to ``arm``, and the
        other ``participant_fields``.
    files : RedcapFiles
        File names for messages.
    record_lines : ndarray of int, optional
        The records file's line number of each row (:func:`alliance.study.io.read_csv_lines`);
        by default row position + 2.
    record_id : str, optional
        The record id field when the export names it (ODM's ``redcap:RecordIdField``); the
        mapping's ``record_id:`` comes first, the dictionary's first field last.

    Returns
    -------
    Study

    Raises
    ------
    StudyDataError
        Every problem: a records column not in the dictionary, a field with no mapping, a REDCap
        arm with no mapping, a record id in several arms without ``join_arms:``, a row with
        answers whose event, form (classic projects) or repeat instance has no timepoint, a code
        the recoding does not cover, more than one box ticked in a checkbox field, and every
        problem :func:`alliance.study.load` finds, located by records line and REDCap field and
        naming the record (and its event or repeat instance).
    """
    protocol = protocol or default_protocol()
    files = files or RedcapFiles()
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
    record_id = mapping.record_id or record_id or (str(dictionary[_FIELD].iloc[0]) if len(dictionary) else RECORD_ID)
    if record_id not in records.columns:
        raise StudyDataError([DataProblem(files.records, 1, record_id, None,
                                          "the record id field (the first field of the data dictionary, or "
                                          "record_id: in the mapping)", "the record id column is missing")],
                             "not a REDCap records export of this data dictionary")
    columns = _classify(dictionary, records, mapping, protocol, record_id, files, problems)
    classic = EVENT not in records.columns
    if not classic and (mapping.form_timepoints or mapping.timepoint):
        key = "timepoint" if mapping.timepoint else f"forms.{next(iter(mapping.form_timepoints))}.timepoint"
        problems.append(DataProblem(files.mapping, None, key, None, f"events: (event → timepoint) in {files.mapping}",
                                    "gives a timepoint by form, which is for classic projects; these records have "
                                    "redcap_event_name, so their events give the timepoints", where="key"))

    # A REDCap record is a record id in an arm: rows of arms the mapping leaves out (ignore_arms:)
    # go first; an arm nobody mapped, and an id in several arms, are errors unless the mapping says.
    arm = _arm_numbers(records)
    keep = ~np.isin(arm, list(mapping.ignore_arms))
    arm_field = any(column == "arm" for column, _ in columns.participant.values())
    by_number = _arm_mapping(records, mapping, protocol)
    arm_problems = len(problems)
    if participants is None and not arm_field:
        keep &= _unmapped_arms(records, record_id, arm, by_number, mapping.ignore_arms, files, lines, problems)
    arm_reported = len(problems) > arm_problems
    if not keep.all():
        records, lines, arm = records[keep].reset_index(drop=True), lines[keep], arm[keep]
    participant = _participant_ids(records, record_id, arm, mapping, files, lines, problems)
    timepoint, why = _timepoints(records, record_id, mapping, protocol, files)
    form_of = dict(zip(dictionary[_FIELD].astype(str), dictionary[_FORM].astype(str), strict=True))

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
            "value": values.to_numpy(dtype=object)[rows], "cell": codes.to_numpy(dtype=object)[rows],
        }))
    answers = (pd.concat(pieces, ignore_index=True) if pieces
               else pd.DataFrame(columns=["row", "field", "instrument", "item", "value", "cell"]))
    answers = answers.sort_values(["row"], kind="stable").reset_index(drop=True)
    rows = answers["row"].to_numpy(dtype=np.int64)
    answer_timepoint = timepoint[rows] if len(rows) else np.array([], dtype=object)
    if classic and mapping.form_timepoints:
        # A classic project's form gives its answers' timepoint, unless they are a mapped repeat instance.
        by_form = pd.Series(answers["field"].map(form_of).map(mapping.form_timepoints).to_numpy(dtype=object))
        plain = pd.isna(pd.to_numeric(pd.Series(_text(records, REPEAT_INSTANCE)[rows]), errors="coerce")).to_numpy()
        answer_timepoint = np.where(plain & by_form.notna().to_numpy(bool), by_form.to_numpy(dtype=object),
                                    answer_timepoint)
    problems += _untimed(records, answers, answer_timepoint, why, form_of, mapping, files, lines)

    responses = pd.DataFrame({
        "participant_id": participant.to_numpy(dtype=object)[rows],
        "timepoint": answer_timepoint,
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
        participants, participants_locator = _participants(records, participant, arm, by_number, mapping, columns,
                                                           files, problems, lines, arm_reported)
    else:
        participants_locator = Locator("participants")
    no_arm = arm_reported or len(problems) > own_arm_problems
    # Rows whose timepoint is unknown are reported above; check the others as responses.csv is checked.
    mapped = responses["timepoint"].notna().to_numpy(bool)
    field_names = answers["field"].to_numpy(dtype=object)[mapped]
    locator = _RecordLocator(files.records, rows=lines[rows[mapped]], columns={
        "participant_id": record_id, "timepoint": EVENT, "value": field_names, "item": field_names,
        "instrument": field_names}, records=_record_names(records, participant, rows[mapped]),
        cells=answers["cell"].to_numpy(dtype=object)[mapped])
    dosing, dosing_locator = _dosing_sessions(records, participant, columns, files, lines)
    type_of = dict(zip(dictionary[_FIELD].astype(str), dictionary[_TYPE].astype(str).str.strip(), strict=True))
    safety, safety_locators = {}, {}
    for form in SAFETY_FORMS:
        safety[form.table], safety_locators[form.table] = _safety_table(form, records, participant, columns, type_of,
                                                                        files, lines, problems)
    more, values = check_study(protocol, participants, responses[mapped].reset_index(drop=True), dosing,
                               {"responses": locator, "participants": participants_locator,
                                "dosing_sessions": dosing_locator, **safety_locators}, **safety)
    problems += [p for p in more if not (no_arm and p.file == participants_locator.file and p.value is None
                                         and p.column == participants_locator.column("arm", 0))]
    if problems:
        raise StudyDataError(problems, f"{_count(problems)} in the REDCap import; nothing was imported")
    return Study(protocol=protocol, participants=participants,
                 responses=sort_responses(responses.assign(value=values), protocol,
                                          list(pd.unique(participant.dropna()))),
                 dosing_sessions=dosing, **safety)


def _untimed(records: pd.DataFrame, answers: pd.DataFrame, timepoint: np.ndarray, why: np.ndarray,
             form_of: dict[str, str], mapping: RedcapMapping, files: RedcapFiles,
             lines: np.ndarray) -> list[DataProblem]:
    """A problem for each records row with answers but no timepoint, naming what has no mapping.

    A classic project's form is named once (its first such row), an event or repeat instance
    once per row.
    """
    problems: list[DataProblem] = []
    rows = answers["row"].to_numpy(dtype=np.int64)
    missing = pd.isna(timepoint) if len(rows) else np.zeros(0, dtype=bool)
    events = _text(records, EVENT)
    instances = _text(records, REPEAT_INSTANCE)
    named_forms: set[str] = set()
    for at in np.flatnonzero(missing):
        row = int(rows[at])
        if at > 0 and rows[at - 1] == row and missing[at - 1] and why[row] is not None:
            continue  # one message per repeat instance, not one per answer in it
        if why[row] is not None:
            reason, allowed = why[row]
            problems.append(DataProblem(files.records, int(lines[row]), REPEAT_INSTANCE, instances[row], allowed,
                                        reason))
        elif EVENT not in records.columns:
            form = form_of.get(str(answers["field"].iloc[at]), "")
            if form in named_forms:
                continue
            named_forms.add(form)
            problems.append(DataProblem(files.records, int(lines[row]), str(answers["field"].iloc[at]), None,
                                        f"forms: {form}: {{timepoint: <timepoint>}} or timepoint: <timepoint> in "
                                        f"{files.mapping}",
                                        f"is a field of form {form!r}, which has no timepoint: the records have no "
                                        "redcap_event_name (a classic project)"))
        elif not (at > 0 and rows[at - 1] == row and missing[at - 1]):
            allowed = ", ".join(mapping.events) if mapping.events else "event names equal to timepoint ids"
            problems.append(DataProblem(files.records, int(lines[row]), EVENT, events[row],
                                        f"{allowed} (events: in {files.mapping})",
                                        "is a REDCap event with no mapping to a timepoint"))
    return problems


@dataclass(frozen=True)
class _RecordLocator(Locator):
    """A :class:`Locator` of rows read from REDCap records whose messages also name each row's record.

    ``records`` holds, per row, ``record 'P001', adverse_events instance 2``: the records file's
    line and the field say where the cell is, the record and instance say which entry it is in
    REDCap's own screens.
    """

    records: np.ndarray | None = None
    # An answer's REDCap cell as written: a problem at the item (a second answer) shows the answer,
    # not the item id the field maps to.
    cells: np.ndarray | None = None

    def problem(self, position: int, column: str, value: object, allowed: str, reason: str) -> DataProblem:
        if column == "item" and self.cells is not None:
            value = self.cells[position]
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


def _participants(records: pd.DataFrame, participant: pd.Series, arm_number: np.ndarray,
                  by_number: dict[int, str], mapping: RedcapMapping, columns: _Columns, files: RedcapFiles,
                  problems: list[DataProblem], lines: np.ndarray,
                  arm_reported: bool) -> tuple[pd.DataFrame, Locator]:
    """The participants table: one row per participant, its arm and participant fields.

    The arm comes from a participant field mapped to ``arm`` when there is one, else from the
    REDCap arm (``by_number``). A participant whose rows give two arms (``join_arms: join`` of
    records in arms mapped to different protocol arms, or an arm field that changes) is an
    error: the study would otherwise pick one of them.
    """
    first_rows = np.flatnonzero(~participant.duplicated().to_numpy(bool) & participant.notna().to_numpy(bool))
    table = pd.DataFrame({"participant_id": participant.iloc[first_rows].to_numpy()})
    arm_column = EVENT
    arm = pd.Series([by_number.get(int(n)) for n in arm_number], index=records.index, dtype="string")
    for name, (column, recode) in columns.participant.items():
        values, unmapped = recode.apply(records[name].astype("string").str.strip().replace("", pd.NA))
        for position in np.flatnonzero(unmapped):
            problems.append(DataProblem(files.records, int(lines[position]), name, records[name].iloc[position],
                                        "codes " + ", ".join(recode.table),
                                        f"is a code the recoding in {files.mapping} does not cover"))
        if column == "arm":
            arm, arm_column = values, name
            continue
        per_participant = values.groupby(participant, sort=False).first()
        table[column] = per_participant.reindex(table["participant_id"]).to_numpy()
    given = pd.DataFrame({"participant": participant, "arm": arm}).dropna().drop_duplicates()
    for pid, arms in given.groupby("participant", sort=False)["arm"]:
        if len(arms) > 1:
            at = int(np.flatnonzero((participant == pid).fillna(False).to_numpy(bool)
                                    & (arm == arms.iloc[1]).fillna(False).to_numpy(bool))[0])
            problems.append(DataProblem(files.records, int(lines[at]), arm_column, arms.iloc[1],
                                        "one arm per participant: arms: mapping its REDCap arms to one arm of the "
                                        f"protocol, or join_arms: separate in {files.mapping}",
                                        f"puts participant {pid!r} in arm {arms.iloc[1]!r} as well as "
                                        f"{arms.iloc[0]!r}"))
    per_participant_arm = arm.groupby(participant, sort=False).first()
    table.insert(1, "arm", per_participant_arm.reindex(table["participant_id"]).astype("string").to_numpy())
    locator = Locator(files.records, rows=lines[first_rows],
                      columns={"participant_id": str(participant.name), "arm": arm_column})
    if not arm_reported:
        for position in np.flatnonzero(table["arm"].isna().to_numpy(bool)):
            problems.append(locator.problem(position, "arm", None,
                                            f"REDCap arms mapped under arms: in {files.mapping}, or a participant "
                                            "field mapped to the column arm",
                                            f"record {table.at[position, 'participant_id']!r} has no arm"))
    return table, locator


def read_redcap(dictionary: str | Path, records: str | Path, mapping: str | Path | None = None,
                protocol: Protocol | None = None, participants: pd.DataFrame | None = None, *,
                events: str | Path | None = None, arms: str | Path | None = None) -> Study:
    """Import a REDCap project export from its files (edge function: reads them, then :func:`study_from_redcap`).

    Parameters
    ----------
    dictionary, records : str or Path
        The data dictionary (UI download or API metadata export) and the flat records export (raw
        or label values, any of REDCap's delimiters; :func:`~.files.read_records`).
    mapping : str or Path, optional
        The mapping YAML (none: fields named like items, events named like timepoints). Its
        ``delimiter:`` is used for both files; without it each file's delimiter is found from its
        header.
    protocol : Protocol, optional
    participants : DataFrame, optional
    events, arms : str or Path, optional
        REDCap's events and arms exports: needed only for a label export's event column.

    Returns
    -------
    Study

    See Also
    --------
    read_redcap_export : the same from a directory of export files or the project XML.
    """
    protocol = protocol or default_protocol()
    parsed = _read_mapping(mapping, protocol)
    frame = read_dictionary(dictionary, delimiter=parsed.delimiter)
    table, lines = read_records(records, frame, delimiter=parsed.delimiter,
                                events=read_events(events) if events is not None else None,
                                arms=read_arms(arms) if arms is not None else None, record_id=parsed.record_id)
    files = RedcapFiles(str(dictionary), str(records), str(mapping or "mapping"))
    return study_from_redcap(frame, table, parsed, protocol, participants, files, lines)


def read_redcap_export(directory: str | Path, mapping: str | Path | None = None, protocol: Protocol | None = None,
                       participants: pd.DataFrame | None = None, *, source: str | None = None) -> Study:
    """Import the REDCap export a directory holds: CSV files or the project XML (edge function).

    Parameters
    ----------
    directory : str or Path
        What :func:`~.directory.read_export` reads: the dictionary and records CSV (with events,
        arms, instrument-event mappings and repeating forms when present), or ``project.xml``.
    mapping : str or Path, optional
        The mapping YAML; default ``mapping.yaml`` in the directory when it exists.
    protocol : Protocol, optional
    participants : DataFrame, optional
    source : {"csv", "xml"}, optional
        Which export to read when the directory holds both.

    Returns
    -------
    Study
    """
    directory = Path(directory)
    if mapping is None and (directory / "mapping.yaml").is_file():
        mapping = directory / "mapping.yaml"
    protocol = protocol or default_protocol()
    parsed = _read_mapping(mapping, protocol)
    export = read_export(directory, delimiter=parsed.delimiter, source=source)
    export = replace(export, files=replace(export.files, mapping=str(mapping or "mapping")))
    return study_from_export(export, parsed, protocol, participants)


def _read_mapping(mapping: str | Path | None, protocol: Protocol) -> RedcapMapping:
    # The one bounded YAML reader (size, aliases, nesting, UTF-8): a ProtocolError names the file.
    raw = read_yaml_file(mapping) if mapping is not None else None
    return parse_mapping(raw, protocol, str(mapping or "mapping"))
