"""GET pages never write to the database, whoever opens them (issue 11, finding 9).

A dashboard that stored the alerts time had raised took SQLite's write lock inside a GET and gave
HTTP 500 "database is locked" when 50 participants submitted forms meanwhile. Now alerts are
stored when data change and by the scheduled job (``alliance.web.monitor.alerting``), and every
page is opened here as every role, with a wrapper on the connection that records each INSERT,
UPDATE or DELETE (and REPLACE) statement: there must be none. Logging in writes (the session,
``last_login``), so the client logs in before the wrapper is installed.

The study is set up so that the old pages would have written: P100 is enrolled 20 days ago with
nothing submitted (its baseline is overdue, not stored yet), and P003 has a stored overdue alert
whose assessment has since become missed (the refresh would resolve it and raise a missed one).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from alliance.web.audit.log import AuditLog
from alliance.web.capture import models as m
from alliance.web.capture import recording
from alliance.web.monitor.alerting import raise_alerts
from alliance.web.monitor.models import Alert

from .webapp import OTHER, OWN, ROLES, STUDY

pytestmark = pytest.mark.django_db

NEW = "P100"
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


class Writes:
    """A ``connection.execute_wrapper`` that records the writing statements it sees."""

    def __init__(self):
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        if WRITE.match(sql):
            self.statements.append(sql)
        return execute(sql, params, many, context)


@pytest.fixture
def late_study(web_study, accounts):
    """The study with a late assessment not stored yet (P100) and a stored alert that has lapsed (P003)."""
    log = AuditLog(actor="test:setup", study=web_study)
    recording.enrol(web_study, participant_id=NEW, arm=web_study.arms.get(code="immediate"),
                    enrolled_on=timezone.localdate() - timedelta(days=20),
                    facilitators=[web_study.facilitators.get(facilitator_id="F1")], log=log)
    log.write()
    own = m.Participant.objects.get(study=web_study, participant_id=OWN)
    m.Administration.objects.filter(participant=own, timepoint__code="baseline").delete()
    m.Participant.objects.filter(pk=own.pk).update(enrolled_on=timezone.localdate() - timedelta(days=20))
    own.refresh_from_db()
    raise_alerts(own)   # stores P003's overdue baseline
    assert Alert.objects.filter(participant=own, rule="overdue_assessment", timepoint="baseline").exists()
    # 40 days after enrolment the baseline counts as missed: the overdue alert lapses.
    m.Participant.objects.filter(pk=own.pk).update(enrolled_on=timezone.localdate() - timedelta(days=40))
    return web_study


def _audit_url() -> str:
    try:
        return reverse("capture:audit_trail", kwargs={"study": STUDY})
    except NoReverseMatch:  # the audit trail's page may live in the audit app
        return f"/studies/{STUDY}/audit/"


def get_pages() -> list[str]:
    """Every GET page of the monitor app, and the capture app's study, participant, export and audit pages."""
    study = {"study": STUDY}
    pages = [reverse("monitor:study", kwargs=study), reverse("monitor:alerts", kwargs=study)]
    pages.append(reverse("monitor:quality", kwargs=study))
    for participant in (OWN, OTHER, NEW):
        pages.append(reverse("monitor:participant", kwargs={**study, "participant": participant}))
        pages.append(reverse("capture:participant_detail", kwargs={**study, "participant": participant}))
    pages += [reverse("capture:study_list"), reverse("capture:study_detail", kwargs=study),
              reverse("capture:exports", kwargs=study), _audit_url(), reverse("capture:links", kwargs=study),
              reverse("capture:staff_form", kwargs={**study, "participant": NEW, "timepoint": "prep",
                                                    "instrument": "wai_sr"})]
    return pages


