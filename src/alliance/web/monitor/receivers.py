"""The monitor app's receivers of the capture app's signals (:mod:`alliance.web.capture.signals`).

Connected in :meth:`alliance.web.monitor.apps.MonitorConfig.ready`. Each runs inside the
transaction that stored the form or the dosing session, so an alert raised here is committed or
rolled back together with the data it is about, and its audit event with it. Every alert rule of
the protocol is evaluated for the participant (see :mod:`alliance.web.monitor.alerting`).
"""

from __future__ import annotations

from .alerting import raise_alerts


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
