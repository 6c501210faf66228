"""The monitor app's receivers of the capture app's signals (:mod:`alliance.web.capture.signals`).

Connected in :meth:`alliance.web.monitor.apps.MonitorConfig.ready`. Each runs inside the
transaction that stored the form, the dosing session or the safety record, so an alert raised here
is committed or rolled back together with the data it is about, and its audit event with it. Every
alert rule of the protocol is evaluated for the participant (see :mod:`alliance.web.monitor.alerting`).
"""

from __future__ import annotations

from alliance.monitoring.alerts import record_keys

from .alerting import raise_alerts

# The capture models of safety records → their tidy table (what record_keys names).
SAFETY_TABLES = {"AdverseEvent": "adverse_events", "VitalSign": "vital_signs",
                 "ConcomitantMedication": "concomitant_medications"}
# A record's key fields, as record_keys reads them.
_KEY_FIELDS = ("ae_id", "session", "measured_at", "name", "start")


def alerts_on_submission(sender, administration, **kwargs) -> list:
    """Raise the alerts a newly submitted administration may trigger.

    Parameters
    ----------
    sender : type
        ``Administration``.
    administration : alliance.web.capture.models.Administration
        A submitted (scored) administration.

    Returns
    -------
    list of alliance.web.monitor.models.Alert
        The alerts created (none when they already existed).
    """
    return raise_alerts(administration.participant)


def alerts_on_dosing(sender, dosing_session, **kwargs) -> list:
    """Raise the alerts a newly recorded dosing session may trigger (the schedule moves with it).

    Parameters
    ----------
    sender : type
        ``DosingSession``.
    dosing_session : alliance.web.capture.models.DosingSession

    Returns
    -------
    list of alliance.web.monitor.models.Alert
    """
    return raise_alerts(dosing_session.participant)


def alerts_on_safety_record(sender, participant, record, **kwargs) -> list:
    """Raise the alerts a safety record stored in the web app may trigger (a serious adverse event,
    a vital sign at or above its threshold, a washout not kept).

    The alerts about this record are raised however old its dates are (``recorded`` of
    :func:`alliance.web.monitor.alerting.raise_alerts`): it is news to the team today.

    Parameters
    ----------
    sender : type
        ``AdverseEvent``, ``VitalSign`` or ``ConcomitantMedication``.
    participant : alliance.web.capture.models.Participant
    record : model instance
        The stored row.

    Returns
    -------
    list of alliance.web.monitor.models.Alert
    """
    table = SAFETY_TABLES.get(getattr(sender, "__name__", ""))
    keys = record_keys(table, {f: getattr(record, f) for f in _KEY_FIELDS if hasattr(record, f)}) if table else ()
    return raise_alerts(participant, recorded=keys)


def alerts_on_import(sender, study, using: str, **kwargs):
    """Evaluate every alert rule for an imported study (an import may bring low scores or enrolment dates).

    Parameters
    ----------
    sender : type
        ``Study``.
    study : alliance.web.capture.models.Study
    using : str
        The database the import wrote to. Alerts live with the web app in the default database;
        an import into another alias (a second database a script writes to) raises none.

    Returns
    -------
    RefreshSummary or None
    """
    from django.db import DEFAULT_DB_ALIAS

    from .alerting import refresh_alerts

    if using != DEFAULT_DB_ALIAS:
        return None
    return refresh_alerts(study)


def alerts_of_deleted_participants(sender, participants, log, using: str, **kwargs) -> dict[str, int]:
    """Delete the alerts of participants an import deletes, each with its audit event.

    An alert is about answers the import deletes too (their values stay in the audit trail, and so
    do the alert's). Without this, an alert would keep its participant from being deleted at all.

    Parameters
    ----------
    sender : type
        ``Participant``.
    participants : list of Participant
    log : alliance.web.audit.log.AuditLog
        The import's log; the deletions are written with the import's events.
    using : str

    Returns
    -------
    dict
        ``{"alerts": n}``.
    """
    from .alerting import _label
    from .models import Alert

    alerts = list(Alert.objects.using(using).filter(participant__in=[p.pk for p in participants])
                  .select_related("participant", "acknowledged_by"))
    for alert in alerts:
        log.deleted(alert, alert.audit_fields(),
                    label=_label(alert.participant.participant_id, alert.timepoint, alert.rule))
    Alert.objects.using(using).filter(pk__in=[a.pk for a in alerts]).delete()
    return {"alerts": len(alerts)}
