"""Storage of studies with an audit trail, on SQLite and PostgreSQL (the ``using`` fixture).

Expected values come from the study written to disk (the tidy contract files), not from the
storage code: a round trip must give back the same files byte for byte.
"""

from __future__ import annotations

import pandas as pd
import pytest
from django.db import DatabaseError, connections, transaction

from alliance.protocol import parse_protocol
from alliance.study import Study, StudyDataError, load, save, sort_responses
from alliance.web.audit.errors import AppendOnlyError
from alliance.web.audit.log import AuditLog
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture.storage import (
    DeletionsNotAllowed,
    StorageError,
    export_study,
    import_study,
    list_studies,
)

from .conftest import make_study

ACTOR = "test:import"
TABLES = [m.Study, m.Arm, m.Timepoint, m.Participant, m.Facilitator, m.FacilitatorAssignment, m.DosingSession,
          m.Administration, m.ItemResponse, AuditEvent]


def snapshot(using: str) -> dict[str, list]:
    """Every row of every capture table, to compare the database before and after."""
    return {model.__name__: sorted(map(repr, model.objects.using(using).order_by("pk").values_list()))
            for model in TABLES}


def with_value(study: Study, row: int, value: float) -> Study:
    responses = study.responses.copy()
    responses.loc[row, "value"] = value
    return Study(study.protocol, study.participants, responses, study.dosing_sessions)


# -- round trip ---------------------------------------------------------------------------------

def test_round_trip_gives_identical_files(using, study_dir, tmp_path):
    import_study(load(study_dir), "levin", ACTOR, using=using)
    out = tmp_path / "exported"
    save(export_study("levin", using=using), out)
    for name in ("protocol.yaml", "participants.csv", "responses.csv", "dosing_sessions.csv"):
        assert (out / name).read_bytes() == (study_dir / name).read_bytes(), name


def test_round_trip_gives_identical_responses(using, study):
    import_study(study, "levin", ACTOR, using=using)
    exported = export_study("levin", using=using)
    expected = sort_responses(study.responses, study.protocol)
    pd.testing.assert_frame_equal(exported.responses, expected)
    pd.testing.assert_frame_equal(exported.participants, study.participants)
    pd.testing.assert_frame_equal(exported.dosing_sessions, study.dosing_sessions)
    assert exported.protocol.sha256 == study.protocol.sha256


def test_import_stores_the_contract_in_its_tables(using, study):
    summary = import_study(study, "levin", ACTOR, using=using)
    n_administrations = len(study.responses.drop_duplicates(["participant_id", "timepoint", "instrument"]))
    assert summary.created == {"study": 1, "arms": 2, "timepoints": 10, "facilitators": 3, "participants": 6,
                               "dosing_sessions": 12, "administrations": n_administrations,
                               "responses": len(study.responses)}
    participant = m.Participant.objects.using(using).get(participant_id="P002")
    assert participant.identifiers == {"name": "Person 1"}  # `name` is an identifier in the protocol
    assert set(participant.covariates) == {"age", "sex", "weight_kg"}
    assert [f.facilitator_id for f in participant.facilitators.order_by("assignments__position")] == ["F2", "F3"]
    wai = m.Administration.objects.using(using).get(participant=participant, timepoint__code="prep")
    assert wai.status == "submitted" and wai.instrument == "wai_sr"
    answers = study.responses.query("participant_id == 'P002' and timepoint == 'prep'")["value"]
    # WAI-SR total is the sum of its 12 items, 1-5 (Hatcher & Gillaspy 2006); none is reverse-keyed.
    assert wai.scores["total"] == answers.sum()
    assert m.Timepoint.objects.using(using).get(study__name="levin", code="session2").dose == {
        "compound": "psilocybin", "amount": 30.0, "unit": "mg/70kg", "session": 2}
    created = AuditEvent.objects.using(using).get(model="capture.study", action="create")
    assert created.new["protocol_yaml"] == study.protocol.to_yaml()  # multi-line text survives COPY / JSON
    assert created.new["participant_columns"] == list(study.participants.columns)


# -- idempotence and audit ----------------------------------------------------------------------

def test_reimport_changes_nothing_and_writes_no_audit(using, study):
    import_study(study, "levin", ACTOR, using=using)
    before = snapshot(using)
    again = import_study(load_again(study), "levin", ACTOR, using=using)
    assert again.unchanged and again.audit_events == 0
    assert snapshot(using) == before


