"""PostgreSQL with two roles: the owner migrates, the app role serves and cannot switch the audit triggers off.

The end-to-end test sets a fresh database up the way docs/storage.md says ("PostgreSQL with two
roles"): ``DATABASE_URL`` names the app role ``alliance_app`` (created by
``scripts/test-services.sh``), ``ALLIANCE_MIGRATE_DATABASE_URL`` the owner (the test server's
``alliance_test``). ``alliance import`` then migrates as the owner and imports as the app role, in
a process of its own, as a site would run it. Connected as the app role, every way around the
append-only triggers is refused by PostgreSQL itself; the one write it keeps, ``INSERT``, is how a
forged event gets in, and ``alliance audit verify`` names it.

These tests need the PostgreSQL test server: skipped without it, failed under ``CI=true`` (the
``using`` fixture's rule, tests/web/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connections

from alliance.web.audit import roles, triggers
from alliance.web.audit.verify import RELINKED
from alliance.web.config import OWNER_DATABASE, build_settings

psycopg = pytest.importorskip("psycopg")

APP_ROLE = "alliance_app"
TABLE = triggers.TABLE


def skip_or_fail(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true requires the PostgreSQL tests to run: {reason}")
    pytest.skip(reason)


def with_user_and_database(url: str, user: str, database: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}@{host}", f"/{database}", parts.query, ""))


@pytest.fixture
def two_roles():
    """A fresh database owned by the test server's role; yields (owner URL, app role URL); dropped afterwards."""
    url = getattr(settings, "POSTGRES_URL", None)
    if not url:
        skip_or_fail(getattr(settings, "POSTGRES_UNAVAILABLE", None) or "PostgreSQL is not configured")
    name = f"alliance_roles_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as owner:
        if owner.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone() is None:
            skip_or_fail(f"there is no role {APP_ROLE}: run scripts/test-services.sh, which creates it")
        owner.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        owner.execute(f"CREATE DATABASE {name}")
        owner_user = owner.info.user
    owner_url = with_user_and_database(url, owner_user, name)
    app_url = with_user_and_database(url, APP_ROLE, name)
    try:
        psycopg.connect(app_url, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        skip_or_fail(f"cannot connect as {APP_ROLE} ({str(error).strip()}): the test server must trust local roles")
    yield owner_url, app_url
    _drop_when_free(url, name)


def _drop_when_free(url: str, name: str, seconds: float = 15.0) -> None:
    """Drop the test database once the app role's sessions have ended.

    The owner may not end another role's session (FORCE needs pg_signal_backend), and a served
    subprocess closes its connection a moment after it exits: wait for it rather than fail.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(url, autocommit=True) as owner:
                owner.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except psycopg.errors.InsufficientPrivilege:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def site_environment(owner_url: str, app_url: str, data_dir, **more) -> dict[str, str]:
    """This process's environment, configured as a two-role site is (docs/storage.md)."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE" and not k.startswith("ALLIANCE_")}
    return {**env, "DATABASE_URL": app_url, "ALLIANCE_MIGRATE_DATABASE_URL": owner_url,
            "ALLIANCE_DATA_DIR": str(data_dir), "ALLIANCE_SECRET_KEY": "test-only", **more}


def alliance(arguments: list[str], owner_url: str, app_url: str, data_dir) -> subprocess.CompletedProcess:
    """Run the CLI in its own process, as a two-role site runs it."""
    return subprocess.run([sys.executable, "-m", "alliance.cli", *arguments], capture_output=True, text=True,
                          env=site_environment(owner_url, app_url, data_dir), timeout=300)


REFUSED = [
    f"ALTER TABLE {TABLE} DISABLE TRIGGER ALL",
    f"ALTER TABLE {TABLE} DISABLE TRIGGER {TABLE}_no_update_delete",
    f"DROP TRIGGER {TABLE}_no_update_delete ON {TABLE}",
    f"DROP TRIGGER {TABLE}_no_truncate ON {TABLE}",
    f"CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    f"UPDATE {TABLE} SET actor = 'someone else'",
    f"DELETE FROM {TABLE}",
    f"TRUNCATE {TABLE}",
    f"DROP TABLE {TABLE}",
    f"ALTER TABLE {TABLE} RENAME TO old_trail",
]


def test_the_app_role_serves_but_cannot_get_around_the_audit_triggers(two_roles, study_dir, tmp_path):
    owner_url, app_url = two_roles
    imported = alliance(["import", str(study_dir), "--study", "levin"], owner_url, app_url, tmp_path)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    with psycopg.connect(owner_url, autocommit=True) as owner:
        # migrate ran as the owner: it owns every table, the app role none.
        owners = {r[0] for r in owner.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
        assert owners == {owner.info.user}
        owner.execute("CREATE TABLE made_by_a_later_migration (id integer)")  # default privileges apply

    with psycopg.connect(app_url, autocommit=True) as app:
        events = app.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        assert events > 0
        for statement in REFUSED:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied|must be owner"):
                app.execute(statement)
        assert app.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == events
        # Ordinary reads and writes of the other tables work, and of tables made after the grants.
        changed = app.execute("UPDATE capture_participant SET site = 'Baltimore' WHERE participant_id = 'P001'")
        assert changed.rowcount == 1
        app.execute("INSERT INTO made_by_a_later_migration VALUES (1)")
        # The one write it keeps on the trail: INSERT. A back-dated forgery gets in ...
        study_id = app.execute("SELECT id FROM capture_study WHERE name = 'levin'").fetchone()[0]
        forged = app.execute(
            f"INSERT INTO {TABLE} (actor, at, action, model, object_id, object_repr, study_id, new, hash, previous_hash) "
            "VALUES ('cli:import', '2020-01-01T00:00:00Z', 'create', 'capture.participant', '999', 'P999', %s, "
            "'{\"site\": \"forged\"}', %s, %s) RETURNING id", [study_id, "f" * 64, "0" * 64]).fetchone()[0]

    # ... and the hash chain names it.
    verified = alliance(["audit", "verify", "--study", "levin"], owner_url, app_url, tmp_path)
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert f"levin: BROKEN at audit event {forged}: {RELINKED}" in verified.stdout


def test_migrate_grants_again_after_each_migration(two_roles, study_dir, tmp_path):
    owner_url, app_url = two_roles
    assert alliance(["import", str(study_dir), "--study", "levin"], owner_url, app_url, tmp_path).returncode == 0
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute(f"GRANT UPDATE, DELETE ON {TABLE} TO {APP_ROLE}")  # a mistake, or a re-created table
    env = site_environment(owner_url, app_url, tmp_path, DJANGO_SETTINGS_MODULE="alliance.web.settings")
    migrated = subprocess.run([sys.executable, "-m", "django", "migrate"], env=env, capture_output=True, text=True,
                              timeout=300)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert f"Granted the app role '{APP_ROLE}'" in migrated.stdout
    with psycopg.connect(app_url, autocommit=True) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(f"DELETE FROM {TABLE}")


def test_grant_app_role_refuses_roles_that_could_drop_the_triggers(using):
    if using == "default":  # SQLite: no roles at all
        with pytest.raises(CommandError, match="PostgreSQL setup"):
            call_command("grant_app_role", APP_ROLE, database=using)
        return
    owner = settings.DATABASES[using]["USER"]
    with pytest.raises(CommandError, match="owner of the tables"):
        call_command("grant_app_role", owner, database=using)
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT rolname FROM pg_roles WHERE rolsuper ORDER BY rolname LIMIT 1")
        superuser = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="superuser"):
        call_command("grant_app_role", superuser, database=using)
    with pytest.raises(CommandError, match="no PostgreSQL role"):
        call_command("grant_app_role", "nobody_by_this_name", database=using)


def test_grant_statements_keep_the_audit_table_insert_only():
    statements = roles.grant_statements("app", "public", lambda name: f'"{name}"')
    assert f'REVOKE ALL ON TABLE "public"."{TABLE}" FROM "app"' in statements
    assert f'GRANT SELECT, INSERT ON TABLE "public"."{TABLE}" TO "app"' in statements
    # The audit table's grant comes after the grant on all tables, which would otherwise include it.
    assert statements.index(f'GRANT SELECT, INSERT ON TABLE "public"."{TABLE}" TO "app"') > \
        statements.index('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "public" TO "app"')


# -- settings ----------------------------------------------------------------------------------------

def environment(tmp_path, **variables) -> dict[str, str]:
    return {"ALLIANCE_DATA_DIR": str(tmp_path), "ALLIANCE_SECRET_KEY": "test-only", **variables}


def test_the_migrate_url_is_the_owner_alias_of_the_same_database(tmp_path):
    databases = build_settings(environment(
        tmp_path, DATABASE_URL="postgresql://alliance_app:app@db.example.org:5432/trial",
        ALLIANCE_MIGRATE_DATABASE_URL="postgresql://alliance_owner:owner@db.example.org:5432/trial"))["DATABASES"]
    assert databases["default"]["USER"] == "alliance_app"
    assert databases[OWNER_DATABASE]["USER"] == "alliance_owner" and databases[OWNER_DATABASE]["NAME"] == "trial"
    assert databases[OWNER_DATABASE]["TEST"] == {"MIRROR": "default"}
    assert OWNER_DATABASE not in build_settings(environment(
        tmp_path, DATABASE_URL="postgresql://alliance_app@db.example.org/trial"))["DATABASES"]


@pytest.mark.parametrize("serving, owner, says", [
    ("postgresql://app@db/trial", "postgresql://owner@db/other", "must name the database"),
    ("postgresql://app@db/trial", "postgresql://owner@elsewhere/trial", "must name the database"),
    ("postgresql://app@db/trial", "postgresql://app@db/trial", "same user"),
    (None, "postgresql://owner@db/trial", "SQLite has no roles"),
    ("sqlite:////tmp/alliance-roles.sqlite3", "sqlite:////tmp/alliance-roles.sqlite3", "SQLite has no roles"),
])
def test_a_migrate_url_that_does_not_fit_is_refused(tmp_path, serving, owner, says):
    variables = {"ALLIANCE_MIGRATE_DATABASE_URL": owner, **({"DATABASE_URL": serving} if serving else {})}
    with pytest.raises(ImproperlyConfigured, match=says):
        build_settings(environment(tmp_path, **variables))
