"""WCAG 2.1 A and AA checks with axe-core on every page template, in the states that matter.

Each page state (:data:`STATES`) is one test: a scene (an empty study, the stored ``levin2024``
study with scores, alerts, safety records and links, or a randomised study), a role logged in
(or nobody), and the steps that bring the page into its state — opened, or a form sent with a
mistake in it. axe-core (shipped by ``axe-playwright-python``) then checks the page with the rules
tagged ``wcag2a``, ``wcag2aa``, ``wcag21a`` and ``wcag21aa``, at the phone and at the desktop
viewport; any violation fails the test, with the rule, its impact, its help text and the nodes.

Each state names the page template it shows, and the test checks that the page's response did
render it (Django's ``template_rendered`` signal, which the test environment sends, is recorded
per request to the live server); ``test_every_template_is_checked`` lists the page templates of
the source tree and fails for one that no state shows. Only ``base.html`` and partials (whose
name starts with ``_``) are not states of their own, each for the reason given in
:data:`NOT_PAGES`.

What axe cannot decide (its *incomplete* results: "needs review", such as the contrast of text
over a gradient) is collected from every page and written once, for a person to review, to
``accessibility-review.json`` in a temporary folder, and to ``docs/accessibility-review.json``
when ``ALLIANCE_A11Y_REVIEW=1``. With ``ALLIANCE_A11Y_SCREENSHOTS=<folder>`` every state is also
photographed at both viewports, whole page, for a person to look at (docs/accessibility.md).

Forms are sent with the browser's own validation switched off (``novalidate``), so that the
server's error messages are what is checked, as a browser without that validation shows them.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from ..webapp import OWN, PASSWORD, STUDY
from .conftest import DESKTOP, PHONE
from .test_browser import ROOT, browser_settings  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations", "incomplete"]}
VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}
WEB = ROOT / "src" / "alliance" / "web"
REVIEW_FILE = "accessibility-review.json"
NODES_SHOWN = 6

EMPTY = "pilot"  # the empty study: set up, nobody enrolled
RANDOMISED = "randomised"
NEW = "P001"  # the participant enrolled in the empty study by the states that need one

# Templates that are not pages of their own, and why each is checked through others.
NOT_PAGES = {
    "templates/base.html": "the frame every page extends: checked on every page",
    "templates/_field.html": "a form field: checked on every form page, blank and with errors",
    "templates/_form_errors.html": "a form's own errors: checked on the pages with form errors",
    "capture/templates/capture/_crumbs.html": "breadcrumbs: included by the capture pages",
    "capture/templates/capture/_autosave_status.html": (
        "the status htmx swaps into a questionnaire while it autosaves, not a document: a fragment "
        "of capture/form_page.html"),
    "monitor/templates/monitor/_alert.html": "one alert: included by the alert list and the dashboards",
    "monitor/templates/monitor/_course.html": "a participant's course: included by the participant's dashboard",
    "monitor/templates/monitor/_chart.html": (
        "a chart with its table: included by the study and participant dashboards"),
    "monitor/templates/monitor/_nav.html": "the monitor app's navigation: included by its pages",
    "monitor/templates/monitor/_rule_statuses.html": "the alert rules' states: included by the alert pages",
}


# -- what each response rendered -------------------------------------------------------------------

class RenderedTemplates:
    """The templates each request to the live server rendered, in order of the requests.

    Django's test environment sends ``template_rendered`` for every template rendered (included
    and extended ones too); the live server answers each request in a thread of its own, so the
    signal's thread tells which request rendered a template.
    """

    def __init__(self):
        self.requests: list[dict] = []
        self._current = threading.local()
        self._lock = threading.Lock()

    def request_started(self, sender, environ, **kwargs):
        entry = {"method": environ.get("REQUEST_METHOD"), "path": environ.get("PATH_INFO"),
                 "htmx": "HTTP_HX_REQUEST" in environ, "templates": []}
        self._current.entry = entry
        with self._lock:
            self.requests.append(entry)

    def template_rendered(self, sender, template, context, **kwargs):
        entry = getattr(self._current, "entry", None)
        if entry is not None:
            entry["templates"].append(template.name)

    def of_document(self, path: str) -> list[str]:
        """The templates of the last request for ``path`` (not htmx) that rendered any."""
        with self._lock:
            for entry in reversed(self.requests):
                if entry["path"] == path and not entry["htmx"] and entry["templates"]:
                    return entry["templates"]
        return []


@pytest.fixture
def rendered():
    from django.core.signals import request_started
    from django.test.signals import template_rendered

    record = RenderedTemplates()
    request_started.connect(record.request_started)
    template_rendered.connect(record.template_rendered)
    yield record
    request_started.disconnect(record.request_started)
    template_rendered.disconnect(record.template_rendered)


# -- scenes ------------------------------------------------------------------------------------------

def _log(study=None):
    from alliance.web.audit.log import AuditLog

    return AuditLog(actor="test:setup", study=study)


def _users() -> dict:
    """One account per role, as ``tests/web/webapp.py`` makes them, without the stored study."""
    from django.contrib.auth import get_user_model

    users = {}
    for role in ("admin", "investigator", "facilitator", "monitor", "outsider"):
        user = get_user_model()(username=role, is_superuser=(role == "admin"), is_staff=(role == "admin"))
        user.set_password(PASSWORD)
        user.save()
        users[role] = user
    return users


def _members(study, users: dict) -> None:
    from alliance.web.accounts.members import set_membership

    log = _log(study)
    set_membership(users["investigator"], study, "investigator", log)
    set_membership(users["facilitator"], study, "facilitator", log, facilitator_id="F1")
    set_membership(users["monitor"], study, "monitor", log)
    log.write()


def _empty_scene(request) -> dict:
    """A study set up from the built-in protocol, nobody enrolled."""
    from alliance.protocol import default_protocol
    from alliance.web.capture import recording

    users = _users()
    study = recording.create_study(EMPTY, protocol=default_protocol(), user=users["admin"])
    _members(study, users)
    return {"users": users, "study": study}


def _data_scene(request) -> dict:
    """``levin2024`` (six participants, every form scored), with its alerts, a safety record and links."""
    from alliance.web.capture import models as m
    from alliance.web.capture import recording, safety
    from alliance.web.capture.queries import study_protocol
    from alliance.web.monitor.alerting import refresh_alerts

    study = request.getfixturevalue("web_study")
    accounts = request.getfixturevalue("accounts")
    own = m.Participant.objects.get(study=study, participant_id=OWN)
    log = _log(study)
    safety.record_adverse_event(own, {
        "ae_id": "AE001", "term": "Panic and chest pain two hours after dosing", "onset": "2024-03-10",
        "resolved_on": "2024-03-11", "severity": 3, "serious": True, "seriousness": "hospitalisation",
        "relatedness": "possible", "expected": False, "action": "none", "outcome": "recovered", "code": ""}, log)
    safety.record_adverse_event(own, {
        "ae_id": "AE002", "term": "Headache", "onset": "2024-03-12", "resolved_on": "", "severity": 1,
        "serious": False, "seriousness": "", "relatedness": "unlikely", "expected": True, "action": "none",
        "outcome": "", "code": ""}, log)
    protocol = study_protocol(study)
    for at, systolic, diastolic, rate in (("2024-03-10T09:00", 128.0, 82.0, 70.0), ("2024-03-10T11:00", 175.0, 104.0, 118.0)):
        safety.record_vital_sign(own, protocol, {"session": 1, "measured_at": at, "minutes_after_dose": None,
                                                 "systolic_bp": systolic, "diastolic_bp": diastolic,
                                                 "heart_rate": rate}, log)
    safety.record_medication(own, {"name": "Sertraline", "dose": "50 mg daily", "start": "2023-06-01", "stop": "",
                                   "indication": "depression"}, log)
    prep = study.timepoints.get(code="prep")
    recording.create_private_link(own, prep, "wai_sr", days=7, log=log, user=accounts.investigator)
    recording.create_visit_link(own, study.timepoints.get(code="week1"), expires_at=timezone.now() + timedelta(days=5),
                                log=log, user=accounts.investigator)
    log.write()
    refresh_alerts(study)  # the import's alerts, and those of the serious adverse event and the vital signs
    return {"users": {role: accounts[role] for role in ("admin", "investigator", "facilitator", "monitor",
                                                         "outsider")}, "study": study}


def _randomised_scene(request) -> dict:
    """A study whose protocol randomises by site, without its allocation list yet."""
    import copy

    from alliance.protocol import default_protocol, parse_protocol
    from alliance.web.capture import recording

    raw = copy.deepcopy(default_protocol().to_dict())
    raw["randomisation"] = {"method": "stratified_permuted_blocks", "ratio": {"immediate": 1, "delayed": 1},
                            "block_sizes": [2, 4], "strata": ["site"], "list_length": 20}
    users = _users()
    study = recording.create_study(RANDOMISED, protocol=parse_protocol(raw), user=users["admin"])
    _members(study, users)
    return {"users": users, "study": study}


SCENES = {"empty": _empty_scene, "data": _data_scene, "randomised": _randomised_scene}


# -- a visit to a page state -------------------------------------------------------------------------

@dataclass
class Visit:
    """The browser page of one state, logged in as its role, and the scene's accounts and study."""

    page: object
    users: dict
    study: object
    settings: object
    live_server: object

    def goto(self, path: str, status: int | None = 200):
        response = self.page.goto(path)
        if status is not None:
            assert response.status == status, f"{path}: HTTP {response.status}\n{self.page.locator('body').inner_text()[:2000]}"
        return response

    def submit(self, button: str, status: int | None = None):
        """Send the form of ``button`` (the text of a button in ``main``), the browser's validation off."""
        self.page.evaluate("document.querySelectorAll('form').forEach(form => { form.noValidate = true; })")
        with self.page.expect_navigation() as navigation:
            self.page.locator("main button", has_text=button).first.click()
        response = navigation.value
        if status is not None:
            assert response.status == status, f"HTTP {response.status}\n{self.page.locator('body').inner_text()[:2000]}"
        return response

    def enrol(self, participant_id: str = NEW, email: str | None = None):
        from alliance.web.capture import recording

        log = _log(self.study)
        participant = recording.enrol(
            self.study, participant_id=participant_id, arm=self.study.arms.get(code="immediate"),
            enrolled_on=timezone.localdate() - timedelta(days=20),
            facilitators=[self.study.facilitators.get_or_create(facilitator_id="F1")[0]],
            identifiers={"email": email} if email else {}, log=log)
        log.write()
        return participant

    def private_link(self, instrument: str = "wai_sr", timepoint: str = "prep") -> str:
        from alliance.web.capture import recording

        participant = self.enrol()
        log = _log(self.study)
        token, _link = recording.create_private_link(participant, self.study.timepoints.get(code=timepoint),
                                                     instrument, days=7, log=log)
        log.write()
        return f"/f/{token}/"


