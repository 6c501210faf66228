"""Storage of studies: the protocol, participants, what was administered and answered.

The tidy data contract of ``alliance.study`` maps onto these tables:

=======================  =====================================================================
contract                 tables
=======================  =====================================================================
``protocol.yaml``        :class:`Study` (the YAML text and its sha256), :class:`Arm`,
                         :class:`Timepoint` (one row per protocol timepoint, for queries)
``participants.csv``     :class:`Participant` (covariates and identifiers as JSON),
                         :class:`Facilitator` via :class:`FacilitatorAssignment`
``dosing_sessions.csv``  :class:`DosingSession`
``responses.csv``        :class:`Administration` (participant × timepoint × instrument — × the
                         rating facilitator for a facilitator-rated instrument — with rater,
                         time and scores) and :class:`ItemResponse` (one answered item)
=======================  =====================================================================

Every create, change and delete is recorded in the audit trail,
:class:`alliance.web.audit.models.AuditEvent` (the ``audit`` app), which is append-only.

The web app adds :class:`PrivateLink` (a participant's link to one self-report form) and
:class:`VisitLink` (one link to every self-report of a visit: a survey queue), both stored as the
SHA-256 of their token; :class:`Notification` (each invitation and reminder email, one row per
message, which makes sending idempotent); :class:`DateShift` (the secret per-participant offset
of de-identified exports); ``Participant.enrolled_on`` (the date the protocol's timeline counts
from) and ``Participant.email_opt_out``; and, per administration, how it was taken
(``Administration.mode``) and, for clinician ratings, whether the rater was blind
(``Administration.blinded``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Study(models.Model):
    """One study: its name, and the protocol it follows, kept as the YAML text it was given in."""

    name = models.CharField(max_length=200, unique=True)
    protocol_yaml = models.TextField(help_text="The protocol as YAML; the source of truth for export.")
    protocol_sha256 = models.CharField(max_length=64, help_text="The protocol's canonical sha256.")
    participant_columns = models.JSONField(
        default=list, help_text="Column order of participants.csv, so that export reproduces it.")
    dosing_session_columns = models.JSONField(
        null=True, blank=True, help_text="Column order of dosing_sessions.csv; null when the study has none.")
    adverse_event_columns = models.JSONField(
        null=True, blank=True, help_text="Column order of adverse_events.csv; null when the study has none.")
    vital_sign_columns = models.JSONField(
        null=True, blank=True, help_text="Column order of vital_signs.csv; null when the study has none.")
    medication_columns = models.JSONField(
        null=True, blank=True, help_text="Column order of concomitant_medications.csv; null when the study has none.")
    crisis_text = models.TextField(
        blank=True, help_text="What to do about an endorsed suicidality item, in the site's own words "
                              "(whom to call); blank: the protocol's crisis text.")
    country = models.CharField(
        max_length=2, blank=True, help_text="The site's country, ISO 3166-1 alpha-2 (e.g. GB); blank when not set.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.name


class Arm(models.Model):
    """A protocol arm, e.g. immediate or delayed (waiting-list) treatment."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="arms")
    code = models.CharField(max_length=100, help_text="The protocol's arm id.")
    label = models.CharField(max_length=200, blank=True)
    start_offset_days = models.IntegerField(default=0, help_text="Days from enrolment to the start of treatment.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "code"], name="capture_arm_unique_code")]

    def __str__(self) -> str:
        return f"{self.study.name}/{self.code}"


class Timepoint(models.Model):
    """A protocol timepoint, copied from the protocol so that it can be queried and referenced."""

    class Kind(models.TextChoices):
        BASELINE = "baseline"
        PREPARATION = "preparation"
        DOSING = "dosing"
        INTEGRATION = "integration"
        FOLLOW_UP = "follow_up"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="timepoints")
    code = models.CharField(max_length=100, help_text="The protocol's timepoint id, e.g. prep or week4.")
    label = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    order = models.IntegerField()
    anchor = models.CharField(max_length=100, blank=True, help_text="What offset_days counts from.")
    offset_days = models.IntegerField(null=True, blank=True)
    window_before_days = models.IntegerField(null=True, blank=True)
    window_after_days = models.IntegerField(null=True, blank=True)
    instruments = models.JSONField(default=list, help_text="Instrument ids given at this timepoint.")
    dose = models.JSONField(null=True, blank=True, help_text="For dosing timepoints: compound, amount, unit, session.")

    class Meta:
        ordering = ["study", "order"]
        constraints = [models.UniqueConstraint(fields=["study", "code"], name="capture_timepoint_unique_code")]

    def __str__(self) -> str:
        return f"{self.study.name}/{self.code}"


