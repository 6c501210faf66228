"""A member invited by email sets a password (issue 12, "Done means"), through a real SMTP server.

The test starts aiosmtpd on 127.0.0.1 on a free port; the live server sends with Django's SMTP
backend to it (``override_settings``). An admin invites through the members page in Chromium, the
test reads the delivered message from the SMTP handler, opens its link in a fresh browser context
(the invited person's), chooses a password and logs in with it.
"""

from __future__ import annotations

import re
import socket
import time
from email import message_from_bytes, policy

import pytest
from django.test import override_settings

from ..webapp import STUDY
from .conftest import DESKTOP
from .test_browser import browser_settings, log_in  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "dana.reyes@example.org"
NEW_PASSWORD = "lanterns over the harbour at dusk"


class Inbox:
    """An aiosmtpd handler keeping every delivered message."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def wait(self, count: int = 1, seconds: float = 15.0):
        deadline = time.monotonic() + seconds
        while len(self.envelopes) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.envelopes) >= count, f"{len(self.envelopes)} messages arrived, expected {count}"
        return self.envelopes[count - 1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1: ``(port, inbox)``."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_a_member_invited_by_email_sets_a_password(web_study, accounts, browser_settings,  # noqa: F811
                                                   new_page, smtp_server):
    port, inbox = smtp_server
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
                           EMAIL_PORT=port, EMAIL_USE_TLS=False, EMAIL_HOST_USER="", EMAIL_HOST_PASSWORD="",
                           DEFAULT_FROM_EMAIL="trial@example.org"):
        admin = new_page(DESKTOP)
        log_in(admin, "admin")
        admin.goto(f"/accounts/studies/{STUDY}/members/")
        assert admin.locator("input[type=password]").count() == 0  # nobody types another person's password
        assert admin.locator("#id_invite-role").input_value() == "monitor"  # the least privilege
        admin.fill("#id_invite-email", EMAIL)
        admin.click("button:has-text('Send invitation')")
        admin.wait_for_url(re.compile(r".*/members/$"))
        assert "an email with a link to choose a password is on its way" in admin.locator(".messages").inner_text()
        row = admin.locator("tbody tr", has_text="dana.reyes")
        assert "Monitor (read-only, de-identified)" in row.inner_text()
        assert "invited, no password yet" in row.inner_text()

        envelope = inbox.wait()
        assert envelope.rcpt_tos == [EMAIL] and envelope.mail_from == "trial@example.org"
        message = message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("plain",)).get_content()
        assert "Your username: dana.reyes" in body
        link = re.search(r"http://\S+/accounts/welcome/\S+/\S+/", body).group(0)

        member = new_page(DESKTOP)  # the invited person's own browser
        member.goto(link)
        assert member.locator("h1").inner_text() == "Choose your password"
        assert "/welcome/" in member.url and link.rstrip("/").split("/")[-1] not in member.url  # token left the URL
        member.fill("#id_new_password1", "password")
        member.fill("#id_new_password2", "password")
        member.click("button[type=submit]")
        assert "This password is too common" in member.locator("main").inner_text()
        member.fill("#id_new_password1", NEW_PASSWORD)
        member.fill("#id_new_password2", NEW_PASSWORD)
        member.click("button[type=submit]")
        member.wait_for_url(re.compile(r".*/accounts/login/$"))
        assert "Your password is set" in member.locator(".messages").inner_text()
        member.fill("#id_username", "dana.reyes")
        member.fill("#id_password", NEW_PASSWORD)
        member.click("button[type=submit]")
        member.wait_for_url(re.compile(r".*/$"))
        assert member.locator("header .who").inner_text() == "dana.reyes"

        # The link worked once; the member page no longer offers to resend.
        reopened = new_page(DESKTOP)
        assert reopened.goto(link).status == 404
        admin.reload()
        assert "Resend invitation" not in admin.locator("tbody tr", has_text="dana.reyes").inner_text()
        assert len(inbox.envelopes) == 1