@dataclass(frozen=True)
class PageState:
    """A page in one state: the template it shows, the scene it needs, who looks, how it is reached."""

    id: str
    template: str
    scene: str
    role: str | None
    reach: Callable[[Visit], None] = field(compare=False)


STATES: list[PageState] = []


def state(id: str, template: str, scene: str = "empty", role: str | None = "investigator"):
    def register(reach):
        STATES.append(PageState(id, template, scene, role, reach))
        return reach
    return register


def _answer(page, numbers, value: int = 3) -> None:
    for number in numbers:
        page.check(f"input[name=wai_sr_{number}][value='{value}']")


# Accounts ------------------------------------------------------------------------------------------

@state("login", "accounts/login.html", role=None)
def _login(v):
    v.goto("/accounts/login/")


@state("login-wrong-password", "accounts/login.html", role=None)
def _login_wrong_password(v):
    v.goto("/accounts/login/")
    v.page.fill("#id_username", "investigator")
    v.page.fill("#id_password", "not the password")
    v.submit("Log in", status=200)


@state("two_factor-enrol", "accounts/two_factor.html")
def _two_factor_enrol(v):
    v.goto("/accounts/two-factor/")


@state("two_factor-enrol-wrong-code", "accounts/two_factor.html")
def _two_factor_enrol_wrong_code(v):
    v.goto("/accounts/two-factor/")
    v.page.fill("#id_token", "12345")  # five digits: never a code
    v.submit("Confirm", status=400)


