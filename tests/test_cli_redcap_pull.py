"""``alliance redcap pull``: a REDCap project through its API into the database, as ``alliance import`` does.

The server is :class:`tests.study.test_redcap_api.FakeRedcap` on 127.0.0.1, answering with
REDCapR's recorded exports of its longitudinal test project; the protocol and mapping read its
patient_morale_questionnaire (pmq1-pmq4) as CEQ items 1-4 (``tests/study/data/redcap_api/``).
The commands run in this process (typer's CliRunner), against the test database.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest
from django.apps import apps
from typer.testing import CliRunner

from alliance.cli import app
from alliance.study.formats.redcap.api import DEFAULT_BATCH_SIZE, DEFAULT_TIMEOUT
from tests.study.test_redcap_api import FakeRedcap

runner = CliRunner()
DATA = Path(__file__).parent / "study" / "data" / "redcap_api"
# The longitudinal project: 3 records (100 and 220 in arm 1, 304 in arm 2), 10 events with the
# questionnaire answered, 4 fields each.
RECORDS, PARTICIPANTS, RESPONSES = 3, 3, 40


@pytest.fixture
def token() -> str:
    return secrets.token_hex(16).upper()


@pytest.fixture
def redcap(token):
    with FakeRedcap(token) as server:
        yield server


@pytest.fixture
def token_file(tmp_path, token) -> Path:
    path = tmp_path / "redcap.token"
    path.write_text(f"{token}\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def pull(redcap, token_file, *extra: str):
    return runner.invoke(app, ["redcap", "pull", "--url", redcap.url, "--token-file", str(token_file),
                               "--study", "pmq", "--protocol", str(DATA / "protocol.yaml"),
                               "--mapping", str(DATA / "mapping.yaml"), *extra])


def capture_models():
    from alliance.web.capture import models

    return models


def stored_rows() -> str:
    """Every row of every table of the app, as text."""
    return "\n".join(repr(list(model.objects.values())) for model in apps.get_models())


@pytest.mark.django_db
def test_dry_run_then_pull_then_a_second_pull_is_unchanged(redcap, token_file):
    m = capture_models()
    dry = pull(redcap, token_file, "--dry-run", "--batch-size", "2")
    assert dry.exit_code == 0, dry.output
    assert "Dry run: importing" in dry.output and "nothing was written" in dry.output
    assert f"pulled {RECORDS} records (18 rows)" in dry.output and "2 of records" in dry.output
    assert not m.Study.objects.exists()
    assert redcap.record_requests() == [["100", "220"], ["304"]]

    done = pull(redcap, token_file, "--batch-size", "2")
    assert done.exit_code == 0, done.output
    assert "Imported" in done.output and "audit events written" in done.output
    study = m.Study.objects.get(name="pmq")
    assert m.Participant.objects.filter(study=study).count() == PARTICIPANTS
    assert m.ItemResponse.objects.count() == RESPONSES
    assert sorted(m.Participant.objects.values_list("participant_id", flat=True)) == ["100", "220", "304"]

    again = pull(redcap, token_file, "--batch-size", "1")
    assert again.exit_code == 0, again.output
    assert "study 'pmq' is unchanged" in again.output
    assert redcap.record_requests()[-3:] == [["100"], ["220"], ["304"]]


@pytest.mark.django_db
def test_a_record_gone_from_redcap_is_deleted_only_with_allow_deletions(redcap, token_file):
    m = capture_models()
    assert pull(redcap, token_file).exit_code == 0
    redcap.records = [row for row in redcap.records if row[0] != "304"]

    refused = pull(redcap, token_file)
    assert refused.exit_code == 1
    assert "--allow-deletions" in refused.output and "nothing was written" in refused.output
    assert m.Participant.objects.count() == PARTICIPANTS

    dry = pull(redcap, token_file, "--dry-run")
    assert dry.exit_code == 0 and "run it with --allow-deletions" in dry.output

    allowed = pull(redcap, token_file, "--allow-deletions")
    assert allowed.exit_code == 0, allowed.output
    assert sorted(m.Participant.objects.values_list("participant_id", flat=True)) == ["100", "220"]


@pytest.mark.django_db
def test_the_token_is_in_no_output_message_log_record_or_database_row(redcap, token, token_file, caplog):
    caplog.set_level(logging.DEBUG)
    results = [pull(redcap, token_file), pull(redcap, token_file, "--dry-run")]
    redcap.mode = "forbidden"
    results.append(pull(redcap, token_file))
    redcap.mode = "login_page"
    results.append(pull(redcap, token_file))
    assert [r.exit_code for r in results] == [0, 0, 1, 1]
    assert any("content=record" in r.getMessage() for r in caplog.records)  # the client did log
    for result in results:
        assert token not in result.stdout and token not in result.stderr
        assert result.exception is None or token not in str(result.exception)
    assert all(token not in r.getMessage() and token not in str(r.args) for r in caplog.records)
    rows = stored_rows()
    assert "cli:redcap pull" in rows  # the audit events were read
    assert token not in rows and token.lower() not in rows


@pytest.mark.django_db
def test_a_login_page_stops_the_pull_before_any_import(redcap, token_file):
    redcap.mode = "login_page"
    result = pull(redcap, token_file)
    assert result.exit_code == 1
    assert f"{redcap.url} (content=project): answered HTTP 200 with an HTML page" in result.output
    assert "Traceback" not in result.output
    assert not capture_models().Study.objects.exists()


@pytest.mark.django_db
def test_a_problem_of_the_data_names_the_apis_answer(redcap, token_file):
    # Without the mapping, the project's fields have none: the message names the records answer.
    result = runner.invoke(app, ["redcap", "pull", "--url", redcap.url, "--token-file", str(token_file),
                                 "--study", "pmq", "--protocol", str(DATA / "protocol.yaml")])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert f"{redcap.url} content=record, row 1, column 'age': REDCap field of form 'demographics' has no mapping" in output
    assert "alliance-redcap-" not in output  # not the deleted temporary files
    assert not capture_models().Study.objects.exists()


@pytest.mark.django_db
def test_a_refused_token_gives_redcaps_error_and_status(redcap, token_file):
    redcap.mode = "forbidden"
    result = pull(redcap, token_file)
    assert result.exit_code == 1
    assert "answered HTTP 403: You do not have permissions to use the API" in result.output


def test_a_server_that_hangs_is_given_up_after_the_timeout(redcap, token_file):
    redcap.mode, redcap.hang_seconds = "hang", 3.0
    result = pull(redcap, token_file, "--timeout", "0.3")
    assert result.exit_code == 1
    assert "(content=project): no answer within 0.3 seconds" in result.output


def test_plain_http_to_another_host_is_refused_before_any_request(redcap, token_file):
    result = runner.invoke(app, ["redcap", "pull", "--url", "http://redcap.example.org/api/", "--token-file",
                                 str(token_file), "--study", "pmq"])
    assert result.exit_code == 1
    assert "plain http to another machine" in result.output
    assert redcap.requests == []


def test_a_token_file_others_can_read_is_refused(redcap, token, token_file):
    token_file.chmod(0o640)
    result = pull(redcap, token_file)
    assert result.exit_code == 1
    assert f"chmod 600 {token_file}" in " ".join(result.output.split())
    assert token not in result.output
    assert redcap.requests == []


def test_a_file_that_is_not_a_token_is_refused_without_showing_it(redcap, token_file):
    token_file.write_text("password=hunter2hunter2\n", encoding="utf-8")
    result = pull(redcap, token_file)
    assert result.exit_code == 1
    assert "does not hold a REDCap API token (23 characters" in result.output
    assert "hunter2" not in result.output
    assert redcap.requests == []


def test_the_command_line_defaults_are_the_clients():
    # typer needs literal defaults (`alliance --help` must not import the client): they must agree.
    help_text = runner.invoke(app, ["redcap", "pull", "--help"]).output
    assert f"default {DEFAULT_BATCH_SIZE})" in help_text and f"default {DEFAULT_TIMEOUT:g})" in help_text
