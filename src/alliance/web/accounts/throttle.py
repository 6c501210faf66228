"""Login throttling with django-axes: per username and address, per address, and site-wide.

Failed log-ins are counted by django-axes (``axes``), in its database table
``axes_accessattempt`` — shared by every server process, unlike a per-process cache. A log-in is
refused — even with the right password, so that guessing cannot go on under cover of the lock —
with HTTP 429 while any of three counts, each over the last ``LOGIN_LOCKOUT_MINUTES`` (default
15), has reached its limit:

================================  ==================================  =========================
what is counted                   limit (setting, environment)        stops
================================  ==================================  =========================
one username from one address     ``LOGIN_MAX_FAILURES`` (5),         guessing one password
                                  ``ALLIANCE_LOGIN_MAX_FAILURES``
one address, any usernames        ``LOGIN_MAX_FAILURES_PER_ADDRESS``  password spraying: a few
                                  (20), ``ALLIANCE_LOGIN_MAX_``       common passwords tried
                                  ``FAILURES_PER_ADDRESS``            on many usernames
the whole site                    ``LOGIN_MAX_FAILURES_SITE`` (100),  guessing spread over many
                                  ``ALLIANCE_LOGIN_MAX_FAILURES_``    addresses
                                  ``SITE``
================================  ==================================  =========================

Failures made while locked are not counted (``AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT``
off), so a lock runs out ``LOGIN_LOCKOUT_MINUTES`` after the failure that set it. A successful
log-in clears the failures of that username from that address (``AXES_RESET_ON_SUCCESS``), not
those of the address or the site. The address is ``REMOTE_ADDR``; behind a reverse proxy that is
the proxy's, which makes every lock site-wide for that proxy — stricter, never looser.

The first count is django-axes' own (``AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]``).
django-axes compares every count it keeps with one limit, ``AXES_FAILURE_LIMIT``, and keeps no
site-wide count; the two other counts need their own, higher limits (an address may be a clinic's
shared connection, and the site serves everyone). So :class:`TieredAxesHandler`, a small subclass
of axes' database handler, adds them to ``get_failures`` — axes' one hook for "is this client
over its limit" — reading the same table. Everything else (recording, resetting, the backend that
refuses a locked client, the middleware) is django-axes'.

What the table holds: the username and address of each failed attempt, for the window only (axes
deletes older rows when the next attempt comes); successful log-ins are not recorded by axes
(``AXES_DISABLE_ACCESS_LOG``) — the audit trail records them, and failed ones with a keyed hash of
the username (:mod:`alliance.web.accounts.signals`). ``django-admin axes_reset`` lifts every lock.
"""

from __future__ import annotations

from datetime import timedelta

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

#: Why a client is refused, by the count that reached its limit (shown on the login page).
LOCKED_BECAUSE = {
    "username": gettext_lazy("Too many failed log-ins for this username from this computer."),
    "address": gettext_lazy("Too many failed log-ins from this computer."),
    "site": gettext_lazy("Too many failed log-ins on this site in the last minutes."),
}


def failure_limit(request, credentials) -> int:
    """``AXES_FAILURE_LIMIT``: failures of one username from one address before it is locked."""
    return settings.LOGIN_MAX_FAILURES


def lockout_time(request) -> timedelta:
    """``AXES_COOLOFF_TIME``: the window failures are counted in, and how long a lock lasts."""
    return timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)


def _failures(attempts) -> int:
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


class TieredAxesHandler(AxesDatabaseHandler):
    """django-axes' database handler, also locking per address and site-wide (module docstring)."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        """Failures of this username from this address, or the limit when any count has reached its own.

        Returns
        -------
        int
            What axes compares with ``AXES_FAILURE_LIMIT``: the failures of the username from
            the address; at least that limit when the address or the site has reached its limit.
            ``request.alliance_locked_because`` is set to a key of :data:`LOCKED_BECAUSE` then.
        """
        pair = super().get_failures(request, credentials)
        limit = get_failure_limit(request, credentials)
        recent = AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request))
        if pair >= limit:
            reason = "username"
        elif _failures(recent.filter(ip_address=request.axes_ip_address)) >= settings.LOGIN_MAX_FAILURES_PER_ADDRESS:
            reason = "address"
        elif _failures(recent) >= settings.LOGIN_MAX_FAILURES_SITE:
            reason = "site"
        else:
            return pair
        request.alliance_locked_because = reason
        return max(pair, limit)


def lockout_response(request, original_response=None, credentials=None):
    """``AXES_LOCKOUT_CALLABLE``: the login page again, saying why and for how long, with HTTP 429."""
    from .forms import LoginForm

    reason = getattr(request, "alliance_locked_because", "username")
    message = _("%(reason)s Try again in %(minutes)s minutes, or ask an administrator.") % {
        "reason": LOCKED_BECAUSE[reason], "minutes": settings.LOGIN_LOCKOUT_MINUTES}
    form = LoginForm(request)
    return render(request, "accounts/login.html", {"form": form, "locked": message}, status=429)