def _device(v):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.create(user=v.users["investigator"], name="phone", confirmed=True)


@state("two_factor_verify", "accounts/two_factor_verify.html")
def _two_factor_verify(v):
    _device(v)
    v.goto(f"/studies/{EMPTY}/")  # a user with a device is asked for a code first
    assert urlparse(v.page.url).path == "/accounts/two-factor/verify/"


@state("two_factor_verify-wrong-code", "accounts/two_factor_verify.html")
def _two_factor_verify_wrong_code(v):
    from django_otp.oath import totp

    device = _device(v)
    v.goto("/accounts/two-factor/verify/")
    now = [totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=d) for d in (-1, 0, 1)]
    wrong = next(code for code in range(1, 5) if code not in now)
    v.page.fill("#id_token", f"{wrong:06d}")
    v.submit("Continue", status=400)


def _invited(v) -> str:
    from alliance.web.accounts import invitations

    log = _log()
    user = invitations.invite_user("new.member", "new.member@example.org", log)
    log.write()
    return invitations.set_password_path(user)


@state("set_password", "accounts/set_password.html", role=None)
def _set_password(v):
    v.goto(_invited(v))


@state("set_password-errors", "accounts/set_password.html", role=None)
def _set_password_errors(v):
    v.goto(_invited(v))
    v.page.fill("#id_new_password1", "short")
    v.page.fill("#id_new_password2", "different")
    v.submit("Set my password", status=200)


