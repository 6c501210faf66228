"""Raising, storing, resolving and acknowledging alerts: the database side of ``alliance.monitoring.alerts``.

The rules and their reasons are decided in the core (:mod:`alliance.monitoring.alerts`); this module
gathers the inputs they declare (:func:`alliance.monitoring.alerts.inputs_needed`) from the database, stores the alerts they raise once each (one per rule,
participant and timepoint) and writes every create and change to the audit trail.

When alerts are raised
----------------------
- **On events**, inside the transaction that stored them: a submitted form or a recorded dosing
  session (the capture app's signals ``administration_submitted`` and ``dosing_recorded``,
  received in :mod:`alliance.web.monitor.receivers`) evaluates every rule for that participant.
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
by the other rule) is marked resolved; every other alert stays open until a person acknowledges it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import pandas as pd
from django.db import IntegrityError, transaction
from django.utils import timezone

from alliance.monitoring import alerts as rules
from alliance.protocol import AlertConfig
from alliance.web.audit.log import AuditLog
from alliance.web.capture.models import Administration, ItemResponse, Participant, Study
from alliance.web.capture.queries import study_protocol
from alliance.web.capture.timelines import dosing_dates, participant_timeline, participant_timelines

from .models import Alert

ACTOR = "system:alerts"
SCORE_COLUMNS = ["participant_id", "timepoint", "instrument", "scale", "value"]
RESPONSE_COLUMNS = ["participant_id", "timepoint", "instrument", "item", "value"]


@dataclass(frozen=True)
class RefreshSummary:
    """What one refresh did: alerts raised and resolved, participants looked at."""

    raised: int
    resolved: int
    participants: int


def raise_alerts(participant: Participant, today: date | None = None, *, time_only: bool = False,
                 timeline_rows: list[dict] | None = None) -> list[Alert]:
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

    Returns
    -------
    list of Alert
        The alerts created now (already existing ones are not raised again).
    """
    today = today or timezone.localdate()
    if timeline_rows is None:
        timeline_rows = schedule(participant, today)
    timelines = {participant.participant_id: timeline_rows} if timeline_rows else {}
    return _evaluate_and_store(participant.study, [participant], today, timelines, time_only)[0]


def study_timelines(participants: Iterable[Participant], today: date) -> dict[str, list[dict]]:
    """Participant id → timeline rows on ``today``, for the participants with an enrolment date.

    Parameters
    ----------
    participants : iterable of Participant
        With ``arm`` and ``study`` selected (``select_related``).
    today : date

    Returns
    -------
    dict
    """
    participants = list(participants)
    timelines = participant_timelines(participants, today)  # two queries for all of them
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
    participants : list of Participant
        The participants the page shows.
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
    if stored is None:
        stored = (Alert.objects.filter(study=study, participant__in=participants)
                  .only("pk", "participant", "rule", "timepoint", "acknowledged_at", "resolved_at"))
    participant_of = {p.pk: p.participant_id for p in participants}  # Alert.participant_id is the key
    keys = {(participant_of[a.participant_id], a.rule, a.timepoint): a for a in stored
            if a.participant_id in participant_of}
    new = [Alert(study=study, participant=by_id[a.participant_id], rule=a.rule, rule_type=a.type,
                 timepoint=a.timepoint, measure=a.measure[:300], severity=a.severity, reason=a.reason,
                 action=a.action, value=a.value)
           for a in found if (a.participant_id, a.rule, a.timepoint) not in keys]
    still = {(a.participant_id, a.rule, a.timepoint) for a in found}
    late_rules = {r.id for r in config.rules}
    lapsed = frozenset(alert.pk for key, alert in keys.items()
                       if alert.is_open and key[1] in late_rules and key[0] in timelines and key not in still
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
    with transaction.atomic():
        locked = Alert.objects.select_for_update().select_related("participant").get(pk=alert.pk)
        if locked.acknowledged_at is not None:
            return False
        old = {"acknowledged_by": None, "acknowledged_at": None, "acknowledgement_note": ""}
        locked.acknowledged_by = user
        locked.acknowledged_at = timezone.now()
        locked.acknowledgement_note = note.strip()
        locked.save(update_fields=["acknowledged_by", "acknowledged_at", "acknowledgement_note"])
        log = AuditLog(actor=f"user:{user.get_username()}", user=user, study=alert.study)
        log.changed(locked, old, {"acknowledged_by": user.get_username(),
                                  "acknowledged_at": locked.acknowledged_at.isoformat(),
                                  "acknowledgement_note": locked.acknowledgement_note},
                    label=_label(locked.participant.participant_id, locked.timepoint, locked.rule))
        log.write()
    alert.refresh_from_db()
    return True


# ---------------------------------------------------------------------------------------------

def _evaluate_and_store(study: Study, participants: list[Participant], today: date, timelines: dict,
                        time_only: bool, everyone: bool = False) -> tuple[list[Alert], int]:
    if not participants:
        return [], 0
    protocol = study_protocol(study)
    config = protocol.alerts
    if time_only:
        config = rules.time_dependent(config)
    by_id = {p.participant_id: p for p in participants}
    needed = rules.inputs_needed(config.rules)
    scores = _scores(study, needed.score_instruments) if needed.score_instruments else None
    responses = (_flag_answers(study, needed.answer_items, None if everyone else participants)
                 if needed.answer_items else None)
    found = rules.evaluate_alerts(config, protocol, scores=scores, responses=responses, timelines=timelines,
                                  today=today, participant_ids=by_id)
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
    resolved = _resolve_late(config, found, stored, timelines, log)
    log.write()
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
    rows = []
    for pid, timepoint, instrument, scores in (
            Administration.objects.filter(participant__study=study, status=Administration.Status.SUBMITTED,
                                          instrument__in=sorted(instruments))
            .values_list("participant__participant_id", "timepoint__code", "instrument", "scores")):
        for scale, value in (scores or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                rows.append((pid, timepoint, instrument, scale, float(value)))
    return pd.DataFrame.from_records(rows, columns=SCORE_COLUMNS)


def _flag_answers(study: Study, items: Iterable[tuple[str, str]],
                  participants: list[Participant] | None) -> pd.DataFrame:
    """The submitted answers to these ``(instrument, item)`` (of these participants, or everyone)."""
    item_ids = sorted({item for _, item in items})
    answers = ItemResponse.objects.filter(administration__participant__study=study, item__in=item_ids,
                                          administration__status=Administration.Status.SUBMITTED)
    if participants is not None:
        answers = answers.filter(administration__participant__in=participants)
    answers = (answers
               .values_list("administration__participant__participant_id", "administration__timepoint__code",
                            "administration__instrument", "item", "value"))
    return pd.DataFrame.from_records(list(answers), columns=RESPONSE_COLUMNS)


def _label(participant_id: str, timepoint: str, rule: str) -> str:
    return f"{participant_id}/{timepoint}/{rule}"
