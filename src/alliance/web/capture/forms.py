"""Forms of the capture app: set up a study, import its files, enrol, edit a participant, dosing, links.

The questionnaire forms themselves are not Django forms: they are drawn from the instrument
definitions (:mod:`~alliance.web.capture.instrument_forms`) and checked by the scoring engine.

Identifier fields of :class:`ParticipantForm` follow the protocol's ``identifiers:``
(:class:`alliance.protocol.IdentifierField`): each gets its label and the input of its type — a
date picker for ``date`` (kept as ``YYYY-MM-DD`` text), an email address checked for ``email``,
``tel`` for ``phone``, digits for ``number``. Labels, help texts and messages are marked for
translation (Django i18n).
"""

from __future__ import annotations

import datetime as dt
import re

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from alliance import instruments as bank
from alliance.protocol import IdentifierField, Protocol, default_protocol, parse_protocol
from alliance.protocol.design import DOSE_UNITS, MAX_DOSE_AMOUNT
from alliance.protocol.yaml_input import MAX_BYTES, read_yaml
from alliance.study import StudyDataError
from alliance.study.csv_input import MAX_CSV_BYTES
from alliance.study.validation import (
    CONTROL_CHARACTERS,
    ENROLMENT_RANGE,
    ID_ALLOWED,
    ID_PATTERN,
    TEXT_ALLOWED,
)

from . import models as m

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Identifier fields by type: a phone number as people write it, a number as digits (kept as typed:
# a record number's leading zeros matter), dates from 1900 to today (they identify a person: a birth).
_PHONE = re.compile(r"\+?[0-9 ().\-/]{3,40}")
_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")
EARLIEST_IDENTIFIER_DATE = dt.date(1900, 1, 1)
_IDENTIFYING = gettext_lazy("Identifying: hidden from monitors, left out of de-identified exports.")


def plain_text(value: str) -> None:
    """The core's rule for free text (``alliance.study.validation``): no NUL or control characters."""
    if value and CONTROL_CHARACTERS.search(value):
        raise forms.ValidationError(_("Use %(allowed)s.") % {"allowed": TEXT_ALLOWED})


def enrolment_date(value) -> None:
    """The core's range of enrolment dates (``alliance.study.validation.ENROLMENT_RANGE``)."""
    if value is not None and not ENROLMENT_RANGE[0] <= value.isoformat() <= ENROLMENT_RANGE[1]:
        raise forms.ValidationError(_("Give a date between %(first)s and %(last)s.")
                                    % {"first": ENROLMENT_RANGE[0], "last": ENROLMENT_RANGE[1]})
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class StudyCreateForm(forms.Form):
    """A new study: its name and its protocol (the built-in Levin 2024 one, or an uploaded YAML file)."""

    name = forms.CharField(max_length=100, label=gettext_lazy("Name"),
                           help_text=gettext_lazy("Letters, digits, '.', '-' and '_', e.g. levin2024-site2."))
    source = forms.ChoiceField(choices=[("builtin", gettext_lazy("The built-in protocol of Levin et al. (2024)")),
                                        ("upload", gettext_lazy("A protocol file (YAML) I upload"))],
                               initial="builtin", widget=forms.RadioSelect, label=gettext_lazy("Source"))
    protocol_file = forms.FileField(required=False, label=gettext_lazy("Protocol file"),
                                    help_text=gettext_lazy("A protocol YAML file (schema: docs/protocol.md)."))

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not _NAME.fullmatch(name):
            raise forms.ValidationError(_("Use letters, digits, '.', '-' and '_' only, starting with a letter or digit."))
        if m.Study.objects.filter(name=name).exists():
            raise forms.ValidationError(_("There is already a study named %(name)s.") % {"name": name})
        return name

    def clean(self):
        cleaned = super().clean()
        self.protocol: Protocol | None = None
        self.protocol_problems: list[str] = []
        if cleaned.get("source") == "upload":
            upload = cleaned.get("protocol_file")
            if upload is None:
                self.add_error("protocol_file", _("Choose the protocol file to upload."))
                return cleaned
            if upload.size > MAX_BYTES:  # refused before it is read; read_yaml has the same limit
                self.add_error("protocol_file", _("A protocol file is a few kilobytes; this one is over 1 MiB."))
                return cleaned
            try:
                # The one bounded reader: encoding, syntax, aliases and nesting are refused as
                # ProtocolError problems naming the file, like the schema's.
                raw = read_yaml(upload.read(MAX_BYTES + 1), upload.name)
                self.protocol = parse_protocol(raw, origin=upload.name)
            except StudyDataError as error:
                self.protocol_problems = [p.describe() for p in error.problems]
                self.add_error("protocol_file", ngettext(
                    "The protocol has %(count)d problem (listed below).",
                    "The protocol has %(count)d problems (listed below).", len(error.problems))
                    % {"count": len(error.problems)})
        else:
            self.protocol = default_protocol()
        return cleaned


def _facilitator_field(study: m.Study) -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        queryset=m.Facilitator.objects.filter(study=study).order_by("facilitator_id"), required=False,
        widget=forms.CheckboxSelectMultiple, label=gettext_lazy("Facilitators"),
        help_text=gettext_lazy("The participant's facilitators."))


