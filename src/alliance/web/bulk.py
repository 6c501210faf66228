"""Inserting many validated rows at once, for imports of hundreds of thousands of answers.

Django's ``bulk_create`` builds a model instance per row and prepares every value through its
field; for 600,000 answers that is most of an import's time. Rows here are already validated and
converted, so they go to the database directly: ``COPY … FROM STDIN`` on PostgreSQL (its bulk
loading path) and one prepared ``INSERT`` run with ``executemany`` elsewhere (SQLite).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.db import connections
from django.db.models import Model

_CHUNK = 50_000
# Ids per query in ``IN (…)`` lists: SQLite allows at most 32,766 parameters in one statement.
BATCH = 500


def batches(values: Sequence, size: int = BATCH):
    """``values`` in slices of at most ``size``, for ``filter(pk__in=…)`` queries of any length."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def insert_rows(model: type[Model], columns: Sequence[str], rows: Sequence[tuple], using: str = "default") -> None:
    """Insert rows into a model's table, inside the caller's transaction.

    Parameters
    ----------
    model : Model class
        Whose table to insert into.
    columns : sequence of str
        Database column names (``administration_id``, not ``administration``).
    rows : sequence of tuple
        Values in database form: numbers, text, ``None``; JSON as text (:func:`json_text`);
        date-times from :func:`db_datetime`.
    using : str
        Database alias.
    """
    if not rows:
        return
    connection = connections[using]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
            for start in range(0, len(rows), _CHUNK):
                cursor.executemany(sql, rows[start:start + _CHUNK])


def json_text(value) -> str | None:
    """A JSON column's value as text, as Django's ``JSONField`` writes it (``None`` is SQL NULL)."""
    return None if value is None else json.dumps(value)


def db_datetime(value, using: str = "default"):
    """A timezone-aware date-time in the form the database's driver takes (UTC text on SQLite)."""
    return connections[using].ops.adapt_datetimefield_value(value)
