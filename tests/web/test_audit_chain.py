"""The audit trail's hash chain: written by every write path, checked by ``verify_chain`` and ``alliance audit verify``.

Tampering is done the way someone with database access would: raw SQL inserts, and updates and
deletes with the append-only triggers switched off for the test (SQLite: ``DROP TRIGGER``;
PostgreSQL: ``ALTER TABLE … DISABLE TRIGGER`` as the test superuser). The test's transaction is
rolled back afterwards, triggers included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.urls import reverse
from typer.testing import CliRunner

from alliance.cli import app
from alliance.web.audit import triggers
from alliance.web.audit.log import AuditLog
from alliance.web.audit.models import AuditEvent
from alliance.web.audit.verify import EDITED, RELINKED, verify_chain
from alliance.web.capture import models as m
from alliance.web.capture.storage import import_study

from .webapp import STUDY

ACTOR = "cli:import"
TABLE = "capture_auditevent"


def events(using: str, study: m.Study | None) -> list[AuditEvent]:
    return list(AuditEvent.objects.using(using).filter(study=study).order_by("id"))


def imported(study, using: str) -> m.Study:
    import_study(study, "levin", ACTOR, using=using)
    return m.Study.objects.using(using).get(name="levin")


def form_submission(row: m.Study, using: str) -> None:
    """What a web form writes: one change by a logged-in user, through :class:`AuditLog`."""
    participant = m.Participant.objects.using(using).filter(study=row).order_by("pk").first()
    with transaction.atomic(using=using):
        log = AuditLog(actor="user:alice", study=row)
        log.changed(participant, {"site": participant.site}, {"site": "Baltimore — Ünit 2"},
                    label=participant.participant_id)
        assert log.write(using) == 1


def without_triggers(using: str, sql: str, params=()) -> None:
    """Run ``sql`` with the append-only triggers off, and put them back (the test's transaction is rolled back)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            triggers.remove(connection)
            cursor.execute(sql, params)
            triggers.install(connection)
        else:
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TABLE}_no_update_delete")
            cursor.execute(sql, params)
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TABLE}_no_update_delete")


