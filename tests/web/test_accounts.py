"""Accounts: log-in and throttling, CSRF, security headers, members, ``alliance createadmin``, logs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from alliance.web.accounts import access
from alliance.web.accounts.models import StudyMembership
from alliance.web.accounts.security import RedactPrivateLinks
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m

from .webapp import OWN, PASSWORD, STUDY

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def login(client, username, password=PASSWORD, address="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


# -- logging in ----------------------------------------------------------------------------------

def test_login_page_and_successful_login(client, accounts):
    page = client.get(LOGIN)
    assert page.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in page.content
    response = login(client, "investigator")
    assert response.status_code == 302 and response["Location"] == reverse("capture:study_list")
    assert client.get(reverse("capture:study_list")).status_code == 200


def test_wrong_password_is_refused(client, accounts):
    response = login(client, "investigator", "not the password")
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert "_auth_user_id" not in client.session


@override_settings(LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_MINUTES=15)
def test_throttling_locks_a_username_at_one_address_even_with_the_right_password(client, accounts):
    for _ in range(2):
        assert login(client, "investigator", "wrong").status_code == 200
    third = login(client, "investigator", "wrong")
    assert third.status_code == 429
    locked = login(client, "investigator")  # the right password, but locked out
    assert locked.status_code == 429
    assert b"Too many failed log-ins for this username" in locked.content
    assert "_auth_user_id" not in client.session
    # Another address is not locked, so a colleague elsewhere is not shut out; nor is another
    # username at the same address.
    assert login(Client(), "investigator", address="10.0.0.2").status_code == 302
    assert login(Client(), "monitor", address="10.0.0.1").status_code == 302
    # Counted by django-axes, in its database table (shared by every server process).
    assert AccessAttempt.objects.get(username="investigator").failures_since_start == 3


@override_settings(LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_MINUTES=15)
def test_a_successful_login_clears_the_failures(client, accounts):
    login(client, "investigator", "wrong")
    login(client, "investigator", "wrong")
    assert login(client, "investigator").status_code == 302
    assert not AccessAttempt.objects.exists()


@override_settings(LOGIN_MAX_FAILURES=2, LOGIN_LOCKOUT_MINUTES=15)
def test_the_lock_runs_out(client, accounts):
    login(client, "investigator", "wrong")
    assert login(client, "investigator", "wrong").status_code == 429
    assert login(client, "investigator").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))
    assert login(client, "investigator").status_code == 302


@override_settings(LOGIN_MAX_FAILURES=5, LOGIN_MAX_FAILURES_PER_ADDRESS=20, LOGIN_MAX_FAILURES_SITE=1000)
def test_password_spraying_from_one_address_is_locked(client, accounts):
    """Two passwords tried on each of 10 usernames: under the per-username limit, over the address's."""
    names = [f"person{i}" for i in range(10)]
    statuses = [login(client, name, password).status_code for password in ("Summer2024!", "Welcome1")
                for name in names]
    assert statuses == [200] * 19 + [429]  # the 20th failure from 10.0.0.1 locks the address
    refused = login(client, "investigator")  # any username, even with its right password
    assert refused.status_code == 429 and b"Too many failed log-ins from this computer" in refused.content
    assert login(Client(), "investigator", address="10.0.0.2").status_code == 302


@override_settings(LOGIN_MAX_FAILURES=5, LOGIN_MAX_FAILURES_PER_ADDRESS=20, LOGIN_MAX_FAILURES_SITE=12)
def test_the_site_wide_cap_locks_every_login(client, accounts):
    """Guessing spread over many addresses, each below its own limits, reaches the site's."""
    statuses = [login(Client(), f"person{i}", "guess", address=f"10.0.1.{i}").status_code for i in range(12)]
    assert statuses == [200] * 11 + [429]
    refused = login(Client(), "investigator", address="10.0.2.1")
    assert refused.status_code == 429 and b"Too many failed log-ins on this site" in refused.content
    # The window passes: log-ins work again.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert login(Client(), "investigator", address="10.0.2.1").status_code == 302


def test_the_throttle_limits_come_from_the_environment(tmp_path):
    from alliance.web.config import build_settings

    built = build_settings({"ALLIANCE_DATA_DIR": str(tmp_path), "ALLIANCE_LOGIN_MAX_FAILURES": "4",
                            "ALLIANCE_LOGIN_LOCKOUT_MINUTES": "30", "ALLIANCE_LOGIN_MAX_FAILURES_PER_ADDRESS": "40",
                            "ALLIANCE_LOGIN_MAX_FAILURES_SITE": "500"})
    assert (built["LOGIN_MAX_FAILURES"], built["LOGIN_LOCKOUT_MINUTES"], built["LOGIN_MAX_FAILURES_PER_ADDRESS"],
            built["LOGIN_MAX_FAILURES_SITE"]) == (4, 30, 40, 500)
    defaults = build_settings({"ALLIANCE_DATA_DIR": str(tmp_path)})
    assert (defaults["LOGIN_MAX_FAILURES"], defaults["LOGIN_LOCKOUT_MINUTES"], defaults["LOGIN_MAX_FAILURES_PER_ADDRESS"],
            defaults["LOGIN_MAX_FAILURES_SITE"], defaults["REQUIRE_2FA"]) == (5, 15, 20, 100, False)
    assert "axes.backends.AxesStandaloneBackend" == defaults["AUTHENTICATION_BACKENDS"][0]
    assert defaults["AXES_HANDLER"].endswith("TieredAxesHandler")  # the database handler, not the cache


