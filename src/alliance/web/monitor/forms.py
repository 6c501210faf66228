"""The monitor app's forms: the filters of the alert list, and a site's crisis text and country."""

from __future__ import annotations

import re

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .models import Alert

STATES = (("open", _("Open")), ("acknowledged", _("Acknowledged")), ("resolved", _("Resolved")))


class AlertFilterForm(forms.Form):
    """What the triage list shows: GET parameters, every one optional (a plain form, no JavaScript).

    Parameters
    ----------
    data : QueryDict
        ``request.GET``.
    rules : list of (str, str)
        The protocol's rules, ``(id, label)``.
    staff : list of alliance.web.monitor.alerting.Staff
        Whom alerts can be assigned to.
    participants : list of str
        The participant ids the user may see.
    """

    severity = forms.ChoiceField(label=_("Severity"), required=False,
                                 choices=[("", _("Any severity")), *Alert.Severity.choices])
    rule = forms.ChoiceField(label=_("Rule"), required=False)
    state = forms.ChoiceField(label=_("State"), required=False, choices=[("", _("Any state")), *STATES])
    assignee = forms.ChoiceField(label=_("Assigned to"), required=False)
    participant = forms.ChoiceField(label=_("Participant"), required=False)

    def __init__(self, data, *, rules, staff, participants):
        super().__init__(data)
        self.fields["rule"].choices = [("", _("Any rule")), *rules]
        self.fields["assignee"].choices = [("", _("Anyone or nobody")), ("mine", _("Me")),
                                           ("none", _("Nobody (unassigned)")),
                                           *((str(s.user.pk), s.label) for s in staff)]
        self.fields["participant"].choices = [("", _("Any participant")), *((p, p) for p in participants)]

    def chosen(self) -> dict[str, str]:
        """The valid filters given (a value not among the choices is left out, and said by the form)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {name: value for name, value in getattr(self, "cleaned_data", {}).items() if value}

    @staticmethod
    def query(chosen: dict[str, str], user, *, counting: bool = False) -> Q:
        """The stored alerts these filters keep (the participant is chosen by the caller).

        ``counting``: leave out severity and state, for the counts of open alerts per severity.
        """
        q = Q()
        if not counting and chosen.get("severity"):
            q &= Q(severity=chosen["severity"])
        if chosen.get("rule"):
            q &= Q(rule=chosen["rule"])
        state = None if counting else chosen.get("state")
        if state == "open":
            q &= Q(acknowledged_at=None, resolved_at=None)
        elif state == "acknowledged":
            q &= Q(acknowledged_at__isnull=False)
        elif state == "resolved":
            q &= Q(resolved_at__isnull=False) | Q(acknowledged_at=None, resolved_at=None)  # lapsed ones too
        assignee = chosen.get("assignee")
        if assignee == "mine":
            q &= Q(assigned_to=user)
        elif assignee == "none":
            q &= Q(assigned_to=None)
        elif assignee:
            q &= Q(assigned_to_id=int(assignee))
        return q

    @staticmethod
    def keeps(alert, chosen: dict[str, str], user, *, counting: bool = False) -> bool:
        """Whether an alert as the pages show it (stored or not yet, annotated) passes the filters."""
        if not counting and chosen.get("severity") and alert.severity != chosen["severity"]:
            return False
        if chosen.get("rule") and alert.rule != chosen["rule"]:
            return False
        state = None if counting else chosen.get("state")
        if state == "open" and not alert.open_now:
            return False
        if state == "acknowledged" and alert.acknowledged_at is None:
            return False
        if state == "resolved" and not (alert.resolved_at is not None or alert.lapsed):
            return False
        assignee = chosen.get("assignee")
        if assignee == "mine" and alert.assigned_to_id != user.pk:
            return False
        if assignee == "none" and alert.assigned_to_id is not None:
            return False
        if assignee not in (None, "", "mine", "none") and alert.assigned_to_id != int(assignee):
            return False
        return True


_COUNTRY = re.compile(r"[A-Za-z]{2}")


class CrisisTextForm(forms.Form):
    """A site's crisis text (blank: the protocol's) and its country (ISO 3166-1 alpha-2)."""

    crisis_text = forms.CharField(
        label=_("Crisis text of this site"), required=False, max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("What to do about an endorsed suicidality item, in your site's words: whom to call, "
                    "the local emergency number. Blank: the protocol's text."))
    country = forms.CharField(label=_("Country"), required=False, max_length=2,
                              widget=forms.TextInput(attrs={"size": 3, "class": "country-code",
                                                            "autocomplete": "country"}),
                              help_text=_("Two letters, ISO 3166-1 alpha-2 (GB, DE, US); blank when not set."))

    def clean_country(self) -> str:
        value = self.cleaned_data["country"].strip()
        if value and not _COUNTRY.fullmatch(value):
            raise forms.ValidationError(_("%(value)s is not a two-letter country code (ISO 3166-1 alpha-2, "
                                          "e.g. GB)."), params={"value": value})
        return value.upper()

    def clean_crisis_text(self) -> str:
        return self.cleaned_data["crisis_text"].strip()