@state("members", "accounts/members.html", scene="data", role="admin")
def _members_page(v):
    v.goto(f"/accounts/studies/{STUDY}/members/")


@state("members-invite-errors", "accounts/members.html", scene="data", role="admin")
def _members_invite_errors(v):
    v.goto(f"/accounts/studies/{STUDY}/members/")
    v.page.fill("#id_invite-email", "not an address")
    v.submit("Send invitation", status=400)


# Studies -------------------------------------------------------------------------------------------

@state("study_list-none", "capture/study_list.html", role="outsider")
def _study_list_none(v):
    v.goto("/")


@state("study_list", "capture/study_list.html", scene="data")
def _study_list(v):
    v.goto("/")


@state("study_create", "capture/study_create.html", role="admin")
def _study_create(v):
    v.goto("/studies/new/")


@state("study_create-errors", "capture/study_create.html", role="admin")
def _study_create_errors(v):
    v.goto("/studies/new/")
    v.page.check("input[name=source][value=upload]")  # an uploaded protocol, but no name and no file
    v.submit("Set up the study", status=400)


@state("study_detail-empty", "capture/study_detail.html")
def _study_detail_empty(v):
    v.goto(f"/studies/{EMPTY}/")


@state("study_detail", "capture/study_detail.html", scene="data")
def _study_detail(v):
    v.goto(f"/studies/{STUDY}/")


@state("study_import", "capture/study_import.html", role="admin")
def _study_import(v):
    v.goto(f"/studies/{EMPTY}/import/")


@state("study_import-errors", "capture/study_import.html", role="admin")
def _study_import_errors(v):
    v.goto(f"/studies/{EMPTY}/import/")
    v.submit("Check the files", status=400)


@state("study_import-change", "capture/study_import.html", role="admin")
def _study_import_change(v):
    import tempfile

    from alliance.study import save

    from ..conftest import make_study

    folder = Path(tempfile.mkdtemp(prefix="alliance-a11y-import-"))
    save(make_study(n_participants=3), folder)
    v.goto(f"/studies/{EMPTY}/import/")
    v.page.set_input_files("#id_participants", str(folder / "participants.csv"))
    v.page.set_input_files("#id_responses", str(folder / "responses.csv"))
    v.submit("Check the files", status=200)
    assert v.page.locator("main button", has_text="Import").count() == 1


# Participants --------------------------------------------------------------------------------------

@state("participant_form-enrol", "capture/participant_form.html")
def _participant_enrol(v):
    v.goto(f"/studies/{EMPTY}/participants/new/")


@state("participant_form-enrol-errors", "capture/participant_form.html")
def _participant_enrol_errors(v):
    v.goto(f"/studies/{EMPTY}/participants/new/")
    v.page.fill("#id_participant_id", "no spaces allowed")
    v.page.fill("#id_enrolled_on", "")
    v.submit("Enrol", status=400)


