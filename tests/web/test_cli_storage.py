"""``alliance import`` and ``alliance export``.

Two ways: in this process with ``typer.testing.CliRunner`` (Django is already configured by the
test run, so the commands use the test database), and in a fresh process with ``DATABASE_URL``
pointing at a temporary SQLite file — the way a user runs them, migrations on first use included.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from alliance.cli import app
from alliance.study import Study, load, save
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m

runner = CliRunner()


@pytest.mark.django_db
def test_import_prints_counts_and_export_writes_the_same_files(study_dir, tmp_path):
    result = runner.invoke(app, ["import", str(study_dir), "--study", "levin"])
    assert result.exit_code == 0, result.output
    assert "participants" in result.output and "responses" in result.output
    assert m.ItemResponse.objects.count() > 0

    again = runner.invoke(app, ["import", str(study_dir), "--study", "levin"])
    assert again.exit_code == 0 and "unchanged" in again.output

    out = tmp_path / "out"
    result = runner.invoke(app, ["export", "levin", "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("protocol.yaml", "participants.csv", "responses.csv", "dosing_sessions.csv"):
        assert (out / name).read_bytes() == (study_dir / name).read_bytes(), name


@pytest.mark.django_db
@pytest.mark.parametrize(("fmt", "written"), [("redcap", "records.csv"), ("parquet", "responses.parquet"),
                                              ("wide", "wide.csv")])
def test_export_other_formats(study_dir, tmp_path, fmt, written):
    assert runner.invoke(app, ["import", str(study_dir), "--study", "levin"]).exit_code == 0
    result = runner.invoke(app, ["export", "levin", "--format", fmt, "--out", str(tmp_path / fmt)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / fmt / written).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("fmt", "suffix"), [("spss", ".sav"), ("stata", ".dta")])
def test_export_statistical_files(study_dir, tmp_path, fmt, suffix):
    assert runner.invoke(app, ["import", str(study_dir), "--study", "levin"]).exit_code == 0
    path = tmp_path / f"measures{suffix}"
    result = runner.invoke(app, ["export", "levin", "--format", fmt, "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert path.stat().st_size > 0


@pytest.mark.django_db
def test_redcap_export_import_export_gives_identical_records(study_dir, tmp_path):
    assert runner.invoke(app, ["import", str(study_dir), "--study", "levin"]).exit_code == 0
    first, second = tmp_path / "first", tmp_path / "second"
    assert runner.invoke(app, ["export", "levin", "--format", "redcap", "--out", str(first)]).exit_code == 0
    result = runner.invoke(app, ["import", str(first), "--format", "redcap", "--study", "from_redcap"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["export", "from_redcap", "--format", "redcap", "--out", str(second)]).exit_code == 0
    for path in sorted(first.iterdir()):
        assert (second / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.django_db
def test_bad_data_is_refused_with_file_row_and_column_and_nothing_is_written(study_dir):
    responses = study_dir / "responses.csv"
    lines = responses.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(",baseline,", ",week2,")
    responses.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = runner.invoke(app, ["import", str(study_dir), "--study", "levin"])
    assert result.exit_code == 1
    assert "responses.csv, row 4, column 'timepoint'" in result.output
    assert "week2" in result.output and "baseline" in result.output  # the value and the allowed ones
    assert "Traceback" not in result.output
    assert not m.Study.objects.exists()


@pytest.mark.django_db
def test_export_errors_are_one_line_and_exit_1(tmp_path):
    result = runner.invoke(app, ["export", "nope", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "no study named 'nope'" in result.output
    result = runner.invoke(app, ["export", "nope", "--format", "xls", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "unknown format 'xls'" in result.output


def snapshot() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (m.Study, m.Participant, m.DosingSession, m.Administration, m.ItemResponse, AuditEvent)}


def drop_response_line(study_dir, line: int) -> str:
    """Delete one line of responses.csv; returns the original text."""
    responses = study_dir / "responses.csv"
    original = responses.read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)
    responses.write_text("".join(lines[:line] + lines[line + 1:]), encoding="utf-8")
    return original


@pytest.mark.django_db
def test_import_that_deletes_needs_allow_deletions_and_dry_run_writes_nothing(study_dir):
    assert runner.invoke(app, ["import", str(study_dir), "--study", "levin"]).exit_code == 0
    original = drop_response_line(study_dir, 4)
    before = snapshot()

    dry = runner.invoke(app, ["import", str(study_dir), "--study", "levin", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Dry run" in dry.output and "responses" in dry.output and "nothing was written" in dry.output
    assert "--allow-deletions" in dry.output
    assert snapshot() == before

    refused = runner.invoke(app, ["import", str(study_dir), "--study", "levin"])
    assert refused.exit_code == 1
    assert "would delete 1 answer" in refused.output and "--allow-deletions" in refused.output
    assert refused.output.count("nothing was written") == 1 and "Traceback" not in refused.output
    assert snapshot() == before

    allowed = runner.invoke(app, ["import", str(study_dir), "--study", "levin", "--allow-deletions"])
    assert allowed.exit_code == 0, allowed.output
    assert "Imported" in allowed.output and "audit events written" in allowed.output
    assert m.ItemResponse.objects.count() == before["ItemResponse"] - 1

    # Fix the file, re-import: the answer comes back (this crashed with KeyError "['pk'] not in index").
    (study_dir / "responses.csv").write_text(original, encoding="utf-8")
    restored = runner.invoke(app, ["import", str(study_dir), "--study", "levin"])
    assert restored.exit_code == 0, restored.output
    assert m.ItemResponse.objects.count() == before["ItemResponse"]
    assert "unchanged" in runner.invoke(app, ["import", str(study_dir), "--study", "levin", "--dry-run"]).output


@pytest.mark.django_db
def test_dry_run_of_a_new_study_prints_what_it_would_create(study_dir):
    result = runner.invoke(app, ["import", str(study_dir), "--study", "levin", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "participants" in result.output and "nothing was written" in result.output
    assert "--allow-deletions" not in result.output
    assert not m.Study.objects.exists() and not AuditEvent.objects.exists()


def test_import_of_a_missing_directory_fails_clearly(tmp_path):
    result = runner.invoke(app, ["import", str(tmp_path / "missing"), "--study", "x"])
    assert result.exit_code == 1
    assert "is not a directory" in result.output and "Traceback" not in result.output


# -- in a fresh process, as a user runs it ----------------------------------------------------------

def alliance(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alliance.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)


def test_cli_with_database_url_creates_migrates_and_round_trips(study_dir, tmp_path):
    database = tmp_path / "data" / "trial.sqlite3"
    database.parent.mkdir()
    env = {"DATABASE_URL": f"sqlite:///{database}", "ALLIANCE_DATA_DIR": str(tmp_path / "home"),
           "DJANGO_SETTINGS_MODULE": "alliance.web.settings"}

    imported = alliance("import", str(study_dir), "--study", "levin", env=env)
    assert imported.returncode == 0, imported.stderr
    assert str(database) in imported.stdout
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM capture_itemresponse").fetchone()[0] > 0
        triggers = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert triggers == {"capture_auditevent_no_update", "capture_auditevent_no_delete"}

    exported = alliance("export", "levin", "--out", str(tmp_path / "out"), env=env)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "out" / "responses.csv").read_bytes() == (study_dir / "responses.csv").read_bytes()


def test_cli_refuses_an_unsupported_database_url(tmp_path):
    result = alliance("export", "levin", "--out", str(tmp_path / "out"),
                      env={"DATABASE_URL": "mysql://user@localhost/db", "ALLIANCE_DATA_DIR": str(tmp_path),
                           "DJANGO_SETTINGS_MODULE": "alliance.web.settings"})
    assert result.returncode == 1
    assert "DATABASE_URL must start with sqlite:/// or postgresql://" in result.stderr
    assert "Traceback" not in result.stderr


KILLED_AT_THE_END = """\
import os, signal, sys
from alliance.web import django_setup
django_setup()
from alliance.web.audit.log import AuditLog
write = AuditLog.write
def write_then_die(self, using="default"):
    write(self, using)  # every row and audit event of the import is written, not yet committed
    os.kill(os.getpid(), signal.SIGKILL)
