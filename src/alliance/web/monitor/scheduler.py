"""The scheduled jobs inside ``alliance serve``: the alerts time raises, and the emails time makes due.

An assessment becomes overdue, then missed, without anything being stored; pages compute those
alerts on the fly but never write (:mod:`alliance.web.monitor.alerting`). Something has to store
them — for the audit trail, and so that they can be acknowledged: ``alliance alerts refresh``
from cron, or, for the single-process server of ``alliance serve`` (waitress), this thread, which
runs :func:`alliance.web.monitor.alerting.refresh_every_study` every ``interval_seconds``
(the first time right after start), and then sends the invitation and reminder emails due
(:func:`alliance.web.capture.invitations.send_due_every_study`; ``alliance invitations send``
from cron does the same). Without ``ALLIANCE_SITE_URL`` no email is sent, and the log says so once.

Each run is one short write transaction per study. On SQLite a form submitted meanwhile waits for
it (the busy timeout of :func:`alliance.web.config.database_from_url`), it does not fail. With
several server processes (gunicorn), do not start it in each worker: run ``alliance alerts refresh``
from cron instead (``docs/monitor.md``).

Importing this module starts nothing; call :func:`start_refresher` once Django is set up.

Examples
--------
::

    from alliance.web.monitor.scheduler import start_refresher

    refresher = start_refresher(interval_seconds=900)
    ...
    refresher.stop()
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from django.db import DatabaseError, close_old_connections, connections

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 900.0
"""Every 15 minutes: overdue means days late, so a quarter of an hour is soon enough to store it."""


@dataclass
class Refresher:
    """A running refresher thread.

    Attributes
    ----------
    interval_seconds : float
    thread : threading.Thread
    runs : int
        Refreshes finished (successfully or not) so far.
    last_error : str
        The error of the latest failed run, or empty.
    """

    interval_seconds: float
    thread: threading.Thread | None = None
    runs: int = 0
    last_error: str = ""
    _said_not_configured: bool = field(default=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _ran: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the thread to stop and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def wait_for_run(self, runs: int = 1, timeout: float = 30.0) -> bool:
        """Wait until at least ``runs`` refreshes have finished; False on timeout (for tests)."""
        with self._ran:
            return self._ran.wait_for(lambda: self.runs >= runs, timeout)

    def run_once(self) -> None:
        """One refresh of every study, in this thread; failures are logged, never raised."""
        from .alerting import refresh_every_study  # models: only once Django is set up

        close_old_connections()
        try:
            summaries = refresh_every_study()
        except DatabaseError as error:  # e.g. the database is briefly unavailable: try again next time
            self.last_error = str(error)
            log.warning("alert refresh failed, retrying in %.0f s: %s", self.interval_seconds, error)
        except Exception as error:  # a bug must not kill the thread silently: say it, keep serving
            self.last_error = f"{type(error).__name__}: {error}"
            log.exception("alert refresh failed")
        else:
            self.last_error = ""
            raised = sum(s.raised for s in summaries.values())
            resolved = sum(s.resolved for s in summaries.values())
            if raised or resolved:
                log.info("alert refresh: %d new, %d resolved in %d studies", raised, resolved, len(summaries))
        self._send_invitations()
        connections.close_all()  # this thread's connections only (they are per thread)
        with self._ran:
            self.runs += 1
            self._ran.notify_all()

    def _send_invitations(self) -> None:
        """The protocol's invitation and reminder emails due now (:mod:`alliance.web.capture.invitations`)."""
        from alliance.web.capture.invitations import InvitationsNotConfigured, send_due_every_study

        try:
            summaries = send_due_every_study()
        except InvitationsNotConfigured as error:
            if not self._said_not_configured:  # once, not every quarter of an hour
                log.warning("%s", error)
                self._said_not_configured = True
        except DatabaseError as error:
            log.warning("sending invitations failed, retrying in %.0f s: %s", self.interval_seconds, error)
        except Exception:
            log.exception("sending invitations failed")
        else:
            sent = sum(s.sent for s in summaries)
            failed = sum(s.failed for s in summaries)
            if sent or failed:
                log.info("invitations and reminders: %d sent, %d failed", sent, failed)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval_seconds)


def start_refresher(interval_seconds: float = DEFAULT_INTERVAL_SECONDS) -> Refresher:
    """Start a daemon thread that refreshes every study's alerts now and then every ``interval_seconds``.

    Parameters
    ----------
    interval_seconds : float
        Seconds between the end of one refresh and the start of the next (at least 1).

    Returns
    -------
    Refresher
        Its :meth:`Refresher.stop` ends the thread; being a daemon, it also ends with the process.

    Raises
    ------
    ValueError
        When ``interval_seconds`` is below 1.
    """
    if not interval_seconds >= 1:
        raise ValueError(f"the alert refresh interval must be at least 1 second, not {interval_seconds!r}")
    refresher = Refresher(float(interval_seconds))
    refresher.thread = threading.Thread(target=refresher._loop, name="alliance-alert-refresh", daemon=True)
    refresher.thread.start()
    return refresher
