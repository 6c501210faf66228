"""Staff entry of a form on a participant's behalf: how, when and by whom it was taken.

A self-report filled in on paper (and typed in later) or on a site tablet, or a clinician rating
given in an interview, is entered by staff with the details a monitor checks against the source
document (ICH E6(R2) 4.9: data are attributable and contemporaneous, the source recorded):

- **mode** — paper or tablet for a self-report; interview or paper for a clinician rating;
- **assessment date** (required) and **time** (optional), in the site's time zone: the date the
  participant answered or was rated, not the day it is typed in, since the protocol's windows and
  deviations (:mod:`alliance.monitoring.deviations`) are about when it was taken;
- for a clinician rating, the **rater** (who interviewed; not necessarily the person typing) and
  whether the rater was **blind** to the participant's arm and phase (Davis et al. 2021 rated the
  GRID-HAMD by blinded clinicians; a trial's report says whether its outcome ratings were blind,
  CONSORT 2010 item 11a);
- for a facilitator-rated form (``rater: facilitator``, the WAI-SR-T), the **facilitator** whose
  rating it is: a required choice among the participant's assigned facilitators, by facilitator
  id, since each of them rates separately (one administration each). It is taken on paper or a
  tablet, like a self-report, and the blinding question is not asked (the facilitator knows).

``administered_at`` is stored as ISO-8601 text: the date alone when no time is given, else the
date and time with the site's UTC offset.

References
----------
International Council for Harmonisation (2016). E6(R2) Good Clinical Practice, section 4.9.
Schulz KF, Altman DG, Moher D, for the CONSORT Group (2010). CONSORT 2010 Statement. BMJ 340:c332.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import models as m

SELF_REPORT_MODES = (m.Administration.Mode.PAPER, m.Administration.Mode.TABLET)
CLINICIAN_MODES = (m.Administration.Mode.INTERVIEW, m.Administration.Mode.PAPER)
_MODE_LABELS = {m.Administration.Mode.PAPER: gettext_lazy("On paper (typed in now)"),
                m.Administration.Mode.TABLET: gettext_lazy("On a tablet at the site"),
                m.Administration.Mode.INTERVIEW: gettext_lazy("In a rating interview")}
EARLIEST = date(1900, 1, 1)


class StaffEntryForm(forms.Form):
    """The entry details above the items of a form that staff fill in (module docstring)."""

    mode = forms.ChoiceField(label=gettext_lazy("How it was taken"), widget=forms.RadioSelect)
    assessed_on = forms.DateField(
        label=gettext_lazy("Assessment date"), widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy("The day it was answered or rated, not the day it is typed in."))
    assessed_time = forms.TimeField(label=gettext_lazy("Time"), required=False,
                                    widget=forms.TimeInput(attrs={"type": "time"}),
                                    help_text=gettext_lazy("Optional; in the site's time zone."))
    rater = forms.CharField(label=gettext_lazy("Rater"), max_length=200, required=False,
                            help_text=gettext_lazy("Who rated (interviewed) the participant."))
    blinded = forms.TypedChoiceField(
        label=gettext_lazy("Was the rater blind to the participant's arm and treatment phase?"), required=False,
        choices=(("yes", gettext_lazy("Yes, blind")), ("no", gettext_lazy("No, not blind"))), widget=forms.RadioSelect,
        coerce=lambda value: value == "yes", empty_value=None)

    prefix = "entry"

    def __init__(self, *args, clinician: bool, facilitators: Sequence[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinician = clinician
        self.facilitators = None if facilitators is None else list(facilitators)
        modes = CLINICIAN_MODES if clinician else SELF_REPORT_MODES
        self.fields["mode"].choices = [(mode.value, _MODE_LABELS[mode]) for mode in modes]
        self.fields["mode"].error_messages["required"] = _("Say how it was taken.")
        self.fields["assessed_on"].error_messages["required"] = _("Give the assessment date.")
        if clinician:
            # The rater's emptiness is checked in clean_rater, with a message that says what to give.
            self.fields["blinded"].required = True
            self.fields["blinded"].error_messages["required"] = _("Say whether the rater was blind to the "
                                                                  "participant's arm and treatment phase.")
        elif self.facilitators is not None:
            # A facilitator-rated form: the rater is one of the participant's facilitators, by id.
            del self.fields["blinded"]
            allowed = ", ".join(self.facilitators) or _("none assigned")
            self.fields["rater"] = forms.ChoiceField(
                label=gettext_lazy("Facilitator who rated"), widget=forms.RadioSelect,
                choices=[(f, f) for f in self.facilitators],
                help_text=gettext_lazy("Each facilitator of the participant gives their own rating."),
                error_messages={
                    "required": _("Say which facilitator rated (one of %(allowed)s).") % {"allowed": allowed},
                    "invalid_choice": _("%(value)s is not a facilitator of this participant; allowed: ")
                    + allowed + "."})
        else:
            del self.fields["rater"]
            del self.fields["blinded"]

    def clean_assessed_on(self) -> date:
        day = self.cleaned_data["assessed_on"]
        today = timezone.localdate()
        if day > today:
            raise forms.ValidationError(_("%(day)s is in the future; allowed: a date up to today (%(today)s).")
                                        % {"day": day.isoformat(), "today": today.isoformat()})
        if day < EARLIEST:
            raise forms.ValidationError(_("%(day)s is before %(earliest)s; allowed: a real assessment date.")
                                        % {"day": day.isoformat(), "earliest": EARLIEST.isoformat()})
        return day

    def clean_rater(self) -> str:
        if self.facilitators is not None:
            return self.cleaned_data["rater"]
        rater = " ".join(self.cleaned_data.get("rater", "").split())
        if self.clinician and not rater:
            raise forms.ValidationError(_("Give the rater's name."))
        return rater

    def clean(self):
        data = super().clean()
        day, moment = data.get("assessed_on"), data.get("assessed_time")
        if day is not None and moment is not None:
            when = timezone.make_aware(datetime.combine(day, moment))
            if when > timezone.now() + timedelta(minutes=5):
                self.add_error("assessed_time", _("%(time)s today is in the future; allowed: a time up to now.")
                               % {"time": moment.strftime("%H:%M")})
        return data

    def administered_at(self) -> str:
        """The ISO-8601 text stored as ``Administration.administered_at`` (module docstring)."""
        day, moment = self.cleaned_data["assessed_on"], self.cleaned_data.get("assessed_time")
        if moment is None:
            return day.isoformat()
        return timezone.make_aware(datetime.combine(day, moment.replace(microsecond=0))).isoformat()

    @classmethod
    def initial_for(cls, user, clinician: bool, facilitator: str | None = None) -> dict:
        """Today's date, the usual mode, and the user as rater (``facilitator``: the one preselected)."""
        name = (user.get_full_name() or user.get_username()) if clinician else ""
        rater = {"rater": name} if clinician else {"rater": facilitator} if facilitator else {}
        return {"mode": (CLINICIAN_MODES if clinician else SELF_REPORT_MODES)[0].value,
                "assessed_on": timezone.localdate(), **rater}
