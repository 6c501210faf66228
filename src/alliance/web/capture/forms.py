"""Forms of the capture app: set up a study, import its files, enrol, edit a participant, dosing, links.

The questionnaire forms themselves are not Django forms: they are drawn from the instrument
definitions (:mod:`~alliance.web.capture.instrument_forms`) and checked by the scoring engine.
"""

from __future__ import annotations

import re

from django import forms
from django.conf import settings

from alliance import instruments as bank
from alliance.protocol import Protocol, default_protocol, parse_protocol
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


def plain_text(value: str) -> None:
    """The core's rule for free text (``alliance.study.validation``): no NUL or control characters."""
    if value and CONTROL_CHARACTERS.search(value):
        raise forms.ValidationError(f"Use {TEXT_ALLOWED}.")


def enrolment_date(value) -> None:
    """The core's range of enrolment dates (``alliance.study.validation.ENROLMENT_RANGE``)."""
    if value is not None and not ENROLMENT_RANGE[0] <= value.isoformat() <= ENROLMENT_RANGE[1]:
        raise forms.ValidationError(f"Give a date between {ENROLMENT_RANGE[0]} and {ENROLMENT_RANGE[1]}.")
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class StudyCreateForm(forms.Form):
    """A new study: its name and its protocol (the built-in Levin 2024 one, or an uploaded YAML file)."""

    name = forms.CharField(max_length=100, help_text="Letters, digits, '.', '-' and '_', e.g. levin2024-site2.")
    source = forms.ChoiceField(choices=[("builtin", "The built-in protocol of Levin et al. (2024)"),
                                        ("upload", "A protocol file (YAML) I upload")],
                               initial="builtin", widget=forms.RadioSelect)
    protocol_file = forms.FileField(required=False, help_text="A protocol YAML file (schema: docs/protocol.md).")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not _NAME.fullmatch(name):
            raise forms.ValidationError("Use letters, digits, '.', '-' and '_' only, starting with a letter or digit.")
        if m.Study.objects.filter(name=name).exists():
            raise forms.ValidationError(f"There is already a study named {name}.")
        return name

    def clean(self):
        cleaned = super().clean()
        self.protocol: Protocol | None = None
        self.protocol_problems: list[str] = []
        if cleaned.get("source") == "upload":
            upload = cleaned.get("protocol_file")
            if upload is None:
                self.add_error("protocol_file", "Choose the protocol file to upload.")
                return cleaned
            if upload.size > MAX_BYTES:  # refused before it is read; read_yaml has the same limit
                self.add_error("protocol_file", "A protocol file is a few kilobytes; this one is over 1 MiB.")
                return cleaned
            try:
                # The one bounded reader: encoding, syntax, aliases and nesting are refused as
                # ProtocolError problems naming the file, like the schema's.
                raw = read_yaml(upload.read(MAX_BYTES + 1), upload.name)
                self.protocol = parse_protocol(raw, origin=upload.name)
            except StudyDataError as error:
                self.protocol_problems = [p.describe() for p in error.problems]
                self.add_error("protocol_file", f"The protocol has {len(error.problems)} "
                                                f"problem{'s' if len(error.problems) != 1 else ''} (listed below).")
        else:
            self.protocol = default_protocol()
        return cleaned


def _facilitator_field(study: m.Study) -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        queryset=m.Facilitator.objects.filter(study=study).order_by("facilitator_id"), required=False,
        widget=forms.CheckboxSelectMultiple, help_text="The participant's facilitators.")


