"""What the web app writes — studies, enrolments, dosing sessions, forms, private links — each audited.

Every function here makes its changes and collects their audit events in the caller's
:class:`~alliance.web.audit.log.AuditLog`, inside one transaction, so that data and trail are
committed together (the views call them in ``transaction.atomic`` and write the log at the end).
A study is created through :func:`alliance.web.capture.storage.import_study` (an import of the
protocol with no participants yet), so that the web app and ``alliance import`` store studies one
way. Scoring happens only in :func:`alliance.instruments.score`, via
:mod:`~alliance.web.capture.instrument_forms`.

Administrations made here follow the import's conventions: ``rater`` is empty for a participant's
self-report, the name of the rater for a clinician-rated form, and the facilitator's id for a
facilitator-rated one (``wai_sr_t``: one administration per facilitator, ``facilitator`` set); ``administered_at`` is the
moment of submission as ISO-8601 text in the site's time zone with its offset (seconds), or the
date and time staff give when they enter a paper form. After a form is submitted or a
dosing session recorded, the signals of :mod:`alliance.web.capture.signals` are sent inside the
same transaction (the monitor app raises its alerts on them).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, timedelta

import pandas as pd
from django.db import transaction
from django.utils import timezone

from alliance import instruments as bank
from alliance.instruments import Instrument
from alliance.protocol import Protocol
from alliance.study import Study as TidyStudy
from alliance.study.validation import (
    DOSING_COLUMNS,
    DOSING_DAY_COLUMNS,
    RESPONSE_COLUMNS,
    check_dosing_sessions,
)
from alliance.web.audit.log import AuditLog

from . import models as m
from . import signals
from .errors import StorageError
from .instrument_forms import score_answers
from .queries import study_protocol
from .safety import check_record
from .storage import import_study

CONTRACT_PARTICIPANT_COLUMNS = ["participant_id", "arm", "site", "facilitator_ids"]
# De-identified exports move each participant's dates by up to this many days either way.
MAX_DATE_SHIFT_DAYS = 365


class FormIncomplete(StorageError):
    """A form cannot be submitted: too many items unanswered for a scale to have a score."""

    def __init__(self, scales: list[str], unanswered: list[int]):
        self.scales = scales
        self.unanswered = unanswered
        items = ", ".join(str(n) for n in unanswered)
        super().__init__(f"Too many items are unanswered to score {', '.join(scales)}. "
                         f"Unanswered: item{'s' if len(unanswered) != 1 else ''} {items}.")


class AlreadySubmitted(StorageError):
    """The form was submitted already; a submitted administration is not changed from a form."""


def user_log(user, study: m.Study | None) -> AuditLog:
    """An audit log for the actions of a logged-in user."""
    return AuditLog(actor=f"user:{user.get_username()}", user=user, study=study)


def link_log(link: m.PrivateLink) -> AuditLog:
    """An audit log for what a participant does through a private link (no account: the link is named)."""
    return AuditLog(actor=f"private-link:{link.pk}", study=link.participant.study)


# -- studies and participants -------------------------------------------------------------------

def create_study(name: str, protocol: Protocol, *, user) -> m.Study:
    """Set up a new study following ``protocol``, with no participants yet.

    Parameters
    ----------
    name : str
        Unique; refused when a study of that name exists (an import would replace it).
    protocol : Protocol
    user : User
        Who sets it up; recorded in the audit events.

    Returns
    -------
    Study

    Raises
    ------
    StorageError
        When the name is taken.
    """
    participants = pd.DataFrame(columns=[*CONTRACT_PARTICIPANT_COLUMNS, *protocol.identifiers])
    empty = TidyStudy(protocol, participants, pd.DataFrame(columns=list(RESPONSE_COLUMNS)),
                      pd.DataFrame(columns=list(DOSING_COLUMNS)))
    with transaction.atomic():
        if m.Study.objects.select_for_update().filter(name=name).exists():
            raise StorageError(f"there is already a study named {name!r}")
        import_study(empty, name, actor=f"user:{user.get_username()}", user=user)
    return m.Study.objects.get(name=name)


def participant_state(participant: m.Participant) -> dict:
    """A participant's recorded fields, as audit events hold them."""
    facilitators = list(m.FacilitatorAssignment.objects.filter(participant=participant).order_by("position")
                        .values_list("facilitator__facilitator_id", flat=True)) if participant.pk else []
    return {"participant_id": participant.participant_id, "arm": participant.arm.code, "site": participant.site,
            "facilitator_ids": facilitators, "covariates": participant.covariates,
            "identifiers": participant.identifiers,
            "enrolled_on": participant.enrolled_on.isoformat() if participant.enrolled_on else None}