def test_logout_is_post_only(client, accounts):
    client.force_login(accounts.investigator)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert "_auth_user_id" not in client.session


def test_anonymous_users_are_sent_to_login(client, web_study):
    for url in (reverse("capture:study_list"), reverse("capture:study_detail", kwargs={"study": STUDY})):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(LOGIN)


# -- CSRF, headers, cookies ----------------------------------------------------------------------

def test_a_post_without_csrf_token_fails(accounts):
    client = Client(enforce_csrf_checks=True)
    assert client.post(LOGIN, {"username": "investigator", "password": PASSWORD}).status_code == 403
    client.force_login(accounts.investigator)
    url = reverse("capture:dosing_record", kwargs={"study": STUDY, "participant": OWN})
    response = client.post(url, {"session": 1, "date": "2024-05-05", "compound": "psilocybin", "unit": "mg"})
    assert response.status_code == 403
    assert not m.DosingSession.objects.filter(participant__participant_id=OWN, date="2024-05-05").exists()


def test_a_post_with_the_csrf_token_works(accounts):
    client = Client(enforce_csrf_checks=True)
    client.get(LOGIN)
    token = client.cookies["csrftoken"].value
    response = client.post(LOGIN, {"username": "investigator", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_security_headers(client, accounts):
    response = client.get(LOGIN)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def test_pages_with_personal_data_are_not_kept_in_a_browser_cache(client, accounts):
    login(client, "investigator")
    for path in ("/", LOGIN):
        response = client.get(path, follow=True)
        cache_control = response["Cache-Control"]
        assert "no-store" in cache_control and "private" in cache_control, path


def test_cookies_are_httponly_and_samesite(client, accounts):
    response = login(client, "investigator")
    session = response.cookies["sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"
    client.get(LOGIN)
    csrf = client.cookies["csrftoken"]
    assert csrf["httponly"] and csrf["samesite"] == "Lax"


SHOW_SECURITY = """
import json
from alliance.web import settings as s
print(json.dumps({"secure": [s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE], "hsts": s.SECURE_HSTS_SECONDS,
                  "proxy": getattr(s, "SECURE_PROXY_SSL_HEADER", None)}))
"""


@pytest.mark.parametrize(("env", "secure", "proxy"), [
    ({}, True, False),                                  # production default: not DEBUG
    ({"ALLIANCE_DEBUG": "1"}, False, False),            # local debugging over plain HTTP
    ({"ALLIANCE_HTTPS": "false"}, False, False),        # `alliance serve` on a loopback address
    ({"ALLIANCE_HTTPS": "true", "ALLIANCE_DEBUG": "1"}, True, True),
])
def test_secure_cookies_and_hsts_follow_alliance_https(tmp_path, env, secure, proxy):
    import json

    keep = {k: v for k, v in os.environ.items()
            if k not in ("ALLIANCE_HTTPS", "ALLIANCE_DEBUG", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run([sys.executable, "-c", SHOW_SECURITY], capture_output=True, text=True, check=True,
                            env={**keep, "ALLIANCE_DATA_DIR": str(tmp_path), **env}, timeout=120)
    shown = json.loads(result.stdout)
    assert shown["secure"] == [secure, secure]
    assert (shown["hsts"] > 0) == secure
    assert (shown["proxy"] is not None) == proxy


def test_log_lines_never_hold_a_private_link_token():
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s", ("/f/abcDEF123_-xyz987/",),
                               None)
    RedactPrivateLinks().filter(record)
    assert record.getMessage() == "Not Found: /f/[token]/"


# -- roles and members ---------------------------------------------------------------------------

def test_access_functions(accounts, web_study):
    assert access.role_in(accounts.admin, web_study) == "admin"
    assert access.role_in(accounts.outsider, web_study) is None
    assert set(access.visible_participants(accounts.facilitator, web_study).values_list("participant_id", flat=True)) \
        == {"P003", "P004", "P006"}
    assert set(access.visible_participants(accounts.facilitator2, web_study).values_list("participant_id", flat=True)) \
        == {"P002", "P004"}
    assert access.visible_participants(accounts.monitor, web_study).count() == 6
    assert not access.visible_participants(accounts.outsider, web_study).exists()
    assert access.can_write(accounts.facilitator, web_study) and not access.can_write(accounts.monitor, web_study)
    assert not access.can_see_identifiers(accounts.monitor, web_study)
    assert list(access.studies_for(accounts.outsider)) == []
    assert list(access.studies_for(accounts.monitor)) == [web_study]


def test_members_page_adds_an_existing_account_with_a_role_and_audits_it(client, accounts, web_study):
    """An investigator adds an account that exists already (no invitation, no password typed)."""
    get_user_model().objects.create_user("rater1", password="a long enough passphrase 42")
    client.force_login(accounts.investigator)
    url = reverse("accounts:members", kwargs={"study": STUDY})
    assert client.get(url).status_code == 200
    before = AuditEvent.objects.count()
    response = client.post(url, {"username": "rater1", "role": "facilitator", "facilitator_id": "F9"})
    assert response.status_code == 302
    user = get_user_model().objects.get(username="rater1")
    assert StudyMembership.objects.get(user=user).role == "facilitator"
    assert m.Facilitator.objects.get(study=web_study, facilitator_id="F9").user == user
    events = AuditEvent.objects.filter(pk__gt=0).order_by("id")[before:]
    assert {e.model for e in events} == {"accounts.studymembership", "capture.facilitator"}
    assert all(e.actor == "user:investigator" and "password" not in str(e.new) for e in events)


def test_members_page_has_no_password_field_and_defaults_to_the_least_privilege(client, accounts):
    client.force_login(accounts.admin)
    response = client.get(reverse("accounts:members", kwargs={"study": STUDY}))
    page = response.content.decode()
    assert 'type="password"' not in page and 'name="password"' not in page
    assert response.context["form"]["role"].value() == "monitor"
    assert response.context["invitation"]["role"].value() == "monitor"


def test_an_unknown_username_is_refused_not_created(client, accounts):
    client.force_login(accounts.admin)
    url = reverse("accounts:members", kwargs={"study": STUDY})
    response = client.post(url, {"username": "nobody-yet", "password": "a long enough passphrase 42", "role": "monitor"})
    assert response.status_code == 400
    assert b"invite the person by email" in response.content
    assert not get_user_model().objects.filter(username="nobody-yet").exists()


def test_an_investigator_cannot_make_an_admin(client, accounts):
    client.force_login(accounts.investigator)
    url = reverse("accounts:members", kwargs={"study": STUDY})
    response = client.post(url, {"username": "monitor", "role": "admin"})
    assert response.status_code == 400
    assert StudyMembership.objects.get(user=accounts.monitor).role == "monitor"


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("investigator", 200), ("facilitator", 403),
                                              ("monitor", 403), ("outsider", 403)])
def test_members_page_roles(client, accounts, role, status):
    client.force_login(accounts[role])
    assert client.get(reverse("accounts:members", kwargs={"study": STUDY})).status_code == status


def test_removing_a_member_unlinks_their_facilitator_record(client, accounts, web_study):
    client.force_login(accounts.admin)
    membership = StudyMembership.objects.get(user=accounts.facilitator)
    response = client.post(reverse("accounts:members", kwargs={"study": STUDY}),
                           {"action": "remove", "membership": membership.pk})
    assert response.status_code == 302
    assert not StudyMembership.objects.filter(user=accounts.facilitator).exists()
    assert m.Facilitator.objects.get(study=web_study, facilitator_id="F1").user is None
    assert AuditEvent.objects.filter(model="accounts.studymembership", action="delete").exists()


# -- alliance createadmin ------------------------------------------------------------------------

def run_cli(args, tmp_path, stdin=""):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env["ALLIANCE_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run([sys.executable, "-m", "alliance.cli", *args], capture_output=True, text=True, env=env,
                          input=stdin, timeout=300)


def test_createadmin_with_a_password_file(tmp_path):
    secret = "a long admin passphrase 2024"
    password_file = tmp_path / "password"
    password_file.write_text(secret + "\n", encoding="utf-8")
    result = run_cli(["createadmin", "ana", "--password-file", str(password_file)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "administrator 'ana' created" in result.stdout
    assert secret not in result.stdout + result.stderr
    check = run_cli(["createadmin", "ana", "--password-file", str(password_file)], tmp_path)
    assert check.returncode == 1 and "already an account named 'ana'" in check.stderr
    # Stored with Argon2 (the real settings), and audited.
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "alliance.sqlite3") as db:
        password, superuser = db.execute("SELECT password, is_superuser FROM accounts_user WHERE username='ana'").fetchone()
        actors = [r[0] for r in db.execute("SELECT actor FROM capture_auditevent WHERE model='accounts.user'")]
    assert password.startswith("argon2$") and superuser == 1
    assert actors == ["cli:createadmin"]


def test_createadmin_refuses_a_weak_password_and_needs_a_terminal(tmp_path):
    weak = tmp_path / "weak"
    weak.write_text("12345\n", encoding="utf-8")
    result = run_cli(["createadmin", "bob", "--password-file", str(weak)], tmp_path)
    assert result.returncode == 1 and "the password is refused" in result.stderr
    no_tty = run_cli(["createadmin", "bob"], tmp_path, stdin="secret\n")
    assert no_tty.returncode == 1 and "--password-file" in no_tty.stderr
