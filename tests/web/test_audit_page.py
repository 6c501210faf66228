"""The audit page: changes in words (``field: old → new``), filters, bad filters, paging, CSV export, roles.

The study is the web fixture's ``levin2024`` (imported by ``test:setup``). The events the tests
look for are written through the app's own write paths: a re-import that changes one answer
(``cli:import``, what ``alliance import`` writes) and :class:`AuditLog` for a participant's site
(what the participant form writes).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse

from alliance.web.audit import views as audit_views
from alliance.web.audit.display import change_rows, value_text
from alliance.web.audit.export import COLUMNS
from alliance.web.audit.log import AuditLog
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture.storage import import_study

from .conftest import make_study
from .webapp import STUDY, client_for

pytestmark = pytest.mark.django_db

PAGE = reverse("capture:audit_trail", kwargs={"study": STUDY})
ANSWER = "P001/baseline/grid_hamd17/grid_hamd17_1"  # participant/timepoint/instrument/item


def text(response) -> str:
    """The page's text as a reader sees it: tags removed, entities decoded, white space collapsed."""
    body = response.content.decode()
    body = body[body.index("<main"):]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", body)))


def shown_events(response) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="event-(\d+)"', response.content.decode())]


def change_one_answer() -> tuple[float, float]:
    """Re-import the fixture study with P001's first baseline HAM-D answer changed; returns (old, new)."""
    study = make_study()
    responses = study.responses
    row = responses.index[(responses.participant_id == "P001") & (responses.item == "grid_hamd17_1")][0]
    old = float(responses.at[row, "value"])
    new = 0.0 if old != 0 else 1.0
    responses.at[row, "value"] = new
    import_study(study, STUDY, actor="cli:import")
    return old, new


def site_change(study: m.Study, value: str, *, actor: str = "user:admin", at: dt.datetime | None = None,
                participant: str = "P004") -> AuditEvent:
    """What the participant form writes when a site changes."""
    row = m.Participant.objects.get(study=study, participant_id=participant)
    log = AuditLog(actor=actor, study=study, at=at)
    log.changed(row, {"site": row.site}, {"site": value}, label=participant)
    log.write()
    return AuditEvent.objects.order_by("-id").first()


# -- readable changes ------------------------------------------------------------------------------

def test_an_answer_change_reads_old_arrow_new(client, accounts, web_study):
    old, new = change_one_answer()
    page = client_for(client, accounts, "investigator").get(PAGE)
    assert page.status_code == 200
    words = text(page)
    assert f"value: {value_text(old)} → {value_text(new)}" in words
    assert ANSWER in words and "item response" in words and "command line: alliance import" in words
    assert "Changed" in words
    assert "{'value'" not in words and '{"value"' not in words  # no raw dicts


def test_a_created_administration_shows_one_row_per_item(accounts, web_study):
    event = AuditEvent.objects.filter(model="capture.administration", action="create",
                                      object_repr="P001/baseline/grid_hamd17").get()
    rows = {r.field: r.value for r in change_rows(event.action, event.old, event.new)}
    assert rows["items.grid_hamd17_1"] == value_text(event.new["items"]["grid_hamd17_1"])
    assert rows["participant_id"] == "P001" and rows["scores.total_band"] == event.new["scores"]["total_band"]
    assert "items" not in rows and "scores" not in rows  # nested dicts are flattened, one row per leaf


def test_created_values_and_nested_changes_in_words():
    assert [(r.field, r.value) for r in change_rows("create", None, {"site": "A", "covariates": {"age": 53.0}})] == \
        [("site", "A"), ("covariates.age", "53")]
    deleted = change_rows("delete", {"item": "wai_1", "value": 2.5}, None)
    assert [(r.field, r.value, r.changed) for r in deleted] == [("item", "wai_1", False), ("value", "2.5", False)]
    # A nested dict is stored whole when one key changes: only the key that changed is a row.
    changed = change_rows("change", {"covariates": {"age": 5, "sex": "F"}}, {"covariates": {"age": 53, "sex": "F"}})
    assert [(r.field, r.old, r.new) for r in changed] == [("covariates.age", "5", "53")]
    assert [(r.old, r.new) for r in change_rows("change", {"site": None}, {"site": "A"})] == [("(empty)", "A")]