def load_again(study: Study) -> Study:
    """A fresh copy of the same study, as if the directory had been read again."""
    return Study(study.protocol, study.participants.copy(), study.responses.copy(), study.dosing_sessions.copy())


def test_every_imported_value_is_in_the_audit_trail(using, study):
    import_study(study, "levin", ACTOR, using=using)
    audited = []
    for event in AuditEvent.objects.using(using).filter(model="capture.administration", action="create"):
        for item, value in event.new["items"].items():
            audited.append((event.new["participant_id"], event.new["timepoint"], item, value))
    expected = list(study.responses[["participant_id", "timepoint", "item", "value"]].itertuples(index=False, name=None))
    assert sorted(audited) == sorted(expected)
    # every stored record by the importer; the alerts the import raised (default database) by the alert rules
    assert set(AuditEvent.objects.using(using).filter(model__startswith="capture.")
               .values_list("actor", flat=True)) == {ACTOR}
    assert set(AuditEvent.objects.using(using).exclude(model__startswith="capture.")
               .values_list("actor", flat=True)) <= {"system:alerts"}


def test_changed_value_is_audited_old_to_new(using, study):
    import_study(study, "levin", ACTOR, using=using)
    row = study.responses.index[(study.responses["participant_id"] == "P003")
                                & (study.responses["item"] == "wai_sr_5")
                                & (study.responses["timepoint"] == "week1")][0]
    old = float(study.responses.loc[row, "value"])
    new = 1.0 if old != 1.0 else 2.0
    summary = import_study(with_value(study, row, new), "levin", "cli:second", using=using)

    assert summary.changed == {"responses": 1, "administrations": 1}  # the answer, and its scores
    assert not summary.created and not summary.deleted
    event = AuditEvent.objects.using(using).get(model="capture.itemresponse", action="change")
    assert (event.old, event.new) == ({"value": old}, {"value": new})
    assert event.actor == "cli:second" and event.object_repr == "P003/week1/wai_sr/wai_sr_5"
    assert event.study_id == m.Study.objects.using(using).get(name="levin").pk
    scores = AuditEvent.objects.using(using).get(model="capture.administration", action="change")
    # WAI-SR total is the sum of its 12 items: it moves by exactly as much as the one answer.
    assert scores.new["scores"]["total"] - scores.old["scores"]["total"] == new - old
    stored = m.ItemResponse.objects.using(using).get(pk=int(event.object_id))
    assert stored.value == new
    assert export_study("levin", using=using).responses.loc[row, "value"] == new


def test_removed_participant_is_deleted_with_its_values_in_the_audit(using, study):
    import_study(study, "levin", ACTOR, using=using)
    kept = study.participants["participant_id"] != "P006"
    smaller = Study(study.protocol, study.participants[kept], study.responses[study.responses["participant_id"] != "P006"],
                    study.dosing_sessions[study.dosing_sessions["participant_id"] != "P006"])
    gone = study.responses[study.responses["participant_id"] == "P006"]
    summary = import_study(smaller, "levin", ACTOR, using=using, allow_deletions=True)

    assert summary.deleted["participants"] == 1
    assert summary.deleted["responses"] == len(gone)
    assert summary.deleted["dosing_sessions"] == 2
    deleted = AuditEvent.objects.using(using).filter(model="capture.administration", action="delete")
    audited = sum(len(e.old["items"]) for e in deleted)
    assert audited == len(gone)
    event = AuditEvent.objects.using(using).get(model="capture.participant", action="delete")
    assert event.old["participant_id"] == "P006" and event.object_repr == "P006"
    assert not m.Participant.objects.using(using).filter(participant_id="P006").exists()


def test_draft_administrations_are_kept_and_not_exported(using, study):
    import_study(study, "levin", ACTOR, using=using)
    participant = m.Participant.objects.using(using).get(participant_id="P001")
    m.Administration.objects.using(using).filter(participant=participant, timepoint__code="week4").delete()
    draft = m.Administration.objects.using(using).create(
        participant=participant, timepoint=m.Timepoint.objects.using(using).get(code="week4"),
        instrument="grid_hamd17", status="draft")
    m.ItemResponse.objects.using(using).create(administration=draft, item="grid_hamd17_1", value=2)
    without = study.responses[~((study.responses["participant_id"] == "P001")
                                & (study.responses["timepoint"] == "week4"))]
    partial = Study(study.protocol, study.participants, without, study.dosing_sessions)

    summary = import_study(partial, "levin", ACTOR, using=using)
    assert summary.unchanged
    assert m.Administration.objects.using(using).filter(pk=draft.pk, status="draft").exists()
    exported = export_study("levin", using=using)
    assert len(exported.responses) == len(without)


