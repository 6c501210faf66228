"""Writing the audit trail: who created, changed or deleted what, with the values before and after.

Every write of the web app (the capture tables, accounts and memberships, alerts, analysis runs)
goes through an :class:`AuditLog`, which collects the events of one unit of work (an import, a form
submission) and inserts them in one statement, inside the caller's transaction — so the data and
their audit events are committed or rolled back together. Each event is chained to the one
before it in its study's trail by a SHA-256 hash (:mod:`alliance.web.audit.chain`).

Examples
--------
A web form changing a participant's site (``request.user`` logged in)::

    with transaction.atomic():
        log = AuditLog(actor=f"user:{request.user.username}", user=request.user, study=participant.study)
        old = {"site": participant.site}
        participant.site = "Baltimore"
        participant.save()
        log.changed(participant, old, {"site": participant.site}, label=participant.participant_id)
        log.write()
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from django.db import models, transaction
from django.utils import timezone

from alliance.web.bulk import db_datetime, insert_rows, json_text

from . import chain
from .models import AuditEvent


def plain(value: Any) -> Any:
    """A value as plain JSON data: numpy and pandas scalars unwrapped, NaN and ``<NA>`` as ``None``.

    PostgreSQL's ``jsonb`` refuses NaN, and numpy scalars are not JSON serializable, so every value
    that goes into a JSON column passes through here.

    Parameters
    ----------
    value : object

    Returns
    -------
    object
        ``None``, ``bool``, ``int``, ``float``, ``str``, ``list`` or ``dict`` (recursively).
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool:  # the common case first: imports pass millions
        return value
    if kind is float:
        return None if value != value else value  # NaN is the one float unequal to itself
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict, dict]:
    """The keys whose values differ, as two dicts (before, after).

    Parameters
    ----------
    old, new : mapping

    Returns
    -------
    tuple of dict
        Empty dicts when nothing changed.
    """
    keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
    return {k: old.get(k) for k in keys}, {k: new.get(k) for k in keys}


class AuditLog:
    """The audit events of one unit of work, written together by :meth:`write`.

    Parameters
    ----------
    actor : str
        Who, in words: ``"cli:import"``, ``"user:alice"``.
    user : User, optional
        The logged-in user, when there is one.
    study : alliance.web.capture.models.Study, optional
        The study the events belong to (can be set later, e.g. after creating the study).
    at : datetime, optional
        The time of the events; default now. One unit of work shares one time.
    """

    def __init__(self, *, actor: str, user=None, study: models.Model | None = None,
                 at: dt.datetime | None = None):
        self.actor = actor
        self.user = user
        self.study = study
        self.at = at or timezone.now()
        self.events: list[tuple] = []

    def __len__(self) -> int:
        return len(self.events)

    def add(self, action: str, model: type[models.Model], object_id, old: Any, new: Any, label: str) -> None:
        """Record one event by model class and id (what the bulk paths of an import use).

        Parameters
        ----------
        action : {"create", "change", "delete"}
        model : Model class
        object_id : int or str
        old, new : mapping or None
            The values before and after; passed through :func:`plain`.
        label : str
            What the object is, readable after it is deleted, e.g. ``"P001/prep/wai_sr"``.
        """
        self.events.append((str(action), model._meta.label_lower, str(object_id), label[:300], plain(old), plain(new)))

    def _add(self, action: str, obj: models.Model, old: Any, new: Any, label: str | None) -> None:
        self.add(action, type(obj), obj.pk, old, new, label if label is not None else str(obj))

    def created(self, obj: models.Model, new: Mapping[str, Any], *, label: str | None = None) -> None:
        """Record that ``obj`` (already saved, so it has its id) was created with the values ``new``."""
        self._add(AuditEvent.Action.CREATE, obj, None, new, label)

    def changed(self, obj: models.Model, old: Mapping[str, Any], new: Mapping[str, Any], *,
                label: str | None = None) -> None:
        """Record a change of ``obj``; only the keys whose values differ are kept."""
        before, after = changes(plain(old), plain(new))
        if before or after:
            self._add(AuditEvent.Action.CHANGE, obj, before, after, label)

    def deleted(self, obj: models.Model, old: Mapping[str, Any], *, label: str | None = None) -> None:
        """Record that ``obj`` is being deleted; call before deleting, while it has its id."""
        self._add(AuditEvent.Action.DELETE, obj, old, None, label)

    def exported(self, obj: models.Model, details: Mapping[str, Any], *, label: str | None = None) -> None:
        """Record that data of ``obj`` (a study) left the database, e.g. a download; ``details`` says what."""
        self._add(AuditEvent.Action.EXPORT, obj, None, details, label)

    def write(self, using: str = "default") -> int:
        """Insert the collected events, chained to the study's trail, and forget them.

        Each event gets its ``hash`` and ``previous_hash`` (:mod:`alliance.web.audit.chain`),
        computed here in order from the chain's head, which is read after locking the chain so that
        concurrent writers to one study append one after the other instead of forking it.

        Parameters
        ----------
        using : str
            The database alias; call inside the transaction that made the changes.

        Returns
        -------
        int
            The number of events written.
        """
        events, self.events = self.events, []
        if not events:
            return 0
        user_id = getattr(self.user, "pk", None)
        study_id = getattr(self.study, "pk", None)
        at = db_datetime(self.at, using)
        shared = {"user_id": user_id, "actor": self.actor, "at": self.at, "study_id": study_id}
        rows = []
        with transaction.atomic(using=using):
            chain.lock_chain(study_id, using)
            previous = chain.head(study_id, using)
            for action, model, object_id, label, old, new in events:
                digest = chain.event_hash(previous, action=action, model=model, object_id=object_id,
                                          object_repr=label, old=old, new=new, **shared)
                rows.append((user_id, self.actor, at, action, model, object_id, label, study_id, json_text(old),
                             json_text(new), digest, previous))
                previous = digest
            insert_rows(AuditEvent, ["user_id", "actor", "at", "action", "model", "object_id", "object_repr",
                                     "study_id", "old", "new", "hash", "previous_hash"], rows, using)
        return len(events)
