"""Database triggers that make the audit table append-only, for SQLite and PostgreSQL.

The model refuses updates and deletes of :class:`~alliance.web.audit.models.AuditEvent` in
Python; these triggers refuse them in the database as well, so that raw SQL, a bug that bypasses
the model, or another program sharing the database cannot rewrite history either.

The triggers are installed by the ``capture`` app's migration 0002, which created the table
(``capture_auditevent``, a name the table keeps since the model moved to the ``audit`` app).

The one sanctioned way to empty the table is Django's ``flush`` command (which empties *every*
table, as the test framework does between tests): the ``audit`` app's ``flush`` command drops the
triggers, empties the tables and recreates the triggers in one transaction.
"""

from __future__ import annotations

TABLE = "capture_auditevent"
MESSAGE = "audit events are append-only"

_SQLITE_INSTALL = [
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}: UPDATE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE refused'); END""",
]
_SQLITE_REMOVE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
]

_POSTGRESQL_INSTALL = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{MESSAGE}: % refused', TG_OP USING ERRCODE = 'integrity_constraint_violation';
        END $$""",
    f"""CREATE TRIGGER {TABLE}_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()""",
    # TRUNCATE fires no row triggers, so it needs its own statement-level one.
    f"""CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_append_only()""",
]
_POSTGRESQL_REMOVE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update_delete ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_append_only()",
]

_STATEMENTS = {
    "sqlite": (_SQLITE_INSTALL, _SQLITE_REMOVE),
    "postgresql": (_POSTGRESQL_INSTALL, _POSTGRESQL_REMOVE),
}


def _statements(vendor: str, which: int) -> list[str]:
    if vendor not in _STATEMENTS:
        raise NotImplementedError(
            f"no append-only audit triggers for database vendor {vendor!r}; supported: "
            f"{', '.join(_STATEMENTS)}"
        )
    return _STATEMENTS[vendor][which]


def install(connection) -> None:
    """Create the append-only triggers on the audit table.

    Parameters
    ----------
    connection : django.db.backends.base.base.BaseDatabaseWrapper
        The connection (``schema_editor.connection`` in a migration).
    """
    with connection.cursor() as cursor:
        for sql in _statements(connection.vendor, 0):
            cursor.execute(sql)


def remove(connection) -> None:
    """Drop the append-only triggers (migration rollback and ``flush`` only).

    Parameters
    ----------
    connection : django.db.backends.base.base.BaseDatabaseWrapper
    """
    with connection.cursor() as cursor:
        for sql in _statements(connection.vendor, 1):
            cursor.execute(sql)
