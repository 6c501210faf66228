"""Log in (password, then a second factor where there is one), log out, the members of a study, and an
invited member's set-password page."""

from __future__ import annotations

from base64 import b32encode

import django_otp
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from alliance.web.audit.log import AuditLog

from . import access, invitations, two_factor
from .forms import InvitationForm, LoginForm, MemberForm, TokenForm
from .members import remove_membership, set_membership
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
    if seconds:
        return ngettext("Too many wrong codes. Wait %(seconds)d second before trying again.",
                        "Too many wrong codes. Wait %(seconds)d seconds before trying again.", seconds) % {"seconds": seconds}
    return _("Too many wrong codes. Wait a little before trying again.")


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
    form.add_error("token", refused or _("That code is not right (or was used already). Try the code shown now."))
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
            messages.success(request, _("Your authenticator app is removed; log-ins need only your password now."))
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
                form.add_error(None, _("This page has expired: scan the new QR code below and type its code."))
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
            messages.success(request, _("Your authenticator app is set up: log-ins now ask for its code."))
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
    """List a study's members; invite a person by email, add an account, change a role, resend or remove.

    Admins invite (:mod:`~alliance.web.accounts.invitations`): nobody types another person's
    password here. Admins and investigators add existing accounts and change roles, within
    :func:`~alliance.web.accounts.access.roles_assignable`.
    """
    assignable = access.roles_assignable(request.user, study)
    may_invite = access.can_invite(request.user, study)
    form = MemberForm(roles=assignable)
    invitation = InvitationForm(roles=assignable, prefix="invite") if may_invite else None
    action = request.POST.get("action") if request.method == "POST" else None
    if action in ("remove", "resend"):
        membership = StudyMembership.objects.select_related("user").filter(
            study=study, pk=request.POST.get("membership")).first()
        if membership is None:
            messages.error(request, _("That member is no longer in the study."))
        elif action == "remove":
            if membership.role not in assignable:
                raise PermissionDenied("your role cannot remove this member")
            with transaction.atomic():
                log = AuditLog(actor=actor_of(request.user), user=request.user, study=study)
                remove_membership(membership, log)
                log.write()
            messages.success(request, _("%(user)s is no longer a member of %(study)s.")
                             % {"user": membership.user.get_username(), "study": study.name})
        else:
            if not may_invite:
                raise PermissionDenied("only administrators send invitations")
            _send(request, study, membership.user, membership.role, resent=True)
        return redirect("accounts:members", study=study.name)
    if action == "invite":
        if not may_invite:
            raise PermissionDenied("only administrators invite new people")
        invitation = InvitationForm(request.POST, roles=assignable, prefix="invite")
        if invitation.is_valid():
            data = invitation.cleaned_data
            try:
                with transaction.atomic():
                    log = AuditLog(actor=actor_of(request.user), user=request.user, study=study)
                    user = invitations.invite_user(data["username"], data["email"], log)
                    set_membership(user, study, data["role"], log, facilitator_id=data.get("facilitator_id") or "")
                    log.write()
            except ValueError as error:
                invitation.add_error(None, str(error))
            else:
                _send(request, study, user, data["role"])
                return redirect("accounts:members", study=study.name)
    elif request.method == "POST":
        form = MemberForm(request.POST, roles=assignable)
        if form.is_valid():
            data = form.cleaned_data
            existing = StudyMembership.objects.filter(study=study, user=form.user).first()
            if existing is not None and existing.role not in assignable:
                raise PermissionDenied("your role cannot change this member")
            try:
                with transaction.atomic():
                    log = AuditLog(actor=actor_of(request.user), user=request.user, study=study)
                    set_membership(form.user, study, data["role"], log, facilitator_id=data.get("facilitator_id") or "")
                    log.write()
            except ValueError as error:
                form.add_error(None, str(error))
            else:
                access.forget_roles(request.user)
                messages.success(request, _("%(user)s is now %(role)s of %(study)s.")
                                 % {"user": form.user.get_username(), "role": data["role"], "study": study.name})
                return redirect("accounts:members", study=study.name)
    memberships = (StudyMembership.objects.filter(study=study).select_related("user")
                   .order_by("role", "user__username"))
    linked = {}
    for facilitator_id, user_id in study.facilitators.filter(user__isnull=False).values_list(
            "facilitator_id", "user_id"):
        linked.setdefault(user_id, []).append(facilitator_id)
    rows = [{"membership": m, "facilitators": ", ".join(linked.get(m.user_id, [])),
             "pending": invitations.is_pending(m.user),
             "resendable": may_invite and invitations.is_pending(m.user),
             "removable": m.role in assignable and m.user_id != request.user.pk} for m in memberships]
    failed = request.method == "POST" and (form.errors or (invitation is not None and invitation.errors))
    return render(request, "accounts/members.html",
                  {"study": study, "rows": rows, "form": form, "invitation": invitation,
                   "days": invitations.valid_days()},
                  status=400 if failed else 200)


def _send(request, study, user, role: str, *, resent: bool = False) -> None:
    """Send (or resend) an invitation and say how it went, on the members page."""
    name = user.get_username()
    if not invitations.is_pending(user):
        messages.error(request, _("%(user)s has chosen a password already (or has no email address): "
                                  "there is no invitation to send.") % {"user": name})
        return
    try:
        invitations.send_invitation(request, user, study, role, actor=actor_of(request.user), resent=resent)
    except invitations.InvitationNotSent as error:
        messages.error(request, _("%(user)s is a member of %(study)s, but the invitation email could not be sent "
                                  "(%(error)s). Check the site's email settings (docs/security.md, \"Inviting "
                                  "members\"), then use “Resend invitation”.")
                       % {"user": name, "study": study.name, "error": error})
    else:
        messages.success(request, _("%(user)s is %(role)s of %(study)s; an email with a link to choose a password "
                                    "is on its way (the link works for %(days)s days).")
                         % {"user": name, "role": role, "study": study.name, "days": invitations.valid_days()})


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """An invited member chooses their password (Django's ``PasswordResetConfirmView``).

    Django moves the token from the URL into the session and redirects to a URL without it, so that
    it reaches neither the browser's history nor a ``Referer``. The password is checked with
    ``AUTH_PASSWORD_VALIDATORS`` (Django's ``SetPasswordForm``); the member is then sent to log in,
    which also shows that they know it. A used, expired or foreign link is answered with 404.
    """

    template_name = "accounts/set_password.html"
    token_generator = invitations.invitation_tokens
    success_url = reverse_lazy("accounts:login")
    post_reset_login = False

    def form_valid(self, form):
        with transaction.atomic():
            response = super().form_valid(form)
            invitations.record_password_set(form.user)
        messages.success(self.request, _("Your password is set, %(user)s: log in with it now.")
                         % {"user": form.user.get_username()})
        return response

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "days": invitations.valid_days()}

    def render_to_response(self, context, **kwargs):
        if not context.get("validlink"):
            kwargs["status"] = 404
        return super().render_to_response(context, **kwargs)
