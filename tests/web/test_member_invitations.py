"""Inviting members by email (issue 12, item 5): no typed passwords, the least privilege, one-time links.

Email goes to Django's locmem backend (``django.core.mail.outbox``), which pytest-django sets for
every test; the browser test ``browser/test_invitation_browser.py`` sends through a real SMTP server.
"""

from __future__ import annotations

import logging
import re
import smtplib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.test import Client
from django.urls import reverse

from alliance.web.accounts import invitations
from alliance.web.accounts.invitations import InvitationTokenGenerator
from alliance.web.accounts.models import StudyMembership
from alliance.web.accounts.security import redact
from alliance.web.audit.models import AuditEvent

from .webapp import PASSWORD, STUDY

pytestmark = pytest.mark.django_db

MEMBERS = reverse("accounts:members", kwargs={"study": STUDY})
EMAIL = "Ana.Lopez@example.org"
NEW_PASSWORD = "a rainy tuesday in baltimore"
LINK = re.compile(r"http://testserver(/accounts/welcome/[^/\s]+/[^/\s]+/)")


def invite(client, email=EMAIL, **fields):
    data = {"action": "invite", "invite-email": email, **{f"invite-{k}": v for k, v in fields.items()}}
    return client.post(MEMBERS, data)


@pytest.fixture
def admin_client(accounts):
    client = Client()
    client.force_login(accounts.admin)
    return client


def link_of(message) -> str:
    found = LINK.search(message.body)
    assert found, message.body
    return found.group(1)


def set_password(path: str, password: str = NEW_PASSWORD, confirmation: str | None = None):
    """Open the link in a fresh client (the invited person's browser) and choose a password."""
    client = Client()
    opened = client.get(path)
    assert opened.status_code == 302  # Django moves the token into the session
    form_page = opened["Location"]
    assert form_page.endswith("/set-password/") and path.split("/")[-2] not in form_page
    assert client.get(form_page).status_code == 200
    response = client.post(form_page, {"new_password1": password, "new_password2": confirmation or password})
    return client, response


# -- the invitation --------------------------------------------------------------------------------

def test_an_invitation_creates_an_account_without_a_password_and_with_the_least_privilege(admin_client, web_study):
    response = invite(admin_client)  # no role given: the least privilege
    assert response.status_code == 302
    user = get_user_model().objects.get(username="ana.lopez")  # derived from the address
    assert user.email == EMAIL
    assert not user.has_usable_password()
    assert not user.is_staff and not user.is_superuser
    assert StudyMembership.objects.get(user=user, study=web_study).role == "monitor"
    assert invitations.is_pending(user)


def test_a_chosen_username_and_role_are_kept_and_a_taken_name_gets_a_number(admin_client, web_study):
    assert invite(admin_client, username="rater9", role="facilitator", facilitator_id="F9").status_code == 302
    assert StudyMembership.objects.get(user__username="rater9").role == "facilitator"
    get_user_model().objects.create_user("bea")
    assert invite(admin_client, "bea@example.org").status_code == 302
    assert get_user_model().objects.filter(username="bea2", email="bea@example.org").exists()


def test_the_email_has_the_link_and_no_password(admin_client):
    invite(admin_client)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [EMAIL]
    assert message.subject == invitations.SUBJECT
    user = get_user_model().objects.get(username="ana.lopez")
    assert "Your username: ana.lopez" in message.body
    assert "levin2024" in message.body and "for 3 days" in message.body
    link_of(message)
    # Nothing in it works as a password: the account has none, and its unusable hash is not sent.
    assert user.password not in message.body
    assert not re.search(r"password\s*:", message.body, re.IGNORECASE)


def test_an_address_that_has_an_account_is_added_by_username_without_a_new_invitation(admin_client, accounts,
                                                                                       web_study):
    get_user_model().objects.create_user("carla", email="carla@example.org", password=PASSWORD)
    refused = invite(admin_client, "CARLA@example.org")
    assert refused.status_code == 400 and b"add it by its username" in refused.content
    added = admin_client.post(MEMBERS, {"username": "carla", "role": "monitor"})
    assert added.status_code == 302
    assert StudyMembership.objects.get(user__username="carla", study=web_study).role == "monitor"
    assert mail.outbox == []


# -- the link ----------------------------------------------------------------------------------------

