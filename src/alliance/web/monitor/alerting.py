"""Raising, storing, resolving and acknowledging alerts: the database side of ``alliance.monitoring.alerts``.

The rules and their reasons are decided in the core (:mod:`alliance.monitoring.alerts`); this module
gathers the inputs they declare (:func:`alliance.monitoring.alerts.inputs_needed`) from the database, stores the alerts they raise once each (one per rule,
participant and timepoint) and writes every create and change to the audit trail. The inputs are
scores, answers and timelines, and the safety records — adverse events, vital signs, medications
and dosing sessions (:func:`safety_records`) — each read only when a rule asks for it.

When alerts are raised
----------------------
- **On events**, inside the transaction that stored them: a submitted form, a recorded dosing
  session or a safety record (an adverse event, a vital-sign reading, a medication) stored in the
  web app (the capture app's signals ``administration_submitted``, ``dosing_recorded`` and
  ``safety_recorded``, received in :mod:`alliance.web.monitor.receivers`) evaluates every rule for
  that participant.
- **After an import** (``alliance import``, the web upload): the capture app's signal
  ``study_imported``, sent inside the import's transaction, evaluates every rule for every
  participant of the study (:func:`refresh_alerts`).
- **Over time**: an assessment becomes overdue without anything happening. A scheduled job stores
  those alerts: ``alliance alerts refresh`` (e.g. hourly from cron; :func:`refresh_every_study`) and,
  inside ``alliance serve``, the thread of :mod:`alliance.web.monitor.scheduler`.

Pages never write: a GET takes no write lock (on SQLite, one writer at a time; a dashboard that
wrote gave "database is locked" under load). What a refresh *would* store now is computed on the
fly by :func:`time_alerts_now`, so a dashboard shows an assessment overdue since this morning
before the job has run (as an alert not yet stored, which cannot be acknowledged until it is).

An overdue or missed alert whose assessment is no longer overdue (done, or now counted as missed
by the other rule) is marked resolved; every other alert stays open until a person acknowledges it
(:func:`acknowledge`, or several with one note: :func:`acknowledge_alerts`), and may be assigned to
a staff member who can act on it (:func:`assign_alerts`, :func:`alert_staff`).

Alerts about data older than the protocol's ``historical_after_days`` are not raised (an import of
a finished study's records: :func:`alliance.monitoring.alerts.split_historical`), except those
about a safety record stored just now in the web app (``recorded`` of :func:`raise_alerts`): an
adverse event entered today with an onset six weeks ago is news today, and its reporting clock
starts when the team learns of it (ICH E2A), not at the onset.

A stored alert of severity ``urgent`` is emailed to the participant's facilitators once the
transaction that stored it commits, and an urgent serious adverse event to the study's
investigators and admins too (:mod:`alliance.web.monitor.notifications`). The crisis text of a
suicidality alert is the site's (:func:`study_crisis_text`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from functools import partial

import pandas as pd
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from alliance.monitoring import alerts as rules
from alliance.monitoring.crisis import crisis_text
from alliance.protocol import AlertConfig
from alliance.web.audit.log import AuditLog
from alliance.web.audit.models import AuditEvent
from alliance.web.capture.models import (
    Administration,
    AdverseEvent,
    ConcomitantMedication,
    DosingSession,
    FacilitatorAssignment,
    ItemResponse,
    Participant,
    Study,
    VitalSign,
)
from alliance.web.capture.queries import numeric_columns, study_protocol, study_scores
from alliance.web.capture.timelines import dosing_dates, participant_timeline, participant_timelines

from .models import Alert

ACTOR = "system:alerts"
SCORE_COLUMNS = ["participant_id", "timepoint", "instrument", "scale", "value"]
RESPONSE_COLUMNS = ["participant_id", "timepoint", "instrument", "item", "value"]
# The columns of the tidy tables (docs/data.md) that the safety rules read, and the model of each:
# AlertInputs field → (model, columns after participant_id).
SAFETY_TABLES = {
    "adverse_events": (AdverseEvent, ("ae_id", "term", "onset", "severity", "serious", "seriousness", "relatedness",
                                      "expected")),
    "vital_signs": (VitalSign, ("session", "measured_at", "systolic_bp", "diastolic_bp", "heart_rate")),
    "medications": (ConcomitantMedication, ("name", "start", "stop")),
    "dosing_sessions": (DosingSession, ("session", "date")),
}


@dataclass(frozen=True)
class RefreshSummary:
    """What one refresh did: alerts raised and resolved, participants looked at."""

    raised: int
    resolved: int
    participants: int


def raise_alerts(participant: Participant, today: date | None = None, *, time_only: bool = False,
                 timeline_rows: list[dict] | None = None, recorded: Iterable[str] = ()) -> list[Alert]:
    """Evaluate the protocol's alert rules for one participant and store the new alerts.

    Parameters
    ----------
    participant : Participant
    today : date, optional
        Default: today in the site's time zone.
    time_only : bool
        Only the rules whose alerts change with time (``time_dependent`` rule types of
        :mod:`alliance.monitoring.alerts`, e.g. ``missed_assessment``), which need no scores.
    timeline_rows : list of dict, optional
        The participant's :func:`schedule` on ``today`` when the caller has it already.
    recorded : iterable of str, optional
        The ``timepoint`` keys of the alerts about a safety record stored just now
        (:func:`alliance.monitoring.alerts.record_keys`): raised whatever the record's dates,
        never set aside as historical.

    Returns
    -------
    list of Alert
        The alerts created now (already existing ones are not raised again).
    """
    today = today or timezone.localdate()
    if timeline_rows is None:
        timeline_rows = schedule(participant, today)
    timelines = {participant.participant_id: timeline_rows} if timeline_rows else {}
    return _evaluate_and_store(participant.study, [participant], today, timelines, time_only,
                               recorded=frozenset(recorded))[0]


def study_timelines(participants: Iterable[Participant], today: date) -> dict[str, list[dict]]:
    """Participant id → timeline rows on ``today``, for the participants with an enrolment date.

    Parameters
    ----------
    participants : QuerySet or iterable of Participant
        With ``arm`` and ``study`` selected (``select_related``, or ``study`` set). A QuerySet is
        read with five queries whatever the number of participants (a list: three more per 500).
    today : date

    Returns
    -------
    dict
    """
    timelines = participant_timelines(participants, today)
    participants = list(participants)  # a QuerySet's rows are read once, by participant_timelines
    out = {}
    for participant in participants:
        rows = schedule(participant, today, timelines[participant.pk])
        if rows:  # no enrolment date, no schedule: nothing can be late
            out[participant.participant_id] = rows
    return out


def schedule(participant: Participant, today: date, timeline: dict | None = None) -> list[dict]:
    """A participant's timeline rows, each dosing timepoint whose session is recorded marked ``dosed``.

    Parameters
    ----------
    participant : Participant
    today : date
    timeline : dict, optional
        ``participant_timeline(participant, today)`` when the caller has it already.

    Returns
    -------
    list of dict
        The rows of :func:`alliance.web.capture.timelines.participant_timeline` (empty without an
        enrolment date). A dosing session may be recorded before its forms are all in, so its
        timepoint is not yet ``done``; ``dosed`` tells the alert rules that it took place.
    """
    timeline = timeline if timeline is not None else participant_timeline(participant, today)
    dosed = dosing_dates(timeline["protocol"], timeline["dosing_sessions"])
    return [{**row, "dosed": True} if row["timepoint"] in dosed else row for row in timeline["rows"]]


def refresh_alerts(study: Study, today: date | None = None, participants: Iterable[Participant] | None = None,
                   timelines: dict[str, list[dict]] | None = None) -> RefreshSummary:
    """Evaluate every alert rule for every participant of a study (or the ones given).

    Parameters
    ----------
    study : Study
    today : date, optional
        Default: today in the site's time zone.
    participants : iterable of Participant, optional
        Default: all of the study's.
    timelines : dict, optional
        :func:`study_timelines` of those participants on ``today``, when the caller has them.

    Returns
    -------
    RefreshSummary
    """
    today = today or timezone.localdate()
    everyone = participants is None
    chosen = list(Participant.objects.filter(study=study).select_related("arm", "study")) if everyone \
        else list(participants)
    if timelines is None:
        timelines = study_timelines(chosen, today)
    with transaction.atomic():
        created, resolved = _evaluate_and_store(study, chosen, today, timelines, False, everyone)
    return RefreshSummary(len(created), resolved, len(chosen))


def refresh_every_study(today: date | None = None) -> dict[str, RefreshSummary]:
    """:func:`refresh_alerts` for every stored study, one transaction each: the scheduled job.

    What ``alliance alerts refresh`` (cron) and the refresher thread of ``alliance serve``
    (:mod:`alliance.web.monitor.scheduler`) run.

    Parameters
    ----------
    today : date, optional
        Default: today in the site's time zone.

    Returns
    -------
    dict
        Study name → its :class:`RefreshSummary`, in name order.
    """
    today = today or timezone.localdate()
    return {study.name: refresh_alerts(study, today) for study in Study.objects.order_by("name")}


@dataclass(frozen=True)
class TimeAlerts:
    """What a refresh would change now among the time-dependent alerts, computed without writing.

    Attributes
    ----------
    new : list of Alert
        Unsaved :class:`~alliance.web.monitor.models.Alert` rows (``pk`` is ``None``,
        ``created_at`` unset) for the late assessments whose alert is not stored yet.
    lapsed : frozenset of int
        Primary keys of stored open overdue/missed alerts whose assessment is no longer late in
        that way (the refresh would mark them resolved).
    """

    new: list
    lapsed: frozenset


def time_alerts_now(study: Study, participants: list[Participant], timelines: dict[str, list[dict]],
                    today: date, stored: Iterable[Alert] | None = None) -> TimeAlerts:
    """The overdue and missed alerts a refresh would raise (and resolve) today, without storing anything.

    What the dashboards and the alert list show between two runs of the scheduled job: the
    time-dependent rules (:func:`alliance.monitoring.alerts.time_dependent`) evaluated on the
    timelines the page has computed anyway. No query is made besides reading the stored alerts
    (none when ``stored`` is given).

    Parameters
    ----------
    study : Study
    participants : list or QuerySet of Participant
        The participants the page shows (a QuerySet is used as a subquery: one query however many).
    timelines : dict
        :func:`study_timelines` of those participants on ``today`` (participant id → rows).
    today : date
    stored : iterable of Alert, optional
        The stored alerts of these participants, when the caller has read them (all of them:
        open and closed); read here otherwise.

    Returns
    -------
    TimeAlerts
    """
    if not participants or not timelines:
        return TimeAlerts([], frozenset())
    protocol = study_protocol(study)
    config = rules.time_dependent(protocol.alerts)
    if not config.rules:
        return TimeAlerts([], frozenset())
    by_id = {p.participant_id: p for p in participants}
    found = rules.evaluate_alerts(config, protocol, timelines=timelines, today=today, participant_ids=by_id)
    late_rules = {r.id for r in config.rules}
    # Only the alerts of the time-dependent rules matter here (the others are neither raised nor
    # lapsed by time), read as tuples: thousands of open alerts in a large study.
    if stored is None:
        scope = participants.values("pk") if isinstance(participants, QuerySet) else participants
        stored = (Alert.objects.filter(study=study, participant__in=scope, rule__in=sorted(late_rules))
                  .values_list("pk", "participant_id", "rule", "timepoint", "acknowledged_at", "resolved_at"))
    else:
        stored = [(a.pk, a.participant_id, a.rule, a.timepoint, a.acknowledged_at, a.resolved_at) for a in stored]
    participant_of = {p.pk: p.participant_id for p in participants}  # Alert.participant_id is the key
    # key → (pk, open)
    keys = {(participant_of[participant], rule, timepoint): (pk, acknowledged_at is None and resolved_at is None)
            for pk, participant, rule, timepoint, acknowledged_at, resolved_at in stored
            if participant in participant_of}
    new = [Alert(study=study, participant=by_id[a.participant_id], rule=a.rule, rule_type=a.type,
                 timepoint=a.timepoint, measure=a.measure[:300], severity=a.severity, reason=a.reason,
                 action=a.action, value=a.value)
           for a in found if (a.participant_id, a.rule, a.timepoint) not in keys]
    still = {(a.participant_id, a.rule, a.timepoint) for a in found}
    lapsed = frozenset(pk for key, (pk, is_open) in keys.items()
                       if is_open and key[1] in late_rules and key[0] in timelines and key not in still
                       and not _deviates(timelines, key[0], key[2]))
    return TimeAlerts(new, lapsed)


def acknowledge(alert: Alert, user, note: str = "") -> bool:
    """Record that a person has seen an alert and acted on it, in the audit trail too.

    Parameters
    ----------
    alert : Alert
    user : User
    note : str
        What was done (free text; kept with the alert and in the audit trail).

    Returns
    -------
    bool
        False when the alert was already acknowledged (nothing is changed then).
    """
    done = acknowledge_alerts(alert.study, [alert.pk], user, note, include_resolved=True).acknowledged
    alert.refresh_from_db()
    return bool(done)


@dataclass(frozen=True)
class BulkChange:
    """What a bulk acknowledgement or assignment did, and what it did not do, with the reason.

    Attributes
    ----------
    acknowledged : tuple of Alert
        The alerts changed (acknowledged, or assigned for :func:`assign_alerts`).
    closed : int
        Alerts left as they were because they were acknowledged or resolved already.
    refused : int
        Alerts not changed because the user may not act on them: not of this study, not of the
        participants the user may see, or (an assignment) not of the assignee's participants.
    """

    acknowledged: tuple
    closed: int = 0
    refused: int = 0


def acknowledge_alerts(study: Study, alert_ids: Iterable[int], user, note: str, *, allowed=None,
                       include_resolved: bool = False) -> BulkChange:
    """Acknowledge several alerts with one note, in one transaction, one audit event each.

    Parameters
    ----------
    study : Study
    alert_ids : iterable of int
        Primary keys of stored alerts.
    user : User
        Who acknowledges.
    note : str
        What was done; the same note is kept with each alert and in each audit event.
    allowed : QuerySet of Participant, optional
        The participants whose alerts the user may act on
        (:func:`alliance.web.accounts.access.visible_participants` for a role that may write); an
        alert of anyone else is refused. Default: every participant of the study.
    include_resolved : bool
        Acknowledge alerts that resolved by themselves too (the single acknowledgement of a card
        does); the bulk form offers only open ones.

    Returns
    -------
    BulkChange
    """
    wanted = sorted({int(pk) for pk in alert_ids})
    with transaction.atomic():
        rows = (Alert.objects.select_for_update().filter(pk__in=wanted, study=study)
                .select_related("participant").order_by("pk"))
        rows = list(rows)
        visible = None if allowed is None else set(allowed.filter(pk__in={r.participant_id for r in rows})
                                                    .values_list("pk", flat=True))
        mine = [r for r in rows if visible is None or r.participant_id in visible]
        refused = len(wanted) - len(mine)
        todo = [r for r in mine if r.acknowledged_at is None and (include_resolved or r.resolved_at is None)]
        if not todo:
            return BulkChange((), len(mine), refused)
        now = timezone.now()
        text = note.strip()
        Alert.objects.filter(pk__in=[r.pk for r in todo]).update(
            acknowledged_by=user, acknowledged_at=now, acknowledgement_note=text)
        log = AuditLog(actor=f"user:{user.get_username()}", user=user, study=study, at=now)
        old = {"acknowledged_by": None, "acknowledged_at": None, "acknowledgement_note": ""}
        for row in todo:
            row.acknowledged_by, row.acknowledged_at, row.acknowledgement_note = user, now, text
            log.changed(row, old, {"acknowledged_by": user.get_username(), "acknowledged_at": now.isoformat(),
                                   "acknowledgement_note": text},
                        label=_label(row.participant.participant_id, row.timepoint, row.rule))
        log.write()
    return BulkChange(tuple(todo), len(mine) - len(todo), refused)


@dataclass(frozen=True)
class Staff:
    """A member of a study who can act on alerts: an admin, an investigator or a facilitator.

    Attributes
    ----------
    user : User
    role : str
        ``admin``, ``investigator`` or ``facilitator``.
    participants : frozenset of int or None
        For a facilitator, the primary keys of their participants (the alerts they can act on);
        ``None`` for admins and investigators (every participant).
    """

    user: object
    role: str
    participants: frozenset | None

    def can_act_on(self, participant_pk: int) -> bool:
        return self.participants is None or participant_pk in self.participants

    @property
    def label(self) -> str:
        return f"{self.user.get_username()} ({self.role})"


def alert_staff(study: Study) -> list[Staff]:
    """The people alerts of a study can be assigned to, by username (three queries).

    Admins and investigators of the study (and superusers, admins of every study) can act on
    every alert; a facilitator on those of the participants they are assigned to. Monitors are
    read-only and never listed; nor are inactive accounts.

    Returns
    -------
    list of Staff
    """
    from django.contrib.auth import get_user_model

    from alliance.web.accounts.models import StudyMembership

    roles = {}
    for membership in (StudyMembership.objects.filter(study=study, user__is_active=True,
                                                      role__in=("admin", "investigator", "facilitator"))
                       .select_related("user")):
        roles[membership.user.pk] = (membership.user, membership.role)
    for user in get_user_model().objects.filter(is_superuser=True, is_active=True):
        roles[user.pk] = (user, "admin")
    own: dict[int, set[int]] = {}
    for user_pk, participant_pk in FacilitatorAssignment.objects.filter(
            facilitator__study=study, facilitator__user__isnull=False).values_list(
            "facilitator__user", "participant"):
        own.setdefault(user_pk, set()).add(participant_pk)
    staff = [Staff(user, role, frozenset(own.get(pk, ())) if role == "facilitator" else None)
             for pk, (user, role) in roles.items()]
    return sorted(staff, key=lambda s: s.user.get_username())


def assign_alerts(study: Study, alert_ids: Iterable[int], assignee, user, *, allowed=None) -> BulkChange:
    """Assign open alerts to a staff member who can act on them (or to nobody), audited.

    Parameters
    ----------
    study : Study
    alert_ids : iterable of int
    assignee : User or None
        One of :func:`alert_staff`; ``None`` takes the assignment away.
    user : User
        Who assigns.
    allowed : QuerySet of Participant, optional
        The participants whose alerts ``user`` may act on; default every participant.

    Returns
    -------
    BulkChange
        ``refused`` counts the alerts ``user`` may not act on and those of participants the
        assignee cannot act on (a facilitator assigned another facilitator's participant).

    Raises
    ------
    ValueError
        When ``assignee`` is not a member of the study who can act on alerts.
    """
    staff = None
    if assignee is not None:
        staff = next((s for s in alert_staff(study) if s.user.pk == assignee.pk), None)
        if staff is None:
            raise ValueError(f"{assignee.get_username()} cannot act on alerts of {study.name}: only its admins, "
                             "investigators and facilitators can")
    wanted = sorted({int(pk) for pk in alert_ids})
    with transaction.atomic():
        rows = list(Alert.objects.select_for_update().filter(pk__in=wanted, study=study)
                    .select_related("participant", "assigned_to").order_by("pk"))
        visible = None if allowed is None else set(allowed.filter(pk__in={r.participant_id for r in rows})
                                                    .values_list("pk", flat=True))
        mine = [r for r in rows if (visible is None or r.participant_id in visible)
                and (staff is None or staff.can_act_on(r.participant_id))]
        refused = len(wanted) - len(mine)
        todo = [r for r in mine if r.is_open and r.assigned_to_id != (assignee.pk if assignee else None)]
        closed = sum(not r.is_open for r in mine)
        now = timezone.now()
        log = AuditLog(actor=f"user:{user.get_username()}", user=user, study=study, at=now)
        for row in todo:
            old = {"assigned_to": row.assigned_to.get_username() if row.assigned_to else None,
                   "assigned_at": row.assigned_at.isoformat() if row.assigned_at else None}
            row.assigned_to, row.assigned_at = assignee, (now if assignee is not None else None)
            row.save(update_fields=["assigned_to", "assigned_at"])
            log.changed(row, old, {"assigned_to": assignee.get_username() if assignee else None,
                                   "assigned_at": row.assigned_at.isoformat() if row.assigned_at else None},
                        label=_label(row.participant.participant_id, row.timepoint, row.rule))
        log.write()
    return BulkChange(tuple(todo), closed, refused)


def study_crisis_text(study: Study, protocol_text: str) -> str:
    """The crisis text shown with a suicidality alert of a study: the site's own words when it has them.

    Parameters
    ----------
    study : Study
        ``crisis_text`` (the site's words, blank for the protocol's) and ``country``.
    protocol_text : str
        The protocol's ``alerts.crisis_text``.

    Returns
    -------
    str
        What :func:`alliance.monitoring.crisis.crisis_text` decides from the two and the site's
        country.
    """
    return crisis_text(protocol_text, study.crisis_text, study.country)


def rule_statuses(study: Study) -> tuple:
    """Each alert rule of the study's protocol and whether it can raise alerts yet, with the reason.

    A rule that compares with the sample (the low-alliance percentile) is not active until enough
    participants have scores; the core decides (:func:`alliance.monitoring.alerts.rule_statuses`)
    on the scores and answers the rules declare they need (two queries at most).

    Returns
    -------
    tuple of alliance.monitoring.alerts.RuleStatus
        In the protocol's order.
    """
    # Computed once per data version of the study (the id of its latest audit event): a dashboard
    # visit then costs one indexed query here instead of reading the study's sample.
    key = (study.pk, data_version(study))
    with _STATUS_LOCK:
        if key in _STATUSES:
            return _STATUSES[key]
    protocol = study_protocol(study)
    needed = rules.inputs_needed(protocol.alerts.rules)
    # Only what the statuses use: the sample's scores and baseline answers, not the flagged items.
    needed = rules.AlertInputs(score_instruments=needed.score_instruments, baseline_answers=needed.baseline_answers)
    scores = _scores(study, needed.score_instruments)
    responses = rule_answers(study, protocol, needed, None)
    found = rules.rule_statuses(protocol.alerts, protocol, scores, responses)
    with _STATUS_LOCK:
        _STATUSES[key] = found
        while len(_STATUSES) > 32:
            _STATUSES.pop(next(iter(_STATUSES)))
    return found


def data_version(study: Study) -> int | None:
    """The id of the study's latest audit event: changes with every write to the study's data."""
    return AuditEvent.objects.filter(study=study).order_by("-id").values_list("id", flat=True).first()


_STATUSES: dict = {}
_STATUS_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------

def _evaluate_and_store(study: Study, participants: list[Participant], today: date, timelines: dict,
                        time_only: bool, everyone: bool = False,
                        recorded: frozenset[str] = frozenset()) -> tuple[list[Alert], int]:
    if not participants:
        return [], 0
    protocol = study_protocol(study)
    config = protocol.alerts
    if time_only:
        config = rules.time_dependent(config)
    config = replace(config, crisis_text=study_crisis_text(study, config.crisis_text))
    by_id = {p.participant_id: p for p in participants}
    needed = rules.inputs_needed(config.rules)
    scores = _scores(study, needed.score_instruments) if needed.score_instruments else None
    responses = rule_answers(study, protocol, needed, None if everyone else participants)
    records = safety_records(study, needed, None if everyone else participants)
    found = rules.evaluate_alerts(config, protocol, scores=scores, responses=responses, timelines=timelines,
                                  today=today, participant_ids=by_id, **records)
    # Alerts about data older than the protocol's historical_after_days are not raised: an
    # imported finished study's suicidality answers of last year are no call to make today.
    # Late-assessment alerts keep going through _resolve_late with everything found.
    found_all = found
    found, historical = rules.split_historical(found, today, config.historical_after_days)
    # A safety record entered just now is news however old its dates (an SAE learnt of today).
    found += [a for a in historical if a.timepoint in recorded]
    existing = Alert.objects.filter(study=study)
    if not everyone:
        existing = existing.filter(participant__in=participants)
    stored = {(pid, rule, timepoint): (pk, rule_type, resolved_at is not None or acked is not None)
              for pk, pid, rule, rule_type, timepoint, resolved_at, acked in
              existing.values_list(
                  "pk", "participant__participant_id", "rule", "rule_type", "timepoint", "resolved_at",
                  "acknowledged_at")}
    log = AuditLog(actor=ACTOR, study=study)
    created = []
    for alert in found:
        if (alert.participant_id, alert.rule, alert.timepoint) in stored:
            continue
        row = Alert(study=study, participant=by_id[alert.participant_id], rule=alert.rule, rule_type=alert.type,
                    timepoint=alert.timepoint, measure=alert.measure[:300], severity=alert.severity,
                    reason=alert.reason, action=alert.action, value=alert.value)
        try:
            with transaction.atomic():  # a savepoint: a concurrent twin must not break the caller's transaction
                row.save()
        except IntegrityError:
            continue
        log.created(row, row.audit_fields(), label=_label(alert.participant_id, alert.timepoint, alert.rule))
        created.append(row)
    resolved = _resolve_late(config, found_all, stored, timelines, log)
    log.write()
    urgent = [row.pk for row in created if row.severity == Alert.Severity.URGENT]
    if urgent:
        # After the commit: a submission rolled back sends nothing (alliance.web.monitor.notifications).
        from .notifications import notify_urgent

        transaction.on_commit(partial(notify_urgent, urgent), robust=True)
    return created, resolved


def _resolve_late(config: AlertConfig, found: list, stored: dict, timelines: dict, log: AuditLog) -> int:
    """Mark resolved the open overdue/missed alerts whose condition no longer holds."""
    still = {(a.participant_id, a.rule, a.timepoint) for a in found}
    # Alerts of time-dependent rules (an assessment overdue) end by themselves; others need a person.
    late_rules = {r.id for r in rules.time_dependent(config).rules}
    stale = [pk for key, (pk, _rule_type, closed) in stored.items()
             if not closed and key[1] in late_rules
             and key[0] in timelines and key not in still and not _deviates(timelines, key[0], key[2])]
    now = timezone.now()
    for alert in Alert.objects.filter(pk__in=stale).select_related("participant"):
        alert.resolved_at = now
        alert.save(update_fields=["resolved_at"])
        log.changed(alert, {"resolved_at": None}, {"resolved_at": now.isoformat()},
                    label=_label(alert.participant.participant_id, alert.timepoint, alert.rule))
    return len(stale)


def _deviates(timelines: dict, participant_id: str, timepoint: str) -> bool:
    """The assessment came in off schedule: its late alert stays open for a person to look at.

    Before, a prep WAI-SR submitted three weeks after the first dose closed its missed alert as
    "resolved by itself" (issue 12).
    """
    return any(row["timepoint"] == timepoint and row["status"] == "deviation"
               for row in timelines.get(participant_id, ()))


def _scores(study: Study, instruments: set[str]) -> pd.DataFrame:
    """Long scores of every participant for the instruments the score rules watch (the sample)."""
    if not instruments:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    # Each instrument's numeric score columns, read out of the stored JSON by the database (one
    # query) rather than every score dictionary decoded in Python.
    measures = [(instrument, scale) for instrument in sorted(instruments) for scale in numeric_columns(instrument)]
    return study_scores(study, measures)


def rule_answers(study: Study, protocol, needed: rules.AlertInputs,
             participants: list[Participant] | None) -> pd.DataFrame | None:
    """The item answers the rules declare: flagged items (of these participants) and baseline answers.

    ``baseline_answers`` are every item of an instrument at the first timepoint that gives it, of the
    whole study (a reliable-change threshold from the study's own Cronbach's alpha); ``None``
    when no rule needs answers.
    """
    frames = []
    if needed.answer_items:
        frames.append(_flag_answers(study, needed.answer_items, participants))
    for instrument in sorted(needed.baseline_answers):
        first = next((t.id for t in protocol.timepoints if instrument in t.instruments), None)
        if first is None:
            continue
        answers = (ItemResponse.objects.filter(administration__participant__study=study,
                                               administration__instrument=instrument,
                                               administration__timepoint__code=first,
                                               administration__status=Administration.Status.SUBMITTED)
                   .values_list("administration__participant__participant_id", "administration__timepoint__code",
                                "administration__instrument", "item", "value"))
        frames.append(pd.DataFrame.from_records(list(answers), columns=RESPONSE_COLUMNS))
    if not frames:
        return None
    frames = [f for f in frames if not f.empty] or frames[:1]
    return pd.concat(frames, ignore_index=True).drop_duplicates() if len(frames) > 1 else frames[0]


def safety_records(study: Study, needed: rules.AlertInputs,
                   participants: list[Participant] | None) -> dict[str, pd.DataFrame]:
    """The safety tables the rules declare, of these participants (or everyone), one query each.

    Parameters
    ----------
    study : Study
    needed : alliance.monitoring.alerts.AlertInputs
        Its ``adverse_events``, ``vital_signs``, ``medications`` and ``dosing_sessions``.
    participants : list of Participant or None

    Returns
    -------
    dict
        Keyword arguments of :func:`alliance.monitoring.alerts.evaluate_alerts`: the tables asked
        for, with the tidy contract's column names (:data:`SAFETY_TABLES`); a table nobody asked for
        is left out (and not read). A blank text field is ``None``, as an empty CSV cell.
    """
    out = {}
    for name, (model, columns) in SAFETY_TABLES.items():
        if not getattr(needed, name):
            continue
        rows = model.objects.filter(participant__study=study)
        if participants is not None:
            rows = rows.filter(participant__in=participants)
        records = [[None if value == "" else value for value in row]
                   for row in rows.values_list("participant__participant_id", *columns)]
        out[name] = pd.DataFrame.from_records(records, columns=["participant_id", *columns])
    return out


def _flag_answers(study: Study, items: Iterable[tuple[str, str]],
                  participants: list[Participant] | None) -> pd.DataFrame:
    """The submitted answers to these ``(instrument, item)`` (of these participants, or everyone)."""
    items = set(items)
    item_ids = sorted({item for _, item in items})
    # Only the administrations of the instruments that have these items: a study's other forms
    # (most of its 20,000) are not probed for them.
    answers = ItemResponse.objects.filter(administration__participant__study=study, item__in=item_ids,
                                          administration__instrument__in=sorted({i for i, _ in items}),
                                          administration__status=Administration.Status.SUBMITTED)
    if participants is not None:
        answers = answers.filter(administration__participant__in=participants)
    answers = (answers
               .values_list("administration__participant__participant_id", "administration__timepoint__code",
                            "administration__instrument", "item", "value", "administration__administered_at"))
    # administered_on: how old the answer is, so that an import of old records raises no alert
    # "contact the participant today" about them (AlertConfig.historical_after_days).
    return pd.DataFrame.from_records(list(answers), columns=[*RESPONSE_COLUMNS, "administered_on"])


def _label(participant_id: str, timepoint: str, rule: str) -> str:
    """The audit label of an alert: ``P003/week1/suicidality``; a safety alert's timepoint is its
    record's key, ``P003/ae:AE-004/serious_adverse_event``."""
    return f"{participant_id}/{timepoint}/{rule}"
