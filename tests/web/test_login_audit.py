"""Logins, logouts and failed logins are in the audit trail, with no username of a failed attempt."""

from __future__ import annotations

import pytest

from alliance.web.audit.models import AuditEvent

from .webapp import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def test_login_and_logout_are_audited(client, accounts):
    before = AuditEvent.objects.count()
    assert client.post(LOGIN, {"username": "investigator", "password": PASSWORD}).status_code == 302
    assert client.post("/accounts/logout/").status_code == 302
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert [e.action for e in events] == ["login", "logout"]
    assert all(e.actor == "user:investigator" and e.user is not None for e in events)
    assert all(e.model == "accounts.user" for e in events)


def test_failed_login_is_audited_without_the_username(client, accounts):
    before = AuditEvent.objects.count()
    assert client.post(LOGIN, {"username": "investigator", "password": "wrong"}).status_code == 200
    (event,) = AuditEvent.objects.order_by("id")[before:]
    assert event.action == "login_fail" and event.actor == "anonymous" and event.user is None
    assert "investigator" not in str(event.new) and "investigator" not in event.object_repr
    assert len(event.new["username_hash"]) == 16
    # The same username gives the same hash, so repeated attempts can be followed.
    client.post(LOGIN, {"username": "investigator", "password": "wrong again"})
    assert AuditEvent.objects.order_by("-id").first().new["username_hash"] == event.new["username_hash"]
