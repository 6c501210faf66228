"""The Django side of ``alliance``: storage with an audit trail, and the web app.

Apps: ``alliance.web.audit`` (the append-only audit trail), ``alliance.web.accounts`` (users and
their roles per study), ``alliance.web.capture`` (studies, participants, administrations, item
responses; the forms) and ``alliance.web.monitor`` (dashboards, alerts, analysis runs). Settings:
:mod:`alliance.web.config`, which documents the default database path and the environment
variables; ``alliance.web.settings`` is the settings module gunicorn loads.

The storage works without a web server: call :func:`django_setup` once, then import and use
``alliance.web.capture.storage``. Importing a module of the web app never sets Django up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence


def django_setup(*, https: bool | None = None, allowed_hosts: Sequence[str] | None = None, migrate: bool = True,
                 environ: Mapping[str, str] | None = None) -> None:
    """Configure Django for use outside a web server, and bring the database schema up to date.

    Safe to call more than once. When Django is already configured (inside the web app or a
    test run) its settings are kept as they are and ``https``, ``allowed_hosts`` and ``environ``
    are not used.

    Parameters
    ----------
    https : bool, optional
        Whether the site is reached over HTTPS when ``ALLIANCE_HTTPS`` does not say
        (``alliance serve`` passes ``False``); see :func:`alliance.web.config.build_settings`.
    allowed_hosts : sequence of str, optional
        Host names to answer to when ``ALLIANCE_ALLOWED_HOSTS`` does not say.
    migrate : bool
        Apply unapplied migrations to the ``default`` database, silently. This is what makes a
        fresh SQLite file usable on first use by ``alliance import``.
    environ : mapping of str to str, optional
        The environment variables to read the settings from (``DATABASE_URL``, ``ALLIANCE_*``);
        by default this process's environment, which is read here and nowhere else outside the
        settings module.

    Raises
    ------
    django.core.exceptions.ImproperlyConfigured
        When ``DATABASE_URL`` cannot be understood.
    django.db.utils.OperationalError
        When the database cannot be reached.

    Examples
    --------
    A script that reads a stored study::

        from alliance.web import django_setup

        django_setup()
        from alliance.web.capture.storage import export_study

        study = export_study("levin2024")
    """
    import django
    from django.apps import apps
    from django.conf import settings

    from alliance.web.config import build_settings

    if not settings.configured:
        settings.configure(**build_settings(os.environ if environ is None else environ, https=https,
                                            allowed_hosts=allowed_hosts))
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