class ParticipantForm(forms.Form):
    """Enrol a participant, or change an enrolled participant's arm, date, site, facilitators, identifiers."""

    participant_id = forms.CharField(max_length=64, help_text="The study's pseudonymous id, e.g. P025.")
    arm = forms.ModelChoiceField(queryset=m.Arm.objects.none(), empty_label=None)
    enrolled_on = forms.DateField(widget=DATE_INPUT, help_text="The protocol's timeline counts from this date.",
                                  validators=[enrolment_date])
    site = forms.CharField(max_length=200, required=False, validators=[plain_text])
    new_facilitator = forms.CharField(max_length=100, required=False,
                                      help_text="A facilitator id not in the list yet (e.g. F4), to add and assign.")

    def __init__(self, *args, study: m.Study, identifiers: tuple[str, ...] = (), editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.study = study
        self.editing = editing
        self.fields["arm"].queryset = m.Arm.objects.filter(study=study).order_by("pk")
        self.fields["arm"].label_from_instance = lambda arm: arm.label or arm.code
        self.fields["facilitators"] = _facilitator_field(study)
        self.fields["facilitators"].label_from_instance = lambda f: f.facilitator_id
        self.identifier_names = list(identifiers)
        for name in identifiers:
            self.fields[f"identifier_{name}"] = forms.CharField(
                label=name.replace("_", " ").capitalize(), max_length=200, required=False, validators=[plain_text],
                help_text="Identifying: hidden from monitors, left out of de-identified exports.")
        self.order_fields(["participant_id", "arm", "enrolled_on", "site", "facilitators", "new_facilitator"])
        if editing:
            self.fields["participant_id"].disabled = True
            self.fields["enrolled_on"].required = False

    def clean_participant_id(self):
        value = self.cleaned_data["participant_id"].strip()
        if self.editing:
            return value
        if not ID_PATTERN.fullmatch(value):  # the core's rule: imports and forms accept the same ids
            raise forms.ValidationError(f"Use {ID_ALLOWED}.")
        if m.Participant.objects.filter(study=self.study, participant_id=value).exists():
            raise forms.ValidationError(f"{value} is already enrolled in this study.")
        return value

    def clean_new_facilitator(self):
        value = self.cleaned_data["new_facilitator"].strip()
        if value and not ID_PATTERN.fullmatch(value):
            raise forms.ValidationError("Use letters, digits, '.', '-' and '_' only.")
        return value

    def identifiers(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(f"identifier_{name}", "").strip() for name in self.identifier_names}


class DosingForm(forms.Form):
    """A dosing session: which session, when, which compound, how much (defaults from the protocol)."""

    session = forms.TypedChoiceField(coerce=int, choices=())
    date = forms.DateField(widget=DATE_INPUT)
    compound = forms.CharField(max_length=100, validators=[plain_text])
    amount = forms.FloatField(min_value=0, required=False)
    unit = forms.ChoiceField(choices=[(u, u) for u in DOSE_UNITS])

    def clean_amount(self):
        amount = self.cleaned_data.get("amount")
        if amount is not None and not amount < MAX_DOSE_AMOUNT:  # the core's bound (alliance.protocol.design)
            raise forms.ValidationError(f"A dose is less than {MAX_DOSE_AMOUNT:,}.")
        return amount

    def __init__(self, *args, protocol: Protocol, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["session"].choices = [(t.dose.session, f"{t.dose.session}: {t.label}")
                                          for t in protocol.dosing_timepoints if t.dose is not None]


class PrivateLinkForm(forms.Form):
    """Which self-report form a private link opens, and for how many days."""

    form = forms.ChoiceField(label="Form", help_text="Timepoint and questionnaire.")
    days = forms.IntegerField(min_value=1, max_value=90, label="Valid for (days)")

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

    participants = forms.FileField(label="participants.csv", help_text="One row per participant.")
    responses = forms.FileField(label="responses.csv", help_text="One row per answered item.")
    dosing_sessions = forms.FileField(label="dosing_sessions.csv", required=False,
                                      help_text="One row per dosing session. Without it, the stored dosing "
                                                "sessions are left as they are.")

    def clean(self):
        cleaned = super().clean()
        for name in ("participants", "responses", "dosing_sessions"):
            upload = cleaned.get(name)
            if upload is not None and upload.size > MAX_CSV_BYTES:  # refused before it is read
                self.add_error(name, f"At most {MAX_CSV_BYTES // 2**20} MiB; this file has "
                                     f"{upload.size / 2**20:,.0f} MiB.")
        return cleaned

    def files_by_contract_name(self) -> dict:
        return {f"{name}.csv": self.cleaned_data[name] for name in ("participants", "responses", "dosing_sessions")
                if self.cleaned_data.get(name) is not None}
