"""``manage.py grant_app_role ROLE``: give PostgreSQL's app role what the web app needs, and no more.

Run as the role that owns the tables (``--database owner`` when ``ALLIANCE_MIGRATE_DATABASE_URL``
is set, which is the default then). See :mod:`alliance.web.audit.roles` for the privileges and
docs/storage.md, "PostgreSQL with two roles". ``migrate`` runs it by itself when that variable is
set; this command is for a database set up by hand.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from alliance.web.audit.roles import RoleSetupError, grant_app_role
from alliance.web.config import OWNER_DATABASE as OWNER


class Command(BaseCommand):
    help = ("Grant a PostgreSQL role SELECT/INSERT/UPDATE/DELETE on every table but only SELECT/INSERT on the "
            "audit table, USAGE on the sequences, and the same on tables made later (run as the tables' owner).")

    def add_arguments(self, parser):
        parser.add_argument("role", nargs="?",
                            help="The app role; default the user of DATABASE_URL when ALLIANCE_MIGRATE_DATABASE_URL "
                                 "is set.")
        parser.add_argument("--database", default=None,
                            help="The alias to connect as the owner with (default: 'owner' when configured, "
                                 "else 'default').")

    def handle(self, *args, **options):
        using = options["database"] or (OWNER if OWNER in settings.DATABASES else "default")
        role = options["role"] or (settings.DATABASES["default"].get("USER") if OWNER in settings.DATABASES else None)
        if not role:
            raise CommandError("name the app role: manage.py grant_app_role ROLE")
        try:
            statements = grant_app_role(connections[using], role)
        except RoleSetupError as error:
            raise CommandError(str(error)) from None
        for sql in statements:
            self.stdout.write(sql)
        self.stdout.write(f"granted the app role {role!r} its privileges (database {using!r})")