def test_the_link_sets_a_password_with_the_validators_and_then_the_member_logs_in(admin_client):
    invite(admin_client)
    path = link_of(mail.outbox[0])
    _, weak = set_password(path, "password")
    assert weak.status_code == 200
    assert "This password is too common" in weak.content.decode()
    _, mismatch = set_password(path, NEW_PASSWORD, "something else entirely")
    assert mismatch.status_code == 200
    assert not get_user_model().objects.get(username="ana.lopez").has_usable_password()

    _, done = set_password(path)
    assert done.status_code == 302 and done["Location"] == reverse("accounts:login")
    user = get_user_model().objects.get(username="ana.lopez")
    assert user.check_password(NEW_PASSWORD)
    logged_in = Client().post(reverse("accounts:login"), {"username": "ana.lopez", "password": NEW_PASSWORD})
    assert logged_in.status_code == 302 and logged_in["Location"] == reverse("capture:study_list")


def test_a_used_link_is_refused(admin_client):
    invite(admin_client)
    path = link_of(mail.outbox[0])
    set_password(path)
    again = Client().get(path)
    assert again.status_code == 404
    assert "This link does not work" in again.content.decode()


def test_an_expired_link_is_refused(admin_client, monkeypatch):
    invite(admin_client)
    path = link_of(mail.outbox[0])
    made = InvitationTokenGenerator()._now()
    monkeypatch.setattr(InvitationTokenGenerator, "_now", lambda self: made + timedelta(days=2, hours=23))
    assert Client().get(path).status_code == 302  # still within the 3 days
    monkeypatch.setattr(InvitationTokenGenerator, "_now", lambda self: made + timedelta(days=3, minutes=1))
    assert Client().get(path).status_code == 404


def test_a_bad_or_foreign_token_is_refused(admin_client):
    invite(admin_client)
    path = link_of(mail.outbox[0])
    uid, token = path.split("/")[-3:-1]
    tampered = f"{token[:-1]}{'0' if token[-1] != '0' else '1'}"
    user = get_user_model().objects.get(username="ana.lopez")
    for wrong in (f"/accounts/welcome/{uid}/{tampered}/", f"/accounts/welcome/Zm9v/{token}/",
                  # a password-reset token of Django's default generator is not an invitation token
                  f"/accounts/welcome/{uid}/{default_token_generator.make_token(user)}/"):
        client = Client()
        assert client.get(wrong).status_code == 404, wrong
        assert client.get(f"/accounts/welcome/{uid}/set-password/").status_code == 404  # no token in the session


def test_resending_sends_a_new_link_and_stops_once_the_password_is_set(admin_client):
    invite(admin_client)
    membership = StudyMembership.objects.get(user__username="ana.lopez")
    page = admin_client.get(MEMBERS).content.decode()
    assert "Resend invitation" in page and "invited, no password yet" in page
    assert admin_client.post(MEMBERS, {"action": "resend", "membership": membership.pk}).status_code == 302
    assert len(mail.outbox) == 2 and mail.outbox[1].to == [EMAIL]
    set_password(link_of(mail.outbox[1]))
    assert Client().get(link_of(mail.outbox[0])).status_code == 404  # the first link died with it
    admin_client.post(MEMBERS, {"action": "resend", "membership": membership.pk})
    assert len(mail.outbox) == 2
    assert "Resend invitation" not in admin_client.get(MEMBERS).content.decode()


# -- who may invite ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "status"), [("investigator", 403), ("facilitator", 403), ("monitor", 403),
                                              ("outsider", 403)])
def test_only_admins_invite(accounts, role, status):
    client = Client()
    client.force_login(accounts[role])
    assert invite(client, "someone@example.org").status_code == status
    assert not get_user_model().objects.filter(email="someone@example.org").exists()
    assert mail.outbox == []


def test_investigators_see_no_invitation_form_and_cannot_resend(admin_client, accounts):
    invite(admin_client)
    membership = StudyMembership.objects.get(user__username="ana.lopez")
    client = Client()
    client.force_login(accounts.investigator)
    page = client.get(MEMBERS)
    assert page.context["invitation"] is None and "Send invitation" not in page.content.decode()
    assert client.post(MEMBERS, {"action": "resend", "membership": membership.pk}).status_code == 403
    assert len(mail.outbox) == 1


