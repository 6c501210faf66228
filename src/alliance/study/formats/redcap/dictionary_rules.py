"""REDCap's own naming rules: the unique names of events, and what its data dictionary upload accepts.

Both are rules REDCap applies on its side, restated here so that an export is accepted as it is:

- :func:`unique_event_name` — the ``redcap_event_name`` REDCap derives from an event's label and
  arm when events are created (by the Define My Events page or the API's Import Events, which
  ignores a ``unique_event_name`` column). Records naming any other event are refused.
- :func:`check_dictionary` — the checks of REDCap's Data Dictionary upload, errors and the
  warnings after which REDCap changes the file (a renamed variable no longer matches the records).

References
----------
REDCap (Vanderbilt University), ``Classes/Project.php``: ``Project::getUniqueEventNames`` (the
unique event name) and ``Project::loadEvents`` (events in order of arm, day offset, label), as of
REDCap 15.
REDCap, ``Classes/MetaData.php``: ``MetaData::error_checking`` (the Data Dictionary upload's
errors and warnings), as of REDCap 15; the validation types of ``redcap_validation_types`` in
REDCap's install and upgrade scripts; REDCap's Help & FAQ, "Data Dictionary".
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Collection

import pandas as pd

from ...errors import DataProblem
from .schema import DICTIONARY_COLUMNS

# The characters REDCap keeps of an event's label, and how much of it.
_EVENT_LABEL_KEPT = re.compile(r"[^0-9a-zA-Z_ ]")
_EVENT_STEM_LENGTH = 18
# REDCap's "trim" (PHP's default set of stripped characters).
_PHP_TRIM = " \t\n\r\0\x0b"


def unique_event_name(label: str, arm_num: int, taken: Collection[str] = ()) -> str:
    """The unique event name REDCap gives an event (``Dose 1``, arm 1 → ``dose_1_arm_1``).

    Parameters
    ----------
    label : str
        The event's name (REDCap's ``event_name``, the label shown on forms).
    arm_num : int
        The arm's number.
    taken : collection of str
        The unique names REDCap has already given, to the events before this one in its order
        (by arm number, then day offset, then label).

    Returns
    -------
    str

    Notes
    -----
    REDCap decodes the label's HTML entities and trims it, deletes every character that is not
    an ASCII letter, digit, underscore or space, turns each space into ``_``, keeps the first 18
    characters in lower case and strips underscores from both ends. A label with nothing left
    (all non-ASCII, say) becomes the first 10 hex digits of the label's MD5. ``_arm_<n>`` is
    appended. An event whose name so far equals that of *k* earlier events gets a suffix:
    ``b``, ``c``, … for *k* = 1 … 25, two letters (``chr(96 + k // 26)``, ``chr(97 + k % 26)``) for
    *k* = 26 … 701, ``??`` beyond.

    References
    ----------
    REDCap, ``Classes/Project.php``, ``Project::getUniqueEventNames``; checked against the events
    of REDCapR's and PyCap's recorded test projects (``Deadline to opt out of study``, arm 2 →
    ``deadline_to_opt_ou_arm_2``).

    Examples
    --------
    >>> unique_event_name("Deadline to opt out of study", 2)
    'deadline_to_opt_ou_arm_2'
    >>> unique_event_name("Event 1", 1, taken={"event_1_arm_1"})
    'event_1_arm_1b'
    """
    decoded = html.unescape(str(label)).strip(_PHP_TRIM)
    stem = _EVENT_LABEL_KEPT.sub("", decoded).replace(" ", "_")[:_EVENT_STEM_LENGTH].lower().strip("_")
    if not stem:
        stem = hashlib.md5(decoded.encode("utf-8")).hexdigest()[:10]
    base = f"{stem}_arm_{int(arm_num)}"
    # The earlier events of the same name: the name itself, or it with a suffix of letters (or ??).
    earlier = re.compile(re.escape(base) + r"(?:[a-z]{1,2}|\?\?)?")
    count = sum(1 for name in taken if earlier.fullmatch(name))
    if count == 0:
        return base
    if count < 26:
        return base + chr(97 + count)
    if count < 702:
        return base + chr(96 + count // 26) + chr(97 + count % 26)
    return base + "??"


# --------------------------------------------------------------------------------------------
# The data dictionary
# --------------------------------------------------------------------------------------------

# REDCap's field types (MetaData::error_checking; "sql" only a super user may add, "advcheckbox"
# REDCap fills in itself), and the legacy names it rewrites ("textarea", "select").
FIELD_TYPES = ("text", "notes", "radio", "dropdown", "calc", "file", "checkbox", "yesno", "truefalse",
               "descriptive", "slider", "sql")
_CHOICE_TYPES = ("radio", "dropdown", "checkbox")
# Types whose choices column REDCap empties on upload.
_NO_CHOICES = ("notes", "file", "yesno", "truefalse", "descriptive", "text")
# The validation types of a REDCap installation (redcap_validation_types, install and upgrade
# scripts), with the form of their min / max; a site may add its own, which this list refuses.
_DATE = r"\d{4}-(0[1-9]|1[012])-(0[1-9]|[12]\d|3[01])"
_TIME = r"([01]?\d|2[0-3]):[0-5]\d"
_NUMBER = r"[-+]?\d*\.?\d+([eE][-+]?\d+)?"
_COMMA_NUMBER = r"[-+]?\d*,?\d+([eE][-+]?\d+)?"
VALIDATION_TYPES = {
    "date_dmy": _DATE, "date_mdy": _DATE, "date_ymd": _DATE,   # min/max written Y-M-D whatever the display
    "datetime_dmy": f"{_DATE} {_TIME}", "datetime_mdy": f"{_DATE} {_TIME}", "datetime_ymd": f"{_DATE} {_TIME}",
    "datetime_seconds_dmy": f"{_DATE} {_TIME}:[0-5]\\d", "datetime_seconds_mdy": f"{_DATE} {_TIME}:[0-5]\\d",
    "datetime_seconds_ymd": f"{_DATE} {_TIME}:[0-5]\\d",
    "time": _TIME, "time_hh_mm_ss": f"{_TIME}:[0-5]\\d", "time_mm_ss": r"[0-5]\d:[0-5]\d",
    "integer": r"[-+]?\d+", "number": _NUMBER,
    "number_1dp": r"-?\d+\.\d", "number_2dp": r"-?\d+\.\d{2}", "number_3dp": r"-?\d+\.\d{3}",
    "number_4dp": r"-?\d+\.\d{4}", "number_comma_decimal": _COMMA_NUMBER,
    "number_1dp_comma_decimal": r"-?\d+,\d", "number_2dp_comma_decimal": r"-?\d+,\d{2}",
    "number_3dp_comma_decimal": r"-?\d+,\d{3}", "number_4dp_comma_decimal": r"-?\d+,\d{4}",
    "email": r".+", "phone": r".+", "phone_australia": r".+", "postalcode_australia": r"\d{4}",
    "postalcode_canada": r".+", "ssn": r".+", "zipcode": r"\d{5}(-\d{4})?", "alpha_only": r"[A-Za-z]+",
    "mrn_10d": r"\d{10}", "vmrn": r"\d{4,9}",
}
# Min / max that need no validation of their form: today's date, now, another field.
_RELATIVE_BOUND = re.compile(r"today|now|\[[a-z][a-z0-9_]*\]")
# Names REDCap reserves for itself (Project::$reserved_field_names).
RESERVED_FIELD_NAMES = frozenset((
    "redcap_event_name", "redcap_csrf_token", "redcap_survey_timestamp", "redcap_survey_identifier",
    "redcap_survey_return_code", "redcap_data_access_group", "hidden_edit_flag", "instance",
    "redcap_repeat_instance", "redcap_repeat_instrument", "submit", "new", "return", "continue", "case", "switch",
    "class", "enum", "catch", "throw", "document", "super", "focus", "elements", "action", "event_id", "target",
    "field_label"))
_NAME = re.compile(r"[a-z][a-z0-9_]*")
# REDCap warns above 26 characters (some exports, e.g. to SAS and Stata, cut longer names) and
# refuses above 100; a form name it warns about above 50 and refuses above 64.
MAX_FIELD_NAME = 26
MAX_FORM_NAME = 50
_CHECKBOX_CODE = re.compile(r"[A-Za-z0-9_]+")
# A choice's raw code: a number, or letters, digits, dot, underscore, hyphen.
_CHOICE_CODE = re.compile(r"[A-Za-z0-9._\-]+")
_ALIGNMENTS = ("", "LH", "LV", "RH", "RV")
_EVENT_PREFIX = re.compile(r"[a-z0-9_]+_arm_\d+[a-z]{0,2}")


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _name_problems(name: str, what: str, maximum: int) -> list[tuple[str, str]]:
    """(reason, allowed) for each rule a variable or form name breaks."""
    allowed = (f"lower-case letters, digits and single underscores, starting with a letter, not ending in '_', "
               f"at most {maximum} characters")
    found = []
    if not _NAME.fullmatch(name):
        found.append((f"is not a REDCap {what} name (REDCap would rename it)", allowed))
    elif "___" in name:
        found.append(("holds '___', which REDCap keeps for the columns of checkbox choices", allowed))
    elif "__" in name or name.endswith("_"):
        found.append(("has a double underscore or ends in '_', which REDCap refuses or renames", allowed))
    if len(name) > maximum:
        found.append((f"is {len(name)} characters long, more than the {maximum} REDCap's upload warns above",
                      allowed))
    if name.endswith("_complete"):
        found.append(("ends in '_complete', which REDCap keeps for each form's status field", allowed))
    return found


def _choices(text: str) -> list[tuple[str, str]]:
    """``code, label | …`` (or REDCap's ``\\n`` separated form) as (code, label) pairs."""
    parts = re.split(r"\||\\n|\n", text)
    out = []
    for part in parts:
        code, _, label = part.partition(",")
        out.append((code.strip(), label.strip() if _ else code.strip()))
    return out


def check_dictionary(dictionary: pd.DataFrame, file: str = "data_dictionary.csv",
                     record_id: str | None = None) -> list[DataProblem]:
    """Every rule of REDCap's Data Dictionary upload a dictionary breaks (empty: REDCap accepts it as is).

    Parameters
    ----------
    dictionary : DataFrame
        The data dictionary, REDCap's 18 columns, one row per field, cells as text.
    file : str
        The file's name, for messages (line numbers count the header as line 1).
    record_id : str, optional
        The record id field, which must come first; by default the first field is taken as it.

    Returns
    -------
    list of DataProblem
        One per broken rule, naming the line, the column and the value.

    Notes
    -----
    The rules, as REDCap's upload checks them (errors, and the warnings after which REDCap
    rewrites the file — a renamed variable would no longer match the records):

    - the 18 columns, in REDCap's order;
    - the record id field first, a text field; each form's fields contiguous;
    - variable names ``[a-z][a-z0-9_]*`` without ``__`` or a final ``_``, not ending in
      ``_complete``, not reserved (``redcap_event_name``, …, ``<form>_timestamp``,
      ``<form>_return_code``), at most 26 characters, unique; form names alike, at most 50;
    - a field type from :data:`FIELD_TYPES`; a field label;
    - radio, dropdown and checkbox choices ``code, label | …``, at least two (a checkbox may have
      one), unique codes that are numbers or ``[A-Za-z0-9._-]+`` (a checkbox's letters, digits and
      underscores, since each becomes a ``field___code`` column); no choices where REDCap drops
      them; a calc field's equation;
    - a validation type only on text fields (a slider's ``number`` shows its value), from
      :data:`VALIDATION_TYPES`; min / max only with a validation, in its form, min ≤ max;
    - a slider's labels at most three (left | middle | right), whole-number min / max;
    - ``Identifier?``, ``Required Field?`` and ``Matrix Ranking?`` ``y`` or empty, the alignment
      LH, LV, RH, RV or empty; branching logic with balanced brackets naming fields of the
      dictionary (or a ``<form>_complete``).

    References
    ----------
    REDCap, ``Classes/MetaData.php``, ``MetaData::error_checking``; ``Classes/Project.php``,
    ``Project::$reserved_field_names``; REDCap's Help & FAQ, "Data Dictionary" (variable names of
    at most 26 characters).

    Examples
    --------
    >>> import pandas as pd
    >>> row = dict.fromkeys(DICTIONARY_COLUMNS, "")
    >>> row.update({"Variable / Field Name": "record_id", "Form Name": "participant", "Field Type": "text",
    ...             "Field Label": "Participant ID"})
    >>> check_dictionary(pd.DataFrame([row]))
    []
    """
    problems: list[DataProblem] = []

    def problem(row: int | None, column: str | None, value, allowed: str, reason: str) -> None:
        problems.append(DataProblem(file, row, column, value, allowed, reason))

    columns = [str(c) for c in dictionary.columns]
    if columns != list(DICTIONARY_COLUMNS):
        missing = [c for c in DICTIONARY_COLUMNS if c not in columns]
        problem(1, None, ", ".join(columns), ", ".join(DICTIONARY_COLUMNS),
                f"are not REDCap's 18 data dictionary columns in order (missing: {', '.join(missing) or 'none'})")
        if missing:
            return problems
    text = dictionary.astype("string").fillna("")
    cell = {c: text[c].tolist() for c in DICTIONARY_COLUMNS}
    field_col, form_col, type_col = DICTIONARY_COLUMNS[0], DICTIONARY_COLUMNS[1], DICTIONARY_COLUMNS[3]
    names, forms, types = cell[field_col], cell[form_col], cell[type_col]
    if not names:
        problem(None, field_col, None, "the record id field, then the others", "has no fields")
        return problems
    line = [n + 2 for n in range(len(names))]
    form_names = list(dict.fromkeys(forms))
    reserved = RESERVED_FIELD_NAMES | {f"{f}_timestamp" for f in form_names} | {f"{f}_return_code" for f in form_names}

    first = record_id or names[0]
    if names[0] != first:
        problem(2, field_col, names[0], f"the record id field {first!r}", "is not the record id field, which comes first")
    if types[0] != "text":
        problem(2, type_col, types[0], "text", "is the record id field's type; REDCap makes it a text field")
    seen_names: dict[str, int] = {}
    for n, name in enumerate(names):
        for reason, allowed in _name_problems(name, "variable", MAX_FIELD_NAME):
            problem(line[n], field_col, name, allowed, reason)
        if name in reserved:
            problem(line[n], field_col, name, "a name REDCap does not use itself", "is a name REDCap reserves")
        if name in seen_names:
            problem(line[n], field_col, name, "a name used once",
                    f"is the variable name of line {seen_names[name]} too")
        seen_names.setdefault(name, line[n])
    seen_forms: dict[str, int] = {}
    for n, form in enumerate(forms):
        if form not in seen_forms:
            for reason, allowed in _name_problems(form, "form", MAX_FORM_NAME):
                problem(line[n], form_col, form, allowed, reason)
            seen_forms[form] = line[n]
        elif forms[n - 1] != form:
            problem(line[n], form_col, form, "each form's fields together, one after another",
                    f"is a form whose fields began on line {seen_forms[form]} and were interrupted")
    status_fields = {f"{f}_complete" for f in form_names}

    for n, name in enumerate(names):
        at, kind = line[n], types[n]
        choices = cell[DICTIONARY_COLUMNS[5]][n]
        validation = cell[DICTIONARY_COLUMNS[7]][n]
        low, high = cell[DICTIONARY_COLUMNS[8]][n], cell[DICTIONARY_COLUMNS[9]][n]
        if kind not in FIELD_TYPES:
            problem(at, type_col, kind, ", ".join(FIELD_TYPES), "is not a REDCap field type")
        if not cell[DICTIONARY_COLUMNS[4]][n].strip():
            problem(at, DICTIONARY_COLUMNS[4], None, "the question or label shown on the form",
                    f"is empty for field {name!r}")
        if kind in _CHOICE_TYPES:
            _check_choices(problem, at, name, kind, choices)
        elif kind in _NO_CHOICES and choices:
            problem(at, DICTIONARY_COLUMNS[5], choices, f"empty for a {kind} field",
                    f"gives choices to field {name!r}, which REDCap drops")
        elif kind == "calc" and not choices.strip():
            problem(at, DICTIONARY_COLUMNS[5], None, "the calculation's equation", f"is empty for calc field {name!r}")
        if kind == "slider":
            _check_slider(problem, at, name, choices, validation, low, high)
        elif validation:
            _check_validation(problem, at, name, kind, validation, low, high)
        elif (low or high) and kind == "text":
            problem(at, DICTIONARY_COLUMNS[8] if low else DICTIONARY_COLUMNS[9], low or high,
                    "a validation type with its min / max, or no min / max",
                    f"bounds field {name!r}, which has no validation type")
        for column, allowed_values in ((DICTIONARY_COLUMNS[10], ("", "y")), (DICTIONARY_COLUMNS[12], ("", "y")),
                                       (DICTIONARY_COLUMNS[16], ("", "y")), (DICTIONARY_COLUMNS[13], _ALIGNMENTS)):
            value = cell[column][n]
            if value not in allowed_values:
                problem(at, column, value, " or ".join(repr(v) for v in allowed_values),
                        f"is not a value REDCap reads there (field {name!r})")
        logic = cell[DICTIONARY_COLUMNS[11]][n]
        if logic.strip():
            _check_logic(problem, at, name, logic, set(names) | status_fields)
    return problems


def _check_choices(problem, at: int, name: str, kind: str, choices: str) -> None:
    column = DICTIONARY_COLUMNS[5]
    if not choices.strip():
        problem(at, column, None, "code, label | code, label | …", f"is empty for {kind} field {name!r}")
        return
    if re.match(r"\s*\|", choices) or re.search(r"\|\s*$", choices):
        problem(at, column, choices, "code, label | code, label (no '|' first or last)",
                f"begins or ends with '|' (field {name!r})")
    pairs = _choices(choices)
    if kind != "checkbox" and len(pairs) < 2:
        problem(at, column, choices, "two or more choices separated by '|'", f"gives {kind} field {name!r} one choice")
    codes = [code for code, _ in pairs]
    for code in codes:
        legal = _CHECKBOX_CODE.fullmatch(code) if kind == "checkbox" else (
            _numeric(code) or _CHOICE_CODE.fullmatch(code))
        if not legal:
            allowed = ("letters, digits and underscores (each code becomes a column field___code)" if kind == "checkbox"
                       else "a number, or letters, digits, '.', '_' and '-'")
            problem(at, column, code, allowed, f"is not a code REDCap accepts (field {name!r})")
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        problem(at, column, ", ".join(repeated), "each code once", f"repeats codes of field {name!r}")


def _check_slider(problem, at: int, name: str, labels: str, validation: str, low: str, high: str) -> None:
    if labels and len(labels.split("|")) > 3:
        problem(at, DICTIONARY_COLUMNS[5], labels, "at most three labels: left | middle | right",
                f"gives slider {name!r} more than three labels")
    if validation not in ("", "number"):
        problem(at, DICTIONARY_COLUMNS[7], validation, "'number' (show the value) or empty",
                f"is not a slider's setting (field {name!r})")
    for column, bound in ((DICTIONARY_COLUMNS[8], low), (DICTIONARY_COLUMNS[9], high)):
        if bound and not re.fullmatch(r"[-+]?\d+", bound):
            problem(at, column, bound, "a whole number", f"is not a slider bound REDCap accepts (field {name!r})")
    if re.fullmatch(r"[-+]?\d+", low) and re.fullmatch(r"[-+]?\d+", high) and int(low) > int(high):
        problem(at, DICTIONARY_COLUMNS[8], low, f"at most the max {high}", f"is above the max of slider {name!r}")


def _check_validation(problem, at: int, name: str, kind: str, validation: str, low: str, high: str) -> None:
    column = DICTIONARY_COLUMNS[7]
    if not (kind == "text" or (kind == "dropdown" and validation == "autocomplete")
            or (kind == "file" and validation == "signature")):
        problem(at, column, validation, "a validation type on a text field only (autocomplete on a dropdown, "
                "signature on a file)", f"validates {kind} field {name!r}")
        return
    if kind != "text":
        return
    if validation not in VALIDATION_TYPES:
        problem(at, column, validation, ", ".join(VALIDATION_TYPES), f"is not a REDCap validation type (field {name!r})")
        return
    form = VALIDATION_TYPES[validation]
    for bound_column, bound in ((DICTIONARY_COLUMNS[8], low), (DICTIONARY_COLUMNS[9], high)):
        if bound and not _RELATIVE_BOUND.fullmatch(bound) and not re.fullmatch(form, bound) \
                and not (validation.startswith("number") and _numeric(bound)):
            problem(at, bound_column, bound, f"a value of validation {validation}, 'today', 'now' or a [field]",
                    f"is not a bound of {validation} (field {name!r})")
    if low and high and re.fullmatch(form, low) and re.fullmatch(form, high):
        if validation == "integer" or validation.startswith("number") and "comma" not in validation:
            wrong = float(low) > float(high)
        else:  # dates, date-times and times written with leading zeros compare as text
            wrong = low > high if validation.startswith(("date", "datetime")) else False
        if wrong:
            problem(at, DICTIONARY_COLUMNS[8], low, f"at most the max {high}", f"is above the max of field {name!r}")


def _check_logic(problem, at: int, name: str, logic: str, known: set[str]) -> None:
    column = DICTIONARY_COLUMNS[11]
    if (logic.count("(") != logic.count(")") or logic.count("[") != logic.count("]")
            or logic.count("'") % 2 or logic.count('"') % 2):
        problem(at, column, logic, "balanced (), [] and quotes", f"is not logic REDCap can parse (field {name!r})")
        return
    for field in re.findall(r"\[([^\]]+)\]", logic):
        bare = re.sub(r"\(.*\)$", "", field.strip())   # a checkbox choice: [field(code)]
        # an event prefix ([visit_1_arm_1][field]) and smart variables ([event-name]) are not fields
        if bare not in known and not _EVENT_PREFIX.fullmatch(bare) and "-" not in bare and ":" not in bare:
            problem(at, column, field, "fields of this dictionary, or a form's _complete",
                    f"names a field the dictionary does not have (field {name!r})")
