"""The audit page's filters: participant, user (actor), action, date range and page size.

:class:`AuditFilterForm` reads the page's GET query (and the CSV export's POST, which carries the
same fields) and narrows a study's events with :meth:`AuditFilterForm.events`. Every field is
optional; a value that is not valid is a form error the page shows (HTTP 400), never a server
error.

An event belongs to a participant when its ``object_repr`` (the label the writers give it, see
:mod:`alliance.web.capture.recording` and ``storage``) is the participant's id or starts with the
id followed by ``/`` or a space: ``P001``, ``P001/baseline/wai_sr``, ``P001/baseline/wai_sr/wai_sr_1``,
``P001/session 1``, ``P001 date shift``. Participant ids cannot contain ``/`` or spaces
(:data:`alliance.study.validation.ID_PATTERN`), so ``P001`` never matches ``P0010``'s events.

``since`` and ``until`` are days of the site's time zone (``ALLIANCE_TIME_ZONE``, the zone the page
shows times in): ``until=2024-03-01`` in Pacific/Auckland ends at midnight there, 11:00 UTC.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from alliance.study.validation import ID_ALLOWED, ID_PATTERN

from .display import action_label, actor_label
from .models import AuditEvent

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 100
# Filters (the fields the CSV export repeats); ``size`` and ``page`` only shape the page.
FILTERS = ("participant", "actor", "action", "since", "until")


class AuditFilterForm(forms.Form):
    """Filters of one study's audit trail.

    Parameters
    ----------
    data : QueryDict or dict, optional
        The GET query (or the export's POST).
    actors : sequence of str
        The actors the study's trail holds: the choices of the ``actor`` field.
    """

    participant = forms.CharField(required=False, max_length=64, label=gettext_lazy("Participant"),
                                  help_text=gettext_lazy("An id, e.g. P001."))
    actor = forms.ChoiceField(required=False, label=gettext_lazy("User"))
    action = forms.ChoiceField(required=False, label=gettext_lazy("Action"),
                               choices=[("", gettext_lazy("any")),
                                        *((a.value, action_label(a.value)) for a in AuditEvent.Action)])
    since = forms.DateField(required=False, label=gettext_lazy("From"),
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label=gettext_lazy("To"),
                            widget=forms.DateInput(attrs={"type": "date"}))
    size = forms.TypedChoiceField(required=False, label=gettext_lazy("Events a page"), coerce=int,
                                  empty_value=DEFAULT_PAGE_SIZE,
                                  choices=[(n, str(n)) for n in PAGE_SIZES])

    def __init__(self, data=None, *, actors=(), **kwargs):
        super().__init__(data, **kwargs)
        self.fields["actor"].choices = [("", _("anyone")), *((a, actor_label(a)) for a in actors)]
        self.fields["size"].initial = DEFAULT_PAGE_SIZE
        # Days of the zone the page shows times in (module docstring).
        days = _("%(zone)s, inclusive.") % {"zone": timezone.get_current_timezone_name()}
        self.fields["since"].help_text = self.fields["until"].help_text = days

    def clean_participant(self) -> str:
        value = self.cleaned_data["participant"].strip()
        if value and not ID_PATTERN.fullmatch(value):
            raise forms.ValidationError(_("A participant id has %(allowed)s.") % {"allowed": ID_ALLOWED})
        return value

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date is before the start date."))
        return cleaned

    def events(self, events: QuerySet) -> QuerySet:
        """``events`` narrowed by the valid filters (call after :meth:`is_valid`)."""
        data = self.cleaned_data
        if data.get("participant"):
            pid = data["participant"]
            events = events.filter(Q(object_repr=pid) | Q(object_repr__startswith=f"{pid}/")
                                   | Q(object_repr__startswith=f"{pid} "))
        if data.get("actor"):
            events = events.filter(actor=data["actor"])
        if data.get("action"):
            events = events.filter(action=data["action"])
        if data.get("since"):
            events = events.filter(at__gte=_midnight(data["since"]))
        if data.get("until") and data["until"] < dt.date.max:
            events = events.filter(at__lt=_midnight(data["until"] + dt.timedelta(days=1)))
        return events

    def filters(self) -> dict[str, str]:
        """The valid filters that are set, as text (what the export repeats and records)."""
        return {name: str(self.cleaned_data[name]) for name in FILTERS if self.cleaned_data.get(name)}

    def page_size(self) -> int:
        return self.cleaned_data.get("size") or DEFAULT_PAGE_SIZE


def _midnight(day: dt.date) -> dt.datetime:
    """The start of a day of the site's time zone (an aware time; the database compares it in UTC)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time()), timezone.get_current_timezone())