class ParticipantForm(forms.Form):
    """Enrol a participant, or change an enrolled participant's arm, date, site, facilitators, identifiers.

    Parameters
    ----------
    study : Study
    identifiers : sequence of IdentifierField or str
        The protocol's ``identifier_fields`` (each field with its label and input type), or its
        ``identifiers`` (plain ids: text fields labelled from the id).
    editing : bool
        Changing an enrolled participant (the id cannot change, the date may stay empty).
    strata : sequence of (str, sequence of str), optional
        A randomised study's stratification factors with their values (from its allocation
        list). The arm is then not chosen but allocated (:mod:`alliance.web.capture.randomising`):
        enrolling asks for each factor's value and a confirmation of eligibility and consent, and
        editing shows the arm without letting it change.
    """

    participant_id = forms.CharField(max_length=64, label=gettext_lazy("Participant id"),
                                     help_text=gettext_lazy("The study's pseudonymous id, e.g. P025."))
    arm = forms.ModelChoiceField(queryset=m.Arm.objects.none(), empty_label=None, label=gettext_lazy("Arm"))
    enrolled_on = forms.DateField(widget=DATE_INPUT, label=gettext_lazy("Enrolled on"),
                                  help_text=gettext_lazy("The protocol's timeline counts from this date."),
                                  validators=[enrolment_date])
    site = forms.CharField(max_length=200, required=False, validators=[plain_text], label=gettext_lazy("Site"))
    new_facilitator = forms.CharField(
        max_length=100, required=False, label=gettext_lazy("New facilitator"),
        help_text=gettext_lazy("A facilitator id not in the list yet (e.g. F4), to add and assign."))

    def __init__(self, *args, study: m.Study, identifiers=(), editing: bool = False, strata=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.study = study
        self.editing = editing
        self.randomised = strata is not None
        self.strata = list(strata or ())
        self.fields["arm"].queryset = m.Arm.objects.filter(study=study).order_by("pk")
        self.fields["arm"].label_from_instance = lambda arm: arm.label or arm.code
        self.fields["facilitators"] = _facilitator_field(study)
        self.fields["facilitators"].label_from_instance = lambda f: f.facilitator_id
        fields = [IdentifierField(f) if isinstance(f, str) else f for f in identifiers]
        self.identifier_names = [f.id for f in fields]
        for field in fields:
            self.fields[f"identifier_{field.id}"] = identifier_field(field, self.initial.get(f"identifier_{field.id}"))
        order = ["participant_id", "arm", "enrolled_on", "site", "facilitators", "new_facilitator"]
        if self.randomised and editing:
            self.fields["arm"].disabled = True
            self.fields["arm"].help_text = _("Allocated by the study's randomisation list; it cannot be changed.")
        elif self.randomised:
            del self.fields["arm"]
            for name, values in self.strata:
                self.fields[f"stratum_{name}"] = forms.ChoiceField(
                    choices=[("", "—"), *[(v, v) for v in values]], label=_("%(factor)s (stratum)") % {"factor": name},
                    help_text=_("Randomisation is stratified by %(factor)s.") % {"factor": name})
                if name == "site":
                    del self.fields["site"]  # the stratum's site is the participant's site
            self.fields["eligible"] = forms.BooleanField(
                label=_("Eligible and consented"),
                help_text=_("Every inclusion criterion is met, no exclusion criterion applies and informed consent "
                            "is signed. The arm is allocated when you enrol, and cannot be undone."))
            order = ["participant_id", *[f"stratum_{n}" for n, _v in self.strata], "enrolled_on", "site",
                     "facilitators", "new_facilitator", "eligible"]
        self.order_fields(order)
        if editing:
            self.fields["participant_id"].disabled = True
            self.fields["enrolled_on"].required = False

    def clean_participant_id(self):
        value = self.cleaned_data["participant_id"].strip()
        if self.editing:
            return value
        if not ID_PATTERN.fullmatch(value):  # the core's rule: imports and forms accept the same ids
            raise forms.ValidationError(_("Use %(allowed)s.") % {"allowed": ID_ALLOWED})
        if m.Participant.objects.filter(study=self.study, participant_id=value).exists():
            raise forms.ValidationError(_("%(participant)s is already enrolled in this study.") % {"participant": value})
        return value

    def clean_new_facilitator(self):
        value = self.cleaned_data["new_facilitator"].strip()
        if value and not ID_PATTERN.fullmatch(value):
            raise forms.ValidationError(_("Use letters, digits, '.', '-' and '_' only."))
        return value

    def stratum(self) -> dict[str, str]:
        """Factor → the participant's value, for a randomised enrolment."""
        return {name: self.cleaned_data[f"stratum_{name}"] for name, _values in self.strata}

    def site_value(self) -> str:
        """The participant's site (a stratum's value when the study is stratified by site)."""
        if "site" in self.fields:
            return self.cleaned_data.get("site", "").strip()
        return self.cleaned_data.get("stratum_site", "")

    def identifiers(self) -> dict[str, str]:
        """Identifier id → its value as text (a date as ``YYYY-MM-DD``; empty when not given)."""
        out = {}
        for name in self.identifier_names:
            value = self.cleaned_data.get(f"identifier_{name}")
            out[name] = value.isoformat() if isinstance(value, dt.date) else (value or "").strip()
        return out


def identifier_field(field: IdentifierField, initial=None) -> forms.Field:
    """The form field of one identifier column: its label, and the input and checks of its type.

    Parameters
    ----------
    field : IdentifierField
    initial : str, optional
        The stored value. A ``date`` identifier whose stored text is not a ``YYYY-MM-DD`` date
        (kept from before the protocol gave the type) is shown as text, so that it can be read
        and corrected rather than silently emptied by a date picker that cannot show it.

    Returns
    -------
    django.forms.Field
        Not required; its cleaned value is text, or a ``datetime.date`` for ``date``.
    """
    common = {"label": field.label, "required": False, "help_text": _IDENTIFYING}
    if field.type == "date":
        readable = initial in (None, "") or _iso_date(str(initial)) is not None
        widget = DATE_INPUT if readable else forms.TextInput(attrs={"placeholder": "YYYY-MM-DD"})
        return forms.DateField(widget=widget, input_formats=["%Y-%m-%d"], validators=[_identifier_date],
                               error_messages={"invalid": gettext_lazy("Give a date as YYYY-MM-DD, e.g. 1984-07-31.")},
                               **common)
    if field.type == "email":
        return forms.EmailField(max_length=200, validators=[plain_text], **common)
    if field.type == "phone":
        return forms.CharField(max_length=40, validators=[_phone], widget=forms.TextInput(attrs={"type": "tel",
                               "autocomplete": "off"}), **common)
    if field.type == "number":
        return forms.CharField(max_length=40, validators=[_number],
                               widget=forms.TextInput(attrs={"inputmode": "numeric"}), **common)
    return forms.CharField(max_length=200, validators=[plain_text], **common)


def _iso_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        return None


def _identifier_date(value: dt.date | None) -> None:
    if value is None:
        return
    today = timezone.localdate()
    if value > today:
        raise forms.ValidationError(_("This date is in the future; give a date up to today (%(today)s).")
                                    % {"today": today.isoformat()})
    if value < EARLIEST_IDENTIFIER_DATE:
        raise forms.ValidationError(_("Give a date from %(first)s on.") % {"first": EARLIEST_IDENTIFIER_DATE})


def _phone(value: str) -> None:
    if value and not _PHONE.fullmatch(value.strip()):
        raise forms.ValidationError(_("Give a phone number: digits, spaces, + ( ) . - and /, e.g. +49 30 1234567."))


def _number(value: str) -> None:
    if value and not _NUMBER.fullmatch(value.strip()):
        raise forms.ValidationError(_("Give a number: digits, e.g. 004217."))


class DosingForm(forms.Form):
    """A dosing session: which session, when, which compound, how much (defaults from the protocol)."""

    session = forms.TypedChoiceField(coerce=int, choices=(), label=gettext_lazy("Session"))
    date = forms.DateField(widget=DATE_INPUT, label=gettext_lazy("Date"))
    compound = forms.CharField(max_length=100, validators=[plain_text], label=gettext_lazy("Compound"))
    amount = forms.FloatField(min_value=0, required=False, label=gettext_lazy("Amount"))
    unit = forms.ChoiceField(choices=[(u, u) for u in DOSE_UNITS], label=gettext_lazy("Unit"))
    # The dosing-day record (dosing_sessions.csv's optional columns; checked by the core when stored).
    started_at = forms.TimeField(required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                                 label=gettext_lazy("Session started"))
    ended_at = forms.TimeField(required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                               label=gettext_lazy("Session ended"),
                               help_text=gettext_lazy("On the session's date; leave empty while it goes on."))
    present = forms.CharField(max_length=500, required=False, validators=[plain_text], label=gettext_lazy("Present"),
                              help_text=gettext_lazy("Facilitator ids, and role:id for others, separated by ';' "
                                                     "(e.g. F1;F2;monitor:M1; roles: facilitator, monitor, "
                                                     "physician, other)."))
    rescue_medication = forms.CharField(max_length=2000, required=False, validators=[plain_text],
                                        label=gettext_lazy("Rescue medication"),
                                        help_text=gettext_lazy("What, how much, when (e.g. lorazepam 1 mg at 14:20); "
                                                               "empty: none given."))
    setting_notes = forms.CharField(max_length=2000, required=False, validators=[plain_text],
                                    widget=forms.Textarea(attrs={"rows": 3}), label=gettext_lazy("Setting"))
    music_notes = forms.CharField(max_length=2000, required=False, validators=[plain_text],
                                  widget=forms.Textarea(attrs={"rows": 2}), label=gettext_lazy("Music"))

    def day_record(self) -> dict[str, str]:
        """The dosing-day record's columns as text (``""`` when not given)."""
        d = self.cleaned_data
        return {"started_at": d["started_at"].strftime("%H:%M") if d.get("started_at") else "",
                "ended_at": d["ended_at"].strftime("%H:%M") if d.get("ended_at") else "",
                **{k: (d.get(k) or "").strip() for k in ("present", "rescue_medication", "setting_notes",
                                                         "music_notes")}}

    def clean_amount(self):
        amount = self.cleaned_data.get("amount")
        if amount is not None and not amount < MAX_DOSE_AMOUNT:  # the core's bound (alliance.protocol.design)
            raise forms.ValidationError(_("A dose is less than %(most)s.") % {"most": f"{MAX_DOSE_AMOUNT:,}"})
        return amount

    def __init__(self, *args, protocol: Protocol, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["session"].choices = [(t.dose.session, f"{t.dose.session}: {t.label}")
                                          for t in protocol.dosing_timepoints if t.dose is not None]


class PrivateLinkForm(forms.Form):
    """Which self-report form a private link opens, and for how many days."""

    form = forms.ChoiceField(label=gettext_lazy("Form"), help_text=gettext_lazy("Timepoint and questionnaire."))
    days = forms.IntegerField(min_value=1, max_value=90, label=gettext_lazy("Valid for (days)"))

    def __init__(self, *args, protocol: Protocol, **kwargs):
        super().__init__(*args, **kwargs)
        choices = []
        for timepoint in protocol.timepoints:
            for instrument_id in timepoint.instruments:
                instrument = bank.get(instrument_id)
                if instrument.rater == "participant":
                    choices.append((f"{timepoint.id}:{instrument_id}", f"{timepoint.label} — {instrument.short_name}"))
        self.fields["form"].choices = choices
        self.fields["days"].initial = settings.PRIVATE_LINK_DAYS

    def timepoint_and_instrument(self) -> tuple[str, str]:
        timepoint, instrument = self.cleaned_data["form"].split(":", 1)
        return timepoint, instrument


class StudyImportForm(forms.Form):
    """Files of a study in the tidy contract (``docs/data.md``), imported into a study that exists."""

    participants = forms.FileField(label="participants.csv", help_text=gettext_lazy("One row per participant."))
    responses = forms.FileField(label="responses.csv", help_text=gettext_lazy("One row per answered item."))
    dosing_sessions = forms.FileField(label="dosing_sessions.csv", required=False,
                                      help_text=gettext_lazy("One row per dosing session. Without it, the stored "
                                                             "dosing sessions are left as they are."))

    def clean(self):
        cleaned = super().clean()
        for name in ("participants", "responses", "dosing_sessions"):
            upload = cleaned.get(name)
            if upload is not None and upload.size > MAX_CSV_BYTES:  # refused before it is read
                self.add_error(name, _("At most %(most)s MiB; this file has %(size)s MiB.")
                               % {"most": MAX_CSV_BYTES // 2**20, "size": f"{upload.size / 2**20:,.0f}"})
        return cleaned

    def files_by_contract_name(self) -> dict:
        return {f"{name}.csv": self.cleaned_data[name] for name in ("participants", "responses", "dosing_sessions")
                if self.cleaned_data.get(name) is not None}
