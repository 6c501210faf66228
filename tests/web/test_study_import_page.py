"""The web import page: upload, the change shown first, deletions only after an explicit confirmation.

Issue 11, item 1: "An import that would delete stored records is refused, naming the counts,
unless the user passes --allow-deletions (web: an explicit confirmation step)".
"""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from alliance.study import Study, save
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture import uploads
from alliance.web.capture.storage import export_study, import_study

from .conftest import make_study
from .webapp import STUDY, client_for

URL = reverse("capture:study_import", kwargs={"study": STUDY})


def files_of(study: Study, tmp_path, *, dosing: bool = True) -> dict[str, bytes]:
    save(study, tmp_path / "files")
    names = ["participants.csv", "responses.csv"] + (["dosing_sessions.csv"] if dosing else [])
    return {name: (tmp_path / "files" / name).read_bytes() for name in names}


def upload(client, files: dict[str, bytes]):
    data = {"action": "preview"}
    for name, content in files.items():
        data[name.removesuffix(".csv")] = SimpleUploadedFile(name, content, content_type="text/csv")
    return client.post(URL, data)


def token_of(response) -> str:
    return response.context["token"]


def stored_counts() -> dict[str, int]:
    return {"participants": m.Participant.objects.count(), "answers": m.ItemResponse.objects.count(),
            "dosing": m.DosingSession.objects.count(), "audit": AuditEvent.objects.count()}


def without(study: Study, pid: str) -> Study:
    keep = study.participants["participant_id"] != pid
    return Study(study.protocol, study.participants[keep].reset_index(drop=True),
                 study.responses[study.responses["participant_id"] != pid].reset_index(drop=True),
                 study.dosing_sessions[study.dosing_sessions["participant_id"] != pid].reset_index(drop=True))


@pytest.mark.django_db
def test_the_same_files_change_nothing_and_offer_no_import(client, accounts, tmp_path):
    client = client_for(client, accounts, "admin")
    assert client.get(URL).status_code == 200
    response = upload(client, files_of(make_study(), tmp_path))
    assert response.status_code == 200 and response.context["unchanged"]
    assert b"changes nothing" in response.content and b'value="import"' not in response.content


@pytest.mark.django_db
def test_deletions_are_shown_and_need_the_box_ticked(client, accounts, tmp_path):
    client = client_for(client, accounts, "admin")
    before = stored_counts()
    response = upload(client, files_of(without(make_study(), "P006"), tmp_path))
    assert response.status_code == 200
    rows = {row["label"]: row for row in response.context["rows"]}
    assert rows["Participants"]["deleted"] == 1 and rows["Dosing sessions"]["deleted"] == 2
    assert b'name="confirm_deletions"' in response.content
    assert stored_counts() == before  # the preview wrote nothing
    token = token_of(response)

    refused = client.post(URL, {"action": "import", "token": token})
    assert refused.status_code == 400 and b"tick the box" in refused.content
    assert stored_counts() == before

    done = client.post(URL, {"action": "import", "token": token, "confirm_deletions": "yes"})
    assert done.status_code == 302
    assert not m.Participant.objects.filter(participant_id="P006").exists()
    deleted = AuditEvent.objects.filter(action="delete", model="capture.participant").get()
    assert deleted.actor == "web:import" and deleted.user_id == accounts.admin.pk
    assert uploads._folder(token) is None  # the staged files are removed after the import
    again = client.post(URL, {"action": "import", "token": token, "confirm_deletions": "yes"})
    assert again.status_code == 302 and m.Participant.objects.count() == 5


@pytest.mark.django_db
def test_additions_import_without_a_box(client, accounts, tmp_path):
    client = client_for(client, accounts, "admin")
    import_study(without(make_study(), "P006"), STUDY, "test", allow_deletions=True)
    response = upload(client, files_of(make_study(), tmp_path))
    assert response.context["deleted"] == 0 and b'name="confirm_deletions"' not in response.content
    assert client.post(URL, {"action": "import", "token": token_of(response)}).status_code == 302
    assert m.Participant.objects.filter(participant_id="P006").exists()