# -- the audit trail and the logs ---------------------------------------------------------------------

def test_invitation_email_and_password_are_audit_events_without_the_token_or_the_address(admin_client, accounts):
    before = AuditEvent.objects.count()
    invite(admin_client)
    path = link_of(mail.outbox[0])
    set_password(path)
    events = list(AuditEvent.objects.order_by("id")[before:])
    user = get_user_model().objects.get(username="ana.lopez")
    of_user = [(e.action, e.actor) for e in events if e.model == "accounts.user" and e.object_id == str(user.pk)]
    assert of_user == [("create", "user:admin"), ("export", "user:admin"), ("change", "user:ana.lopez")]
    created, sent, chosen = (e for e in events if e.model == "accounts.user")
    assert created.new["usable_password"] is False and created.new["invited"] is True
    assert sent.new == {"message": "invitation", "study": STUDY, "role": "monitor", "valid_days": 3, "resent": False}
    assert (chosen.old, chosen.new) == ({"usable_password": False}, {"usable_password": True})
    uid, token = path.split("/")[-3:-1]
    for event in events:
        text = f"{event.old} {event.new} {event.object_repr}"
        assert token not in text and "/welcome/" not in text and "example.org" not in text.lower(), event


def test_log_lines_hold_no_set_password_token():
    assert redact('"GET /accounts/welcome/MTI/cz1a2b-0f3e9d8c7b6a5f4e3d2c1b0a9f8e7d6c/ HTTP/1.1" 302') \
        == '"GET /accounts/welcome/[token]/ HTTP/1.1" 302'
    assert redact("/f/abcDEF123_-xyz987/") == "/f/[token]/"


def test_a_failed_send_keeps_the_member_says_so_and_logs_no_address(admin_client, monkeypatch):
    def refuse(*args, **kwargs):
        raise smtplib.SMTPRecipientsRefused({EMAIL: (550, b"no such mailbox " + EMAIL.encode())})

    monkeypatch.setattr(invitations, "send_mail", refuse)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("alliance.web.accounts.invitations")
    logger.addHandler(handler)
    try:
        response = invite(admin_client)
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 302
    shown = admin_client.get(MEMBERS).content.decode()
    assert "could not be sent (SMTPRecipientsRefused)" in shown and "Resend invitation" in shown
    assert not AuditEvent.objects.filter(model="accounts.user", action="export").exists()
    assert records and all("example.org" not in r.getMessage().lower() for r in records)


# -- the settings -------------------------------------------------------------------------------------

def test_email_settings_come_from_the_environment(tmp_path):
    from alliance.web.config import build_settings

    base = {"ALLIANCE_DATA_DIR": str(tmp_path)}
    production = build_settings(base)
    assert production["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (production["EMAIL_HOST"], production["EMAIL_PORT"], production["EMAIL_USE_TLS"]) == ("localhost", 25, False)
    assert production["PASSWORD_RESET_TIMEOUT"] == 3 * 24 * 3600
    debugging = build_settings({**base, "ALLIANCE_DEBUG": "1"})
    assert debugging["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    configured = build_settings({**base, "ALLIANCE_DEBUG": "1", "ALLIANCE_EMAIL_HOST": "smtp.example.org",
                                 "ALLIANCE_EMAIL_USE_TLS": "true", "ALLIANCE_EMAIL_HOST_USER": "alliance",
                                 "ALLIANCE_EMAIL_HOST_PASSWORD": "s3cret", "ALLIANCE_EMAIL_FROM": "trial@example.org",
                                 "ALLIANCE_INVITATION_DAYS": "7"})
    assert configured["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (configured["EMAIL_HOST"], configured["EMAIL_PORT"], configured["EMAIL_USE_TLS"]) == \
        ("smtp.example.org", 587, True)
    assert (configured["EMAIL_HOST_USER"], configured["EMAIL_HOST_PASSWORD"]) == ("alliance", "s3cret")
    assert configured["DEFAULT_FROM_EMAIL"] == "trial@example.org"
    assert configured["PASSWORD_RESET_TIMEOUT"] == 7 * 24 * 3600
    assert build_settings({**base, "ALLIANCE_EMAIL_PORT": "2525"})["EMAIL_PORT"] == 2525
