"""Forms of the accounts app: logging in (throttled), adding a person to a study."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from . import throttle
from .models import Role


class ThrottledLoginForm(AuthenticationForm):
    """Django's login form, refusing a username locked out from this address (see ``throttle``)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": "Too many failed log-ins for this username from this computer. Try again in %(minutes)s "
                  "minutes, or ask an administrator.",
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.locked = False
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autocapitalize": "none"})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = throttle.client_address(self.request) if self.request is not None else "unknown"
        remaining = throttle.locked_for(username, address) if username else None
        if remaining is not None:
            self.locked = True
            minutes = max(1, int(remaining.total_seconds() // 60) + 1)
            raise ValidationError(self.error_messages["locked"], code="locked", params={"minutes": minutes})
        try:
            cleaned = super().clean()
        except ValidationError:
            if username and throttle.record_failure(username, address):
                self.locked = True
            raise
        throttle.clear(username, address)
        return cleaned


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
