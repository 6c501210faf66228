"""The audit trail's hash chain: each event carries a SHA-256 of its content and of the event before it.

Every :class:`~alliance.web.audit.models.AuditEvent` stores ``hash``, the SHA-256 (hex) of its
canonical serialisation (:func:`canonical`), and ``previous_hash``, the ``hash`` of the previous
event of the same study (by id; the empty string for a chain's first event). The events without a
study (logins, account changes) form one chain of their own. An event edited in the database no
longer matches its ``hash``; an event inserted, deleted or moved breaks the link of the event after
it. :func:`alliance.web.audit.verify.verify_chain` re-computes the chains.

Writers (:meth:`alliance.web.audit.log.AuditLog.write`, the one write path) call :func:`lock_chain`
and then :func:`head` inside their transaction, so that two concurrent writers to one study cannot
both append to the same head (a fork):

- PostgreSQL: the study's row is locked (``SELECT … FOR UPDATE``, the lock ``import_study`` takes
  too); the chain of events without a study, or of a study whose row is gone, takes a transaction
  advisory lock instead. The second writer waits until the first commits, and in READ COMMITTED its
  next statement (reading the head) sees the first writer's events.
- SQLite: one writer at a time for the whole database; a transaction that read the head before
  another writer committed cannot write afterwards (``database is locked``), so it fails rather
  than forks.

The id is not part of the hash: the database assigns it during the bulk insert, after the hashes
are computed. The order of the events is protected by the links instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.db import connections

from .models import AuditEvent

# The fields of an event that its hash covers, in the order the tuples of :func:`event_hash` take them.
FIELDS = ("user_id", "actor", "at", "action", "model", "object_id", "object_repr", "study_id", "old", "new")

_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode
_ADVISORY_NAMESPACE = 0x616C6C69  # "alli": the first key of the advisory locks taken here


def _numbers_as_stored(value: Any) -> Any:
    """``value`` with whole floats as ints, the form PostgreSQL's ``jsonb`` may give back.

    ``jsonb`` keeps numbers as ``numeric``: ``1e16`` is read back as ``10000000000000000``, an
    int, so a float with a whole value is serialised as that int on every backend.
    """
    kind = type(value)
    if kind is float:
        return int(value) if value.is_integer() else value
    if kind is dict:
        return {k: _numbers_as_stored(v) for k, v in value.items()}
    if kind is list:
        return [_numbers_as_stored(v) for v in value]
    return value


def instant(at: dt.datetime) -> str:
    """A time as ISO 8601 in UTC with microseconds, e.g. ``"2024-03-01T09:30:00.000000Z"``.

    A naive time is taken as UTC, the zone in which Django stores times.
    """
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(*, user_id: int | None, actor: str, at: dt.datetime, action: str, model: str, object_id: str,
              object_repr: str, study_id: int | None, old: Any, new: Any, previous_hash: str) -> str:
    """The canonical serialisation of an event: JSON with sorted keys, no spaces, non-ASCII kept.

    Parameters
    ----------
    user_id, actor, at, action, model, object_id, object_repr, study_id, old, new
        The event's stored fields (``old`` and ``new`` as JSON data, ``at`` a date-time).
    previous_hash : str
        The ``hash`` of the previous event of the chain, ``""`` for the first.

    Returns
    -------
    str
        ``json.dumps({...}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` of the
        fields, ``at`` as :func:`instant`, whole floats in ``old`` and ``new`` as ints.
    """
    return _ENCODE({"user_id": user_id, "actor": actor, "at": instant(at), "action": action, "model": model,
                    "object_id": object_id, "object_repr": object_repr, "study_id": study_id,
                    "old": _numbers_as_stored(old), "new": _numbers_as_stored(new), "previous_hash": previous_hash})


def event_hash(previous_hash: str, **fields) -> str:
    """SHA-256 (hex) of :func:`canonical` of ``fields`` and ``previous_hash``."""
    return hashlib.sha256(canonical(previous_hash=previous_hash, **fields).encode("utf-8")).hexdigest()


def lock_chain(study_id: int | None, using: str = "default") -> None:
    """Lock the chain of ``study_id`` until the end of the current transaction (see the module docstring).

    Parameters
    ----------
    study_id : int or None
        The study whose chain is appended to; None for the events without a study.
    using : str
        Database alias; call inside ``transaction.atomic(using=using)``.
    """
    if study_id is not None:
        study_model = AuditEvent._meta.get_field("study").related_model  # capture.Study, by the app registry
        if list(study_model._default_manager.using(using).select_for_update().filter(pk=study_id)
                .values_list("pk", flat=True)):
            return
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                           [_ADVISORY_NAMESPACE, (study_id or 0) % 2**31])


def head(study_id: int | None, using: str = "default") -> str:
    """The ``hash`` of the last event (by id) of the chain of ``study_id``; ``""`` when there is none."""
    last = (AuditEvent.objects.using(using).filter(study_id=study_id).order_by("-id")
            .values_list("hash", flat=True).first())
    return last or ""