class Participant(models.Model):
    """A participant of a study.

    Identifying columns (those the protocol lists under ``identifiers``) are kept apart from the
    covariates so that de-identified exports can leave them out without knowing column names.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants")
    participant_id = models.CharField(max_length=100)
    # RESTRICT, not PROTECT: an arm in use cannot be deleted, except together with its study.
    arm = models.ForeignKey(Arm, on_delete=models.RESTRICT, related_name="participants")
    site = models.CharField(max_length=200, blank=True)
    covariates = models.JSONField(default=dict, blank=True, help_text="Other participants.csv columns.")
    identifiers = models.JSONField(default=dict, blank=True,
                                   help_text="Columns that identify a person; dropped in de-identified exports.")
    enrolled_on = models.DateField(null=True, blank=True,
                                   help_text="Enrolment date; the protocol's timepoints are planned from it.")
    email_opt_out = models.DateTimeField(
        null=True, blank=True, help_text="When the participant asked for no more invitations or reminders by email.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["study", "participant_id"]
        constraints = [models.UniqueConstraint(fields=["study", "participant_id"],
                                               name="capture_participant_unique_id")]

    def __str__(self) -> str:
        return f"{self.study.name}/{self.participant_id}"


class Facilitator(models.Model):
    """An intervention facilitator of a study, optionally linked to the user account they log in with."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="facilitators")
    facilitator_id = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="facilitator_roles")
    participants = models.ManyToManyField(Participant, through="FacilitatorAssignment", related_name="facilitators")

    class Meta:
        ordering = ["study", "facilitator_id"]
        constraints = [models.UniqueConstraint(fields=["study", "facilitator_id"],
                                               name="capture_facilitator_unique_id")]

    def __str__(self) -> str:
        return f"{self.study.name}/{self.facilitator_id}"


class FacilitatorAssignment(models.Model):
    """A facilitator working with a participant; ``position`` keeps the order given in participants.csv."""

    facilitator = models.ForeignKey(Facilitator, on_delete=models.CASCADE, related_name="assignments")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="assignments")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["participant", "position"]
        constraints = [models.UniqueConstraint(fields=["facilitator", "participant"],
                                               name="capture_assignment_unique")]


