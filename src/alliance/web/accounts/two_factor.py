"""A second factor for staff: authenticator-app codes (TOTP) with django-otp.

Any logged-in user can enrol one authenticator app on the page "Two-factor" (``accounts:
two_factor``): it shows an ``otpauth://`` URI as a QR code (inline SVG made by ``segno``, so
neither an image library nor a script is needed and the Content-Security-Policy stays "self
only") and as text, and the enrolment is confirmed by typing one code the app shows. The device
is django-otp's ``TOTPDevice`` (RFC 6238: 6 digits, 30-second steps, one step of clock tolerance;
a code is accepted once).

After the password, a user with a confirmed device must give a code (``accounts:
two_factor_verify``) before any other page: :class:`SecondFactorMiddleware`, after django-otp's
``OTPMiddleware``, sends them there. With ``REQUIRE_2FA`` (``ALLIANCE_REQUIRE_2FA=true``) an
admin — superuser, or ``admin`` of any study (:func:`~alliance.web.accounts.access.
is_admin_anywhere`) — without a device is sent to the enrolment page instead, and can open
nothing else until enrolled; other roles may enrol but need not.

Code guessing is throttled by django-otp's own ``ThrottlingMixin`` of the device: after ``n``
wrong codes in a row the next one is refused for ``OTP_TOTP_THROTTLE_FACTOR × 2^(n-1)`` seconds
(1, 2, 4, … up to a day), right or wrong. Enrolment, confirmation and removal of a device are
audited as create/change/delete events of the device (never its key); each code tried is audited
as a log-in step (:func:`alliance.web.accounts.signals.audit_second_factor`).
"""

from __future__ import annotations

from urllib.parse import urlencode

import segno
from django.conf import settings
from django.core import signing
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key

from alliance.web.audit.log import AuditLog

from . import access

#: Views an unverified user may still open (the steps themselves and logging out).
OPEN_BEFORE_VERIFYING = frozenset({"accounts:login", "accounts:logout", "accounts:two_factor_verify"})
OPEN_BEFORE_ENROLLING = OPEN_BEFORE_VERIFYING | {"accounts:two_factor"}


def confirmed_device(user) -> TOTPDevice | None:
    """The user's confirmed authenticator app, or ``None``."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("id").first()


_SIGNING_SALT = "alliance.accounts.two_factor.enrolment"
#: How long the key of an enrolment page stays good for its confirmation.
ENROLMENT_SECONDS = 60 * 60


def enrolment_device(request, log: AuditLog | None = None) -> TOTPDevice | None:
    """The device being enrolled: the user's unconfirmed one, else one with the key the page showed.

    The key of a device not saved yet travels in the enrolment form, signed (:func:`signed_key`),
    so that opening the page writes nothing. Without ``log``: the unconfirmed device, else an
    unsaved one with the form's key, else with a fresh key. With ``log`` (a code to check): the
    unconfirmed device, else one with the form's key, saved and its creation recorded in ``log``;
    ``None`` when the form's key is missing, forged, another user's or older than
    :data:`ENROLMENT_SECONDS`.
    """
    user = request.user
    device = TOTPDevice.objects.devices_for_user(user, confirmed=False).order_by("id").first()
    if device is not None:
        return device
    try:
        owner, key = signing.loads(request.POST.get("enrolment", ""), salt=_SIGNING_SALT,
                                   max_age=ENROLMENT_SECONDS)
    except signing.BadSignature:
        owner, key = None, None
    if owner != user.pk:
        return None if log is not None else TOTPDevice(user=user, name="authenticator app", key=default_key())
    device = TOTPDevice(user=user, name="authenticator app", confirmed=False, key=key)
    if log is not None:
        device.save()
        log.created(device, {"name": device.name, "confirmed": False}, label=f"{user.get_username()}: {device.name}")
    return device


def signed_key(device: TOTPDevice) -> str:
    """The device's user and key, signed, for the enrolment form to send back with the first code.

    The key is on the page already (as the QR code and as text, for the user's app); signing it
    ties the confirmation to the key shown, to this user and to the last hour.
    """
    return signing.dumps([device.user_id, device.key], salt=_SIGNING_SALT)


def must_enrol(user) -> bool:
    """Whether a second factor is required of this user and they have none (module docstring)."""
    return bool(settings.REQUIRE_2FA and access.is_admin_anywhere(user) and confirmed_device(user) is None)


def qr_svg(uri: str) -> str:
    """The URI as a QR code, an ``<svg>`` element to put straight into the page."""
    return segno.make(uri, error="m").svg_inline(scale=4, border=4, dark="#000", light="#fff",
                                                 title="QR code for your authenticator app")


def _redirect(request, name: str):
    url = f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}"
    if request.headers.get("HX-Request"):
        # An htmx request would swap the step into part of the page; make it load the whole page.
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


class SecondFactorMiddleware:
    """Send a logged-in user to the second-factor step they still owe (module docstring).

    Goes after ``django_otp.middleware.OTPMiddleware`` (which sets ``request.user.is_verified``);
    works in ``process_view``, where the view's URL name is known.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        name = request.resolver_match.view_name if request.resolver_match else ""
        if name in OPEN_BEFORE_VERIFYING:
            return None
        if confirmed_device(user) is not None:
            return _redirect(request, "accounts:two_factor_verify")
        if name not in OPEN_BEFORE_ENROLLING and must_enrol(user):
            return _redirect(request, "accounts:two_factor")
        return None
