"""The audit trail as CSV: one row per field of each event, cells safe for spreadsheets.

The audit page's export (:func:`alliance.web.audit.views.audit_trail`, POST) writes the filtered
events with :func:`csv_lines`. Columns (:data:`COLUMNS`):

``event_id``, ``at`` (ISO 8601, UTC: the time the hash chain covers), ``at_local`` (the same
time in the site's time zone, ``ALLIANCE_TIME_ZONE``, ISO 8601 with its offset, e.g.
``2024-03-02T11:30:00+13:00``: what the page shows), ``actor`` (as stored, e.g. ``user:alice``), ``action``
(``create``, ``change``, …), ``model`` (e.g. ``capture.itemresponse``), ``object_id``,
``object`` (the event's readable label), ``field``, ``old``, ``new`` (the field's value before and
after, as on the page: :func:`alliance.web.audit.display.change_rows`; a create or export has only
``new``, a delete only ``old``) and ``hash`` (the event's link in the hash chain,
:mod:`alliance.web.audit.chain`). An event without values (a log-out) is one row with an empty
``field``.

Text cells a spreadsheet would run as a formula are neutralised by the study layer's
:func:`alliance.study.io.spreadsheet_safe` (OWASP), like every other CSV export of the project.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pandas as pd
from django.db.models import QuerySet
from django.utils import timezone

from alliance.study.io import spreadsheet_safe

from .chain import instant
from .display import change_rows

COLUMNS = ("event_id", "at", "at_local", "actor", "action", "model", "object_id", "object", "field", "old", "new", "hash")
_VALUES = ("id", "at", "actor", "action", "model", "object_id", "object_repr", "old", "new", "hash")


def _rows(event: tuple) -> list[tuple]:
    event_id, at, actor, action, model, object_id, label, old, new, digest = event
    local = timezone.localtime(at).isoformat(timespec="seconds")
    shared = (event_id, instant(at), local, actor, action, model, object_id, label)
    rows = change_rows(action, old, new)
    if not rows:
        return [(*shared, "", "", "", digest)]
    return [(*shared, r.field, r.old or "", r.new or "", digest) for r in rows]


def csv_lines(events: QuerySet, chunk_size: int = 2000) -> Iterator[str]:
    """The events as CSV text, the header first, then one piece per ``chunk_size`` events.

    Parameters
    ----------
    events : QuerySet of AuditEvent
        In the order to write them.
    chunk_size : int
        Events read from the database and written per piece (memory stays bounded for a trail
        of any length; the pieces are what a streaming response sends).

    Returns
    -------
    iterator of str
        UTF-8 text with ``\\n`` line ends; cells starting with ``= + - @``, a tab or a carriage
        return (other than plain numbers) get a leading ``'``.
    """
    yield ",".join(COLUMNS) + "\n"
    chunk: list[tuple] = []
    for event in events.values_list(*_VALUES).iterator(chunk_size=chunk_size):
        chunk.extend(_rows(event))
        if len(chunk) >= chunk_size:
            yield _csv_text(chunk)
            chunk = []
    if chunk:
        yield _csv_text(chunk)


def _csv_text(rows: list[tuple]) -> str:
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    for column in COLUMNS[3:]:
        frame[column] = spreadsheet_safe(frame[column].astype("string"))
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, lineterminator="\n")
    return buffer.getvalue()