def _use_columns(study: m.Study, columns: list[str], log: AuditLog) -> None:
    """Add participants.csv columns the web app now fills, so that exports include them."""
    old = list(study.participant_columns or ["participant_id", "arm"])
    new = old + [c for c in columns if c not in old]
    if new != old:
        study.participant_columns = new
        study.save(update_fields=["participant_columns", "updated_at"])
        log.changed(study, {"participant_columns": old}, {"participant_columns": new}, label=study.name)


def _assign(participant: m.Participant, facilitators: list[m.Facilitator]) -> None:
    m.FacilitatorAssignment.objects.filter(participant=participant).delete()
    m.FacilitatorAssignment.objects.bulk_create([
        m.FacilitatorAssignment(participant=participant, facilitator=f, position=k) for k, f in enumerate(facilitators)])


def enrol(study: m.Study, *, participant_id: str, arm: m.Arm, enrolled_on: date, site: str = "",
          facilitators: list[m.Facilitator] = (), identifiers: dict | None = None, covariates: dict | None = None,
          log: AuditLog) -> m.Participant:
    """Enrol a participant.

    Parameters
    ----------
    study : Study
    participant_id : str
        The study's pseudonymous id (unique in the study).
    arm : Arm
    enrolled_on : date
        The date the protocol's timeline counts from.
    site : str
    facilitators : list of Facilitator
        In order (the first is the lead facilitator).
    identifiers : dict, optional
        Values of the protocol's identifier columns (name, email, …); empty ones are left out.
    covariates : dict, optional
        Other ``participants.csv`` columns (a randomised study's stratification factors).
    log : AuditLog

    Returns
    -------
    Participant

    Raises
    ------
    StorageError
        When the id is taken.
    """
    if m.Participant.objects.filter(study=study, participant_id=participant_id).exists():
        raise StorageError(f"participant {participant_id} is already enrolled in {study.name}")
    identifiers = {k: v for k, v in (identifiers or {}).items() if v not in (None, "")}
    covariates = {k: v for k, v in (covariates or {}).items() if v not in (None, "")}
    participant = m.Participant.objects.create(study=study, participant_id=participant_id, arm=arm, site=site,
                                               identifiers=identifiers, covariates=covariates, enrolled_on=enrolled_on)
    _assign(participant, list(facilitators))
    log.created(participant, participant_state(participant), label=participant_id)
    _use_columns(study, [*(["site"] if site else []), *(["facilitator_ids"] if facilitators else []),
                         *identifiers, *covariates], log)
    return participant


def update_participant(participant: m.Participant, *, arm: m.Arm, enrolled_on: date | None, site: str,
                       facilitators: list[m.Facilitator], identifiers: dict | None, log: AuditLog) -> None:
    """Change a participant's arm, enrolment date, site, facilitators or identifiers (``None``: keep them).

    Raises
    ------
    StorageError
        When the participant was randomised and ``arm`` is not their allocation's, or when a
        facilitator taken off the participant has submitted a rating of them (a
        facilitator-rated form names one of the participant's facilitators: the data would no
        longer validate); nothing is changed.
    """
    old = participant_state(participant)
    allocation = m.Allocation.objects.filter(participant=participant).first()
    if allocation is not None and arm.code != allocation.arm:
        raise StorageError(f"{participant.participant_id} was allocated to {allocation.arm} by the study's "
                           f"randomisation list; the arm of a randomised participant cannot be changed")
    removed = set(old["facilitator_ids"]) - {f.facilitator_id for f in facilitators}
    rated = sorted(set(m.Administration.objects.filter(participant=participant, status=m.Administration.Status.SUBMITTED,
                                                       facilitator__facilitator_id__in=removed)
                       .values_list("facilitator__facilitator_id", flat=True)))
    if rated:
        raise StorageError(f"{', '.join(rated)} rated {participant.participant_id} (a facilitator-rated form) and "
                           f"so stays a facilitator of {participant.participant_id}; a rating names one of the "
                           f"participant's facilitators")
    # Facilitators kept keep their place (the first is the lead); newly chosen ones follow.
    position = {f: k for k, f in enumerate(old["facilitator_ids"])}
    facilitators = sorted(facilitators, key=lambda f: position.get(f.facilitator_id, len(position)))
    participant.arm, participant.enrolled_on, participant.site = arm, enrolled_on, site
    if identifiers is not None:
        participant.identifiers = {k: v for k, v in identifiers.items() if v not in (None, "")}
    participant.save()
    if [f.facilitator_id for f in facilitators] != old["facilitator_ids"]:
        _assign(participant, list(facilitators))
    log.changed(participant, old, participant_state(participant), label=participant.participant_id)
    _use_columns(participant.study, [*(["site"] if site else []), *(["facilitator_ids"] if facilitators else []),
                                     *participant.identifiers], log)


