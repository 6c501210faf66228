"""Propose a REDCap mapping file from a project's data dictionary: every guess says why, nothing is chosen silently.

:func:`suggest_mapping` reads what a REDCap project declares (the data dictionary; the events,
arms, instrument-event designations and repeating forms when given) and writes the mapping YAML
the import reads (``docs/data.md``, section REDCap), with a comment on each entry that is not an
exact name match saying what it was chosen by and how sure that is. What fits nothing is written
commented out under ``# UNMATCHED`` with the reason. The file's first key is ``suggested:``, which
:func:`~.mapping.parse_mapping` refuses: the user reviews the entries and deletes that line.

===========================  ==================================================================
REDCap                       matched to the protocol by
===========================  ==================================================================
field ``wai_sr_3``           its name: an item id of an instrument the protocol gives (no entry;
                             a shift or recode under ``forms:`` when its codes need one)
fields of a form             numbered names (``wai_1``, ``wai_q1``, ``wai_sr_01``, ``pmq3``): the
                             numbers 1..k are the items of the protocol's one instrument with k
                             items whose values hold every field's codes (several: the one whose
                             id or short name is like the form or the field names)
choices vs item values       labels = the item's anchors: a table (or shift) from the labels;
                             codes among the values: none; as many codes as values: ``shift:``
                             when they differ by one number, else a table in order
event                        its name without ``_arm_N`` = a timepoint id (exact); its label or
                             name as words = a timepoint's id or label ("Week 4" ~ week4); "Dose
                             n" / "First dose" = the n-th dosing timepoint; its ``day_offset`` =
                             the timepoint's planned day in the arm (checks the above, or alone)
arm                          its name as words = an arm's id or label; else the protocol arm
                             whose planned days the arm's events' offsets are; one arm each
participant fields           names: the contract's columns and the protocol's identifiers, every
                             field of the form ``participant`` (alliance's export), a few plain
                             synonyms (``date_enrolled`` → ``enrolled_on``, ``site_id`` → ``site``)
dosing and safety forms      their default field names (:data:`~.schema.DOSING_FIELDS`, the
                             :data:`~.schema.SAFETY_FORMS` fields)
===========================  ==================================================================

Sureness is said in words: ``exact`` (the name is the protocol's; no comment), ``sure`` (two
kinds of evidence agree, or a label equals the protocol's label), ``likely`` (one kind of
evidence) and ``unsure`` (only item counts and ranges, or an offset within a window).

References
----------
REDCap Data Dictionary help ("Field Type", "Choices, Calculations, OR Slider Labels", "Text
Validation"); REDCap API documentation, "Export Events" (``day_offset``), "Export Arms".
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from alliance import instruments as bank
from alliance.instruments import Instrument, Item
from alliance.monitoring.schedule import planned_dates
from alliance.protocol import Protocol

from ...tidy import format_number
from .files import choices as field_choices
from .schema import (
    _ADMINISTRATION,
    _ARM_SUFFIX,
    _DAY_ZERO,
    _FIELD,
    _FORM,
    _TYPE,
    DOSING_FIELDS,
    DOSING_FORM,
    PARTICIPANT_FORM,
    SAFETY_FORMS,
)

__all__ = ["MappingSuggestion", "Suggested", "Unmatched", "suggest_mapping"]

_VALIDATION, _MIN, _MAX = "Text Validation Type OR Show Slider Number", "Text Validation Min", "Text Validation Max"
_LABEL = "Field Label"
# REDCap field types that hold one answer a questionnaire item can take.
_CHOICE_TYPES = ("radio", "dropdown", "yesno", "truefalse")
# A field name ending in an item number: wai_1, wai_q1, wai_item_1, wai_sr_01, pmq3.
_NUMBERED = re.compile(r"^(?P<stem>[a-z][a-z0-9_]*?)_?(?:q|item|i|question)?_?0*(?P<number>[1-9]\d*)$")
# Words of event and arm names read as one word: ordinals as numbers, two spellings as one.
_ORDINALS = {"first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5", "sixth": "6"}
_SYNONYMS = {"enrollment": "enrolment", "wk": "week", "mo": "month", "mth": "month", "yr": "year"}
_DOSE_WORDS = {"dose", "dosing"}
# Participant columns named otherwise in many projects; each name stands for one column only.
_PARTICIPANT_SYNONYMS = {
    "site_id": "site", "study_site": "site", "centre": "site", "center": "site",
    "date_enrolled": "enrolled_on", "enrollment_date": "enrolled_on", "enrolment_date": "enrolled_on",
    "date_of_enrollment": "enrolled_on", "date_of_enrolment": "enrolled_on", "enroll_date": "enrolled_on",
    "age": "age", "age_years": "age", "sex": "sex", "gender": "gender",
    "facilitator_id": "facilitator_ids", "facilitators": "facilitator_ids",
    "treatment_arm": "arm", "study_arm": "arm", "randomisation_arm": "arm", "randomization_arm": "arm",
}
_CONTRACT_COLUMNS = ("arm", "site", "facilitator_ids", "enrolled_on")
# Usual names of identifier columns, used only for the columns the protocol lists under identifiers.
_IDENTIFIER_SYNONYMS = {"dob": "date_of_birth", "birth_date": "date_of_birth", "birthdate": "date_of_birth",
                        "email_address": "email", "e_mail": "email", "medical_record_number": "mrn"}
_SURENESS = ("exact", "sure", "likely", "unsure")


@dataclass(frozen=True)
class Suggested:
    """One entry of the suggested mapping: ``section.key: value``, why it was chosen and how sure.

    ``why`` is empty for an exact name match (sureness ``exact``).
    """

    section: str
    key: str
    value: Any
    why: str = ""
    sureness: str = "exact"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Unmatched:
    """What the suggestion could not map: a field, form, event, arm or repeating form, and why."""

    kind: str
    name: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MappingSuggestion:
    """A proposed mapping file: its text and what is in it.

    Attributes
    ----------
    text : str
        The mapping YAML with its comments; first key ``suggested:`` (the import refuses the file
        until the user deletes it).
    entries : tuple of Suggested
        Every entry written, exact or not.
    unmatched : tuple of Unmatched
        What could not be matched, each with why (written under ``# UNMATCHED``).
    """

    text: str
    entries: tuple[Suggested, ...]
    unmatched: tuple[Unmatched, ...]

    @property
    def guessed(self) -> tuple[Suggested, ...]:
        """The entries that are not exact name matches."""
        return tuple(e for e in self.entries if e.sureness != "exact")

    @property
    def review(self) -> int:
        """How many entries need the user's review: the guessed and the unmatched ones."""
        return len(self.guessed) + len(self.unmatched)

    def to_dict(self) -> dict:
        return {"text": self.text, "entries": [e.to_dict() for e in self.entries],
                "unmatched": [u.to_dict() for u in self.unmatched], "review": self.review}


# --------------------------------------------------------------------------------------------
# Words and numbers
# --------------------------------------------------------------------------------------------

def _words(text: str) -> tuple[str, ...]:
    """A name as a sorted tuple of words: "Week 4", "week_4", "4 weeks" and week4 give (4, week)."""
    out = []
    for token in re.findall(r"\d+(?:st|nd|rd|th)?|[a-z]+", str(text).lower()):
        if token[0].isdigit():
            token = str(int(re.sub(r"\D", "", token)))
        else:
            token = _ORDINALS.get(token, _SYNONYMS.get(token, token))
            if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
                token = token[:-1]  # weeks ~ week
        if token not in ("the", "of"):
            out.append(token)
    return tuple(sorted(out))


def _compact(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def _number(text: str) -> float | None:
    try:
        return float(str(text).strip())
    except ValueError:
        return None


def _span(values) -> str:
    values = sorted(values)
    return f"{format_number(values[0])}-{format_number(values[-1])}" if values else "none"


def _one_line(text: str, width: int = 70) -> str:
    text = re.sub(r"<[^>]*>", "", str(text))  # REDCap labels may hold HTML
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= width else text[:width - 1] + "…"


# --------------------------------------------------------------------------------------------
# Fields and items
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Field:
    name: str
    form: str
    type: str
    label: str
    codes: dict[str, str]          # code → label (choice fields)
    validation: str
    low: float | None
    high: float | None

    @property
    def item_like(self) -> bool:
        """One answer a questionnaire item could take: a choice, a slider, a number field."""
        return (self.type in (*_CHOICE_TYPES, "slider")
                or (self.type == "text" and self.validation in ("integer", "number")))

    def describe(self) -> str:
        if self.codes:
            return f"{self.type} {_span(_number(c) for c in self.codes) if self._numeric else ', '.join(self.codes)}"
        if self.low is not None and self.high is not None:
            return f"{self.type} {format_number(self.low)}-{format_number(self.high)}"
        return f"{self.type} {self.validation}".strip()

    @property
    def _numeric(self) -> bool:
        return all(_number(c) is not None for c in self.codes)


def _fields(dictionary: pd.DataFrame) -> list[_Field]:
    out = []
    for _, row in dictionary.iterrows():
        kind = str(row[_TYPE]).strip()
        if kind == "descriptive":  # REDCap exports no column for it
            continue
        name = str(row[_FIELD]).strip()
        low, high = _number(row.get(_MIN, "")), _number(row.get(_MAX, ""))
        if kind == "slider" and low is None and high is None:
            low, high = 0.0, 100.0  # REDCap's slider records 0-100 unless given a range
        out.append(_Field(name, str(row[_FORM]).strip(), kind, str(row.get(_LABEL, "")),
                          field_choices(dictionary, name) if kind in (*_CHOICE_TYPES, "checkbox") else {},
                          str(row.get(_VALIDATION, "")).strip(), low, high))
    return out


def _values(item: Item) -> list[float] | None:
    """The item's allowed values; ``None`` for a visual-analogue item (any number in its range)."""
    if item.step is None:
        return None
    count = int(round((item.max - item.min) / item.step))
    return [item.min + k * item.step for k in range(count + 1)]


@dataclass(frozen=True)
class _Fit:
    recode: dict          # {} | {"shift": x} | {"recode": {code: value}}
    how: str
    by_anchors: bool = False


def _fit(field: _Field, item: Item) -> _Fit | None:
    """How a field's answers become the item's values, or ``None`` when they cannot."""
    values = _values(item)
    if field.codes:
        anchors = {_compact(label): value for value, label in item.anchors.items()}
        if anchors and all(_compact(label) in anchors for label in field.codes.values()):
            table = {code: anchors[_compact(label)] for code, label in field.codes.items()}
            if all(_number(c) is not None for c in table):
                shifts = {v - _number(c) for c, v in table.items()}
                if shifts == {0.0}:
                    return _Fit({}, "labels = the item's anchors", True)
                if len(shifts) == 1:
                    return _Fit({"shift": shifts.pop()}, "labels = the item's anchors", True)
            return _Fit({"recode": table}, "labels = the item's anchors", True)
        numbers = [_number(c) for c in field.codes]
        if any(n is None for n in numbers):
            return None
        if values is None:
            return _Fit({}, "codes within the item's range") if all(item.min <= n <= item.max for n in numbers) \
                else None
        if set(numbers) <= set(values):
            return _Fit({}, "codes = values" if set(numbers) == set(values) else "codes among the values")
        if len(numbers) == len(values):
            ordered = sorted(numbers)
            shifts = {v - c for c, v in zip(ordered, values, strict=True)}
            if len(shifts) == 1:
                return _Fit({"shift": shifts.pop()}, "as many codes as values")
            return _Fit({"recode": {format_number(c): v for c, v in zip(ordered, values, strict=True)}},
                        "as many codes as values, in order")
        return None
    if field.type in ("slider", "text") and field.item_like:
        if field.low is None or field.high is None:
            return _Fit({}, "a number field with no range to compare")
        if item.min <= field.low and field.high <= item.max:
            return _Fit({}, "range within the item's")
    return None


def _recode_text(recode: dict) -> str:
    if "shift" in recode:
        return f"shift {recode['shift']:+g}"
    if "recode" in recode:
        return "recode " + ", ".join(f"{c}→{format_number(v)}" for c, v in recode["recode"].items())
    return "no recode"


def _instrument_like(text: str, inst: Instrument) -> bool:
    """A form or field stem named like the instrument: wai ~ wai_sr, phq ~ phq9, gad7 ~ GAD-7."""
    name = _compact(text)
    if len(name) < 3:
        return False
    return any(name == t or t.startswith(name) or name.startswith(t) or name in t
               for t in (_compact(inst.id), _compact(inst.short_name)))


# --------------------------------------------------------------------------------------------
# The suggestion
# --------------------------------------------------------------------------------------------

class _Draft:
    """The entries and the unmatched, in the mapping file's order, as they are found."""

    def __init__(self) -> None:
        self.entries: list[Suggested] = []
        self.unmatched: list[Unmatched] = []
        self.notes: list[str] = []                   # header comments
        self.unmatched_fields: dict[str, list[tuple[str, str]]] = {}   # form → (field, reason)
        self.group_why: dict[tuple[str, str], str] = {}                # (section, first key) → block comment

    def add(self, section: str, key: str, value: Any, why: str = "", sureness: str = "exact") -> None:
        self.entries.append(Suggested(section, str(key), value, why, sureness))

    def miss(self, kind: str, name: str, reason: str, form: str | None = None) -> None:
        self.unmatched.append(Unmatched(kind, name, reason))
        if kind == "field":
            self.unmatched_fields.setdefault(form or "", []).append((name, reason))


def suggest_mapping(dictionary: pd.DataFrame, protocol: Protocol, *, events: pd.DataFrame | None = None,
                    form_events: pd.DataFrame | None = None, repeating: pd.DataFrame | None = None,
                    arms: pd.DataFrame | None = None, source: str = "the data dictionary") -> MappingSuggestion:
    """Propose a mapping file for a REDCap project: each guess with its reason, the rest listed unmatched.

    Parameters
    ----------
    dictionary : DataFrame
        The data dictionary with REDCap's UI headers (:data:`~.schema.DICTIONARY_COLUMNS`), as
        :func:`~.files.read_dictionary` gives it.
    protocol : Protocol
        The protocol the mapping is for: its instruments, timepoints and arms are the targets.
    events : DataFrame, optional
        REDCap's events (:func:`~.files.read_events`: ``unique_event_name``, ``event_name``,
        ``arm_num``, ``day_offset``). Without it (and without ``form_events``) no ``events:`` are
        suggested: events named like timepoints map by themselves.
    form_events : DataFrame, optional
        Which forms each event holds (``arm_num``, ``unique_event_name``, ``form``): an event's
        forms whose instruments the protocol does not give at the matched timepoint are said in
        its comment; without ``events`` it lists the events.
    repeating : DataFrame, optional
        The repeating forms and events (``event_name``, ``form_name``): one holding answers needs
        ``repeating:`` instances the suggestion cannot know, and is listed unmatched.
    arms : DataFrame, optional
        REDCap's arms (``arm_num``, ``name``), matched to the protocol's arms by name.
    source : str
        What the dictionary was read from, for the ``suggested:`` line.

    Returns
    -------
    MappingSuggestion
        The YAML text (first key ``suggested:``, which the import refuses until deleted), its
        entries and what could not be matched.

    Notes
    -----
    The rules and the sureness words are the module docstring's table. A form is matched to an
    instrument only when its numbered fields are exactly items 1..k of it and every field's codes
    fit its item; two instruments that fit equally are not chosen between (the form is listed
    unmatched, naming both). An event whose name and ``day_offset`` point to different timepoints
    is listed unmatched rather than resolved.

    References
    ----------
    REDCap Data Dictionary help; REDCap API documentation, "Export Events", "Export Arms".

    Examples
    --------
    >>> import pandas as pd
    >>> from alliance.protocol import default_protocol
    >>> from alliance.study.formats.redcap import DICTIONARY_COLUMNS
    >>> rows = [["record_id", "intake", "text", ""]] + [
    ...     [f"wai_{n}", "wai", "radio", "0, Seldom | 1, Sometimes | 2, Fairly often | 3, Very often | 4, Always"]
    ...     for n in range(1, 13)]
    >>> d = pd.DataFrame([{**dict.fromkeys(DICTIONARY_COLUMNS, ""), DICTIONARY_COLUMNS[0]: f, DICTIONARY_COLUMNS[1]: form,
    ...                    DICTIONARY_COLUMNS[3]: t, DICTIONARY_COLUMNS[5]: c} for f, form, t, c in rows])
    >>> s = suggest_mapping(d, default_protocol())
    >>> [(e.key, e.value) for e in s.entries if e.section == "forms"]
    [('wai', {'shift': 1.0})]
    >>> s.text.splitlines()[0].startswith("suggested:")
    True
    """
    draft = _Draft()
    fields = _fields(dictionary)
    if fields:
        draft.add("record_id", "record_id", fields[0].name)
    instruments = [bank.get(i) for i in protocol.instruments]
    _match_fields(fields[1:], protocol, instruments, draft)
    forms_of = {f.name: f.form for f in fields}
    instrument_of_form = {}
    for entry in draft.entries:
        if entry.section == "fields" or entry.section == "_item":
            item = entry.value["item"] if isinstance(entry.value, dict) else entry.value
            instrument_of_form.setdefault(forms_of.get(entry.key, ""), _instrument_of(item))
    _match_arms_and_events(protocol, events, form_events, arms, instrument_of_form, draft)
    _repeating(repeating, instrument_of_form, draft)
    text = _render(draft, protocol, source)
    entries = tuple(e for e in draft.entries if not e.section.startswith("_"))
    return MappingSuggestion(text, entries, tuple(draft.unmatched))


def _instrument_of(item_id: str) -> str:
    return next(i.id for i in bank.list_instruments() if item_id in i.item_ids)


def _match_fields(fields: list[_Field], protocol: Protocol, instruments: list[Instrument], draft: _Draft) -> None:
    """Items, administration, dosing, safety and participant fields; the rest unmatched."""
    in_protocol = {item.id: (inst, item) for inst in instruments for item in inst.items}
    in_bank = {item.id: inst for inst in bank.list_instruments() for item in inst.items}
    administration = {f"{i.id}_{c}": (i.id, c) for i in instruments for c in _ADMINISTRATION}
    safety = {name: (form, column) for form in SAFETY_FORMS for name, column in form.fields.items()}
    participant = _participant_targets(fields, protocol, draft)
    refused = {u.name for u in draft.unmatched}  # participant-like fields said unmatched already
    named_items: dict[str, list[tuple[_Field, Item, _Fit]]] = {}   # form → exact-name items
    groups: dict[tuple[str, str], list[tuple[int, _Field]]] = {}   # (form, stem) → numbered fields
    rest: list[_Field] = []
    for f in fields:
        if f.name in refused:
            continue
        if f.name in in_protocol:
            inst, item = in_protocol[f.name]
            fit = _fit(f, item)
            if fit is None:
                draft.miss("field", f.name, f"is named like item {item.id} but its {f.describe()} cannot be its "
                           f"values ({item.allowed()})", f.form)
            else:
                named_items.setdefault(f.form, []).append((f, item, fit))
            continue
        if f.name in in_bank:
            draft.miss("field", f.name, f"is named like an item of {in_bank[f.name].id}, which the protocol does not "
                       "give: the import would refuse its answers", f.form)
            continue
        if f.name in administration:
            # <instrument>_rater / _administered_at map by their names; written so that the section is whole
            instrument, column = administration[f.name]
            draft.add("administration_fields", f.name, {"instrument": instrument, "column": column})
            continue
        if f.name in DOSING_FIELDS:
            draft.add("dosing_fields", f.name, DOSING_FIELDS[f.name])
            continue
        if f.name in safety:
            form, column = safety[f.name]
            draft.add(form.section, f.name, column)
            continue
        if f.name in participant:
            column, value, why, sureness = participant[f.name]
            draft.add("participant_fields", f.name, value, why, sureness)
            continue
        match = _NUMBERED.match(f.name)
        if f.item_like and match:
            groups.setdefault((f.form, match["stem"]), []).append((int(match["number"]), f))
            continue
        rest.append(f)
    for form, found in named_items.items():
        _name_matched_form(form, found, draft)
    matched_forms: dict[str, Instrument] = {}
    for (form, stem), numbered in groups.items():
        inst = _numbered_group(form, stem, numbered, instruments, draft)
        if inst is not None:
            matched_forms.setdefault(form, inst)
    for form, found in named_items.items():
        matched_forms.setdefault(form, bank.get(_instrument_of(found[0][1].id)))
    by_form: dict[str, list[_Field]] = {}
    for f in rest:
        by_form.setdefault(f.form, []).append(f)
    for form, leftover in by_form.items():
        _leftover(form, leftover, matched_forms.get(form), protocol, draft)


def _participant_targets(fields: list[_Field], protocol: Protocol,
                         draft: _Draft) -> dict[str, tuple[str, Any, str, str]]:
    """Field → (participants column, entry value, why, sureness) for the fields named like participant columns.

    A column two fields could fill is given to neither (both listed unmatched).
    """
    identifiers = set(protocol.identifiers)
    found: dict[str, tuple[str, Any, str, str]] = {}
    for f in fields:
        if f.name in DOSING_FIELDS or any(f.name in form.fields for form in SAFETY_FORMS):
            continue
        if f.form == PARTICIPANT_FORM or f.name in identifiers or f.name in _CONTRACT_COLUMNS:
            column, why, sureness = f.name, "", "exact"
        elif f.name in _PARTICIPANT_SYNONYMS or _IDENTIFIER_SYNONYMS.get(f.name) in identifiers:
            column = _PARTICIPANT_SYNONYMS.get(f.name) or _IDENTIFIER_SYNONYMS[f.name]
            why = (f"named like the participants column {column}" if column == f.name
                   else f"{f.name} is a usual name for the participants column {column}")
            sureness = "likely"
        else:
            continue
        value: Any = column
        if f.codes and f.type != "checkbox":
            if column == "arm":
                table = {}
                for code, label in f.codes.items():
                    arm = next((a.id for a in protocol.arms if _words(label) in (_words(a.id), _words(a.label))), None)
                    table[code] = arm
                if None in table.values():
                    draft.miss("field", f.name, f"is named like the participants column arm, but its choices "
                               f"({'; '.join(f'{c} {_one_line(lab, 30)}' for c, lab in f.codes.items())}) are not all "
                               f"arms of the protocol ({', '.join(protocol.arm_ids)})", f.form)
                    continue
                why += "; codes → arms by their labels"
            else:
                table = {code: label for code, label in f.codes.items()}
                why = (why + "; " if why else "") + "the choices' labels as the values (REDCap stores the codes)"
                sureness = "likely" if sureness == "exact" else sureness
            value = {"column": column, "recode": table}
        elif f.type == "checkbox":
            draft.miss("field", f.name, "is a checkbox (several answers), not one participants column value", f.form)
            continue
        found[f.name] = (column, value, why, sureness)
    by_column: dict[str, list[str]] = {}
    for name, (column, *_rest) in found.items():
        by_column.setdefault(column, []).append(name)
    for column, names in by_column.items():
        if len(names) > 1:
            for name in names:
                form = next(f.form for f in fields if f.name == name)
                draft.miss("field", name, f"is one of {len(names)} fields that could be the participants column "
                           f"{column} ({', '.join(names)})", form)
                del found[name]
    return found


def _name_matched_form(form: str, found: list[tuple[_Field, Item, _Fit]], draft: _Draft) -> None:
    """Fields named like items: no entry, unless their codes need a recode (one for the form, else per field)."""
    for f, item, _ in found:
        draft.add("_item", f.name, item.id)  # not written: named like the item
    recodes = {json.dumps(fit.recode, sort_keys=True) for _, _, fit in found}
    if recodes == {"{}"}:
        return
    hows = sorted({fit.how for _, _, fit in found})
    if len(recodes) == 1:
        fit = found[0][2]
        draft.add("forms", form, fit.recode, f"{len(found)} fields named like items of {found[0][1].id.rsplit('_', 1)[0]}; "
                  f"{found[0][0].describe()} vs item values {_span(_values(found[0][1]) or [])}: "
                  f"{_recode_text(fit.recode)} ({', '.join(hows)})", "sure" if fit.by_anchors else "likely")
        return
    for f, item, fit in found:
        if fit.recode:
            draft.add("fields", f.name, {"item": item.id, **fit.recode},
                      f"named like the item; {f.describe()} vs {item.allowed()}: {_recode_text(fit.recode)} ({fit.how})",
                      "sure" if fit.by_anchors else "likely")


def _numbered_group(form: str, stem: str, numbered: list[tuple[int, _Field]], instruments: list[Instrument],
                    draft: _Draft) -> Instrument | None:
    """A form's numbered fields as items 1..k of the one instrument they fit; else each field unmatched."""
    numbered = sorted(numbered, key=lambda pair: pair[0])
    numbers = [n for n, _ in numbered]
    k = len(numbered)
    first, last = numbered[0][1].name, numbered[-1][1].name
    what = f"{k} numbered field{'s' if k > 1 else ''} {first}…{last}" if k > 1 else f"field {first}"
    fits: dict[str, list[_Fit]] = {}
    if numbers == list(range(1, k + 1)):
        for inst in instruments:
            if len(inst.items) != k:
                continue
            by_number = {item.number: item for item in inst.items}
            found = [_fit(f, by_number[n]) for n, f in numbered]
            if all(found):
                fits[inst.id] = found  # type: ignore[assignment]
    named = [i for i in fits if _instrument_like(stem, bank.get(i)) or _instrument_like(form, bank.get(i))]
    chosen = named if named else list(fits)
    if len(chosen) != 1:
        if not numbers == list(range(1, k + 1)):
            reason = (f"{what} of form {form}: its numbers ({_numbers_text(numbers)}) do not run 1..{k} as an "
                      "instrument's items do")
        elif not fits:
            counts = ", ".join(f"{i.id} {len(i.items)}" for i in instruments) or "none"
            reason = (f"{what} of form {form}: no instrument of the protocol has {k} items whose values hold their "
                      f"codes (items: {counts})")
        else:
            reason = f"{what} of form {form} fit {' and '.join(chosen)} alike: which one cannot be told"
        for _, f in numbered:
            draft.miss("field", f.name, reason, form)
        return None
    inst = bank.get(chosen[0])
    found = fits[inst.id]
    types = "/".join(sorted({f.type for _, f in numbered}))
    codes = _span([v for _, f in numbered for v in ([_number(c) for c in f.codes] if f.codes else [f.low, f.high])
                   if v is not None])
    item_values = _span([v for item in inst.items for v in (_values(item) or [item.min, item.max])])
    recodes = {json.dumps(fit.recode, sort_keys=True) for fit in found}
    evidence = ["the item count", "the ranges"]
    anchors = all(fit.by_anchors for fit in found)
    if anchors:
        evidence[1] = "the labels (= the anchors)"
    if named:
        evidence.insert(0, f"the name ({stem if _instrument_like(stem, inst) else form} ~ {inst.short_name})")
    sureness = "sure" if named and anchors else "likely" if named or anchors else "unsure"
    one = len(recodes) == 1
    recode_text = _recode_text(found[0].recode) if one else "recodes per field"
    why = (f"{what} ({types} {codes}) ~ {inst.id} items 1-{k} ({item_values}) by field number: {recode_text}; "
           f"by {', '.join(evidence)}")
    if one and found[0].recode:
        draft.add("forms", form, found[0].recode, why, sureness)
    for (n, f), fit in zip(numbered, found, strict=True):
        item = next(i for i in inst.items if i.number == n)
        value: Any = item.id if one or not fit.recode else {"item": item.id, **fit.recode}
        draft.add("fields", f.name, value, why, sureness)
    draft.group_why[("fields", first)] = why
    return inst


def _numbers_text(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:8])) + ("…" if len(numbers) > 8 else "")


