"""The second factor (django-otp TOTP): enrolment, the verification step, throttling, ALLIANCE_REQUIRE_2FA.

Codes are computed here the way an authenticator app does, with django-otp's RFC 6238
implementation (``django_otp.oath.totp``) on the device's key — the code under test only checks them.
"""

from __future__ import annotations

import re
from base64 import b32decode
from binascii import hexlify
from io import StringIO
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance.web.accounts.members import set_membership
from alliance.web.audit.log import AuditLog
from alliance.web.audit.models import AuditEvent

from .webapp import PASSWORD, STUDY

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ENROL = "/accounts/two-factor/"
VERIFY = "/accounts/two-factor/verify/"


def study_page() -> str:
    return reverse("capture:study_detail", kwargs={"study": STUDY})


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now for this device (``steps_ahead`` × 30 s later)."""
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits,
                 drift=device.drift + steps_ahead)
    return f"{value:0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    right = {code_for(device, s) for s in (-1, 0, 1)}  # inside the clock tolerance
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in right)


@pytest.fixture
def device(accounts):
    """A confirmed authenticator app of the investigator."""
    return TOTPDevice.objects.create(user=accounts.investigator, name="phone", confirmed=True)


def password_login(client, username="investigator", next_page=None):
    data = {"username": username, "password": PASSWORD}
    url = LOGIN + (f"?next={next_page}" if next_page else "")
    if next_page:
        data["next"] = next_page
    return client.post(url, data)


def test_a_user_with_a_device_needs_a_code_before_any_page_with_data(client, accounts, device):
    response = password_login(client, next_page=study_page())
    assert response.status_code == 302
    # Logged in by password, but every page with data sends them to the code step.
    page = client.get(study_page())
    assert page.status_code == 302 and urlparse(page["Location"]).path == VERIFY
    assert parse_qs(urlparse(page["Location"]).query)["next"] == [study_page()]
    assert client.get(reverse("capture:study_list")).status_code == 302
    step = client.get(page["Location"])
    assert step.status_code == 200 and b'autocomplete="one-time-code"' in step.content
    before = AuditEvent.objects.count()
    done = client.post(VERIFY, {"token": code_for(device), "next": study_page()})
    assert done.status_code == 302 and done["Location"] == study_page()
    assert client.get(study_page()).status_code == 200
    (event,) = AuditEvent.objects.order_by("id")[before:]
    assert event.action == "login" and event.actor == "user:investigator" and event.new["second_factor"] == "totp"


def test_a_wrong_code_is_refused_audited_and_throttled(client, accounts, device):
    password_login(client)
    before = AuditEvent.objects.count()
    wrong = client.post(VERIFY, {"token": wrong_code(device)})
    assert wrong.status_code == 400 and b"That code is not right" in wrong.content
    # django-otp's throttle: right after a wrong code, even the right one is refused for a while.
    with override_settings(OTP_TOTP_THROTTLE_FACTOR=60):
        throttled = client.post(VERIFY, {"token": code_for(device)})
        assert throttled.status_code == 429 and b"Too many wrong codes" in throttled.content
        assert client.get(study_page()).status_code == 302
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert [e.action for e in events] == ["login_fail", "login_fail"]
    assert [e.new["throttled"] for e in events] == [False, True]
    assert all(e.user_id == accounts.investigator.pk and "token" not in e.new for e in events)
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # a refused try is not a guess: only wrong codes count
    # Once the wait is over (1 s × 2^(wrong codes - 1) by default), the right code works.
    device.throttling_failure_timestamp = device.throttling_failure_timestamp.replace(year=2000)
    device.save()
    assert client.post(VERIFY, {"token": code_for(device)}).status_code == 302
    assert client.get(study_page()).status_code == 200


def test_a_code_is_accepted_once(client, accounts, device):
    password_login(client)
    code = code_for(device)
    assert client.post(VERIFY, {"token": code}).status_code == 302
    other = Client()
    password_login(other)
    assert other.post(VERIFY, {"token": code}).status_code == 400  # replayed


def test_users_without_a_device_are_not_asked(client, accounts):
    assert password_login(client).status_code == 302
    assert client.get(study_page()).status_code == 200


def test_enrolling_shows_a_qr_code_and_is_confirmed_by_one_code(client, accounts):
    client.force_login(accounts.facilitator)
    page = client.get(ENROL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "<script" not in html.split("<main", 1)[1]
    uri = re.search(r"otpauth://totp/[^<\"]+", html).group(0).replace("&amp;", "&")
    assert "issuer=alliance" in uri and "facilitator" in uri
    assert not TOTPDevice.objects.exists()  # opening the page writes nothing
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    enrolment = re.search(r'name="enrolment" value="([^"]+)"', html).group(1)
    # What the phone's app does with the QR code: it holds the key and shows its codes.
    app = TOTPDevice(key=hexlify(b32decode(secret)).decode())
    # A forged or another page's key is not taken.
    forged = client.post(ENROL, {"token": code_for(app), "enrolment": enrolment[:-2] + "xx"})
    assert forged.status_code == 400 and b"This page has expired" in forged.content
    assert not TOTPDevice.objects.exists()
    before = AuditEvent.objects.count()
    wrong = client.post(ENROL, {"token": wrong_code(app), "enrolment": enrolment})
    assert wrong.status_code == 400
    assert TOTPDevice.objects.get().confirmed is False
    assert secret in wrong.content.decode()  # the same key is shown again, not a new one
    TOTPDevice.objects.update(throttling_failure_timestamp=None, throttling_failure_count=0)
    done = client.post(ENROL, {"token": code_for(app)})
    assert done.status_code == 302
    device = TOTPDevice.objects.get()
    assert device.confirmed and device.user == accounts.facilitator and device.key == app.key
    assert client.get(study_page()).status_code == 200  # verified in this session by the enrolment
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert [(e.action, e.model) for e in events] == [
        ("create", "otp_totp.totpdevice"), ("login_fail", "accounts.user"),
        ("login", "accounts.user"), ("change", "otp_totp.totpdevice")]
    assert events[-1].old == {"confirmed": False} and events[-1].new == {"confirmed": True}
    assert all(device.key not in str(e.new) and secret not in str(e.new) for e in events)
    # The next log-in asks for a code.
    later = Client()
    password_login(later, "facilitator")
    assert later.get(study_page()).status_code == 302


def test_a_device_can_be_removed_once_verified(client, accounts, device):
    password_login(client)
    assert client.post(ENROL, {"action": "remove"}).status_code == 302  # not verified yet: sent to the code step
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    client.post(VERIFY, {"token": code_for(device)})
    assert client.post(ENROL, {"action": "remove"}).status_code == 302
    assert not TOTPDevice.objects.exists()
    assert AuditEvent.objects.filter(model="otp_totp.totpdevice", action="delete").exists()


@override_settings(REQUIRE_2FA=True)
def test_required_2fa_sends_admins_to_enrol_and_nowhere_else(client, accounts):
    client.force_login(accounts.admin)  # a superuser
    for url in (study_page(), reverse("capture:study_list"), reverse("accounts:members", kwargs={"study": STUDY})):
        response = client.get(url)
        assert response.status_code == 302 and urlparse(response["Location"]).path == ENROL, url
    page = client.get(ENROL)
    assert page.status_code == 200 and b"must set up a second factor" in page.content
    # htmx requests are told to load the step as a whole page.
    partial = client.get(study_page(), HTTP_HX_REQUEST="true")
    assert partial.status_code == 204 and urlparse(partial["HX-Redirect"]).path == ENROL
    # Logging out still works.
    assert client.post(reverse("accounts:logout")).status_code == 302


@override_settings(REQUIRE_2FA=True)
def test_required_2fa_applies_to_study_admins_not_to_facilitators(client, accounts, web_study):
    log = AuditLog(actor="test:setup", study=web_study)
    set_membership(accounts.investigator, web_study, "admin", log)
    log.write()
    client.force_login(accounts.investigator)
    assert urlparse(client.get(study_page())["Location"]).path == ENROL
    facilitator = Client()
    facilitator.force_login(accounts.facilitator)
    assert facilitator.get(study_page()).status_code == 200
    monitor = Client()
    monitor.force_login(accounts.monitor)
    assert monitor.get(study_page()).status_code == 200


@override_settings(REQUIRE_2FA=True)
def test_an_enrolled_admin_can_work_and_cannot_remove_the_required_device(client, accounts):
    device = TOTPDevice.objects.create(user=accounts.admin, name="phone", confirmed=True)
    password_login(client, "admin")
    assert urlparse(client.get(study_page())["Location"]).path == VERIFY  # the code, not enrolment
    client.post(VERIFY, {"token": code_for(device)})
    assert client.get(study_page()).status_code == 200
    assert client.post(ENROL, {"action": "remove"}).status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_require_2fa_comes_from_the_environment(tmp_path):
    from alliance.web.config import build_settings

    assert build_settings({"ALLIANCE_DATA_DIR": str(tmp_path), "ALLIANCE_REQUIRE_2FA": "true"})["REQUIRE_2FA"] is True
    assert build_settings({"ALLIANCE_DATA_DIR": str(tmp_path)})["REQUIRE_2FA"] is False


def test_remove_second_factor_command(accounts, device):
    out = StringIO()
    call_command("remove_second_factor", "investigator", stdout=out)
    assert "removed 1" in out.getvalue()
    assert not TOTPDevice.objects.exists()
    event = AuditEvent.objects.get(model="otp_totp.totpdevice", action="delete")
    assert event.actor == "cli:remove_second_factor"


def test_the_two_factor_pages_write_nothing_on_get(client, accounts, device):
    """Like every GET page (tests/web/test_no_writes_on_get.py): the enrolment key travels signed in the form."""
    from django.db import connection

    writes = []

    def record(execute, sql, params, many, context):
        if re.match(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", sql, re.IGNORECASE):
            writes.append(sql)
        return execute(sql, params, many, context)

    client.force_login(accounts.facilitator)
    other = Client()
    password_login(other)  # the investigator, with a device: the code step
    with connection.execute_wrapper(record):
        assert client.get(ENROL).status_code == 200
        assert other.get(VERIFY).status_code == 200
        assert other.get(study_page()).status_code == 302
    assert writes == []
