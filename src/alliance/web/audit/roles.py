"""PostgreSQL with two roles: the owner migrates, the app role serves and cannot touch the audit triggers.

On PostgreSQL only a table's owner (or a superuser) can ``ALTER TABLE … DISABLE TRIGGER``, ``DROP
TRIGGER`` or drop the table. When the web app connects as a role that owns nothing, the
append-only triggers of the audit table (:mod:`alliance.web.audit.triggers`) hold against the app
itself, a bug in it, or someone who has its password. :func:`grant_app_role`, run as the owner,
gives that role exactly what the app needs:

========================================== =====================================================
what                                        privileges
========================================== =====================================================
every table of the schema                   ``SELECT, INSERT, UPDATE, DELETE``
the audit table (``capture_auditevent``)    ``SELECT, INSERT`` only (not ``UPDATE``, ``DELETE``,
                                            ``TRUNCATE``, ``TRIGGER``, ``REFERENCES``)
every sequence of the schema                ``USAGE, SELECT`` (ids of new rows)
tables and sequences made by later          the same, by ``ALTER DEFAULT PRIVILEGES`` of the
migrations                                  owner
the schema                                  ``USAGE``
========================================== =====================================================

The ``migrate`` command of this app (:mod:`alliance.web.audit.management.commands.migrate`) runs
it after every migration when ``ALLIANCE_MIGRATE_DATABASE_URL`` is set, so a table that a later
migration re-creates loses ``UPDATE`` and ``DELETE`` on the audit table again; ``manage.py
grant_app_role ROLE`` runs it by hand.

The app role can still ``INSERT`` into the audit table, which it must to write the trail; an
insert made around :class:`~alliance.web.audit.log.AuditLog` (a forged, back-dated event) breaks
the hash chain and is named by :func:`alliance.web.audit.verify.verify_chain`.
"""

from __future__ import annotations

from . import triggers

TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
AUDIT_PRIVILEGES = "SELECT, INSERT"


class RoleSetupError(Exception):
    """A role that cannot be the app role (missing, superuser, the owner or a member of it), or not PostgreSQL."""


def grant_statements(role: str, schema: str, quote) -> list[str]:
    """The SQL :func:`grant_app_role` runs, in order (see the module docstring's table).

    Parameters
    ----------
    role, schema : str
        Unquoted names.
    quote : callable
        Quotes an identifier (``connection.ops.quote_name``).

    Returns
    -------
    list of str
    """
    role, schema, audit = quote(role), quote(schema), quote(triggers.TABLE)
    return [
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"REVOKE ALL ON TABLE {schema}.{audit} FROM {role}",
        f"GRANT {AUDIT_PRIVILEGES} ON TABLE {schema}.{audit} TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {TABLE_PRIVILEGES} ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role}",
    ]


def grant_app_role(connection, role: str) -> list[str]:
    """Grant ``role`` what the web app needs on the database of ``connection``, and no more.

    Parameters
    ----------
    connection : django.db.backends.base.base.BaseDatabaseWrapper
        A PostgreSQL connection as the role that owns the tables (the ``migrate`` role).
    role : str
        The app role (the user of ``DATABASE_URL``).

    Returns
    -------
    list of str
        The statements run (:func:`grant_statements`), in one transaction.

    Raises
    ------
    RoleSetupError
        On a database other than PostgreSQL; for a role that does not exist, is a superuser,
        is the connection's own role or can act as it (a member of it): such a role could drop the
        triggers, so granting to it would promise a protection it does not have.
    """
    from django.db import transaction

    if connection.vendor != "postgresql":
        raise RoleSetupError(f"an app role is a PostgreSQL setup; this database is {connection.vendor} "
                             "(see docs/storage.md, 'PostgreSQL with two roles')")
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema()")
        owner, schema = cursor.fetchone()
        cursor.execute("SELECT rolsuper, pg_has_role(oid, %s::name, 'MEMBER') FROM pg_roles WHERE rolname = %s",
                       [owner, role])
        found = cursor.fetchone()
        if found is None:
            raise RoleSetupError(f"there is no PostgreSQL role {role!r}; create it first (CREATE ROLE {role} LOGIN)")
        superuser, acts_as_owner = found
        if superuser:
            raise RoleSetupError(f"role {role!r} is a superuser: it can drop the audit triggers; "
                                 "the app role must be an ordinary role")
        if role == owner or acts_as_owner:
            raise RoleSetupError(f"role {role!r} is, or can act as, {owner!r}, the owner of the tables; "
                                 "the app role must be another role")
        statements = grant_statements(role, schema, connection.ops.quote_name)
        for sql in statements:
            cursor.execute(sql)
    return statements
