"""Migrating a database made before the audit app existed: the audit table is left exactly as it was.

The audit model moved from ``capture`` to ``audit`` by state only (``capture`` 0005, ``audit`` 0001).
In a fresh process on a fresh database (a SQLite file; a new database on the PostgreSQL test
server), the schema is migrated to ``capture`` 0004 — the database an earlier version made — and an
audit event is written with plain SQL; then ``migrate`` brings it to ``audit`` 0001. The table's
columns, indexes and constraints, its row and its append-only triggers must be unchanged, and the
content type ``capture.auditevent`` must have become ``audit.auditevent`` (same id). Migrating on to
the latest state, ``audit`` 0002 (the hash chain) may only add its two columns, empty on the old
row, and its index, leaving the rest (the triggers included) as it was.

``capture`` 0007 (facilitator-rated forms) is checked the same way: on a database holding a study,
migrating back to 0006 and forward again keeps every administration, and swaps the unique
constraint for the two conditional ones. ``monitor`` 0002 and ``capture`` 0008 (the alerts' assignment
and notification, a site's crisis text and country) may only add their columns, both ways.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

SCRIPT = r"""
import json
from alliance.web import django_setup

django_setup(migrate=False)
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

TABLE = "capture_auditevent"


def schema():
    with connection.cursor() as cursor:
        columns = [(c.name, c.type_code, c.null_ok) for c in connection.introspection.get_table_description(cursor, TABLE)]
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return {"columns": [list(map(str, c)) for c in columns],
            "constraints": {name: sorted(map(str, c["columns"])) for name, c in sorted(constraints.items())}}


def triggers():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [TABLE])
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal", [TABLE])
        return sorted(row[0] for row in cursor.fetchall())


def content_types():
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, app_label FROM django_content_type WHERE model = 'auditevent' ORDER BY id")
        return [list(row) for row in cursor.fetchall()]


def rows():
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, actor, action, model, object_id, new FROM {TABLE} ORDER BY id")
        return [list(map(str, row)) for row in cursor.fetchall()]


call_command("migrate", "capture", "0004_audit_login_actions", interactive=False, verbosity=0)
with connection.cursor() as cursor:
    cursor.execute(f"INSERT INTO {TABLE} (actor, at, action, model, object_id, object_repr, new) "
                   "VALUES ('cli:import', CURRENT_TIMESTAMP, 'create', 'capture.study', '1', 'levin', %s)",
                   ['{"name": "levin"}'])
before = {"schema": schema(), "triggers": triggers(), "content_types": content_types(), "rows": rows()}
call_command("migrate", "audit", "0001_initial", interactive=False, verbosity=0)
after = {"schema": schema(), "triggers": triggers(), "content_types": content_types(), "rows": rows()}
call_command("migrate", interactive=False, verbosity=0)
with connection.cursor() as cursor:
    cursor.execute(f"SELECT hash, previous_hash FROM {TABLE}")
    chained = {"schema": schema(), "triggers": triggers(), "rows": rows(), "hashes": [list(r) for r in cursor.fetchall()]}
try:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")
    refused = ""
except DatabaseError as error:
    refused = str(error)
from alliance.web.audit.models import AuditEvent

print(json.dumps({"before": before, "after": after, "chained": chained, "refused": refused,
                  "read_by_the_model": [e.actor for e in AuditEvent.objects.all()]}))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a new database on the PostgreSQL test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'before-the-audit-app.sqlite3'}"
        return
    server = getattr(settings, "POSTGRES_URL", None)
    if not server:
        reason = getattr(settings, "POSTGRES_UNAVAILABLE", None) or "PostgreSQL is not configured"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the PostgreSQL tests to run: {reason}")
        pytest.skip(reason)
    import psycopg

    name = f"test_alliance_migrations_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_moving_the_audit_model_leaves_an_existing_table_untouched(database_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DATABASE_URL": database_url, "ALLIANCE_DATA_DIR": str(tmp_path)})
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    before, after = shown["before"], shown["after"]
    assert after["schema"] == before["schema"]
    assert after["rows"] == before["rows"] and len(after["rows"]) == 1
    assert after["triggers"] == before["triggers"] and after["triggers"]
    assert "append-only" in shown["refused"]
    assert [app for _, app in before["content_types"]] == ["capture"]
    assert after["content_types"] == [[before["content_types"][0][0], "audit"]]
    assert shown["read_by_the_model"] == ["cli:import"]


def test_the_hash_chain_migration_only_adds_its_columns_and_index(database_url, tmp_path):
    """``audit`` 0002 adds ``hash`` and ``previous_hash`` (empty on old rows) without rebuilding the table."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DATABASE_URL": database_url, "ALLIANCE_DATA_DIR": str(tmp_path)})
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    before, chained = shown["after"], shown["chained"]
    assert [c[0] for c in chained["schema"]["columns"]] == [c[0] for c in before["schema"]["columns"]] + [
        "hash", "previous_hash"]
    assert chained["schema"]["columns"][:-2] == before["schema"]["columns"]
    assert chained["schema"]["constraints"] == {**before["schema"]["constraints"],
                                                "audit_chain_head_idx": ["id", "study_id"]}
    assert chained["triggers"] == before["triggers"] and chained["rows"] == before["rows"]
    assert chained["hashes"] == [["", ""]]


FACILITATOR_SCRIPT = r"""
import json
import sys

sys.path.insert(0, sys.argv[1])
from alliance.web import django_setup

django_setup(migrate=False)
from django.core.management import call_command
from django.db import connection

TABLE = "capture_administration"


