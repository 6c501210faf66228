"""Audit events in words: each change as ``field: old → new`` rows, actions, actors and models named.

The audit page (:mod:`alliance.web.audit.views`) and its CSV export show an event's ``old`` and
``new`` (JSON data) through :func:`change_rows`, which turns them into one :class:`ChangeRow` per
field:

========== ============================== ===============================================
action     ``old``, ``new``               rows
========== ============================== ===============================================
create     ``None``, the values           ``field: value`` for each value
change     the fields that changed        ``field: old → new`` for each changed field
delete     the values, ``None``           ``field: value`` for each value it had
export     ``None``, what was exported    ``field: value`` (format, files, counts)
========== ============================== ===============================================

Nested dicts are flattened into one row per leaf, their keys joined by ``.``: an
administration's ``items`` become ``items.wai_sr_1: 4`` rows, a participant's covariates
``covariates.age: 53``. Values are written out whole (:func:`value_text`); the page wraps long ones
rather than cutting them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.utils.translation import gettext_lazy as _

from .models import AuditEvent

ACTION_LABELS = {
    AuditEvent.Action.CREATE: _("Created"),
    AuditEvent.Action.CHANGE: _("Changed"),
    AuditEvent.Action.DELETE: _("Deleted"),
    AuditEvent.Action.EXPORT: _("Exported"),
    AuditEvent.Action.LOGIN: _("Logged in"),
    AuditEvent.Action.LOGOUT: _("Logged out"),
    AuditEvent.Action.LOGIN_FAILED: _("Failed log-in"),
}
# What the actor prefixes written by the apps mean (alliance.web.capture.recording, the CLI).
# Shown on the page only (translated there); the CSV export keeps the stored actor.
_ACTOR_KINDS = {"user": "{}", "cli": _("command line: alliance {}"), "private-link": _("participant, private link {}")}
EMPTY = "(empty)"
LONG = 400


@dataclass(frozen=True)
class ChangeRow:
    """One field of an event: its name (dotted for nested values), the value before and after.

    ``old`` or ``new`` is ``None`` where the event has no such side (a create has no ``old``);
    ``changed`` says whether the row is a change (``old → new``) rather than one value.
    """

    field: str
    old: str | None
    new: str | None
    changed: bool

    @property
    def long(self) -> bool:
        """Whether a side holds more than :data:`LONG` characters (the page folds it, whole, under a summary)."""
        return max(len(self.old or ""), len(self.new or "")) > LONG

    @property
    def value(self) -> str | None:
        """The one value of a row that is not a change: the created, deleted or exported value."""
        return self.new if self.new is not None else self.old


def value_text(value: Any) -> str:
    """A stored JSON value as text: strings as they are, whole numbers without ``.0``, lists joined.

    Parameters
    ----------
    value : None, bool, int, float, str, list or dict

    Returns
    -------
    str
        ``"(empty)"`` for ``None`` and the empty string, ``"yes"``/``"no"`` for booleans,
        ``"3"`` for ``3.0``, ``"F1, F2"`` for ``["F1", "F2"]``, ``"(none)"`` for ``[]``, JSON for a
        dict (only met inside a list).

    Examples
    --------
    >>> value_text(3.0), value_text(0.1), value_text(None), value_text(["F1", "F2"]), value_text(True)
    ('3', '0.1', '(empty)', 'F1, F2', 'yes')
    """
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value) if value else "(none)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``; an empty dict is one leaf, shown as ``(none)``."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_leaves(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: [] if isinstance(value, Mapping) else value}


def change_rows(action: str, old: Any, new: Any) -> list[ChangeRow]:
    """The rows that show what an event did (see the module docstring's table).

    Parameters
    ----------
    action : str
        The event's action (``AuditEvent.Action``).
    old, new : dict, other JSON value or None
        The event's stored values.

    Returns
    -------
    list of ChangeRow
        In the stored order of the fields; for a change, every field that differs between the
        sides (``(empty)`` on the side that lacks it; a nested dict is stored whole when one of
        its keys changed, and its unchanged keys are left out). A value that is not a dict is one row named
        ``value``; an event with neither side gives no rows.

    Examples
    --------
    >>> [(r.field, r.old, r.new) for r in change_rows("change", {"value": 3}, {"value": 4.0})]
    [('value', '3', '4')]
    >>> [(r.field, r.value) for r in change_rows("create", None, {"items": {"wai_1": 2.0}, "rater": "ana"})]
    [('items.wai_1', '2'), ('rater', 'ana')]
    """
    before = _leaves(old if isinstance(old, Mapping) else {"value": old}) if old is not None else {}
    after = _leaves(new if isinstance(new, Mapping) else {"value": new}) if new is not None else {}
    if action == AuditEvent.Action.CHANGE or (before and after):
        rows = [ChangeRow(f, value_text(before.get(f)), value_text(after.get(f)), True)
                for f in dict.fromkeys([*before, *after])]
        # A nested dict is stored whole when one of its keys changed: show only the leaves that did.
        return [r for r in rows if r.old != r.new] or rows
    if before:
        return [ChangeRow(f, value_text(v), None, False) for f, v in before.items()]
    return [ChangeRow(f, None, value_text(v), False) for f, v in after.items()]


def action_label(action: str) -> str:
    """``"change"`` as ``"Changed"``, ``"login_fail"`` as ``"Failed log-in"``; unknown actions as they are."""
    return ACTION_LABELS.get(action, action)


def actor_label(actor: str) -> str:
    """Who, in words: ``"user:alice"`` as ``"alice"``, ``"cli:import"`` as ``"command line: alliance import"``.

    Examples
    --------
    >>> actor_label("user:alice"), actor_label("private-link:12"), actor_label("test:setup")
    ('alice', 'participant, private link 12', 'test:setup')
    """
    kind, _colon, name = actor.partition(":")
    return str(_ACTOR_KINDS[kind]).format(name) if kind in _ACTOR_KINDS and name else actor


def model_label(label: str) -> str:
    """A model label as its verbose name: ``"capture.itemresponse"`` as ``"item response"``.

    Models are looked up in Django's app registry (the audit app imports no other app); a label
    of a model that no longer exists is returned as it is.
    """
    try:
        return str(apps.get_model(label)._meta.verbose_name)
    except (LookupError, ValueError):
        return label