def forge(using: str, study_id: int, previous_hash: str, digest: str = "f" * 64) -> int:
    """Insert a back-dated event with raw SQL; returns its id."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (actor, at, action, model, object_id, object_repr, study_id, new, hash, "
                       "previous_hash) VALUES ('cli:import', %s, 'create', 'capture.participant', '999', 'P999', %s, "
                       "%s, %s, %s)",
                       [connections[using].ops.adapt_datetimefield_value(dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
                        study_id, '{"site": "forged"}', digest, previous_hash])
    return AuditEvent.objects.using(using).order_by("-id").values_list("id", flat=True).first()


# -- written ---------------------------------------------------------------------------------------

def test_an_import_and_a_form_submission_verify_clean(using, study):
    row = imported(study, using)
    form_submission(row, using)
    log = AuditLog(actor="anonymous")
    log.add("login_fail", m.Study, "", None, {"username_hash": "ab12"}, "login")
    log.write(using)

    trail = events(using, row)
    assert trail[0].previous_hash == "" and all(len(e.hash) == 64 for e in trail)
    assert [e.previous_hash for e in trail[1:]] == [e.hash for e in trail[:-1]]
    result = verify_chain(using=using)
    assert result.intact, result.to_dict()
    by_study = {c.study: c for c in result.chains}
    assert by_study["levin"].checked == by_study["levin"].events == len(trail)
    assert by_study["levin"].head == trail[-1].hash
    assert by_study[None].checked == 1
    assert verify_chain("levin", using=using).chains == (by_study["levin"],)
    assert json.loads(json.dumps(result.to_dict()))["intact"] is True


def test_the_hash_is_sha256_of_the_documented_serialisation(using, study):
    row = imported(study, using)
    form_submission(row, using)
    event = events(using, row)[-1]
    participant = m.Participant.objects.using(using).get(pk=int(event.object_id))
    # Written out by hand from docs/storage.md: sorted keys, no spaces, non-ASCII as is, UTC time.
    at = event.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = (f'{{"action":"change","actor":"user:alice","at":"{at}","model":"capture.participant",'
            f'"new":{{"site":"Baltimore — Ünit 2"}},"object_id":"{participant.pk}",'
            f'"object_repr":"{participant.participant_id}","old":{{"site":{json.dumps(event.old["site"])}}},'
            f'"previous_hash":"{event.previous_hash}","study_id":{row.pk},"user_id":null}}')
    assert event.hash == hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.django_db
def test_a_web_form_submission_is_chained(client, accounts, web_study):
    client.force_login(accounts.admin)
    arm = m.Arm.objects.get(study=web_study, code="immediate").pk
    before = AuditEvent.objects.filter(study=web_study).count()
    response = client.post(reverse("capture:participant_enrol", kwargs={"study": STUDY}),
                           {"participant_id": "P400", "arm": arm, "enrolled_on": "2024-01-01"})
    assert response.status_code in (200, 302)
    check = verify_chain(STUDY).chains[0]
    assert check.intact and check.checked == check.events > before
    logins = [c for c in verify_chain().chains if c.study is None]
    assert logins and logins[0].intact  # force_login's event, in the chain of events without a study


def test_events_written_before_the_chain_are_counted_not_broken(using, study):
    row = imported(study, using)
    with connections[using].cursor() as cursor:  # as migration 0002 leaves an older event: empty hashes
        cursor.execute(f"INSERT INTO {TABLE} (actor, at, action, model, object_id, object_repr, new) VALUES "
                       "('cli:import', CURRENT_TIMESTAMP, 'create', 'capture.study', '1', 'old', '{}')")
    result = verify_chain(using=using)
    no_study = next(c for c in result.chains if c.study is None)
    assert result.intact and no_study.before_chain == 1 and no_study.checked == 0
    # After the chain started, an empty hash is a break, not an old event.
    forged = forge(using, row.pk, previous_hash="", digest="")
    assert verify_chain(row, using=using).chains[0].broken.id == forged


# PostgreSQL only: SQLite's in-memory test database is one connection, so its writers cannot run
# concurrently (on a file, SQLite lets one writer at a time; a stale head fails, see chain.py).
_POSTGRES = "postgres" in settings.DATABASES


@pytest.mark.django_db(databases=["postgres"] if _POSTGRES else ["default"], transaction=True)
def test_concurrent_writers_to_one_study_do_not_fork_the_chain(study):
    if not _POSTGRES:
        reason = getattr(settings, "POSTGRES_UNAVAILABLE", None) or "PostgreSQL is not configured"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the PostgreSQL tests to run: {reason}")
        pytest.skip(reason)
    using = "postgres"
    row = imported(study, using)
    participant = m.Participant.objects.using(using).filter(study=row).first()
    errors = []

    def write(number: int) -> None:
        try:
            for attempt in range(20):
                log = AuditLog(actor=f"user:writer{number}", study=row)
                log.changed(participant, {"site": "A"}, {"site": f"writer {number}, {attempt}"})
                with transaction.atomic(using=using):
                    log.write(using)
        except Exception as error:  # reported below; SQLite may refuse a concurrent writer outright
            errors.append(error)
        finally:
            connections[using].close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check = verify_chain(row, using=using).chains[0]
    assert check.intact, check
    assert len({e.previous_hash for e in events(using, row)}) == check.events  # no two share a predecessor


# -- tampered --------------------------------------------------------------------------------------

@pytest.mark.parametrize("linked", [False, True], ids=["any-hash", "linked-to-the-head"])
def test_a_forged_insert_is_found_and_named(using, study, linked):
    row = imported(study, using)
    head = events(using, row)[-1].hash
    forged = forge(using, row.pk, previous_hash=head if linked else "0" * 64)
    form_submission(row, using)  # written after the forgery, chained to it: still intact itself
    check = verify_chain(using=using, study=row).chains[0]
    assert check.broken.id == forged
    assert check.broken.problem == (EDITED if linked else RELINKED)
    assert check.head == head and check.events == check.checked + 1


@pytest.mark.parametrize("column, value", [("object_repr", "P001 edited"), ("new", '{"site": "edited"}'),
                                           ("at", None)])
def test_an_edited_event_is_found_and_named(using, study, column, value):
    row = imported(study, using)
    target = events(using, row)[5]
    if value is None:
        value = connections[using].ops.adapt_datetimefield_value(target.at - dt.timedelta(days=1))
    without_triggers(using, f"UPDATE {TABLE} SET {column} = %s WHERE id = %s", [value, target.pk])
    check = verify_chain(row, using=using).chains[0]
    assert check.broken.id == target.pk and check.broken.problem == EDITED
    assert check.checked == 6


def test_a_deleted_event_breaks_the_link_of_the_next(using, study):
    row = imported(study, using)
    trail = events(using, row)
    without_triggers(using, f"DELETE FROM {TABLE} WHERE id = %s", [trail[3].pk])
    check = verify_chain(row, using=using).chains[0]
    assert check.broken.id == trail[4].pk and check.broken.problem == RELINKED


# -- the command -----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_command_exits_1_and_names_the_broken_event(study_dir):
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(study_dir), "--study", "levin"]).exit_code == 0
    clean = runner.invoke(app, ["audit", "verify"])
    assert clean.exit_code == 0, clean.output
    assert "levin: intact" in clean.output
    row = m.Study.objects.get(name="levin")
    forged = forge("default", row.pk, previous_hash="0" * 64)
    for arguments in (["audit", "verify"], ["audit", "verify", "--study", "levin"]):
        broken = runner.invoke(app, arguments)
        assert broken.exit_code == 1, broken.output
        assert f"levin: BROKEN at audit event {forged}: {RELINKED}" in broken.output
    unknown = runner.invoke(app, ["audit", "verify", "--study", "nope"])
    assert unknown.exit_code == 1 and "nope" in unknown.output


@pytest.mark.django_db
def test_on_sqlite_dropped_triggers_and_an_edit_are_named_by_the_command(study_dir):
    """SQLite has no roles: whoever can write the file can drop the triggers; the chain still shows the edit."""
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(study_dir), "--study", "levin"]).exit_code == 0
    target = events("default", m.Study.objects.get(name="levin"))[5]
    with connections["default"].cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {TABLE}_no_update")  # left dropped, as an intruder would
        cursor.execute(f"UPDATE {TABLE} SET new = %s WHERE id = %s", ['{"site": "edited"}', target.pk])
    broken = runner.invoke(app, ["audit", "verify", "--study", "levin"])
    assert broken.exit_code == 1, broken.output
    assert f"levin: BROKEN at audit event {target.pk}: {EDITED}" in broken.output
