"""Authorization matrix: every URL pattern of the project × every role, with the status codes allowed.

Built from the roles each view declares (``alliance.web.accounts.access.study_view`` and the views'
docstrings; the monitor app's in docs/monitor.md), and checked to cover every pattern Django
resolves: a new URL without a row here fails :func:`test_every_url_pattern_is_in_the_matrix`.

Roles (fixtures of tests/web/webapp.py): ``admin`` (superuser), ``investigator``,
``facilitator_own`` (the facilitator F1 on their participant P003), ``facilitator_other`` (the same
facilitator on P002, another facilitator's participant), ``monitor``, ``outsider`` (logged in,
no role in the study) and ``anonymous``. Private form links are checked on their own: a valid,
a used and an expired link, and a wrong token, for every role.

Each request carries the minimum (empty POST data): the matrix is about who gets in, not about the
forms, which their own tests cover. Write endpoints that would do heavy work (running the analysis)
are stubbed.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from alliance.analysis import Results
from alliance.web.audit.log import AuditLog
from alliance.web.capture import models as m
from alliance.web.capture import recording
from alliance.web.monitor import views as monitor_views
from alliance.web.monitor.models import Alert, AnalysisRun

from .webapp import OTHER, OWN, STUDY

pytestmark = pytest.mark.django_db

ROLES = ("admin", "investigator", "facilitator_own", "facilitator_other", "monitor", "outsider", "anonymous")
# The account each role logs in with (None: anonymous).
ACCOUNT = {"admin": "admin", "investigator": "investigator", "facilitator_own": "facilitator",
           "facilitator_other": "facilitator", "monitor": "monitor", "outsider": "outsider", "anonymous": None}

# url name, method, expected status per role in the order of ROLES. "302" for anonymous on a study
# page is the redirect to the login page (checked below).
MATRIX = [
    ("accounts:login", "GET", "302 302 302 302 302 302 200"),
    ("accounts:login", "POST", "302 302 302 302 302 302 200"),
    ("accounts:logout", "GET", "405 405 405 405 405 405 405"),
    ("accounts:logout", "POST", "302 302 302 302 302 302 302"),
    # The second factor (accounts/two_factor.py): any logged-in user may enrol; without a device the
    # verification step sends them on. An empty POST is an invalid code.
    ("accounts:two_factor", "GET", "200 200 200 200 200 200 302"),
    ("accounts:two_factor", "POST", "400 400 400 400 400 400 302"),
    ("accounts:two_factor_verify", "GET", "302 302 302 302 302 302 302"),
    ("accounts:two_factor_verify", "POST", "302 302 302 302 302 302 302"),
    ("accounts:members", "GET", "200 200 403 403 403 403 302"),
    ("accounts:members", "POST", "400 400 403 403 403 403 302"),
    # An invited member's set-password link: the token is the key, not a role; a wrong token is 404 for all.
    ("accounts:set_password", "GET", "404 404 404 404 404 404 404"),
    ("accounts:set_password", "POST", "404 404 404 404 404 404 404"),
    ("capture:study_list", "GET", "200 200 200 200 200 200 302"),
    ("capture:study_create", "GET", "200 403 403 403 403 403 302"),
    ("capture:study_create", "POST", "400 403 403 403 403 403 302"),
    ("capture:study_detail", "GET", "200 200 200 200 200 403 302"),
    # Importing files (capture/uploads.py): the study's admins only; an empty POST is an invalid form.
    ("capture:study_import", "GET", "200 403 403 403 403 403 302"),
    ("capture:study_import", "POST", "400 403 403 403 403 403 302"),
    ("capture:participant_enrol", "GET", "200 200 403 403 403 403 302"),
    ("capture:participant_enrol", "POST", "400 400 403 403 403 403 302"),
    ("capture:participant_detail", "GET", "200 200 200 404 200 403 302"),
    ("capture:participant_edit", "GET", "200 200 403 403 403 403 302"),
    ("capture:participant_edit", "POST", "400 400 403 403 403 403 302"),
    ("capture:dosing_record", "GET", "200 200 200 404 403 403 302"),
    ("capture:dosing_record", "POST", "400 400 400 404 403 403 302"),
    ("capture:link_create", "GET", "200 200 200 404 403 403 302"),
    ("capture:link_create", "POST", "400 400 400 404 403 403 302"),
    # Every form of P003 is submitted in the fixture study: the page says so (200), a POST redirects.
    ("capture:staff_form", "GET", "200 200 200 404 403 403 302"),
    ("capture:staff_form", "POST", "302 302 302 404 403 403 302"),
    # Private links of the study (capture/visit_views.py): staff who make links; a facilitator sees and
    # acts on their own participants' links only. Monitors do not: a link is a way into a participant's forms.
    ("capture:links", "GET", "200 200 200 200 403 403 302"),
    ("capture:links", "POST", "405 405 405 405 403 403 302"),
    ("capture:link_revoke", "GET", "405 405 405 405 403 403 302"),
    ("capture:link_revoke", "POST", "302 302 302 404 403 403 302"),
    # P003 has no email address in the fixture: the page says so and redirects, nothing is sent.
    ("capture:link_resend", "GET", "405 405 405 405 403 403 302"),
    ("capture:link_resend", "POST", "302 302 302 404 403 403 302"),
    ("capture:visit_link_create", "GET", "405 405 405 405 403 403 302"),
    ("capture:visit_link_create", "POST", "200 200 200 404 403 403 302"),
    # An empty POST does not say which way: 400.
    ("capture:email_preference", "GET", "405 405 405 405 403 403 302"),
    ("capture:email_preference", "POST", "400 400 400 404 403 403 302"),
    # The safety record (capture/safety_views.py): everyone in the study reads it (facilitators their own
    # participants'); adverse events and medications are written by admins and investigators, vital
    # signs also by facilitators. No event or medication with those keys exists: 404 for who may write.
    ("capture:study_safety", "GET", "200 200 200 200 200 403 302"),
    ("capture:study_safety", "POST", "405 405 405 405 405 403 302"),
    ("capture:participant_safety", "GET", "200 200 200 404 200 403 302"),
    ("capture:participant_safety", "POST", "405 405 405 405 405 403 302"),
    ("capture:adverse_event_new", "GET", "200 200 403 403 403 403 302"),
    ("capture:adverse_event_new", "POST", "400 400 403 403 403 403 302"),
    ("capture:adverse_event_edit", "GET", "404 404 403 403 403 403 302"),
    ("capture:adverse_event_edit", "POST", "404 404 403 403 403 403 302"),
    ("capture:vital_sign_new", "GET", "200 200 200 404 403 403 302"),
    ("capture:vital_sign_new", "POST", "400 400 400 404 403 403 302"),
    ("capture:medication_new", "GET", "200 200 403 403 403 403 302"),
    ("capture:medication_new", "POST", "400 400 403 403 403 403 302"),
    ("capture:medication_edit", "GET", "404 404 403 403 403 403 302"),
    ("capture:medication_edit", "POST", "404 404 403 403 403 403 302"),
    # The allocation list: the unblinded role (admin) only; this study is not randomised (404 for the admin).
    ("capture:randomisation", "GET", "404 403 403 403 403 403 302"),
    ("capture:randomisation", "POST", "404 403 403 403 403 403 302"),
    ("capture:exports", "GET", "200 200 403 403 200 403 302"),
    ("capture:export_download", "GET", "405 405 403 403 405 403 302"),
    ("capture:export_download", "POST", "200 200 403 403 200 403 302"),        # de-identified
    ("capture:export_download", "POST tidy", "200 200 403 403 403 403 302"),   # with identifiers
    ("capture:audit_trail", "GET", "200 200 403 403 403 403 302"),
    ("monitor:study", "GET", "200 200 200 200 200 403 302"),
    ("monitor:participant", "GET", "200 200 200 404 200 403 302"),
    ("monitor:alerts", "GET", "200 200 200 200 200 403 302"),
    # The data-quality page (monitor/quality.py): the whole study, so not facilitators; read-only.
    ("monitor:quality", "GET", "200 200 403 403 200 403 302"),
    ("monitor:quality", "POST", "405 405 403 403 405 403 302"),
    # The per-facilitator view (monitor/facilitators.py): a facilitator sees their own row and page (F1);
    # another facilitator's page (F2) is 404, as another facilitator's participant. Read-only.
    ("monitor:facilitators", "GET", "200 200 200 200 200 403 302"),
    ("monitor:facilitators", "POST", "405 405 405 405 405 403 302"),
    ("monitor:facilitator", "GET", "200 200 200 404 200 403 302"),
    ("monitor:facilitator", "POST", "405 405 405 405 405 403 302"),
    ("monitor:acknowledge", "GET", "405 405 405 405 403 403 302"),
    ("monitor:acknowledge", "POST", "302 302 302 404 403 403 302"),
    # Bulk acknowledge and assign (the triage list): writes, so never monitors; an empty POST selects
    # nothing and is sent back to the list with a message.
    ("monitor:alerts_acknowledge", "GET", "405 405 405 405 403 403 302"),
    ("monitor:alerts_acknowledge", "POST", "302 302 302 302 403 403 302"),
    ("monitor:alerts_assign", "GET", "405 405 405 405 403 403 302"),
    ("monitor:alerts_assign", "POST", "302 302 302 302 403 403 302"),
    # The site's crisis text and country: admins and investigators; an empty POST is a valid form
    # (blank: the protocol's text) and redirects.
    ("monitor:alert_settings", "GET", "200 200 403 403 403 403 302"),
    ("monitor:alert_settings", "POST", "302 302 403 403 403 403 302"),
    ("monitor:analysis_run", "GET", "405 405 403 403 403 403 302"),
    ("monitor:analysis_run", "POST", "302 302 403 403 403 403 302"),
    ("monitor:analysis_file", "GET", "405 405 403 403 405 403 302"),
    ("monitor:analysis_file", "POST", "200 200 403 403 200 403 302"),
    # Django's language switcher: no study data, open to anyone (participants on private links); it
    # redirects back to the page it came from, or to the site's root.
    ("set_language", "GET", "302 302 302 302 302 302 302"),
    ("set_language", "POST", "302 302 302 302 302 302 302"),
]
# Checked by test_private_links instead of the matrix (no role: the link is the key).
OWN_TESTS = {"capture:private_form", "capture:visit", "capture:visit_form", "capture:opt_out"}


def _pattern_names(resolver=None, namespace: str = "") -> set[str]:
    names = set()
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            names |= _pattern_names(entry, inner)
        elif isinstance(entry, URLPattern):
            assert entry.name, f"URL pattern {entry.pattern} has no name, so no row of the matrix can name it"
            names.add(f"{namespace}{entry.name}")
    return names


def test_every_url_pattern_is_in_the_matrix():
    resolved = _pattern_names()
    covered = {name for name, _, _ in MATRIX} | OWN_TESTS
    assert resolved - covered == set(), f"URL patterns without a row in the authorization matrix: {resolved - covered}"
    assert covered - resolved == set(), f"rows for URL patterns that no longer exist: {covered - resolved}"


@pytest.fixture
def world(web_study, accounts, settings, tmp_path, monkeypatch):
    """Alerts on P003 and P002, a finished analysis run with its files, and a stubbed analysis."""
    log = AuditLog(actor="test:setup", study=web_study)
    alerts = {}
    for pid in (OWN, OTHER):
        participant = m.Participant.objects.get(study=web_study, participant_id=pid)
        alerts[pid] = Alert.objects.create(study=web_study, participant=participant, rule="low_alliance",
                                           rule_type="low_alliance", timepoint="prep", severity="warning",
                                           reason="WAI-SR total 20 at the final preparation session is low")
    log.write()
    settings.DATA_DIR = tmp_path
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(Results().to_dict()), encoding="utf-8")
    AnalysisRun.objects.create(study=web_study, status=AnalysisRun.Status.DONE, output_dir=str(folder),
                               n_participants=6, seconds=1.0, finished_at=timezone.now())

    def stub_run(study, user):
        return AnalysisRun.objects.create(study=study, started_by=user, status=AnalysisRun.Status.DONE,
                                          output_dir=str(folder), n_participants=6, seconds=0.0,
                                          finished_at=timezone.now())

    monkeypatch.setattr(monitor_views, "run_study_analysis", stub_run)
    visit_links = {}
    for pid in (OWN, OTHER):
        participant = m.Participant.objects.get(study=web_study, participant_id=pid)
        _, visit_links[pid] = recording.create_visit_link(
            participant, web_study.timepoints.get(code="prep"), expires_at=timezone.now() + timedelta(days=3),
            log=log)
    log.write()
    return {"study": web_study, "accounts": accounts, "alerts": alerts, "visit_links": visit_links}


def _url(name: str, variant: str, role: str, world) -> str:
    participant = OTHER if role == "facilitator_other" else OWN
    kwargs = {"study": STUDY}
    if name in ("capture:participant_detail", "capture:participant_edit", "capture:dosing_record",
                "capture:link_create", "monitor:participant", "capture:participant_safety",
                "capture:adverse_event_new", "capture:vital_sign_new", "capture:medication_new"):
        kwargs["participant"] = participant
    elif name == "capture:adverse_event_edit":
        kwargs.update(participant=participant, ae_id="AE-404")
    elif name == "capture:medication_edit":
        kwargs.update(participant=participant, pk=999999)
    elif name == "capture:visit_link_create":
        kwargs.update(participant=participant, timepoint="prep")
    elif name == "capture:email_preference":
        kwargs["participant"] = participant
    elif name in ("capture:link_revoke", "capture:link_resend"):
        kwargs.update(kind="visit", pk=world["visit_links"][participant].pk)
    elif name == "capture:staff_form":
        kwargs.update(participant=participant, timepoint="baseline", instrument="grid_hamd17")
    elif name == "capture:export_download":
        kwargs["kind"] = "tidy" if variant == "tidy" else "deidentified"
    elif name == "monitor:facilitator":
        kwargs["facilitator"] = "F2" if role == "facilitator_other" else "F1"
    elif name == "monitor:acknowledge":
        kwargs["alert"] = world["alerts"][participant].pk
    elif name == "monitor:analysis_file":
        kwargs["name"] = "results.json"
    elif name == "accounts:set_password":
        kwargs = {"uidb64": "MQ", "token": "cxyz12-0123456789abcdef0123456789abcdef"}
    elif name in ("accounts:login", "accounts:logout", "accounts:two_factor", "accounts:two_factor_verify",
                  "capture:study_list", "capture:study_create", "set_language"):
        kwargs = {}
    return reverse(name, kwargs=kwargs)


@pytest.mark.parametrize(("name", "method", "expected"), MATRIX, ids=[f"{n} {m}" for n, m, _ in MATRIX])
def test_matrix(world, name, method, expected):
    verb, _, variant = method.partition(" ")
    got = {}
    for role in ROLES:
        client = Client()
        if ACCOUNT[role] is not None:
            client.force_login(world["accounts"][ACCOUNT[role]])
        url = _url(name, variant, role, world)
        response = client.get(url) if verb == "GET" else client.post(url, {})
        got[role] = response.status_code
        if role == "anonymous" and response.status_code == 302 and name not in ("accounts:logout", "set_language"):
            assert response["Location"].startswith(reverse("accounts:login")), (name, response["Location"])
    wanted = dict(zip(ROLES, (int(s) for s in expected.split()), strict=True))
    assert got == wanted, f"{name} {method}: " + ", ".join(
        f"{role} got {got[role]}, expected {wanted[role]}" for role in ROLES if got[role] != wanted[role])


# -- facilitator-rated forms -----------------------------------------------------------------------

# capture:staff_form for a facilitator-rated form (the WAI-SR-T), in the study re-imported with it
# (tests/web/conftest.py, make_rated_study): P003 (facilitators F3 and F1) is rated by both, so each
# rating is submitted and a POST that names one redirects ("submitted already"). ``facilitator`` is
# F1: their own rating, or their colleague F3's (refused, 403). An admin's POST that names nobody
# is an invalid form (400); a facilitator's names themselves.
RATING_MATRIX = [
    ("GET", "F1", "200 200 200 404 403 403 302"),
    ("GET", "F3", "200 200 403 404 403 403 302"),
    ("GET", "", "200 200 200 404 403 403 302"),
    ("POST", "F1", "302 302 302 404 403 403 302"),
    ("POST", "F3", "302 302 403 404 403 403 302"),
    ("POST", "", "400 400 302 404 403 403 302"),
]


@pytest.mark.parametrize(("method", "facilitator", "expected"), RATING_MATRIX,
                         ids=[f"{m} {f or 'nobody'}" for m, f, _ in RATING_MATRIX])
def test_facilitator_rating_matrix(world, method, facilitator, expected):
    from alliance.web.capture.storage import import_study

    from .conftest import make_rated_study

    import_study(make_rated_study(), STUDY, actor="test:setup")
    got = {}
    for role in ROLES:
        client = Client()
        if ACCOUNT[role] is not None:
            client.force_login(world["accounts"][ACCOUNT[role]])
        participant = OTHER if role == "facilitator_other" else OWN
        url = reverse("capture:staff_form", kwargs={"study": STUDY, "participant": participant, "timepoint": "prep",
                                                    "instrument": "wai_sr_t"})
        if method == "GET":
            response = client.get(url + (f"?facilitator={facilitator}" if facilitator else ""))
        else:
            response = client.post(url, {"entry-rater": facilitator} if facilitator else {})
        got[role] = response.status_code
    wanted = dict(zip(ROLES, (int(s) for s in expected.split()), strict=True))
    assert got == wanted, f"{method} {facilitator}: " + ", ".join(
        f"{role} got {got[role]}, expected {wanted[role]}" for role in ROLES if got[role] != wanted[role])


# -- private links ---------------------------------------------------------------------------------

def _link(study, participant_id: str, timepoint: str = "prep", instrument: str = "wai_sr"):
    log = AuditLog(actor="test:setup", study=study)
    participant = m.Participant.objects.get(study=study, participant_id=participant_id)
    token, link = recording.create_private_link(participant, study.timepoints.get(code=timepoint), instrument,
                                                days=7, log=log)
    log.write()
    return token, link


def test_private_links(world):
    study, accounts = world["study"], world["accounts"]
    log = AuditLog(actor="test:setup", study=study)
    for pid in ("P100", "P101"):
        recording.enrol(study, participant_id=pid, arm=study.arms.get(code="immediate"),
                        enrolled_on=timezone.localdate(), log=log)
    log.write()
    valid, _ = _link(study, "P100")
    expired, expired_link = _link(study, "P101")
    m.PrivateLink.objects.filter(pk=expired_link.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    used, _ = _link(study, OWN)   # P003's WAI-SR at prep is submitted already: the link is used up
    for role in ROLES:
        client = Client()
        if ACCOUNT[role] is not None:
            client.force_login(accounts[ACCOUNT[role]])
        statuses = [client.get(reverse("capture:private_form", kwargs={"token": token})).status_code
                    for token in (valid, used, expired, "not-a-token-of-this-site")]
        assert statuses == [200, 410, 410, 404], role


def test_visit_links_and_opt_out_links(world):
    """A visit link is the key, whoever is logged in: valid, revoked, expired and unknown links alike."""
    from alliance.web.capture.invitations import opt_out_token

    study, accounts = world["study"], world["accounts"]
    log = AuditLog(actor="test:setup", study=study)
    participant = recording.enrol(study, participant_id="P100", arm=study.arms.get(code="immediate"),
                                  enrolled_on=timezone.localdate(), log=log)
    prep = study.timepoints.get(code="prep")
    tokens = {}
    for state in ("valid", "revoked", "expired"):
        tokens[state], link = recording.create_visit_link(participant, prep, log=log,
                                                          expires_at=timezone.now() + timedelta(days=2))
        if state == "revoked":
            recording.revoke_visit_link(link, log, None)
        if state == "expired":
            m.VisitLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    log.write()
    for role in ROLES:
        client = Client()
        if ACCOUNT[role] is not None:
            client.force_login(accounts[ACCOUNT[role]])
        queue = [client.get(reverse("capture:visit", kwargs={"token": tokens.get(state, state)})).status_code
                 for state in ("valid", "revoked", "expired", "not-a-token-of-this-site")]
        assert queue == [200, 410, 410, 404], role
        forms = [client.get(reverse("capture:visit_form", kwargs={"token": tokens.get(state, state),
                                                                  "instrument": "wai_sr"})).status_code
                 for state in ("valid", "revoked", "expired", "not-a-token-of-this-site")]
        assert forms == [200, 410, 410, 404], role
        # an instrument that is not a self-report of the visit
        assert client.get(reverse("capture:visit_form", kwargs={"token": tokens["valid"],
                                                                "instrument": "grid_hamd17"})).status_code == 404
        opt_out = [client.get(reverse("capture:opt_out", kwargs={"token": token})).status_code
                   for token in (opt_out_token(participant), "not-a-token-of-this-site")]
        assert opt_out == [200, 404], role


def test_a_facilitator_sees_only_their_own_participants_everywhere(world):
    client = Client()
    client.force_login(world["accounts"].facilitator)   # F1: P003, P004, P006
    listing = client.get(reverse("capture:study_detail", kwargs={"study": STUDY})).content.decode()
    assert OWN in listing and OTHER not in listing
    dashboard = client.get(reverse("monitor:study", kwargs={"study": STUDY}))
    assert dashboard.context["n_participants"] == 3
    alerts = client.get(reverse("monitor:alerts", kwargs={"study": STUDY})).content.decode()
    assert OWN in alerts and OTHER not in alerts
    for name in ("capture:participant_detail", "monitor:participant"):
        assert client.get(reverse(name, kwargs={"study": STUDY, "participant": OTHER})).status_code == 404