# -- the audit trail is append-only ---------------------------------------------------------------

def audit_event(using: str) -> AuditEvent:
    study = m.Study.objects.using(using).create(name="s", protocol_yaml="", protocol_sha256="")
    log = AuditLog(actor="test", study=study)
    log.created(study, {"name": "s"})
    log.write(using)
    return AuditEvent.objects.using(using).get()


def test_audit_events_cannot_be_changed_through_the_model(using):
    event = audit_event(using)
    event.actor = "someone else"
    with pytest.raises(AppendOnlyError):
        event.save(using=using)
    with pytest.raises(AppendOnlyError):
        event.delete(using=using)
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.using(using).update(actor="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.using(using).all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.using(using).bulk_update([event], ["actor"])
    assert AuditEvent.objects.using(using).get().actor == "test"


@pytest.mark.parametrize("sql", ["UPDATE capture_auditevent SET actor = 'x'", "DELETE FROM capture_auditevent"])
def test_audit_events_cannot_be_changed_in_the_database(using, sql):
    audit_event(using)
    # The savepoint keeps PostgreSQL's transaction usable after the trigger's error.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(using=using):
        with connections[using].cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.using(using).get().actor == "test"


def test_deleting_a_study_keeps_its_audit_trail(using, study):
    import_study(study, "levin", ACTOR, using=using)
    count = AuditEvent.objects.using(using).count()
    m.Study.objects.using(using).get(name="levin").delete()
    assert AuditEvent.objects.using(using).count() == count


@pytest.mark.transactional
def test_flush_empties_the_audit_table_and_keeps_it_append_only(using):
    """Django's test framework flushes after transactional tests; the web app's browser tests need it."""
    from django.core.management import call_command

    audit_event(using)
    call_command("flush", database=using, interactive=False, verbosity=0)
    assert not AuditEvent.objects.using(using).exists()
    audit_event(using)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(using=using):
        with connections[using].cursor() as cursor:
            cursor.execute("DELETE FROM capture_auditevent")


# -- failures leave the database unchanged --------------------------------------------------------

@pytest.mark.transactional
def test_failing_import_writes_nothing(using, study, monkeypatch):
    import_study(study, "levin", ACTOR, using=using)
    before = snapshot(using)
    changed = with_value(study, 0, 0.0 if study.responses.loc[0, "value"] else 1.0)
    bigger = make_study(n_participants=8, seed=3)

    def fail(self, using="default"):
        raise DatabaseError("disk full (simulated)")

    # Fail at the very end, after the study's rows have been written in the transaction.
    monkeypatch.setattr(AuditLog, "write", fail)
    for attempt in (changed, bigger):
        with pytest.raises(DatabaseError, match="simulated"):
            import_study(attempt, "levin", ACTOR, using=using)
    with pytest.raises(DatabaseError, match="simulated"):
        import_study(bigger, "another", ACTOR, using=using)
    assert snapshot(using) == before
    assert list_studies(using) == ["levin"]


@pytest.mark.transactional
def test_import_refused_half_way_writes_nothing(using, study):
    """A timepoint dropped from the protocol while a draft still uses it: refused after other writes."""
    import_study(study, "levin", ACTOR, using=using)
    participant = m.Participant.objects.using(using).get(participant_id="P001")
    m.Administration.objects.using(using).filter(participant=participant, timepoint__code="month12").delete()
    m.Administration.objects.using(using).create(
        participant=participant, timepoint=m.Timepoint.objects.using(using).get(code="month12"),
        instrument="grid_hamd17", status="draft")
    before = snapshot(using)
    raw = study.protocol.to_dict()
    raw["timepoints"] = [t for t in raw["timepoints"] if t["id"] != "month12"]
    protocol = parse_protocol(raw)
    responses = study.responses[study.responses["timepoint"] != "month12"]
    shorter = Study(protocol, study.participants, responses, study.dosing_sessions)

    with pytest.raises(StorageError, match="nothing was written"):
        import_study(shorter, "levin", ACTOR, using=using)
    assert snapshot(using) == before


def test_invalid_study_is_refused_before_writing(using, study):
    responses = study.responses.copy()
    responses.loc[0, "value"] = 99.0  # GRID-HAMD item 1 is scored 0-4
    with pytest.raises(StudyDataError, match="grid_hamd17_1"):
        import_study(Study(study.protocol, study.participants, responses, study.dosing_sessions), "levin", ACTOR,
                     using=using)
    assert list_studies(using) == []


def test_one_administration_with_two_raters_is_refused(using, study):
    # The rule is the core validation's (alliance analyze refuses the same data); the import runs it.
    responses = study.responses.copy()
    responses["rater"] = responses["rater"].astype(object)
    responses.loc[1, "rater"] = "rater 2"  # rows 0 and 1: P001's baseline GRID-HAMD
    with pytest.raises(StudyDataError, match="rater 2"):
        import_study(Study(study.protocol, study.participants, responses, study.dosing_sessions), "levin", ACTOR,
                     using=using)
    assert list_studies(using) == []


# -- export errors --------------------------------------------------------------------------------

def test_export_of_an_unknown_study_names_the_known_ones(using, study):
    import_study(study, "levin", ACTOR, using=using)
    with pytest.raises(StorageError, match="no study named 'nope'.*levin"):
        export_study("nope", using=using)


def test_export_refuses_a_protocol_that_no_longer_matches_its_hash(using, study):
    import_study(study, "levin", ACTOR, using=using)
    row = m.Study.objects.using(using).get(name="levin")
    m.Study.objects.using(using).filter(pk=row.pk).update(protocol_yaml=row.protocol_yaml.replace("offset_days: 365",
                                                                                                   "offset_days: 366"))
    with pytest.raises(StorageError, match="sha256"):
        export_study("levin", using=using)


def test_storage_is_used_by_a_plain_script_after_django_setup(tmp_path):
    """What `alliance analyze --study` does: django_setup() (settings from DATABASE_URL), then the import."""
    import os
    import subprocess
    import sys

    code = ("from alliance.web import django_setup\n"
            "django_setup()\n"
            "from alliance.web.capture.storage import export_study\n"
            "try:\n    export_study('nope')\nexcept LookupError as e:\n    print('LookupError:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "ALLIANCE_DATA_DIR": str(tmp_path)})
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "LookupError: no study named 'nope' in the database; it holds no studies yet"


# -- property: after importing A then B, the database holds exactly B -------------------------------

class _Rollback(Exception):
    pass


def test_any_second_import_leaves_exactly_the_second_study(using, study):
    """Random edits of a study (answers dropped or changed, participants removed, a site changed)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from alliance import instruments as bank

    n_rows = len(study.responses)
    pids = study.participants["participant_id"].tolist()

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(dropped=st.sets(st.integers(0, n_rows - 1), max_size=40),
           changed=st.sets(st.integers(0, n_rows - 1), max_size=20),
           gone=st.sets(st.sampled_from(pids), max_size=2),
           new_site=st.sampled_from([None, "site B"]))
    def check(dropped, changed, gone, new_site):
        responses = study.responses.copy()
        for row in changed:
            item = next(i for i in bank.get(responses.loc[row, "instrument"]).items if i.id == responses.loc[row, "item"])
            responses.loc[row, "value"] = item.max if responses.loc[row, "value"] != item.max else item.min
        responses = responses.drop(index=sorted(dropped))
        responses = responses[~responses["participant_id"].isin(gone)].reset_index(drop=True)
        participants = study.participants[~study.participants["participant_id"].isin(gone)].reset_index(drop=True)
        participants["site"] = participants["site"].astype(object)
        participants.loc[0, "site"] = new_site
        dosing = study.dosing_sessions[~study.dosing_sessions["participant_id"].isin(gone)].reset_index(drop=True)
        edited = Study(study.protocol, participants, responses, dosing)
        try:
            with transaction.atomic(using=using):
                import_study(study, "levin", ACTOR, using=using)
                summary = import_study(edited, "levin", ACTOR, using=using, allow_deletions=True)
                exported = export_study("levin", using=using)
                pd.testing.assert_frame_equal(exported.responses, sort_responses(edited.responses, edited.protocol))
                pd.testing.assert_frame_equal(exported.participants, edited.participants)
                assert summary.deleted.get("participants", 0) == len(gone)
                assert import_study(edited, "levin", ACTOR, using=using).unchanged
                raise _Rollback
        except _Rollback:
            pass

    check()


# -- fix a file, re-import: any order of imports works and is audited ------------------------------

def without_row(study: Study, row: int) -> Study:
    """The study with one line of responses.csv deleted."""
    return Study(study.protocol, study.participants, study.responses.drop(index=row).reset_index(drop=True),
                 study.dosing_sessions)


def test_reimporting_a_dropped_answer_restores_it_and_audits_each_step(using, study):
    """Import, import with one response line deleted, import the original again (this crashed with
    ``KeyError "['pk'] not in index"``)."""
    row = 5
    lost = study.responses.loc[row]
    import_study(study, "levin", ACTOR, using=using)
    dropped = import_study(without_row(study, row), "levin", ACTOR, using=using, allow_deletions=True)
    assert dropped.deleted == {"responses": 1}
    restored = import_study(study, "levin", ACTOR, using=using)

    assert restored.created == {"responses": 1} and not restored.deleted
    pd.testing.assert_frame_equal(export_study("levin", using=using).responses,
                                  sort_responses(study.responses, study.protocol))
    label = f"{lost['participant_id']}/{lost['timepoint']}/{lost['instrument']}/{lost['item']}"
    events = list(AuditEvent.objects.using(using).filter(model="capture.itemresponse").order_by("pk")
                  .values_list("action", "object_repr", "old", "new", "object_id"))
    value = float(lost["value"])
    assert [e[:4] for e in events] == [("delete", label, {"item": lost["item"], "value": value}, None),
                                       ("create", label, None, {"item": lost["item"], "value": value})]
    assert m.ItemResponse.objects.using(using).get(pk=int(events[1][4])).value == value
    assert import_study(study, "levin", ACTOR, using=using).unchanged


# -- deletions need consent; a dry run writes nothing ---------------------------------------------

def without_participant(study: Study, pid: str) -> Study:
    return Study(study.protocol, study.participants[study.participants["participant_id"] != pid],
                 study.responses[study.responses["participant_id"] != pid],
                 study.dosing_sessions[study.dosing_sessions["participant_id"] != pid])


@pytest.mark.transactional
def test_an_import_that_would_delete_is_refused_with_counts_and_writes_nothing(using, study):
    import_study(study, "levin", ACTOR, using=using)
    before = snapshot(using)
    gone = study.responses[study.responses["participant_id"] == "P006"]
    n_administrations = len(gone.drop_duplicates(["timepoint", "instrument"]))
    smaller = with_value(without_participant(study, "P006"), 0, 0.0 if study.responses.loc[0, "value"] else 1.0)

    with pytest.raises(DeletionsNotAllowed) as refused:
        import_study(smaller, "levin", ACTOR, using=using)
    message = str(refused.value)
    # P006 has 2 dosing sessions (sessions 1 and 2 of the Levin protocol) and all its answers.
    assert (f"would delete 1 participant, 2 dosing sessions, {n_administrations} administrations, "
            f"{len(gone)} answers") in message
    assert "nothing was written" in message and "--allow-deletions" in message and "allow_deletions=True" in message
    assert isinstance(refused.value, StorageError)
    assert refused.value.summary.changed["responses"] == 1  # the whole change, for a confirmation step
    assert snapshot(using) == before

    allowed = import_study(smaller, "levin", ACTOR, using=using, allow_deletions=True)
    assert allowed.deleted == refused.value.summary.deleted and not allowed.dry_run
    assert not m.Participant.objects.using(using).filter(participant_id="P006").exists()


def test_a_dry_run_returns_the_change_and_writes_nothing(using, study):
    first = import_study(study, "levin", ACTOR, using=using, dry_run=True)
    assert first.dry_run and first.created["participants"] == 6 and first.audit_events > 0
    assert list_studies(using) == [] and not AuditEvent.objects.using(using).exists()

    import_study(study, "levin", ACTOR, using=using)
    before = snapshot(using)
    smaller = without_participant(study, "P006")
    would = import_study(smaller, "levin", ACTOR, using=using, dry_run=True)  # deletes: returned, not raised
    assert would.dry_run and would.deleted["participants"] == 1
    assert snapshot(using) == before
    done = import_study(smaller, "levin", ACTOR, using=using, allow_deletions=True)
    assert done.to_dict() == {**would.to_dict(), "dry_run": False}
    assert import_study(smaller, "levin", ACTOR, using=using, dry_run=True).unchanged


def test_adding_and_changing_need_no_consent(using, study):
    smaller = without_row(study, 5)
    assert not import_study(smaller, "levin", ACTOR, using=using).deletes  # a first import never deletes
    changed = import_study(with_value(study, 0, 0.0 if study.responses.loc[0, "value"] else 1.0), "levin", ACTOR,
                           using=using)
    assert changed.created == {"responses": 1} and changed.changed["responses"] == 1 and not changed.deleted


def _with_events(study, rows):
    from dataclasses import replace

    return replace(study, adverse_events=pd.DataFrame(rows, dtype="string"))


EVENTS = [
    {"participant_id": None, "ae_id": "AE-1", "term": "Headache", "onset": "2024-03-01", "resolved_on": "2024-03-02",
     "severity": "1", "serious": "no", "seriousness": None, "relatedness": "probable", "expected": "yes",
     "action": "none", "outcome": "recovered", "code": None},
    {"participant_id": None, "ae_id": "AE-2", "term": "Hospitalisation", "onset": "2024-03-05", "resolved_on": None,
     "severity": "3", "serious": "yes", "seriousness": "hospitalisation", "relatedness": "unlikely", "expected": "no",
     "action": "none", "outcome": "recovering", "code": "X1"},
]


def test_adverse_events_round_trip_are_audited_and_are_deleted_only_when_allowed(using, study):
    rows = [{**row, "participant_id": study.participant_ids[i]} for i, row in enumerate(EVENTS)]
    summary = import_study(_with_events(study, rows), "with-events", ACTOR, using=using)
    assert summary.created["adverse_events"] == 2
    exported = export_study("with-events", using=using)
    assert exported.adverse_events.to_dict("records") == _with_events(study, rows).adverse_events.to_dict("records")
    assert AuditEvent.objects.using(using).filter(model="capture.adverseevent", object_repr__contains="AE-2").exists()
    assert import_study(exported, "with-events", ACTOR, using=using).unchanged
    with pytest.raises(DeletionsNotAllowed, match="1 adverse event"):
        import_study(_with_events(study, rows[:1]), "with-events", ACTOR, using=using)
    assert len(export_study("with-events", using=using).adverse_events) == 2
    summary = import_study(_with_events(study, rows[:1]), "with-events", ACTOR, using=using, allow_deletions=True)
    assert summary.deleted == {"adverse_events": 1}


def test_a_study_without_the_table_leaves_stored_events_alone(using, study):
    rows = [{**row, "participant_id": study.participant_ids[i]} for i, row in enumerate(EVENTS)]
    import_study(_with_events(study, rows), "keeps-events", ACTOR, using=using)
    assert import_study(study, "keeps-events", ACTOR, using=using).unchanged
    assert len(export_study("keeps-events", using=using).adverse_events) == 2


def test_vital_signs_and_medications_round_trip(using, study):
    from dataclasses import replace

    pid = study.participant_ids[0]
    vitals = pd.DataFrame([{"participant_id": pid, "session": "1", "measured_at": "2024-03-01T09:00",
                            "minutes_after_dose": "0", "systolic_bp": "121", "diastolic_bp": "79", "heart_rate": "70"},
                           {"participant_id": pid, "session": "1", "measured_at": "2024-03-01T10:30",
                            "minutes_after_dose": "90", "systolic_bp": "146", "diastolic_bp": None, "heart_rate": "81"}],
                          dtype="string")
    medications = pd.DataFrame([{"participant_id": pid, "name": "Sertraline", "dose": "50 mg", "start": "2023-01-01",
                                 "stop": "2024-01-10", "indication": "depression"}], dtype="string")
    with_records = replace(study, vital_signs=vitals, concomitant_medications=medications)
    summary = import_study(with_records, "records", ACTOR, using=using)
    assert (summary.created["vital_signs"], summary.created["medications"]) == (2, 1)
    exported = export_study("records", using=using)
    pd.testing.assert_frame_equal(exported.vital_signs, with_records.vital_signs)
    assert exported.concomitant_medications.to_dict("records") == with_records.concomitant_medications.to_dict("records")
    assert import_study(exported, "records", ACTOR, using=using).unchanged