def test_a_long_value_is_shown_whole(client, accounts, web_study):
    long = "Baltimore " * 120  # 1,200 characters: folded under a summary, never cut
    site_change(web_study, long)
    page = client_for(client, accounts, "admin").get(PAGE)
    body = page.content.decode()
    assert long in body and "<details>" in body


def test_actions_and_actors_have_human_labels(client, accounts, web_study):
    site_change(web_study, "Boston", actor="private-link:7")
    words = text(client_for(client, accounts, "admin").get(PAGE))
    assert "participant, private link 7" in words and "site: (empty) → Boston" in words


# -- filters ---------------------------------------------------------------------------------------

def test_filter_by_participant(client, accounts, web_study):
    page = client_for(client, accounts, "admin").get(PAGE, {"participant": "P001", "size": 200})
    assert page.status_code == 200
    labels = AuditEvent.objects.filter(pk__in=shown_events(page)).values_list("object_repr", flat=True)
    assert labels and all(label == "P001" or label.startswith(("P001/", "P001 ")) for label in labels)
    expected = AuditEvent.objects.filter(study=web_study, object_repr__startswith="P001").count()
    assert f"Download these {expected} events" in text(page)


def test_filter_by_user_and_action(client, accounts, web_study):
    mine = site_change(web_study, "Boston", actor="user:admin")
    client_for(client, accounts, "admin")
    assert shown_events(client.get(PAGE, {"actor": "user:admin"})) == [mine.pk]
    changes = shown_events(client.get(PAGE, {"action": "change"}))
    assert mine.pk in changes and set(AuditEvent.objects.filter(pk__in=changes).values_list("action", flat=True)) == {
        "change"}
    assert shown_events(client.get(PAGE, {"actor": "user:admin", "action": "create"})) == []
    assert shown_events(client.get(PAGE, {"actor": "test:setup", "action": "delete"})) == []
    assert "No events match these filters" in text(client.get(PAGE, {"actor": "test:setup", "action": "delete"}))


def test_filter_by_date_range_inclusive_in_utc(client, accounts, web_study):
    old = site_change(web_study, "Boston", at=dt.datetime(2023, 5, 1, 23, 59, tzinfo=dt.UTC))
    older = site_change(web_study, "Austin", at=dt.datetime(2023, 4, 30, 12, 0, tzinfo=dt.UTC))
    client_for(client, accounts, "admin")
    assert shown_events(client.get(PAGE, {"since": "2023-05-01", "until": "2023-05-01"})) == [old.pk]
    assert shown_events(client.get(PAGE, {"until": "2023-05-01"})) == [old.pk, older.pk]
    recent = shown_events(client.get(PAGE, {"since": "2023-05-02"}))
    assert old.pk not in recent and older.pk not in recent and recent


@pytest.mark.parametrize("query, field", [
    ({"participant": "P0/../1"}, "participant"),
    ({"participant": "x" * 65}, "participant"),
    ({"action": "drop_table"}, "action"),
    ({"actor": "user:nobody"}, "actor"),
    ({"since": "2024-13-45"}, "since"),
    ({"until": "yesterday"}, "until"),
    ({"since": "2024-03-02", "until": "2024-03-01"}, "until"),
    ({"size": "100000"}, "size"),
    ({"size": "-1"}, "size"),
])
def test_bad_filter_values_are_form_errors_not_server_errors(client, accounts, query, field):
    page = client_for(client, accounts, "admin").get(PAGE, query)
    assert page.status_code == 400
    assert page.context["form"].errors.get(field), page.context["form"].errors
    assert 'class="errorlist"' in page.content.decode() and shown_events(page) == []
    assert client.post(PAGE, query).status_code == 400  # the export refuses them the same way


def test_pages_are_bounded_and_keep_the_filters(client, accounts, web_study):
    client_for(client, accounts, "admin")
    first = client.get(PAGE, {"action": "create", "size": 25})
    assert len(shown_events(first)) == 25
    body = first.content.decode()
    assert "action=create&amp;size=25&amp;page=2" in body
    second = client.get(PAGE, {"action": "create", "size": 25, "page": 2})
    assert len(shown_events(second)) == 25 and not set(shown_events(first)) & set(shown_events(second))
    assert client.get(PAGE, {"page": "not-a-number"}).status_code == 200  # Django's get_page: the first page
    assert len(shown_events(client.get(PAGE))) == 100


