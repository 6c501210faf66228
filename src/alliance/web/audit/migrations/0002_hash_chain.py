"""The audit trail's hash chain: columns ``hash`` and ``previous_hash``, and an index on a chain's head.

The columns are added with ``ALTER TABLE … ADD COLUMN`` (which the append-only triggers allow), not
with Django's ``AddField``: on SQLite that would rebuild the table, dropping its triggers. Existing
events get empty strings, which :func:`alliance.web.audit.verify.verify_chain` reports as written
before the chain, not as broken. The database default ``''`` stays.
"""

from django.db import migrations, models

TABLE = "capture_auditevent"


def _column(name: str, help_text: str) -> tuple:
    return (
        migrations.RunSQL(f"ALTER TABLE {TABLE} ADD COLUMN {name} varchar(64) DEFAULT '' NOT NULL",
                          f"ALTER TABLE {TABLE} DROP COLUMN {name}"),
        migrations.AddField("auditevent", name, models.CharField(blank=True, default="", editable=False,
                                                                 help_text=help_text, max_length=64)),
    )


_HASH = _column("hash", "SHA-256 of the event's fields and previous_hash.")
_PREVIOUS = _column("previous_hash", "The hash of the study's previous event; empty for the first.")


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(database_operations=[_HASH[0], _PREVIOUS[0]],
                                            state_operations=[_HASH[1], _PREVIOUS[1]]),
        migrations.AddIndex("auditevent", models.Index(fields=["study", "id"], name="audit_chain_head_idx")),
    ]