@pytest.mark.parametrize("role", [*ROLES, None])
def test_no_get_page_writes(late_study, accounts, client, role):
    if role is not None:
        client.force_login(accounts[role])   # writes the session and last_login: before the wrapper
    writes = Writes()
    answered = {}
    with connection.execute_wrapper(writes):
        for url in get_pages():
            answered[url] = client.get(url).status_code
    assert writes.statements == [], f"{role} opening {answered} wrote: {writes.statements}"
    # The pages were really served (not refused before any work) to the roles that may see them.
    monitor_study = reverse("monitor:study", kwargs={"study": STUDY})
    expected = {None: 302, "outsider": 403}.get(role, 200)
    assert answered[monitor_study] == expected
    if role in ("admin", "investigator"):
        assert set(answered.values()) == {200}, answered
    if role == "monitor":   # every page but the audit trail and the staff's pages (links, entry)
        staff_only = {_audit_url(), *get_pages()[-2:]}
        assert {code for url, code in answered.items() if url not in staff_only} == {200}, answered


def test_the_wrapper_sees_the_writes_of_a_post(late_study, accounts, client):
    """The check above can fail: acknowledging an alert (a POST) is seen writing."""
    client.force_login(accounts.investigator)
    alert = Alert.objects.get(participant__participant_id=OWN, rule="overdue_assessment")
    writes = Writes()
    with connection.execute_wrapper(writes):
        response = client.post(reverse("monitor:acknowledge", kwargs={"study": STUDY, "alert": alert.pk}),
                               {"note": "called"})
    assert response.status_code == 302
    assert any(sql.lstrip().upper().startswith("UPDATE") for sql in writes.statements)
    assert any(sql.lstrip().upper().startswith("INSERT") for sql in writes.statements)   # the audit event


def test_the_late_alerts_are_shown_before_they_are_stored(late_study, accounts, client):
    client.force_login(accounts.investigator)
    page = client.get(reverse("monitor:study", kwargs={"study": STUDY}))
    shown = {(a.participant.participant_id, a.rule, a.timepoint): a for a in page.context["open_alerts"]}
    # P100's overdue baseline and P003's missed one, computed on the fly; P003's lapsed overdue
    # alert is no longer listed as open.
    assert shown[(NEW, "overdue_assessment", "baseline")].pending
    assert shown[(OWN, "missed_assessment", "baseline")].pending
    assert (OWN, "overdue_assessment", "baseline") not in shown
    alerts = client.get(reverse("monitor:alerts", kwargs={"study": STUDY})).context
    (lapsed,) = [a for a in alerts["closed_alerts"] if a.lapsed]
    assert (lapsed.rule, lapsed.participant.participant_id, lapsed.is_open) == ("overdue_assessment", OWN, True)
    assert not Alert.objects.filter(participant__participant_id=NEW).exists()


def test_opening_a_private_link_writes_nothing(late_study, client):
    """A participant opening their form (no account): the page a load of participants opens most."""
    participant = m.Participant.objects.get(study=late_study, participant_id=NEW)
    log = AuditLog(actor="test:setup", study=late_study)
    token, _ = recording.create_private_link(participant, late_study.timepoints.get(code="prep"), "wai_sr", days=7,
                                             log=log)
    log.write()
    writes = Writes()
    with connection.execute_wrapper(writes):
        response = client.get(reverse("capture:private_form", kwargs={"token": token}))
    assert response.status_code == 200
    assert writes.statements == []


def test_opening_a_visit_link_writes_nothing(late_study, client):
    """The visit's queue and its first form: the link's first use is recorded with the first answer, not on GET."""
    participant = m.Participant.objects.get(study=late_study, participant_id=NEW)
    log = AuditLog(actor="test:setup", study=late_study)
    token, link = recording.create_visit_link(participant, late_study.timepoints.get(code="session1"), log=log,
                                              expires_at=timezone.now() + timedelta(days=3))
    log.write()
    writes = Writes()
    with connection.execute_wrapper(writes):
        queue = client.get(reverse("capture:visit", kwargs={"token": token}))
        form = client.get(reverse("capture:visit_form", kwargs={"token": token, "instrument": "meq30"}))
    assert (queue.status_code, form.status_code) == (200, 200)
    assert writes.statements == []
    client.post(reverse("capture:visit_form", kwargs={"token": token, "instrument": "meq30"}),
                {"meq30_1": "3", "_action": "draft"})
    link.refresh_from_db()
    assert link.opened_at is not None and link.completed_at is None
