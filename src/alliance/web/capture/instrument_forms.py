"""Forms rendered from the instrument definitions, and answers checked by the scoring engine.

Each item is one row. An item with whole-number (or few stepped) answers is a row of radio
buttons labelled with the instrument's anchors; a visual-analogue item (``step: null``) is a
number field (with a slider beside it where JavaScript runs). Item wording, in order of
preference: a site's licensed wording file in the page's language
(``ALLIANCE_WORDING_DIR/<language>/<instrument>.yaml``, e.g. ``de/wai_sr.yaml``; the language is
Django's active one, which ``LocaleMiddleware`` takes from the browser or the language switcher,
among ``ALLIANCE_LANGUAGES``), the site's file for every language
(``ALLIANCE_WORDING_DIR/<instrument>.yaml``), each an item id → text mapping applied with
:meth:`~alliance.instruments.Instrument.with_wording`, then the wording the definition includes,
else "Item N" — the answer labels are always shown. A language file is looked for under the full
code first (``pt-br``), then its main language (``pt``).

Answers are checked only by :func:`alliance.instruments.validate` (the same checks as an import),
and scored only by :func:`alliance.instruments.score`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.utils import translation

from alliance import instruments as bank
from alliance.instruments import Instrument, InstrumentDefinitionError, Item, ScoringError
from alliance.protocol.yaml_input import read_yaml_file
from alliance.study import StudyDataError

# At most this many allowed answers are shown as radio buttons; more become a number field.
MAX_CHOICES = 11
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})?")


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@lru_cache(maxsize=64)
def _wording(path: str, modified: float) -> dict[str, str]:
    try:  # a site's file: read with the one bounded YAML reader
        raw = read_yaml_file(path) or {}
    except StudyDataError as error:
        raise InstrumentDefinitionError(str(error)) from None
    if not isinstance(raw, dict):
        raise InstrumentDefinitionError(f"{path}: expected a mapping of item id to text")
    return {str(k): str(v) for k, v in raw.items()}


def form_instrument(instrument_id: str, language: str | None = None) -> Instrument:
    """The instrument as forms show it: with the site's licensed wording when there is a file for it.

    Parameters
    ----------
    instrument_id : str
    language : str, optional
        A language code (``de``, ``pt-br``); default the active language of the request
        (:func:`django.utils.translation.get_language`).

    Returns
    -------
    Instrument

    Raises
    ------
    alliance.instruments.InstrumentDefinitionError
        When the wording file is not a mapping or names items the instrument does not have.
    """
    instrument = bank.get(instrument_id)
    path = wording_file(instrument_id, language if language is not None else translation.get_language())
    if path is not None:
        instrument = instrument.with_wording(_wording(str(path), path.stat().st_mtime))
    return instrument


def wording_file(instrument_id: str, language: str | None) -> Path | None:
    """The site's wording file for an instrument in a language, or ``None`` (module docstring: the order).

    Parameters
    ----------
    instrument_id : str
    language : str or None
        A language code; ``None`` (translation off) looks for the file of every language only.

    Returns
    -------
    pathlib.Path or None
        ``WORDING_DIR/<language>/<instrument>.yaml``, ``WORDING_DIR/<main language>/…``, then
        ``WORDING_DIR/<instrument>.yaml``: the first that exists.
    """
    directory = getattr(settings, "WORDING_DIR", None)
    if directory is None:
        return None
    directory = Path(directory)
    name = f"{instrument_id}.yaml"
    candidates = []
    if language:
        code = language.lower()
        # Only a language code names a folder: nothing from the request reaches the path otherwise.
        candidates += [directory / c / name for c in dict.fromkeys([code, code.split("-")[0]])
                       if _LANGUAGE_CODE.fullmatch(c)]
    candidates.append(directory / name)
    return next((path for path in candidates if path.is_file()), None)


@dataclass
class FormItem:
    """What the template needs to draw one item."""

    id: str
    number: int
    text: str
    worded: bool
    kind: str  # "choice" or "number"
    choices: list[tuple[str, str]] = field(default_factory=list)
    minimum: str = ""
    maximum: str = ""
    step: str = "any"
    low_end: str = ""
    high_end: str = ""
    allowed: str = ""
    value: str = ""
    error: str = ""


def _choices(item: Item) -> list[tuple[str, str]] | None:
    if item.step is None:
        return None
    count = int(round((item.max - item.min) / item.step)) + 1
    if count > MAX_CHOICES:
        return None
    values = [item.min + k * item.step for k in range(count)]
    return [(_fmt(v), f"{_fmt(v)} · {item.anchors[v]}" if v in item.anchors else _fmt(v)) for v in values]


def _end(value: float, label: str) -> str:
    """The text at one end of a rating line: ``"0 · not at all"``, or the label alone when it says the number."""
    number = _fmt(value)
    if not label:
        return number
    return label if number in label else f"{number} · {label}"


def form_items(instrument: Instrument, values: dict[str, float | str | None],
               errors: dict[str, str] | None = None) -> list[FormItem]:
    """The items of a form with their current answers and errors.

    Parameters
    ----------
    instrument : Instrument
        From :func:`form_instrument`.
    values : dict
        Item id → the stored answer (a number) or the text just typed (kept so that a wrong
        answer can be corrected rather than retyped).
    errors : dict, optional
        Item id → message.

    Returns
    -------
    list of FormItem
    """
    errors = errors or {}
    out = []
    for item in instrument.items:
        value = values.get(item.id)
        if isinstance(value, float | int) and not (isinstance(value, float) and math.isnan(value)):
            value = _fmt(float(value))
        choices = _choices(item)
        anchors = sorted(item.anchors.items())
        out.append(FormItem(
            id=item.id, number=item.number, text=item.text or _item_label(item),
            worded=bool(item.text),
            kind="choice" if choices else "number", choices=choices or [],
            minimum=_fmt(item.min), maximum=_fmt(item.max), step="any" if item.step is None else _fmt(item.step),
            low_end=_end(item.min, anchors[0][1] if anchors and anchors[0][0] == item.min else ""),
            high_end=_end(item.max, anchors[-1][1] if anchors and anchors[-1][0] == item.max else ""),
            allowed=item.allowed(), value="" if value is None else str(value), error=errors.get(item.id, "")))
    return out


def _item_label(item: Item) -> str:
    """An item without its (licensed) wording: "Item N: name", or "Item N" without a name."""
    if item.name:
        return translation.gettext("Item %(number)s: %(name)s") % {"number": item.number, "name": item.name}
    return translation.gettext("Item %(number)s") % {"number": item.number}


@dataclass
class Answers:
    """Answers read from a posted form.

    Attributes
    ----------
    valid : dict
        Item id → answer (float) for every item whose answer passed validation, ``None`` for an
        item left empty.
    typed : dict
        Item id → the text as posted (to show it again next to its error).
    errors : dict
        Item id → what is wrong and what is allowed, from the scoring engine.
    """

    valid: dict[str, float | None]
    typed: dict[str, str]
    errors: dict[str, str]


def read_answers(instrument: Instrument, data) -> Answers:
    """Read and check the posted answers of a form with :func:`alliance.instruments.validate`.

    Parameters
    ----------
    instrument : Instrument
    data : mapping
        The POST data; keys are item ids, values the answers as text (empty: not answered).
        Items not posted count as not answered.

    Returns
    -------
    Answers
    """
    typed = {item.id: str(data.get(item.id, "") or "").strip() for item in instrument.items}
    frame = pd.DataFrame({k: pd.Series([v], dtype=object) for k, v in typed.items()})
    errors: dict[str, str] = {}
    try:
        values = bank.validate(instrument, frame)
    except ScoringError as error:
        for problem in error.problems:
            item = instrument.item(problem.column)
            label = item.text or translation.gettext("Item %(number)s") % {"number": item.number}
            errors[problem.column] = (f"{label}: {problem.value!r} {problem.reason}; allowed: {problem.allowed}")
        frame = frame.assign(**{c: "" for c in errors})
        values = bank.validate(instrument, frame)
    valid = {item.id: (None if np.isnan(values[0, j]) else float(values[0, j]))
             for j, item in enumerate(instrument.items) if item.id not in errors}
    return Answers(valid=valid, typed=typed, errors=errors)


def score_answers(instrument: Instrument, answers: dict[str, float | None]) -> tuple[dict, list[str]]:
    """Score one complete set of answers with :func:`alliance.instruments.score`.

    Parameters
    ----------
    instrument : Instrument
    answers : dict
        Item id → answer, ``None`` (or absent) for unanswered items.

    Returns
    -------
    scores : dict
        The score row as plain JSON values (scales, percent-of-maximum, bands, criteria, flags),
        the form stored in ``Administration.scores``.
    unscorable : list of str
        Labels of scales the missing-item rules leave without a score (too many items
        unanswered); a form is submitted only when this is empty.
    """
    from alliance.web.audit.log import plain

    row = {item.id: [np.nan if answers.get(item.id) is None else answers[item.id]] for item in instrument.items}
    scored = bank.score(instrument, pd.DataFrame(row)).iloc[0]
    scores = {column: plain(scored[column]) for column in instrument.output_columns}
    unscorable = [scale.label for scale in instrument.scales if scores.get(scale.id) is None]
    return scores, unscorable
