"""Login throttling: lock a username out from an address after repeated failed log-ins.

After ``LOGIN_MAX_FAILURES`` failed log-ins (default 5) of one username from one client address
within ``LOGIN_LOCKOUT_MINUTES`` (default 15), that username cannot log in from that address for
``LOGIN_LOCKOUT_MINUTES`` — not even with the right password, so that guessing cannot go on
under cover of the lock. A successful log-in clears the count. Other addresses are not locked,
so an attacker cannot lock a colleague out of the whole site from elsewhere.

The counts are rows of :class:`~alliance.web.accounts.models.LoginThrottle` (shared by every
server process, unlike a per-process cache), keyed by an HMAC of username and address so that
neither is stored. The address is ``REMOTE_ADDR``; behind a reverse proxy that is the proxy's
address, which makes the lock per username — stricter, never looser.

Written here rather than with a package (django-axes and the like) because it is one small table
and three functions; the rest of authentication is Django's.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import LoginThrottle


def throttle_key(username: str, address: str) -> str:
    """The row key of one username and address: HMAC-SHA256 under the site's secret key."""
    message = f"{username.strip().lower()}\0{address}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def client_address(request) -> str:
    """The address a request came from (``REMOTE_ADDR``; see the module docstring)."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _window() -> timedelta:
    return timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)


def locked_for(username: str, address: str) -> timedelta | None:
    """How much longer this username is locked out from this address, or ``None``.

    Parameters
    ----------
    username, address : str

    Returns
    -------
    timedelta or None
    """
    row = LoginThrottle.objects.filter(key=throttle_key(username, address)).first()
    now = timezone.now()
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return row.locked_until - now


def record_failure(username: str, address: str) -> bool:
    """Count one failed log-in; lock the pair out when the limit is reached.

    Returns
    -------
    bool
        True when this failure locked the pair out.
    """
    now = timezone.now()
    with transaction.atomic():
        row, created = LoginThrottle.objects.select_for_update().get_or_create(
            key=throttle_key(username, address), defaults={"failures": 0, "first_failure_at": now})
        if not created and (now - row.first_failure_at > _window()
                            or (row.locked_until is not None and row.locked_until <= now)):
            # The earlier failures are old, or their lock has run out: count afresh.
            row.failures, row.first_failure_at, row.locked_until = 0, now, None
        row.failures += 1
        locked = row.failures >= settings.LOGIN_MAX_FAILURES
        if locked:
            row.locked_until = now + _window()
        row.save()
    return locked


def clear(username: str, address: str) -> None:
    """Forget the failures of this pair (after a successful log-in)."""
    LoginThrottle.objects.filter(key=throttle_key(username, address)).delete()