class DosingSession(models.Model):
    """A dosing session of a participant: when, which compound, how much."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="dosing_sessions")
    session = models.PositiveSmallIntegerField(help_text="1 for the first dosing session, 2 for the second, …")
    date = models.CharField(max_length=40, blank=True,
                            help_text="ISO-8601 date (or date-time) as given; empty when not recorded.")
    compound = models.CharField(max_length=100, blank=True)
    amount = models.FloatField(null=True, blank=True)
    unit = models.CharField(max_length=20, blank=True, help_text="mg, mg/kg or mg/70kg.")
    # The dosing-day record (dosing_sessions.csv's optional columns, docs/data.md).
    started_at = models.CharField(max_length=40, blank=True, help_text="ISO-8601 date-time or HH:MM the session began.")
    ended_at = models.CharField(max_length=40, blank=True, help_text="ISO-8601 date-time or HH:MM it ended.")
    present = models.CharField(max_length=500, blank=True,
                               help_text="Who was present, ;-separated: ID or role:ID (facilitator, monitor, …).")
    rescue_medication = models.CharField(max_length=2000, blank=True, help_text="Empty: none given.")
    setting_notes = models.TextField(blank=True)
    music_notes = models.TextField(blank=True)

    class Meta:
        ordering = ["participant", "session"]
        constraints = [models.UniqueConstraint(fields=["participant", "session"],
                                               name="capture_dosingsession_unique")]

    def __str__(self) -> str:
        return f"{self.participant}/session{self.session}"


class AdverseEvent(models.Model):
    """An adverse event of a participant (the tidy contract's ``adverse_events.csv``, docs/data.md).

    Checked by :func:`alliance.study.adverse_events.check_adverse_events` before it is stored;
    ``ae_id`` is unique in the study (the constraint holds it per participant; the check, study-wide).
    """

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="adverse_events")
    ae_id = models.CharField(max_length=100)
    term = models.CharField(max_length=500)
    onset = models.CharField(max_length=40, help_text="ISO-8601 date (or date-time) as given.")
    resolved_on = models.CharField(max_length=40, blank=True, help_text="ISO-8601 date; empty while ongoing.")
    severity = models.PositiveSmallIntegerField(help_text="CTCAE grade 1-5.")
    serious = models.BooleanField()
    seriousness = models.CharField(max_length=200, blank=True, help_text="ICH E2A criteria, ;-separated.")
    relatedness = models.CharField(max_length=20, blank=True)
    expected = models.BooleanField(null=True, blank=True)
    action = models.CharField(max_length=30, blank=True)
    outcome = models.CharField(max_length=30, blank=True)
    code = models.CharField(max_length=100, blank=True, help_text="The term's code in the site's dictionary.")

    class Meta:
        ordering = ["participant", "onset", "ae_id"]
        constraints = [models.UniqueConstraint(fields=["participant", "ae_id"], name="capture_adverseevent_unique")]

    def __str__(self) -> str:
        return f"{self.participant}/{self.ae_id}"


class VitalSign(models.Model):
    """One reading on a dosing day (the tidy contract's ``vital_signs.csv``)."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="vital_signs")
    session = models.PositiveSmallIntegerField()
    measured_at = models.CharField(max_length=40, help_text="ISO-8601 date-time as given.")
    minutes_after_dose = models.IntegerField(null=True, blank=True)
    systolic_bp = models.FloatField(null=True, blank=True, help_text="mmHg")
    diastolic_bp = models.FloatField(null=True, blank=True, help_text="mmHg")
    heart_rate = models.FloatField(null=True, blank=True, help_text="beats per minute")

    class Meta:
        ordering = ["participant", "session", "measured_at"]
        constraints = [models.UniqueConstraint(fields=["participant", "session", "measured_at"],
                                               name="capture_vitalsign_unique")]

    def __str__(self) -> str:
        return f"{self.participant}/session{self.session}/{self.measured_at}"


class ConcomitantMedication(models.Model):
    """A medication a participant took (the tidy contract's ``concomitant_medications.csv``)."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="medications")
    name = models.CharField(max_length=200)
    dose = models.CharField(max_length=200, blank=True)
    start = models.CharField(max_length=20, help_text="ISO-8601 date.")
    stop = models.CharField(max_length=20, blank=True, help_text="ISO-8601 date; empty while ongoing.")
    indication = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["participant", "start", "name"]
        constraints = [models.UniqueConstraint(fields=["participant", "name", "start"],
                                               name="capture_medication_unique")]

    def __str__(self) -> str:
        return f"{self.participant}/{self.name} from {self.start}"


class Administration(models.Model):
    """One instrument given to one participant at one timepoint.

    For an instrument whose ``rater`` is ``facilitator`` (``wai_sr_t``) each of the participant's
    facilitators rates separately: one administration per facilitator, ``facilitator`` set and
    ``rater`` holding its ``facilitator_id`` (the tidy contract's ``rater``). For every other
    instrument ``facilitator`` is null and there is one administration per participant,
    timepoint and instrument. Two conditional unique constraints keep both rules.

    A draft is a half-filled form (the web app saves it so that nothing is lost); a submitted
    administration is complete, scored and part of the study's data. Imports and exports deal
    in submitted administrations only.
    """

    class Status(models.TextChoices):
        DRAFT = "draft"
        SUBMITTED = "submitted"

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="administrations")
    timepoint = models.ForeignKey(Timepoint, on_delete=models.RESTRICT, related_name="administrations")
    instrument = models.CharField(max_length=50, help_text="Instrument id from the bank, e.g. wai_sr.")
    rater = models.CharField(max_length=200, blank=True, help_text="Who rated; empty when not recorded.")
    facilitator = models.ForeignKey(
        Facilitator, null=True, blank=True, on_delete=models.PROTECT, related_name="ratings",
        help_text="For a facilitator-rated instrument: the facilitator whose rating this is; null otherwise.")
    administered_at = models.CharField(
        max_length=40, blank=True,
        help_text="When, as the ISO-8601 text it was given in (date, or date and time); empty when not recorded.")
    class Mode(models.TextChoices):
        LINK = "link", "online, through a private link"
        PAPER = "paper", "on paper, entered by staff"
        TABLET = "tablet", "on a tablet at the site"
        INTERVIEW = "interview", "in a rating interview"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    mode = models.CharField(max_length=10, choices=Mode.choices, blank=True,
                            help_text="How it was taken; empty when not recorded (e.g. imported).")
    blinded = models.BooleanField(null=True, blank=True,
                                  help_text="For a clinician rating: whether the rater was blind to arm and "
                                            "treatment phase; null when not recorded.")
    scores = models.JSONField(default=dict, blank=True,
                              help_text="Scale scores from alliance.instruments (the only scoring path).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["participant", "timepoint__order", "instrument"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "timepoint", "instrument"],
                                    condition=models.Q(facilitator__isnull=True), name="capture_administration_once"),
            models.UniqueConstraint(fields=["participant", "timepoint", "instrument", "facilitator"],
                                    condition=models.Q(facilitator__isnull=False),
                                    name="capture_administration_once_per_facilitator"),
        ]
        indexes = [models.Index(fields=["timepoint", "instrument"])]

    def __str__(self) -> str:
        return f"{self.participant}/{self.timepoint.code}/{self.instrument}"


class ItemResponse(models.Model):
    """The answer to one item of one administration."""

    administration = models.ForeignKey(Administration, on_delete=models.CASCADE, related_name="responses")
    item = models.CharField(max_length=50, help_text="Item column name, e.g. wai_sr_3.")
    value = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["administration", "item"],
                                               name="capture_itemresponse_unique")]

    def __str__(self) -> str:
        return f"{self.administration}/{self.item}={self.value:g}"


class PrivateLink(models.Model):
    """A participant's private, single-use, expiring link to one self-report form.

    Only the SHA-256 of the token is stored: the link is shown once when it is made, and a copy
    of the database does not hold working links. The form's answers live in the
    :class:`Administration` (a draft until submitted), so a link that is opened again shows the
    draft, and a second link to the same form continues the same draft.
    """

    token_sha256 = models.CharField(max_length=64, unique=True)
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="private_links")
    timepoint = models.ForeignKey(Timepoint, on_delete=models.CASCADE, related_name="private_links")
    instrument = models.CharField(max_length=50)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True, help_text="When the form was submitted through it.")
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="When staff revoked it.")
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.participant}/{self.timepoint.code}/{self.instrument} link"


class VisitLink(models.Model):
    """A participant's private link to every self-report of one visit (a survey queue).

    It walks through the self-reports the protocol gives at the timepoint, one after the other;
    each form is single-use (once submitted, it is closed), answers are kept as drafts, so the
    participant can stop and come back. It expires at the close of the visit's window (or
    ``expires_at`` set when it was made), and staff can revoke it. Only the token's SHA-256 is
    stored, as for :class:`PrivateLink`: an email that carries the link is the only copy.
    """

    class Origin(models.TextChoices):
        STAFF = "staff", "made by staff"
        INVITATION = "invitation", "sent with an invitation"
        REMINDER = "reminder", "sent with a reminder"
        RESEND = "resend", "sent again by staff"

    token_sha256 = models.CharField(max_length=64, unique=True)
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="visit_links")
    timepoint = models.ForeignKey(Timepoint, on_delete=models.CASCADE, related_name="visit_links")
    origin = models.CharField(max_length=12, choices=Origin.choices, default=Origin.STAFF)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True, help_text="When it was first opened.")
    completed_at = models.DateTimeField(null=True, blank=True,
                                        help_text="When the last of its forms was submitted.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    revoked_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["participant", "timepoint"])]

    def __str__(self) -> str:
        return f"{self.participant}/{self.timepoint.code} visit link"


class Notification(models.Model):
    """One invitation or reminder email for one participant's visit.

    The row is written (status ``sending``) in its own transaction before the email is handed
    to the mail server, and the unique constraint on (participant, timepoint, kind, number) makes
    a second run — or a second process — skip it: a message goes out at most once. Only a send
    that failed before the server took the message (``failed``) is tried again, up to
    :data:`alliance.web.capture.invitations.MAX_ATTEMPTS` times. The address is never stored
    here: it is an identifier, read from the participant when sending.
    """

    class Kind(models.TextChoices):
        INVITATION = "invitation"
        REMINDER = "reminder"

    class Status(models.TextChoices):
        SENDING = "sending", "being sent (or the sender stopped mid-way: never sent again)"
        SENT = "sent"
        FAILED = "failed", "failed (tried again on the next run)"
        SKIPPED = "skipped"

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="notifications")
    timepoint = models.ForeignKey(Timepoint, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    number = models.PositiveSmallIntegerField(default=0, help_text="0 for the invitation; 1, 2, … for reminders.")
    due_on = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=200, blank=True, help_text="Why it was skipped or failed (no address).")
    attempts = models.PositiveSmallIntegerField(default=0)
    link = models.ForeignKey(VisitLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["participant", "timepoint", "kind", "number"],
                                               name="capture_notification_once")]

    def __str__(self) -> str:
        return f"{self.participant}/{self.timepoint.code} {self.kind} {self.number}"


class DateShift(models.Model):
    """The secret number of days a participant's dates move in de-identified exports.

    Drawn once at random and kept, so that every de-identified export of the participant shifts
    all their dates by the same amount (intervals between their dates are kept; calendar dates
    are not). Never shown in the app or written to an export.
    """

    participant = models.OneToOneField(Participant, on_delete=models.CASCADE, related_name="date_shift")
    offset_days = models.IntegerField()

    def __str__(self) -> str:
        return f"{self.participant} date shift"


class RandomisationList(models.Model):
    """A study's generated allocation list (:mod:`alliance.protocol.randomisation`), with its seed.

    Seen only by the study's unblinded role (``admin``, :data:`alliance.web.accounts.access.UNBLINDED_ROLES`).
    The list itself is stored, not only the seed: numpy promises no stream compatibility of its
    generators across versions, so the seed alone might not give the same list after an upgrade.
    """

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="randomisation_list")
    seed = models.CharField(max_length=40, help_text="A whole number ≥ 0, as text (64-bit seeds exceed SQLite's integer).")
    strata_values = models.JSONField(default=dict, blank=True,
                                     help_text="Factor → its values, for factors whose values the protocol does not list.")
    strata = models.JSONField(help_text="The generated list: AllocationList.to_dict()['strata'].")
    numpy_version = models.CharField(max_length=40)
    used = models.JSONField(default=dict, blank=True,
                            help_text="Stratum → the last entry of its list taken (kept when a participant is deleted).")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    def __str__(self) -> str:
        return f"{self.study} allocation list"


class Allocation(models.Model):
    """The arm a participant was allocated by the study's list: which stratum, which entry of it."""

    # The study is the participant's; kept here so that an entry of a stratum's list is used once.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="allocations")
    participant = models.OneToOneField(Participant, on_delete=models.CASCADE, related_name="allocation")
    stratum = models.CharField(max_length=500)
    sequence = models.PositiveIntegerField(help_text="Its entry of the stratum's list, from 1.")
    block = models.PositiveIntegerField()
    arm = models.CharField(max_length=100, help_text="The protocol's arm id.")
    allocated_at = models.DateTimeField(default=timezone.now)
    allocated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")

    class Meta:
        ordering = ["stratum", "sequence"]
        constraints = [models.UniqueConstraint(fields=["study", "stratum", "sequence"],
                                               name="capture_allocation_entry")]

    def __str__(self) -> str:
        return f"{self.participant} → {self.arm} ({self.stratum} #{self.sequence})"