# -- dosing sessions ----------------------------------------------------------------------------

def record_dosing(participant: m.Participant, *, session: int, day: date, compound: str, amount: float | None,
                  unit: str, log: AuditLog, record: dict | None = None) -> m.DosingSession:
    """Record (or correct) a dosing session, then tell the monitor app (same transaction).

    Parameters
    ----------
    participant : Participant
    session, day, compound, amount, unit
        The session and its dose.
    log : AuditLog
    record : dict, optional
        The dosing-day record (:data:`alliance.study.validation.DOSING_DAY_COLUMNS` → text):
        start and end, who was present, rescue medication, setting and music notes. Checked by
        :func:`alliance.study.validation.check_dosing_sessions`, as an import would be.

    Returns
    -------
    DosingSession

    Raises
    ------
    SafetyRecordError
        With the core's problems, when the dosing-day record is refused.
    """
    values = {"date": day.isoformat(), "compound": compound, "amount": amount, "unit": unit}
    if record is not None:
        row = {"participant_id": participant.participant_id, "session": session, **values,
               "amount": None if amount is None else float(amount), **record}
        check_record(check_dosing_sessions, participant, row, "dosing session", study_protocol(participant.study))
        values.update(record)
    label = f"{participant.participant_id}/session {session}"
    study = participant.study
    # The study's table gets the columns it now needs (the dosing-day record's only once one is given).
    wanted = list(study.dosing_session_columns or DOSING_COLUMNS[:6])
    wanted += [c for c in DOSING_DAY_COLUMNS if c not in wanted and values.get(c)]
    if wanted != study.dosing_session_columns:
        old_columns = study.dosing_session_columns
        study.dosing_session_columns = wanted
        study.save(update_fields=["dosing_session_columns", "updated_at"])
        log.changed(study, {"dosing_session_columns": old_columns}, {"dosing_session_columns": wanted},
                    label=study.name)
    dosing = m.DosingSession.objects.filter(participant=participant, session=session).first()
    if dosing is None:
        dosing = m.DosingSession.objects.create(participant=participant, session=session, **values)
        log.created(dosing, {"participant_id": participant.participant_id, "session": session, **values}, label=label)
    else:
        old = {k: getattr(dosing, k) for k in values}
        for k, v in values.items():
            setattr(dosing, k, v)
        dosing.save()
        log.changed(dosing, old, values, label=label)
    signals.dosing_recorded.send(sender=m.DosingSession, dosing_session=dosing)
    return dosing


# -- forms ---------------------------------------------------------------------------------------

def administration_label(administration: m.Administration) -> str:
    """``P004/prep/wai_sr``; a facilitator's rating adds the facilitator: ``P004/prep/wai_sr_t/F1``."""
    label = (f"{administration.participant.participant_id}/{administration.timepoint.code}/"
             f"{administration.instrument}")
    return label + (f"/{administration.facilitator.facilitator_id}" if administration.facilitator_id else "")


