"""Logins, logouts and failed logins go into the audit trail.

A login is a write (Django updates ``last_login``) and a security event a trial's monitor will ask
about. A failed login records a keyed hash of the username tried, never the name itself, so the
trail holds no personal data of whoever typed it.

The second step of a log-in with a second factor (:mod:`alliance.web.accounts.two_factor`) is
logged the same way by :func:`audit_second_factor`: ``login`` when a code is accepted,
``login_fail`` when it is not, with ``second_factor`` in the details. That user has given the
right password, so the event names them.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from alliance.web.audit.log import AuditLog
from alliance.web.audit.models import AuditEvent


def _event(action: str, user, details: dict) -> None:
    log = AuditLog(actor=f"user:{user.get_username()}" if user is not None else "anonymous", user=user)
    # request.user arrives wrapped in a lazy object on logout, so name the model, not type(user).
    log.add(action, _user_model(), getattr(user, "pk", "") or "", None, details,
            "login" if user is None else user.get_username())
    log.write()


def _user_model():
    from django.contrib.auth import get_user_model

    return get_user_model()


def _client(request) -> dict:
    return {"path": getattr(request, "path", "")} if request is not None else {}


@receiver(user_logged_in, dispatch_uid="alliance-audit-login")
def audit_login(sender, request, user, **kwargs) -> None:
    _event(AuditEvent.Action.LOGIN, user, _client(request))


@receiver(user_logged_out, dispatch_uid="alliance-audit-logout")
def audit_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        _event(AuditEvent.Action.LOGOUT, user, _client(request))


@receiver(user_login_failed, dispatch_uid="alliance-audit-login-failed")
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    username = str(credentials.get("username", ""))
    digest = hmac.new(settings.SECRET_KEY.encode(), username.encode(), hashlib.sha256).hexdigest()[:16]
    _event(AuditEvent.Action.LOGIN_FAILED, None, {"username_hash": digest, **_client(request)})


def audit_second_factor(request, user, accepted: bool, **details) -> None:
    """Log one second-factor code: ``login`` if ``accepted``, else ``login_fail`` (module docstring).

    Parameters
    ----------
    request : HttpRequest
    user : User
        The user who gave the code (logged in with their password).
    accepted : bool
    **details
        Added to the event, e.g. ``throttled=True`` or ``enrolment=True``; never the code.
    """
    action = AuditEvent.Action.LOGIN if accepted else AuditEvent.Action.LOGIN_FAILED
    _event(action, user, {"second_factor": "totp", **details, **_client(request)})
