"""Django's ``migrate``, run as the tables' owner when PostgreSQL is set up with two roles.

With ``ALLIANCE_MIGRATE_DATABASE_URL`` (the database alias ``owner``, see
:mod:`alliance.web.config`), a migration of the ``default`` database (``DATABASE_URL``, the app
role) or of ``owner`` connects as the owner, the only role that may create and alter tables, and then
grants the app role its privileges (:func:`alliance.web.audit.roles.grant_app_role`), so that a
table added by the migration is usable by the app and the audit table stays insert-only for it.
Without that variable this is Django's ``migrate`` unchanged.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections

from alliance.web.audit.roles import grant_app_role
from alliance.web.config import OWNER_DATABASE as OWNER


class Command(migrate.Command):
    help = migrate.Command.help + " With ALLIANCE_MIGRATE_DATABASE_URL: as the owner, then grants the app role."

    def handle(self, *args, **options):
        if options["database"] not in (DEFAULT_DB_ALIAS, OWNER) or OWNER not in settings.DATABASES:
            return super().handle(*args, **options)
        options["database"] = OWNER
        result = super().handle(*args, **options)
        role = settings.DATABASES[DEFAULT_DB_ALIAS]["USER"]
        grant_app_role(connections[OWNER], role)
        if options["verbosity"] >= 1:
            self.stdout.write(f"Granted the app role {role!r} its privileges (alliance.web.audit.roles).")
        return result
