"""Log in, log out, and the members of a study."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import redirect, render

from alliance.web.audit.log import AuditLog

from . import access
from .forms import MemberForm, ThrottledLoginForm
from .members import create_user, remove_membership, set_membership
from .models import StudyMembership


def actor_of(user) -> str:
    """How a logged-in user is named in the audit trail."""
    return f"user:{user.get_username()}"


class LoginView(auth_views.LoginView):
    """Django's login view with the throttled form; a locked-out pair gets HTTP 429."""

    form_class = ThrottledLoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.locked:
            response.status_code = 429
        return response


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
