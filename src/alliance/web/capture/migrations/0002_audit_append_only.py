"""Make the audit table append-only in the database: triggers refuse UPDATE and DELETE (and TRUNCATE).

The trigger code lives with the model in the ``audit`` app now (the table kept its name).
"""

from django.db import migrations

from alliance.web.audit import triggers


def install(apps, schema_editor):
    triggers.install(schema_editor.connection)


def remove(apps, schema_editor):
    triggers.remove(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ("capture", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(install, remove),
    ]