def _leftover(form: str, fields: list[_Field], inst: Instrument | None, protocol: Protocol, draft: _Draft) -> None:
    """The fields nothing else took: a matched form's one date field as its administration date, the rest unmatched."""
    if inst is not None and inst.id in protocol.instruments:
        dates = [f for f in fields if f.validation.startswith(("date", "datetime")) or "date" in f.name.split("_")]
        if len(dates) == 1:
            named = dates[0].name == f"{inst.id}_date"
            draft.add("administration_fields", dates[0].name, {"instrument": inst.id, "column": "administered_at"},
                      f"the one date field of form {form}, whose fields are {inst.id}'s items"
                      + (f", named {inst.id}_date" if named else ""), "sure" if named else "unsure")
            fields = [f for f in fields if f is not dates[0]]
    for f in fields:
        if f.form == DOSING_FORM:
            reason = "is a field of the dosing form not named dosing_<column>: list it under dosing_fields: or ignore:"
        elif any(f.form == s.form for s in SAFETY_FORMS):
            section = next(s.section for s in SAFETY_FORMS if s.form == f.form)
            reason = f"is a field of form {f.form} not named like a column: list it under {section}: or ignore:"
        elif f.item_like:
            reason = f"{f.describe()} field whose name carries no item number"
        else:
            reason = f"{f.type}{' ' + f.validation if f.validation else ''} field: not an item answer, and not named " \
                     "like a participants column"
        draft.miss("field", f.name, reason, form)