@pytest.mark.django_db
def test_a_truncated_file_is_refused_with_file_and_line_and_nothing_changes(client, accounts, tmp_path):
    client = client_for(client, accounts, "admin")
    files = files_of(make_study(), tmp_path)
    cut = files["responses.csv"][: len(files["responses.csv"]) // 2]
    files["responses.csv"] = cut[: cut.rfind(b",")]  # cut inside a row
    before = stored_counts()
    response = upload(client, files)
    assert response.status_code == 400
    (problem,) = response.context["problems"]
    line = cut.count(b"\n") + 1
    assert problem.startswith(f"responses.csv, row {line}") and "cut off" in problem
    assert b"Nothing was imported" in response.content and stored_counts() == before
    assert "alliance-test-data" not in response.content.decode()  # never the staging folder's path


@pytest.mark.django_db
def test_bad_values_name_the_uploaded_file_name(client, accounts, tmp_path):
    client = client_for(client, accounts, "admin")
    files = files_of(make_study(), tmp_path)
    text = files["participants.csv"].decode().splitlines()
    text[2] = text[2].replace("P002", "P/002", 1)
    data = {"action": "preview", "participants": SimpleUploadedFile("export 2024.csv", "\n".join(text).encode()),
            "responses": SimpleUploadedFile("responses.csv", files["responses.csv"])}
    response = client.post(URL, data)
    assert response.status_code == 400
    assert any(p.startswith("export 2024.csv, row 3, column 'participant_id': value 'P/002'")
               for p in response.context["problems"])


@pytest.mark.django_db
def test_the_stored_data_changing_after_the_preview_is_caught(client, accounts, tmp_path):
    client = client_for(client, accounts, "admin")
    response = upload(client, files_of(without(make_study(), "P006"), tmp_path))
    import_study(without(make_study(), "P005"), STUDY, "someone else", allow_deletions=True)
    before = stored_counts()
    late = client.post(URL, {"action": "import", "token": token_of(response), "confirm_deletions": "yes"})
    assert late.status_code == 409 and b"changed since" in late.content
    assert stored_counts() == before
    rows = {row["label"]: row for row in late.context["rows"]}
    assert rows["Participants"] == {"label": "Participants", "created": 1, "changed": 0, "deleted": 1}


@pytest.mark.django_db
def test_a_token_of_another_session_is_refused(client, accounts, tmp_path, django_user_model):
    admin = client_for(client, accounts, "admin")
    token = token_of(upload(admin, files_of(without(make_study(), "P006"), tmp_path)))
    from django.test import Client

    other = Client()
    other.force_login(accounts.admin)  # the same user, another session
    response = other.post(URL, {"action": "import", "token": token, "confirm_deletions": "yes"})
    assert response.status_code == 302 and m.Participant.objects.filter(participant_id="P006").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["investigator", "facilitator", "monitor", "outsider"])
def test_only_admins_import(client, accounts, tmp_path, role):
    client = client_for(client, accounts, role)
    assert client.get(URL).status_code in (403, 404)
    before = stored_counts()
    assert upload(client, files_of(without(make_study(), "P006"), tmp_path)).status_code in (403, 404)
    assert stored_counts() == before


@pytest.mark.django_db
def test_enrolment_dates_give_imported_participants_a_schedule(client, accounts, tmp_path):
    # Finding 5: "24 participants, of whom 0 have an enrolment date".
    client = client_for(client, accounts, "admin")
    study = make_study()
    assert m.Participant.objects.get(participant_id="P001").enrolled_on.isoformat() == "2024-01-01"
    assert m.Participant.objects.get(participant_id="P002").enrolled_on is None
    detail = client.get(reverse("capture:study_detail", kwargs={"study": STUDY}))
    assert b"1 of 6 participants have no enrolment date" in detail.content
    page = client.get(reverse("capture:participant_detail", kwargs={"study": STUDY, "participant": "P001"}))
    rows = page.context["rows"] if "rows" in page.context else page.context["timeline"]["rows"]
    assert len(rows) == len(study.protocol.timepoints) and rows[0]["timepoint"] == "baseline"
    assert all(r["planned"] is not None for r in rows) and rows[-1]["planned"] > rows[0]["planned"]
    none = client.get(reverse("capture:participant_detail", kwargs={"study": STUDY, "participant": "P002"}))
    assert b"No enrolment date is recorded" in none.content
    # the export carries the dates back
    exported = export_study(STUDY).participants["enrolled_on"]
    assert exported[0] == "2024-01-01" and exported.isna().tolist()[:2] == [False, True]


@pytest.mark.django_db
def test_clearing_a_stored_enrolment_date_counts_as_a_deletion(client, accounts, tmp_path):
    client = client_for(client, accounts, "admin")
    study = make_study()
    study.participants.loc[0, "enrolled_on"] = None
    response = upload(client, files_of(Study(study.protocol, study.participants, study.responses,
                                             study.dosing_sessions), tmp_path))
    rows = {row["label"]: row for row in response.context["rows"]}
    assert rows["Enrolment dates"]["deleted"] == 1 and response.context["deleted"] == 1


@pytest.mark.django_db
def test_files_without_dosing_sessions_leave_the_stored_ones(client, accounts, tmp_path):
    client = client_for(client, accounts, "admin")
    before = m.DosingSession.objects.count()
    response = upload(client, files_of(make_study(), tmp_path, dosing=False))
    assert response.context["unchanged"]
    assert m.DosingSession.objects.count() == before == 12


def test_staging_tokens_are_checked():
    assert uploads._folder("../../etc") is None and uploads._folder("x" * 32) is None
    assert io  # noqa: B018
