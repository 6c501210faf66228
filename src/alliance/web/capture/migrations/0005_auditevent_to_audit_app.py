"""The audit trail's model moves to the ``audit`` app: removed from ``capture``'s state only.

Nothing happens in the database: the table ``capture_auditevent``, its rows, indexes and
append-only triggers stay as they are, and ``audit`` 0001 takes the model over under the same
table name.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("capture", "0004_audit_login_actions"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent")],
            database_operations=[],
        ),
    ]