@state("participant_form-edit", "capture/participant_form.html", scene="data")
def _participant_edit(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/edit/")


def _allocation_list(v):
    from alliance.web.capture import randomising
    from alliance.web.capture.queries import study_protocol

    log = _log(v.study)
    randomising.generate_list(v.study, study_protocol(v.study), seed=4242,
                              strata_values={"site": ["Baltimore", "Denver"]}, user=v.users["admin"], log=log)
    log.write()


@state("participant_form-randomised-errors", "capture/participant_form.html", scene="randomised")
def _participant_randomised_errors(v):
    _allocation_list(v)
    v.goto(f"/studies/{RANDOMISED}/participants/new/")
    v.page.fill("#id_participant_id", "R001")  # no site, not confirmed eligible
    v.submit("Enrol", status=400)


@state("participant_detail", "capture/participant_detail.html", scene="data")
def _participant_detail(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/")


@state("participant_detail-new", "capture/participant_detail.html")
def _participant_detail_new(v):
    v.enrol(email="sam@example.org")
    v.goto(f"/studies/{EMPTY}/participants/{NEW}/")


@state("dosing_form", "capture/dosing_form.html", scene="data")
def _dosing_form(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/dosing/")


@state("dosing_form-errors", "capture/dosing_form.html", scene="data")
def _dosing_form_errors(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/dosing/")
    v.page.fill("#id_compound", "")
    v.page.fill("#id_amount", "-5")
    v.page.fill("#id_date", "")
    v.submit("Record", status=400)


# Links and questionnaires --------------------------------------------------------------------------

@state("link_form", "capture/link_form.html", scene="data")
def _link_form(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/links/new/")


@state("link_form-errors", "capture/link_form.html", scene="data")
def _link_form_errors(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/links/new/")
    v.page.fill("#id_days", "0")
    v.submit("Make the link", status=400)


@state("link_created", "capture/link_created.html", scene="data")
def _link_created(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/links/new/")
    v.page.select_option("#id_form", value="prep:wai_sr")
    v.submit("Make the link", status=200)


@state("link_created-visit", "capture/link_created.html")
def _link_created_visit(v):
    v.enrol()
    v.goto(f"/studies/{EMPTY}/participants/{NEW}/")
    with v.page.expect_navigation():
        v.page.locator("main button", has_text="visit link").first.click()


@state("links", "capture/links.html", scene="data")
def _links(v):
    v.goto(f"/studies/{STUDY}/links/")


@state("form_page-staff-entry", "capture/form_page.html")
def _staff_entry(v):
    v.enrol()
    v.goto(f"/studies/{EMPTY}/participants/{NEW}/forms/baseline/grid_hamd17/")


@state("form_page-staff-entry-errors", "capture/form_page.html")
def _staff_entry_errors(v):
    v.enrol()
    v.goto(f"/studies/{EMPTY}/participants/{NEW}/forms/baseline/grid_hamd17/")
    v.page.fill("#id_entry-assessed_on", (timezone.localdate() + timedelta(days=3)).isoformat())
    v.submit("Submit", status=400)


@state("form_submitted", "capture/form_submitted.html", scene="data")
def _form_submitted(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/forms/baseline/grid_hamd17/")


@state("form_page-questionnaire", "capture/form_page.html", role=None)
def _questionnaire(v):
    v.goto(v.private_link())


@state("form_page-questionnaire-errors", "capture/form_page.html", role=None)
def _questionnaire_errors(v):
    v.goto(v.private_link())
    _answer(v.page, range(1, 11))
    # Item 11 answered out of range (as a tampered or stale page would send it); item 12 not answered.
    v.page.evaluate("document.querySelector(\"input[name=wai_sr_11][value='3']\").value = '9'")
    v.page.check("input[name=wai_sr_11][value='9']")
    v.submit("Submit", status=400)


@state("form_thanks", "capture/form_thanks.html", role=None)
def _form_thanks(v):
    v.goto(v.private_link())
    _answer(v.page, range(1, 13))
    v.submit("Submit", status=200)


@state("link_closed-used", "capture/link_closed.html", role=None)
def _link_closed(v):
    link = v.private_link()
    v.goto(link)
    _answer(v.page, range(1, 13))
    v.submit("Submit", status=200)
    v.goto(link, status=410)


@state("visit", "capture/visit.html", role=None)
def _visit(v):
    from alliance.web.capture import recording

    participant = v.enrol()
    log = _log(v.study)
    token, _link = recording.create_visit_link(participant, v.study.timepoints.get(code="baseline"),
                                               expires_at=timezone.now() + timedelta(days=5), log=log)
    log.write()
    v.goto(f"/v/{token}/")


@state("opt_out", "capture/opt_out.html", role=None)
def _opt_out(v):
    from alliance.web.capture import invitations

    v.goto(f"/o/{invitations.opt_out_token(v.enrol(email='sam@example.org'))}/")


@state("opt_out-done", "capture/opt_out.html", role=None)
def _opt_out_done(v):
    from alliance.web.capture import invitations

    v.goto(f"/o/{invitations.opt_out_token(v.enrol(email='sam@example.org'))}/")
    v.submit("Stop the emails", status=200)


# Safety and randomisation --------------------------------------------------------------------------

@state("study_safety-empty", "capture/study_safety.html")
def _study_safety_empty(v):
    v.goto(f"/studies/{EMPTY}/safety/")


@state("study_safety", "capture/study_safety.html", scene="data")
def _study_safety(v):
    v.goto(f"/studies/{STUDY}/safety/")


@state("participant_safety", "capture/participant_safety.html", scene="data")
def _participant_safety(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/safety/")


@state("safety_form-adverse-event", "capture/safety_form.html", scene="data")
def _adverse_event(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/adverse-events/new/")


@state("safety_form-adverse-event-errors", "capture/safety_form.html", scene="data")
def _adverse_event_errors(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/adverse-events/new/")
    v.page.fill("#id_resolved_on", "2024-01-01")  # no term, no onset, resolved without a start
    v.submit("Record", status=400)


@state("safety_form-vital-signs-errors", "capture/safety_form.html", scene="data", role="facilitator")
def _vital_signs_errors(v):
    v.goto(f"/studies/{STUDY}/participants/{OWN}/vital-signs/new/")
    v.page.fill("#id_measured_at", "2024-03-10T09:00")
    v.page.fill("#id_systolic_bp", "80")
    v.page.fill("#id_diastolic_bp", "120")  # above the systolic pressure
    v.submit("Record", status=400)


@state("randomisation", "capture/randomisation.html", scene="randomised", role="admin")
def _randomisation(v):
    v.goto(f"/studies/{RANDOMISED}/randomisation/")


@state("randomisation-list", "capture/randomisation.html", scene="randomised", role="admin")
def _randomisation_list(v):
    v.goto(f"/studies/{RANDOMISED}/randomisation/")
    v.page.fill("#id_seed", "4242")
    v.page.fill("#id_values_site", "Baltimore, Denver")
    v.submit("Generate the allocation list", status=200)


@state("randomisation_pending", "capture/randomisation_pending.html", scene="randomised")
def _randomisation_pending(v):
    v.goto(f"/studies/{RANDOMISED}/participants/new/", status=409)


# Exports and the audit trail -----------------------------------------------------------------------

@state("exports", "capture/exports.html", scene="data")
def _exports(v):
    v.goto(f"/studies/{STUDY}/exports/")


@state("audit_trail", "audit/audit_trail.html", scene="data")
def _audit_trail(v):
    v.goto(f"/studies/{STUDY}/audit/?size=25")  # the smallest page the trail offers: the same rows, fewer


@state("audit_trail-errors", "audit/audit_trail.html", scene="data")
def _audit_trail_errors(v):
    v.goto(f"/studies/{STUDY}/audit/?since=yesterday&until=2024-13-40", status=400)


# Monitoring ----------------------------------------------------------------------------------------

@state("study_dashboard-empty", "monitor/study_dashboard.html")
def _study_dashboard_empty(v):
    v.goto(f"/monitor/studies/{EMPTY}/")


@state("study_dashboard", "monitor/study_dashboard.html", scene="data")
def _study_dashboard(v):
    v.goto(f"/monitor/studies/{STUDY}/")


@state("participant_dashboard", "monitor/participant_dashboard.html", scene="data")
def _participant_dashboard(v):
    v.goto(f"/monitor/studies/{STUDY}/participants/{OWN}/")


@state("participant_dashboard-new", "monitor/participant_dashboard.html")
def _participant_dashboard_new(v):
    v.enrol()
    v.goto(f"/monitor/studies/{EMPTY}/participants/{NEW}/")


@state("alert_list-empty", "monitor/alert_list.html")
def _alert_list_empty(v):
    v.goto(f"/monitor/studies/{EMPTY}/alerts/")


@state("alert_list", "monitor/alert_list.html", scene="data")
def _alert_list(v):
    v.goto(f"/monitor/studies/{STUDY}/alerts/")


@state("alert_list-bad-filter", "monitor/alert_list.html", scene="data")
def _alert_list_bad_filter(v):
    v.goto(f"/monitor/studies/{STUDY}/alerts/?severity=grave&participant=P999", status=None)
    assert v.page.locator("main .errorlist").count() >= 1


@state("alert_settings", "monitor/alert_settings.html", scene="data", role="admin")
def _alert_settings(v):
    v.goto(f"/monitor/studies/{STUDY}/alerts/settings/")


@state("facilitator_list-empty", "monitor/facilitator_list.html")
def _facilitator_list_empty(v):
    v.goto(f"/monitor/studies/{EMPTY}/facilitators/")


@state("facilitator_list", "monitor/facilitator_list.html", scene="data")
def _facilitator_list(v):
    v.goto(f"/monitor/studies/{STUDY}/facilitators/")


@state("facilitator", "monitor/facilitator.html", scene="data")
def _facilitator(v):
    v.goto(f"/monitor/studies/{STUDY}/facilitators/F1/")


@state("quality-empty", "monitor/quality.html")
def _quality_empty(v):
    v.goto(f"/monitor/studies/{EMPTY}/quality/")


@state("quality", "monitor/quality.html", scene="data")
def _quality(v):
    v.goto(f"/monitor/studies/{STUDY}/quality/")


# Error pages ---------------------------------------------------------------------------------------

@state("403", "403.html", role="outsider")
def _forbidden(v):
    v.goto(f"/studies/{EMPTY}/", status=403)


@state("404", "404.html")
def _not_found(v):
    v.goto(f"/studies/{EMPTY}/participants/P999/", status=404)


@state("403_csrf", "403_csrf.html", role=None)
def _csrf_failure(v):
    v.goto("/accounts/login/")
    v.page.context.clear_cookies()  # the form's token no longer matches a cookie
    v.page.fill("#id_username", "investigator")
    v.page.fill("#id_password", PASSWORD)
    v.submit("Log in", status=403)


@state("500", "500.html", role=None)
def _server_error(v):
    from .server_error_urls import SERVER_ERROR  # imports the app's URLs: only once Django is set up

    v.settings.ROOT_URLCONF = "tests.web.browser.server_error_urls"
    v.goto(SERVER_ERROR, status=500)


# -- axe ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def axe():
    """axe-core as ``axe-playwright-python`` ships it."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        message = "axe-playwright-python is not installed (`pip install -r requirements/dev-lock.txt`)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the accessibility tests: {message}")
        pytest.skip(message)
    return Axe()


@pytest.fixture(scope="module")
def needs_review(tmp_path_factory, request):
    """What axe could not decide, by rule and page state, written once when the module is done."""
    found: dict[str, dict] = {}
    yield found
    if not found:
        return
    document = {
        "about": ("axe-core's 'incomplete' results (needs review) of tests/web/browser/test_accessibility.py: "
                  "what axe could not decide, for a person to check once, by rule and page state"),
        "tags": WCAG_TAGS, "rules": dict(sorted(found.items()))}
    targets = [tmp_path_factory.mktemp("a11y") / REVIEW_FILE]
    if os.environ.get("ALLIANCE_A11Y_REVIEW") == "1":
        targets.append(ROOT / "docs" / REVIEW_FILE)
    for target in targets:
        target.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # said on the terminal, passed or failed
            reporter.write_line(f"\naccessibility: axe's needs-review results written to "
                                f"{', '.join(map(str, targets))}")


def _short(html: str, limit: int = 160) -> str:
    text = " ".join(html.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _target(node: dict) -> str:
    return " ".join(str(part) for part in node["target"])


def _by_rule(results: dict[str, dict], kind: str) -> dict[str, dict]:
    """``results`` (axe's answer per viewport) as rule → its facts and nodes, each with its viewports."""
    rules: dict[str, dict] = {}
    for viewport, answer in results.items():
        for rule in answer[kind]:
            entry = rules.setdefault(rule["id"], {"impact": rule["impact"], "help": rule["help"],
                                                  "helpUrl": rule["helpUrl"], "nodes": {}})
            for node in rule["nodes"]:
                messages = [check["message"] for group in ("any", "all", "none") for check in node.get(group, [])]
                shown = entry["nodes"].setdefault(_target(node), {"html": _short(node["html"]), "why": messages,
                                                                  "viewports": []})
                shown["viewports"].append(viewport)
    return rules


def describe_violations(state_id: str, results: dict[str, dict]) -> str:
    """Each violated rule with its impact, help and offending nodes (target and a short snippet)."""
    lines = []
    for rule_id, rule in _by_rule(results, "violations").items():
        lines.append(f"{rule_id} ({rule['impact']}): {rule['help']} <{rule['helpUrl']}>")
        for number, (target, node) in enumerate(rule["nodes"].items()):
            if number == NODES_SHOWN:
                lines.append(f"    … and {len(rule['nodes']) - NODES_SHOWN} more")
                break
            lines.append(f"    [{', '.join(node['viewports'])}] {target}: {node['html']}")
            if node["why"]:
                lines.append(f"        {node['why'][0]}")
    return f"axe found WCAG 2.1 A/AA violations on {state_id}:\n" + "\n".join(lines) if lines else ""


@pytest.mark.parametrize("page_state", STATES, ids=[s.id for s in STATES])
def test_page_state_meets_wcag_21_aa(page_state, request, new_page, browser_settings, live_server,  # noqa: F811
                                     rendered, axe, needs_review):
    scene = SCENES[page_state.scene](request)
    page = new_page(DESKTOP)
    role = page_state.role
    if role is not None:  # logged in by cookie: the log-in page is a state of its own
        from django.conf import settings
        from django.test import Client

        client = Client()
        client.force_login(scene["users"][role])
        page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                                   "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])
    visit = Visit(page, scene["users"], scene["study"], browser_settings, live_server)
    page_state.reach(visit)

    templates = rendered.of_document(urlparse(page.url).path)
    assert page_state.template in templates, (
        f"{page_state.id} should show {page_state.template}; {page.url} rendered {templates}")

    results = {}
    for name, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)
        results[name] = axe.run(page, options=AXE_OPTIONS).response
        if os.environ.get("ALLIANCE_A11Y_SCREENSHOTS"):  # a folder: every state as a person sees it, to look at
            folder = Path(os.environ["ALLIANCE_A11Y_SCREENSHOTS"])
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / f"{page_state.id}-{name}.png"), full_page=True)
    for rule_id, rule in _by_rule(results, "incomplete").items():
        entry = needs_review.setdefault(rule_id, {k: rule[k] for k in ("impact", "help", "helpUrl")} | {"pages": {}})
        entry["pages"][page_state.id] = [{"target": target, **node} for target, node in rule["nodes"].items()]
    message = describe_violations(page_state.id, results)
    if message:
        pytest.fail(message, pytrace=False)


def _page_templates() -> dict[str, str]:
    """Every template of the web app, by the name Django loads it by → its path under ``src/alliance/web``."""
    found = {}
    for path in sorted(WEB.rglob("*.html")):
        relative = path.relative_to(WEB).as_posix()
        parts = relative.split("/")
        name = "/".join(parts[parts.index("templates") + 1:])
        found[name] = relative
    return found


def test_every_template_is_checked():
    templates = _page_templates()
    assert templates, f"no templates found under {WEB}"
    unknown = sorted(set(NOT_PAGES) - set(templates.values()))
    assert not unknown, f"NOT_PAGES names templates that do not exist: {unknown}"
    not_pages = {path for path in templates.values() if path in NOT_PAGES}
    assert all(Path(p).name.startswith("_") or Path(p).name == "base.html" for p in not_pages), (
        "only base.html and partials (_*.html) may be left to the pages that include them")
    pages = {name for name, path in templates.items() if path not in NOT_PAGES}
    checked = {s.template for s in STATES}
    unchecked = sorted(pages - checked)
    assert not unchecked, f"page templates no accessibility state shows: {unchecked}"
    partials = sorted(p for p in templates.values() if Path(p).name.startswith("_") and p not in NOT_PAGES)
    assert not partials, f"partials not in NOT_PAGES (say which pages check them): {partials}"
    assert not sorted(checked - pages), f"states name templates that are not pages: {sorted(checked - pages)}"
    assert len({s.id for s in STATES}) == len(STATES), "two states have one id"
