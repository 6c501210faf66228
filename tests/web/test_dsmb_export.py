"""The DSMB report as a download: blinded for admin, investigators and monitors, unblinded for the admin only, audited."""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from alliance.report.dsmb import data_cutoff
from alliance.study.adverse_events import normalize_adverse_events
from alliance.study.deidentify import shift_dates
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture.exports import export_zip
from alliance.web.capture.recording import user_log
from alliance.web.capture.storage import export_study, import_study

from .conftest import make_study
from .webapp import STUDY, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def safety_study(web_study):
    """``levin2024`` with adverse events on the first dosing day: every participant one, P002's serious."""
    study = make_study()
    first = study.dosing_sessions[study.dosing_sessions["session"] == 1].set_index("participant_id")["date"]
    rows = [{"participant_id": pid, "ae_id": f"AE-{pid}", "term": "Headache", "onset": str(first[pid]),
             "severity": "1", "serious": "no", "relatedness": "probable"} for pid in study.participant_ids]
    rows[1].update({"serious": "yes", "seriousness": "hospitalisation", "severity": "3", "outcome": "recovered",
                    "resolved_on": str(first["P002"])})
    study.adverse_events = normalize_adverse_events(pd.DataFrame(rows, dtype="string"))
    study.validate()
    import_study(study, STUDY, actor="test:setup")
    return study


def download(client, kind):
    return client.post(reverse("capture:export_download", kwargs={"study": STUDY, "kind": kind}))


def pdf_text(content: bytes, tmp_path) -> str | None:
    if not shutil.which("pdftotext"):
        return None
    path = tmp_path / "report.pdf"
    path.write_bytes(content)
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    return " ".join(done.stdout.split())


@pytest.mark.parametrize(("role", "kind", "status"), [
    ("admin", "dsmb_blinded", 200), ("admin", "dsmb_unblinded", 200),
    ("investigator", "dsmb_blinded", 200), ("investigator", "dsmb_unblinded", 403),
    ("monitor", "dsmb_blinded", 200), ("monitor", "dsmb_unblinded", 403),
    ("facilitator", "dsmb_blinded", 403), ("facilitator", "dsmb_unblinded", 403),
    ("outsider", "dsmb_blinded", 403),
])
def test_who_may_have_which_report(client, accounts, safety_study, role, kind, status):
    response = download(client_for(client, accounts, role), kind)
    assert response.status_code == status
    exported = AuditEvent.objects.filter(action="export", new__format=kind)
    assert exported.count() == (1 if status == 200 else 0)
    if status == 200:
        assert response["Content-Type"] == "application/pdf" and response.content.startswith(b"%PDF")
        assert f"{STUDY}-{kind.replace('_', '-')}-" in response["Content-Disposition"]
        assert ".pdf" in response["Content-Disposition"]
        assert exported.get().actor == f"user:{role}"


def test_the_admin_gets_the_arms_and_the_audit_keeps_the_facts(client, accounts, safety_study, tmp_path):
    response = download(client_for(client, accounts, "admin"), "dsmb_unblinded")
    event = AuditEvent.objects.filter(action="export").get()
    assert event.new["format"] == "dsmb_unblinded" and event.new["version"] == "unblinded"
    assert event.new["dates_shifted"] is False
    assert (event.new["participants"], event.new["adverse_events"], event.new["serious_events"]) == (6, 6, 1)
    assert event.new["cutoff"] == data_cutoff(safety_study).isoformat()  # the real dates
    text = pdf_text(response.content, tmp_path)
    if text is not None:
        assert "UNBLINDED — closed session: confidential to the DSMB" in text
        assert all(arm.label in text for arm in safety_study.protocol.arms)


def test_an_investigator_gets_the_blinded_report_from_the_real_dates(client, accounts, safety_study, tmp_path):
    response = download(client_for(client, accounts, "investigator"), "dsmb_blinded")
    event = AuditEvent.objects.filter(action="export").get()
    assert event.new["dates_shifted"] is False and event.new["cutoff"] == data_cutoff(safety_study).isoformat()
    assert not m.DateShift.objects.exists()
    text = pdf_text(response.content, tmp_path)
    if text is not None:
        assert "BLINDED — open session" in text
        for arm in safety_study.protocol.arms:
            assert arm.label not in text and not re.search(rf"\b{arm.id}\b", text, flags=re.IGNORECASE)


def test_a_monitor_gets_the_blinded_report_from_the_shifted_dates(client, accounts, safety_study, tmp_path):
    response = download(client_for(client, accounts, "monitor"), "dsmb_blinded")
    assert response.status_code == 200
    # the date shifts drawn for it are kept, and their creation audited without the secret value
    offsets = dict(m.DateShift.objects.filter(participant__study__name=STUDY)
                   .values_list("participant__participant_id", "offset_days"))
    assert len(offsets) == 6 and AuditEvent.objects.filter(model="capture.dateshift").count() == 6
    shifted = shift_dates(export_study(STUDY), offsets)
    event = AuditEvent.objects.filter(action="export").get()
    assert event.new["dates_shifted"] is True and event.new["version"] == "blinded"
    assert event.new["cutoff"] == data_cutoff(shifted).isoformat()  # the latest shifted date
    text = pdf_text(response.content, tmp_path)
    if text is not None:
        assert "De-identified data: each participant's dates are shifted" in text
        assert all(arm.label not in text for arm in safety_study.protocol.arms)
        assert "Person 1" not in text  # no identifier


def test_the_export_layer_refuses_the_unblinded_report_too(accounts, safety_study):
    study = m.Study.objects.get(name=STUDY)
    for role in ("investigator", "monitor", "facilitator"):
        with pytest.raises(PermissionDenied):
            export_zip(study, "dsmb_unblinded", user_log(accounts[role], study))
    assert not AuditEvent.objects.filter(action="export").exists()


def test_the_page_lists_the_reports_each_role_may_have(client, accounts, safety_study):
    expected = {"admin": ["tidy", "redcap", "deidentified", "dsmb_blinded", "dsmb_unblinded"],
                "investigator": ["tidy", "redcap", "deidentified", "dsmb_blinded"],
                "monitor": ["deidentified", "dsmb_blinded"]}
    for role, kinds in expected.items():
        client.logout()
        page = client_for(client, accounts, role).get(reverse("capture:exports", kwargs={"study": STUDY}))
        assert [kind for kind, _ in page.context["kinds"]] == kinds