# --------------------------------------------------------------------------------------------
# Arms and events
# --------------------------------------------------------------------------------------------

@dataclass
class _Event:
    unique: str
    label: str
    arm: int
    offset: float | None
    stripped: str
    timepoint: str | None = None
    why: str = ""
    sureness: str = "exact"
    offset_note: str = ""        # what the day offset says of a match by name


def _event_list(events: pd.DataFrame | None, form_events: pd.DataFrame | None) -> list[_Event]:
    out = []
    if events is not None:
        for _, row in events.iterrows():
            unique = str(row["unique_event_name"]).strip()
            offset = pd.to_numeric(pd.Series([row.get("day_offset")]), errors="coerce").iloc[0]
            out.append(_Event(unique, str(row.get("event_name", "")).strip(), int(row["arm_num"]),
                              None if pd.isna(offset) else float(offset), _stripped(unique)))
    elif form_events is not None:
        for unique, arm in dict.fromkeys(zip(form_events["unique_event_name"], form_events["arm_num"],
                                             strict=True)):
            out.append(_Event(str(unique), "", int(arm), None, _stripped(str(unique))))
    return out


def _stripped(unique: str) -> str:
    found = _ARM_SUFFIX.match(unique)
    return found["event"] if found else unique


def _planned_days(protocol: Protocol) -> dict[str, dict[str, int]]:
    """Arm → timepoint → planned day counted from the arm's first timepoint, as REDCap counts ``day_offset``."""
    out = {}
    for arm in protocol.arms:
        planned = planned_dates(protocol, arm.id, _DAY_ZERO)
        first = min(planned.values())
        out[arm.id] = {t: (d - first).days for t, d in planned.items()}
    return out


