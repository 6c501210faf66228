"""Forms of the accounts app: logging in, a second-factor code, adding a person to a study."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

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
        label="Code from your authenticator app", min_length=6, max_length=8, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "pattern": "[0-9]*", "autofocus": True}))

    def clean_token(self):
        token = self.cleaned_data["token"].replace(" ", "")
        if not token.isdigit():
            raise ValidationError("The code is made of digits only.", code="digits")
        return token


class MemberForm(forms.Form):
    """Give a person a role in a study: an existing account, or a new one with a password."""

    username = forms.CharField(max_length=150, help_text="An existing account, or a new one to create.",
                               widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}))
    password = forms.CharField(required=False, strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text="Only for a new account: at least 12 characters, not a common password.")
    role = forms.ChoiceField(choices=Role.choices)
    facilitator_id = forms.CharField(
        required=False, max_length=100,
        help_text="For a facilitator: the study's facilitator id (e.g. F1) to link this account to; "
                  "a new id is added to the study.")

    def __init__(self, *args, roles: tuple[str, ...], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(value, label) for value, label in Role.choices if value in roles]
        self.user = None

    def clean(self):
        cleaned = super().clean()
        username = (cleaned.get("username") or "").strip()
        model = get_user_model()
        self.user = model.objects.filter(username=username).first()
        if self.user is None:
            password = cleaned.get("password") or ""
            if not password:
                self.add_error("password", "There is no account with this username; give a password to create it.")
            else:
                try:
                    password_validation.validate_password(password, model(username=username))
                except ValidationError as error:
                    self.add_error("password", error)
        if cleaned.get("role") == Role.FACILITATOR and not (cleaned.get("facilitator_id") or "").strip():
            self.add_error("facilitator_id", "A facilitator account is linked to the study's facilitator id.")
        return cleaned
