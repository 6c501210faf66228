"""Facilitator-rated forms (issue 13, item 5): the WAI-SR-T, one rating per facilitator.

The study is :func:`tests.web.conftest.make_rated_study`: the Levin 2024 protocol with ``wai_sr_t``
added at ``prep`` and ``week1``, each facilitator of each participant rating there. P004 has the
facilitators F1 (the ``facilitator`` account) and F2 (``facilitator2``), and no rating yet in the
web tests, so that both facilitators enter theirs.

Storage tests take ``using`` and run on SQLite and PostgreSQL; the page tests use the test client,
on the default database (SQLite).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from alliance.study import StudyDataError
from alliance.web.audit.log import AuditLog
from alliance.web.capture import models as m
from alliance.web.capture import recording
from alliance.web.capture.errors import StorageError
from alliance.web.capture.forms import PrivateLinkForm
from alliance.web.capture.queries import study_protocol
from alliance.web.capture.storage import DeletionsNotAllowed, export_study, import_study

from .conftest import make_rated_study
from .webapp import STUDY

BOTH = "P004"  # facilitators F1 (account "facilitator") and F2 (account "facilitator2")
PREP_DAY = "2024-03-13"  # P004's prep forms in make_study (participant number 3: day 10 + 3)


def _frames_equal(left, right) -> None:
    for name in ("participants", "responses"):
        pd.testing.assert_frame_equal(getattr(left, name).reset_index(drop=True),
                                      getattr(right, name).reset_index(drop=True), check_dtype=False)


# -- storage: SQLite and PostgreSQL ------------------------------------------------------------

def test_import_export_import_keeps_every_facilitators_rating(using):
    study = make_rated_study()
    first = import_study(study, STUDY, actor="test", using=using)
    # P002, P003, P004 and P006 have two facilitators each, rating at prep and week1: 4 × 2 × 2
    rated = m.Administration.objects.using(using).filter(instrument="wai_sr_t")
    assert rated.count() == 16
    assert all(a.rater == a.facilitator.facilitator_id for a in rated.select_related("facilitator"))
    assert not m.Administration.objects.using(using).exclude(instrument="wai_sr_t").filter(
        facilitator__isnull=False).exists()
    assert first.created["administrations"] == m.Administration.objects.using(using).count()

    exported = export_study(STUDY, using)
    _frames_equal(exported, study)
    again = import_study(exported, STUDY, actor="test", using=using)
    assert again.unchanged and again.audit_events == 0
    _frames_equal(export_study(STUDY, using), study)

    scores = exported.scores()
    p004 = scores[(scores["participant_id"] == BOTH) & (scores["instrument"] == "wai_sr_t")
                  & (scores["timepoint"] == "prep")]
    assert sorted(p004["rater"]) == ["F1", "F2"]
    measure = exported.measures(wide=True).loc[BOTH, "wai_sr_t.total@prep"]
    assert measure == pytest.approx(p004["total"].mean())


def test_an_import_updates_one_rating_and_deletes_one_only_when_allowed(using):
    study = make_rated_study()
    import_study(study, STUDY, actor="test", using=using)
    responses = study.responses.copy()
    f1 = ((responses["participant_id"] == BOTH) & (responses["instrument"] == "wai_sr_t")
          & (responses["timepoint"] == "prep") & (responses["rater"] == "F1"))
    item = f1 & (responses["item"] == "wai_sr_t_1")
    responses.loc[item, "value"] = 6 - responses.loc[item, "value"].iloc[0]  # another answer, still 1–5
    changed = import_study(type(study)(study.protocol, study.participants, responses, study.dosing_sessions),
                           STUDY, actor="test", using=using)
    assert changed.changed == {"administrations": 1, "responses": 1}   # the answer, and F1's scores
    f1_rating = m.Administration.objects.using(using).get(participant__participant_id=BOTH, timepoint__code="prep",
                                                          instrument="wai_sr_t", facilitator__facilitator_id="F1")
    assert f1_rating.responses.get(item="wai_sr_t_1").value == responses.loc[item, "value"].iloc[0]

    without_f1 = type(study)(study.protocol, study.participants, responses[~f1], study.dosing_sessions)
    with pytest.raises(DeletionsNotAllowed) as refused:
        import_study(without_f1, STUDY, actor="test", using=using)
    assert refused.value.summary.deleted == {"administrations": 1, "responses": 12}
    assert m.Administration.objects.using(using).filter(pk=f1_rating.pk).exists()
    done = import_study(without_f1, STUDY, actor="test", using=using, allow_deletions=True)
    assert done.deleted == {"administrations": 1, "responses": 12}
    left = m.Administration.objects.using(using).filter(participant__participant_id=BOTH, timepoint__code="prep",
                                                        instrument="wai_sr_t")
    assert [a.facilitator.facilitator_id for a in left.select_related("facilitator")] == ["F2"]


def test_a_rating_by_a_facilitator_not_assigned_is_refused_and_nothing_is_written(using):
    study = make_rated_study()
    responses = study.responses.copy()
    rating = ((responses["participant_id"] == BOTH) & (responses["instrument"] == "wai_sr_t")
              & (responses["rater"] == "F2"))
    responses.loc[rating, "rater"] = "F3"   # F3 works with P002, P003 and P006, not with P004
    bad = type(study)(study.protocol, study.participants, responses, study.dosing_sessions)
    with pytest.raises(StudyDataError) as refused:
        import_study(bad, STUDY, actor="test", using=using)
    problems = [p for p in refused.value.problems if p.column == "rater"]
    assert problems and all(p.value == "F3" and p.file == "responses.csv" for p in problems)
    assert "is not one of the facilitators of participant 'P004'" in problems[0].describe()
    assert not m.Study.objects.using(using).filter(name=STUDY).exists()
    assert not m.Administration.objects.using(using).exists()


def test_without_facilitator_ids_a_rating_names_nobody_assigned_and_is_refused(using):
    study = make_rated_study()
    participants = study.participants.drop(columns=["facilitator_ids"])
    bad = type(study)(study.protocol, participants, study.responses, study.dosing_sessions)
    with pytest.raises((StorageError, StudyDataError)) as refused:
        import_study(bad, STUDY, actor="test", using=using)
    # the core validation refuses it first: with no facilitator_ids no rater can be checked
    assert "rater" in str(refused.value) and "is not one of the facilitators of participant" in str(refused.value)
    assert not m.Study.objects.using(using).filter(name=STUDY).exists()


def test_the_database_keeps_one_administration_per_facilitator(using):
    import_study(make_rated_study(unrated=(BOTH,)), STUDY, actor="test", using=using)
    participant = m.Participant.objects.using(using).get(participant_id=BOTH)
    prep = m.Timepoint.objects.using(using).get(study=participant.study, code="prep")
    f1, f2 = (m.Facilitator.objects.using(using).get(study=participant.study, facilitator_id=f) for f in ("F1", "F2"))
    objects = m.Administration.objects.using(using)
    objects.create(participant=participant, timepoint=prep, instrument="wai_sr_t", facilitator=f1, rater="F1")
    objects.create(participant=participant, timepoint=prep, instrument="wai_sr_t", facilitator=f2, rater="F2")
    with pytest.raises(IntegrityError), transaction.atomic(using=using):
        objects.create(participant=participant, timepoint=prep, instrument="wai_sr_t", facilitator=f1, rater="F1")
    # every other form: still once per participant, timepoint and instrument
    assert objects.filter(participant=participant, timepoint=prep, instrument="wai_sr", facilitator=None).exists()
    with pytest.raises(IntegrityError), transaction.atomic(using=using):
        objects.create(participant=participant, timepoint=prep, instrument="wai_sr")


# -- the pages (SQLite) ------------------------------------------------------------------------

@pytest.fixture
def rated(accounts):
    """``levin2024`` in the rated protocol, P004 not rated yet; the accounts of tests/web/webapp.py."""
    import_study(make_rated_study(unrated=(BOTH,)), STUDY, actor="test:setup")
    return accounts


def _form_url(participant: str = BOTH, timepoint: str = "prep", facilitator: str | None = None) -> str:
    url = reverse("capture:staff_form", kwargs={"study": STUDY, "participant": participant,
                                                "timepoint": timepoint, "instrument": "wai_sr_t"})
    return url + (f"?facilitator={facilitator}" if facilitator else "")


def _rating(answers: list[int], facilitator: str | None, day: str = PREP_DAY) -> dict:
    data = {f"wai_sr_t_{n}": str(v) for n, v in enumerate(answers, start=1)}
    data.update({"_action": "submit", "entry-mode": "paper", "entry-assessed_on": day})
    if facilitator is not None:
        data["entry-rater"] = facilitator
    return data


def test_two_facilitators_each_enter_their_rating_and_the_measure_is_their_mean(rated, client):
    client.force_login(rated.facilitator)                       # F1
    page = client.get(_form_url())
    assert page.status_code == 200
    entry = page.context["entry"]
    assert [value for value, _ in entry.fields["rater"].choices] == ["F1"]   # only themselves
    assert entry.initial["rater"] == "F1" and entry.initial["mode"] == "paper"
    assert "blinded" not in entry.fields
    assert client.post(_form_url(), _rating([4] * 12, "F1")).status_code == 302

    client.force_login(rated.facilitator2)                      # F2
    assert client.get(_form_url()).context["entry"].initial["rater"] == "F2"
    response = client.post(_form_url(), _rating([3] * 12, "F2"), follow=True)
    assert "WAI-SR-T rating by F2 of P004 at" in response.content.decode()

    ratings = (m.Administration.objects.filter(participant__participant_id=BOTH, timepoint__code="prep",
                                               instrument="wai_sr_t").select_related("facilitator")
               .order_by("facilitator__facilitator_id"))
    assert [(a.facilitator.facilitator_id, a.rater, a.status, a.mode) for a in ratings] == [
        ("F1", "F1", "submitted", "paper"), ("F2", "F2", "submitted", "paper")]
    # WAI-SR-T total = sum of the 12 items: F1 12 × 4 = 48, F2 12 × 3 = 36
    assert [a.scores["total"] for a in ratings] == [48.0, 36.0]

    exported = export_study(STUDY)
    scores = exported.scores()
    p004 = scores[(scores["participant_id"] == BOTH) & (scores["timepoint"] == "prep")
                  & (scores["instrument"] == "wai_sr_t")]
    assert sorted(zip(p004["rater"], p004["total"], strict=True)) == [("F1", 48.0), ("F2", 36.0)]
    # the measure is the mean over the participant's facilitators: (48 + 36) / 2 = 42
    assert exported.measures(wide=True).loc[BOTH, "wai_sr_t.total@prep"] == 42.0


def test_a_second_entry_of_the_same_rating_is_refused(rated, client):
    client.force_login(rated.facilitator)
    client.post(_form_url(), _rating([4] * 12, "F1"))
    page = client.get(_form_url())
    assert page.status_code == 200 and "capture/form_submitted.html" in [t.name for t in page.templates]
    again = client.post(_form_url(), _rating([1] * 12, "F1"), follow=True)
    assert "WAI-SR-T of F1 at" in again.content.decode() and "was submitted already" in again.content.decode()
    rating = m.Administration.objects.get(participant__participant_id=BOTH, timepoint__code="prep",
                                          instrument="wai_sr_t", facilitator__facilitator_id="F1")
    assert rating.scores["total"] == 48.0


def test_a_facilitator_cannot_enter_a_colleagues_rating(rated, client):
    client.force_login(rated.facilitator)                       # F1, a facilitator of P004 with F2
    page = client.get(_form_url(facilitator="F2"))
    assert page.status_code == 403
    assert "A facilitator enters only their own rating: you are F1" in page.content.decode()
    refused = client.post(_form_url(), _rating([2] * 12, "F2"))
    assert refused.status_code == 403
    assert not m.Administration.objects.filter(participant__participant_id=BOTH, instrument="wai_sr_t").exists()


def test_staff_choose_whose_rating_it_is_among_the_assigned_facilitators(rated, client):
    client.force_login(rated.investigator)
    page = client.get(_form_url(facilitator="F2"))
    assert [v for v, _ in page.context["entry"].fields["rater"].choices] == ["F1", "F2"]
    assert page.context["entry"].initial["rater"] == "F2"
    assert client.get(_form_url()).context["entry"].initial.get("rater") is None   # nobody preselected
    # F3 is not a facilitator of P004; without a choice nothing can be saved either
    for facilitator in ("F3", None):
        response = client.post(_form_url(), _rating([4] * 12, facilitator))
        assert response.status_code == 400
        assert "rater" in response.context["entry"].errors
    assert not m.Administration.objects.filter(participant__participant_id=BOTH, instrument="wai_sr_t").exists()
    assert client.post(_form_url(), _rating([5] * 12, "F2")).status_code == 302
    rating = m.Administration.objects.get(participant__participant_id=BOTH, instrument="wai_sr_t")
    assert (rating.facilitator.facilitator_id, rating.rater, rating.scores["total"]) == ("F2", "F2", 60.0)


def test_a_draft_is_kept_per_facilitator(rated, client):
    client.force_login(rated.investigator)
    data = _rating([2, 2, 2], "F1")
    data["_action"] = "draft"
    response = client.post(_form_url(), data)
    assert response.status_code == 302 and response["Location"].endswith("?facilitator=F1")
    assert client.get(_form_url(facilitator="F1")).context["items"][0].value == "2"
    assert client.get(_form_url(facilitator="F2")).context["items"][0].value in (None, "")


def test_the_participant_page_shows_one_entry_per_facilitator(rated, client):
    client.force_login(rated.facilitator)
    client.post(_form_url(), _rating([4] * 12, "F1"))
    page = client.get(reverse("capture:participant_detail", kwargs={"study": STUDY, "participant": BOTH}))
    prep = next(r for r in page.context["rows"] if r["timepoint"] == "prep")
    form = next(f for f in prep["instruments"] if f["id"] == "wai_sr_t")
    assert form["state"] == "draft"
    assert [(r["facilitator"], r["state"]) for r in form["ratings"]] == [("F1", "submitted"), ("F2", "not started")]
    assert prep["status"] != "done"
    html = page.content.decode()
    assert "Enter the WAI-SR-T rating of F2" not in html          # F1 may not enter F2's rating
    client.force_login(rated.investigator)
    html = client.get(reverse("capture:participant_detail", kwargs={"study": STUDY, "participant": BOTH})).content
    assert f'{_form_url(facilitator="F2")}"'.encode() in html

    client.force_login(rated.facilitator2)
    client.post(_form_url(), _rating([3] * 12, "F2"))
    page = client.get(reverse("capture:participant_detail", kwargs={"study": STUDY, "participant": BOTH}))
    prep = next(r for r in page.context["rows"] if r["timepoint"] == "prep")
    assert next(f for f in prep["instruments"] if f["id"] == "wai_sr_t")["state"] == "submitted"
    assert prep["done_on"] == date.fromisoformat(PREP_DAY)


def test_the_study_dashboard_does_not_query_per_participant(rated, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(rated.admin)
    url = reverse("monitor:study", kwargs={"study": STUDY})
    client.get(url)
    with CaptureQueriesContext(connection) as six:
        client.get(url)
    study = m.Study.objects.get(name=STUDY)
    log = AuditLog(actor="test:setup", study=study)
    f1 = study.facilitators.get(facilitator_id="F1")
    for number in range(20):
        recording.enrol(study, participant_id=f"P3{number:02d}", arm=study.arms.get(code="immediate"),
                        enrolled_on=date(2024, 1, 1), facilitators=[f1], log=log)
    log.write()
    # The enrolments are a new data version: the first visit recomputes the rule statuses (cached
    # per version, alerting.rule_statuses); the second is measured, like the first measurement.
    client.get(url)
    with CaptureQueriesContext(connection) as twenty_six:
        client.get(url)
    assert len(twenty_six) == len(six)


def test_no_participant_link_ever_shows_the_facilitators_form(rated, client):
    study = m.Study.objects.get(name=STUDY)
    protocol = study_protocol(study)
    participant = m.Participant.objects.get(study=study, participant_id=BOTH)
    prep = study.timepoints.get(code="prep")
    assert not [c for c, _ in PrivateLinkForm(protocol=protocol).fields["form"].choices if c.endswith(":wai_sr_t")]
    log = AuditLog(actor="test:setup", study=study)
    with pytest.raises(StorageError, match="not a self-report"):
        recording.create_private_link(participant, prep, "wai_sr_t", days=7, log=log)
    m.Administration.objects.filter(participant=participant, timepoint=prep).delete()   # the visit is to do
    token, _ = recording.create_visit_link(participant, prep, expires_at=pd.Timestamp("2100-01-01", tz="UTC"),
                                           log=log)
    log.write()
    visit = client.get(reverse("capture:visit", kwargs={"token": token}))
    assert visit.status_code == 200
    assert [f.instrument for f in visit.context["forms"]] == ["wai_sr"]
    assert "WAI-SR-T" not in visit.content.decode()
    assert client.get(reverse("capture:visit_form", kwargs={"token": token, "instrument": "wai_sr_t"})
                      ).status_code == 404
    client.force_login(rated.facilitator)
    page = client.get(reverse("capture:link_create", kwargs={"study": STUDY, "participant": BOTH}))
    assert "WAI-SR-T" not in page.content.decode()


def test_exports_carry_the_ratings_and_redcap_says_to_use_the_tidy_export(rated, client):
    import io
    import zipfile

    client.force_login(rated.admin)
    refused = client.post(reverse("capture:export_download", kwargs={"study": STUDY, "kind": "redcap"}), follow=True)
    text = refused.content.decode()
    assert refused.redirect_chain[-1][0].endswith(reverse("capture:exports", kwargs={"study": STUDY}))
    assert "The REDCap export cannot hold WAI-SR-T (wai_sr_t)" in text and "Use the tidy export" in text
    tidy = client.post(reverse("capture:export_download", kwargs={"study": STUDY, "kind": "tidy"}))
    with zipfile.ZipFile(io.BytesIO(tidy.content)) as archive:
        responses = pd.read_csv(archive.open("responses.csv"), dtype=str)
    ratings = responses[responses["instrument"] == "wai_sr_t"]
    assert set(ratings.loc[ratings["participant_id"] == "P003", "rater"]) == {"F1", "F3"}


def test_a_facilitator_who_rated_stays_assigned(rated, client):
    client.force_login(rated.admin)
    participant = m.Participant.objects.get(participant_id="P003")   # F3 and F1 rated at prep and week1
    f1 = participant.facilitators.get(facilitator_id="F1")
    response = client.post(reverse("capture:participant_edit", kwargs={"study": STUDY, "participant": "P003"}), {
        "arm": participant.arm.pk, "enrolled_on": participant.enrolled_on.isoformat(), "site": participant.site,
        "facilitators": [f1.pk], **{f"identifier_{k}": v for k, v in participant.identifiers.items()}})
    assert response.status_code == 400
    assert "F3 rated P003 (a facilitator-rated form) and so stays a facilitator of P003" in response.content.decode()
    assert sorted(participant.facilitators.values_list("facilitator_id", flat=True)) == ["F1", "F3"]


def test_the_dashboards_show_a_rated_participant(rated, client):
    client.force_login(rated.facilitator)
    for name, kwargs in (("monitor:participant", {"participant": "P003"}), ("monitor:study", {}),
                         ("capture:study_detail", {})):
        assert client.get(reverse(name, kwargs={"study": STUDY, **kwargs})).status_code == 200, name