AuditLog.write = write_then_die
from alliance.cli import app
sys.argv = ["alliance", *sys.argv[1:]]
app()
"""


@pytest.mark.transactional
def test_kill_9_in_the_middle_of_an_import_leaves_the_study_as_it_was(using, study_dir, tmp_path):
    """One transaction: a process killed after writing everything but the commit leaves no trace."""
    from django.db import connections

    if using == "postgres":
        db = connections[using].settings_dict  # the test database of this run
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        url = f"postgresql://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    else:
        url = f"sqlite:///{tmp_path / 'trial.sqlite3'}"
    env = {"DATABASE_URL": url, "ALLIANCE_DATA_DIR": str(tmp_path / "home"),
           "DJANGO_SETTINGS_MODULE": "alliance.web.settings"}
    assert alliance("import", str(study_dir), "--study", "levin", env=env).returncode == 0
    original = {name: (study_dir / name).read_bytes() for name in ("participants.csv", "responses.csv")}

    # The edit deletes participant P006 (with its answers and dosing sessions) and one more answer.
    full = load(study_dir)
    keep = full.participants["participant_id"] != "P006"
    responses = full.responses[full.responses["participant_id"] != "P006"].drop(index=4)
    edited = tmp_path / "edited"
    save(Study(full.protocol, full.participants[keep], responses,
               full.dosing_sessions[full.dosing_sessions["participant_id"] != "P006"]), edited)
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_THE_END, "import", str(edited), "--study", "levin",
                             "--allow-deletions"], env={**os.environ, **env}, capture_output=True, text=True,
                            timeout=300)
    assert killed.returncode == -9, killed.stderr

    exported = alliance("export", "levin", "--out", str(tmp_path / "out"), env=env)
    assert exported.returncode == 0, exported.stderr
    for name, content in original.items():
        assert (tmp_path / "out" / name).read_bytes() == content, name
    # The same import, not killed, does change the study: the kill above undid real writes.
    assert alliance("import", str(edited), "--study", "levin", "--allow-deletions", env=env).returncode == 0
    assert alliance("export", "levin", "--out", str(tmp_path / "after"), env=env).returncode == 0
    assert (tmp_path / "after" / "responses.csv").read_bytes() == (edited / "responses.csv").read_bytes()


@pytest.mark.django_db
def test_import_warns_of_protocol_deviations_and_keeps_the_data(tmp_path):
    from .conftest import make_study

    study = make_study()
    responses = study.responses.copy()
    late = (responses["participant_id"] == "P001") & (responses["timepoint"] == "prep")
    responses.loc[late, "administered_at"] = "2024-12-01"  # P001's session 1 is on 2024-04-10
    save(Study(study.protocol, study.participants, responses, study.dosing_sessions), tmp_path / "late")
    result = runner.invoke(app, ["import", str(tmp_path / "late"), "--study", "late", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "protocol deviation(s)" in result.output and "after dosing (excluded from the analysis)" in result.output
    assert "P001 prep" in result.output and "results.json" in result.output
    assert load(tmp_path / "late").responses["administered_at"][late].eq("2024-12-01").all()
