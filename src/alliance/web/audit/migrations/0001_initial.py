"""The audit trail's model, taken over from the ``capture`` app without touching the database.

``capture`` 0001 created the table ``capture_auditevent`` (0002 made it append-only, 0003 and 0004
added actions) and ``capture`` 0005 removed the model from ``capture``'s state; this migration
adds it to ``audit``'s state with the same table and index names, so on an existing database
``migrate`` changes nothing in its schema, its rows or its triggers. The one database write is
bookkeeping: the content type ``capture.auditevent`` (and so its permissions) becomes
``audit.auditevent`` instead of being left behind as a stale one.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def rename_content_type(apps, schema_editor, old="capture", new="audit"):
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
    if not content_types.filter(app_label=new, model="auditevent").exists():
        content_types.filter(app_label=old, model="auditevent").update(app_label=new)


def restore_content_type(apps, schema_editor):
    rename_content_type(apps, schema_editor, old="audit", new="capture")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("capture", "0005_auditevent_to_audit_app"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("actor", models.CharField(help_text='Who, in words: "cli:import", "user:alice", …',
                                                   max_length=200)),
                        ("at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ("action", models.CharField(choices=[
                            ("create", "Create"), ("change", "Change"), ("delete", "Delete"), ("export", "Export"),
                            ("login", "Login"), ("logout", "Logout"), ("login_fail", "Login Failed")],
                            max_length=10)),
                        ("model", models.CharField(help_text='Model label, e.g. "capture.itemresponse".',
                                                   max_length=100)),
                        ("object_id", models.CharField(max_length=64)),
                        ("object_repr", models.CharField(
                            blank=True, help_text="What the object was, readable after it is deleted.",
                            max_length=300)),
                        ("old", models.JSONField(blank=True, null=True)),
                        ("new", models.JSONField(blank=True, null=True)),
                        ("study", models.ForeignKey(blank=True, db_constraint=False, null=True,
                                                    on_delete=django.db.models.deletion.DO_NOTHING,
                                                    related_name="audit_events", to="capture.study")),
                        ("user", models.ForeignKey(blank=True, db_constraint=False, null=True,
                                                   on_delete=django.db.models.deletion.DO_NOTHING,
                                                   related_name="+", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "db_table": "capture_auditevent",
                        "ordering": ["at", "id"],
                        "indexes": [
                            models.Index(fields=["model", "object_id"], name="capture_aud_model_2f7d89_idx"),
                            models.Index(fields=["study", "at"], name="capture_aud_study_i_56940c_idx"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(rename_content_type, restore_content_type),
    ]
