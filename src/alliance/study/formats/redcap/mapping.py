"""The REDCap mapping file: REDCap events, arms, forms and fields → the protocol's timepoints, arms, items and tables."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import yaml

from alliance import instruments as bank
from alliance.protocol import Protocol

from ...errors import DataProblem, StudyDataError
from ...tidy import format_numbers
from ...validation import DOSING_COLUMNS
from .schema import (
    _ADMINISTRATION,
    _MAPPING_KEYS,
    DELIMITERS,
    JOIN_ARMS,
    SAFETY_FORMS,
    SafetyForm,
    _code_key,
    _count,
    _normal_code,
)

# A timepoint id, for checking a repeat-instance pattern with its {n} filled in.
_TIMEPOINT_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")

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
    # repeating instrument or repeating event → instance → timepoint; or → a pattern "prep_{n}"
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
    delimiter: str | None = None
    ignore_arms: tuple[int, ...] = ()
    join_arms: str = "refuse"
    timepoint: str | None = None                                       # classic projects: every form
    form_timepoints: dict[str, str] = field(default_factory=dict)      # classic projects: form → timepoint
    repeating_patterns: dict[str, str] = field(default_factory=dict)   # form or event → "prep_{n}"

    def safety_fields(self, form: SafetyForm) -> dict[str, tuple[str, Recode]]:
        """The mapping's section for one safety form (field → column and recoding)."""
        return getattr(self, form.section)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.record_id:
            out["record_id"] = self.record_id
        if self.delimiter:
            out["delimiter"] = self.delimiter
        out["events"] = dict(self.events)
        if self.arms:
            out["arms"] = dict(self.arms)
        if self.ignore_arms:
            out["ignore_arms"] = list(self.ignore_arms)
        if self.join_arms != "refuse":
            out["join_arms"] = self.join_arms
        if self.timepoint:
            out["timepoint"] = self.timepoint
        if self.repeating or self.repeating_patterns:
            out["repeating"] = {**{k: dict(v) for k, v in self.repeating.items()}, **self.repeating_patterns}
        forms = {k: v.to_dict() for k, v in self.forms.items()}
        for form, timepoint in self.form_timepoints.items():
            forms[form] = {"timepoint": timepoint, **forms.get(form, {})}
        if forms:
            out["forms"] = forms
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
    repeating, repeating_patterns = {}, {}
    for key, instances in section("repeating").items():
        if isinstance(instances, str):
            # A pattern: instance n → the timepoint named by the pattern with n put in.
            if instances.count("{n}") != 1 or re.sub(r"\{n\}", "1", instances).count("{") \
                    or not _TIMEPOINT_PATTERN.fullmatch(instances.replace("{n}", "1")):
                problem(f"repeating.{key}", instances, "is not a timepoint pattern",
                        "a timepoint id with {n} where the instance number goes, e.g. prep_{n}")
                continue
            repeating_patterns[str(key)] = instances
            continue
        if not isinstance(instances, dict):
            problem(f"repeating.{key}", instances, "expected a mapping or a pattern",
                    "repeat instance → timepoint, or a pattern such as prep_{n}")
            continue
        repeating[str(key)] = {}
        for instance, timepoint in instances.items():
            if timepoint not in protocol.timepoint_ids:
                problem(f"repeating.{key}.{instance}", timepoint, "is not a timepoint of the protocol", timepoints)
            if not str(instance).isdigit():
                problem(f"repeating.{key}.{instance}", instance, "is not a repeat instance", "1, 2, …")
                continue
            repeating[str(key)][int(instance)] = str(timepoint)

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

    forms, form_timepoints = {}, {}
    for form, value in section("forms").items():
        if not isinstance(value, dict):
            problem(f"forms.{form}", value, "expected a mapping", "recode:, shift: or timepoint:")
            continue
        for key in value:
            if key not in ("recode", "shift", "timepoint"):
                problem(f"forms.{form}.{key}", None, "is not a key of a form entry", "recode, shift, timepoint")
        if "timepoint" in value:
            if value["timepoint"] not in protocol.timepoint_ids:
                problem(f"forms.{form}.timepoint", value["timepoint"], "is not a timepoint of the protocol", timepoints)
            else:
                form_timepoints[str(form)] = str(value["timepoint"])
        if "recode" in value or "shift" in value:
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
    delimiter = raw.get("delimiter")
    if delimiter is not None and str(delimiter) not in DELIMITERS:
        problem("delimiter", delimiter, "is not a delimiter REDCap exports with",
                "',', ';', tab ('\\t' or tab), '|', '^' (or comma, semicolon, pipe, caret)")
        delimiter = None
    join_arms = raw.get("join_arms", "refuse")
    if join_arms not in JOIN_ARMS:
        problem("join_arms", join_arms, "is not a way to read a record found in several REDCap arms",
                "refuse (the default: an error names each such record), separate (one participant per record "
                "and arm, <record>_arm_<n>), join (one participant per record id)")
        join_arms = "refuse"
    ignore_arms = raw.get("ignore_arms") or []
    if not isinstance(ignore_arms, list) or not all(str(n).isdigit() for n in ignore_arms):
        problem("ignore_arms", ignore_arms, "is not a list of REDCap arm numbers", "[3], [2, 3]")
        ignore_arms = []
    clash = sorted(set(map(int, ignore_arms)) & set(arms))
    if clash:
        problem("ignore_arms", clash, "names arms that arms: maps", "arms either mapped or ignored")
    timepoint = raw.get("timepoint")
    if timepoint is not None and timepoint not in protocol.timepoint_ids:
        problem("timepoint", timepoint, "is not a timepoint of the protocol", timepoints)
    if raw.get("suggested") is not None:
        # A file from `alliance redcap suggest` holds guesses: the user confirms them by deleting the key.
        problem("suggested", raw.get("suggested"), "marks a suggested mapping that nobody has confirmed",
                "review every entry (the comments say why each was chosen), then delete the suggested: line")
    if problems:
        raise StudyDataError(problems, f"{_count(problems)} in the REDCap mapping {origin}")
    return RedcapMapping(str(record_id) if record_id else None, events, arms, repeating, forms, fields,
                         participant_fields, administration_fields, tuple(map(str, ignore)), dosing_fields,
                         **safety_fields, delimiter=DELIMITERS[str(delimiter)] if delimiter is not None else None,
                         ignore_arms=tuple(sorted({int(n) for n in ignore_arms})), join_arms=str(join_arms),
                         timepoint=str(timepoint) if timepoint is not None else None,
                         form_timepoints=form_timepoints, repeating_patterns=repeating_patterns)