def _by_name(event: _Event, protocol: Protocol) -> tuple[str | None, str, str, list[str]]:
    """(timepoint, why, sureness, other candidates) from the event's names."""
    if event.stripped in protocol.timepoint_ids:
        return event.stripped, "", "exact", []
    found: dict[str, str] = {}
    for text in dict.fromkeys(t for t in (event.label, event.stripped) if t):
        words = _words(text)
        for t in protocol.timepoints:
            if words == _words(t.label):
                found.setdefault(t.id, f"label {text!r} = timepoint {t.id}'s label {t.label!r}")
            elif words == _words(t.id):
                found.setdefault(t.id, f"name {text!r} ~ timepoint id {t.id}")
        numbers = [w for w in words if w.isdigit()]
        if set(words) & _DOSE_WORDS and len(numbers) == 1 and len(words) <= 3:
            n = int(numbers[0])
            dosing = protocol.dosing_timepoints
            if 1 <= n <= len(dosing):
                found.setdefault(dosing[n - 1].id, f"{text!r}: dosing session {n} = the protocol's dosing timepoint "
                                 f"{dosing[n - 1].id}")
    if len(found) == 1:
        (timepoint, why), = found.items()
        return timepoint, why, "sure" if "label" in why and "=" in why.split(";")[0] else "likely", []
    return None, "", "", sorted(found)


