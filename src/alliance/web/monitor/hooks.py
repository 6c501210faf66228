"""Where the capture app tells the monitor app that something happened, so that alerts are raised.

W1's views call these inside the transaction that stored the form or the dosing session; an
alert raised here is committed or rolled back together with the data it is about, and its audit
event with it. Every alert rule of the protocol is evaluated for the participant (see
:mod:`alliance.web.monitor.alerting`).
"""

from __future__ import annotations

from .alerting import raise_alerts


def on_administration_submitted(administration) -> list:
    """Raise the alerts a newly submitted administration may trigger.

    Parameters
    ----------
    administration : alliance.web.capture.models.Administration
        A submitted (scored) administration.

    Returns
    -------
    list of alliance.web.monitor.models.Alert
        The alerts created (none when they already existed).
    """
    return raise_alerts(administration.participant)


def on_dosing_recorded(dosing_session) -> list:
    """Raise the alerts a newly recorded dosing session may trigger (the schedule moves with it).

    Parameters
    ----------
    dosing_session : alliance.web.capture.models.DosingSession

    Returns
    -------
    list of alliance.web.monitor.models.Alert
    """
    return raise_alerts(dosing_session.participant)