def open_administration(participant: m.Participant, timepoint: m.Timepoint, instrument_id: str,
                        log: AuditLog, *, rater: str = "", facilitator: m.Facilitator | None = None) -> m.Administration:
    """The participant's administration of an instrument at a timepoint, created as a draft if new.

    ``facilitator`` names whose rating it is, for a facilitator-rated instrument (one
    administration per facilitator; ``rater`` is then the facilitator's id); ``None`` otherwise.
    """
    if facilitator is not None:
        rater = facilitator.facilitator_id
    administration, created = (m.Administration.objects.select_related("participant", "timepoint", "facilitator")
                               .get_or_create(participant=participant, timepoint=timepoint, instrument=instrument_id,
                                              facilitator=facilitator,
                                              defaults={"status": m.Administration.Status.DRAFT, "rater": rater}))
    if created:
        log.created(administration, {"participant_id": participant.participant_id, "timepoint": timepoint.code,
                                     "instrument": instrument_id, "rater": rater, "administered_at": "",
                                     "status": "draft", "scores": {}, "items": {}},
                    label=administration_label(administration))
    return administration


def stored_answers(administration: m.Administration) -> dict[str, float]:
    """Item id → stored answer of an administration."""
    if administration.pk is None:
        return {}
    return dict(m.ItemResponse.objects.filter(administration=administration).values_list("item", "value"))


def save_answers(administration: m.Administration, answers: dict[str, float | None], log: AuditLog) -> int:
    """Store answers of a draft: new ones created, changed ones updated, cleared ones (``None``) deleted.

    Parameters
    ----------
    administration : Administration
        A draft (refused when submitted).
    answers : dict
        Item id → answer, ``None`` to clear it. Items not given are left as they are.
    log : AuditLog
        One event per answer created, changed or deleted.

    Returns
    -------
    int
        The number of answers that changed.
    """
    if administration.status == m.Administration.Status.SUBMITTED:
        raise AlreadySubmitted("this form has been submitted already")
    stored = {r.item: r for r in m.ItemResponse.objects.filter(administration=administration)}
    label = administration_label(administration)
    changed = 0
    for item, value in answers.items():
        row = stored.get(item)
        if value is None:
            if row is not None:
                log.deleted(row, {"item": item, "value": row.value}, label=f"{label}/{item}")
                row.delete()
                changed += 1
        elif row is None:
            row = m.ItemResponse.objects.create(administration=administration, item=item, value=value)
            log.created(row, {"item": item, "value": value}, label=f"{label}/{item}")
            changed += 1
        elif row.value != value:
            log.changed(row, {"value": row.value}, {"value": value}, label=f"{label}/{item}")
            row.value = value
            row.save(update_fields=["value"])
            changed += 1
    if changed:
        administration.save(update_fields=["updated_at"])
    return changed


def submit(administration: m.Administration, instrument: Instrument, answers: dict[str, float | None],
           log: AuditLog, *, rater: str = "", administered_at: str | None = None, mode: str = "",
           blinded: bool | None = None) -> m.Administration:
    """Score and submit a form: answers stored, status ``submitted``, scores kept, monitor told.

    Parameters
    ----------
    administration : Administration
        A draft.
    instrument : Instrument
    answers : dict
        Item id → validated answer (``None`` for unanswered), for every item of the form.
    log : AuditLog
    rater : str
        Empty for a self-report; the staff member's username for a clinician-rated form; the
        facilitator's id for a facilitator-rated one (kept equal to ``administration.facilitator``).
    administered_at : str, optional
        When it was taken, as ISO-8601 text, for staff who enter a form after the fact. Default:
        now, in the site's time zone with its UTC offset (the calendar date is the site's, which
        the protocol's windows count in, and the moment is exact).
    mode : str
        :class:`~alliance.web.capture.models.Administration.Mode`; empty when not recorded.
    blinded : bool, optional
        For a clinician rating: whether the rater was blind to arm and phase.

    Returns
    -------
    Administration

    Raises
    ------
    AlreadySubmitted
        When it was submitted meanwhile (e.g. through another link).
    FormIncomplete
        When a scale cannot be scored; nothing is submitted (the caller may keep the answers as
        a draft).
    """
    locked = m.Administration.objects.select_for_update().get(pk=administration.pk)
    if locked.status == m.Administration.Status.SUBMITTED:
        raise AlreadySubmitted("this form has been submitted already")
    if administration.facilitator_id is not None:
        rater = administration.facilitator.facilitator_id  # a facilitator's rating names its facilitator
    scores, unscorable = score_answers(instrument, answers)
    if unscorable:
        raise FormIncomplete(unscorable, [i.number for i in instrument.items if answers.get(i.id) is None])
    save_answers(administration, {i.id: answers.get(i.id) for i in instrument.items}, log)
    fields = ("status", "rater", "administered_at", "scores", "mode", "blinded")
    old = {f: getattr(administration, f) for f in fields}
    administration.status = m.Administration.Status.SUBMITTED
    administration.rater = rater
    administration.administered_at = administered_at or timezone.localtime().replace(microsecond=0).isoformat()
    administration.scores = scores
    administration.mode = mode
    administration.blinded = blinded
    administration.save()
    log.changed(administration, old, {f: getattr(administration, f) for f in fields},
                label=administration_label(administration))
    signals.administration_submitted.send(sender=m.Administration, administration=administration)
    return administration


