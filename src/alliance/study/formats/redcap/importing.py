"""Import a REDCap project export: data dictionary + records + mapping → a validated study."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.protocol import Protocol, default_protocol
from alliance.protocol.yaml_input import read_yaml_file

from ...errors import DataProblem, StudyDataError
from ...io import read_table
from ...tidy import Study, check_study, format_number, sort_responses
from ...validation import DOSING_COLUMNS, DOSING_DAY_COLUMNS, Locator
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
                      files: RedcapFiles | None = None, record_lines: np.ndarray | None = None) -> Study:
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

