"""The Django side of ``alliance``: storage with an audit trail, and later the web app.

Apps: ``alliance.web.capture`` (studies, participants, administrations, item responses and the
append-only audit trail) and ``alliance.web.accounts`` (users). Settings: ``alliance.web.settings``,
which documents the default database path and the environment variables.

The storage works without a web server: call :func:`django_setup` once, then use
``alliance.web.capture.storage``.
"""

from __future__ import annotations

import os

SETTINGS_MODULE = "alliance.web.settings"


def django_setup(*, migrate: bool = True) -> None:
    """Configure Django for use outside a web server, and bring the database schema up to date.

    Safe to call more than once. When Django is already configured (inside the web app or a
    test run) its settings are kept as they are.

    Parameters
    ----------
    migrate : bool
        Apply unapplied migrations to the ``default`` database, silently. This is what makes a
        fresh SQLite file usable on first use by ``alliance import``.

    Raises
    ------
    django.core.exceptions.ImproperlyConfigured
        When ``DATABASE_URL`` cannot be understood.
    django.db.utils.OperationalError
        When the database cannot be reached.
    """
    import django
    from django.apps import apps
    from django.conf import settings

    if not settings.configured:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    if not apps.ready:
        django.setup()
    if migrate:
        _migrate_quietly("default")


def database_location(using: str = "default") -> str:
    """Where a configured database is, for messages: the SQLite file, or PostgreSQL's host and name.

    Parameters
    ----------
    using : str
        Database alias.

    Returns
    -------
    str
        E.g. ``"SQLite file /home/ana/.local/share/alliance/alliance.sqlite3"`` or
        ``"PostgreSQL database alliance on db.example.org:5432"`` (never the password).
    """
    from django.db import connections

    database = connections[using].settings_dict
    if connections[using].vendor == "sqlite":
        return f"SQLite file {database['NAME']}"
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return f"PostgreSQL database {database['NAME']} on {database.get('HOST') or 'localhost'}{port}"


def _migrate_quietly(using: str) -> None:
    from django.core.management import call_command
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[using])
    # Asking for the plan first keeps the common case (nothing to do) to one cheap query.
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", database=using, interactive=False, verbosity=0)
