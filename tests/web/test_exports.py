"""Exports from the web app: tidy, REDCap, de-identified (identifiers dropped, dates shifted), audited."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pandas as pd
import pytest
from django.urls import reverse

from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m

from .webapp import STUDY, client_for

pytestmark = pytest.mark.django_db


def download(client, kind):
    return client.post(reverse("capture:export_download", kwargs={"study": STUDY, "kind": kind}))


def read_zip(response) -> dict[str, pd.DataFrame | str]:
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    out = {}
    for name in archive.namelist():
        data = archive.read(name)
        out[name] = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False) if name.endswith(".csv") \
            else data.decode()
    return out


def test_tidy_export_is_the_contract(client, accounts, web_study):
    response = download(client_for(client, accounts, "investigator"), "tidy")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"] and "levin2024-tidy-" in response["Content-Disposition"]
    files = read_zip(response)
    assert set(files) == {"protocol.yaml", "participants.csv", "responses.csv", "dosing_sessions.csv"}
    assert "name" in files["participants.csv"].columns  # identifiers included for investigators
    event = AuditEvent.objects.filter(action="export").get()
    assert event.actor == "user:investigator" and event.study_id == web_study.pk
    assert event.new["format"] == "tidy" and event.new["participants"] == 6


def test_redcap_export(client, accounts):
    files = read_zip(download(client_for(client, accounts, "admin"), "redcap"))
    assert {"data_dictionary.csv", "records.csv", "mapping.yaml"} <= set(files)
    assert AuditEvent.objects.filter(action="export", new__format="redcap").exists()


def test_deidentified_export_drops_identifiers_and_shifts_each_participants_dates(client, accounts, web_study):
    client_for(client, accounts, "monitor")
    original = read_zip(download(client_for(client, accounts, "investigator"), "tidy"))
    client.logout()
    first = read_zip(download(client_for(client, accounts, "monitor"), "deidentified"))
    participants = first["participants.csv"]
    identifiers = {"name", "email", "date_of_birth", "mrn"}
    assert not identifiers & set(participants.columns)
    assert "age" in participants.columns  # covariates stay
    text = "\n".join(frame.to_csv() for frame in first.values() if isinstance(frame, pd.DataFrame))
    for name in original["participants.csv"]["name"]:
        assert name not in text

    def days(frame, column):
        return frame.assign(day=[date.fromisoformat(v[:10]) for v in frame[column]])

    before, after = days(original["responses.csv"], "administered_at"), days(first["responses.csv"], "administered_at")
    shift = (after["day"] - before["day"]).map(lambda d: d.days)
    per_participant = shift.groupby(after["participant_id"]).unique()
    assert all(len(s) == 1 and s[0] != 0 for s in per_participant)  # one shift per participant, never zero
    assert per_participant.map(lambda s: s[0]).nunique() > 1  # not one shift for everybody
    dosing_before, dosing_after = days(original["dosing_sessions.csv"], "date"), days(first["dosing_sessions.csv"], "date")
    dosing_shift = (dosing_after["day"] - dosing_before["day"]).map(lambda d: d.days)
    for pid, value in zip(dosing_after["participant_id"], dosing_shift, strict=True):
        assert value == per_participant[pid][0]  # the same shift for all of a participant's dates
    # The shifts are kept: a second export shifts the same way.
    client.logout()
    second = read_zip(download(client_for(client, accounts, "admin"), "deidentified"))
    assert second["responses.csv"]["administered_at"].tolist() == first["responses.csv"]["administered_at"].tolist()
    assert m.DateShift.objects.filter(participant__study=web_study).count() == 6
    # Their creation is audited without the secret value.
    shifts = AuditEvent.objects.filter(model="capture.dateshift")
    assert shifts.count() == 6 and all(e.new["offset_days"] == "secret" for e in shifts)


@pytest.mark.parametrize(("role", "kind", "status"), [
    ("admin", "tidy", 200), ("investigator", "redcap", 200), ("monitor", "deidentified", 200),
    ("monitor", "tidy", 403), ("monitor", "redcap", 403),
    ("facilitator", "deidentified", 403), ("facilitator", "tidy", 403), ("outsider", "deidentified", 403),
    ("admin", "spss", 404),
])
def test_who_may_download_what(client, accounts, role, kind, status):
    assert download(client_for(client, accounts, role), kind).status_code == status


def test_exports_are_post_only_and_the_page_lists_what_the_role_may_have(client, accounts):
    client_for(client, accounts, "monitor")
    path = reverse("capture:export_download", kwargs={"study": STUDY, "kind": "deidentified"})
    assert client.get(path).status_code == 405
    page = client.get(reverse("capture:exports", kwargs={"study": STUDY}))
    assert page.status_code == 200 and [k for k, _ in page.context["kinds"]] == ["deidentified", "dsmb_blinded"]
    assert not AuditEvent.objects.filter(action="export").exists()
