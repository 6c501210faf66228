"""Every form that refuses a submit says so where assistive technology looks (issue 18).

For each kind of form (logging in, setting up a study, enrolling, members, an adverse event, the
dosing record, a staff-entered questionnaire, a participant's private link) an invalid submit must
give a page whose title starts with "Error:", one error summary (``role="alert"``, focusable,
``data-error-summary`` for alliance.js to focus) whose links lead to elements that exist, every
``aria-describedby`` and ``<label for>`` naming ids that exist on the page, no duplicate ids, and
every field marked ``aria-invalid`` described by its error (on itself or on its group's fieldset).
The axe checks in the browser tests see the same pages; these run without a browser, in ``make
test-core``'s companion ``tests/web``, and say exactly which id is missing.
"""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from alliance.web.audit.log import AuditLog
from alliance.web.capture import models as m
from alliance.web.capture import recording

from .webapp import STUDY, client_for

pytestmark = pytest.mark.django_db

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """The page's elements, each with its attributes, its ancestors' tags and attributes, and its text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self.stack: list[dict] = []
        self.title = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "ancestors": list(self.stack), "text": ""}
        self.elements.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for element in self.stack:
            element["text"] += data
        if self.stack and self.stack[-1]["tag"] == "title":
            self.title += data

    def ids(self) -> dict[str, dict]:
        return {e["attrs"]["id"]: e for e in self.elements if e["attrs"].get("id")}


def check_error_page(html: str, where: str) -> Page:
    page = Page(html)
    assert " ".join(page.title.split()).startswith("Error:"), f"{where}: title {page.title!r}"
    all_ids = [e["attrs"]["id"] for e in page.elements if e["attrs"].get("id")]
    duplicates = sorted({i for i in all_ids if all_ids.count(i) > 1})
    assert not duplicates, f"{where}: duplicate ids {duplicates}"
    ids = page.ids()
    summaries = [e for e in page.elements if "data-error-summary" in e["attrs"]]
    assert len(summaries) == 1, f"{where}: {len(summaries)} error summaries"
    summary = summaries[0]
    assert summary["attrs"].get("role") == "alert" and summary["attrs"].get("tabindex") == "-1", \
        f"{where}: summary attributes {summary['attrs']}"
    links = [e for e in page.elements if e["tag"] == "a" and summary in e["ancestors"]]
    for link in links:
        target = link["attrs"]["href"].removeprefix("#")
        assert target in ids, f"{where}: the summary's link {link['text']!r} leads to #{target}, which is not on the page"
    for element in page.elements:
        for attribute in ("aria-describedby", "aria-labelledby"):
            for token in element["attrs"].get(attribute, "").split():
                assert token in ids, f"{where}: <{element['tag']}> {attribute}={token!r}: no such id"
        if element["tag"] == "label" and element["attrs"].get("for"):
            assert element["attrs"]["for"] in ids, f"{where}: <label for={element['attrs']['for']!r}>: no such id"
        if element["attrs"].get("aria-invalid") == "true":
            described = element["attrs"].get("aria-describedby", "").split() + [
                token for a in element["ancestors"] if a["tag"] == "fieldset"
                for token in a["attrs"].get("aria-describedby", "").split()]
            errors = [ids[t] for t in described if t in ids and "error" in t]
            assert errors and all(e["text"].strip() for e in errors), \
                f"{where}: <{element['tag']} name={element['attrs'].get('name')!r}> is invalid with no error description"
    return page


@pytest.fixture
def participant(web_study):
    log = AuditLog(actor="test:setup", study=web_study)
    new = recording.enrol(web_study, participant_id="P310", arm=web_study.arms.get(code="immediate"),
                          enrolled_on=timezone.localdate() - timedelta(days=20),
                          facilitators=[web_study.facilitators.get(facilitator_id="F1")], log=log)
    log.write()
    return new


def test_logging_in_with_a_wrong_password(client, accounts):
    response = client.post(reverse("accounts:login"), {"username": "investigator", "password": "not it"})
    page = check_error_page(response.content.decode(), "log in")
    assert "Could not log in" in page.elements[0]["text"]


def test_setting_up_a_study_with_nothing_filled_in(client, accounts):
    response = client_for(client, accounts, "admin").post(reverse("capture:study_create"), {})
    check_error_page(response.content.decode(), "study create")


def test_enrolling_with_missing_fields_ties_each_error_to_its_field(client, accounts):
    response = client_for(client, accounts, "investigator").post(
        reverse("capture:participant_enrol", kwargs={"study": STUDY}), {"participant_id": ""})
    page = check_error_page(response.content.decode(), "enrol")
    ids = page.ids()
    field = ids["id_participant_id"]
    assert field["attrs"].get("aria-invalid") == "true"
    assert "id_participant_id_error" in field["attrs"]["aria-describedby"].split()
    # The facilitators' checkboxes are a group: a fieldset whose legend names it.
    boxes = [e for e in page.elements if e["tag"] == "input" and e["attrs"].get("name") == "facilitators"]
    assert boxes
    for box in boxes:
        groups = [a for a in box["ancestors"] if a["tag"] == "fieldset"]
        assert groups, "a facilitator checkbox outside a fieldset"
        legend = next(e for e in page.elements if e["tag"] == "legend" and groups[-1] in e["ancestors"])
        assert legend["text"].strip().startswith("Facilitators")


def test_inviting_a_member_with_no_email(client, accounts):
    response = client_for(client, accounts, "admin").post(
        reverse("accounts:members", kwargs={"study": STUDY}),
        {"action": "invite", "invite-email": "", "invite-username": "new.person", "invite-role": "monitor"})
    check_error_page(response.content.decode(), "members")


def test_an_adverse_event_with_nothing_filled_in(client, accounts, participant):
    response = client_for(client, accounts, "investigator").post(
        reverse("capture:adverse_event_new", kwargs={"study": STUDY, "participant": participant.participant_id}), {})
    check_error_page(response.content.decode(), "adverse event")


def test_a_staff_entry_dated_in_the_future(client, accounts, participant):
    url = reverse("capture:staff_form", kwargs={"study": STUDY, "participant": participant.participant_id,
                                                 "timepoint": "baseline", "instrument": "grid_hamd17"})
    response = client_for(client, accounts, "investigator").post(url, {
        "_action": "submit", "entry-mode": "paper",
        "entry-assessed_on": (timezone.localdate() + timedelta(days=3)).isoformat()})
    page = check_error_page(response.content.decode(), "staff entry")
    assert page.ids()["id_entry-assessed_on"]["attrs"].get("aria-invalid") == "true"


@pytest.fixture
def token(participant, web_study):
    """A private link to the participant's WAI-SR at the final preparation session."""
    log = AuditLog(actor="test:setup", study=web_study)
    token, _ = recording.create_private_link(participant, web_study.timepoints.get(code="prep"), "wai_sr",
                                             days=7, log=log)
    log.write()
    return token


