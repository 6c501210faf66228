"""Log in (password, then a second factor where there is one), log out, and the members of a study."""

from __future__ import annotations

from base64 import b32encode

import django_otp
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import redirect, render, resolve_url
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from alliance.web.audit.log import AuditLog

from . import access, two_factor
from .forms import LoginForm, MemberForm, TokenForm
from .members import create_user, remove_membership, set_membership
from .models import StudyMembership
from .signals import audit_second_factor


def actor_of(user) -> str:
    """How a logged-in user is named in the audit trail."""
    return f"user:{user.get_username()}"


class LoginView(auth_views.LoginView):
    """Django's login view; django-axes answers a locked-out client with HTTP 429 (``throttle``).

    A user with a second factor is then sent on to :func:`two_factor_verify` by
    ``SecondFactorMiddleware``, carrying the page they asked for.
    """

    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


def _next_page(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _refused(device) -> str | None:
    """Why django-otp's throttle refuses the next code of this device now, or ``None``."""
    allowed, extra = device.verify_is_allowed()
    if allowed:
        return None
    until = (extra or {}).get("locked_until")
    seconds = max(1, int((until - timezone.now()).total_seconds()) + 1) if until else None
    wait = f"Wait {seconds} seconds" if seconds else "Wait a little"
    return f"Too many wrong codes. {wait} before trying again."


def _check_code(request, device, form, **details) -> int:
    """Try the form's code on the device, throttled and audited.

    Returns
    -------
    int
        The HTTP status to answer: 200 when the code is accepted; 400 when it is wrong, 429 when
        django-otp's throttle refused to try it — with the reason put on the form.
    """
    refused = _refused(device)
    if refused is None and device.verify_token(form.cleaned_data["token"]):
        audit_second_factor(request, request.user, True, **details)
        return 200
    audit_second_factor(request, request.user, False, throttled=refused is not None, **details)
    form.add_error("token", refused or "That code is not right (or was used already). Try the code shown now.")
    return 400 if refused is None else 429


@login_required
def two_factor_verify(request):
    """The second step of logging in: a code from the user's authenticator app."""
    device = two_factor.confirmed_device(request.user)
    if device is None or request.user.is_verified():
        return redirect(_next_page(request))
    form = TokenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = _check_code(request, device, form) if form.is_valid() else 400
        if status == 200:
            django_otp.login(request, device)
            return redirect(_next_page(request))
    return render(request, "accounts/two_factor_verify.html",
                  {"form": form, "next": request.POST.get("next") or request.GET.get("next", "")}, status=status)


@login_required
def two_factor_setup(request):
    """Enrol an authenticator app (QR code, then one code to confirm), or see and remove the one enrolled."""
    user = request.user
    log = AuditLog(actor=actor_of(user), user=user)
    confirmed = two_factor.confirmed_device(user)
    required = bool(settings.REQUIRE_2FA and access.is_admin_anywhere(user))
    if confirmed is not None:
        # Only reached verified (SecondFactorMiddleware), so removing needs the second factor itself.
        if request.method == "POST" and request.POST.get("action") == "remove":
            if required:
                raise PermissionDenied("a second factor is required of administrators on this site")
            with transaction.atomic():
                log.deleted(confirmed, {"name": confirmed.name, "confirmed": True},
                            label=f"{user.get_username()}: {confirmed.name}")
                confirmed.delete()
                log.write()
            messages.success(request, "Your authenticator app is removed; log-ins need only your password now.")
            return redirect("accounts:two_factor")
        return render(request, "accounts/two_factor.html", {"device": confirmed, "required": required})
    device = two_factor.enrolment_device(request)
    form = TokenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            with transaction.atomic():
                saved = two_factor.enrolment_device(request, log)
                log.write()
            if saved is None:  # the page's key is too old (or was tampered with): a new one is shown
                form.add_error(None, "This page has expired: scan the new QR code below and type its code.")
            else:
                device = saved
        status = _check_code(request, device, form, enrolment=True) if form.is_valid() else 400
        if status == 200:
            with transaction.atomic():
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                log.changed(device, {"confirmed": False}, {"confirmed": True},
                            label=f"{user.get_username()}: {device.name}")
                log.write()
            django_otp.login(request, device)
            messages.success(request, "Your authenticator app is set up: log-ins now ask for its code.")
            return redirect(_next_page(request) if request.POST.get("next") else "accounts:two_factor")
    uri = device.config_url
    return render(request, "accounts/two_factor.html", {
        "form": form, "required": required, "uri": uri, "qr": two_factor.qr_svg(uri),
        "secret": b32encode(device.bin_key).decode(), "enrolment": two_factor.signed_key(device),
        "next": request.POST.get("next") or request.GET.get("next", ""),
    }, status=status)


class LogoutView(auth_views.LogoutView):
    """Log out (POST only, as Django requires, so that a link elsewhere cannot log anyone out)."""


@access.study_view(roles=("admin", "investigator"), write=True)
def members(request, study):
    """List a study's members; add a person with a role, change a role or remove a member."""
    assignable = access.roles_assignable(request.user, study)
    form = MemberForm(roles=assignable)
    if request.method == "POST":
        if request.POST.get("action") == "remove":
            membership = StudyMembership.objects.select_related("user").filter(
                study=study, pk=request.POST.get("membership")).first()
            if membership is None:
                messages.error(request, "That member is no longer in the study.")
                return redirect("accounts:members", study=study.name)
            if membership.role not in assignable:
                raise PermissionDenied("your role cannot remove this member")
            with transaction.atomic():
                log = AuditLog(actor=actor_of(request.user), user=request.user, study=study)
                remove_membership(membership, log)
                log.write()
            messages.success(request, f"{membership.user.get_username()} is no longer a member of {study.name}.")
            return redirect("accounts:members", study=study.name)
        form = MemberForm(request.POST, roles=assignable)
        if form.is_valid():
            data = form.cleaned_data
            existing = StudyMembership.objects.filter(study=study, user=form.user).first() if form.user else None
            if existing is not None and existing.role not in assignable:
                raise PermissionDenied("your role cannot change this member")
            try:
                with transaction.atomic():
                    log = AuditLog(actor=actor_of(request.user), user=request.user, study=study)
                    user = form.user or create_user(data["username"], data["password"], log)
                    set_membership(user, study, data["role"], log, facilitator_id=data.get("facilitator_id") or "")
                    log.write()
            except (ValueError, ValidationError) as error:
                form.add_error(None, error.messages if isinstance(error, ValidationError) else str(error))
            else:
                access.forget_roles(request.user)
                messages.success(request, f"{user.get_username()} is now {data['role']} of {study.name}.")
                return redirect("accounts:members", study=study.name)
    memberships = (StudyMembership.objects.filter(study=study).select_related("user")
                   .order_by("role", "user__username"))
    linked = {}
    for facilitator_id, user_id in study.facilitators.filter(user__isnull=False).values_list(
            "facilitator_id", "user_id"):
        linked.setdefault(user_id, []).append(facilitator_id)
    rows = [{"membership": m, "facilitators": ", ".join(linked.get(m.user_id, [])),
             "removable": m.role in assignable and m.user_id != request.user.pk} for m in memberships]
    return render(request, "accounts/members.html", {"study": study, "rows": rows, "form": form},
                  status=400 if request.method == "POST" and form.errors else 200)
