"""Django's ``flush`` (empty every table), made to work with the append-only audit table.

Emptying the whole database is the one operation allowed to remove audit events: it is what
dropping and recreating the database does anyway, and Django's test framework runs it after each
transactional test (the web app's browser tests need that). The triggers are dropped, the tables
emptied and the triggers recreated in one transaction, so a failure leaves them in place.
"""

from __future__ import annotations

from django.core.management.commands import flush
from django.db import connections, transaction

from alliance.web.audit import triggers


class Command(flush.Command):
    help = flush.Command.help + " Audit events are removed too (the append-only triggers are lifted for it)."

    def handle(self, **options):
        using = options["database"]
        connection = connections[using]
        if triggers.TABLE not in connection.introspection.table_names():
            return super().handle(**options)
        with transaction.atomic(using=using):
            triggers.remove(connection)
            result = super().handle(**options)
            triggers.install(connection)
        return result
