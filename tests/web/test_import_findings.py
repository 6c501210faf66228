"""Issue 11's numbered findings that concern storage, reproduced on SQLite and PostgreSQL.

The others are reproduced where their code lives: the truncated and malformed files of finding 2
and 6 in ``tests/study/test_csv_input.py`` and ``tests/protocol``, the REDCap schedule (finding 4)
in ``tests/study/test_redcap.py``, injection (7) in ``tests/study/test_spreadsheet.py``, the audit
chain (8) in ``test_audit_chain.py``, the load (9) in ``test_no_writes_on_get.py`` and
``benchmarks/bench_web_load.py``, security (10) in ``test_accounts.py`` and ``test_two_factor.py``.
"""

from __future__ import annotations

import pandas as pd
import pytest

from alliance.study import Study, StudyDataError, load, save
from alliance.study.formats.redcap import read_redcap, write_redcap
from alliance.web.capture import models as m
from alliance.web.capture.storage import DeletionsNotAllowed, export_study, import_study

from .conftest import make_study
from .test_storage import snapshot

ACTOR = "test:findings"


def test_finding_1_reimport_after_deleting_a_line_and_again_the_original(using, study_dir, tmp_path):
    study = load(study_dir)
    import_study(study, "s", ACTOR, using=using)
    lines = (study_dir / "responses.csv").read_text().splitlines(keepends=True)
    edited = tmp_path / "edited"
    save(study, edited)
    (edited / "responses.csv").write_text("".join(lines[:10] + lines[11:]))
    smaller = import_study(load(edited), "s", ACTOR, using=using, allow_deletions=True)
    assert smaller.deleted == {"responses": 1}
    restored = import_study(study, "s", ACTOR, using=using)  # crashed with KeyError "['pk'] not in index"
    assert restored.created == {"responses": 1} and not restored.deleted
    assert import_study(study, "s", ACTOR, using=using).unchanged