def _match_arms_and_events(protocol: Protocol, events: pd.DataFrame | None, form_events: pd.DataFrame | None,
                           arms: pd.DataFrame | None, instrument_of_form: dict[str, str],
                           draft: _Draft) -> dict[int, str]:
    listed = _event_list(events, form_events)
    if not listed:
        draft.notes.append("no events file given: events named like timepoints (week4_arm_1) map by themselves; "
                           "give --events events.csv for the others")
        return {}
    planned = _planned_days(protocol)
    numbers = sorted({e.arm for e in listed} | (set(arms["arm_num"].astype(int)) if arms is not None else set()))
    names = dict(zip(arms["arm_num"].astype(int), arms["name"].astype(str), strict=True)) if arms is not None else {}
    # Events by name first: they are the evidence the arms' offsets are then read against.
    ambiguous: dict[str, list[str]] = {}
    for e in listed:
        e.timepoint, e.why, e.sureness, others = _by_name(e, protocol)
        if others:
            ambiguous[e.unique] = others
    arm_of: dict[int, str] = {}
    arm_why: dict[int, tuple[str, str]] = {}
    for n in numbers:
        name = names.get(n)
        if name is None:
            continue
        for a in protocol.arms:
            if name == a.id:
                arm_of[n], arm_why[n] = a.id, ("", "exact")
            elif _words(name) == _words(a.label):
                arm_of[n], arm_why[n] = a.id, (f"arm name {name!r} = arm {a.id}'s label", "sure")
            elif _words(name) == _words(a.id):
                arm_of[n], arm_why[n] = a.id, (f"arm name {name!r} ~ arm id {a.id}", "likely")
            if n in arm_of:
                break
    for n in numbers:
        if n in arm_of:
            continue
        free = [a for a in protocol.arm_ids if a not in arm_of.values()]
        # Each offset that is a planned day of the arm counts for it: a named event's must be its
        # timepoint's day, an unnamed one's any timepoint's. The arm with the most, if one has most.
        mine = [e for e in listed if e.arm == n and e.offset is not None]
        score = {a: sum((planned[a].get(e.timepoint) == e.offset) if e.timepoint else (e.offset in planned[a].values())
                        for e in mine) for a in free}
        best = max(score.values(), default=0)
        fitting = [a for a, k in score.items() if k == best]
        if best > 0 and len(fitting) == 1:
            arm_of[n] = fitting[0]
            arm_why[n] = (f"{best} of its {len(mine)} events' day offsets are planned days of {fitting[0]}"
                          + (", more than of any other arm" if len(free) > 1 else ""),
                          "likely" if best == len(mine) else "unsure")
        elif len(numbers) == 1 and len(protocol.arms) == 1:
            arm_of[n] = protocol.arm_ids[0]
            arm_why[n] = ("the project's one arm, the protocol's one arm", "likely")
    for n in numbers:
        if n in arm_of:
            why, sureness = arm_why[n]
            draft.add("arms", str(n), arm_of[n], why, sureness)
        else:
            default = protocol.arm_ids[n - 1] if n <= len(protocol.arm_ids) else None
            named = f" {names[n]!r}" if n in names else ""
            by_days = " or has its events' planned days" if events is not None else ""
            draft.miss("arm", str(n), f"REDCap arm {n}{named}: no arm of the protocol is named like it{by_days}"
                       + (f"; without arms: the import takes it as the protocol's arm {n}, {default}" if default
                          else "; without arms: the import refuses its records"))
    # Day offsets: a check of the names' matches, and a match of their own for the rest.
    for e in listed:
        arm = arm_of.get(e.arm)
        if e.offset is None or arm is None:
            continue
        days = planned[arm]
        if e.timepoint:
            t = next(t for t in protocol.timepoints if t.id == e.timepoint)
            day = days[e.timepoint]
            if e.offset == day:
                if e.sureness != "exact":
                    e.offset_note = f"day_offset {format_number(e.offset)} = its planned day in arm {arm}"
                    e.sureness = "sure"
            elif day - t.window_days[0] <= e.offset <= day + t.window_days[1]:
                e.offset_note = (f"day_offset {format_number(e.offset)} is within its window (day {day}, "
                                 f"-{t.window_days[0]}/+{t.window_days[1]}) in arm {arm}")
            else:
                draft.miss("event", e.unique, f"{_event_text(e)}: its name gives {e.timepoint}, but its day_offset "
                           f"{format_number(e.offset)} is not {e.timepoint}'s planned day {day} in arm {arm} (window "
                           f"-{t.window_days[0]}/+{t.window_days[1]})")
                e.timepoint = None
                e.why = "conflict"
            continue
        if e.unique in ambiguous:
            continue
        taken = {x.timepoint for x in listed if x.arm == e.arm and x.timepoint}
        exact = [t for t, d in days.items() if d == e.offset and t not in taken]
        within = [t.id for t in protocol.timepoints if t.id not in taken
                  and days[t.id] - t.window_days[0] <= e.offset <= days[t.id] + t.window_days[1]]
        if len(exact) == 1:
            e.timepoint, e.sureness = exact[0], "likely"
            e.why = f"{_event_text(e)}: day_offset {format_number(e.offset)} = {exact[0]}'s planned day in arm {arm}"
        elif not exact and len(within) == 1:
            e.timepoint, e.sureness = within[0], "unsure"
            e.why = (f"{_event_text(e)}: day_offset {format_number(e.offset)} is within {within[0]}'s window in arm "
                     f"{arm} (planned day {days[within[0]]})")
        else:
            e.offset_note = (f"its day_offset {format_number(e.offset)} is the planned day of "
                             f"{' and '.join(exact) or 'no timepoint'} in arm {arm}"
                             + (f", within the windows of {' and '.join(within)}" if not exact and within else ""))
    _check_forms(listed, protocol, form_events, instrument_of_form)
    _write_events(listed, ambiguous, draft)
    return arm_of