# -- private links -------------------------------------------------------------------------------

def token_digest(token: str) -> str:
    """The SHA-256 (hex) of a private link token: what the database keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_private_link(participant: m.Participant, timepoint: m.Timepoint, instrument_id: str, *, days: int,
                        log: AuditLog, user=None) -> tuple[str, m.PrivateLink]:
    """Make a private link to one self-report form.

    Parameters
    ----------
    participant : Participant
    timepoint : Timepoint
    instrument_id : str
    days : int
        Days until it expires.
    log : AuditLog
    user : User, optional
        Who made it.

    Returns
    -------
    token : str
        ``secrets.token_urlsafe(32)`` (256 random bits); shown once, never stored.
    link : PrivateLink
    """
    if bank.get(instrument_id).rater != "participant":
        raise StorageError(f"{instrument_id} is not a self-report: staff enter it (private links open a "
                           f"participant's own questionnaires only)")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    link = m.PrivateLink.objects.create(token_sha256=token_digest(token), participant=participant,
                                        timepoint=timepoint, instrument=instrument_id, created_by=user,
                                        created_at=now, expires_at=now + timedelta(days=days))
    log.created(link, {"participant_id": participant.participant_id, "timepoint": timepoint.code,
                       "instrument": instrument_id, "expires_at": link.expires_at.isoformat()},
                label=f"{participant.participant_id}/{timepoint.code}/{instrument_id} private link")
    return token, link


def find_private_link(token: str) -> m.PrivateLink | None:
    """The link a token opens, or ``None`` (whatever state it is in)."""
    return (m.PrivateLink.objects.select_related("participant__study", "participant__arm", "timepoint")
            .filter(token_sha256=token_digest(token)).first())


def mark_link_used(link: m.PrivateLink, log: AuditLog) -> None:
    """Close a link after its form was submitted through it."""
    link.used_at = timezone.now()
    link.save(update_fields=["used_at"])
    log.changed(link, {"used_at": None}, {"used_at": link.used_at.isoformat()},
                label=f"{link.participant.participant_id}/{link.timepoint.code}/{link.instrument} private link")


def revoke_private_link(link: m.PrivateLink, log: AuditLog, user) -> None:
    """Revoke a single-form link: it no longer opens its form (the draft answers stay)."""
    link.revoked_at, link.revoked_by = timezone.now(), user
    link.save(update_fields=["revoked_at", "revoked_by"])
    log.changed(link, {"revoked_at": None}, {"revoked_at": link.revoked_at.isoformat()},
                label=f"{link.participant.participant_id}/{link.timepoint.code}/{link.instrument} private link")


# -- visit links (a survey queue) ----------------------------------------------------------------

def visit_link_label(link: m.VisitLink) -> str:
    return f"{link.participant.participant_id}/{link.timepoint.code} visit link"


def create_visit_link(participant: m.Participant, timepoint: m.Timepoint, *, expires_at, log: AuditLog,
                      user=None, origin: str = m.VisitLink.Origin.STAFF) -> tuple[str, m.VisitLink]:
    """Make a private link to every self-report of a visit.

    Parameters
    ----------
    participant : Participant
    timepoint : Timepoint
    expires_at : datetime
        Aware; the end of the visit's window (:func:`alliance.web.capture.links.window_close_at`).
    log : AuditLog
    user : User, optional
        Who made it (``None`` for the invitation sender).
    origin : str
        :class:`~alliance.web.capture.models.VisitLink.Origin`.

    Returns
    -------
    token : str
        ``secrets.token_urlsafe(32)``; shown or emailed once, never stored.
    link : VisitLink
    """
    token = secrets.token_urlsafe(32)
    link = m.VisitLink.objects.create(token_sha256=token_digest(token), participant=participant,
                                      timepoint=timepoint, origin=origin, created_by=user,
                                      created_at=timezone.now(), expires_at=expires_at)
    log.created(link, {"participant_id": participant.participant_id, "timepoint": timepoint.code,
                       "origin": origin, "expires_at": link.expires_at.isoformat()}, label=visit_link_label(link))
    return token, link


def find_visit_link(token: str) -> m.VisitLink | None:
    """The visit link a token opens, or ``None`` (whatever state it is in)."""
    return (m.VisitLink.objects.select_related("participant__study", "participant__arm", "timepoint")
            .filter(token_sha256=token_digest(token)).first())


def visit_link_log(link: m.VisitLink) -> AuditLog:
    """An audit log for what a participant does through a visit link (the link is named: no account)."""
    return AuditLog(actor=f"visit-link:{link.pk}", study=link.participant.study)


REVOKED_BY_STAFF = "revoked by staff"


def revoke_visit_link(link: m.VisitLink, log: AuditLog, user, reason: str = REVOKED_BY_STAFF) -> None:
    """Revoke a visit link: it no longer opens (draft answers stay; pending reminders are not sent)."""
    link.revoked_at, link.revoked_by, link.revoked_reason = timezone.now(), user, reason[:200]
    link.save(update_fields=["revoked_at", "revoked_by", "revoked_reason"])
    log.changed(link, {"revoked_at": None, "revoked_reason": ""},
                {"revoked_at": link.revoked_at.isoformat(), "revoked_reason": link.revoked_reason},
                label=visit_link_label(link))


def note_visit_progress(link: m.VisitLink, log: AuditLog, *, completed: bool) -> None:
    """Record that a participant worked through a visit link: first use, and the last form submitted."""
    now, changed = timezone.now(), {}
    if link.opened_at is None:
        changed["opened_at"] = now
    if completed and link.completed_at is None:
        changed["completed_at"] = now
    if not changed:
        return
    for name, value in changed.items():
        setattr(link, name, value)
    link.save(update_fields=list(changed))
    log.changed(link, {k: None for k in changed}, {k: v.isoformat() for k, v in changed.items()},
                label=visit_link_label(link))


def set_email_opt_out(participant: m.Participant, opted_out: bool, log: AuditLog) -> bool:
    """Stop (or resume) invitation and reminder emails to a participant; False when nothing changed."""
    if (participant.email_opt_out is not None) == opted_out:
        return False
    old = participant.email_opt_out.isoformat() if participant.email_opt_out else None
    participant.email_opt_out = timezone.now() if opted_out else None
    participant.save(update_fields=["email_opt_out", "updated_at"])
    log.changed(participant, {"email_opt_out": old},
                {"email_opt_out": participant.email_opt_out.isoformat() if opted_out else None},
                label=participant.participant_id)
    return True


# -- de-identification ---------------------------------------------------------------------------

def date_offsets(study: m.Study, log: AuditLog) -> dict[str, int]:
    """Each participant's secret date shift, drawing (and keeping) one for participants without.

    The audit events of new shifts say that one was drawn, not its value, which stays secret.

    Returns
    -------
    dict
        Participant id → days.
    """
    have = dict(m.DateShift.objects.filter(participant__study=study)
                .values_list("participant__participant_id", "offset_days"))
    for participant in m.Participant.objects.filter(study=study).exclude(date_shift__isnull=False):
        offset = 0
        while offset == 0:  # a shift of nothing would leave the real dates
            offset = secrets.randbelow(2 * MAX_DATE_SHIFT_DAYS + 1) - MAX_DATE_SHIFT_DAYS
        shift = m.DateShift.objects.create(participant=participant, offset_days=offset)
        log.created(shift, {"participant_id": participant.participant_id, "offset_days": "secret"},
                    label=f"{participant.participant_id} date shift")
        have[participant.participant_id] = offset
    return have
