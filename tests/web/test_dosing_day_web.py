"""The dosing-day record in the web app: start and end, who was present, rescue medication, notes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from alliance.web.capture import models as m
from alliance.web.capture.storage import export_study, import_study

from .webapp import OWN, STUDY, client_for

pytestmark = pytest.mark.django_db

SESSION = {"session": "1", "date": "2024-03-10", "compound": "psilocybin", "amount": "25", "unit": "mg",
           "started_at": "09:05", "ended_at": "16:40", "present": "F1;F2;monitor:M1",
           "rescue_medication": "lorazepam 1 mg at 11:20", "setting_notes": "Living-room style suite, eyeshades",
           "music_notes": "Johns Hopkins playlist"}


def _url():
    return reverse("capture:dosing_record", kwargs={"study": STUDY, "participant": OWN})


def test_a_facilitator_records_the_dosing_day_and_it_is_exported_and_imported_back(client, accounts):
    c = client_for(client, accounts, "facilitator")
    assert c.get(_url()).context["form"].initial["present"].startswith("F")  # the participant's facilitators
    response = c.post(_url(), SESSION)
    assert response.status_code == 302, response.content.decode()[:3000]
    stored = m.DosingSession.objects.get(participant__participant_id=OWN, session=1)
    assert (stored.started_at, stored.ended_at, stored.present, stored.rescue_medication) == (
        "09:05", "16:40", "F1;F2;monitor:M1", "lorazepam 1 mg at 11:20")
    tidy = export_study(STUDY)
    row = tidy.dosing_sessions.set_index(["participant_id", "session"]).loc[(OWN, 1)]
    assert (row["started_at"], row["music_notes"]) == ("09:05", "Johns Hopkins playlist")
    # An import of the exported study changes nothing: the record survives a round trip.
    summary = import_study(tidy, STUDY, actor="test")
    assert not summary.changed.get("dosing_sessions") and not summary.deleted.get("dosing_sessions")
    page = c.get(reverse("capture:participant_detail", kwargs={"study": STUDY, "participant": OWN})).content.decode()
    assert "09:05–16:40" in page and "lorazepam 1 mg at 11:20" in page
    # Correcting the session starts from what is stored.
    again = c.get(_url() + "?session=1").context["form"].initial
    assert (again["started_at"], again["setting_notes"]) == ("09:05", SESSION["setting_notes"])


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"ended_at": "08:00"}, "ended_at", "after"),
    ({"present": "F1;nurse:N1"}, "present", "facilitator, monitor, physician"),
    ({"present": "F1;F1"}, "present", "twice"),
])
def test_a_dosing_day_the_contract_refuses_is_shown_at_its_field(client, accounts, change, field, words):
    c = client_for(client, accounts, "facilitator")
    response = c.post(_url(), {**SESSION, **change})
    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors.get(field, []))
    assert words in errors, response.context["form"].errors
    assert not m.DosingSession.objects.filter(participant__participant_id=OWN, session=1,
                                              started_at="09:05").exists()