def _event_text(e: _Event) -> str:
    return f"event {e.label!r}" if e.label else f"event {e.unique}"


def _check_forms(listed: list[_Event], protocol: Protocol, form_events: pd.DataFrame | None,
                 instrument_of_form: dict[str, str]) -> None:
    """Say in an event's comment which of its forms' instruments the protocol does not give at its timepoint."""
    if form_events is None:
        return
    given = {t.id: set(t.instruments) for t in protocol.timepoints}
    for e in listed:
        if not e.timepoint:
            continue
        forms = form_events.loc[form_events["unique_event_name"] == e.unique, "form"].astype(str)
        wrong = sorted({instrument_of_form[f] for f in forms if f in instrument_of_form}
                       - given[e.timepoint])
        if wrong:
            e.why = (e.why + "; " if e.why else "") + (f"CHECK: it holds forms of {', '.join(wrong)}, which the "
                                                       f"protocol does not give at {e.timepoint}")
            e.sureness = "unsure"


def _write_events(listed: list[_Event], ambiguous: dict[str, list[str]], draft: _Draft) -> None:
    """One entry per name without ``_arm_N`` when all its arms' events agree, else one per unique name."""
    by_stripped: dict[str, list[_Event]] = {}
    for e in listed:
        by_stripped.setdefault(e.stripped, []).append(e)
    for stripped, group in by_stripped.items():
        targets = {e.timepoint for e in group}
        if len(targets) == 1 and None not in targets:
            worst = max(group, key=lambda e: _SURENESS.index(e.sureness))
            why = "; ".join(dict.fromkeys([e.why for e in group if e.why] + [e.offset_note for e in group
                                                                               if e.offset_note]))
            arms = ", ".join(str(e.arm) for e in group)
            draft.add("events", stripped, group[0].timepoint,
                      (why + (f" (arms {arms})" if len(group) > 1 else "")) if why else "", worst.sureness)
            continue
        for e in group:
            if e.timepoint:
                draft.add("events", e.unique, e.timepoint, "; ".join(w for w in (e.why, e.offset_note) if w),
                          e.sureness)
            elif e.why != "conflict":
                if e.unique in ambiguous:
                    reason = f"{_event_text(e)} (arm {e.arm}) is named like {' and '.join(ambiguous[e.unique])} alike"
                else:
                    reason = (f"{_event_text(e)} (arm {e.arm}): no timepoint is named like it, and "
                              + (e.offset_note or ("it has no day_offset to compare" if e.offset is None
                                                   else "its arm is not matched to compare its day_offset")))
                draft.miss("event", e.unique, reason)