# -- CSV export ------------------------------------------------------------------------------------

def read_csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(body)))


def test_csv_export_of_the_filtered_events_is_recorded(client, accounts, web_study):
    old, new = change_one_answer()
    injected = site_change(web_study, "=cmd|' /C calc'!A0", actor="user:admin")
    client_for(client, accounts, "investigator")
    response = client.post(PAGE, {"participant": "P004", "action": "change"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"] and response["Cache-Control"] == "no-store"
    rows = read_csv(response)
    assert list(rows[0]) == list(COLUMNS)
    assert [(r["event_id"], r["field"], r["old"], r["new"]) for r in rows] == \
        [(str(injected.pk), "site", "(empty)", "'=cmd|' /C calc'!A0")]  # neutralised for spreadsheets
    assert rows[0]["actor"] == "user:admin" and rows[0]["hash"] == injected.hash
    event = AuditEvent.objects.filter(action="export").get()
    assert event.actor == "user:investigator" and event.user_id == accounts.investigator.pk
    assert event.study_id == web_study.pk and event.object_repr == f"{STUDY} audit trail export"
    assert event.new == {"format": "audit-csv", "events": 1, "filters": {"participant": "P004", "action": "change"}}

    answers = read_csv(client.post(PAGE, {"participant": "P001", "action": "change"}))
    # The answer's change, and its administration's re-computed scores.
    assert [(r["field"], r["old"], r["new"]) for r in answers if r["object"] == ANSWER] == \
        [("value", value_text(old), value_text(new))]
    assert {r["object"] for r in answers} == {ANSWER, ANSWER.rsplit("/", 1)[0]}


def test_the_pages_export_button_repeats_the_filters(client, accounts, web_study):
    mine = site_change(web_study, "Boston", at=dt.datetime(2023, 5, 1, 12, 0, tzinfo=dt.UTC))
    client_for(client, accounts, "admin")
    page = client.get(PAGE, {"participant": "P004", "actor": "user:admin", "action": "change",
                             "since": "2023-05-01", "until": "2023-05-01", "size": 25})
    form = re.search(r'<form method="post" class="inline audit-export">(.*?)</form>', page.content.decode(), re.S)
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(1)))
    hidden.pop("csrfmiddlewaretoken")
    assert hidden == {"participant": "P004", "actor": "user:admin", "action": "change", "since": "2023-05-01",
                      "until": "2023-05-01"}
    rows = read_csv(client.post(PAGE, hidden))
    assert [int(r["event_id"]) for r in rows] == [mine.pk]


def test_csv_export_of_everything_holds_every_event_once_oldest_first(client, accounts, web_study):
    before = list(AuditEvent.objects.filter(study=web_study).order_by("at", "id").values_list("id", flat=True))
    rows = read_csv(client_for(client, accounts, "admin").post(PAGE))
    ids = list(dict.fromkeys(int(r["event_id"]) for r in rows))
    assert ids == before  # the export's own event is recorded after, and not in the file
    export = AuditEvent.objects.filter(action="export").get()
    assert export.new["events"] == len(before) and export.new["filters"] == {}


def test_the_page_itself_writes_nothing(client, accounts, web_study):
    client_for(client, accounts, "admin")  # logging in is an event (of no study)
    count = AuditEvent.objects.count()
    client.get(PAGE, {"action": "create"})
    client.get(PAGE, {"action": "bogus"})
    assert AuditEvent.objects.count() == count


# -- roles -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("investigator", 200), ("facilitator", 403),
                                              ("facilitator2", 403), ("monitor", 403), ("outsider", 403),
                                              (None, 302)])
def test_who_sees_and_exports_the_trail(client, accounts, role, status):
    client_for(client, accounts, role)
    assert client.get(PAGE).status_code == status
    assert client.post(PAGE).status_code == status
    assert AuditEvent.objects.filter(action="export").exists() == (status == 200)


def test_the_view_refuses_a_request_that_skipped_the_role_check(accounts, web_study):
    request = RequestFactory().get(PAGE)
    request.user = accounts.admin
    with pytest.raises(PermissionDenied):
        audit_views.audit_trail(request, study=web_study)