def test_finding_2_a_truncated_file_never_reaches_the_database(using, study_dir):
    study = load(study_dir)
    import_study(study, "s", ACTOR, using=using)
    before = snapshot(using)
    data = (study_dir / "responses.csv").read_bytes()
    (study_dir / "responses.csv").write_bytes(data[: len(data) // 3])
    with pytest.raises(StudyDataError) as cut:
        load(study_dir)
    assert "cut off" in str(cut.value) or "fields" in str(cut.value)
    participants = (study_dir / "participants.csv").read_bytes()
    (study_dir / "participants.csv").write_bytes(participants[:-2])  # "53\n" → "5": a short last row
    with pytest.raises(StudyDataError):
        load(study_dir)
    assert snapshot(using) == before


def test_finding_2_a_short_file_that_parses_is_refused_as_a_deletion(using, study):
    import_study(study, "s", ACTOR, using=using)
    before = snapshot(using)
    kept = study.responses.iloc[: len(study.responses) // 10]
    with pytest.raises(DeletionsNotAllowed) as refused:
        import_study(Study(study.protocol, study.participants, kept, study.dosing_sessions), "s", ACTOR, using=using)
    assert f"{len(study.responses) - len(kept):,} answers" in str(refused.value)
    assert snapshot(using) == before


def test_finding_3_a_redcap_round_trip_keeps_every_dosing_session(using, study, tmp_path):
    import_study(study, "s", ACTOR, using=using)
    n_sessions = m.DosingSession.objects.using(using).count()
    assert n_sessions == 12
    write_redcap(export_study("s", using), tmp_path)
    back = read_redcap(tmp_path / "data_dictionary.csv", tmp_path / "records.csv", tmp_path / "mapping.yaml",
                       protocol=study.protocol)
    again = import_study(back, "s", ACTOR, using=using)  # deleted 60 of 60 dosing sessions before
    assert again.unchanged and m.DosingSession.objects.using(using).count() == n_sessions


def test_finding_5_enrolment_dates_are_stored_and_exported(using, study):
    import_study(study, "s", ACTOR, using=using)
    stored = dict(m.Participant.objects.using(using).values_list("participant_id", "enrolled_on"))
    assert stored["P001"].isoformat() == "2024-01-01" and stored["P002"] is None
    assert sum(d is not None for d in stored.values()) == 5
    exported = export_study("s", using).participants
    pd.testing.assert_series_equal(exported["enrolled_on"], study.participants["enrolled_on"])
    # a change of date is a change; files without the column leave the stored dates alone
    moved = study.participants.copy()
    moved.loc[0, "enrolled_on"] = "2024-02-01"
    changed = import_study(Study(study.protocol, moved, study.responses, study.dosing_sessions), "s", ACTOR,
                           using=using)
    assert changed.changed == {"participants": 1}
    bare = Study(study.protocol, study.participants.drop(columns="enrolled_on"), study.responses,
                 study.dosing_sessions)
    import_study(bare, "s", ACTOR, using=using)
    assert m.Participant.objects.using(using).get(participant_id="P001").enrolled_on.isoformat() == "2024-02-01"


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("age", "inf", "is not a finite number"),
    ("weight_kg", "1e309", "is not a finite number"),
    ("participant_id", "P/007", "is not a valid participant id"),
    ("site", "site\x00A", "holds a control character"),
    ("facilitator_ids", "F1;F 2", "holds a facilitator id that is not valid"),
    ("enrolled_on", "2024-02-30", "is not an enrolment date"),
])
def test_finding_6_bad_values_are_refused_with_file_row_and_column_before_the_database(
        using, study_dir, column, value, reason):
    import_study(load(study_dir), "s", ACTOR, using=using)
    before = snapshot(using)
    participants = pd.read_csv(study_dir / "participants.csv", dtype=str, keep_default_na=False)
    participants.loc[2, column] = value
    participants.to_csv(study_dir / "participants.csv", index=False)
    with pytest.raises(StudyDataError) as refused:
        load(study_dir)
    problems = [p for p in refused.value.problems if p.column == column and p.file.endswith("participants.csv")]
    assert problems and problems[0].row == 4 and problems[0].reason == reason
    assert str(study_dir / "participants.csv") == problems[0].file
    assert snapshot(using) == before


def test_finding_6_a_dose_of_1e309_is_refused_before_the_database(using, study):
    import_study(study, "s", ACTOR, using=using)
    before = snapshot(using)
    dosing = study.dosing_sessions.astype({"amount": object})
    dosing.loc[0, "amount"] = "1e309"
    with pytest.raises(StudyDataError) as refused:
        import_study(Study(study.protocol, study.participants, study.responses, dosing), "s", ACTOR, using=using)
    (problem,) = refused.value.problems
    assert (problem.file, problem.row, problem.column) == ("dosing_sessions.csv", 2, "amount")
    assert snapshot(using) == before


def test_make_study_uses_every_optional_column():
    assert {"site", "facilitator_ids", "enrolled_on"} <= set(make_study().participants.columns)


@pytest.mark.django_db
def test_an_import_raises_alerts_and_a_deleted_participant_takes_its_alerts_with_consent(study):
    import copy

    from alliance.protocol import parse_protocol
    from alliance.web.audit.models import AuditEvent
    from alliance.web.monitor.models import Alert

    # make_study's dates are long past: answers older than historical_after_days raise no alert;
    # this test needs a participant with alerts, so the protocol raises them whatever their age.
    raw = copy.deepcopy(study.protocol.to_dict())
    raw["alerts"]["historical_after_days"] = None
    study = Study(parse_protocol(raw), study.participants, study.responses, study.dosing_sessions)
    import_study(study, "s", ACTOR)  # the default database: the monitor app's alerts live there
    alerts = Alert.objects.filter(participant__participant_id="P006")
    n = alerts.count()
    assert n > 0  # missed assessments, flagged answers
    keep = study.participants["participant_id"] != "P006"
    smaller = Study(study.protocol, study.participants[keep].reset_index(drop=True),
                    study.responses[study.responses["participant_id"] != "P006"].reset_index(drop=True),
                    study.dosing_sessions[study.dosing_sessions["participant_id"] != "P006"].reset_index(drop=True))
    with pytest.raises(DeletionsNotAllowed) as refused:
        import_study(smaller, "s", ACTOR)
    assert refused.value.summary.deleted["alerts"] == n and f"{n} alert" in str(refused.value)
    done = import_study(smaller, "s", ACTOR, allow_deletions=True)
    assert done.deleted["alerts"] == n and not alerts.exists()
    deleted = AuditEvent.objects.filter(model="monitor.alert", action="delete")
    assert deleted.count() == n and {e.actor for e in deleted} == {ACTOR}
    assert all(e.old["participant"] == "P006" and e.old["reason"] for e in deleted)