def _repeating(repeating: pd.DataFrame | None, instrument_of_form: dict[str, str], draft: _Draft) -> None:
    """A repeating form (or event) holding answers: its instances need timepoints the dictionary cannot give."""
    if repeating is None:
        return
    own = {DOSING_FORM, *(f.form for f in SAFETY_FORMS)}
    for _, row in repeating.iterrows():
        form, event = str(row.get("form_name", "") or "").strip(), str(row.get("event_name", "") or "").strip()
        if form in own:
            continue  # one instance per row of its table: no timepoints needed
        if form and form not in instrument_of_form:
            continue  # its fields are listed unmatched already
        key = form or _stripped(event)
        if any(u.kind == "repeating" and u.name == key for u in draft.unmatched):
            continue
        what = f"repeating form {form} ({instrument_of_form[form]})" if form else f"repeating event {event}"
        draft.miss("repeating", key, f"{what}: each instance needs a timepoint: repeating: {key}: {{1: <timepoint>, "
                   f"2: …}} or a pattern such as {key}_{{n}}")


# --------------------------------------------------------------------------------------------
# The file
# --------------------------------------------------------------------------------------------

_SECTIONS = ("record_id", "events", "arms", "forms", "fields", "participant_fields", "administration_fields",
             "dosing_fields", *(f.section for f in SAFETY_FORMS))


