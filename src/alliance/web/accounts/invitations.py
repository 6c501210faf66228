"""Inviting a member by email: an account without a password, and a link to choose one.

The administrator gives an email address (and a role, the least-privileged ``monitor`` unless
they choose another); the account is created with an *unusable* password, so nobody can log in
with it until its owner has chosen one, and an email with a one-time link to the set-password
page (``accounts:set_password``, Django's ``PasswordResetConfirmView``) is sent through Django's
email framework. Nobody but the member ever sees or types their password.

The link's token is Django's password-reset token (:class:`InvitationTokenGenerator`, with its own
salt so that the two kinds of link are not interchangeable): a keyed hash of the account's id,
password hash, last log-in and the time it was made. It therefore stops working

- once the password is set (the password hash changes), so each link works once;
- after ``PASSWORD_RESET_TIMEOUT`` (``ALLIANCE_INVITATION_DAYS``, default 3 days, see
  :mod:`alliance.web.config`); the members page can then resend the invitation.

Nothing of the link is stored: it is rebuilt from the account when it is checked. The audit trail
records the invitation (the account's ``create`` event with ``usable_password: false``), each
email sent (an ``export`` event: a message left the site, with the study and the link's lifetime,
never the link, the token or the address) and the password chosen (a ``change`` of
``usable_password``). Email addresses are personal data: they are never written to a log line or
an audit event; a failed send logs the account's id and the kind of error only.
"""

from __future__ import annotations

import logging
import re
import smtplib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext_lazy

from alliance.web.audit.log import AuditLog

from .members import create_user

logger = logging.getLogger(__name__)

SUBJECT = gettext_lazy("Your invitation to alliance: choose a password")


class InvitationTokenGenerator(PasswordResetTokenGenerator):
    """Django's password-reset token, salted for invitations (module docstring)."""

    key_salt = "alliance.web.accounts.invitations.InvitationTokenGenerator"


invitation_tokens = InvitationTokenGenerator()


class InvitationNotSent(Exception):
    """The email could not be handed to the mail server; the message names the kind of error only."""


def valid_days() -> int:
    """How many days an invitation link works (``PASSWORD_RESET_TIMEOUT``, in whole days)."""
    return max(1, round(settings.PASSWORD_RESET_TIMEOUT / 86400))


def username_from_email(email: str) -> str:
    """A free username made of the part of ``email`` before the ``@``: ``ana.lopez``, ``ana.lopez2``, …

    Characters Django's usernames do not allow are dropped (letters, digits and ``@.+-_`` are kept).
    """
    local_part = re.match(r"[^@]*", email).group(0)  # an address, not a measure name: no split("@")
    base = re.sub(r"[^\w.+-]", "", local_part.lower())[:140] or "member"
    taken = set(get_user_model().objects.filter(username__startswith=base).values_list("username", flat=True))
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}{number}"
    return name


def invite_user(username: str, email: str, log: AuditLog):
    """Create an account that cannot log in until its owner sets a password, recorded in ``log``.

    Parameters
    ----------
    username, email : str
    log : AuditLog
        Collects the ``create`` event (username and flags, never the address); the caller writes it.

    Returns
    -------
    User

    Raises
    ------
    ValueError
        When the username is empty or taken.
    """
    return create_user(username, None, log, email=email.strip())


def is_pending(user) -> bool:
    """Whether the account is waiting for its owner to choose a password (an invitation can be resent)."""
    return bool(user.is_active and user.email and not user.has_usable_password())


def set_password_path(user) -> str:
    """The path of the user's set-password page, with a fresh token (a secret: never log it)."""
    return reverse("accounts:set_password", kwargs={
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": invitation_tokens.make_token(user)})


def send_invitation(request, user, study, role: str, *, actor: str, resent: bool = False) -> None:
    """Email ``user`` a link to choose their password, then record the sending in the audit trail.

    Parameters
    ----------
    request : HttpRequest
        Gives the site's address for the link (``build_absolute_uri``).
    user : User
        A pending account (:func:`is_pending`).
    study : capture.Study
        Named in the email and the audit event.
    role : str
        The member's role, named in the email.
    actor : str
        Who sends it, for the audit event.
    resent : bool
        Recorded in the audit event.

    Raises
    ------
    InvitationNotSent
        When the mail server refuses or cannot be reached; nothing is audited then.
    """
    days = valid_days()
    context = {"username": user.get_username(), "study": study.name, "role": role,
               "invited_by": request.user.get_username(), "days": days,
               "link": request.build_absolute_uri(set_password_path(user))}
    body = render_to_string("accounts/invitation_email.txt", context)
    try:
        send_mail(str(SUBJECT), body, None, [user.email])
    except (smtplib.SMTPException, OSError) as error:
        # The account id and the kind of error only: an SMTP error's text can hold the address.
        logger.warning("the invitation email of account id %s could not be sent: %s", user.pk, type(error).__name__)
        raise InvitationNotSent(type(error).__name__) from None
    with transaction.atomic():
        log = AuditLog(actor=actor, user=request.user, study=study)
        log.exported(user, {"message": "invitation", "study": study.name, "role": role, "valid_days": days,
                            "resent": resent}, label=user.get_username())
        log.write()


def record_password_set(user) -> None:
    """Audit that an invited member chose their password (called by the set-password page).

    The actor is the member themself: only the holder of the link can have done it.
    """
    log = AuditLog(actor=f"user:{user.get_username()}", user=user)
    log.changed(user, {"usable_password": False}, {"usable_password": True}, label=user.get_username())
    log.write()
