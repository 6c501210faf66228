"""Forms of the accounts app: logging in, a second-factor code, inviting a person or adding an account to a study."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .models import Role


class LoginForm(AuthenticationForm):
    """Django's login form; locked-out clients are refused by django-axes (see ``throttle``)."""

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autocapitalize": "none"})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})


class TokenForm(forms.Form):
    """The six-digit code of an authenticator app (a TOTP device, see ``two_factor``)."""

    token = forms.CharField(
        label=_("Code from your authenticator app"), min_length=6, max_length=8, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "pattern": "[0-9]*", "autofocus": True}))

    def clean_token(self):
        token = self.cleaned_data["token"].replace(" ", "")
        if not token.isdigit():
            raise ValidationError(_("The code is made of digits only."), code="digits")
        return token


class MemberForm(forms.Form):
    """Give an existing account a role in a study (no invitation: they log in as they do already).

    The role starts at ``monitor``, the least privilege (read-only, de-identified); see
    :mod:`alliance.web.accounts.access`.
    """

    username = forms.CharField(max_length=150, label=_("Username"),
                               help_text=_("An existing account. To add someone new, invite them above."),
                               widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MONITOR, label=_("Role"))
    facilitator_id = forms.CharField(
        required=False, max_length=100, label=_("Facilitator id"),
        help_text=_("For a facilitator: the study's facilitator id (e.g. F1) to link this account to; "
                    "a new id is added to the study."))

    def __init__(self, *args, roles: tuple[str, ...], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(roles)
        self.user = None

    def clean(self):
        cleaned = super().clean()
        username = (cleaned.get("username") or "").strip()
        self.user = get_user_model().objects.filter(username=username).first()
        if username and self.user is None:
            self.add_error("username", _("There is no account with this username: invite the person by email instead."))
        _check_facilitator(self, cleaned)
        return cleaned


class InvitationForm(forms.Form):
    """Invite a new person by email: they receive a link to choose their own password.

    The username defaults to the part of the address before the ``@``
    (:func:`~alliance.web.accounts.invitations.username_from_email`). An address that an account
    has already is refused: that person is added by username, without a new invitation.
    """

    email = forms.EmailField(max_length=254, label=_("Email"), help_text=_("The link to choose a password is sent here."),
                             widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    username = forms.CharField(
        required=False, max_length=150, validators=[UnicodeUsernameValidator()], label=_("Username"),
        help_text=_("Leave empty to use the part of the email address before the @."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MONITOR, required=False, label=_("Role"),
                             help_text=_("Monitor (read-only, de-identified) unless you choose more."))
    facilitator_id = forms.CharField(required=False, max_length=100, label=_("Facilitator id"),
                                     help_text=_("For a facilitator: the study's facilitator id (e.g. F1)."))

    def __init__(self, *args, roles: tuple[str, ...], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(roles)

    def clean(self):
        from .invitations import username_from_email

        cleaned = super().clean()
        if "role" not in self.errors:
            cleaned["role"] = cleaned.get("role") or Role.MONITOR  # not said: the least privilege
        email = (cleaned.get("email") or "").strip()
        model = get_user_model()
        if email and model.objects.filter(email__iexact=email).exists():
            self.add_error("email", _("An account has this email address already: add it by its username below "
                                      "(no new invitation is needed)."))
        username = (cleaned.get("username") or "").strip()
        if not username and email:
            username = username_from_email(email)
        elif username and model.objects.filter(username=username).exists():
            self.add_error("username", _("This username is taken: choose another, or add that account below."))
        cleaned["username"] = username
        _check_facilitator(self, cleaned)
        return cleaned


def _role_choices(roles: tuple[str, ...]) -> list[tuple[str, str]]:
    # The least privilege first, so that the list reads from "sees least" to "may do everything".
    return [(value, label) for value, label in reversed(Role.choices) if value in roles]


def _check_facilitator(form: forms.Form, cleaned: dict) -> None:
    if cleaned.get("role") == Role.FACILITATOR and not (cleaned.get("facilitator_id") or "").strip():
        form.add_error("facilitator_id", _("A facilitator account is linked to the study's facilitator id."))
