"""Questionnaire forms: private links, drafts, scoring on submit, errors, clinician-rated forms, wording."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture import recording, signals

from .webapp import STUDY, client_for

pytestmark = pytest.mark.django_db

NEW = "P300"  # enrolled in the fixture below, nothing answered yet; facilitator F1 (user "facilitator")

# A hand-worked WAI-SR (Hatcher & Gillaspy 2006 key; sums):
#   items 1-12:  4 5 3 4 5 2 4 3 5 4 3 4
#   goal  = items 4, 6, 8, 11 = 4 + 2 + 3 + 3 = 12
#   task  = items 1, 2, 10, 12 = 4 + 5 + 4 + 4 = 17
#   bond  = items 3, 5, 7, 9 = 3 + 5 + 4 + 5 = 17
#   total = 12 + 17 + 17 = 46
WAI = [4, 5, 3, 4, 5, 2, 4, 3, 5, 4, 3, 4]


def wai_answers(values=WAI, skip=()):
    return {f"wai_sr_{k}": ("" if k in skip else str(v)) for k, v in enumerate(values, start=1)}


@pytest.fixture
def participant(accounts, web_study):
    log = recording.AuditLog(actor="test:setup", study=web_study)
    new = recording.enrol(web_study, participant_id=NEW, arm=m.Arm.objects.get(study=web_study, code="immediate"),
                          enrolled_on=timezone.localdate() - timedelta(days=20),
                          facilitators=[m.Facilitator.objects.get(study=web_study, facilitator_id="F1")], log=log)
    log.write()
    return new


@pytest.fixture
def submitted(monkeypatch, received):
    """The administrations the capture app announced with its ``administration_submitted`` signal.

    The monitor app's receiver stays connected but raises no alerts meanwhile, so that these tests
    see the capture app's own audit events only.
    """
    monkeypatch.setattr("alliance.web.monitor.receivers.raise_alerts", lambda participant: [])
    return received(signals.administration_submitted, "administration")


def make_link(client, accounts, timepoint="prep", instrument="wai_sr", role="facilitator", days=7):
    client_for(client, accounts, role)
    response = client.post(reverse("capture:link_create", kwargs={"study": STUDY, "participant": NEW}),
                           {"form": f"{timepoint}:{instrument}", "days": days})
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    client.logout()
    return response.context["url"].removeprefix("http://testserver")


def administration(timepoint="prep", instrument="wai_sr"):
    return m.Administration.objects.filter(participant__participant_id=NEW, timepoint__code=timepoint,
                                           instrument=instrument).first()


def answers_of(found):
    return dict(m.ItemResponse.objects.filter(administration=found).values_list("item", "value"))


# -- private links -------------------------------------------------------------------------------

def test_a_link_is_random_shown_once_and_stored_only_as_a_hash(client, accounts, participant):
    path = make_link(client, accounts)
    token = path.split("/")[2]
    assert len(token) >= 43  # token_urlsafe(32): 256 random bits
    link = m.PrivateLink.objects.get()
    assert link.token_sha256 == recording.token_digest(token) and token not in link.token_sha256
    assert link.expires_at - link.created_at == timedelta(days=7)
    assert AuditEvent.objects.filter(model="capture.privatelink", action="create").exists()
    # The participant needs no account.
    page = client.get(path)
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    text = page.content.decode()
    assert text.count('type="radio"') == 12 * 5
    assert "Item 1" in text and "Fairly often" in text  # no licensed wording installed: numbers and anchors


def test_link_page_offers_only_self_reports(client, accounts, participant):
    client_for(client, accounts, "facilitator")
    page = client.get(reverse("capture:link_create", kwargs={"study": STUDY, "participant": NEW}))
    choices = dict(page.context["form"].fields["form"].choices)
    assert "prep:wai_sr" in choices and "baseline:grid_hamd17" not in choices


def test_wrong_token_is_404(client, participant):
    assert client.get(reverse("capture:private_form", kwargs={"token": "x" * 43})).status_code == 404


def test_expired_link_is_410_with_a_clear_page(client, accounts, participant):
    path = make_link(client, accounts)
    m.PrivateLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(path)
    assert response.status_code == 410 and b"This link has expired" in response.content
    posted = client.post(path, {**wai_answers(), "_action": "submit"})
    assert posted.status_code == 410 and administration() is None


@override_settings(PRIVATE_LINK_DAYS=3)
def test_link_lifetime_is_configurable(client, accounts, participant):
    client_for(client, accounts, "facilitator")
    page = client.get(reverse("capture:link_create", kwargs={"study": STUDY, "participant": NEW}))
    assert page.context["form"].fields["days"].initial == 3


def test_submit_scores_stores_audits_and_closes_the_link(client, accounts, participant, submitted):
    path = make_link(client, accounts)
    before = AuditEvent.objects.count()
    response = client.post(path, {**wai_answers(), "_action": "submit"})
    assert response.status_code == 200 and b"Thank you" in response.content
    found = administration()
    assert found.status == "submitted" and found.rater == ""
    assert date.fromisoformat(found.administered_at[:10]) == timezone.now().date()
    assert {k: found.scores[k] for k in ("total", "goal", "task", "bond")} == \
        {"total": 46.0, "goal": 12.0, "task": 17.0, "bond": 17.0}
    assert answers_of(found) == {f"wai_sr_{k}": float(v) for k, v in enumerate(WAI, start=1)}
    assert submitted == [found]
    events = list(AuditEvent.objects.order_by("id")[before:])
    kinds = [(e.model, e.action) for e in events]
    assert kinds.count(("capture.itemresponse", "create")) == 12
    assert ("capture.administration", "create") in kinds and ("capture.administration", "change") in kinds
    assert ("capture.privatelink", "change") in kinds
    change = next(e for e in events if e.model == "capture.administration" and e.action == "change")
    assert change.old["status"] == "draft" and change.new["status"] == "submitted" and change.new["scores"]["total"] == 46
    assert all(e.actor.startswith("private-link:") and e.user_id is None for e in events)
    # Used: the link no longer opens the form.
    again = client.get(path)
    assert again.status_code == 410 and b"This form has been submitted" in again.content
    assert client.post(path, {**wai_answers(), "_action": "submit"}).status_code == 410


def test_a_missing_item_is_prorated_by_the_instruments_rule(client, accounts, participant):
    # Item 6 (goal) left out: total = (46 - 2) x 12 / 11 = 48; goal = (4 + 3 + 3) x 4 / 3 = 13.33…
    path = make_link(client, accounts)
    assert client.post(path, {**wai_answers(skip=(6,)), "_action": "submit"}).status_code == 200
    scores = administration().scores
    assert scores["total"] == pytest.approx(48.0) and scores["goal"] == pytest.approx(40 / 3)
    assert scores["task"] == 17.0 and scores["bond"] == 17.0


def test_too_few_answers_to_score_keeps_a_draft(client, accounts, participant, submitted):
    path = make_link(client, accounts)
    response = client.post(path, {**wai_answers(skip=(1, 2, 3)), "_action": "submit"})
    assert response.status_code == 400
    assert b"Too many items are unanswered" in response.content and b"items 1, 2, 3" in response.content
    found = administration()
    assert found.status == "draft" and len(answers_of(found)) == 9 and not submitted


def test_an_out_of_range_answer_is_shown_and_nothing_is_submitted(client, accounts, participant, submitted):
    path = make_link(client, accounts)
    answers = wai_answers()
    answers["wai_sr_3"] = "7"
    answers["wai_sr_8"] = "2.5"
    response = client.post(path, {**answers, "_action": "submit"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "Item 3: 7 is out of range; allowed: whole numbers 1–5" in text
    assert "Item 8: 2.5 is not an allowed answer; allowed: whole numbers 1–5" in text
    found = administration()
    assert found.status == "draft" and found.scores == {} and not submitted
    stored = answers_of(found)
    assert "wai_sr_3" not in stored and "wai_sr_8" not in stored and len(stored) == 10
    # Corrected, it submits.
    assert client.post(path, {**wai_answers(), "_action": "submit"}).status_code == 200
    assert administration().scores["total"] == 46.0


# -- drafts --------------------------------------------------------------------------------------

def test_a_draft_is_saved_and_comes_back(client, accounts, participant):
    path = make_link(client, accounts)
    half = {f"wai_sr_{k}": str(v) for k, v in enumerate(WAI[:5], start=1)}
    response = client.post(path, {**half, "_action": "draft"})
    assert response.status_code == 302 and response["Location"] == path
    assert administration().status == "draft"
    # Leave, come back with the same link (a new browser): the answers are there.
    client.cookies.clear()
    page = client.get(path)
    assert page.status_code == 200
    shown = {item.id: item.value for item in page.context["items"]}
    assert shown["wai_sr_1"] == "4" and shown["wai_sr_5"] == "5" and shown["wai_sr_6"] == ""
    assert 'name="wai_sr_2" value="5" checked' in page.content.decode()


def test_htmx_autosave_saves_each_change(client, accounts, participant):
    path = make_link(client, accounts)
    response = client.post(path, {"wai_sr_1": "4", "_action": "autosave"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"Draft saved" in response.content
    assert answers_of(administration()) == {"wai_sr_1": 4.0}
    response = client.post(path, {"wai_sr_1": "5", "wai_sr_2": "9", "_action": "autosave"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"Item 2: 9 is out of range" in response.content
    assert answers_of(administration()) == {"wai_sr_1": 5.0}
    change = AuditEvent.objects.filter(model="capture.itemresponse", action="change").latest("id")
    assert change.old == {"value": 4.0} and change.new == {"value": 5.0}
    # Clearing an answer deletes it, with its event.
    client.post(path, {"wai_sr_1": "", "_action": "autosave"}, HTTP_HX_REQUEST="true")
    assert answers_of(administration()) == {}
    assert AuditEvent.objects.filter(model="capture.itemresponse", action="delete").exists()


def test_a_second_link_continues_the_same_draft(client, accounts, participant):
    first = make_link(client, accounts)
    client.post(first, {"wai_sr_1": "3", "_action": "draft"})
    second = make_link(client, accounts)
    page = client.get(second)
    assert {i.id: i.value for i in page.context["items"]}["wai_sr_1"] == "3"
    assert client.post(second, {**wai_answers(), "_action": "submit"}).status_code == 200
    assert client.get(first).status_code == 410  # the form is submitted, whichever link is used


def test_visual_analogue_items_are_number_fields(client, accounts, participant):
    path = make_link(client, accounts, timepoint="session1", instrument="ebi")
    text = client.get(path).content.decode()
    assert text.count('type="number"') == 6 and 'type="radio"' not in text
    assert 'min="0" max="100" step="any"' in text
    response = client.post(path, {**{f"ebi_{k}": "55.5" for k in range(1, 7)}, "ebi_2": "101", "_action": "submit"})
    assert response.status_code == 400 and "Item 2: 101 is out of range; allowed: any number from 0 to 100" in \
        response.content.decode()


# -- clinician-rated forms -----------------------------------------------------------------------

def test_grid_hamd_is_rated_in_the_app_by_the_participants_facilitator(client, accounts, participant, submitted):
    path = reverse("capture:staff_form", kwargs={"study": STUDY, "participant": NEW, "timepoint": "baseline",
                                                 "instrument": "grid_hamd17"})
    client_for(client, accounts, "facilitator")
    page = client.get(path)
    assert page.status_code == 200 and page.content.decode().count('type="radio"') > 17
    # Items 1-3 at 2, the rest at 1: total = 3 x 2 + 14 x 1 = 20.
    ratings = {f"grid_hamd17_{k}": "2" if k <= 3 else "1" for k in range(1, 18)}
    # Without the entry details (rater, blinding) nothing is submitted; the ratings stay as a draft.
    refused = client.post(path, {**ratings, "_action": "submit", "entry-mode": "interview",
                                 "entry-assessed_on": timezone.localdate().isoformat()})
    assert refused.status_code == 400 and administration("baseline", "grid_hamd17").status == "draft"
    text = refused.content.decode()
    assert "Rater: Give the rater" in text and "blind to the participant" in text
    response = client.post(path, {**ratings, "_action": "submit", "entry-mode": "interview",
                                  "entry-assessed_on": timezone.localdate().isoformat(), "entry-rater": "facilitator",
                                  "entry-blinded": "no"})
    assert response.status_code == 302
    found = administration("baseline", "grid_hamd17")
    assert found.status == "submitted" and found.scores["total"] == 20.0 and found.rater == "facilitator"
    assert (found.mode, found.blinded, found.administered_at) == ("interview", False, timezone.localdate().isoformat())
    assert submitted == [found]
    event = AuditEvent.objects.filter(model="capture.administration", action="change").latest("id")
    assert event.actor == "user:facilitator" and event.user_id == accounts.facilitator.pk
    # Rated today, 20 days after enrolment: outside the baseline window (0 to 14 days), so the
    # timeline shows it off schedule with its reason, not done (issue 12) ...
    detail = client.get(reverse("capture:participant_detail", kwargs={"study": STUDY, "participant": NEW}))
    baseline = {r["timepoint"]: r for r in detail.context["rows"]}["baseline"]
    assert baseline["status"] == "deviation" and "(out of window)" in baseline["deviations"][0]
    # ... and done for a participant enrolled 5 days ago.
    m.Participant.objects.filter(participant_id=NEW).update(enrolled_on=timezone.localdate() - timedelta(days=5))
    # the baseline visit also has the C-SSRS screener (issue 16): the rater enters it too
    cssrs = reverse("capture:staff_form", kwargs={"study": STUDY, "participant": NEW, "timepoint": "baseline",
                                                 "instrument": "cssrs_screen"})
    assert client.post(cssrs, {**{f"cssrs_screen_{k}": "0" for k in range(1, 8)}, "_action": "submit",
                               "entry-mode": "interview", "entry-assessed_on": timezone.localdate().isoformat(),
                               "entry-rater": "facilitator", "entry-blinded": "no"}).status_code == 302
    detail = client.get(reverse("capture:participant_detail", kwargs={"study": STUDY, "participant": NEW}))
    assert {r["timepoint"]: r["status"] for r in detail.context["rows"]}["baseline"] == "done"


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("investigator", 200), ("facilitator", 200),
                                              ("facilitator2", 404), ("monitor", 403), ("outsider", 403)])
def test_clinician_form_by_role(client, accounts, participant, role, status):
    path = reverse("capture:staff_form", kwargs={"study": STUDY, "participant": NEW, "timepoint": "baseline",
                                                 "instrument": "grid_hamd17"})
    assert client_for(client, accounts, role).get(path).status_code == status


def test_forms_not_in_the_protocol_are_not_staff_forms(client, accounts, participant):
    client_for(client, accounts, "investigator")
    for timepoint, instrument in (("prep", "grid_hamd17"), ("nowhere", "grid_hamd17"), ("prep", "meq30")):
        path = reverse("capture:staff_form", kwargs={"study": STUDY, "participant": NEW, "timepoint": timepoint,
                                                     "instrument": instrument})
        assert client.get(path).status_code == 404
    # A self-report of the protocol is a staff form too (paper or tablet), without rater or blinding.
    page = client.get(reverse("capture:staff_form", kwargs={"study": STUDY, "participant": NEW, "timepoint": "prep",
                                                            "instrument": "wai_sr"}))
    assert page.status_code == 200 and 'name="entry-mode"' in page.content.decode()
    assert "entry-rater" not in page.content.decode() and "entry-blinded" not in page.content.decode()


# -- wording -------------------------------------------------------------------------------------

def test_a_sites_licensed_wording_is_shown(client, accounts, participant, tmp_path):
    (tmp_path / "wai_sr.yaml").write_text("wai_sr_1: The licensed text of the first item.\n", encoding="utf-8")
    path = make_link(client, accounts)
    with override_settings(WORDING_DIR=tmp_path):
        text = client.get(path).content.decode()
    assert "The licensed text of the first item." in text and "Item 2" in text


# -- protocol uploads and stored protocols: the one bounded YAML reader ------------------------------

ALIAS_BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))


@pytest.mark.parametrize(("content", "reason"), [
    (ALIAS_BOMB.encode(), "once its aliases are expanded"),
    (b"id: x\nx: " + b"[" * 500 + b"]" * 500, "levels deep"),
    ("id: x\nname: Lévin\n".encode("latin-1"), "is not UTF-8 text"),
    (b"id: [unclosed", "is not valid YAML"),
])
def test_an_uploaded_protocol_is_read_by_the_bounded_reader(accounts, content, reason):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from alliance.web.capture.forms import StudyCreateForm

    upload = SimpleUploadedFile("bomb.yaml", content, content_type="application/x-yaml")
    form = StudyCreateForm({"name": "site9", "source": "upload"}, {"protocol_file": upload})
    assert not form.is_valid()
    (problem,) = form.protocol_problems
    assert problem.startswith("bomb.yaml") and reason in problem


def test_a_stored_protocol_is_read_by_the_bounded_reader():
    from alliance.protocol import ProtocolError
    from alliance.web.capture.queries import study_protocol

    stored = m.Study(name="bombed", protocol_yaml=ALIAS_BOMB, protocol_sha256="0" * 64)
    with pytest.raises(ProtocolError, match="stored protocol of study 'bombed'.*aliases are expanded"):
        study_protocol(stored)


def test_a_sites_wording_file_is_read_by_the_bounded_reader(client, accounts, participant, tmp_path):
    from alliance.instruments import InstrumentDefinitionError
    from alliance.web.capture.instrument_forms import _wording

    (tmp_path / "wai_sr.yaml").write_text(ALIAS_BOMB, encoding="utf-8")
    with pytest.raises(InstrumentDefinitionError, match="wai_sr.yaml.*aliases are expanded"):
        _wording(str(tmp_path / "wai_sr.yaml"), 0.0)


# -- the forms check what the imports check (alliance.study.validation) ----------------------------

@pytest.mark.parametrize(("field", "value", "message"), [
    ("site", "site\x00A", "without NUL or other control characters"),
    ("site", "site\x1bA", "without NUL or other control characters"),
    ("enrolled_on", "1850-01-01", "between 1900-01-01 and 2100-12-31"),
    ("participant_id", "P/1", "letters, digits"),
])
def test_the_enrolment_form_applies_the_imports_rules(web_study, field, value, message):
    from alliance.web.capture.forms import ParticipantForm

    data = {"participant_id": "P900", "arm": m.Arm.objects.filter(study=web_study).first().pk,
            "enrolled_on": "2024-01-01", "site": "A", field: value}
    form = ParticipantForm(data, study=web_study)
    assert not form.is_valid() and message in " ".join(form.errors[field])


@pytest.mark.parametrize(("amount", "valid"), [("20", True), ("9999.5", True), ("10000", False), ("1e309", False),
                                               ("inf", False), ("-1", False)])
def test_the_dosing_form_bounds_the_amount_like_the_import(amount, valid):
    from alliance.protocol import default_protocol
    from alliance.web.capture.forms import DosingForm

    form = DosingForm({"session": "1", "date": "2024-01-01", "compound": "psilocybin", "amount": amount,
                       "unit": "mg/70kg"}, protocol=default_protocol())
    assert form.is_valid() == valid, form.errors