def _scalar(value: Any) -> str:
    """A value as a YAML scalar or flow mapping, quoted where YAML would read it otherwise."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return format_number(value)
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", text) and text.lower() not in (
            "yes", "no", "true", "false", "on", "off", "null", "y", "n", "nan", "inf"):
        return text
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return text  # a code: parse_mapping reads numbers and their text alike
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _render(draft: _Draft, protocol: Protocol, source: str) -> str:
    guessed = [e for e in draft.entries if e.sureness != "exact" and not e.section.startswith("_")]
    named = sum(e.section == "_item" for e in draft.entries)
    lines = [
        "suggested: " + json.dumps(f"made by alliance redcap suggest from {source} for protocol {protocol.id}: every "
                                   "entry is a guess to check (the comments say why and how sure); review them, then "
                                   "delete this line", ensure_ascii=False),
        f"# {len(guessed)} entries chosen by more than their name (each says why: exact < sure < likely < unsure), "
        f"{len(draft.unmatched)} unmatched (under # UNMATCHED at the end).",
    ]
    if named:
        lines.append(f"# {named} fields are named like items of the protocol's instruments: they need no entry.")
    lines += [f"# {_comment(note)}" for note in draft.notes]
    for section in _SECTIONS:
        entries = [e for e in draft.entries if e.section == section]
        if not entries:
            continue
        if section == "record_id":
            lines.append(f"record_id: {_scalar(entries[0].value)}   # the dictionary's first field")
            continue
        lines.append(f"{section}:")
        said = None
        for e in entries:
            if e.why and e.why != said and (section != "fields" or (section, e.key) in draft.group_why
                                           or e.why not in draft.group_why.values()):
                lines.append(f"  # {_comment(e.why)}; {e.sureness}")
                said = e.why
            lines.append(f"  {_scalar(e.key)}: {_scalar(e.value)}")
    if draft.unmatched:
        lines += ["", f"# UNMATCHED: {len(draft.unmatched)} things nothing above maps, each with why. The import "
                  "refuses a field with no mapping: map each above, or uncomment it under ignore:."]
        for kind, heading in (("arm", "arms"), ("event", "events"), ("repeating", "repeating")):
            mine = [u for u in draft.unmatched if u.kind == kind]
            if mine:
                lines.append(f"# {heading}:")
                lines += [f"#   {u.name}: ?    # {_comment(u.reason)}" for u in mine]
        if draft.unmatched_fields:
            lines.append("# ignore:")
            for form, found in draft.unmatched_fields.items():
                lines.append(f"#   # form {form}")
                said = None
                for name, reason in found:
                    if reason.startswith(("field ", "is ")) or " numbered fields " not in reason:
                        lines.append(f"#   - {name}    # {_comment(reason)}")
                        continue
                    if reason != said:  # a group's one reason, said once above its fields
                        lines.append(f"#   # {_comment(reason)}")
                        said = reason
                    lines.append(f"#   - {name}")
    return "\n".join(lines) + "\n"
