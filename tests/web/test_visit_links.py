"""A visit's link (survey queue), staff entry with date and mode, and the links page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from alliance.monitoring.deviations import find_deviations
from alliance.web.audit.log import AuditLog
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture import recording
from alliance.web.capture.storage import export_study

from .webapp import STUDY, client_for

pytestmark = pytest.mark.django_db

NEW = "P300"


@pytest.fixture
def participant(web_study):
    log = AuditLog(actor="test:setup", study=web_study)
    # enrolled 22 days ago: session 1 is planned for yesterday, so its window (7 before, 14 after) is open
    found = recording.enrol(web_study, participant_id=NEW, arm=web_study.arms.get(code="immediate"),
                            enrolled_on=timezone.localdate() - timedelta(days=22),
                            facilitators=[web_study.facilitators.get(facilitator_id="F1")], log=log)
    log.write()
    return found


def make_visit_link(client, accounts, timepoint="session1", role="facilitator"):
    client_for(client, accounts, role)
    response = client.post(reverse("capture:visit_link_create", kwargs={"study": STUDY, "participant": NEW,
                                                                        "timepoint": timepoint}))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    client.logout()
    return response.context["url"].removeprefix("http://testserver"), response


ANSWERS = {"meq30": {f"meq30_{k}": "3" for k in range(1, 31)},
           "insight": {"insight_1": "70"},
           "ebi": {f"ebi_{k}": "60" for k in range(1, 7)},
           "ceq": {f"ceq_{k}": "1" for k in range(1, 27)}}  # the CEQ at each session (issue 16)


def test_one_link_walks_through_every_self_report_of_the_visit(client, accounts, participant):
    queue, made = make_visit_link(client, accounts)
    assert "MEQ30" in made.content.decode() and made.context["in_window"]
    page = client.get(queue)
    assert [f.instrument for f in page.context["forms"]] == ["meq30", "insight", "ebi", "ceq"]
    assert page.context["next"].instrument == "meq30"
    for number, instrument in enumerate(("meq30", "insight", "ebi", "ceq"), start=1):
        response = client.post(f"{queue}{instrument}/", {**ANSWERS[instrument], "_action": "submit"})
        assert response.status_code == 302 and response["Location"] == queue
        after = client.get(queue).context
        assert after["n_done"] == number
    done = client.get(queue)
    assert done.context["next"] is None and "All questionnaires of this visit are submitted" in done.content.decode()
    link = m.VisitLink.objects.get()
    assert link.opened_at is not None and link.completed_at is not None
    given = m.Administration.objects.filter(participant=participant, timepoint__code="session1")
    assert {a.instrument: (a.status, a.mode) for a in given} == {i: ("submitted", "link") for i in ANSWERS}
    # single use per form: a submitted one does not open again, the queue does
    assert client.get(f"{queue}meq30/").status_code == 302
    again = client.post(f"{queue}meq30/", {**ANSWERS["meq30"], "_action": "submit"})
    assert again.status_code == 302
    # the actor of what was done through the link is the link
    assert AuditEvent.objects.filter(actor=f"visit-link:{link.pk}", model="capture.administration").exists()


def test_a_visit_is_resumable_answers_saved_as_a_draft(client, accounts, participant):
    queue, _ = make_visit_link(client, accounts)
    client.post(f"{queue}meq30/", {"meq30_1": "4", "meq30_2": "2", "_action": "draft"})
    assert client.get(queue).context["next"].state == "draft"
    form = client.get(f"{queue}meq30/")
    assert {i.id: i.value for i in form.context["items"]}["meq30_1"] == "4"


def test_a_revoked_or_expired_link_is_refused_and_answers_kept(client, accounts, participant):
    queue, _ = make_visit_link(client, accounts)
    client.post(f"{queue}meq30/", {"meq30_1": "4", "_action": "draft"})
    link = m.VisitLink.objects.get()
    client_for(client, accounts, "facilitator")
    response = client.post(reverse("capture:link_revoke", kwargs={"study": STUDY, "kind": "visit", "pk": link.pk}))
    assert response.status_code == 302
    client.logout()
    refused = client.get(queue)
    assert refused.status_code == 410 and "withdrawn" in refused.content.decode()
    assert client.post(f"{queue}meq30/", {"meq30_1": "1", "_action": "draft"}).status_code == 410
    assert m.ItemResponse.objects.get(item="meq30_1", administration__participant=participant).value == 4.0
    event = AuditEvent.objects.filter(model="capture.visitlink", action="change").latest("id")
    assert event.actor == "user:facilitator" and event.new["revoked_reason"] == "revoked by staff"
    # expired
    second, _ = make_visit_link(client, accounts)
    m.VisitLink.objects.filter(revoked_at__isnull=True).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(second).status_code == 410


def test_the_link_expires_when_the_window_closes(client, accounts, participant):
    _, made = make_visit_link(client, accounts)
    close = participant.enrolled_on + timedelta(days=21 + 14)   # session 1 planned on day 21, window +14 days
    expected = timezone.make_aware(timezone.datetime.combine(close + timedelta(days=1), timezone.datetime.min.time()))
    assert made.context["link"].expires_at == expected
    # a visit whose window has closed gets a link for the site's usual days, with a warning
    _, late = make_visit_link(client, accounts, timepoint="prep")
    assert not late.context["in_window"] and "out of window" in late.content.decode()


def test_a_facilitator_cannot_revoke_another_facilitators_link(client, accounts, participant):
    make_visit_link(client, accounts)
    link = m.VisitLink.objects.get()
    client_for(client, accounts, "facilitator2")
    url = reverse("capture:link_revoke", kwargs={"study": STUDY, "kind": "visit", "pk": link.pk})
    assert client.post(url).status_code == 404
    assert client.get(reverse("capture:links", kwargs={"study": STUDY})).context["rows"] == []
    link.refresh_from_db()
    assert link.revoked_at is None


def test_the_links_page_lists_states_and_filters(client, accounts, participant):
    make_visit_link(client, accounts)
    queue, _ = make_visit_link(client, accounts)
    client.post(f"{queue}meq30/", {"meq30_1": "4", "_action": "draft"})
    client_for(client, accounts, "investigator")
    token, single = recording.create_private_link(participant, participant.study.timepoints.get(code="prep"),
                                                  "wai_sr", days=7, log=AuditLog(actor="t", study=participant.study))
    page = client.get(reverse("capture:links", kwargs={"study": STUDY}))
    assert sorted(r["state"] for r in page.context["rows"]) == ["in progress", "open", "open"]
    assert page.context["counts"]["open"] == 2
    only = client.get(reverse("capture:links", kwargs={"study": STUDY}) + "?state=in+progress")
    assert [r["state"] for r in only.context["rows"]] == ["in progress"]
    client.post(reverse("capture:link_revoke", kwargs={"study": STUDY, "kind": "form", "pk": single.pk}))
    assert client.get(reverse("capture:private_form", kwargs={"token": token})).status_code == 410
    # sending again needs an address: P300 has none, and nothing changes
    visit = m.VisitLink.objects.filter(opened_at__isnull=True).get()
    response = client.post(reverse("capture:link_resend", kwargs={"study": STUDY, "kind": "visit", "pk": visit.pk}),
                           follow=True)
    assert "no valid email address on record" in response.content.decode()
    visit.refresh_from_db()
    assert visit.revoked_at is None


# -- staff entry ---------------------------------------------------------------------------------

def staff_path(timepoint="prep", instrument="wai_sr"):
    return reverse("capture:staff_form", kwargs={"study": STUDY, "participant": NEW, "timepoint": timepoint,
                                                 "instrument": instrument})


WAI = {f"wai_sr_{k}": "4" for k in range(1, 13)}


def test_staff_enter_a_paper_self_report_with_its_date_and_time(client, accounts, participant):
    client_for(client, accounts, "facilitator")
    page = client.get(staff_path())
    text = page.content.decode()
    assert 'type="date"' in text and 'type="time"' in text and "On paper" in text and "On a tablet" in text
    day = timezone.localdate() - timedelta(days=3)
    response = client.post(staff_path(), {**WAI, "_action": "submit", "entry-mode": "paper",
                                          "entry-assessed_on": day.isoformat(), "entry-assessed_time": "14:30"})
    assert response.status_code == 302
    given = m.Administration.objects.get(participant=participant, instrument="wai_sr")
    expected = timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.strptime("14:30", "%H:%M").time()))
    assert (given.mode, given.rater, given.blinded, given.scores["total"]) == ("paper", "", None, 48.0)
    assert given.administered_at == expected.isoformat()
    # the analysis reads the date given, not the day it was typed in
    study = export_study(STUDY)
    row = study.responses[(study.responses.participant_id == NEW) & (study.responses.instrument == "wai_sr")].iloc[0]
    assert str(row["administered_at"]).startswith(day.isoformat())


@pytest.mark.parametrize(("entry", "message"), [
    ({"entry-assessed_on": "2999-01-01"}, "is in the future; allowed: a date up to today"),
    ({"entry-assessed_on": ""}, "Give the assessment date."),
    ({"entry-assessed_on": "1899-12-31"}, "is before 1900-01-01"),
    ({"entry-mode": ""}, "Say how it was taken."),
    ({"entry-mode": "interview"}, "Select a valid choice"),   # not a mode of a self-report
])
def test_entry_details_are_checked_before_anything_is_submitted(client, accounts, participant, entry, message):
    client_for(client, accounts, "facilitator")
    posted = {**WAI, "_action": "submit", "entry-mode": "paper",
              "entry-assessed_on": timezone.localdate().isoformat(), **entry}
    response = client.post(staff_path(), posted)
    assert response.status_code == 400 and message in response.content.decode()
    given = m.Administration.objects.get(participant=participant, instrument="wai_sr")
    assert given.status == "draft" and m.ItemResponse.objects.filter(administration=given).count() == 12


def test_an_entry_dated_after_the_first_dose_is_a_deviation(client, accounts, participant):
    """The issue's case: a pre-dose WAI-SR entered with a date after dosing session 1."""
    client_for(client, accounts, "facilitator")
    dosed = timezone.localdate() - timedelta(days=2)
    client.post(reverse("capture:dosing_record", kwargs={"study": STUDY, "participant": NEW}),
                {"session": 1, "date": dosed.isoformat(), "compound": "psilocybin", "amount": 20, "unit": "mg/70kg"})
    client.post(staff_path(), {**WAI, "_action": "submit", "entry-mode": "tablet",
                               "entry-assessed_on": timezone.localdate().isoformat()})
    study = export_study(STUDY)
    kinds = {(d.participant_id, d.timepoint, d.kind) for d in find_deviations(study.protocol, study.participants,
                                                                               study.responses, study.dosing_sessions)}
    assert (NEW, "prep", "after_dosing") in kinds
    detail = client.get(reverse("capture:participant_detail", kwargs={"study": STUDY, "participant": NEW}))
    assert {r["timepoint"]: r["status"] for r in detail.context["rows"]}["prep"] == "deviation"


def test_grid_hamd_shows_item_names_without_licensed_wording(client, accounts, participant):
    client_for(client, accounts, "facilitator")
    text = client.get(staff_path("baseline", "grid_hamd17")).content.decode()
    assert "Item 1: Depressed mood" in text and "Item 17: Insight" in text and "Absent" in text
    assert "entry-blinded" in text and "entry-rater" in text


def test_staff_stop_and_resume_emails(client, accounts, participant):
    client_for(client, accounts, "facilitator")
    url = reverse("capture:email_preference", kwargs={"study": STUDY, "participant": NEW})
    assert client.post(url, {"opt_out": "yes"}).status_code == 302
    participant.refresh_from_db()
    assert participant.email_opt_out is not None
    assert "Resume emails" in client.get(reverse("capture:participant_detail", kwargs={
        "study": STUDY, "participant": NEW})).content.decode()
    client.post(url, {"opt_out": "no"})
    participant.refresh_from_db()
    assert participant.email_opt_out is None
    assert AuditEvent.objects.filter(model="capture.participant", action="change",
                                     actor="user:facilitator").count() == 2