def shape():
    with connection.cursor() as cursor:
        columns = [c.name for c in connection.introspection.get_table_description(cursor, TABLE)]
        constraints = connection.introspection.get_constraints(cursor, TABLE)
        cursor.execute(f"SELECT COUNT(*) FROM {TABLE}")
        count = cursor.fetchone()[0]
    unique = {name: sorted(c["columns"]) for name, c in constraints.items() if c["unique"] and not c["primary_key"]}
    return {"columns": columns, "unique": unique, "rows": count}


call_command("migrate", interactive=False, verbosity=0)
from alliance.web.capture.storage import export_study, import_study
from tests.web.conftest import make_study

import_study(make_study(), "levin", actor="test")
exported = export_study("levin").responses.to_csv(index=False)
latest = shape()
call_command("migrate", "capture", "0006_visit_links_notifications_mode", interactive=False, verbosity=0)
before = shape()
call_command("migrate", "capture", "0007_administration_facilitator", interactive=False, verbosity=0)
after = shape()
call_command("migrate", interactive=False, verbosity=0)  # the models are the latest state's
print(json.dumps({"latest": latest, "before": before, "after": after,
                  "same_export": export_study("levin").responses.to_csv(index=False) == exported}))
"""


def test_the_facilitator_migration_keeps_every_administration(database_url, tmp_path):
    """``capture`` 0007: the ``facilitator`` column and two conditional unique indexes; rows kept, both ways."""
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DATABASE_URL": database_url, "ALLIANCE_DATA_DIR": str(tmp_path)})
    result = subprocess.run([sys.executable, "-c", FACILITATOR_SCRIPT, root], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    before, after = shown["before"], shown["after"]
    assert "facilitator_id" not in before["columns"] and "facilitator_id" in after["columns"]
    assert before["unique"]["capture_administration_unique"] == ["instrument", "participant_id", "timepoint_id"]
    assert after["unique"]["capture_administration_once"] == ["instrument", "participant_id", "timepoint_id"]
    assert after["unique"]["capture_administration_once_per_facilitator"] == [
        "facilitator_id", "instrument", "participant_id", "timepoint_id"]
    assert "capture_administration_unique" not in after["unique"]
    assert after["rows"] == before["rows"] == shown["latest"]["rows"] > 0
    assert shown["same_export"]


TRIAGE_SCRIPT = r"""
import json
import sys

sys.path.insert(0, sys.argv[1])
from alliance.web import django_setup

django_setup(migrate=False)
from django.core.management import call_command
from django.db import connection


def shape(table):
    with connection.cursor() as cursor:
        columns = sorted(c.name for c in connection.introspection.get_table_description(cursor, table))
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        count = cursor.fetchone()[0]
    return {"columns": columns, "rows": count}


def values(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [list(row) for row in cursor.fetchall()]


call_command("migrate", interactive=False, verbosity=0)
from alliance.web.capture.models import Participant, Study
from alliance.web.capture.storage import import_study
from alliance.web.monitor.models import Alert
from tests.web.conftest import make_study

import_study(make_study(), "levin", actor="test")
study = Study.objects.get(name="levin")
Alert.objects.create(study=study, participant=Participant.objects.filter(study=study).first(), rule="low_alliance",
                     rule_type="low_alliance", timepoint="prep", severity="warning", reason="low")
latest = {"alert": shape("monitor_alert"), "study": shape("capture_study")}
call_command("migrate", "monitor", "0001_initial", interactive=False, verbosity=0)
call_command("migrate", "capture", "0007_administration_facilitator", interactive=False, verbosity=0)
before = {"alert": shape("monitor_alert"), "study": shape("capture_study")}
call_command("migrate", interactive=False, verbosity=0)
after = {"alert": shape("monitor_alert"), "study": shape("capture_study")}
print(json.dumps({"latest": latest, "before": before, "after": after,
                  "new_alert_fields": values("SELECT assigned_to_id, assigned_at, notified_at, notification "
                                             "FROM monitor_alert"),
                  "new_study_fields": values("SELECT crisis_text, country, adverse_event_columns FROM capture_study"),
                  "adverse_events": values("SELECT count(*) FROM capture_adverseevent")}))
"""


def test_the_triage_migrations_only_add_their_columns(database_url, tmp_path):
    """``monitor`` 0002 (assignment, notification) and ``capture`` 0008 (crisis text, country), both ways.

    Alerts stored before keep every row, unassigned and never emailed (``notified_at`` empty: only
    alerts raised after the upgrade send their email); studies get a blank crisis text and country.
    """
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DATABASE_URL": database_url, "ALLIANCE_DATA_DIR": str(tmp_path)})
    result = subprocess.run([sys.executable, "-c", TRIAGE_SCRIPT, root], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    before, after = shown["before"], shown["after"]
    added_alert = {"assigned_to_id", "assigned_at", "notified_at", "notification"}
    assert set(after["alert"]["columns"]) - set(before["alert"]["columns"]) == added_alert
    # capture 0009 (the safety tables) comes after 0008 and adds its own columns
    assert set(after["study"]["columns"]) - set(before["study"]["columns"]) == {
        "crisis_text", "country", "adverse_event_columns", "vital_sign_columns", "medication_columns"}
    assert after == shown["latest"]
    assert before["alert"]["rows"] == after["alert"]["rows"] > 0 and before["study"]["rows"] == 1
    assert {tuple(row) for row in shown["new_alert_fields"]} == {(None, None, None, "")}
    assert shown["new_study_fields"] == [["", "", None]]  # a study stored before has no adverse events table
    assert shown["adverse_events"] == [[0]]
