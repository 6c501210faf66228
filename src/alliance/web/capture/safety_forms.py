"""Forms of a participant's safety record: adverse events, vital signs, medications; the allocation list.

The choices are the tidy contract's (:mod:`alliance.study.adverse_events`); the rules across
fields (a serious event names a criterion, death goes with grade 5 and outcome ``fatal``, an
event does not resolve before its onset, plausibility ranges of vital signs) are checked by the
contract's own checks when the record is stored (:mod:`alliance.web.capture.safety`), and their
problems are put back at the fields they name (:func:`add_problems`).
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from alliance.problems import DataProblem
from alliance.protocol import Protocol
from alliance.study.adverse_events import ACTIONS, OUTCOMES, RELATEDNESS, SERIOUSNESS_CRITERIA
from alliance.study.validation import ID_ALLOWED, ID_PATTERN

from .forms import DATE_INPUT, plain_text

_GRADES = [(1, gettext_lazy("1 — mild")), (2, gettext_lazy("2 — moderate")), (3, gettext_lazy("3 — severe")),
           (4, gettext_lazy("4 — life-threatening")), (5, gettext_lazy("5 — death"))]
_CRITERIA = {"death": gettext_lazy("results in death"), "life_threatening": gettext_lazy("is life-threatening"),
             "hospitalisation": gettext_lazy("requires or prolongs hospitalisation"),
             "disability": gettext_lazy("persistent or significant disability"),
             "congenital_anomaly": gettext_lazy("congenital anomaly"),
             "important_medical_event": gettext_lazy("other important medical event")}
_YES_NO_UNKNOWN = [("", gettext_lazy("not assessed")), ("yes", gettext_lazy("yes")), ("no", gettext_lazy("no"))]
DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _choices(values, blank: bool = True):
    out = [(v, v.replace("_", " ")) for v in values]
    return ([("", "—")] if blank else []) + out


def add_problems(form: forms.Form, problems: list[DataProblem], fields: dict[str, str] | None = None) -> None:
    """Put the contract's problems at the form's fields (a column the form lacks: the whole form)."""
    fields = fields or {}
    for problem in problems:
        name = fields.get(problem.column, problem.column)
        found = "" if problem.value is None else f"{problem.value!r} "
        text = f"{found}{problem.reason}" + (f"; allowed: {problem.allowed}" if problem.allowed else "")
        form.add_error(name if name in form.fields else None, text[:1].upper() + text[1:])


class AdverseEventForm(forms.Form):
    """An adverse event as an investigator reports it (``adverse_events.csv``'s columns)."""

    ae_id = forms.CharField(max_length=64, label=gettext_lazy("Event id"),
                            help_text=gettext_lazy("Unique in the study, e.g. AE-004."))
    term = forms.CharField(max_length=500, validators=[plain_text], label=gettext_lazy("What happened"),
                           help_text=gettext_lazy("In words; no names or other identifying details."))
    code = forms.CharField(max_length=100, required=False, validators=[plain_text],
                           label=gettext_lazy("Dictionary code"), help_text=gettext_lazy("E.g. the MedDRA code."))
    onset = forms.DateField(widget=DATE_INPUT, label=gettext_lazy("Onset"))
    resolved_on = forms.DateField(widget=DATE_INPUT, required=False, label=gettext_lazy("Resolved on"),
                                  help_text=gettext_lazy("Empty while ongoing."))
    severity = forms.TypedChoiceField(coerce=int, choices=_GRADES, label=gettext_lazy("Grade (CTCAE)"))
    serious = forms.TypedChoiceField(coerce=lambda v: v == "yes", choices=[("no", gettext_lazy("no")),
                                                                         ("yes", gettext_lazy("yes"))],
                                     widget=forms.RadioSelect, initial="no", label=gettext_lazy("Serious (ICH E2A)"))
    seriousness = forms.MultipleChoiceField(
        choices=[(c, _CRITERIA[c]) for c in SERIOUSNESS_CRITERIA], required=False,
        widget=forms.CheckboxSelectMultiple, label=gettext_lazy("Seriousness criteria"),
        help_text=gettext_lazy("At least one for a serious event; none otherwise."))
    relatedness = forms.ChoiceField(choices=_choices(RELATEDNESS), required=False,
                                    label=gettext_lazy("Related to the study treatment"))
    expected = forms.ChoiceField(choices=_YES_NO_UNKNOWN, required=False,
                                 label=gettext_lazy("Expected (investigator's brochure)"))
    action = forms.ChoiceField(choices=_choices(ACTIONS), required=False,
                               label=gettext_lazy("Action with the study treatment"))
    outcome = forms.ChoiceField(choices=_choices(OUTCOMES), required=False, label=gettext_lazy("Outcome"))

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["ae_id"].disabled = True

    def clean_ae_id(self):
        value = self.cleaned_data["ae_id"].strip()
        if not ID_PATTERN.fullmatch(value):
            raise forms.ValidationError(_("Use %(allowed)s.") % {"allowed": ID_ALLOWED})
        return value

    def values(self) -> dict:
        """The event's values as :func:`alliance.web.capture.safety.record_adverse_event` takes them."""
        d = self.cleaned_data
        return {"ae_id": d["ae_id"], "term": d["term"], "code": d["code"], "onset": d["onset"].isoformat(),
                "resolved_on": d["resolved_on"].isoformat() if d["resolved_on"] else "",
                "severity": d["severity"], "serious": d["serious"], "seriousness": ";".join(d["seriousness"]),
                "relatedness": d["relatedness"], "expected": {"yes": True, "no": False}.get(d["expected"]),
                "action": d["action"], "outcome": d["outcome"]}

    @staticmethod
    def initial_from(event) -> dict:
        return {"ae_id": event.ae_id, "term": event.term, "code": event.code, "onset": event.onset[:10],
                "resolved_on": event.resolved_on[:10] or None, "severity": event.severity,
                "serious": "yes" if event.serious else "no",
                "seriousness": [c for c in event.seriousness.split(";") if c],
                "relatedness": event.relatedness, "expected": {True: "yes", False: "no"}.get(event.expected, ""),
                "action": event.action, "outcome": event.outcome}


class VitalSignForm(forms.Form):
    """One reading on a dosing day: blood pressure and heart rate, when."""

    session = forms.TypedChoiceField(coerce=int, choices=(), label=gettext_lazy("Dosing session"))
    measured_at = forms.DateTimeField(widget=DATETIME_INPUT, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
                                      label=gettext_lazy("Measured at"))
    minutes_after_dose = forms.IntegerField(required=False, label=gettext_lazy("Minutes after the dose"),
                                            help_text=gettext_lazy("Negative before it, e.g. -30 for the baseline."))
    systolic_bp = forms.FloatField(required=False, label=gettext_lazy("Systolic blood pressure (mmHg)"))
    diastolic_bp = forms.FloatField(required=False, label=gettext_lazy("Diastolic blood pressure (mmHg)"))
    heart_rate = forms.FloatField(required=False, label=gettext_lazy("Heart rate (beats per minute)"))

    def __init__(self, *args, protocol: Protocol, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["session"].choices = [(t.dose.session, f"{t.dose.session}: {t.label}")
                                          for t in protocol.dosing_timepoints if t.dose is not None]

    def values(self) -> dict:
        d = self.cleaned_data
        return {"session": d["session"], "measured_at": d["measured_at"].strftime("%Y-%m-%dT%H:%M"),
                "minutes_after_dose": d["minutes_after_dose"], "systolic_bp": d["systolic_bp"],
                "diastolic_bp": d["diastolic_bp"], "heart_rate": d["heart_rate"]}


class MedicationForm(forms.Form):
    """A concomitant medication: what, how much, from when to when."""

    name = forms.CharField(max_length=200, validators=[plain_text], label=gettext_lazy("Medication"))
    dose = forms.CharField(max_length=200, required=False, validators=[plain_text], label=gettext_lazy("Dose"),
                           help_text=gettext_lazy("E.g. 50 mg daily."))
    start = forms.DateField(widget=DATE_INPUT, label=gettext_lazy("First day taken"))
    stop = forms.DateField(widget=DATE_INPUT, required=False, label=gettext_lazy("Last day taken"),
                           help_text=gettext_lazy("Empty while ongoing."))
    indication = forms.CharField(max_length=200, required=False, validators=[plain_text],
                                 label=gettext_lazy("Indication"))

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["name"].disabled = True
            self.fields["start"].disabled = True

    def values(self) -> dict:
        d = self.cleaned_data
        return {"name": d["name"], "dose": d["dose"], "start": d["start"].isoformat(),
                "stop": d["stop"].isoformat() if d["stop"] else "", "indication": d["indication"]}


class RandomisationListForm(forms.Form):
    """Generate the allocation list: the seed (or one drawn now), and the values of unlisted factors."""

    seed = forms.IntegerField(min_value=0, max_value=2**63 - 1, required=False, label=gettext_lazy("Seed"),
                              help_text=gettext_lazy("Leave empty to draw one now; keep it as secret as the list."))

    def __init__(self, *args, protocol: Protocol, **kwargs):
        super().__init__(*args, **kwargs)
        self.open_factors = [f.name for f in protocol.randomisation.strata if not f.values]
        for name in self.open_factors:
            self.fields[f"values_{name}"] = forms.CharField(
                max_length=2000, validators=[plain_text], label=_("Values of %(factor)s") % {"factor": name},
                help_text=gettext_lazy("Separated by commas, e.g. the sites' names."))

    def strata_values(self) -> dict[str, list[str]]:
        return {name: [v.strip() for v in self.cleaned_data[f"values_{name}"].split(",") if v.strip()]
                for name in self.open_factors}