def test_a_private_link_answer_out_of_range(client, token):
    response = client.post(reverse("capture:private_form", kwargs={"token": token}),
                           {"_action": "submit", "wai_sr_1": "9", "wai_sr_2": "3"})
    assert response.status_code == 400
    page = check_error_page(response.content.decode(), "private link")
    radios = [e for e in page.elements if e["tag"] == "input" and e["attrs"].get("name") == "wai_sr_1"]
    assert radios and all(r["attrs"].get("aria-invalid") == "true" for r in radios)
    untouched = [e for e in page.elements if e["tag"] == "input" and e["attrs"].get("name") == "wai_sr_2"]
    assert untouched and not any("aria-invalid" in r["attrs"] for r in untouched)


def test_a_private_link_submitted_with_too_few_answers_links_each_unanswered_item(client, token, participant):
    response = client.post(reverse("capture:private_form", kwargs={"token": token}),
                           {"_action": "submit", **{f"wai_sr_{k}": "4" for k in range(1, 7)}})
    page = check_error_page(response.content.decode(), "private link, incomplete")
    summary = next(e for e in page.elements if "data-error-summary" in e["attrs"])
    linked = [e["attrs"]["href"] for e in page.elements if e["tag"] == "a" and summary in e["ancestors"]]
    assert linked == [f"#wai_sr_{k}-row" for k in range(7, 13)]
    assert m.Administration.objects.get(participant=participant, instrument="wai_sr").status == "draft"


def test_a_page_without_errors_has_no_error_title(client, accounts):
    response = client_for(client, accounts, "investigator").get(
        reverse("capture:participant_enrol", kwargs={"study": STUDY}))
    page = Page(response.content.decode())
    assert not page.title.strip().startswith("Error")
    assert not [e for e in page.elements if "data-error-summary" in e["attrs"]]


@pytest.mark.parametrize("url", [f"/studies/{STUDY}/audit/?since=yesterday&until=2024-13-40",
                                 f"/monitor/studies/{STUDY}/alerts/?severity=grave"],
                         ids=["audit trail", "alert list"])
def test_a_filter_form_with_a_bad_value(client, accounts, url):
    response = client_for(client, accounts, "investigator").get(url)
    page = check_error_page(response.content.decode(), url)
    # Every filter is optional: "(optional)" is not said on each of them.
    assert not [e for e in page.elements if e["tag"] == "small" and "(optional)" in e["text"]]
